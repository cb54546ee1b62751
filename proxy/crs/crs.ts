/**
 * Loads an OWASP CRS copy (setup file, rule files, exclusion files) into a compiled
 * {@linkcode RuleEngine}. File access is injected, so this module performs no I/O itself.
 *
 * @module
 */
import type { RuleEngine, RuleRequest, RuleResponse, RuleVerdict } from "../rule_engine.ts";
import { CrsError } from "./_errors.ts";
import {
  compileRules,
  type RuleSet,
  runResponse,
  runTransaction,
  type TxResult,
  verdictOf,
} from "./engine.ts";
import { parseSecLang } from "./parser.ts";

/** Reads a text file; `listDir` lists the names in a directory. */
export interface CrsFileAccess {
  /** Returns the text of a file, or throws. */
  readFile(path: string): string;
  /** Returns the file names (not paths) in a directory. */
  listDir(path: string): string[];
}

/** Options of {@linkcode loadCrs}. */
export interface LoadCrsOptions {
  /** The setup file, usually `crs-setup.conf` (or `crs-setup.conf.example`). */
  setupFile: string;
  /** Directory of `*.conf` rule files and their `*.data` files. */
  rulesDir: string;
  /** Loaded before the rules (e.g. a REQUEST-900 exclusion file): paths. */
  beforeFiles?: string[];
  /** Loaded after the rules (e.g. a RESPONSE-999 exclusion file or SecRuleRemoveById): paths. */
  extraFiles?: string[];
  /** Paranoia level 1–4 (blocking and detection); default 1. */
  paranoia?: number;
  /** Detection paranoia level when higher than `paranoia` (scores but does not block). */
  detectionParanoia?: number;
  /** "block" denies requests over the anomaly threshold; "monitor" only reports. */
  mode?: "block" | "monitor";
  /** Extra TX variables set before the first rule, e.g. `{inbound_anomaly_score_threshold: "10"}`. */
  tx?: Record<string, string>;
  /** Largest body inspected (default 128 KiB). */
  maxBodyBytes?: number;
  /** False disables `@detectSQLi`/`@detectXSS` (default true). */
  libinjection?: boolean;
  /** False runs every operator on every value, without the literal prefilter (default true). */
  prefilter?: boolean;
  /**
   * False leaves responses alone: the response phases (3 and 4: RESPONSE-95x data-leakage
   * rules, outbound blocking) do not run (default true). Which response bodies are inspected
   * follows SecResponseBodyAccess, SecResponseBodyMimeType and SecResponseBodyLimit in the
   * loaded files, else ModSecurity's recommended settings: text/plain, text/html and text/xml,
   * the first 512 KiB.
   */
  responses?: boolean;
  /** Injected file access. */
  files: CrsFileAccess;
}

/** A verdict of the CRS engine: its response check answers synchronously. */
export interface CrsVerdict extends RuleVerdict {
  /** The response phases of this request's transaction (see {@linkcode RuleVerdict.response}). */
  response?: (res: RuleResponse) => RuleVerdict;
}

/** The compiled CRS engine; also exposes the raw transaction result for test runners. */
export interface CrsEngine extends RuleEngine {
  /** Number of compiled rules. */
  readonly ruleCount: number;
  /** Evaluates and returns every detail of the transaction. */
  inspect(req: RuleRequest): TxResult;
  /**
   * Evaluates the response phases of the transaction `inspect` returned (once per
   * transaction), with the logging phase when `logging` is set; every detail of them.
   */
  inspectResponse(request: TxResult, res: RuleResponse, logging?: boolean): TxResult;
  /** Inspects one request (synchronously). */
  evaluate(req: RuleRequest): CrsVerdict;
  /** Paranoia level of a rule id (undefined for rules without a level tag). */
  paranoiaOf(id: number): number | undefined;
}

