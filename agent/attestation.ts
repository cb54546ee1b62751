/**
 * Release attestations: a DSSE envelope (Ed25519 over DSSE's PAE) holding an in-toto
 * Statement v1 whose subject is the released file (name and SHA-256) and whose predicate is
 * SLSA provenance v1 (builder, build time, source revision where known).
 *
 * Verification reads top to bottom: envelope shape → payload type → key (trusted, unrevoked)
 * → signature → statement → subject name → digest. Nothing in the statement is looked at before
 * its signature has verified.
 *
 * @module
 */
import {
  canonicalBytes,
  type DsseEnvelope,
  type Ed25519KeyPair,
  type Ed25519PublicKey,
  signDsse,
  TrustError,
  verifyDsse,
} from "@infraveil/trust";
import { sha256HexBulk } from "./_digest.ts";
import { AgentError } from "./error.ts";

/** DSSE payload type of in-toto statements. */
export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";
/** in-toto Statement v1 `_type`. */
export const IN_TOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1";
/** SLSA provenance v1 predicate type. */
export const SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1";
/** The `buildType` of our release signing step. */
export const RELEASE_BUILD_TYPE = "urn:infraveil:release-sign:v1";
/** Builder id used when none is given. */
export const DEFAULT_BUILDER_ID = "urn:infraveil:builder:cli";

/** Where the released file was built from. */
export interface AttestationSource {
  /** Repository URI, e.g. `git+https://example.org/repo.git`. */
  uri?: string;
  /** Git commit (40 or 64 hex). */
  revision?: string;
}

