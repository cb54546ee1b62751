/**
 * `infraveil policy lint|fmt|test|hash|schema`. Separate from check so that check's startup
 * loads none of this.
 *
 * @module
 */
import {
  flags,
  format,
  type Io,
  loadPolicy,
  printLint,
  readOrReport,
  USAGE,
} from "./_cli_check.ts";
import { actionSchema } from "./action.ts";
import type { CompiledPolicy } from "./evaluate.ts";
import { lintPolicy } from "./lint.ts";
import { parsePolicy } from "./parse.ts";
import type { Diagnostic } from "./types.ts";

/** `infraveil policy lint`. */
export async function lint(io: Io, args: string[]): Promise<number> {
  const f = await flags(io, "lint", args, { format: { type: "string" } });
  if (typeof f === "number") return f;
  const fmt = await format(io, "lint", f.values.format);
  if (typeof fmt === "number") return fmt;
  if (f.positionals.length === 0) {
    await io.err(`error: give at least one policy FILE\n\n${USAGE.lint}`);
    return 2;
  }
  const diags: Diagnostic[] = [];
  const linted: string[] = [];
  let unreadable = false;
  for (const file of f.positionals) {
    const text = await readOrReport(io, file, "policy");
    if (text === null) {
      unreadable = true;
      continue;
    }
    linted.push(file);
    diags.push(...lintPolicy(parsePolicy(text, { file })));
  }
  if (linted.length > 0) await printLint(io, fmt, diags, linted);
  if (unreadable) return 2;
  return diags.some((d) => d.severity === "error") ? 3 : 0;
}

/** `infraveil policy fmt`. */
export async function fmt(io: Io, args: string[]): Promise<number> {
  const f = await flags(io, "fmt", args, { check: { type: "boolean" } });
  if (typeof f === "number") return f;
  if (f.positionals.length === 0) {
    await io.err(`error: give at least one policy FILE\n\n${USAGE.fmt}`);
    return 2;
  }
  const { formatPolicy } = await import("./format.ts");
  const { PolicyError } = await import("./error.ts");
  let code = 0;
  const worst = (c: number) => code = Math.max(code, c);
  for (const file of f.positionals) {
    const text = await readOrReport(io, file, "policy");
    if (text === null) {
      worst(2);
      continue;
    }
    let out: string;
    try {
      out = formatPolicy(text, { file });
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      for (const d of e.diagnostics) {
        await io.err(`${d.file}:${d.line}:${d.col}: ${d.severity}[${d.code}]: ${d.message}\n`);
      }
      await io.err(`error: ${file} has syntax errors; not formatted\n`);
      worst(3);
      continue;
    }
    if (out === text) continue;
    if (f.values.check) {
      await io.out(`${file}: not formatted\n`);
      worst(1);
      continue;
    }
    try {
      await io.writeText(file, out);
      await io.out(`${file}: formatted\n`);
    } catch (e) {
      await io.err(`error: cannot write ${file}: ${(e as Error).message}\n`);
      worst(2);
    }
  }
  return code;
}

/** `infraveil policy hash`. */
export async function hash(io: Io, args: string[]): Promise<number> {
  const f = await flags(io, "hash", args, { format: { type: "string" } });
  if (typeof f === "number") return f;
  const fmt = await format(io, "hash", f.values.format, ["text", "json"]);
  if (typeof fmt === "number") return fmt;
  if (f.positionals.length !== 1) {
    await io.err(`error: give exactly one policy FILE\n\n${USAGE.hash}`);
    return 2;
  }
  const [file] = f.positionals;
  const text = await readOrReport(io, file, "policy");
  if (text === null) return 2;
  const parsed = parsePolicy(text, { file });
  const errors = lintPolicy(parsed).filter((d) => d.severity === "error");
  if (errors.length > 0) {
    await printLint(io, "text", errors, [file]);
    await io.err(`error: ${file} has lint errors; a policy with errors has no enforceable hash\n`);
    return 3;
  }
  const { webPolicyHash } = await import("./_canonical.ts");
  const h = await webPolicyHash(parsed.policy);
  await io.out(fmt === "json" ? JSON.stringify({ file, hash: h }) + "\n" : h + "\n");
  return 0;
}

/** `infraveil policy schema`. */
export async function schema(io: Io, args: string[]): Promise<number> {
  const f = await flags(io, "schema", args, {});
  if (typeof f === "number") return f;
  if (f.positionals.length > 0) {
    await io.err(`error: schema takes no arguments\n\n${USAGE.schema}`);
    return 2;
  }
  await io.out(JSON.stringify(actionSchema, null, 2) + "\n");
  return 0;
}

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : p.slice(0, i);
}

