/**
 * Aho-Corasick automaton for `@pm` / `@pmFromFile`: case-insensitive (ASCII) search of many
 * phrases in one pass over the value.
 *
 * @module
 */

/** A compiled phrase set. */
export interface PhraseMatcher {
  /** Returns the first phrase found in `s` (as written in the list), or undefined. */
  find(s: string): string | undefined;
}

function lower(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

/**
 * Builds the automaton.
 *
 * @param phrases The phrases (empty ones are ignored).
 * @returns A matcher.
 */
export function buildPhraseMatcher(phrases: string[]): PhraseMatcher {
  // Bytes are mapped to equivalence classes (each byte used in a phrase gets its own class,
  // every other byte class 0), so DFA rows stay narrow and building is cheap.
  const cls = new Uint8Array(256);
  let k = 1;
  for (const p of phrases) {
    for (let i = 0; i < p.length; i++) {
      const c = lower(p.charCodeAt(i) & 0xff);
      if (cls[c] === 0) {
        cls[c] = k++;
        if (c >= 97 && c <= 122) cls[c - 32] = cls[c];
      }
    }
  }
  for (let c = 65; c <= 90; c++) if (cls[c + 32] !== 0) cls[c] = cls[c + 32];
  const width = k;
  let next = new Int32Array(width * 64).fill(-1);
  let states = 1;
  const fail: number[] = [0];
  const out: (string | undefined)[] = [undefined];
  for (const p of phrases) {
    if (p === "") continue;
    let st = 0;
    for (let i = 0; i < p.length; i++) {
      const c = cls[lower(p.charCodeAt(i) & 0xff)];
      let n = next[st * width + c];
      if (n < 0) {
        n = states++;
        if (states * width > next.length) {
          const bigger = new Int32Array(next.length * 2).fill(-1);
          bigger.set(next);
          next = bigger;
        }
        fail.push(0);
        out.push(undefined);
        next[st * width + c] = n;
      }
      st = n;
    }
    if (out[st] === undefined) out[st] = p;
  }
  const queue: number[] = [];
  for (let c = 0; c < width; c++) {
    const n = next[c];
    if (n < 0) next[c] = 0;
    else {
      fail[n] = 0;
      queue.push(n);
    }
  }
  for (let qi = 0; qi < queue.length; qi++) {
    const st = queue[qi];
    if (out[st] === undefined && out[fail[st]] !== undefined) out[st] = out[fail[st]];
    for (let c = 0; c < width; c++) {
      const n = next[st * width + c];
      if (n < 0) next[st * width + c] = next[fail[st] * width + c];
      else {
        fail[n] = next[fail[st] * width + c];
        queue.push(n);
      }
    }
  }
  const dfa = next;
  return {
    find(s: string): string | undefined {
      let st = 0;
      for (let i = 0; i < s.length; i++) {
        st = dfa[st * width + cls[s.charCodeAt(i) & 0xff]];
        const o = out[st];
        if (o !== undefined) return o;
      }
      return undefined;
    },
  };
}
