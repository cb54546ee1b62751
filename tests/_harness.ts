/**
 * Test harness helpers shared by every member's tests: where the shared vectors are, and
 * whether a service the test needs is installed.
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