function join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/**
 * Loads and compiles CRS.
 *
 * @param options Files, paranoia level and mode.
 * @returns The engine.
 * @throws {CrsError} With file:line on any rule it cannot compile, `READ` on unreadable files.
 * @example
 * ```ts ignore
 * import { loadCrs } from "@infraveil/proxy/crs";
 * const crs = loadCrs({ setupFile: "crs/crs-setup.conf", rulesDir: "crs/rules", files });
 * const v = await crs.evaluate({ method: "GET", target: "/?q=1' or 1=1--", protocol: "HTTP/1.1",
 *   headers: [["Host", "x"]], remoteAddr: "127.0.0.1" });
 * ```
 */
export function loadCrs(options: LoadCrsOptions): CrsEngine {
  const {
    setupFile,
    rulesDir,
    beforeFiles = [],
    extraFiles = [],
    paranoia = 1,
    mode = "block",
    tx = {},
    maxBodyBytes = 128 * 1024,
    files,
  } = options;
  const detectionParanoia = Math.max(options.detectionParanoia ?? paranoia, paranoia);
  if (!(paranoia >= 1 && paranoia <= 4)) {
    throw new CrsError("BAD_RULE", `paranoia must be 1–4, got ${paranoia}`);
  }
  const read = (p: string): string => {
    try {
      return files.readFile(p);
    } catch (e) {
      throw new CrsError("READ", `Cannot read ${p}: ${(e as Error).message}`, { cause: e });
    }
  };
  let names: string[];
  try {
    names = files.listDir(rulesDir).filter((n) => n.endsWith(".conf")).sort();
  } catch (e) {
    throw new CrsError("READ", `Cannot list rules directory ${rulesDir}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (names.length === 0) {
    throw new CrsError(
      "READ",
      `${rulesDir} holds no *.conf rule files; point rulesDir at CRS rules/`,
    );
  }
  const paths = [setupFile, ...beforeFiles, ...names.map((n) => join(rulesDir, n)), ...extraFiles];
  const directives = paths.flatMap((p) => parseSecLang(read(p), p));
  const dataCache = new Map<string, string>();
  const rules: RuleSet = compileRules(directives, {
    readData: (name) => {
      let t = dataCache.get(name);
      if (t === undefined) {
        t = read(name.startsWith("/") ? name : join(rulesDir, name));
        dataCache.set(name, t);
      }
      return t;
    },
    maxParanoia: detectionParanoia,
    libinjection: options.libinjection ?? true,
    prefilter: options.prefilter ?? true,
  });
  const initialTx = new Map<string, string>([
    ["blocking_paranoia_level", String(paranoia)],
    ["detection_paranoia_level", String(detectionParanoia)],
  ]);
  for (const [k, v] of Object.entries(tx)) initialTx.set(k.toLowerCase(), v);
  let counter = 0;
  const block = mode === "block";
  const inspect = (req: RuleRequest): TxResult => {
    const body = req.body && req.body.length > maxBodyBytes
      ? req.body.subarray(0, maxBodyBytes)
      : req.body;
    counter++;
    return runTransaction(rules, { ...req, body }, {
      initialTx,
      stopOnDeny: block,
      uniqueId: `${Date.now().toString(36)}${counter.toString(16).padStart(8, "0")}`,
    });
  };
  const responses = (options.responses ?? true) &&
    (rules.phases[3].some((e) => e.rule) || rules.phases[4].some((e) => e.rule));
  const inspectResponse = (request: TxResult, res: RuleResponse, logging = false): TxResult =>
    runResponse(rules, request, res, { stopOnDeny: block, logging });
  return {
    name: "crs",
    inspectsBody: true,
    maxBodyBytes,
    ...(responses && rules.responseBody ? { responseBody: rules.responseBody } : {}),
    ruleCount: rules.ruleCount,
    inspect,
    inspectResponse,
    paranoiaOf: (id) => rules.paranoiaById.get(id),
    evaluate(req: RuleRequest): CrsVerdict {
      const request = inspect(req);
      const verdict: CrsVerdict = verdictOf(request, block);
      // Also on a blocking verdict: a proxy in monitor mode forwards the request anyway.
      if (responses) {
        verdict.response = (res) => verdictOf(inspectResponse(request, res), block, true);
      }
      return verdict;
    },
  };
}
