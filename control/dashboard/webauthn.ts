/**
 * Passkey ceremonies of the dashboard (WebAuthn, verified with `@simplewebauthn/server`):
 * registration at sign-up, sign-in, and the per-vote assertion whose challenge is bound to
 * the request's action hash and the decision.
 *
 * Ceremony state travels with the browser as a sealed token (HMAC-SHA256 under the
 * dashboard's secret) carrying the purpose, tenant, user, binding and expiry, so any
 * control-plane instance sharing the secret can finish a ceremony another began; each
 * token's nonce is used once (the passkey store records it), so an assertion can never be
 * replayed.
 *
 * The approval challenge is
 * `base64url(SHA-256("infraveil-approve/v1\n" + action_hash + "\n" + decision + "\n" + nonce))`:
 * an assertion for one request, or for "approve", never verifies for another request or for
 * "reject".
 *
 * This module must never accept an assertion whose credential belongs to another user, whose
 * challenge it did not issue, or whose user verification flag is not set.
 *
 * @module
 */
import {
  type AuthenticationResponseJSON,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from "@simplewebauthn/server";
import {
  decodeBase64Url,
  encodeBase64Url,
  hmacSha256,
  sha256,
  timingSafeEqual,
  utf8,
} from "@infraveil/trust";
import type { ApprovalProofVerifier } from "../_context.ts";
import { ControlError } from "../error.ts";
import type { PasskeyRow, PasskeyStore } from "./passkey_store.ts";

/** What the ceremonies need. */
export interface PasskeyConfig {
  /** Credentials, nonces, proofs. */
  passkeys: PasskeyStore;
  /** The dashboard's origin, e.g. `https://control.example.com` (exact match). */
  origin: string;
  /** WebAuthn relying-party id: the origin's host name (a domain, never an IP address). */
  rpId: string;
  /** Name shown by the authenticator. */
  rpName: string;
  /** Key sealing ceremony state (≥ 32 bytes), the same on every instance. */
  secret: Uint8Array;
  /** Clock, ms. */
  now: () => number;
  /** Randomness. */
  random: (buf: Uint8Array) => Uint8Array;
  /** How long a ceremony may take, ms (default 5 minutes). */
  ceremonyMs?: number;
}

/** The sealed state of one ceremony. */
export interface CeremonyState {
  /** Purpose. */
  p: "register" | "login" | "approve";
  /** Tenant. */
  t: string;
  /** User id (register, approve). */
  u?: string;
  /** Request id (approve). */
  r?: string;
  /** Action hash (approve). */
  h?: string;
  /** Decision (approve). */
  d?: "approve" | "reject";
  /** The challenge, base64url (register, login). */
  c?: string;
  /** Expiry, ms. */
  e: number;
  /** Random nonce, base64url. */
  n: string;
}

const STATE_CONTEXT = "infraveil-dashboard-state/v1\n";
const APPROVE_CONTEXT = "infraveil-approve/v1\n";

function mac(cfg: PasskeyConfig, body: string): Uint8Array {
  return hmacSha256(cfg.secret, STATE_CONTEXT + body);
}

/**
 * Seals ceremony state into a token `base64url(JSON).base64url(HMAC)`.
 *
 * @param cfg the configuration
 * @param state the state
 * @returns the token
 */
export function sealState(cfg: PasskeyConfig, state: CeremonyState): string {
  const body = encodeBase64Url(utf8(JSON.stringify(state)));
  return `${body}.${encodeBase64Url(mac(cfg, body))}`;
}

/**
 * Opens a sealed token: MAC, purpose, tenant and expiry are checked.
 *
 * @param cfg the configuration
 * @param token the token
 * @param purpose the expected purpose
 * @param tenant the expected tenant
 * @returns the state
 * @throws {ControlError} `BAD_PROOF` for a forged, foreign or expired token
 */
export function openState(
  cfg: PasskeyConfig,
  token: unknown,
  purpose: CeremonyState["p"],
  tenant: string,
): CeremonyState {
  const bad = (why: string) =>
    new ControlError("BAD_PROOF", `Passkey ceremony refused: ${why}; start again`);
  if (typeof token !== "string" || token.length > 2048) throw bad("missing ceremony state");
  const [body, sig, extra] = token.split(".");
  if (!body || !sig || extra !== undefined) throw bad("malformed ceremony state");
  let given: Uint8Array;
  try {
    given = decodeBase64Url(sig);
  } catch {
    throw bad("malformed ceremony state");
  }
  if (!timingSafeEqual(given, mac(cfg, body))) throw bad("ceremony state was not issued here");
  const state = JSON.parse(new TextDecoder().decode(decodeBase64Url(body))) as CeremonyState;
  if (state.p !== purpose) throw bad(`ceremony state is for ${state.p}, not ${purpose}`);
  if (state.t !== tenant) throw bad("ceremony state belongs to another tenant");
  if (!(state.e > cfg.now())) throw bad("the ceremony expired");
  return state;
}

/**
 * The challenge of a vote: base64url of SHA-256 over the request's action hash, the decision
 * and the server nonce.
 *
 * @param actionHash the request's `action_hash` (`sha256:<hex>`)
 * @param decision `approve` or `reject`
 * @param nonce the server nonce (the sealed ceremony token)
 * @returns the challenge, base64url
 * @example
 * ```ts
 * import { approvalChallenge } from "./webauthn.ts";
 * const a = approvalChallenge("sha256:00", "approve", "n");
 * if (a === approvalChallenge("sha256:00", "reject", "n")) throw new Error();
 * ```
 */
export function approvalChallenge(
  actionHash: string,
  decision: "approve" | "reject",
  nonce: string,
): string {
  return encodeBase64Url(sha256(`${APPROVE_CONTEXT}${actionHash}\n${decision}\n${nonce}`));
}

function ttl(cfg: PasskeyConfig): number {
  return cfg.ceremonyMs ?? 5 * 60_000;
}

function newNonce(cfg: PasskeyConfig): string {
  return encodeBase64Url(cfg.random(new Uint8Array(16)));
}

/** Options to hand to `navigator.credentials.create/get`, with the sealed state. */
export interface CeremonyStart<T> {
  /** WebAuthn options (JSON form). */
  options: T;
  /** Sealed state to send back with the response. */
  state: string;
}

/**
 * Begins registering a passkey for a user.
 *
 * @param cfg the configuration
 * @param input tenant, user and the user's existing credentials
 * @returns creation options and state
 */
export async function beginRegistration(
  cfg: PasskeyConfig,
  input: {
    tenant: string;
    userId: string;
    email: string;
    displayName: string;
    existing: PasskeyRow[];
  },
): Promise<CeremonyStart<PublicKeyCredentialCreationOptionsJSON>> {
  const challenge = cfg.random(new Uint8Array(32));
  const options = await generateRegistrationOptions({
    rpName: cfg.rpName,
    rpID: cfg.rpId,
    userName: input.email,
    userID: utf8(input.userId) as Uint8Array<ArrayBuffer>,
    userDisplayName: input.displayName,
    challenge: challenge as Uint8Array<ArrayBuffer>,
    timeout: ttl(cfg),
    attestationType: "none",
    excludeCredentials: input.existing.map((k) => ({ id: k.id, transports: k.transports })),
    authenticatorSelection: { residentKey: "required", userVerification: "required" },
    supportedAlgorithmIDs: [-8, -7, -257],
  });
  const state = sealState(cfg, {
    p: "register",
    t: input.tenant,
    u: input.userId,
    c: encodeBase64Url(challenge),
    e: cfg.now() + ttl(cfg),
    n: newNonce(cfg),
  });
  return { options, state };
}

/**
 * Finishes registration: verifies the attestation (user verification required), uses the
 * state's nonce once, and returns the credential row to store.
 *
 * @param cfg the configuration
 * @param input tenant, expected user, state, browser response and a label
 * @returns the verified credential (not yet stored)
 * @throws {ControlError} `BAD_PROOF` when anything does not verify
 */
export async function finishRegistration(
  cfg: PasskeyConfig,
  input: { tenant: string; userId: string; state: unknown; response: unknown; label?: string },
): Promise<PasskeyRow> {
  const state = openState(cfg, input.state, "register", input.tenant);
  if (state.u !== input.userId) {
    throw new ControlError("BAD_PROOF", "Passkey ceremony refused: state is for another user");
  }
  let info;
  try {
    const out = await verifyRegistrationResponse({
      response: input.response as RegistrationResponseJSON,
      expectedChallenge: state.c!,
      expectedOrigin: cfg.origin,
      expectedRPID: cfg.rpId,
      requireUserVerification: true,
    });
    if (!out.verified || !out.registrationInfo) throw new Error("not verified");
    info = out.registrationInfo;
  } catch (e) {
    throw new ControlError(
      "BAD_PROOF",
      `Passkey registration did not verify: ${(e as Error).message}`,
    );
  }
  if (!(await cfg.passkeys.useNonce(input.tenant, `register:${state.n}`, state.e, cfg.now()))) {
    throw new ControlError(
      "BAD_PROOF",
      "Passkey ceremony refused: this registration was already used",
    );
  }
  return {
    id: info.credential.id,
    userId: input.userId,
    publicKey: encodeBase64Url(info.credential.publicKey),
    counter: info.credential.counter,
    transports: info.credential.transports ?? [],
    label: input.label ?? null,
    createdAt: cfg.now(),
    lastUsedAt: null,
  };
}

/**
 * Begins a sign-in with a discoverable passkey (no user name asked).
 *
 * @param cfg the configuration
 * @param tenant the tenant
 * @returns request options and state
 */
export async function beginLogin(
  cfg: PasskeyConfig,
  tenant: string,
): Promise<CeremonyStart<PublicKeyCredentialRequestOptionsJSON>> {
  const challenge = cfg.random(new Uint8Array(32));
  const options = await generateAuthenticationOptions({
    rpID: cfg.rpId,
    challenge: challenge as Uint8Array<ArrayBuffer>,
    timeout: ttl(cfg),
    userVerification: "required",
  });
  const state = sealState(cfg, {
    p: "login",
    t: tenant,
    c: encodeBase64Url(challenge),
    e: cfg.now() + ttl(cfg),
    n: newNonce(cfg),
  });
  return { options, state };
}

async function verifyAssertion(
  cfg: PasskeyConfig,
  tenant: string,
  response: unknown,
  expectedChallenge: string,
  userId: string | null,
): Promise<{ key: PasskeyRow; counter: number }> {
  const r = response as AuthenticationResponseJSON | null;
  if (typeof r !== "object" || r === null || typeof r.id !== "string" || r.id.length > 1024) {
    throw new ControlError("BAD_PROOF", "Passkey assertion missing or malformed");
  }
  const key = await cfg.passkeys.getPasskey(tenant, r.id);
  if (!key) throw new ControlError("BAD_PROOF", "Passkey not registered in this tenant");
  if (userId !== null && key.userId !== userId) {
    throw new ControlError("BAD_PROOF", "Passkey belongs to another user");
  }
  try {
    const out = await verifyAuthenticationResponse({
      response: r,
      expectedChallenge,
      expectedOrigin: cfg.origin,
      expectedRPID: cfg.rpId,
      credential: {
        id: key.id,
        publicKey: decodeBase64Url(key.publicKey) as Uint8Array<ArrayBuffer>,
        counter: key.counter,
        transports: key.transports,
      },
      requireUserVerification: true,
    });
    if (!out.verified) throw new Error("signature does not verify");
    return { key, counter: out.authenticationInfo.newCounter };
  } catch (e) {
    throw new ControlError(
      "BAD_PROOF",
      `Passkey assertion did not verify: ${(e as Error).message}`,
    );
  }
}

/**
 * Finishes a sign-in: the assertion must verify against a credential registered in the
 * tenant; the nonce is used once.
 *
 * @param cfg the configuration
 * @param input tenant, state, response
 * @returns the signed-in user id and credential id
 * @throws {ControlError} `BAD_PROOF`
 */
export async function finishLogin(
  cfg: PasskeyConfig,
  input: { tenant: string; state: unknown; response: unknown },
): Promise<{ userId: string; credentialId: string }> {
  const state = openState(cfg, input.state, "login", input.tenant);
  const { key, counter } = await verifyAssertion(cfg, input.tenant, input.response, state.c!, null);
  if (!(await cfg.passkeys.useNonce(input.tenant, `login:${state.n}`, state.e, cfg.now()))) {
    throw new ControlError("BAD_PROOF", "Passkey ceremony refused: this sign-in was already used");
  }
  await cfg.passkeys.touchPasskey(input.tenant, key.id, counter, cfg.now());
  return { userId: key.userId, credentialId: key.id };
}

/**
 * Begins a vote: a fresh nonce, and a challenge bound to the request's action hash and the
 * decision. Only the user's own credentials are allowed.
 *
 * @param cfg the configuration
 * @param input tenant, user, request id and action hash, decision, the user's credentials
 * @returns request options and the nonce (the sealed state) to send back as the proof
 */
export async function beginApproval(
  cfg: PasskeyConfig,
  input: {
    tenant: string;
    userId: string;
    requestId: string;
    actionHash: string;
    decision: "approve" | "reject";
    credentials: PasskeyRow[];
  },
): Promise<CeremonyStart<PublicKeyCredentialRequestOptionsJSON> & { challenge: string }> {
  if (input.credentials.length === 0) {
    throw new ControlError("PROOF_REQUIRED", "Register a passkey (Account page) before voting");
  }
  const state = sealState(cfg, {
    p: "approve",
    t: input.tenant,
    u: input.userId,
    r: input.requestId,
    h: input.actionHash,
    d: input.decision,
    e: cfg.now() + ttl(cfg),
    n: newNonce(cfg),
  });
  const challenge = approvalChallenge(input.actionHash, input.decision, state);
  const options = await generateAuthenticationOptions({
    rpID: cfg.rpId,
    challenge: decodeBase64Url(challenge) as Uint8Array<ArrayBuffer>,
    timeout: ttl(cfg),
    userVerification: "required",
    allowCredentials: input.credentials.map((k) => ({
      id: k.id,
      transports: k.transports as never,
    })),
  });
  return { options, state, challenge };
}

/** The `proof` of a passkey vote, as sent to `POST …/requests/{id}/approve|reject`. */
export interface PasskeyProof {
  /** Always `webauthn`. */
  type: "webauthn";
  /** The nonce from {@link beginApproval} (its sealed state). */
  nonce: string;
  /** The browser's assertion (WebAuthn JSON). */
  response: AuthenticationResponseJSON;
}

/**
 * The approval proof verifier for `createControlApp({ verifyApprovalProof })`: checks that
 * the proof is a passkey assertion by the voting user, over a challenge this dashboard issued
 * for exactly this request's action hash and this decision, not expired and never used
 * before; records the assertion as the vote's proof; returns the method `passkey`.
 *
 * @param cfg the configuration
 * @returns the verifier
 */
export function passkeyApprovalVerifier(cfg: PasskeyConfig): ApprovalProofVerifier {
  return async ({ tenant, user, request, decision, proof }) => {
    const p = proof as Partial<PasskeyProof> | null;
    if (typeof p !== "object" || p === null || p.type !== "webauthn") {
      throw new ControlError(
        "BAD_PROOF",
        'The proof must be {"type": "webauthn", "nonce", "response"}',
      );
    }
    const state = openState(cfg, p.nonce, "approve", tenant);
    if (
      state.u !== user.id || state.r !== request.id || state.d !== decision ||
      state.h !== request.actionHash
    ) {
      throw new ControlError(
        "BAD_PROOF",
        "The passkey challenge was issued for another request, user or decision",
      );
    }
    const challenge = approvalChallenge(request.actionHash, decision, p.nonce!);
    const { key, counter } = await verifyAssertion(cfg, tenant, p.response, challenge, user.id);
    const now = cfg.now();
    if (!(await cfg.passkeys.useNonce(tenant, `approve:${state.n}`, state.e, now))) {
      throw new ControlError("BAD_PROOF", "This passkey assertion was already used (replay)");
    }
    await cfg.passkeys.touchPasskey(tenant, key.id, counter, now);
    await cfg.passkeys.insertProof(tenant, {
      requestId: request.id,
      userId: user.id,
      decision,
      actionHash: request.actionHash,
      credentialId: key.id,
      nonce: p.nonce!,
      challenge,
      assertion: JSON.stringify(p.response),
      createdAt: now,
    });
    return "passkey";
  };
}
