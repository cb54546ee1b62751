// A proxy worker plus a probe that tries to step outside the worker's permissions.
import "../worker.ts";

interface Probe {
  type: "probe";
  path: string;
  otherPort: number;
}

async function attempt(f: () => unknown): Promise<string> {
  try {
    await f();
    return "allowed";
  } catch (err) {
    return (err as Error).name;
  }
}

const scope = globalThis as unknown as {
  addEventListener(type: "message", listener: (e: MessageEvent) => void): void;
  postMessage(message: unknown): void;
};

scope.addEventListener("message", async (e: MessageEvent) => {
  const msg = e.data as Probe;
  if (msg?.type !== "probe") return;
  const results = {
    read: await attempt(() => Deno.readTextFile(msg.path)),
    readSync: await attempt(() => Deno.readFileSync(msg.path)),
    write: await attempt(() => Deno.writeTextFile(`${msg.path}.written`, "x")),
    env: await attempt(() => Deno.env.get("HOME")),
    run: await attempt(() => new Deno.Command("true").output()),
    otherNet: await attempt(() => Deno.connect({ hostname: "127.0.0.1", port: msg.otherPort })),
  };
  scope.postMessage({ type: "probe-result", results });
});
