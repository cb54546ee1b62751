/**
 * Test harness helpers shared by every member's tests: where the shared vectors are, whether
 * a service the test needs is installed, and loopback ports for listeners named in advance.
 *
 * Outside CI a missing dependency skips the test with a visible message; with `CI=true`
 * (where `.ci/run` installed everything) it fails the test instead.
 *
 * @module
 */

/** Whether this run is CI, where every service must be present. */
export const IN_CI: boolean = Deno.env.get("CI") === "true";

const ROOT = new URL("../", import.meta.url);

/** Absolute path of a file or folder in the project. */
export function projectPath(rel: string): string {
  return new URL(rel, ROOT).pathname;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

const announced = new Set<string>();
function announce(what: string, why: string): void {
  if (announced.has(what)) return;
  announced.add(what);
  console.error(`%cSKIP ${what}: ${why}`, "color: yellow");
}

/**
 * Path of something in `../shared` beside the project, or `undefined` (with a visible skip
 * message) when it is absent. Under CI an absent path is an error.
 *
 * @param rel path inside `../shared`, e.g. `vectors/wycheproof/ed25519_test.json`
 * @returns the absolute path, or undefined when absent outside CI
 */
export function sharedPath(rel: string): string | undefined {
  const path = new URL(`../shared/${rel}`, ROOT).pathname;
  if (exists(path)) return path;
  if (IN_CI) throw new Error(`CI=true but ../shared/${rel} is missing`);
  announce(`tests using ../shared/${rel}`, "not found beside the project");
  return undefined;
}

/**
 * Finds an executable on PATH (or at an absolute path).
 *
 * @param name command name
 * @returns its path, or undefined
 */
export function findCommand(name: string): string | undefined {
  if (name.startsWith("/")) return exists(name) ? name : undefined;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir && exists(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  for (const dir of ["/usr/sbin", "/sbin", "/usr/local/sbin"]) {
    if (exists(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

/**
 * Whether tests needing a command should be ignored: true (with a visible message) when it
 * is missing outside CI; false when present. Under CI a missing command makes this throw, so
 * the suite fails rather than silently skipping.
 *
 * @param name the command, e.g. `minisign`
 * @param hint how to install it
 * @returns whether to ignore the tests
 */
export function ignoreWithout(name: string, hint = `apt-get install ${name}`): boolean {
  if (findCommand(name)) return false;
  if (IN_CI) throw new Error(`CI=true but \`${name}\` is not installed (${hint})`);
  announce(`tests needing ${name}`, `\`${name}\` is not installed (${hint})`);
  return true;
}

const DEFAULT_EPHEMERAL_LOW = 32768;
const LOWEST_PORT = 10000;
const handedOut = new Set<number>();

/** The lowest port the kernel hands out for `port: 0` and outgoing connections. */
function ephemeralLow(): number {
  const path = "/proc/sys/net/ipv4/ip_local_port_range";
  try {
    if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") {
      return DEFAULT_EPHEMERAL_LOW;
    }
    const low = Number(Deno.readTextFileSync(path).trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > LOWEST_PORT + 1000 ? low : DEFAULT_EPHEMERAL_LOW;
  } catch {
    return DEFAULT_EPHEMERAL_LOW;
  }
}

/**
 * A loopback port that is free now, for a listener that must be named before it starts (a
 * config file, a restart that keeps its port).
 *
 * It is chosen at random below the kernel's ephemeral range: a port taken from that range (by
 * listening on port 0) can be handed to an outgoing connection, or to another listener, in the
 * moment before its real user binds it. No port is handed out twice in one process.
 *
 * @returns the port
 */
export function freePort(): number {
  const low = ephemeralLow();
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = LOWEST_PORT + Math.floor(Math.random() * (low - LOWEST_PORT));
    if (handedOut.has(port)) continue;
    let listener: Deno.Listener;
    try {
      listener = Deno.listen({ hostname: "127.0.0.1", port });
    } catch (e) {
      if (e instanceof Deno.errors.AddrInUse || e instanceof Deno.errors.PermissionDenied) continue;
      throw e;
    }
    listener.close();
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free loopback port found between ${LOWEST_PORT} and ${low}`);
}
