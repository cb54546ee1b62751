/**
 * The SecLang rule engine: compiles directives (see `parser.ts`) into rules once, then
 * evaluates requests against them with ModSecurity semantics — phases, chains, skipAfter,
 * setvar/TX, ctl, captures, multiMatch and the CRS anomaly scoring that follows from them.
 *
 * It must never touch the file system or the network: files arrive through `readFile`.
 *
 * @module
 */
import type {
  ResponseBodyAccess,
  RuleMatch,
  RuleRequest,
  RuleResponse,
  RuleVerdict,
} from "../rule_engine.ts";
import { CrsError } from "./_errors.ts";
import { compileOperator, type Operator } from "./_operators.ts";
import { hasKeyPrefix, keyPrefixOf } from "./_keys.ts";
import { compileRegex } from "./_regex.ts";
import { buildGroupScanner, type GroupScanner, requiredLiterals } from "./_prefilter.ts";
import {
  addResponseHead,
  bodyProcessorFor,
  buildRequestData,
  emptyRequestData,
  JSON_DEPTH_LIMIT,
  latin1,
  parseBody,
  type RequestData,
  type ValueCache,
  valueCacheOf,
  type VarElem,
} from "./_request.ts";
import { IDENTITY_UNLESS, type Transform, TRANSFORMS } from "./_transforms.ts";
import { type Directive, parseActions, parseTargets, type TargetSpec } from "./parser.ts";

/** A compiled variable reference. */
interface Target {
  name: string;
  /** Lowercased literal selector. */
  key?: string;
  re?: RegExp;
  /** With `re`: the lowercased literal when `re` is `/^literal/i` (see `keyPrefixOf`). */
  prefix?: string;
  count: boolean;
  /** The rule's exclusions that concern this variable (filled when compilation ends). */
  excl?: Exclusion[];
  /** How it is read (filled when compilation ends): scalar, one key, regex keys, or all keys. */
  kind?: TargetKind;
  /** Slot of the per-request target cache (filled when compilation ends; -1: live variable). */
  slot?: number;
}

const enum TargetKind {
  Scalar,
  Key,
  Regex,
  All,
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
  /** The variable's key in its map (lowercased, `coll.` prefixed outside TX) when constant. */
  fixedKey?: string;
  op: "=" | "+" | "-" | "del";
  value: Macro;
}

interface Ctl {
  kind: string;
  value: string;
  /** ruleRemoveTarget…: the compiled removal, once first used. */
  removal?: TargetRemoval;
}

/** A runtime target removal (`ctl:ruleRemoveTargetById=…;ARGS:x`). */
interface TargetRemoval {
  id?: (id: number) => boolean;
  tag?: string;
  excl: Exclusion;
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
  /** Interned ids of `tkeys` (slots of an element's transformation cache); see `finishRules`. */
  tids: number[];
  /** Id of the whole transformation chain (0: none). */
  tlast: number;
  /**
   * Per chain prefix length: the characters (see `charMask`) without which that prefix leaves a
   * value unchanged; null when it may change any value.
   */
  tmasks: (number[] | null)[];
  /** Slot of the per-request cache of resolved variables; -1 when they are live (TX, MATCHED_*). */
  sig: number;
  /** Slot of the per-request cache of the union of its values' scans (same targets and chain). */
  orSlot: number;
  /** Literal group of the operator in the scanner result: word and bit (0: no prefilter). */
  pfWord: number;
  pfBit: number;
  /** The group is the operator itself (`@pm`): a set bit is a match, a clear bit none. */
  pfExact: boolean;
  /** A clear bit in the union of its values' scans means it cannot match (see `mayMatch`). */
  pfSkip: boolean;
  /** A `TX:key` rule without transformations, capture or prefilter (see `matchTx`). */
  txFast: boolean;
  /** For skipAfter: index of the target marker in the rule's phase list. */
  jump: number;
  /** Names of the variables it reads (filled when compilation ends). */
  targetNames: string[];
  /** The only target is `TX:key` (no count, no exclusion): the key, and the element name. */
  txKey?: string;
  txName?: string;
  /** With `txKey`: the target is `&TX:key` (the number of such variables, 0 or 1). */
  txCount: boolean;
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
  /**
   * False turns the literal prefilter off, so every operator runs on every value (slower, same
   * results; for tests and measurements).
   */
  prefilter?: boolean;
}

/** The compiled rule set. */
export interface RuleSet {
  /** Rules and markers per phase (1–5), in configuration order. */
  phases: Entry[][];
  /** Number of rules (chains count once). */
  ruleCount: number;
  /** SecRuleEngine setting. */
  ruleEngine: "On" | "Off" | "DetectionOnly";
  /**
   * Response bodies the rules see (SecResponseBodyAccess, SecResponseBodyMimeType,
   * SecResponseBodyLimit; ModSecurity's recommended settings unless the directives say
   * otherwise), or null when SecResponseBodyAccess is Off.
   */
  responseBody: ResponseBodyAccess | null;
  /** Deepest nesting of a JSON request body (SecRequestBodyJsonDepthLimit, default 512). */
  jsonDepthLimit: number;
  /** Paranoia level (from its `paranoia-level/N` tag) of every rule id, kept or pruned. */
  paranoiaById: Map<number, number>;
  /** Numbers of slots of the per-request caches. */
  sizes: CacheSizes;
  /** Buffers reused by its transactions. */
  scratch: Scratch;
  /** Finds which operators' literal groups occur in a value (see `_prefilter.ts`). */
  scanner: GroupScanner;
}

const PHASE_NAMES: Record<string, number> = { request: 2, response: 4, logging: 5 };

/** SecResponseBodyMimeType of ModSecurity's modsecurity.conf-recommended. */
const RECOMMENDED_RESPONSE_TYPES = ["text/plain", "text/html", "text/xml"];

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
  "RESPONSE_CONTENT_TYPE",
  "RESPONSE_CONTENT_LENGTH",
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
  const parts: (string | Macro)[] = [];
  const re = /%\{([^}]+)\}/g;
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    if (m.index > last) parts.push(s.slice(last, m.index));
    const ref = m[1];
    const dot = ref.indexOf(".");
    parts.push(
      dot < 0
        ? macroRef(ref.toUpperCase())
        : macroRef(ref.slice(0, dot).toUpperCase(), ref.slice(dot + 1)),
    );
    last = m.index + m[0].length;
  }
  if (last < s.length) parts.push(s.slice(last));
  if (parts.length === 1 && typeof parts[0] !== "string") return parts[0];
  return (t) => {
    let out = "";
    for (const p of parts) out += typeof p === "string" ? p : p(t);
    return out;
  };
}

