import assert from "node:assert/strict";
import { decodeBase64, decodeHex, encodeHex, TrustError } from "@infraveil/trust";
import {
  CompactTree,
  EMPTY_ROOT,
  hashLeaf,
  MerkleTree,
  verifyConsistency,
  verifyInclusion,
} from "./merkle.ts";

const VECTORS = new URL("../../shared/vectors/merkle/", import.meta.url);
const CI = Deno.env.get("CI") === "true";
let haveVectors = true;
try {
  Deno.statSync(VECTORS);
} catch {
  haveVectors = false;
  if (!CI) console.warn("skipping Merkle vector tests: ../shared/vectors/merkle is absent");
}

function b64(text: string | null | undefined): Uint8Array {
  if (!text) return new Uint8Array(0);
  try {
    return decodeBase64(text);
  } catch (e) {
    if (e instanceof TrustError) return new Uint8Array(1); // undecodable: a wrong-length hash
    throw e;
  }
}

function* vectorFiles(kind: string): Generator<[string, Record<string, unknown>]> {
  const dir = new URL(`${kind}/`, VECTORS);
  const walk = function* (d: URL, rel: string): Generator<[string, Record<string, unknown>]> {
    for (const e of [...Deno.readDirSync(d)].sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isDirectory) yield* walk(new URL(`${e.name}/`, d), `${rel}${e.name}/`);
      else if (e.name.endsWith(".json")) {
        yield [`${rel}${e.name}`, JSON.parse(Deno.readTextFileSync(new URL(e.name, d)))];
      }
    }
  };
  yield* walk(dir, "");
}

Deno.test({
  name: "verifyInclusion() and verifyConsistency() agree with every transparency-dev vector",
  ignore: !haveVectors && !CI,
  fn() {
    let count = 0;
    for (const [name, v] of vectorFiles("inclusion")) {
      const ok = verifyInclusion({
        index: v.leafIdx as number,
        size: v.treeSize as number,
        leafHash: b64(v.leafHash as string),
        proof: ((v.proof as string[] | null) ?? []).map(b64),
        root: b64(v.root as string),
      });
      assert.equal(ok, !v.wantErr, `inclusion/${name}: ${v.desc}`);
      count++;
    }
    for (const [name, v] of vectorFiles("consistency")) {
      const ok = verifyConsistency({
        size1: v.size1 as number,
        size2: v.size2 as number,
        root1: b64(v.root1 as string),
        root2: b64(v.root2 as string),
        proof: ((v.proof as string[] | null) ?? []).map(b64),
      });
      assert.equal(ok, !v.wantErr, `consistency/${name}: ${v.desc}`);
      count++;
    }
    assert.equal(count, 196);
  },
});

