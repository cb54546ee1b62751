/**
 * Fast key tests for variable selectors such as `TX:/^header_name_920450_/`.
 *
 * @module
 */

/**
 * The literal of a selector regex that is `^` and letters, digits or `_` only, lowercased, with
 * flags `i` only (e.g. CRS's `TX:/^header_name_920450_/`); undefined otherwise. Without the `u`
 * and `v` flags an ASCII letter matches only its two cases, and digits and `_` only themselves,
 * so `re.test(k)` is exactly {@linkcode hasKeyPrefix}`(k, prefix)`.
 *
 * @param re A selector regex.
 * @returns The lowercased literal, or undefined.
 */
export function keyPrefixOf(re: RegExp): string | undefined {
  if (re.flags !== "i" || !/^\^[A-Za-z0-9_]+$/.test(re.source)) return undefined;
  return re.source.slice(1).toLowerCase();
}

/**
 * Whether `k` starts with `prefix` (lowercase), ASCII letters compared case-insensitively.
 *
 * @param k A key.
 * @param prefix A literal from {@linkcode keyPrefixOf}.
 * @returns Whether it starts with it.
 */
export function hasKeyPrefix(k: string, prefix: string): boolean {
  if (k.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    let c = k.charCodeAt(i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== prefix.charCodeAt(i)) return false;
  }
  return true;
}