function join(dir: string, rel: string): string {
  if (rel.startsWith("/")) return rel;
  return dir === "." ? rel : `${dir}/${rel}`;
}

async function collect(io: Io, path: string, out: string[]): Promise<boolean> {
  const k = await io.kind(path);
  if (k === "missing") {
    await io.err(`error: cannot read test path ${path}: no such file or directory\n`);
    return false;
  }
  if (k === "file") {
    out.push(path);
    return true;
  }
  const entries = (await io.list(path)).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0
  );
  for (const e of entries) {
    const p = path === "." ? e.name : path.endsWith("/") ? path + e.name : `${path}/${e.name}`;
    if (e.dir) {
      if (!(await collect(io, p, out))) return false;
    } else if (e.name.endsWith(".policytest.json")) out.push(p);
  }
  return true;
}

/** `infraveil policy test`. */
export async function test(io: Io, args: string[]): Promise<number> {
  const f = await flags(io, "test", args, {
    format: { type: "string" },
    policy: { type: "string" },
  });
  if (typeof f === "number") return f;
  const fmt = await format(io, "test", f.values.format, ["text", "json", "junit"]);
  if (typeof fmt === "number") return fmt;
  if (f.positionals.length === 0) {
    await io.err(`error: give at least one test file or directory\n\n${USAGE.test}`);
    return 2;
  }
  const files: string[] = [];
  for (const p of f.positionals) if (!(await collect(io, p, files))) return 2;
  if (files.length === 0) {
    await io.err(`error: no *.policytest.json files under ${f.positionals.join(", ")}\n`);
    return 2;
  }
  const { parseTestSuite, runPolicyTests } = await import("./testing.ts");
  const policies = new Map<string, CompiledPolicy>();
  const report: {
    file: string;
    policy: string;
    results: import("./testing.ts").PolicyTestResult[];
  }[] = [];
  for (const file of files) {
    const text = await readOrReport(io, file, "test file");
    if (text === null) return 2;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      await io.err(`error: ${file}: invalid JSON: ${(e as Error).message}\n`);
      return 2;
    }
    const { suite, errors } = parseTestSuite(json);
    if (!suite) {
      for (const e of errors) await io.err(`error: ${file}: ${e}\n`);
      return 2;
    }
    const policyPath = typeof f.values.policy === "string"
      ? f.values.policy
      : suite.policy !== undefined
      ? join(dirname(file), suite.policy)
      : undefined;
    if (policyPath === undefined) {
      await io.err(`error: ${file}: names no "policy"; add one or pass --policy FILE\n`);
      return 2;
    }
    let compiled = policies.get(policyPath);
    if (!compiled) {
      const c = await loadPolicy(io, policyPath, "text");
      if (typeof c === "number") return c;
      policies.set(policyPath, compiled = c);
    }
    report.push({
      file,
      policy: policyPath,
      results: runPolicyTests(suite, compiled, { now: io.now() }),
    });
  }
  const all = report.flatMap((r) => r.results.map((x) => ({ ...x, file: r.file })));
  const failed = all.filter((r) => !r.passed).length;
  if (fmt === "json") {
    await io.out(
      JSON.stringify({ passed: all.length - failed, failed, files: report }, null, 2) + "\n",
    );
  } else if (fmt === "junit") {
    const { junit } = await import("./_junit.ts");
    await io.out(junit(
      "infraveil policy test",
      all.map((r) => ({
        name: r.name,
        classname: r.file,
        ...(r.passed ? {} : {
          failure: {
            message: r.failures.join("; "),
            body: r.actual.reasons.map((x) =>
              `${x.file}:${x.line}:${x.col} ${x.effect} ${x.rule}: ${x.message}`
            )
              .join("\n"),
          },
        }),
      })),
    ));
  } else {
    let out = "";
    for (const r of all) {
      out += `${r.passed ? "PASS" : "FAIL"} ${r.file}: ${r.name}\n`;
      if (r.passed) continue;
      for (const x of r.failures) out += `  ${x}\n`;
      const n = r.actual.approvals;
      out += `  actual: ${r.actual.decision}${n ? ` (${n} approval${n === 1 ? "" : "s"})` : ""}\n`;
      for (const x of r.actual.reasons) {
        out += `    ${x.file}:${x.line}:${x.col} ${x.effect} ${x.rule}: ${x.message}\n`;
      }
    }
    out += `${all.length - failed} case${
      all.length - failed === 1 ? "" : "s"
    } passed, ${failed} failed\n`;
    await io.out(out);
  }
  return failed > 0 ? 1 : 0;
}
