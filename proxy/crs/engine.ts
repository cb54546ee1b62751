/**
 * The SecLang rule engine: compiles directives (see `parser.ts`) into rules once, then
 * evaluates requests against them with ModSecurity semantics — phases, chains, skipAfter,
 * setvar/TX, ctl, captures, multiMatch and the CRS anomaly scoring that follows from them.
 *
 * It must never touch the file system or the network: files arrive through `readFile`.
 *
 * @module
 */
import type { RuleMatch, RuleRequest, RuleVerdict } from "../rule_engine.ts";
import { CrsError } from "./_errors.ts";
import { compileOperator, type Operator } from "./_operators.ts";
import { compileRegex } from "./_regex.ts";
import {
  bodyProcessorFor,
  buildRequestData,
  latin1,
  parseBody,
  type RequestData,
  type VarElem,
} from "./_request.ts";
import { type Transform, TRANSFORMS } from "./_transforms.ts";
import { type Directive, parseActions, parseTargets, type TargetSpec } from "./parser.ts";

/** A compiled variable reference. */
interface Target {
  name: string;
  /** Lowercased literal selector. */
  key?: string;
  re?: RegExp;
  count: boolean;
  /** The rule's exclusions that concern this variable (filled when compilation ends). */
  excl?: Exclusion[];
  /** The variable is a request-line or body scalar whose element can be shared. */
  stable?: boolean;
}

/** A compiled exclusion (`!ARGS:foo`). */
interface Exclusion {
  name: string;
  key?: string;
  re?: RegExp;
}

type Macro = (t: Tx) => string;

interface SetVar {
  coll: string;
  name: Macro;
  op: "=" | "+" | "-" | "del";
  value: Macro;
}

interface Ctl {
  kind: string;
  value: string;
}

/** One compiled rule (or one link of a chain). */
export interface Rule {
  /** Rule id; 0 for chain links and SecAction without id. */
  id: number;
  phase: number;
  file: string;
  line: number;
  targets: Target[];
  exclusions: Exclusion[];
  op: Operator;
  opParam: string;
  opParamMacro?: Macro;
  negated: boolean;
  transforms: Transform[];
  /** Cache keys of each transformation prefix. */
  tkeys: string[];
  multiMatch: boolean;
  capture: boolean;
  chain?: Rule;
  setvars: SetVar[];
  ctls: Ctl[];
  skipAfter?: string;
  skip: number;
  msg?: Macro;
  logdata?: Macro;
  severity?: string;
  tags: string[];
  disruptive?: "deny" | "block" | "pass" | "allow" | "drop" | "redirect";
  allowScope?: string;
  status?: number;
  log: boolean;
  paranoia?: number;
  isAction: boolean;
}

/** A rule list entry: a rule or a SecMarker. */
type Entry = { rule: Rule; marker?: undefined } | { marker: string; rule?: undefined };

/** Options of {@linkcode compileRules}. */
export interface CompileOptions {
  /** Reads a data file named by `@pmFromFile` (relative to the rules directory). */
  readData: (name: string) => string;
  /** Drop rules tagged `paranoia-level/N` with N above this. */
  maxParanoia?: number;
  /** False disables `@detectSQLi`/`@detectXSS` (to measure what they contribute). */
  libinjection?: boolean;
}

/** The compiled rule set. */
export interface RuleSet {
  /** Rules and markers per phase (1–5), in configuration order. */
  phases: Entry[][];
  /** Number of rules (chains count once). */
  ruleCount: number;
  /** SecRuleEngine setting. */
  ruleEngine: "On" | "Off" | "DetectionOnly";
  /** Paranoia level (from its `paranoia-level/N` tag) of every rule id, kept or pruned. */
  paranoiaById: Map<number, number>;
}

const PHASE_NAMES: Record<string, number> = { request: 2, response: 4, logging: 5 };