function macroRef(coll: string, key?: string): Macro {
  if (key !== undefined && coll === "TX") {
    const k = key.toLowerCase();
    return (t) => t.tx.get(k) ?? "";
  }
  return (t) => t.macroValue(coll, key);
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
  return {
    name: spec.name,
    key,
    re,
    prefix: re === undefined ? undefined : keyPrefixOf(re),
    count: spec.count,
    excl: undefined,
    kind: undefined,
    slot: undefined,
  };
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
  // ModSecurity's modsecurity.conf-recommended, which CRS's response rules assume.
  let responseBodyAccess = true;
  let mediaTypes = [...RECOMMENDED_RESPONSE_TYPES];
  let mediaTypesSet = false;
  let responseBodyLimit = 512 * 1024;
  let jsonDepthLimit = JSON_DEPTH_LIMIT;
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
    /** The directive's one argument as a positive integer (`unit` names it in the error). */
    const positive = (unit: string): number => {
      need(1);
      const n = Number(d.args[0]);
      if (!Number.isInteger(n) || n <= 0) {
        throw new CrsError(
          "BAD_RULE",
          `${where}: ${d.name} takes a positive number of ${unit}, got "${d.args[0]}"`,
        );
      }
      return n;
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
      case "secresponsebodyaccess":
        need(1);
        if (!/^(on|off)$/i.test(d.args[0])) {
          throw new CrsError("BAD_RULE", `${where}: SecResponseBodyAccess takes On or Off`);
        }
        responseBodyAccess = d.args[0].toLowerCase() === "on";
        break;
      case "secresponsebodymimetype": {
        need(1);
        // The first one replaces the recommended list; later ones add to it.
        const types = d.args[0].toLowerCase().split(/\s+/).filter((x) => x !== "");
        mediaTypes = mediaTypesSet ? [...mediaTypes, ...types] : types;
        mediaTypesSet = true;
        break;
      }
      case "secresponsebodymimetypesclear":
        mediaTypes = [];
        mediaTypesSet = true;
        break;
      case "secresponsebodylimit":
        responseBodyLimit = positive("bytes");
        break;
      case "secrequestbodyjsondepthlimit":
        jsonDepthLimit = positive("levels");
        break;
      case "seccomponentsignature":
      case "secrequestbodyaccess":
      case "secrequestbodylimit":
      case "secrequestbodynofileslimit":
      case "secrequestbodylimitaction":
      case "secrequestbodyinmemorylimit":
      case "secresponsebodylimitaction":
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
  const phases: Entry[][] = [[], [], [], [], [], []];
  let ruleCount = 0;
  for (const e of entries) {
    if (e.marker !== undefined) { for (let p = 1; p <= 5; p++) phases[p].push(e); }
    else {
      phases[e.rule.phase].push(e);
      ruleCount++;
    }
  }
  return {
    phases,
    ruleCount,
    ruleEngine,
    responseBody: responseBodyAccess ? { mediaTypes, maxBytes: responseBodyLimit } : null,
    jsonDepthLimit,
    paranoiaById,
    ...finishRules(entries, phases, options.prefilter ?? true),
  };
}

/** Literals of the prefilter are cut to this many bytes (see finishRules). */
const PREFILTER_CHARS = 4;

/** Variables whose values change while a phase runs: never cached. */
const LIVE = new Set([
  "TX",
  "MATCHED_VAR",
  "MATCHED_VAR_NAME",
  "MATCHED_VARS",
  "MATCHED_VARS_NAMES",
  "REQBODY_PROCESSOR",
]);

function regexKey(re: RegExp | undefined): string {
  return re ? `${re.source}/${re.flags}` : "";
}

/**
 * Precomputes what evaluation needs once compilation is over: per-target exclusions and access
 * kind, transformation-cache ids, resolved-variable cache slots (rules with the same targets and
 * exclusions share one), the literal prefilter groups and their scanner, and skipAfter jumps.
 */
function finishRules(
  entries: Entry[],
  phases: Entry[][],
  prefilter: boolean,
): { sizes: CacheSizes; scanner: GroupScanner; scratch: Scratch } {
  const tidOf = new Map<string, number>();
  const sigOf = new Map<string, number>();
  const slotOf = new Map<string, number>();
  const orSlotOf = new Map<string, number>();
  const groupOf = new Map<string, number>();
  const groups: string[][] = [];
  for (const e of entries) {
    for (let r: Rule | undefined = e.rule; r; r = r.chain) {
      r.tids = r.tkeys.map((k) => {
        let id = tidOf.get(k);
        if (id === undefined) {
          id = tidOf.size + 1;
          tidOf.set(k, id);
        }
        return id;
      });
      r.tlast = r.tids.length === 0 ? 0 : r.tids[r.tids.length - 1];
      const tnames = r.tkeys.length === 0 ? [] : r.tkeys[r.tkeys.length - 1].split(",");
      r.tmasks = [null];
      let acc: number[] | null = [0, 0, 0, 0, 0];
      for (const name of tnames) {
        const unless = IDENTITY_UNLESS[name];
        acc = acc === null || unless === undefined
          ? null
          : acc.map((w, i) => w | charMask(unless)[i]);
        r.tmasks.push(acc);
      }
      r.targetNames = [...new Set(r.targets.map((tg) => tg.name))];
      let live = r.targets.length === 0;
      const parts: string[] = [];
      for (const tg of r.targets) {
        tg.excl = r.exclusions.filter((x) => x.name === tg.name);
        tg.kind = SCALARS.has(tg.name)
          ? TargetKind.Scalar
          : tg.key !== undefined
          ? TargetKind.Key
          : tg.re !== undefined
          ? TargetKind.Regex
          : TargetKind.All;
        const part = [
          tg.count ? "&" : "",
          tg.name,
          tg.key ?? "",
          regexKey(tg.re),
          tg.excl.map((x) => `${x.name}\u0002${x.key ?? ""}\u0002${regexKey(x.re)}`).join("\u0003"),
        ].join("\u0001");
        parts.push(part);
        if (LIVE.has(tg.name)) {
          live = true;
          tg.slot = -1;
        } else {
          let slot = slotOf.get(part);
          if (slot === undefined) {
            slot = slotOf.size;
            slotOf.set(part, slot);
          }
          tg.slot = slot;
        }
      }
      const t0 = r.targets[0];
      if (
        r.targets.length === 1 && t0.name === "TX" && t0.kind === TargetKind.Key &&
        t0.excl!.length === 0
      ) {
        r.txKey = t0.key;
        r.txName = t0.count ? "&TX" : `TX:${t0.key}`;
        r.txCount = t0.count;
      }
      if (live) r.sig = -1;
      else {
        const key = parts.join("\u0004");
        let id = sigOf.get(key);
        if (id === undefined) {
          id = sigOf.size;
          sigOf.set(key, id);
        }
        r.sig = id;
        const ok = `${id}:${r.tlast}`;
        let os = orSlotOf.get(ok);
        if (os === undefined) {
          os = orSlotOf.size;
          orSlotOf.set(ok, os);
        }
        r.orSlot = os;
      }
      r.pfWord = 0;
      r.pfBit = 0;
      r.pfExact = false;
      if (r.phase <= 4 && prefilter) {
        let lits: string[] | undefined;
        if (r.op.phrases) {
          lits = r.op.phrases;
          r.pfExact = true;
        } else if (r.op.re) lits = requiredLiterals(r.op.re);
        if (lits !== undefined) {
          // Any part of a literal that must occur must occur too: keeping only the first
          // PREFILTER_CHARS bytes keeps the scanner's automaton small (and in cache).
          const cut = new Set<string>();
          for (const l of lits) {
            if (l === "") continue;
            if (l.length > PREFILTER_CHARS) r.pfExact = false;
            cut.add(l.slice(0, PREFILTER_CHARS));
          }
          lits = [...cut];
          const key = (r.pfExact ? "E" : "N") + lits.join("\u0000");
          let g = groupOf.get(key);
          if (g === undefined) {
            g = groups.length;
            groups.push(lits);
            groupOf.set(key, g);
          }
          r.pfWord = (g / 30) | 0;
          r.pfBit = 1 << (g % 30);
        }
      }
      r.pfSkip = r.sig >= 0 && r.pfBit !== 0 && !r.negated && !r.multiMatch;
      r.txFast = r.txKey !== undefined && !r.capture && !r.multiMatch &&
        r.transforms.length === 0 && r.pfBit === 0;
    }
  }
  for (const list of phases) {
    for (let i = 0; i < list.length; i++) {
      const r = list[i].rule;
      if (!r || r.skipAfter === undefined) continue;
      let j = i + 1;
      while (j < list.length && list[j].marker !== r.skipAfter) j++;
      r.jump = j;
    }
  }
  const sizes = {
    sigs: sigOf.size,
    targets: slotOf.size,
    ors: orSlotOf.size,
  };
  const scanner = buildGroupScanner(groups);
  return { sizes, scanner, scratch: newScratch(sizes, scanner.words) };
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
  // Every field is present from the start (undefined when unset), so that all rules share one
  // object shape and property reads in the evaluation loop stay monomorphic.
  const rule: Rule = {
    id: 0,
    phase: 2,
    file: d.file,
    line: d.line,
    targets: [],
    exclusions: [],
    op: undefined as unknown as Operator,
    opParam: "",
    opParamMacro: undefined,
    negated: false,
    transforms: [],
    tkeys: [],
    tids: [],
    tlast: 0,
    tmasks: [],
    sig: -1,
    orSlot: -1,
    pfWord: 0,
    pfBit: 0,
    pfExact: false,
    pfSkip: false,
    txFast: false,
    jump: 0,
    targetNames: [],
    txKey: undefined,
    txName: undefined,
    txCount: false,
    multiMatch: false,
    capture: false,
    chain: undefined,
    setvars: [],
    ctls: [],
    skipAfter: undefined,
    skip: 0,
    msg: undefined,
    logdata: undefined,
    severity: undefined,
    tags: [],
    disruptive: undefined,
    allowScope: undefined,
    status: undefined,
    log: true,
    paranoia: undefined,
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
        const coll = s.slice(0, dot).toLowerCase();
        const name = s.slice(dot + 1);
        rule.setvars.push({
          coll,
          name: compileMacro(name),
          fixedKey: name.includes("%{")
            ? undefined
            : coll === "tx"
            ? name.toLowerCase()
            : `${coll}.${name.toLowerCase()}`,
          op,
          value: compileMacro(value),
        });
        break;
      }
      case "ctl": {
        const eq = v.indexOf("=");
        const kind = v.slice(0, eq).toLowerCase();
        const value = v.slice(eq + 1);
        if (
          (kind === "requestbodyaccess" || kind === "responsebodyaccess") &&
          !/^(on|off)$/i.test(value)
        ) {
          throw new CrsError(
            "BAD_RULE",
            `${where}: ctl:${v.slice(0, eq)} takes On or Off, got "${value}"`,
          );
        }
        rule.ctls.push({ kind, value });
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

const CAPTURE_KEYS = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
const NO_GROUPS: GroupScanner = { words: 0, scan: () => [] };

/** Numbers of per-request cache slots (see finishRules). */
interface CacheSizes {
  sigs: number;
  targets: number;
  ors: number;
}
const NO_SIZES: CacheSizes = { sigs: 0, targets: 0, ors: 0 };

/**
 * Buffers of a rule set reused by its transactions (evaluation is synchronous, one transaction
 * at a time): unions of scans per `Rule.orSlot`, each valid while its
 * generation stamp equals the transaction's.
 */
interface Scratch {
  ors: Int32Array;
  orGen: Int32Array;
  gen: number;
}

function newScratch(sizes: CacheSizes, words: number): Scratch {
  return {
    ors: new Int32Array(sizes.ors * words),
    orGen: new Int32Array(sizes.ors),
    gen: 0,
  };
}

function nextGen(sc: Scratch): number {
  if (sc.gen >= 0x3fffffff) {
    sc.orGen.fill(0);
    sc.gen = 0;
  }
  return ++sc.gen;
}

function elem(key: string, value: string, name: string): VarElem {
  return { key, value, name, vc: undefined };
}

class Tx {
  readonly tx: Map<string, string>;
  readonly other: Map<string, string> = new Map();
  matchedVar = "";
  matchedVarName = "";
  matchedVars: VarElem[] = [];
  removedIds: ((id: number) => boolean)[] = [];
  removedTags: string[] = [];
  targetRemovals: TargetRemoval[] = [];
  /** Some target removal concerns TX (so the TX fast path of matchRule is off). */
  txTargetRemoved = false;
  bodyProcessor = "";
  forceBodyVariable = false;
  engineOff = false;
  detectionOnly = false;
  /** ctl:requestBodyAccess / ctl:responseBodyAccess (Off: the body is not inspected). */
  requestBodyAccess = true;
  responseBodyAccess = true;
  /** A plain `allow` (not `allow:phase` or `allow:request`) fired: no later phase but logging. */
  allowedAll = false;
  /** Resolved variables per target signature (`Rule.sig`); reset when the body is parsed. */
  resolved: (VarElem[] | undefined)[];
  /** The same for rules that runtime target removals concern: by slot and removal set. */
  resolvedMasked: Map<number, VarElem[]> = new Map();
  /** Resolved variables per target (`Target.slot`); reset when the body is parsed. */
  targets: (Resolved | undefined)[];
  /** Scan unions of the rule set's scratch that are valid for this transaction and phase. */
  gen: number;
  /** One element per scalar, so transformations and scans are cached across rules. */
  readonly scalarElems: Map<string, VarElem> = new Map();
  /** Transformation and scan caches by string. */
  readonly values: Map<string, ValueCache> = new Map();
  /** The response's variables (`RESPONSE_*`), once its head is in. */
  response: RequestData | null = null;
  #data: RequestData | null;
  /** How to build the request's variables again, once release() dropped them. */
  #recipe: DataRecipe | null = null;
  constructor(
    data: RequestData,
    initialTx: Map<string, string>,
    readonly uniqueId: string,
    readonly scanner: GroupScanner = NO_GROUPS,
    readonly sizes: CacheSizes = NO_SIZES,
    readonly scratch: Scratch = newScratch(NO_SIZES, 0),
  ) {
    this.#data = data;
    this.tx = new Map(initialTx);
    this.resolved = new Array(sizes.sigs);
    this.targets = new Array(sizes.targets);
    this.gen = nextGen(scratch);
  }

  /** The request's variables (built again from the recipe after release(), on first use). */
  get data(): RequestData {
    return this.#data ??= buildData(this.#recipe!);
  }

  /** Where a variable lives: the response's (`RESPONSE_*`, once it is in), else the request's. */
  #source(name: string): RequestData {
    return this.response !== null && name.startsWith("RESPONSE_") ? this.response : this.data;
  }

  /**
   * Ends the request phases of a transaction whose response phases may follow: keeps the
   * state they need (TX, flags, removals) and drops the request's variables and every cache
   * built from them, which the recipe can build again, identically, if a later rule reads one.
   * Keeping them costs more than rebuilding: a retained transaction holds its caches across
   * garbage collections.
   */
  release(recipe: DataRecipe): void {
    this.#recipe = recipe;
    this.#data = null;
    this.values.clear();
    this.scalarElems.clear();
    this.resolved = [];
    this.targets = [];
    this.resolvedMasked = new Map();
  }

  /** A one-element list for a value that is read once (matchRule copies what it keeps). */
  scratchOne(key: string, value: string, name: string): VarElem[] {
    const e = this.#scratch[0];
    e.key = key;
    e.value = value;
    e.name = name;
    e.vc = undefined;
    return this.#scratch;
  }
  readonly #scratch: VarElem[] = [elem("", "", "")];

  /** Forgets what depends on the variables (the body has been parsed). */
  resetVariables(): void {
    this.resolved = new Array(this.sizes.sigs);
    this.resolvedMasked = new Map();
    this.targets = new Array(this.sizes.targets);
    this.gen = nextGen(this.scratch);
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
    return this.#source(name).scalars.get(name);
  }

  /** The elements of a collection (TX and MATCHED_VARS are live). */
  collection(name: string): VarElem[] {
    if (name === "TX") {
      const out: VarElem[] = [];
      for (const [k, v] of this.tx) out.push(elem(k, v, `TX:${k}`));
      return out;
    }
    if (name === "MATCHED_VARS") return this.matchedVars;
    if (name === "MATCHED_VARS_NAMES") {
      return this.matchedVars.map((e) => elem(e.key, e.name, `MATCHED_VARS_NAMES:${e.key}`));
    }
    return this.#source(name).collections.get(name) ?? [];
  }

  byKey(name: string, key: string): VarElem[] {
    if (name === "TX") {
      const v = this.tx.get(key);
      return v === undefined ? [] : [elem(key, v, `TX:${key}`)];
    }
    if (name === "MATCHED_VARS" || name === "MATCHED_VARS_NAMES") {
      return this.collection(name).filter((e) => e.key.toLowerCase() === key);
    }
    const data = this.#source(name);
    let idx = data.index.get(name);
    if (!idx) {
      idx = new Map();
      for (const e of data.collections.get(name) ?? []) {
        const k = e.key.toLowerCase();
        const l = idx.get(k);
        if (l) l.push(e);
        else idx.set(k, [e]);
      }
      data.index.set(name, idx);
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

/** A target's resolved variables. */
interface Resolved {
  elems: VarElem[];
}

/**
 * Which runtime target removals (ctl:ruleRemoveTarget…) concern the rule, as a bit set; -1 when
 * there are too many to say.
 */
function removalMask(t: Tx, rule: Rule): number {
  const list = t.targetRemovals;
  if (list.length > 30) return -1;
  let mask = 0;
  for (let i = 0; i < list.length; i++) {
    const r = list[i];
    if (!rule.targetNames.includes(r.excl.name)) continue; // removes nothing from this rule
    if (r.id && !r.id(rule.id)) continue;
    if (r.tag !== undefined && !rule.tags.includes(r.tag)) continue;
    mask |= 1 << i;
  }
  return mask;
}

/**
 * The rule's variables. Rules with the same targets and exclusions (and the same runtime target
 * removals concerning them) share one resolved list per request phase; their elements are the
 * same objects, so transformations and scans are cached too.
 */
function resolve(t: Tx, rule: Rule, mask: number): VarElem[] {
  const sig = rule.sig;
  if (sig < 0 || mask < 0) return resolveNow(t, rule);
  if (mask === 0) {
    let r = t.resolved[sig];
    if (r === undefined) {
      const targets = rule.targets;
      if (targets.length === 1) r = targetEntry(t, rule, targets[0]).elems;
      else {
        r = [];
        for (const tg of targets) for (const e of targetEntry(t, rule, tg).elems) r.push(e);
      }
      t.resolved[sig] = r;
    }
    return r;
  }
  const key = sig * 1073741824 + mask;
  let r = t.resolvedMasked.get(key);
  if (r === undefined) {
    r = resolveNow(t, rule);
    t.resolvedMasked.set(key, r);
  }
  return r;
}

/** One target's elements (no runtime removal concerning the rule), cached per request phase. */
function targetEntry(t: Tx, rule: Rule, tg: Target): Resolved {
  let r = t.targets[tg.slot!];
  if (r === undefined) {
    r = { elems: targetNow(t, rule, tg, undefined) };
    t.targets[tg.slot!] = r;
  }
  return r;
}

/**
 * Whether one of the rule's values may hold a literal its operator needs; false means no value
 * can match. The union of the scans of a target's values is cached per transformation chain.
 */
function mayMatch(t: Tx, rule: Rule): boolean {
  const sc = t.scratch;
  const slot = rule.orSlot;
  const ors = sc.ors;
  const words = t.scanner.words;
  const base = slot * words;
  if (sc.orGen[slot] !== t.gen) {
    // Runtime target removals only take values away: the list without them covers them.
    const elems = resolve(t, rule, 0);
    const n = rule.tids.length;
    for (let k = 5; k < words; k++) ors[base + k] = 0;
    let w0 = 0, w1 = 0, w2 = 0, w3 = 0, w4 = 0;
    for (let i = 0; i < elems.length; i++) {
      const sat = satOf(t, transformedInfo(t, elems[i], rule, n));
      w0 |= sat[0];
      if (words > 1) {
        w1 |= sat[1];
        if (words > 2) {
          w2 |= sat[2];
          if (words > 3) {
            w3 |= sat[3];
            if (words > 4) {
              w4 |= sat[4];
              for (let k = 5; k < words; k++) ors[base + k] |= sat[k];
            }
          }
        }
      }
    }
    ors[base] = w0;
    if (words > 1) ors[base + 1] = w1;
    if (words > 2) ors[base + 2] = w2;
    if (words > 3) ors[base + 3] = w3;
    if (words > 4) ors[base + 4] = w4;
    sc.orGen[slot] = t.gen;
  }
  return (ors[base + rule.pfWord] & rule.pfBit) !== 0;
}

function resolveNow(t: Tx, rule: Rule): VarElem[] {
  // The runtime target removals that concern this rule (usually none).
  let removals: TargetRemoval[] | undefined;
  for (const r of t.targetRemovals) {
    if (r.id && !r.id(rule.id)) continue;
    if (r.tag !== undefined && !rule.tags.includes(r.tag)) continue;
    if (removals === undefined) removals = [];
    removals.push(r);
  }
  const out: VarElem[] = [];
  for (const tg of rule.targets) for (const e of targetNow(t, rule, tg, removals)) out.push(e);
  return out;
}

/** One target's elements after exclusions and the given runtime removals (or its count). */
function targetNow(
  t: Tx,
  rule: Rule,
  tg: Target,
  removals: TargetRemoval[] | undefined,
): VarElem[] {
  let elems: VarElem[];
  switch (tg.kind) {
    case TargetKind.Scalar: {
      const v = t.scalar(tg.name);
      if (v === undefined) elems = [];
      else if (LIVE.has(tg.name)) elems = [elem("", v, tg.name)];
      else {
        // one shared element per value so transformations are cached across rules
        let e = t.scalarElems.get(tg.name);
        if (!e || e.value !== v) {
          e = elem("", v, tg.name);
          e.vc = valueInfo(t, v); // shared with equal strings (REQUEST_URI and REQUEST_URI_RAW)
          t.scalarElems.set(tg.name, e);
        }
        elems = [e];
      }
      break;
    }
    case TargetKind.Key:
      elems = t.byKey(tg.name, tg.key!);
      break;
    case TargetKind.Regex:
      if (tg.name === "TX") {
        const out: VarElem[] = [];
        const re = tg.re!;
        const prefix = tg.prefix;
        if (prefix !== undefined) {
          t.tx.forEach((v, k) => {
            if (hasKeyPrefix(k, prefix)) out.push(elem(k, v, `TX:${k}`));
          });
        } else {
          t.tx.forEach((v, k) => {
            if (re.test(k)) out.push(elem(k, v, `TX:${k}`));
          });
        }
        elems = out;
      } else if (tg.prefix !== undefined) {
        const prefix = tg.prefix;
        elems = t.collection(tg.name).filter((e) => hasKeyPrefix(e.key, prefix));
      } else elems = t.collection(tg.name).filter((e) => tg.re!.test(e.key));
      break;
    default:
      elems = t.collection(tg.name);
  }
  const excl = tg.excl ?? rule.exclusions;
  if ((excl.length > 0 || removals !== undefined) && elems.length > 0) {
    elems = elems.filter((e) => {
      for (const ex of excl) if (excluded(e, tg.name, ex)) return false;
      if (removals !== undefined) {
        for (const r of removals) if (excluded(e, tg.name, r.excl)) return false;
      }
      return true;
    });
  }
  if (tg.count) return [elem("", String(elems.length), `&${tg.name}`)];
  return elems;
}

/**
 * Which characters occur in `s`: bits of ASCII 0–127 in 26-bit words 0–4 (character `c` is bit
 * `c % 26` of word `c / 26`); word 4 also has bit 24 for a byte 0x80–0xFF and bit 25 for a wider
 * character. (26-bit words stay small integers, so the arrays keep one element kind.)
 */
function charMask(s: string): number[] {
  let a = 0, b = 0, c = 0, d = 0, h = 0;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch < 52) {
      if (ch < 26) a |= 1 << ch;
      else b |= 1 << (ch - 26);
    } else if (ch < 104) {
      if (ch < 78) c |= 1 << (ch - 52);
      else d |= 1 << (ch - 78);
    } else if (ch < 128) h |= 1 << (ch - 104);
    else h |= ch < 256 ? 1 << 24 : 1 << 25;
  }
  return [a, b, c, d, h];
}

/** The per-request facts about a string (raw or transformed), shared by equal strings. */
function valueInfo(t: Tx, s: string): ValueCache {
  let c = t.values.get(s);
  if (c === undefined) {
    c = { value: s, mask: undefined, sat: undefined, tv: undefined };
    t.values.set(s, c);
  }
  return c;
}

/**
 * The element's value after the first `n` of the rule's transformations, as a shared
 * {@linkcode ValueCache}. Results are cached on the raw value per chain prefix; a chain that
 * acts on none of the characters of the value is skipped outright.
 */
function transformedInfo(t: Tx, e: VarElem, rule: Rule, n: number): ValueCache {
  let raw = e.vc;
  if (raw === undefined) e.vc = raw = valueInfo(t, e.value);
  if (n === 0) return raw;
  const tids = rule.tids;
  let tv = raw.tv;
  if (tv === undefined) raw.tv = tv = [];
  else {
    // the whole prefix is usually cached already (another rule, or the scan of this one)
    const hit = tv[tids[n - 1]];
    if (hit !== undefined) return hit;
  }
  const m = rule.tmasks[n];
  if (m !== null) {
    let vm = raw.mask;
    if (vm === undefined) raw.mask = vm = charMask(raw.value);
    // none of the characters these transformations act on: the value is unchanged (and so is
    // every shorter prefix; only this one is recorded)
    if (
      ((vm[0] & m[0]) | (vm[1] & m[1]) | (vm[2] & m[2]) | (vm[3] & m[3]) | (vm[4] & m[4])) === 0
    ) {
      tv[tids[n - 1]] = raw;
      return raw;
    }
  }
  // the longest cached prefix
  let from = raw;
  let done = 0;
  for (let k = n - 1; k > 0; k--) {
    const c = tv[tids[k - 1]];
    if (c !== undefined) {
      from = c;
      done = k;
      break;
    }
  }
  for (let k = done; k < n; k++) {
    const v = rule.transforms[k](from.value);
    // A new string gets its own caches (equal results of different values are rare).
    if (v !== from.value) from = valueCacheOf(v);
    tv[tids[k]] = from;
  }
  return from;
}

/** The scanner result of a string (cached). */
function satOf(t: Tx, c: ValueCache): number[] {
  let sat = c.sat;
  if (sat === undefined) c.sat = sat = t.scanner.scan(c.value);
  return sat;
}

const MATCHED: string[] = [];

/** Runs the operator on one value: its captures (only built for `capture` rules) or undefined. */
function runOp(t: Tx, rule: Rule, c: ValueCache, param: string): string[] | undefined {
  const v = c.value;
  if (rule.pfBit !== 0) {
    if ((satOf(t, c)[rule.pfWord] & rule.pfBit) === 0) return undefined;
    if (rule.pfExact && !rule.capture) return MATCHED;
  }
  if (rule.capture) return rule.op.run(v, param);
  return rule.op.test(v, param) ? MATCHED : undefined;
}

/**
 * Runs one rule's operator over its targets. For every matching value it sets MATCHED_VAR(_NAME)
 * and the captures, then runs the rule's setvar/ctl actions — ModSecurity runs non-disruptive
 * actions once per match, independently of the rest of a chain. Returns whether any matched
 * (the matched elements become MATCHED_VARS).
 */
function matchRule(t: Tx, rule: Rule): boolean {
  let elems: VarElem[];
  if (rule.targets.length === 0) elems = t.scratchOne("", "", "");
  else if (rule.txKey !== undefined && !t.txTargetRemoved) {
    if (rule.txFast) return matchTx(t, rule);
    const v = t.tx.get(rule.txKey);
    if (rule.txCount) elems = t.scratchOne("", v === undefined ? "0" : "1", rule.txName!);
    else if (v === undefined) return false;
    else elems = t.scratchOne(rule.txKey, v, rule.txName!);
  } else {
    // No value holds a literal the operator needs: no element can match. (Runtime target
    // removals only take values away, so they are ignored here.)
    if (rule.pfSkip && !mayMatch(t, rule)) return false;
    const mask = rule.sig < 0 || t.targetRemovals.length === 0 ? 0 : removalMask(t, rule);
    elems = resolve(t, rule, mask);
    if (elems.length === 0) return false;
  }
  const n = elems.length;
  const param = rule.opParamMacro ? rule.opParamMacro(t) : rule.opParam;
  const op = rule.op;
  const multi = rule.multiMatch && rule.transforms.length > 0;
  let hits: VarElem[] | undefined;
  for (let i = 0; i < n; i++) {
    const e = elems[i];
    let caps: string[] | undefined;
    let v = e.value;
    if (multi) {
      // The operator runs on the raw value and after every transformation that changes it.
      let c = transformedInfo(t, e, rule, 0);
      caps = runOp(t, rule, c, param);
      if (rule.negated) caps = caps ? undefined : [v];
      for (let k = 0; !caps && k < rule.transforms.length; k++) {
        const nc = transformedInfo(t, e, rule, k + 1);
        if (nc.value === v) continue;
        c = nc;
        v = nc.value;
        caps = runOp(t, rule, c, param);
        if (rule.negated) caps = caps ? undefined : [v];
      }
      if (!caps) continue;
    } else {
      let matched: boolean;
      if (rule.pfBit !== 0) {
        const c = transformedInfo(t, e, rule, rule.tids.length);
        v = c.value;
        // false when none of the literals every match needs occurs
        matched = (satOf(t, c)[rule.pfWord] & rule.pfBit) !== 0 &&
          (rule.pfExact || op.test(v, param));
      } else {
        if (rule.tids.length !== 0) v = transformedInfo(t, e, rule, rule.tids.length).value;
        matched = op.test(v, param);
      }
      if (rule.negated) matched = !matched;
      if (!matched) continue;
      if (rule.capture) caps = rule.negated ? [v] : op.run(v, param);
    }
    if (hits === undefined) hits = [];
    hits.push(elem(e.key, v, e.name));
    t.matchedVar = v;
    t.matchedVarName = e.name;
    if (rule.capture) {
      for (let c = 0; c < 10; c++) t.tx.delete(CAPTURE_KEYS[c]);
      for (let c = 0; c < caps!.length && c < 10; c++) t.tx.set(CAPTURE_KEYS[c], caps![c]);
    }
    if (rule.setvars.length > 0) runSetvars(t, rule);
    if (rule.ctls.length > 0) runCtls(t, rule);
  }
  if (hits === undefined) return false;
  t.matchedVars = hits;
  return true;
}

/**
 * `matchRule` for a rule whose only target is `TX:key` (or `&TX:key`) without transformations,
 * capture, multiMatch or prefilter: the same steps on the one value.
 */
function matchTx(t: Tx, rule: Rule): boolean {
  const v = t.tx.get(rule.txKey!);
  let value: string;
  let key: string;
  if (rule.txCount) {
    value = v === undefined ? "0" : "1";
    key = "";
  } else if (v === undefined) return false;
  else {
    value = v;
    key = rule.txKey!;
  }
  const param = rule.opParamMacro ? rule.opParamMacro(t) : rule.opParam;
  let matched = rule.op.test(value, param);
  if (rule.negated) matched = !matched;
  if (!matched) return false;
  const name = rule.txName!;
  const hit = elem(key, value, name);
  t.matchedVar = value;
  t.matchedVarName = name;
  if (rule.setvars.length > 0) runSetvars(t, rule);
  if (rule.ctls.length > 0) runCtls(t, rule);
  t.matchedVars = [hit];
  return true;
}

function runSetvars(t: Tx, rule: Rule): void {
  for (const sv of rule.setvars) {
    const map = sv.coll === "tx" ? t.tx : t.other;
    let k = sv.fixedKey;
    if (k === undefined) {
      const key = sv.name(t).toLowerCase();
      k = sv.coll === "tx" ? key : `${sv.coll}.${key}`;
    }
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
        let removal = c.removal;
        if (removal === undefined) {
          const semi = c.value.indexOf(";");
          const who = c.value.slice(0, semi);
          const spec = parseTargets(c.value.slice(semi + 1))[0];
          if (!spec) break;
          const excl = compileTarget(
            { ...spec, exclude: true },
            `${rule.file}:${rule.line}`,
          ) as Exclusion;
          removal = c.kind === "ruleremovetargetbyid"
            ? { id: idTester(who.split(/[\s,]+/), `${rule.file}:${rule.line}`), excl }
            : { tag: who, excl };
          c.removal = removal; // the same for every request
        }
        t.targetRemovals.push(removal);
        if (removal.excl.name === "TX") t.txTargetRemoved = true;
        break;
      }
      case "requestbodyprocessor":
        t.bodyProcessor = c.value.toUpperCase();
        break;
      case "forcerequestbodyvariable":
        t.forceBodyVariable = c.value.toLowerCase() === "on";
        break;
      case "requestbodyaccess":
        t.requestBodyAccess = c.value.toLowerCase() !== "off";
        break;
      case "responsebodyaccess":
        t.responseBodyAccess = c.value.toLowerCase() !== "off";
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
  const ctHeader = req.headers.find(([n]) => n.toLowerCase() === "content-type")?.[1] ?? "";
  const recipe: DataRecipe = {
    method: req.method,
    target: req.target,
    protocol: req.protocol,
    headers: req.headers,
    remoteAddr: req.remoteAddr,
    contentType: ctHeader,
    jsonDepthLimit: rules.jsonDepthLimit,
    body: null,
  };
  const data = buildData(recipe);
  const t = new Tx(
    data,
    options.initialTx,
    options.uniqueId,
    rules.scanner,
    rules.sizes,
    rules.scratch,
  );
  t.bodyProcessor = bodyProcessorFor(ctHeader);
  if (rules.ruleEngine === "Off") return { matched: [], tx: t.tx };
  const result = new RequestResult(t.tx, rules, t);
  for (let phase = 1; phase <= 2; phase++) {
    if (phase === 2) {
      recipe.body = {
        text: req.body && t.requestBodyAccess ? latin1(req.body) : "",
        processor: t.bodyProcessor,
        forceBodyVariable: t.forceBodyVariable,
      };
      parseBody(
        data,
        recipe.body.text,
        recipe.body.processor,
        ctHeader,
        recipe.body.forceBodyVariable,
        recipe.jsonDepthLimit,
      );
      t.resetVariables();
    }
    const stop = runPhase(t, rules.phases[phase], result, options.stopOnDeny && !t.detectionOnly);
    if (stop || t.engineOff) break;
  }
  // The caller's header list may change once this returns; the recipe keeps its own.
  recipe.headers = req.headers.map(([n, v]) => [n, v]);
  t.release(recipe);
  return result;
}

/**
 * How a transaction's request variables were built: the request line, headers and peer, and
 * the body as phase 2 parsed it (its text and the processor settings in force then), or null
 * when the transaction ended before phase 2.
 */
interface DataRecipe {
  method: string;
  target: string;
  protocol: string;
  headers: [string, string][];
  remoteAddr: string;
  contentType: string;
  jsonDepthLimit: number;
  body: { text: string; processor: string; forceBodyVariable: boolean } | null;
}

/** The request variables of a recipe: the same every time it is called. */
function buildData(r: DataRecipe): RequestData {
  const data = buildRequestData(r.method, r.target, r.protocol, r.headers, r.remoteAddr);
  if (r.body !== null) {
    parseBody(
      data,
      r.body.text,
      r.body.processor,
      r.contentType,
      r.body.forceBodyVariable,
      r.jsonDepthLimit,
    );
  }
  return data;
}

/**
 * What runTransaction() returns for a request: its result, and privately the transaction its
 * response phases continue in (released: see Tx.release), with the rule set it belongs to. Only
 * a result from runTransaction() on that rule set continues, and only once.
 */
class RequestResult implements TxResult {
  matched: TxResult["matched"] = [];
  declare interrupted?: TxResult["interrupted"];
  tx: Map<string, string>;
  #continues: { rules: RuleSet; t: Tx } | null;
  constructor(tx: Map<string, string>, rules: RuleSet, t: Tx) {
    this.tx = tx;
    this.#continues = { rules, t };
  }
  /** The transaction `r` continues in on `rules`, once: null for any other result or rule set. */
  static take(r: TxResult, rules: RuleSet): Tx | null {
    if (!(r instanceof RequestResult)) return null;
    const c = r.#continues;
    if (c === null || c.rules !== rules) return null;
    r.#continues = null;
    return c.t;
  }
}

/** Options of {@linkcode runResponse}. */
export interface ResponseRunOptions {
  /** Stop at the first deny/drop (blocking mode) or record everything (monitor). */
  stopOnDeny: boolean;
  /** Also run the logging phase (5) at the end, as ModSecurity does for every transaction. */
  logging?: boolean;
}

/**
 * Evaluates the response phases (3: status and headers, 4: body) of the transaction a request
 * began, against that request's response, and with `logging` the logging phase (5). The TX
 * collection and every other variable carry over from the request phases. After a plain
 * `allow` in blocking mode only the logging phase runs (`allow:request` lets the response phases
 * run); `ctl:responseBodyAccess=Off` hides the body. A transaction takes one response: a second
 * call, or a result that did not come from {@linkcode runTransaction} on this rule set with the
 * engine on, evaluates nothing.
 *
 * @param rules The compiled rule set the request was evaluated with.
 * @param request What {@linkcode runTransaction} returned for the request.
 * @param res The response; `body` when the rule set's {@linkcode RuleSet.responseBody} covers it.
 * @param options Blocking behaviour and the logging phase.
 * @returns The rules matched in these phases (and the interruption, if any) and the final TX.
 */
export function runResponse(
  rules: RuleSet,
  request: TxResult,
  res: RuleResponse,
  options: ResponseRunOptions,
): TxResult {
  const t = RequestResult.take(request, rules);
  const result: TxResult = { matched: [], tx: request.tx };
  if (t === null) return result;
  const stopOnDeny = options.stopOnDeny && !t.detectionOnly;
  // A plain `allow` ends inspection for the whole transaction (`allow:request` does not).
  const inspect = !t.engineOff && !t.allowedAll;
  t.response = emptyRequestData();
  if (inspect) addResponseHead(t.response, res.status, res.protocol, res.headers);
  // Fresh caches: the request phases' went with Tx.release().
  t.resetVariables();
  if (inspect) {
    const stop = runPhase(t, rules.phases[3], result, stopOnDeny);
    if (!stop && !t.engineOff) {
      if (res.body !== undefined && rules.responseBody !== null && t.responseBodyAccess) {
        const body = res.body.length > rules.responseBody.maxBytes
          ? res.body.subarray(0, rules.responseBody.maxBytes)
          : res.body;
        t.response.scalars.set("RESPONSE_BODY", latin1(body));
        t.resetVariables();
      }
      runPhase(t, rules.phases[4], result, stopOnDeny);
    }
  }
  if (options.logging) runPhase(t, rules.phases[5], result, false);
  return result;
}

function runPhase(t: Tx, list: Entry[], result: TxResult, stopOnDeny: boolean): boolean {
  let skipN = 0;
  for (let i = 0; i < list.length; i++) {
    const rule = list[i].rule;
    if (rule === undefined) continue; // a marker
    if (skipN > 0) {
      skipN--;
      continue;
    }
    if ((t.removedIds.length > 0 || t.removedTags.length > 0) && isRemoved(t, rule)) continue;
    // Evaluate the chain.
    let link: Rule | undefined = rule;
    let matchedAll = true;
    while (link) {
      if (!matchRule(t, link)) {
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
      if (stopOnDeny) {
        if (rule.allowScope !== "phase" && rule.allowScope !== "request") t.allowedAll = true;
        return rule.allowScope !== "phase";
      }
    }
    if (rule.skipAfter !== undefined) i = rule.jump; // the marker (or the end)
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

const CATEGORIES: [RegExp, string][] = [
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
  [/^attack-disclosure$/, "disclosure"],
];

function categoryOf(r: Rule): string {
  for (const tag of r.tags) for (const [re, c] of CATEGORIES) if (re.test(tag)) return c;
  if (r.tags.includes("anomaly-evaluation")) return "anomaly";
  return "protocol";
}

/**
 * Evaluates to a {@linkcode RuleVerdict}.
 *
 * @param res The request's (or, with `outbound`, the response's) result.
 * @param block Whether an interruption blocks (block mode) or is only reported.
 * @param outbound Whether `res` is a response's: its score is the outbound anomaly score.
 * @returns The verdict.
 */
export function verdictOf(
  res: TxResult,
  block: boolean,
  outbound = false,
): Omit<RuleVerdict, "response"> {
  const matches = res.matched
    .filter((m) => m.rule.log && m.rule.id !== 0)
    .map((m) => toRuleMatch(m));
  const score = parseInt(
    (outbound
      ? res.tx.get("blocking_outbound_anomaly_score")
      : res.tx.get("blocking_inbound_anomaly_score") ?? res.tx.get("anomaly_score")) ?? "0",
    10,
  ) || 0;
  if (block && res.interrupted) {
    return { action: "block", status: res.interrupted.status, matches, score };
  }
  return { action: "allow", matches, score };
}
