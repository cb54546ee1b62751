import assert from "node:assert/strict";
import fc from "fast-check";
import { type ArchiveFile, packArchive, pathProblem, unpackArchive } from "./_archive.ts";
import { AgentError } from "./error.ts";

const enc = new TextEncoder();
const file = (path: string, text = path): ArchiveFile => ({ path, data: enc.encode(text) });

function archiveCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof AgentError) return e.code;
    throw e;
  }
  return "ACCEPTED";
}

/** Hand-encodes an archive without packArchive's checks. */
function raw(entries: [string, string][], trailing: number[] = []): Uint8Array {
  const parts: number[] = [0x49, 0x56, 0x41, 0x31, 0, 0, 0, entries.length];
  for (const [path, text] of entries) {
    const p = enc.encode(path);
    const d = enc.encode(text);
    parts.push(p.length >> 8, p.length & 255, ...p, 0, 0, d.length >> 8, d.length & 255, ...d);
  }
  return new Uint8Array([...parts, ...trailing]);
}

Deno.test("packArchive() sorts by path and unpackArchive() round-trips", () => {
  const files = [file("z.ts"), file("a/b.ts"), file("a.ts", ""), file("é.ts")];
  const out = unpackArchive(packArchive(files));
  assert.deepEqual(out.map((f) => f.path), ["a.ts", "a/b.ts", "z.ts", "é.ts"]);
  assert.deepEqual(out[1].data, enc.encode("a/b.ts"));
  assert.equal(out[0].data.length, 0);
});

Deno.test("pathProblem() refuses traversal, absolute, empty and control-character paths", () => {
  for (
    const bad of [
      "",
      "/etc/passwd",
      "../x",
      "a/../b",
      "a/./b",
      "./a",
      "a//b",
      "a/",
      "a\\b",
      "a\u0000b",
      "a\nb",
    ]
  ) {
    assert.notEqual(pathProblem(bad), null, JSON.stringify(bad));
  }
  for (const good of ["a", "a/b.ts", ".hidden", "a..b", "dir/...", "ünï/cödé.ts"]) {
    assert.equal(pathProblem(good), null, good);
  }
});

Deno.test("packArchive() refuses bad paths, duplicates and a file that is also a directory", () => {
  assert.equal(archiveCode(() => packArchive([file("../x")])), "BAD_ARCHIVE");
  assert.equal(archiveCode(() => packArchive([file("/abs")])), "BAD_ARCHIVE");
  assert.equal(archiveCode(() => packArchive([file("a"), file("a")])), "BAD_ARCHIVE");
  assert.equal(archiveCode(() => packArchive([file("a"), file("a/b")])), "BAD_ARCHIVE");
});

Deno.test("unpackArchive() refuses traversal, duplicates, disorder, truncation and trailing bytes", () => {
  assert.equal(archiveCode(() => unpackArchive(raw([["a", "1"], ["b", "2"]]))), "ACCEPTED");
  const cases: [string, Uint8Array][] = [
    ["dot-dot", raw([["../a", "1"]])],
    ["absolute", raw([["/a", "1"]])],
    ["duplicate", raw([["a", "1"], ["a", "2"]])],
    ["out of order", raw([["b", "1"], ["a", "2"]])],
    ["file and directory", raw([["a", "1"], ["a/b", "2"]])],
    ["trailing bytes", raw([["a", "1"]], [0])],
    ["truncated", raw([["a", "12345"]]).subarray(0, 14)],
    ["empty path", raw([["", "1"]])],
    ["bad magic", new Uint8Array([0x49, 0x56, 0x41, 0x32, 0, 0, 0, 0])],
    ["short", new Uint8Array(3)],
  ];
  for (const [name, bytes] of cases) {
    assert.equal(archiveCode(() => unpackArchive(bytes)), "BAD_ARCHIVE", name);
  }
  const invalidUtf8 = raw([["a", "1"]]);
  invalidUtf8[10] = 0xff; // the path byte
  assert.equal(archiveCode(() => unpackArchive(invalidUtf8)), "BAD_ARCHIVE");
});

Deno.test("unpackArchive() throws only AgentError on arbitrary bytes", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const input = bytes.length >= 4 ? bytes : new Uint8Array([0x49, 0x56, 0x41, 0x31, ...bytes]);
      const code = archiveCode(() => unpackArchive(input));
      return code === "BAD_ARCHIVE" || code === "ACCEPTED";
    }),
    { numRuns: 2000 },
  );
});

Deno.test("packArchive() round-trips any set of acceptable files", () => {
  const segment = fc.stringMatching(/^[a-zA-Z0-9_é.-]{1,8}$/).filter((s) =>
    s !== "." && s !== ".."
  );
  const path = fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join("/"));
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.tuple(path, fc.uint8Array({ maxLength: 16 })), {
        selector: ([p]) => p,
        maxLength: 6,
      }),
      (entries) => {
        const files = entries.map(([p, data]) => ({ path: p, data }));
        let packed: Uint8Array;
        try {
          packed = packArchive(files);
        } catch (e) {
          // Only the file-and-directory clash may refuse a set of unique, acceptable paths.
          return e instanceof AgentError && /both a file/.test(e.message);
        }
        const out = unpackArchive(packed);
        const byPath = new Map(files.map((f) => [f.path, f.data]));
        return out.length === files.length &&
          out.every((f) => {
            const want = byPath.get(f.path);
            return want !== undefined && want.length === f.data.length &&
              want.every((b, i) => b === f.data[i]);
          });
      },
    ),
    { numRuns: 300 },
  );
});