const SCALARS = new Set([
  "REQUEST_METHOD",
  "REQUEST_PROTOCOL",
  "REQUEST_LINE",
  "REQUEST_URI",
  "REQUEST_URI_RAW",
  "REQUEST_FILENAME",
  "REQUEST_BASENAME",
  "QUERY_STRING",
  "REMOTE_ADDR",
  "REMOTE_HOST",
  "REQUEST_BODY",
  "REQUEST_BODY_LENGTH",
  "ARGS_COMBINED_SIZE",
  "FILES_COMBINED_SIZE",
  "REQBODY_PROCESSOR",
  "REQBODY_ERROR",
  "REQBODY_ERROR_MSG",
  "REQBODY_PROCESSOR_ERROR",
  "MULTIPART_STRICT_ERROR",
  "MULTIPART_UNMATCHED_BOUNDARY",
  "UNIQUE_ID",
  "MATCHED_VAR",
  "MATCHED_VAR_NAME",
  "PATH_INFO",
  "RESPONSE_STATUS",
  "RESPONSE_BODY",
  "RESPONSE_PROTOCOL",
  "DURATION",
  "TIME",
  "TIME_EPOCH",
  "SERVER_NAME",
  "SERVER_PORT",
  "SERVER_ADDR",
  "AUTH_TYPE",
  "REMOTE_USER",
  "FULL_REQUEST",
  "FULL_REQUEST_LENGTH",
  "INBOUND_DATA_ERROR",
  "HIGHEST_SEVERITY",
  "STATUS_LINE",
  "WEBSERVER_ERROR_LOG",
]);
const STABLE = new Set([
  "REQUEST_BODY",
  "REQUEST_URI",
  "REQUEST_FILENAME",
  "REQUEST_LINE",
  "QUERY_STRING",
  "REQUEST_URI_RAW",
  "REQUEST_BASENAME",
  "REQUEST_METHOD",
  "REQUEST_PROTOCOL",
]);
const COLLECTIONS = new Set([
  "ARGS",
  "ARGS_NAMES",
  "ARGS_GET",
  "ARGS_GET_NAMES",
  "ARGS_POST",
  "ARGS_POST_NAMES",
  "REQUEST_HEADERS",
  "REQUEST_HEADERS_NAMES",
  "REQUEST_COOKIES",
  "REQUEST_COOKIES_NAMES",
  "FILES",
  "FILES_NAMES",
  "FILES_SIZES",
  "FILES_TMPNAMES",
  "FILES_TMP_CONTENT",
  "MULTIPART_PART_HEADERS",
  "XML",
  "TX",
  "MATCHED_VARS",
  "MATCHED_VARS_NAMES",
  "RESPONSE_HEADERS",
  "RESPONSE_HEADERS_NAMES",
  "IP",
  "GLOBAL",
  "SESSION",
  "USER",
  "RESOURCE",
  "ENV",
  "RULE",
  "GEO",
]);

// ---------------------------------------------------------------------------------------------
// Compilation

function compileMacro(s: string): Macro {
  if (!s.includes("%{")) return () => s;
  const parts: (string | { coll: string; key?: string })[] = [];
  const re = /%\{([^}]+)\}/g;
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    if (m.index > last) parts.push(s.slice(last, m.index));
    const ref = m[1];
    const dot = ref.indexOf(".");
    parts.push(
      dot < 0
        ? { coll: ref.toUpperCase() }
        : { coll: ref.slice(0, dot).toUpperCase(), key: ref.slice(dot + 1) },
    );
    last = m.index + m[0].length;
  }
  if (last < s.length) parts.push(s.slice(last));
  return (t) => {
    let out = "";
    for (const p of parts) out += typeof p === "string" ? p : t.macroValue(p.coll, p.key);
    return out;
  };
}

function compileTarget(spec: TargetSpec, where: string): Target | Exclusion {
  if (!SCALARS.has(spec.name) && !COLLECTIONS.has(spec.name)) {
    throw new CrsError(
      "UNKNOWN_VARIABLE",
      `${where}: unknown variable "${spec.name}"; check the spelling (e.g. ARGS, REQUEST_HEADERS, TX)`,
    );
  }
  let key: string | undefined;
  let re: RegExp | undefined;
  const sel = spec.selector;
  if (sel !== undefined && sel !== "") {
    if (spec.name !== "XML" && sel.length >= 2 && sel[0] === "/" && sel.endsWith("/")) {
      const src = sel.slice(1, -1);
      // Selector regexes are case-insensitive like collection keys.
      const r = compileRegex(src, where);
      re = new RegExp(r.source, r.flags.includes("i") ? r.flags : r.flags + "i");
    } else key = sel.toLowerCase();
  }
  if (spec.exclude) return { name: spec.name, key, re };
  return { name: spec.name, key, re, count: spec.count };
}

/**
 * Compiles directives into a rule set.
 *
 * @param directives Directives from {@linkcode parseSecLang}, setup file first.
 * @param options Data-file reader and paranoia pruning.
 * @returns The rule set.
 * @throws {CrsError} Naming file:line for anything it cannot compile.
 */
