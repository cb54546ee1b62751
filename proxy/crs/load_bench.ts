/**
 * Rule loading and compiling of CRS v4 (target: ≤ 500 ms at start), and in-process request
 * evaluation on the benign corpus. Needs ../shared/crs.
 *
 * @module
 */
import { loadCrs } from "./crs.ts";
import { denoFiles } from "./_io.ts";
import { generateBenignCorpus } from "./benign_corpus.ts";

const root = new URL("../../../shared/crs/", import.meta.url).pathname;
let present = true;
try {
  Deno.statSync(`${root}rules`);
} catch {
  present = false;
  console.warn(`skipping CRS benches: ${root} not found`);
}
const opts = {
  setupFile: `${root}crs-setup.conf.example`,
  rulesDir: `${root}rules`,
  files: denoFiles,
};

Deno.bench({
  name: "loadCrs() PL1 (parse + compile all of CRS v4.28)",
  ignore: !present,
  fn() {
    loadCrs({ ...opts, paranoia: 1 });
  },
});

Deno.bench({
  name: "loadCrs() PL4",
  ignore: !present,
  fn() {
    loadCrs({ ...opts, paranoia: 4 });
  },
});

const corpus = present ? generateBenignCorpus(200, 11).map((c) => c.request) : [];
const pl1 = present ? loadCrs({ ...opts, paranoia: 1, mode: "block" }) : undefined;
Deno.bench({
  name: "evaluate() 200 benign requests, PL1 block mode",
  ignore: !present,
  fn() {
    for (const r of corpus) pl1!.evaluate(r);
  },
});
