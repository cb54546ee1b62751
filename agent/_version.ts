/**
 * Release versions (SemVer 2.0.0 without build metadata) and UTC timestamps, parsed strictly.
 *
 * @module
 */

const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?$/;

/**
 * Whether a string is a release version: `MAJOR.MINOR.PATCH` with an optional SemVer
 * pre-release (`1.2.0-rc.1`). Build metadata (`+…`) is refused: two bundles must never share a
 * precedence while differing only in metadata.
 *
 * @param version the candidate
 * @returns whether it is acceptable
 */
export function isVersion(version: string): boolean {
  return version.length <= 128 && SEMVER.test(version);
}

function compareIdentifiers(a: string, b: string): number {
  const an = /^\d+$/.test(a);
  const bn = /^\d+$/.test(b);
  if (an && bn) return compareNumeric(a, b);
  if (an) return -1; // numeric identifiers have lower precedence
  if (bn) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareNumeric(a: string, b: string): number {
  // No leading zeros, so a longer digit string is a larger number; avoids Number overflow.
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Compares two versions by SemVer precedence.
 *
 * @param a a version accepted by {@link isVersion}
 * @param b a version accepted by {@link isVersion}
 * @returns negative when a < b, 0 when equal, positive when a > b
 */
export function compareVersions(a: string, b: string): number {
  const ma = SEMVER.exec(a);
  const mb = SEMVER.exec(b);
  if (!ma || !mb) throw new RangeError(`Not a version: ${ma ? b : a}`);
  for (let i = 1; i <= 3; i++) {
    const c = compareNumeric(ma[i], mb[i]);
    if (c !== 0) return Math.sign(c);
  }
  if (ma[4] === undefined || mb[4] === undefined) {
    // A release has higher precedence than any of its pre-releases.
    return ma[4] === mb[4] ? 0 : ma[4] === undefined ? 1 : -1;
  }
  const pa = ma[4].split(".");
  const pb = mb[4].split(".");
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const c = compareIdentifiers(pa[i], pb[i]);
    if (c !== 0) return Math.sign(c);
  }
  return Math.sign(pa.length - pb.length);
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

/**
 * Parses a UTC timestamp of the one form we write: `YYYY-MM-DDTHH:MM:SSZ`.
 *
 * @param text the timestamp
 * @returns milliseconds since the epoch, or null when it is not of that form or not a real date
 */
export function parseTimestamp(text: string): number | null {
  const m = TIMESTAMP.exec(text);
  if (!m) return null;
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  return formatTimestamp(ms) === text ? ms : null;
}

/**
 * Formats milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (whole seconds, rounded down).
 *
 * @param ms milliseconds since the epoch
 * @returns the timestamp
 */
export function formatTimestamp(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}