export function compileRules(directives: Directive[], options: CompileOptions): RuleSet {
  const entries: Entry[] = [];
  const defaults = new Map<number, ReturnType<typeof parseActions>>();
  let chainTail: Rule | undefined;
  let chainHead: Rule | undefined;
  let ruleEngine: RuleSet["ruleEngine"] = "On";
  const paranoiaById = new Map<number, number>();
  const byId = (id: number): Rule[] =>
    entries.filter((e) => e.rule && e.rule.id === id).map((e) => e.rule!);

  for (const d of directives) {
    const where = `${d.file}:${d.line}`;
    const name = d.name.toLowerCase();
    const need = (n: number): void => {
      if (d.args.length < n) {
        throw new CrsError(
          "PARSE",
          `${where}: ${d.name} needs ${n} argument(s), got ${d.args.length}`,
        );
      }
    };
    switch (name) {
      case "secrule":
      case "secaction": {
        const isAction = name === "secaction";
        need(isAction ? 1 : 2);
        const rule = compileRule(
          isAction ? undefined : d.args[0],
          isAction ? "@unconditionalMatch" : d.args[1],
          (isAction ? d.args[0] : d.args[2]) ?? "",
          where,
          d,
          defaults,
          options,
          chainTail !== undefined,
        );
        rule.isAction = isAction;
        if (rule.id !== 0 && rule.paranoia !== undefined) paranoiaById.set(rule.id, rule.paranoia);
        const opensChain = rule.chain === rule; // sentinel set by compileRule
        if (opensChain) rule.chain = undefined;
        if (chainTail) {
          chainTail.chain = rule;
          rule.phase = chainHead!.phase;
          chainTail = opensChain ? rule : undefined;
          if (!chainTail) chainHead = undefined;
        } else {
          if (opensChain) {
            chainHead = rule;
            chainTail = rule;
          }
          const pl = rule.paranoia;
          if (pl !== undefined && options.maxParanoia !== undefined && pl > options.maxParanoia) {
            // still compiled (so errors surface) but not kept
            if (opensChain) {
              /* the links attach to this dropped head */
            }
          } else entries.push({ rule });
        }
        break;
      }
      case "secmarker":
        need(1);
        entries.push({ marker: d.args[0] });
        break;
      case "secdefaultaction": {
        need(1);
        const acts = parseActions(d.args[0], where);
        const ph = acts.find((a) => a.name.toLowerCase() === "phase");
        const phase = ph ? (PHASE_NAMES[ph.value!.toLowerCase()] ?? parseInt(ph.value!, 10)) : 2;
        defaults.set(phase, acts);
        break;
      }
      case "secruleremovebyid": {
        const ids = d.args.join(" ").split(/[\s,]+/).filter((x) => x !== "");
        const test = idTester(ids, where);
        for (let i = entries.length - 1; i >= 0; i--) {
          const r = entries[i].rule;
          if (r && test(r.id)) entries.splice(i, 1);
        }
        break;
      }
      case "secruleremovebytag":
      case "secruleremovebymsg": {
        need(1);
        const re = new RegExp(d.args[0]);
        for (let i = entries.length - 1; i >= 0; i--) {
          const r = entries[i].rule;
          if (!r) continue;
          const hit = name === "secruleremovebytag"
            ? r.tags.some((t) => re.test(t))
            : r.msg !== undefined && re.test(r.msg(emptyTx()));
          if (hit) entries.splice(i, 1);
        }
        break;
      }
      case "secruleupdatetargetbyid":
      case "secruleupdatetargetbytag": {
        need(2);
        const specs = parseTargets(d.args[1]);
        let rules: Rule[];
        if (name === "secruleupdatetargetbyid") {
          const test = idTester(d.args[0].split(/[\s,]+/), where);
          rules = entries.filter((e) => e.rule && test(e.rule.id)).map((e) => e.rule!);
        } else {
          rules = entries.filter((e) => e.rule && e.rule.tags.includes(d.args[0])).map((e) =>
            e.rule!
          );
        }
        for (const r of rules) {
          for (const s of specs) {
            const t = compileTarget(s, where);
            if (s.exclude) r.exclusions.push(t as Exclusion);
            else if (d.args[2]) {
              const old = parseTargets(d.args[2])[0];
              const idx = r.targets.findIndex((x) =>
                x.name === old.name && x.key === old.selector?.toLowerCase()
              );
              if (idx >= 0) r.targets[idx] = t as Target;
              else r.targets.push(t as Target);
            } else r.targets.push(t as Target);
          }
        }
        break;
      }
      case "secruleupdateactionbyid": {
        need(2);
        const id = parseInt(d.args[0], 10);
        for (const r of byId(id)) {
          applyActions(r, parseActions(d.args[1], where), where, options, true);
        }
        break;
      }
      case "secruleengine":
        need(1);
        ruleEngine = d.args[0] === "Off"
          ? "Off"
          : d.args[0] === "DetectionOnly"
          ? "DetectionOnly"
          : "On";
        break;
      case "seccomponentsignature":
      case "secrequestbodyaccess":
      case "secresponsebodyaccess":
      case "secrequestbodylimit":
      case "secrequestbodynofileslimit":
      case "secrequestbodylimitaction":
      case "secrequestbodyinmemorylimit":
      case "secresponsebodylimit":
      case "secresponsebodylimitaction":
      case "secresponsebodymimetype":
      case "secpcrematchlimit":
      case "secpcrematchlimitrecursion":
      case "secargumentseparator":
      case "seccookieformat":
      case "secunicodemapfile":
      case "secstatusengine":
      case "sectmpdir":
      case "secdatadir":
      case "secauditengine":
      case "secauditlog":
      case "secauditlogparts":
      case "secauditlogtype":
      case "secauditlogformat":
      case "secauditlogrelevantstatus":
      case "secauditlogstoragedir":
      case "secdebuglog":
      case "secdebugloglevel":
      case "seccollectiontimeout":
      case "secargumentslimit":
      case "secrequestbodyjsondepthlimit":
      case "sectmpsaveuploadedfiles":
      case "secuploadkeepfiles":
      case "secuploaddir":
      case "secuploadfilemode":
      case "secuploadfilelimit":
      case "secwebappid":
      case "secsensorid":
      case "sechttpblkey":
      case "secgeolookupdb":
      case "secxmlexternalentity":
        break; // server settings this engine does not need
      case "include":
        throw new CrsError(
          "UNKNOWN_DIRECTIVE",
          `${where}: Include is not followed; list the files in rulesDir/extraFiles instead`,
        );
      default:
        throw new CrsError(
          "UNKNOWN_DIRECTIVE",
          `${where}: unknown directive "${d.name}"; supported: SecRule, SecAction, SecMarker, ` +
            `SecDefaultAction, SecRuleRemoveById/ByTag, SecRuleUpdateTargetById/ByTag, ` +
            `SecRuleUpdateActionById and server settings`,
        );
    }
  }
  if (chainTail) {
    throw new CrsError(
      "BAD_RULE",
      `${chainHead!.file}:${chainHead!.line}: rule ${
        chainHead!.id
      } ends with "chain" but no rule follows`,
    );
  }
  for (const e of entries) {
    for (let r: Rule | undefined = e.rule; r; r = r.chain) {
      for (const tg of r.targets) {
        tg.excl = r.exclusions.filter((x) => x.name === tg.name);
        tg.stable = STABLE.has(tg.name);
      }
    }
  }
  const phases: Entry[][] = [[], [], [], [], [], []];
  let ruleCount = 0;
  for (const e of entries) {
    if (e.marker !== undefined) { for (let p = 1; p <= 5; p++) phases[p].push(e); }
    else {
      phases[e.rule.phase].push(e);
      ruleCount++;
    }
  }
  return { phases, ruleCount, ruleEngine, paranoiaById };
}