// Reference leaves and roots from transparency-dev/merkle testonly/constants.go.
const LEAVES = [
  "",
  "00",
  "10",
  "2021",
  "3031",
  "40414243",
  "5051525354555657",
  "606162636465666768696a6b6c6d6e6f",
];
const ROOTS = [
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

Deno.test("MerkleTree and CompactTree reproduce the reference roots for sizes 0..8", () => {
  const tree = new MerkleTree();
  const compact = new CompactTree();
  assert.equal(encodeHex(tree.root()), ROOTS[0]);
  assert.equal(encodeHex(EMPTY_ROOT), ROOTS[0]);
  for (let i = 0; i < LEAVES.length; i++) {
    const h = hashLeaf(decodeHex(LEAVES[i]));
    tree.append(h);
    compact.append(h);
    assert.equal(encodeHex(tree.root()), ROOTS[i + 1]);
    assert.equal(encodeHex(compact.root()), ROOTS[i + 1]);
  }
  for (let s = 0; s <= 8; s++) assert.equal(encodeHex(tree.root(s)), ROOTS[s]);
});

Deno.test("MerkleTree proofs verify for every index and size pair up to 40", () => {
  const tree = new MerkleTree();
  for (let i = 0; i < 40; i++) tree.append(hashLeaf(new TextEncoder().encode(`leaf ${i}`)));
  for (let size = 1; size <= 40; size++) {
    const root = tree.root(size);
    for (let i = 0; i < size; i++) {
      const proof = tree.inclusionProof(i, size);
      assert.ok(verifyInclusion({ index: i, size, leafHash: tree.leafHash(i), proof, root }));
      // Any other leaf, index or root fails.
      assert.ok(
        !verifyInclusion({ index: i, size, leafHash: tree.leafHash((i + 1) % 40), proof, root }) ||
          size === 1 && i === 0 && false,
      );
      if (size > 1) {
        assert.ok(
          !verifyInclusion({
            index: (i + 1) % size,
            size,
            leafHash: tree.leafHash(i),
            proof,
            root,
          }),
        );
      }
    }
    for (let m = 1; m <= size; m++) {
      const proof = tree.consistencyProof(m, size);
      assert.ok(
        verifyConsistency({ size1: m, size2: size, root1: tree.root(m), root2: root, proof }),
      );
      if (m < size) {
        assert.ok(!verifyConsistency({ size1: m, size2: size, root1: root, root2: root, proof }));
      }
    }
  }
});

Deno.test("CompactTree rejects a frontier that does not fit its size", () => {
  assert.throws(() => new CompactTree(3, [new Uint8Array(32)]), /needs 2 hashes/);
  const t = new CompactTree();
  for (let i = 0; i < 11; i++) t.append(hashLeaf(new Uint8Array([i])));
  const copy = new CompactTree(t.size, t.frontier);
  assert.deepEqual(copy.root(), t.root());
});

Deno.test("MerkleTree rejects out-of-range proofs with a clear error", () => {
  const tree = new MerkleTree();
  tree.append(hashLeaf(new Uint8Array()));
  assert.throws(() => tree.inclusionProof(1, 1), /leaf index 1/);
  assert.throws(() => tree.consistencyProof(0, 1), /old tree size 0/);
  assert.throws(() => tree.root(2), /tree size 2/);
});

Deno.test("CompactTree.appendAll() gives the frontier and root of appending one by one", () => {
  const leaves = new Uint8Array(32 * 1100);
  for (let i = 0; i < 1100; i++) {
    leaves.set(hashLeaf(new TextEncoder().encode(`leaf ${i}`)), 32 * i);
  }
  // Split points around powers of two, odd and even starting sizes, single leaves.
  const cuts = [
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    9,
    15,
    16,
    17,
    63,
    64,
    65,
    100,
    255,
    256,
    257,
    511,
    1023,
    1100,
  ];
  for (const a of cuts) {
    for (const b of cuts) {
      if (b < a) continue;
      const one = new CompactTree();
      for (let i = 0; i < b; i++) one.append(leaves.subarray(32 * i, 32 * i + 32));
      const batch = new CompactTree();
      for (let i = 0; i < a; i++) batch.append(leaves.subarray(32 * i, 32 * i + 32));
      batch.appendAll(leaves, a, b - a);
      assert.equal(batch.size, b);
      assert.deepEqual(batch.frontier, one.frontier, `${a}..${b}`);
      assert.deepEqual(batch.root(), one.root(), `${a}..${b}`);
    }
  }
  // A tree whose size needs more than 32 bits.
  const big = new CompactTree(2 ** 40 + 1, [
    new Uint8Array(32).fill(1),
    new Uint8Array(32).fill(2),
  ]);
  const step = big.clone();
  for (let i = 0; i < 5; i++) step.append(leaves.subarray(32 * i, 32 * i + 32));
  big.appendAll(leaves, 0, 5);
  assert.deepEqual(big.frontier, step.frontier);
  assert.equal(big.size, 2 ** 40 + 6);
});

Deno.test("CompactTree.appendAll() rejects a range outside the hashes", () => {
  const t = new CompactTree();
  assert.throws(() => t.appendAll(new Uint8Array(64), 1, 2), /Cannot append hashes 1..3 of 2/);
  assert.throws(() => t.appendAll(new Uint8Array(64), -1, 1), /Cannot append/);
  assert.equal(t.size, 0);
});
