// Ed25519 sign and strict verify (noble, pure JS) against WebCrypto's native Ed25519 (the
// platform peer), in the same run.
import { generateKeyPair, signEd25519, verifyEd25519, verifyEd25519Async } from "./ed25519.ts";
import { encodeBase64Url } from "./encoding.ts";

const pair = generateKeyPair();
const msg = new TextEncoder().encode("infraveil-msg/v1\n" + "x".repeat(200));
const sig = signEd25519(pair.privateKey, msg);
const wcPriv = await crypto.subtle.importKey(
  "jwk",
  {
    kty: "OKP",
    crv: "Ed25519",
    d: encodeBase64Url(pair.privateKey),
    x: encodeBase64Url(pair.publicKey),
  },
  "Ed25519",
  false,
  ["sign"],
);
const wcPub = await crypto.subtle.importKey(
  "raw",
  pair.publicKey as Uint8Array<ArrayBuffer>,
  "Ed25519",
  false,
  ["verify"],
);

Deno.bench("signEd25519 (noble)", { group: "sign", baseline: true }, () => {
  signEd25519(pair.privateKey, msg);
});
Deno.bench("WebCrypto Ed25519 sign (peer)", { group: "sign" }, async () => {
  await crypto.subtle.sign("Ed25519", wcPriv, msg);
});
Deno.bench("verifyEd25519 strict (noble)", { group: "verify", baseline: true }, () => {
  if (!verifyEd25519(pair.publicKey, msg, sig)) throw new Error("bad");
});
Deno.bench("verifyEd25519Async strict (JS checks + node:crypto)", { group: "verify" }, async () => {
  if (!(await verifyEd25519Async(pair.publicKey, msg, sig))) throw new Error("bad");
});
Deno.bench("WebCrypto Ed25519 verify (peer)", { group: "verify" }, async () => {
  await crypto.subtle.verify("Ed25519", wcPub, sig as Uint8Array<ArrayBuffer>, msg);
});
