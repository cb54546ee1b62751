/**
 * The canonical serialization of a policy that its content hash is taken over: RFC 8785 (JCS)
 * JSON of the policy's meaning, so comments, whitespace, line breaks and the order of keys inside
 * a block do not change it. No hashing here (see hash.ts), so this module loads nothing else.
 *
 * @module
 */
import type { ActionOverride, PolicyDocument } from "./types.ts";

type Json = string | number | boolean | Json[] | { [k: string]: Json };

/** RFC 8785 serialization for the value types a policy model holds. */
export function jcs(v: Json): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return "[" + v.map(jcs).join(",") + "]";
  const keys = Object.keys(v).sort();
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + jcs(v[k])).join(",") + "}";
}

function instant(ms: number, raw: string): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : raw;
}

function override(o: ActionOverride): Json {
  const out: Record<string, Json> = { action: o.action };
  if (o.requireApproval) out.require_approval = o.requireApproval.value;
  if (o.approvals) out.approvals = o.approvals.value;
  if (o.maxFiles) out.max_files = o.maxFiles.value;
  if (o.blastRadius) out.blast_radius = o.blastRadius.value;
  return out;
}

/** The policy model as the JSON value that is hashed (see docs/policy.md, "Content hash"). */
export function canonicalModel(doc: PolicyDocument): Json {
  return {
    format: "infraveil-policy/1",
    policies: doc.policies.map((p) => {
      const out: Record<string, Json> = {
        environment: p.environment,
        freeze: p.freezes.map((f) => {
          const w: Record<string, Json> = {
            start: instant(f.startMs, f.start),
            end: instant(f.endMs, f.end),
          };
          if (f.reason !== undefined) w.reason = f.reason;
          return w;
        }),
        agents: p.agents.map((a) => {
          const o: Record<string, Json> = {
            name: a.name,
            allow: a.allow.map((x) => x.value),
            deny: a.deny.map((x) => x.value),
            actions: a.actions.map(override),
          };
          if (a.blastRadius) o.blast_radius = a.blastRadius.value;
          return o;
        }),
        actions: p.actions.map(override),
      };
      if (p.version) out.version = p.version.value;
      if (p.approvals) out.approvals = p.approvals.value;
      if (p.deploy) {
        const d: Record<string, Json> = { block_paths: p.deploy.blockPaths.map((x) => x.value) };
        if (p.deploy.requireApproval) d.require_approval = p.deploy.requireApproval.value;
        if (p.deploy.approvals) d.approvals = p.deploy.approvals.value;
        if (p.deploy.maxFiles) d.max_files = p.deploy.maxFiles.value;
        out.deploy = d;
      }
      if (p.remediation) {
        const r: Record<string, Json> = {
          block_categories: p.remediation.blockCategories.map((x) => x.value),
        };
        if (p.remediation.requireApproval) r.require_approval = p.remediation.requireApproval.value;
        if (p.remediation.approvals) r.approvals = p.remediation.approvals.value;
        out.remediation = r;
      }
      return out;
    }),
  };
}

/**
 * The exact text whose SHA-256 is the policy's content hash: `jcs(canonicalModel(doc))`,
 * written directly with the keys in their sorted order (no intermediate objects, no sorting).
 */
export function canonicalPolicyText(doc: PolicyDocument): string {
  const q = JSON.stringify;
  const list = (xs: { value: string }[]) => {
    let o = "[";
    for (let i = 0; i < xs.length; i++) o += (i ? "," : "") + q(xs[i].value);
    return o + "]";
  };
  const ov = (o: ActionOverride) =>
    `{"action":${q(o.action)}` +
    (o.approvals ? `,"approvals":${o.approvals.value}` : "") +
    (o.blastRadius ? `,"blast_radius":${q(o.blastRadius.value)}` : "") +
    (o.maxFiles ? `,"max_files":${o.maxFiles.value}` : "") +
    (o.requireApproval ? `,"require_approval":${o.requireApproval.value}` : "") + "}";
  const ovs = (xs: ActionOverride[]) => "[" + xs.map(ov).join(",") + "]";
  let out = '{"format":"infraveil-policy/1","policies":[';
  doc.policies.forEach((p, pi) => {
    if (pi) out += ",";
    out += `{"actions":${ovs(p.actions)},"agents":[`;
    p.agents.forEach((a, ai) => {
      out += (ai ? "," : "") + `{"actions":${ovs(a.actions)},"allow":${list(a.allow)}` +
        (a.blastRadius ? `,"blast_radius":${q(a.blastRadius.value)}` : "") +
        `,"deny":${list(a.deny)},"name":${q(a.name)}}`;
    });
    out += "]";
    if (p.approvals) out += `,"approvals":${p.approvals.value}`;
    if (p.deploy) {
      const d = p.deploy;
      out += `,"deploy":{` + (d.approvals ? `"approvals":${d.approvals.value},` : "") +
        `"block_paths":${list(d.blockPaths)}` +
        (d.maxFiles ? `,"max_files":${d.maxFiles.value}` : "") +
        (d.requireApproval ? `,"require_approval":${d.requireApproval.value}` : "") + "}";
    }
    out += `,"environment":${q(p.environment)},"freeze":[`;
    p.freezes.forEach((f, fi) => {
      out += (fi ? "," : "") + `{"end":${q(instant(f.endMs, f.end))}` +
        (f.reason !== undefined ? `,"reason":${q(f.reason)}` : "") +
        `,"start":${q(instant(f.startMs, f.start))}}`;
    });
    out += "]";
    if (p.remediation) {
      const r = p.remediation;
      out += `,"remediation":{` + (r.approvals ? `"approvals":${r.approvals.value},` : "") +
        `"block_categories":${list(r.blockCategories)}` +
        (r.requireApproval ? `,"require_approval":${r.requireApproval.value}` : "") + "}";
    }
    if (p.version) out += `,"version":${p.version.value}`;
    out += "}";
  });
  return out + "]}";
}

/** Lowercase hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += bytes[i].toString(16).padStart(2, "0");
  return s;
}

/**
 * The policy content hash (as `policyHash` in hash.ts computes it) with WebCrypto, so the CLI
 * never loads the npm SHA-256: a module graph that reaches an npm package, even through a
 * dynamic import, costs `policy check` start-up time.
 */
export async function webPolicyHash(doc: PolicyDocument): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(canonicalPolicyText(doc)),
  );
  return "sha256:" + toHex(new Uint8Array(digest));
}
