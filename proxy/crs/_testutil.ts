/**
 * Test helpers: in-memory rule sets and requests, and the location of the shared CRS copy.
 *
 * @module
 */
import type { RuleRequest } from "../rule_engine.ts";
import { type CrsEngine, loadCrs, type LoadCrsOptions } from "./crs.ts";

/** Builds an engine from inline SecLang (setup text + one rules file). */
export function inlineEngine(
  rules: string,
  opts: Partial<LoadCrsOptions> & { data?: Record<string, string> } = {},
): CrsEngine {
  const files: Record<string, string> = {
    "setup.conf":
      'SecDefaultAction "phase:1,log,auditlog,pass"\nSecDefaultAction "phase:2,log,auditlog,pass"\n',
    "rules/test.conf": rules,
  };
  for (const [k, v] of Object.entries(opts.data ?? {})) files[`rules/${k}`] = v;
  return loadCrs({
    setupFile: "setup.conf",
    rulesDir: "rules",
    mode: "monitor",
    ...opts,
    files: {
      readFile: (p) => {
        const t = files[p];
        if (t === undefined) throw new Error(`no such file ${p}`);
        return t;
      },
      listDir: () =>
        Object.keys(files).filter((f) => f.startsWith("rules/")).map((f) => f.slice(6)),
    },
  });
}

/** A GET/POST request with sensible defaults. */
export function req(
  target: string,
  init: Partial<RuleRequest> & { bodyText?: string } = {},
): RuleRequest {
  const body = init.bodyText !== undefined ? new TextEncoder().encode(init.bodyText) : init.body;
  return {
    method: init.method ?? (body ? "POST" : "GET"),
    target,
    protocol: init.protocol ?? "HTTP/1.1",
    headers: init.headers ?? [["Host", "localhost"], ["User-Agent", "test"]],
    remoteAddr: init.remoteAddr ?? "127.0.0.1",
    body,
  };
}

/** Ids of the rules that fired. */
export function fired(e: CrsEngine, r: RuleRequest): number[] {
  return e.inspect(r).matched.map((m) => m.rule.id);
}

/** Paths of the shared CRS data (`../shared/crs` from the project root), if present. */
export function sharedCrs(): { rules: string; setup: string; tests: string } | undefined {
  const root = new URL("../../../shared/crs/", import.meta.url).pathname;
  try {
    Deno.statSync(`${root}rules`);
  } catch {
    if (Deno.env.get("CI") === "true") throw new Error(`shared CRS data missing at ${root}`);
    console.warn(`skipping: shared CRS data not found at ${root}`);
    return undefined;
  }
  return { rules: `${root}rules`, setup: `${root}crs-setup.conf.example`, tests: `${root}tests` };
}
