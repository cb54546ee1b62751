/**
 * Decision-equivalence check for CRS engine changes: evaluates every go-ftw stage request of
 * ../shared/crs/tests, a generated benign corpus and the bench requests at several paranoia
 * levels and modes, and records per request everything the engine decided (rules fired with
 * their matched variable, value, message and log line; interruption; the final TX collection).
 *
 *   deno run -A scripts/crs_equiv.ts record FILE     # writes one digest line per request
 *   deno run -A scripts/crs_equiv.ts compare FILE    # exit 1 and a list when anything differs
 *
 * Record before a change, compare after: an optimisation must leave every line identical.
 *
 * @module
 */
import { loadCrs } from "@infraveil/proxy/crs";
import type { RuleRequest } from "@infraveil/proxy/rule_engine";
import { loadTests } from "../proxy/crs/main.ts";
import { stageRequest } from "../proxy/crs/ftw.ts";
import { generateBenignCorpus } from "../proxy/crs/benign_corpus.ts";
import { BENCH_REQUESTS } from "../proxy/crs/eval_bench.ts";
import { denoFiles } from "../proxy/crs/_io.ts";

const root = new URL("../../shared/crs/", import.meta.url).pathname;

function requests(): { id: string; req: RuleRequest }[] {
  const out: { id: string; req: RuleRequest }[] = [];
  for (const t of loadTests(`${root}tests`)) {
    t.stages.forEach((s, j) => {
      const req = stageRequest(s.input);
      if (req) out.push({ id: `ftw:${t.id}:${j}`, req });
    });
  }
  generateBenignCorpus(3000, 7).forEach((c, i) => out.push({ id: `benign:${i}`, req: c.request }));
  for (const [k, req] of Object.entries(BENCH_REQUESTS)) out.push({ id: `bench:${k}`, req });
  return out;
}

function digests(): string[] {
  const lines: string[] = [];
  const reqs = requests();
  const configs: { paranoia: number; mode: "block" | "monitor" }[] = [
    { paranoia: 1, mode: "block" },
    { paranoia: 1, mode: "monitor" },
    { paranoia: 2, mode: "monitor" },
    { paranoia: 4, mode: "monitor" },
    { paranoia: 4, mode: "block" },
  ];
  for (const c of configs) {
    const engine = loadCrs({
      setupFile: `${root}crs-setup.conf.example`,
      rulesDir: `${root}rules`,
      paranoia: c.paranoia,
      mode: c.mode,
      files: denoFiles,
    });
    for (const { id, req } of reqs) {
      const r = engine.inspect(req);
      const tx = [...r.tx].filter(([k]) => k !== "unique_id").sort((a, b) =>
        a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0
      );
      const d = JSON.stringify({
        m: r.matched.map((m) => [m.rule.id, m.varName, m.value, m.msg, m.log]),
        i: r.interrupted ? [r.interrupted.rule.id, r.interrupted.status] : null,
        tx,
        v: engine.evaluate(req),
      });
      lines.push(`${c.paranoia}${c.mode[0]} ${id} ${d}`);
    }
  }
  return lines;
}

if (import.meta.main) {
  const [cmd, file] = Deno.args;
  if (!file || (cmd !== "record" && cmd !== "compare")) {
    console.error("usage: crs_equiv.ts record|compare FILE");
    Deno.exit(2);
  }
  const lines = digests();
  if (cmd === "record") {
    Deno.writeTextFileSync(file, lines.join("\n") + "\n");
    console.log(`${lines.length} digests written to ${file}`);
  } else {
    const old = Deno.readTextFileSync(file).trimEnd().split("\n");
    let diffs = 0;
    if (old.length !== lines.length) {
      console.log(`line count differs: ${old.length} recorded, ${lines.length} now`);
      diffs++;
    }
    for (let i = 0; i < Math.min(old.length, lines.length); i++) {
      if (old[i] !== lines[i]) {
        if (diffs++ < 10) console.log(`- ${old[i].slice(0, 600)}\n+ ${lines[i].slice(0, 600)}`);
      }
    }
    console.log(diffs === 0 ? `identical: ${lines.length} digests` : `${diffs} differences`);
    Deno.exit(diffs === 0 ? 0 : 1);
  }
}
