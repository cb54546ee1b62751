import assert from "node:assert/strict";
import { loadCrs } from "./crs.ts";
import { denoFiles } from "./_io.ts";
import { engineRunner, runFtwSuite, stageRequest } from "./ftw.ts";
import { CRS_TEST_TX, loadTests, serveAlbedo, viaRunner } from "./main.ts";
import { startProxy } from "../_testing.ts";
import { generateBenignCorpus } from "./benign_corpus.ts";
import { sharedCrs } from "./_testutil.ts";

const crs = sharedCrs();

/** CRS as the project's regression tests run it: paranoia 4 with their rule 900005 settings. */
function regressionEngine(mode: "block" | "monitor") {
  return loadCrs({
    setupFile: crs!.setup,
    rulesDir: crs!.rules,
    paranoia: 4,
    mode,
    tx: CRS_TEST_TX,
    files: denoFiles,
  });
}

Deno.test({
  name: "loadCrs() compiles CRS v4 as released and scores its regression tests",
  ignore: !crs,
  async fn() {
    const engine = regressionEngine("monitor");
    assert.ok(engine.ruleCount > 500);
    const s = await runFtwSuite(
      loadTests(crs!.tests),
      engineRunner(engine),
      (id) => engine.paranoiaOf(id),
      4,
    );
    const pl1 = (f: string): number => {
      const t = s.files[f]?.paranoia["1"];
      return t ? t.passed / t.tests : 0;
    };
    for (
      const f of [
        "930-APPLICATION-ATTACK-LFI",
        "932-APPLICATION-ATTACK-RCE",
        "941-APPLICATION-ATTACK-XSS",
        "942-APPLICATION-ATTACK-SQLI",
      ]
    ) {
      assert.ok(pl1(`REQUEST-${f}`) >= 0.9, `${f} PL1 ${pl1(`REQUEST-${f}`)}`);
    }
    // The response rules (data leakage, web shells, outbound blocking, reporting) score on the
    // backend's answers, like go-ftw's albedo gives them.
    for (const f of Object.keys(s.files).filter((f) => f.startsWith("RESPONSE-"))) {
      const t = s.files[f].paranoia["1"];
      assert.ok(t && t.passed / t.tests >= 0.9, `${f} PL1 ${t?.passed}/${t?.tests}`);
    }
    const all1 = s.paranoia["1"];
    assert.ok(all1.passed / all1.tests >= 0.75, `all PL1 ${all1.passed}/${all1.tests}`);
    assert.ok(
      s.negative.passed / s.negative.tests >= 0.95,
      `no_expect_ids ${s.negative.passed}/${s.negative.tests}`,
    );
  },
});

Deno.test({
  name: "CRS at PL1 in block mode blocks at most 0.1% of the benign corpus",
  ignore: !crs,
  fn() {
    const engine = loadCrs({
      setupFile: crs!.setup,
      rulesDir: crs!.rules,
      paranoia: 1,
      mode: "block",
      files: denoFiles,
    });
    const corpus = generateBenignCorpus(2000, 7);
    const blocked = corpus.filter(({ request }) => engine.evaluate(request).action === "block");
    assert.ok(
      blocked.length <= 2,
      `blocked ${blocked.length}: ${blocked.slice(0, 3).map((b) => b.request.target)}`,
    );
    // and it does block attacks
    const attack = engine.evaluate({
      method: "GET",
      target: "/?id=1%27%20union%20select%20password%20from%20users--",
      protocol: "HTTP/1.1",
      headers: [["Host", "x"], ["User-Agent", "Mozilla/5.0"], ["Accept", "*/*"]],
      remoteAddr: "192.0.2.1",
    });
    assert.equal(attack.action, "block");
    assert.ok(attack.matches.some((m) => m.category === "sqli"));
  },
});

Deno.test("generateBenignCorpus() is deterministic", () => {
  const a = generateBenignCorpus(50, 3).map((x) => x.request.target).join();
  const b = generateBenignCorpus(50, 3).map((x) => x.request.target).join();
  assert.equal(a, b);
  assert.notEqual(a, generateBenignCorpus(50, 4).map((x) => x.request.target).join());
});

Deno.test({
  name: "the literal prefilter and the caches change no result on the CRS regression requests",
  ignore: !crs,
  fn() {
    const opts = {
      setupFile: crs!.setup,
      rulesDir: crs!.rules,
      paranoia: 4,
      mode: "monitor" as const,
      tx: CRS_TEST_TX,
      files: denoFiles,
    };
    const fast = loadCrs(opts);
    const plain = loadCrs({ ...opts, prefilter: false });
    const show = (r: ReturnType<typeof fast.inspect>): string =>
      JSON.stringify([
        r.matched.map((m) => [m.rule.id, m.varName, m.value, m.log]),
        r.interrupted?.rule.id,
        [...r.tx].filter(([k]) => k !== "unique_id"),
      ]);
    // every third request keeps the test short; the full comparison is `deno task crs` twice
    let n = 0;
    for (const t of loadTests(crs!.tests)) {
      for (const s of t.stages) {
        const req = stageRequest(s.input);
        if (!req || n++ % 3 !== 0) continue;
        assert.equal(show(fast.inspect(req)), show(plain.inspect(req)), t.id);
      }
    }
    assert.ok(n > 2500);
  },
});

Deno.test({
  name: "the response rules score through a running proxy in front of the albedo backend",
  ignore: !crs,
  async fn() {
    // Block mode, as the proxy loads it (rules.engine "crs"): the proxy's own mode decides.
    const engine = regressionEngine("block");
    const albedo = serveAlbedo("127.0.0.1", 0);
    const px = startProxy(`http://127.0.0.1:${albedo.port}`, {
      mode: "monitor",
      debugHeaders: true,
      rules: { baseline: false },
    }, { ruleEngines: [engine] });
    try {
      // The reporting rules (980) run in the logging phase, which the proxy leaves out.
      const tests = loadTests(crs!.tests).filter((t) =>
        t.file.startsWith("RESPONSE-95") && t.file !== "RESPONSE-959-BLOCKING-EVALUATION"
      );
      assert.ok(tests.length >= 60, `${tests.length} response tests`);
      const s = await runFtwSuite(tests, viaRunner(px.url), (id) => engine.paranoiaOf(id), 4);
      assert.ok(s.tests >= 60 && s.passed / s.tests >= 0.9, `${s.passed}/${s.tests}`);
      assert.ok(
        s.negative.tests > 0 && s.negative.passed === s.negative.tests,
        `no_expect_ids ${s.negative.passed}/${s.negative.tests}`,
      );
    } finally {
      await px.close();
      await albedo.close();
    }
  },
});
