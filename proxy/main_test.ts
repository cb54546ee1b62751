import assert from "node:assert/strict";
import { main } from "./main.ts";
import { header, mayskip, rawRequest, serveBackend, startProxy } from "./_testing.ts";

const mainPath = new URL("./main.ts", import.meta.url).pathname;

async function quiet<T>(f: () => Promise<T>): Promise<{ value: T; out: string; err: string }> {
  const log = console.log;
  const error = console.error;
  let out = "";
  let err = "";
  console.log = (...a: unknown[]) => out += a.join(" ") + "\n";
  console.error = (...a: unknown[]) => err += a.join(" ") + "\n";
  try {
    return { value: await f(), out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("main() --help exits 0; unknown flags and bad input exit 2", async () => {
  const help = await quiet(() => main(["--help"]));
  assert.equal(help.value, 0);
  assert.match(help.out, /Usage: infraveil proxy/);
  const unknown = await quiet(() => main(["--bogus"]));
  assert.equal(unknown.value, 2);
  assert.match(unknown.err, /Usage:/);
  const positional = await quiet(() => main(["extra"]));
  assert.equal(positional.value, 2);
  const badListen = await quiet(() => main(["--listen", "nope"]));
  assert.equal(badListen.value, 2);
  assert.match(badListen.err, /--listen must be HOST:PORT/);
  const missing = await quiet(() => main(["--config", "/nonexistent/proxy.jsonc"]));
  assert.equal(missing.value, 2);
  assert.match(missing.err, /cannot read config file \/nonexistent\/proxy\.jsonc/);
});

Deno.test("main() --check validates a config file and reports its position on error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/ok.jsonc`, `{ "mode": "monitor" /* ok */ }`);
    const ok = await quiet(() => main(["--config", `${dir}/ok.jsonc`, "--check"]));
    assert.equal(ok.value, 0);
    await Deno.writeTextFile(`${dir}/bad.jsonc`, `{\n  "limits": { "maxBodyBytes": "big" }\n}`);
    const bad = await quiet(() => main(["--config", `${dir}/bad.jsonc`, "--check"]));
    assert.equal(bad.value, 2);
    assert.match(bad.err, /bad\.jsonc:2:\d+: limits\.maxBodyBytes must be an integer/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("infraveil proxy serves until SIGTERM and exits 0", async () => {
  const be = serveBackend();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", mainPath, "--listen", "127.0.0.1:0", "--backend", be.url],
    stderr: "piped",
    stdout: "null",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let text = "";
    let port = 0;
    while (!port) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`proxy exited early: ${text}`);
      text += value;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(text);
      if (m) port = Number(m[1]);
    }
    const [res] = await rawRequest(
      port,
      "GET /cli HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert.equal(res.status, 200);
    child.kill("SIGTERM");
    const status = await child.status;
    assert.equal(status.code, 0);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await reader.cancel().catch(() => {});
    await child.status;
    await be.close();
  }
});

const curl = (() => {
  try {
    return Deno.statSync("/usr/bin/curl").isFile ? "/usr/bin/curl" : undefined;
  } catch {
    return undefined;
  }
})();
if (!curl) {
  console.warn(
    `curl gzip test: /usr/bin/curl not found — ${mayskip() ? "skipped" : "failing (CI=true)"}`,
  );
}

Deno.test({
  name: "curl --compressed through the proxy gets the backend's gzip bytes and decodes them",
  ignore: !curl && mayskip(),
  fn: async () => {
    assert.ok(curl, "/usr/bin/curl is required under CI=true");
    const text = "hello, compressed world\n".repeat(200);
    const gz = new Uint8Array(
      await new Response(
        new Blob([text]).stream().pipeThrough(new CompressionStream("gzip")),
      ).arrayBuffer(),
    );
    const be = serveBackend((req) =>
      (req.headers.get("accept-encoding") ?? "").includes("gzip")
        ? new Response(gz, {
          headers: { "content-encoding": "gzip", "content-type": "text/plain" },
        })
        : new Response(text)
    );
    const px = startProxy(be.url, {});
    try {
      const out = await new Deno.Command(curl!, {
        args: ["--compressed", "-sS", "-D", "-", `${px.url}/gz`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const all = new TextDecoder().decode(out.stdout);
      const split = all.indexOf("\r\n\r\n");
      assert.match(all.slice(0, split), /content-encoding: gzip/i);
      assert.equal(all.slice(split + 4), text);
      const [raw] = await rawRequest(
        px.port,
        "GET /gz HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
      );
      assert.equal(header(raw, "content-encoding"), "gzip");
      assert.deepEqual(raw.body, gz);
    } finally {
      await px.close();
      await be.close();
    }
  },
});