function idTester(specs: string[], where: string): (id: number) => boolean {
  const ranges: [number, number][] = [];
  for (const s of specs) {
    if (s === "") continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(s.trim());
    if (!m) throw new CrsError("BAD_RULE", `${where}: "${s}" is not a rule id or id range`);
    ranges.push([Number(m[1]), Number(m[2] ?? m[1])]);
  }
  return (id) => ranges.some(([a, b]) => id >= a && id <= b);
}

function compileRule(
  vars: string | undefined,
  opStr: string,
  actStr: string,
  where: string,
  d: Directive,
  defaults: Map<number, ReturnType<typeof parseActions>>,
  options: CompileOptions,
  isChainLink: boolean,
): Rule {
  const rule: Rule = {
    id: 0,
    phase: 2,
    file: d.file,
    line: d.line,
    targets: [],
    exclusions: [],
    op: undefined as unknown as Operator,
    opParam: "",
    negated: false,
    transforms: [],
    tkeys: [],
    multiMatch: false,
    capture: false,
    setvars: [],
    ctls: [],
    skip: 0,
    tags: [],
    log: true,
    isAction: false,
  };
  if (vars !== undefined) {
    for (const spec of parseTargets(vars)) {
      const t = compileTarget(spec, where);
      if (spec.exclude) rule.exclusions.push(t as Exclusion);
      else rule.targets.push(t as Target);
    }
  }
  // operator
  let op = opStr.trimStart();
  if (op.startsWith("!")) {
    rule.negated = true;
    op = op.slice(1).trimStart();
  }
  let opName = "rx";
  let param = op;
  if (op.startsWith("@")) {
    const sp = op.search(/\s/);
    opName = sp < 0 ? op.slice(1) : op.slice(1, sp);
    param = sp < 0 ? "" : op.slice(sp + 1);
  }
  rule.op = compileOperator(opName, param, where, options.readData, options.libinjection ?? true);
  rule.opParam = param;
  if (rule.op.dynamic) rule.opParamMacro = compileMacro(param);

  const acts = parseActions(actStr, where);
  // SecDefaultAction of the rule's phase applies to chain heads (transformations + disruptive).
  if (!isChainLink) {
    const ph = acts.find((a) => a.name.toLowerCase() === "phase");
    const phase = ph ? (PHASE_NAMES[ph.value!.toLowerCase()] ?? parseInt(ph.value!, 10)) : 2;
    const def = defaults.get(phase);
    if (def) {
      applyActions(
        rule,
        def.filter((a) => a.name.toLowerCase() !== "phase"),
        where,
        options,
        false,
      );
    }
  }
  applyActions(rule, acts, where, options, false);
  if (!isChainLink && rule.id === 0 && vars !== undefined) {
    throw new CrsError("BAD_RULE", `${where}: SecRule without an "id" action; add id:NNN`);
  }
  return rule;
}

