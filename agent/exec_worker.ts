/**
 * The exec worker: runs one configured command at a time, with the exact program path and
 * argument vector it is given (never through a shell), a cleared environment, a timeout and
 * bounded output. Its permissions allow running the configured programs and nothing else, so
 * even a confused supervisor cannot make it start another program or touch a file.
 *
 * Requests: `exec {command, args, cwd?, env, timeoutMs, maxOutputBytes}` → {@link ExecResult};
 * `ping`; `probe {probe}` (the sandbox self-test).
 *
 * @module
 */
import { runSandboxProbe, type SandboxProbe } from "./_sandbox_probe.ts";
import { inWorker, type RpcScope, serveRequests } from "./_worker_protocol.ts";

/** A command to run. */
export interface ExecRequest {
  /** Absolute program path. */
  command: string;
  /** The argument vector, placeholders already substituted. */
  args: string[];
  /** Working directory. */
  cwd?: string;
  /** The whole environment of the command. */
  env: Record<string, string>;
  /** Kill after this many ms. */
  timeoutMs: number;
  /** Keep at most this many bytes of stdout and of stderr. */
  maxOutputBytes: number;
}

/** How a command ended. */
export interface ExecResult {
  /** Exit code (null when it was killed by a signal or could not start). */
  exitCode: number | null;
  /** The signal that ended it, if any. */
  signal: string | null;
  /** Whether the timeout killed it. */
  timedOut: boolean;
  /** The first `maxOutputBytes` of stdout (UTF-8, invalid bytes replaced). */
  stdout: string;
  /** The first `maxOutputBytes` of stderr. */
  stderr: string;
  /** Total stdout bytes produced. */
  stdoutBytes: number;
  /** Total stderr bytes produced. */
  stderrBytes: number;
  /** Wall time, ms. */
  durationMs: number;
  /** Why it could not start, when it could not. */
  error?: string;
}

async function drain(
  stream: ReadableStream<Uint8Array>,
  max: number,
): Promise<{ text: string; bytes: number }> {
  const kept = new Uint8Array(max);
  let have = 0;
  let total = 0;
  for await (const chunk of stream) {
    total += chunk.length;
    if (have < max) {
      const n = Math.min(max - have, chunk.length);
      kept.set(chunk.subarray(0, n), have);
      have += n;
    }
  }
  return { text: new TextDecoder().decode(kept.subarray(0, have)), bytes: total };
}

/**
 * Runs one command: no shell, cleared environment, timeout (SIGTERM, then SIGKILL after a
 * second), bounded output.
 *
 * @param request what to run
 * @returns how it ended
 */
export async function runCommand(request: ExecRequest): Promise<ExecResult> {
  const started = Date.now();
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(request.command, {
      args: request.args,
      cwd: request.cwd,
      env: request.env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    return {
      exitCode: null,
      signal: null,
      timedOut: false,
      stdout: "",
      stderr: "",
      stdoutBytes: 0,
      stderrBytes: 0,
      durationMs: Date.now() - started,
      error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    };
  }
  let timedOut = false;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    killTimer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, 1000);
  }, request.timeoutMs);
  const [out, err, status] = await Promise.all([
    drain(child.stdout, request.maxOutputBytes),
    drain(child.stderr, request.maxOutputBytes),
    child.status,
  ]);
  clearTimeout(timer);
  clearTimeout(killTimer);
  return {
    exitCode: status.signal === null ? status.code : null,
    signal: status.signal,
    timedOut,
    stdout: out.text,
    stderr: err.text,
    stdoutBytes: out.bytes,
    stderrBytes: err.bytes,
    durationMs: Date.now() - started,
  };
}

/**
 * Installs the exec worker's request handlers on a worker scope.
 *
 * @param scope the worker's global scope
 */
export function runExecWorker(scope: RpcScope): void {
  serveRequests(scope, {
    exec: (r) => runCommand(r as unknown as ExecRequest),
    ping: () => "pong",
    probe: (r) => runSandboxProbe(r.probe as SandboxProbe),
  });
}

if (inWorker()) runExecWorker(globalThis as unknown as RpcScope);