/** Options of {@link createAttestation}. */
export interface CreateAttestationOptions {
  /** Builder id (default {@link DEFAULT_BUILDER_ID}). */
  builderId?: string;
  /** Source repository and revision, where known. */
  source?: AttestationSource;
  /** When the build started, ms (default: now). */
  startedOn?: number;
  /** Current time in ms (default `Date.now`). */
  now?: () => number;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Signs a release attestation for a file.
 *
 * @param data the file's bytes
 * @param name the subject name (the file's base name)
 * @param key the release key pair
 * @param options builder, source, times
 * @returns the DSSE envelope
 * @example
 * ```ts
 * import { generateKeyPair } from "@infraveil/trust";
 * import { createAttestation, verifyAttestation } from "@infraveil/agent";
 * const key = generateKeyPair();
 * const data = new TextEncoder().encode("release");
 * const env = createAttestation(data, "app.tar.gz", key);
 * const out = await verifyAttestation(env, data, { name: "app.tar.gz", keys: [key] });
 * if (out.kid !== key.kid) throw new Error();
 * ```
 */
export function createAttestation(
  data: Uint8Array,
  name: string,
  key: Pick<Ed25519KeyPair, "kid" | "privateKey">,
  options: CreateAttestationOptions = {},
): DsseEnvelope {
  const { builderId = DEFAULT_BUILDER_ID, source = {}, now = Date.now } = options;
  const finished = now();
  const buildDefinition: Record<string, unknown> = {
    buildType: RELEASE_BUILD_TYPE,
    externalParameters: { artifact: name },
  };
  if (source.revision || source.uri) {
    const dependency: Record<string, unknown> = {};
    if (source.uri) dependency.uri = source.uri;
    if (source.revision) dependency.digest = { gitCommit: source.revision };
    buildDefinition.resolvedDependencies = [dependency];
  }
  const statement = {
    _type: IN_TOTO_STATEMENT_V1,
    subject: [{ name, digest: { sha256: sha256HexBulk(data) } }],
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition,
      runDetails: {
        builder: { id: builderId },
        metadata: { startedOn: iso(options.startedOn ?? finished), finishedOn: iso(finished) },
      },
    },
  };
  return signDsse(IN_TOTO_PAYLOAD_TYPE, canonicalBytes(statement), key);
}

/** A verified attestation. */
export interface VerifiedAttestation {
  /** Subject name. */
  subject: string;
  /** Subject SHA-256, lowercase hex. */
  sha256: string;
  /** Id of the key whose signature verified. */
  kid: string;
  /** The predicate type. */
  predicateType: string;
  /** SLSA builder id, when present. */
  builderId?: string;
  /** SLSA build type, when present. */
  buildType?: string;
  /** Build finish time, when present. */
  finishedOn?: string;
  /** Source URI and revision, when present. */
  source?: { uri?: string; revision?: string };
}

/** Options of {@link verifyAttestation}. */
export interface VerifyAttestationOptions {
  /** The subject name the file must have. */
  name: string;
  /** Trusted public keys. */
  keys: readonly Ed25519PublicKey[];
  /** Key ids to refuse. */
  revokedKids?: readonly string[];
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Verifies a release attestation against a file.
 *
 * @param envelope the parsed DSSE envelope JSON
 * @param data the file's bytes
 * @param options expected name, trusted keys, revoked ids
 * @returns what the attestation says
 * @throws {AgentError} `MALFORMED`, `WRONG_PAYLOAD_TYPE`, `UNKNOWN_KEY`, `REVOKED_KEY`,
 *   `BAD_SIGNATURE`, `SUBJECT_MISMATCH` or `DIGEST_MISMATCH`
 */
export async function verifyAttestation(
  envelope: unknown,
  data: Uint8Array,
  options: VerifyAttestationOptions,
): Promise<VerifiedAttestation> {
  const { name, keys, revokedKids = [] } = options;
  const usable = keys.filter((k) => !revokedKids.includes(k.kid));
  let payload: Uint8Array;
  let kid: string;
  try {
    const out = await verifyDsse(envelope, {
      keys: (id) => usable.find((k) => k.kid === id)?.publicKey,
      payloadType: IN_TOTO_PAYLOAD_TYPE,
    });
    payload = out.payload;
    kid = out.keyid;
  } catch (e) {
    if (!(e instanceof TrustError)) throw e;
    if (e.code === "UNKNOWN_KEY") {
      const ids = signatureKeyIds(envelope);
      const revoked = ids.find((id) => revokedKids.includes(id));
      if (revoked) {
        throw new AgentError(
          "REVOKED_KEY",
          `Attestation is signed by key ${revoked}, which is revoked`,
        );
      }
      throw new AgentError(
        "UNKNOWN_KEY",
        `Attestation is signed by key ${ids.join(", ") || "(none)"}, not by the given key ${
          keys.map((k) => k.kid).join(", ")
        }`,
      );
    }
    const code = e.code === "WRONG_PAYLOAD_TYPE" || e.code === "BAD_SIGNATURE"
      ? e.code
      : "MALFORMED";
    throw new AgentError(code, `Attestation: ${e.message}`, { cause: e });
  }

  let statement: unknown;
  try {
    statement = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch {
    throw new AgentError("MALFORMED", "Attestation payload is not UTF-8 JSON");
  }
  if (!isObject(statement) || statement._type !== IN_TOTO_STATEMENT_V1) {
    throw new AgentError("MALFORMED", `Attestation payload is not an in-toto Statement v1`);
  }
  const subjects = statement.subject;
  if (
    !Array.isArray(subjects) || subjects.length === 0 ||
    !subjects.every((s) => isObject(s) && typeof s.name === "string" && isObject(s.digest))
  ) {
    throw new AgentError("MALFORMED", `Attestation statement has no valid "subject" list`);
  }
  if (typeof statement.predicateType !== "string") {
    throw new AgentError("MALFORMED", `Attestation statement has no "predicateType"`);
  }
  const subject = (subjects as Json[]).find((s) => s.name === name);
  if (!subject) {
    throw new AgentError(
      "SUBJECT_MISMATCH",
      `Attestation is for ${
        (subjects as Json[]).map((s) => JSON.stringify(s.name)).join(", ")
      }, not for "${name}"`,
    );
  }
  const want = (subject.digest as Json).sha256;
  const got = sha256HexBulk(data);
  if (typeof want !== "string" || want.toLowerCase() !== got) {
    throw new AgentError(
      "DIGEST_MISMATCH",
      `File "${name}" has sha256 ${got}, but the attestation says ${
        String(want)
      }: the file was modified or is another build`,
    );
  }
  const result: VerifiedAttestation = {
    subject: name,
    sha256: got,
    kid,
    predicateType: statement.predicateType,
  };
  const predicate = statement.predicate;
  if (statement.predicateType === SLSA_PROVENANCE_V1 && isObject(predicate)) {
    const definition = isObject(predicate.buildDefinition) ? predicate.buildDefinition : {};
    const run = isObject(predicate.runDetails) ? predicate.runDetails : {};
    const builder = isObject(run.builder) ? run.builder : {};
    const metadata = isObject(run.metadata) ? run.metadata : {};
    if (typeof builder.id === "string") result.builderId = builder.id;
    if (typeof definition.buildType === "string") result.buildType = definition.buildType;
    if (typeof metadata.finishedOn === "string") result.finishedOn = metadata.finishedOn;
    const deps = Array.isArray(definition.resolvedDependencies)
      ? definition.resolvedDependencies
      : [];
    const dep = deps.find(isObject);
    if (dep) {
      const source: { uri?: string; revision?: string } = {};
      if (typeof dep.uri === "string") source.uri = dep.uri;
      if (isObject(dep.digest) && typeof dep.digest.gitCommit === "string") {
        source.revision = dep.digest.gitCommit;
      }
      result.source = source;
    }
  }
  return result;
}

function signatureKeyIds(envelope: unknown): string[] {
  const signatures = isObject(envelope) && Array.isArray(envelope.signatures)
    ? envelope.signatures
    : [];
  return signatures.flatMap((s) => isObject(s) && typeof s.keyid === "string" ? [s.keyid] : []);
}