function applyActions(
  rule: Rule,
  acts: ReturnType<typeof parseActions>,
  where: string,
  options: CompileOptions,
  update: boolean,
): void {
  for (const a of acts) {
    const n = a.name.toLowerCase();
    const v = a.value ?? "";
    switch (n) {
      case "id":
        rule.id = parseInt(v, 10);
        if (!(rule.id > 0)) throw new CrsError("BAD_RULE", `${where}: bad rule id "${v}"`);
        break;
      case "phase":
        rule.phase = PHASE_NAMES[v.toLowerCase()] ?? parseInt(v, 10);
        if (!(rule.phase >= 1 && rule.phase <= 5)) {
          throw new CrsError(
            "BAD_RULE",
            `${where}: bad phase "${v}"; use 1–5, request or response`,
          );
        }
        break;
      case "t": {
        const tn = v.toLowerCase();
        if (tn === "none") {
          rule.transforms = [];
          rule.tkeys = [];
          break;
        }
        const fn = TRANSFORMS[tn];
        if (!fn) {
          throw new CrsError(
            "UNKNOWN_TRANSFORMATION",
            `${where}: unknown transformation "t:${v}"; see the supported list in docs/crs.md`,
          );
        }
        rule.transforms.push(fn);
        const prev = rule.tkeys.length ? rule.tkeys[rule.tkeys.length - 1] + "," : "";
        rule.tkeys.push(prev + tn);
        break;
      }
      case "chain":
        rule.chain = rule; // sentinel: next SecRule is a link
        break;
      case "msg":
        rule.msg = compileMacro(v);
        break;
      case "logdata":
        rule.logdata = compileMacro(v);
        break;
      case "tag":
        rule.tags.push(v);
        {
          const m = /^paranoia-level\/(\d)$/.exec(v);
          if (m) rule.paranoia = Number(m[1]);
        }
        break;
      case "severity":
        rule.severity = v.toUpperCase();
        break;
      case "capture":
        rule.capture = true;
        break;
      case "multimatch":
        rule.multiMatch = true;
        break;
      case "setvar": {
        let s = v;
        let op: SetVar["op"] = "=";
        let value = "1";
        if (s.startsWith("!")) {
          op = "del";
          s = s.slice(1);
        } else {
          const eq = s.indexOf("=");
          if (eq >= 0) {
            value = s.slice(eq + 1);
            s = s.slice(0, eq);
            if (value.startsWith("+")) {
              op = "+";
              value = value.slice(1);
            } else if (value.startsWith("-")) {
              op = "-";
              value = value.slice(1);
            }
          }
        }
        const dot = s.indexOf(".");
        if (dot < 0) {
          throw new CrsError(
            "BAD_RULE",
            `${where}: setvar "${v}" needs collection.name, e.g. tx.score=+5`,
          );
        }
        rule.setvars.push({
          coll: s.slice(0, dot).toLowerCase(),
          name: compileMacro(s.slice(dot + 1)),
          op,
          value: compileMacro(value),
        });
        break;
      }
      case "ctl": {
        const eq = v.indexOf("=");
        rule.ctls.push({ kind: v.slice(0, eq).toLowerCase(), value: v.slice(eq + 1) });
        break;
      }
      case "skipafter":
        rule.skipAfter = v;
        break;
      case "skip":
        rule.skip = parseInt(v, 10);
        break;
      case "deny":
      case "block":
      case "pass":
      case "drop":
        rule.disruptive = n;
        break;
      case "allow":
        rule.disruptive = "allow";
        rule.allowScope = v.toLowerCase();
        break;
      case "redirect":
        rule.disruptive = "redirect";
        break;
      case "status":
        rule.status = parseInt(v, 10);
        break;
      case "log":
        rule.log = true;
        break;
      case "nolog":
        rule.log = false;
        break;
      case "auditlog":
      case "noauditlog":
      case "ver":
      case "rev":
      case "maturity":
      case "accuracy":
      case "initcol":
      case "setuid":
      case "setsid":
      case "expirevar":
      case "deprecatevar":
      case "sanitisearg":
      case "sanitisematched":
      case "sanitisematchedbytes":
      case "sanitiserequestheader":
      case "sanitiseresponseheader":
      case "exec":
      case "setenv":
      case "append":
      case "prepend":
      case "xmlns":
      case "proxy":
      case "pause":
      case "sanitizearg":
      case "sanitizematched":
        break;
      default:
        if (!update) {
          throw new CrsError(
            "UNKNOWN_ACTION",
            `${where}: unknown action "${a.name}"; check the spelling against the ModSecurity reference`,
          );
        }
    }
  }
  void options;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

function emptyTx(): Tx {
  return new Tx(buildRequestData("GET", "/", "HTTP/1.1", [], ""), new Map(), "0");
}

/** What one transaction recorded. */
export interface TxResult {
  /** Every rule (chain head id) that matched, in order. */
  matched: { rule: Rule; varName: string; value: string; msg: string; log: string }[];
  /** Set when a disruptive action (deny/drop/redirect) fired. */
  interrupted?: { rule: Rule; status: number };
  /** The TX collection at the end. */
  tx: Map<string, string>;
}

class Tx {
  readonly tx: Map<string, string>;
  readonly other: Map<string, string> = new Map();
  matchedVar = "";
  matchedVarName = "";
  matchedVars: VarElem[] = [];
  removedIds: ((id: number) => boolean)[] = [];
  removedTags: string[] = [];
  targetRemovals: { id?: (id: number) => boolean; tag?: string; excl: Exclusion }[] = [];
  bodyProcessor = "";
  forceBodyVariable = false;
  engineOff = false;
  detectionOnly = false;
  readonly stableElems: Map<string, VarElem> = new Map();
  constructor(
    readonly data: RequestData,
    initialTx: Map<string, string>,
    readonly uniqueId: string,
  ) {
    this.tx = new Map(initialTx);
  }

  scalar(name: string): string | undefined {
    switch (name) {
      case "MATCHED_VAR":
        return this.matchedVar;
      case "MATCHED_VAR_NAME":
        return this.matchedVarName;
      case "REQBODY_PROCESSOR":
        return this.bodyProcessor;
      case "UNIQUE_ID":
        return this.uniqueId;
      case "HIGHEST_SEVERITY":
        return "255";
    }
    return this.data.scalars.get(name);
  }

  /** The elements of a collection (TX and MATCHED_VARS are live). */
  collection(name: string): VarElem[] {
    if (name === "TX") {
      const out: VarElem[] = [];
      for (const [k, v] of this.tx) out.push({ key: k, value: v, name: `TX:${k}` });
      return out;
    }
    if (name === "MATCHED_VARS") return this.matchedVars;
    if (name === "MATCHED_VARS_NAMES") {
      return this.matchedVars.map((e) => ({
        key: e.key,
        value: e.name,
        name: `MATCHED_VARS_NAMES:${e.key}`,
      }));
    }
    return this.data.collections.get(name) ?? [];
  }

  byKey(name: string, key: string): VarElem[] {
    if (name === "TX") {
      const v = this.tx.get(key);
      return v === undefined ? [] : [{ key, value: v, name: `TX:${key}` }];
    }
    if (name === "MATCHED_VARS" || name === "MATCHED_VARS_NAMES") {
      return this.collection(name).filter((e) => e.key.toLowerCase() === key);
    }
    let idx = this.data.index.get(name);
    if (!idx) {
      idx = new Map();
      for (const e of this.data.collections.get(name) ?? []) {
        const k = e.key.toLowerCase();
        const l = idx.get(k);
        if (l) l.push(e);
        else idx.set(k, [e]);
      }
      this.data.index.set(name, idx);
    }
    return idx.get(key) ?? [];
  }

  macroValue(coll: string, key?: string): string {
    if (key === undefined) {
      if (coll === "MATCHED_VAR") return this.matchedVar;
      if (coll === "MATCHED_VAR_NAME") return this.matchedVarName;
      return this.scalar(coll) ?? "";
    }
    if (coll === "TX") return this.tx.get(key.toLowerCase()) ?? "";
    if (coll === "RULE") return "";
    if (SCALARS.has(coll)) return this.scalar(coll) ?? "";
    if (["IP", "GLOBAL", "SESSION", "USER", "RESOURCE"].includes(coll)) {
      return this.other.get(`${coll.toLowerCase()}.${key.toLowerCase()}`) ?? "";
    }
    return this.byKey(coll, key.toLowerCase())[0]?.value ?? "";
  }
}

function excluded(e: VarElem, coll: string, ex: Exclusion): boolean {
  if (ex.name !== coll) return false;
  if (ex.key === undefined && ex.re === undefined) return true;
  if (ex.key !== undefined) return e.key.toLowerCase() === ex.key;
  return ex.re!.test(e.key);
}

function resolve(t: Tx, rule: Rule): VarElem[] {
  const out: VarElem[] = [];
  const removals = t.targetRemovals;
  for (const tg of rule.targets) {
    let elems: VarElem[];
    if (SCALARS.has(tg.name)) {
      const v = t.scalar(tg.name);
      if (v === undefined) elems = [];
      else if (tg.stable) {
        // one shared element per request so transformations are cached across rules
        let e = t.stableElems.get(tg.name);
        if (!e || e.value !== v) {
          e = { key: "", value: v, name: tg.name };
          t.stableElems.set(tg.name, e);
        }
        elems = [e];
      } else elems = [{ key: "", value: v, name: tg.name }];
    } else if (tg.key !== undefined) elems = t.byKey(tg.name, tg.key);
    else if (tg.re !== undefined) elems = t.collection(tg.name).filter((e) => tg.re!.test(e.key));
    else elems = t.collection(tg.name);
    const excl = tg.excl ?? rule.exclusions;
    if ((excl.length > 0 || removals.length > 0) && elems.length > 0) {
      elems = elems.filter((e) => {
        for (const ex of excl) if (excluded(e, tg.name, ex)) return false;
        for (const r of removals) {
          if (r.id && !r.id(rule.id)) continue;
          if (r.tag !== undefined && !rule.tags.includes(r.tag)) continue;
          if (excluded(e, tg.name, r.excl)) return false;
        }
        return true;
      });
    }
    if (tg.count) {
      out.push({ key: "", value: String(elems.length), name: `&${tg.name}` });
    } else for (const e of elems) out.push(e);
  }
  return out;
}

function transformed(e: VarElem, rule: Rule): string {
  const n = rule.transforms.length;
  if (n === 0) return e.value;
  let cache = e.cache;
  if (!cache) {
    cache = new Map();
    e.cache = cache;
  }
  const full = cache.get(rule.tkeys[n - 1]);
  if (full !== undefined) return full;
  let i = n - 2;
  let v: string | undefined;
  while (i >= 0 && (v = cache.get(rule.tkeys[i])) === undefined) i--;
  if (v === undefined) v = e.value;
  for (let k = i + 1; k < n; k++) {
    v = rule.transforms[k](v);
    cache.set(rule.tkeys[k], v);
  }
  return v;
}

/**
 * Runs one rule's operator over its targets. For every matching value it sets MATCHED_VAR(_NAME)
 * and the captures, then runs the rule's setvar/ctl actions — ModSecurity runs non-disruptive
 * actions once per match, independently of the rest of a chain. Returns the matched elements.
 */
function matchRule(t: Tx, rule: Rule): VarElem[] {
  const elems = rule.targets.length === 0 ? [{ key: "", value: "", name: "" }] : resolve(t, rule);
  const param = rule.opParamMacro ? rule.opParamMacro(t) : rule.opParam;
  const hits: VarElem[] = [];
  for (const e of elems) {
    let caps: string[] | undefined;
    let v = e.value;
    if (rule.multiMatch && rule.transforms.length > 0) {
      caps = rule.op.run(v, param);
      if (rule.negated) caps = caps ? undefined : [v];
      for (let k = 0; !caps && k < rule.transforms.length; k++) {
        const nv = rule.transforms[k](v);
        if (nv === v) continue;
        v = nv;
        caps = rule.op.run(v, param);
        if (rule.negated) caps = caps ? undefined : [v];
      }
    } else {
      v = transformed(e, rule);
      caps = rule.op.run(v, param);
      if (rule.negated) caps = caps ? undefined : [v];
    }
    if (!caps) continue;
    const hit: VarElem = { key: e.key, value: v, name: e.name };
    hits.push(hit);
    t.matchedVar = v;
    t.matchedVarName = e.name;
    if (rule.capture) {
      for (let i = 0; i < 10; i++) t.tx.delete(String(i));
      for (let i = 0; i < caps.length && i < 10; i++) t.tx.set(String(i), caps[i]);
    }
    if (rule.setvars.length > 0) runSetvars(t, rule);
    if (rule.ctls.length > 0) runCtls(t, rule);
  }
  if (hits.length > 0) t.matchedVars = hits;
  return hits;
}

function runSetvars(t: Tx, rule: Rule): void {
  for (const sv of rule.setvars) {
    const key = sv.name(t).toLowerCase();
    const map = sv.coll === "tx" ? t.tx : t.other;
    const k = sv.coll === "tx" ? key : `${sv.coll}.${key}`;
    if (sv.op === "del") {
      map.delete(k);
      continue;
    }
    const val = sv.value(t);
    if (sv.op === "=") map.set(k, val);
    else {
      const cur = parseInt(map.get(k) ?? "0", 10) || 0;
      const d = parseInt(val, 10) || 0;
      map.set(k, String(sv.op === "+" ? cur + d : cur - d));
    }
  }
}

function runCtls(t: Tx, rule: Rule): void {
  for (const c of rule.ctls) {
    switch (c.kind) {
      case "ruleremovebyid":
        t.removedIds.push(idTester(c.value.split(/[\s,]+/), `${rule.file}:${rule.line}`));
        break;
      case "ruleremovebytag":
        t.removedTags.push(c.value);
        break;
      case "ruleremovetargetbyid":
      case "ruleremovetargetbytag": {
        const semi = c.value.indexOf(";");
        const who = c.value.slice(0, semi);
        const spec = parseTargets(c.value.slice(semi + 1))[0];
        if (!spec) break;
        const excl = compileTarget(
          { ...spec, exclude: true },
          `${rule.file}:${rule.line}`,
        ) as Exclusion;
        if (c.kind === "ruleremovetargetbyid") {
          t.targetRemovals.push({
            id: idTester(who.split(/[\s,]+/), `${rule.file}:${rule.line}`),
            excl,
          });
        } else t.targetRemovals.push({ tag: who, excl });
        break;
      }
      case "requestbodyprocessor":
        t.bodyProcessor = c.value.toUpperCase();
        break;
      case "forcerequestbodyvariable":
        t.forceBodyVariable = c.value.toLowerCase() === "on";
        break;
      case "ruleengine":
        if (c.value.toLowerCase() === "off") t.engineOff = true;
        else if (c.value.toLowerCase() === "detectiononly") t.detectionOnly = true;
        break;
    }
  }
}

function isRemoved(t: Tx, rule: Rule): boolean {
  if (t.removedIds.length > 0 && rule.id !== 0) {
    for (const f of t.removedIds) if (f(rule.id)) return true;
  }
  if (t.removedTags.length > 0) {
    for (const tag of t.removedTags) if (rule.tags.includes(tag)) return true;
  }
  return false;
}

/** Options of {@linkcode runTransaction}. */
export interface RunOptions {
  /** TX variables set before the first rule (e.g. paranoia level, thresholds). */
  initialTx: Map<string, string>;
  /** Stop at the first deny/drop (blocking mode) or record everything (monitor). */
  stopOnDeny: boolean;
  /** UNIQUE_ID of the transaction. */
  uniqueId: string;
}

/**
 * Evaluates the request phases (1 and 2) of a rule set against one request.
 *
 * @param rules The compiled rule set.
 * @param req The request.
 * @param options Initial TX and blocking behaviour.
 * @returns Matched rules, interruption and final TX.
 */
export function runTransaction(rules: RuleSet, req: RuleRequest, options: RunOptions): TxResult {
  const data = buildRequestData(
    req.method,
    req.target,
    req.protocol,
    req.headers,
    req.remoteAddr,
  );
  const t = new Tx(data, options.initialTx, options.uniqueId);
  const ctHeader = req.headers.find(([n]) => n.toLowerCase() === "content-type")?.[1] ?? "";
  t.bodyProcessor = bodyProcessorFor(ctHeader);
  const result: TxResult = { matched: [], tx: t.tx };
  if (rules.ruleEngine === "Off") return result;
  for (const phase of [1, 2]) {
    if (phase === 2) {
      parseBody(
        data,
        req.body ? latin1(req.body) : "",
        t.bodyProcessor,
        ctHeader,
        t.forceBodyVariable,
      );
    }
    const stop = runPhase(t, rules.phases[phase], result, options.stopOnDeny && !t.detectionOnly);
    if (stop || t.engineOff) break;
  }
  return result;
}

function runPhase(t: Tx, list: Entry[], result: TxResult, stopOnDeny: boolean): boolean {
  let skipTo: string | undefined;
  let skipN = 0;
  for (let i = 0; i < list.length; i++) {
    const entry = list[i];
    if (entry.marker !== undefined) {
      if (skipTo !== undefined && entry.marker === skipTo) skipTo = undefined;
      continue;
    }
    if (skipTo !== undefined) continue;
    if (skipN > 0) {
      skipN--;
      continue;
    }
    const rule = entry.rule;
    if (isRemoved(t, rule)) continue;
    // Evaluate the chain.
    let link: Rule | undefined = rule;
    let matchedAll = true;
    while (link) {
      if (matchRule(t, link).length === 0) {
        matchedAll = false;
        break;
      }
      link = link.chain;
    }
    if (!matchedAll) continue;
    if (rule.id !== 0) {
      let log = "";
      let msg = "";
      if (rule.log) {
        msg = rule.msg ? rule.msg(t) : "";
        const data = rule.logdata ? rule.logdata(t) : "";
        log = `[id "${rule.id}"] [msg "${msg}"] [data "${data}"]`;
      }
      result.matched.push({ rule, varName: t.matchedVarName, value: t.matchedVar, msg, log });
    }
    if (
      rule.disruptive === "deny" || rule.disruptive === "drop" || rule.disruptive === "redirect"
    ) {
      if (!result.interrupted) result.interrupted = { rule, status: rule.status ?? 403 };
      if (stopOnDeny) return true;
    } else if (rule.disruptive === "allow") {
      if (stopOnDeny) return rule.allowScope !== "phase";
    }
    if (rule.skipAfter !== undefined) skipTo = rule.skipAfter;
    else if (rule.skip > 0) skipN = rule.skip;
    if (t.engineOff) return true;
  }
  return false;
}

/** Maps a rule to the proxy's finding shape. */
export function toRuleMatch(m: TxResult["matched"][number]): RuleMatch {
  const r = m.rule;
  const sev = (r.severity ?? "NOTICE").toUpperCase();
  const severity: RuleMatch["severity"] =
    sev === "CRITICAL" || sev === "EMERGENCY" || sev === "ALERT" || sev === "0" || sev === "1" ||
      sev === "2"
      ? "critical"
      : sev === "ERROR" || sev === "3"
      ? "error"
      : sev === "WARNING" || sev === "4"
      ? "warning"
      : "notice";
  const excerpt = m.value.length > 80 ? m.value.slice(0, 80) + "…" : m.value;
  return {
    ruleId: String(r.id),
    category: categoryOf(r),
    severity,
    message: m.msg,
    matched: m.varName ? `${m.varName}: ${excerpt}` : undefined,
    paranoia: r.paranoia,
  };
}

function categoryOf(r: Rule): string {
  const map: [RegExp, string][] = [
    [/^attack-sqli$/, "sqli"],
    [/^attack-xss$/, "xss"],
    [/^attack-lfi$/, "lfi"],
    [/^attack-rfi$/, "rfi"],
    [/^attack-rce$/, "rce"],
    [/^attack-injection-php$/, "php"],
    [/^attack-injection-java$/, "java"],
    [/^attack-reputation-scanner$/, "scanner"],
    [/^attack-session-fixation$/, "session"],
    [/^attack-(protocol|multipart-header)$/, "protocol"],
    [/^attack-generic$/, "generic"],
  ];
  for (const tag of r.tags) for (const [re, c] of map) if (re.test(tag)) return c;
  if (r.tags.includes("anomaly-evaluation")) return "anomaly";
  return "protocol";
}

/** Evaluates to a {@linkcode RuleVerdict}. */
export function verdictOf(res: TxResult, block: boolean): RuleVerdict {
  const matches = res.matched
    .filter((m) => m.rule.log && m.rule.id !== 0)
    .map((m) => toRuleMatch(m));
  const score = parseInt(
    res.tx.get("blocking_inbound_anomaly_score") ?? res.tx.get("anomaly_score") ?? "0",
    10,
  ) || 0;
  if (block && res.interrupted) {
    return { action: "block", status: res.interrupted.status, matches, score };
  }
  return { action: "allow", matches, score };
}
