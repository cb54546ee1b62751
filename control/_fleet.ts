/**
 * The fleet: agent heartbeats (version, policy hash, health, ledger anchor), stale detection,
 * ledger checkpoint countersigning after a consistency proof, and trace and finding ingestion
 * in bounded batches under per-tenant quotas, with filtered, paginated queries.
 *
 * @module
 */
import {
  cosignNote,
  LedgerError,
  parseAnchor,
  verifiersForKey,
  verifyCheckpoint,
  verifyConsistency,
} from "@infraveil/ledger";
import { decodeBase64, decodeBase64Url, decodeHex, encodeHex } from "@infraveil/trust";
import { type Ctx, iso } from "./_context.ts";
import { appendEvidence } from "./evidence.ts";
import { ControlError } from "./error.ts";
import { newId } from "./_ids.ts";
import {
  decodeCursor,
  encodeCursor,
  NAME_HINT,
  NAME_RE,
  type Obj,
  object,
  optInt,
  optStr,
  optStrArray,
  str,
} from "./_validate.ts";
import type { FindingRow, HostRow, IdentityRow, SpanRow, StoreTx, TenantRow } from "./store.ts";

/** The name the control plane signs checkpoints with. */
export const CONTROL_NOTE_NAME = "infraveil-control";

function jsonSize(v: unknown): number {
  return JSON.stringify(v ?? null).length;
}

/**
 * Records a heartbeat.
 *
 * @param ctx the context
 * @param t the transaction
 * @param tenant the tenant
 * @param host the agent identity
 * @param body `{version, policy_hash?, health, anchor?, checkpoint?}`
 * @returns the active policy hash and fleet settings
 */
export async function heartbeat(
  ctx: Ctx,
  t: StoreTx,
  tenant: TenantRow,
  host: IdentityRow,
  body: Obj,
): Promise<Record<string, unknown>> {
  object(body, ["version", "policy_hash", "health", "anchor", "checkpoint"]);
  const now = ctx.now();
  const version = str(body, "version", { max: 64 });
  const policyHash = optStr(body, "policy_hash", { max: 80 });
  const health = body.health ?? null;
  if (jsonSize(health) > 16_384) {
    throw new ControlError("BAD_REQUEST", 'Invalid field "health": at most 16 KiB of JSON', {
      details: { field: "health" },
    });
  }
  const anchor = optStr(body, "anchor", { max: 100 });
  if (anchor !== undefined) {
    try {
      parseAnchor(anchor);
    } catch (e) {
      throw new ControlError("BAD_REQUEST", `Invalid field "anchor": ${(e as Error).message}`, {
        details: { field: "anchor" },
      });
    }
  }
  const checkpoint = optStr(body, "checkpoint", { max: 8192 });
  const prev = await t.getHost(tenant.name, host.name);
  await t.upsertHost(tenant.name, {
    name: host.name,
    version,
    policyHash: policyHash ?? null,
    health,
    anchor: anchor ?? null,
    checkpoint: checkpoint ?? null,
    firstSeen: prev?.firstSeen ?? now,
    lastSeen: now,
  });
  const claimable = await t.listClaimableApprovals(tenant.name, host.name, now);
  return {
    active_policy_hash: tenant.activePolicyHash,
    policy_current: policyHash !== undefined && policyHash === tenant.activePolicyHash,
    server_time: iso(now),
    stale_after_seconds: tenant.settings.stale_after_seconds,
    approvals_waiting: claimable.length,
  };
}

/**
 * The API view of a host.
 *
 * @param h the host
 * @param tenant the tenant
 * @param now the time, ms
 * @returns the view
 */
export function hostView(h: HostRow, tenant: TenantRow, now: number): Record<string, unknown> {
  const stale = now - h.lastSeen > tenant.settings.stale_after_seconds * 1000;
  return {
    name: h.name,
    version: h.version,
    policy_hash: h.policyHash,
    policy_current: h.policyHash !== null && h.policyHash === tenant.activePolicyHash,
    health: h.health,
    anchor: h.anchor,
    checkpoint: h.checkpoint,
    first_seen: iso(h.firstSeen),
    last_seen: iso(h.lastSeen),
    stale,
    status: stale ? "stale" : "ok",
  };
}

/**
 * Fleet status: every host with stale and policy-drift flags.
 *
 * @param ctx the context
 * @param t the transaction
 * @param tenant the tenant
 * @returns hosts and counts
 */
export async function fleetStatus(
  ctx: Ctx,
  t: StoreTx,
  tenant: TenantRow,
): Promise<Record<string, unknown>> {
  const now = ctx.now();
  const hosts = (await t.listHosts(tenant.name)).map((h) => hostView(h, tenant, now));
  return {
    active_policy_hash: tenant.activePolicyHash,
    hosts,
    counts: {
      total: hosts.length,
      stale: hosts.filter((h) => h.stale).length,
      policy_drift: hosts.filter((h) => !h.policy_current).length,
    },
  };
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

function readSpan(v: unknown, i: number, host: string): SpanRow {
  const o = object(v, [
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "service",
    "start_ms",
    "duration_ms",
    "status",
    "attributes",
  ], `spans[${i}]`);
  const at = (f: string) => `spans[${i}].${f}`;
  const wrap = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof ControlError) {
        throw new ControlError(
          "BAD_REQUEST",
          e.message.replace(/field "([^"]+)"/, (_m, k) => `field "${at(k)}"`),
          {
            details: { field: at(String(e.details?.field ?? "")) },
          },
        );
      }
      throw e;
    }
  };
  return wrap(() => {
    const attributes = o.attributes ?? null;
    if (jsonSize(attributes) > 8192) {
      throw new ControlError("BAD_REQUEST", 'Invalid field "attributes": at most 8 KiB', {
        details: { field: "attributes" },
      });
    }
    const status = optInt(o, "status", 0, 999) ?? 0;
    return {
      traceId: str(o, "trace_id", { pattern: HEX32, patternHint: "32 lowercase hex digits" }),
      spanId: str(o, "span_id", { pattern: HEX16, patternHint: "16 lowercase hex digits" }),
      parentSpanId:
        optStr(o, "parent_span_id", { pattern: HEX16, patternHint: "16 lowercase hex digits" }) ??
          null,
      host,
      service: optStr(o, "service", { pattern: NAME_RE, patternHint: NAME_HINT }) ?? null,
      name: str(o, "name", { max: 512 }),
      startMs: optInt(o, "start_ms", 0, 8.64e15) ?? (() => {
        throw new ControlError("BAD_REQUEST", 'Invalid field "start_ms": required (Unix ms)', {
          details: { field: "start_ms" },
        });
      })(),
      durationMs: optInt(o, "duration_ms", 0, 8.64e7) ?? 0,
      status,
      data: o,
    };
  });
}

function readBatch(body: Obj, field: string, tenant: TenantRow): unknown[] {
  object(body, [field]);
  const items = body[field];
  if (!Array.isArray(items)) {
    throw new ControlError("BAD_REQUEST", `Invalid field "${field}": must be an array`, {
      details: { field },
    });
  }
  if (items.length > tenant.settings.batch_max) {
    throw new ControlError(
      "PAYLOAD_TOO_LARGE",
      `Batch of ${items.length} ${field} exceeds the limit of ${tenant.settings.batch_max}; split it`,
      { details: { limit: tenant.settings.batch_max } },
    );
  }
  return items;
}

/**
 * Ingests a batch of trace spans from a host.
 *
 * @param ctx the context
 * @param t the transaction
 * @param tenant the tenant
 * @param host the shipping agent
 * @param body `{spans: [...]}`
 * @returns accepted and duplicate counts
 */
export async function ingestSpans(
  _ctx: Ctx,
  t: StoreTx,
  tenant: TenantRow,
  host: IdentityRow,
  body: Obj,
): Promise<Record<string, unknown>> {
  const rows = readBatch(body, "spans", tenant).map((s, i) => readSpan(s, i, host.name));
  const usage = await t.getUsage(tenant.name);
  if (usage.spans + rows.length > tenant.settings.quota_spans) {
    throw new ControlError(
      "QUOTA_EXCEEDED",
      `Tenant ${tenant.name} stores ${usage.spans} of ${tenant.settings.quota_spans} spans; this batch of ${rows.length} would exceed the quota`,
      { details: { quota: tenant.settings.quota_spans, used: usage.spans } },
    );
  }
  const added = await t.insertSpans(tenant.name, rows);
  await t.addUsage(tenant.name, added, 0);
  return { accepted: added, duplicates: rows.length - added };
}

const SEVERITIES = ["low", "medium", "high", "critical"] as const;

function readFinding(
  v: unknown,
  i: number,
  host: string,
  now: number,
  random: Ctx["random"],
): FindingRow {
  const o = object(v, [
    "fingerprint",
    "category",
    "severity",
    "title",
    "service",
    "status",
    "trace_id",
    "detail",
    "observed_ms",
  ], `findings[${i}]`);
  try {
    const severity = str(o, "severity", { max: 16 });
    if (!(SEVERITIES as readonly string[]).includes(severity)) {
      throw new ControlError(
        "BAD_REQUEST",
        `Invalid field "severity": one of ${SEVERITIES.join(", ")}`,
        {
          details: { field: "severity" },
        },
      );
    }
    const status = optStr(o, "status", { max: 16 }) ?? "open";
    if (status !== "open" && status !== "resolved") {
      throw new ControlError("BAD_REQUEST", 'Invalid field "status": "open" or "resolved"', {
        details: { field: "status" },
      });
    }
    if (jsonSize(o.detail) > 8192) {
      throw new ControlError("BAD_REQUEST", 'Invalid field "detail": at most 8 KiB', {
        details: { field: "detail" },
      });
    }
    const observed = optInt(o, "observed_ms", 0, 8.64e15) ?? now;
    return {
      id: newId("fnd", random),
      host,
      fingerprint: str(o, "fingerprint", { max: 128 }),
      category: str(o, "category", {
        max: 64,
        pattern: /^[A-Za-z_][A-Za-z0-9_-]*$/,
        patternHint: "letters, digits, '_' or '-'",
      }),
      severity: severity as FindingRow["severity"],
      title: str(o, "title", { max: 512 }),
      service: optStr(o, "service", { pattern: NAME_RE, patternHint: NAME_HINT }) ?? null,
      status,
      count: 1,
      firstSeen: observed,
      lastSeen: observed,
      data: o,
    };
  } catch (e) {
    if (e instanceof ControlError) {
      const field = `findings[${i}].${e.details?.field ?? ""}`;
      throw new ControlError(
        "BAD_REQUEST",
        e.message.replace(/field "([^"]+)"/, `field "${field}"`),
        {
          details: { field },
        },
      );
    }
    throw e;
  }
}

/**
 * Ingests a batch of findings from a host (deduplicated per host and fingerprint).
 *
 * @param ctx the context
 * @param t the transaction
 * @param tenant the tenant
 * @param host the shipping agent
 * @param body `{findings: [...]}`
 * @returns new and updated counts
 */
export async function ingestFindings(
  ctx: Ctx,
  t: StoreTx,
  tenant: TenantRow,
  host: IdentityRow,
  body: Obj,
): Promise<Record<string, unknown>> {
  const now = ctx.now();
  const rows = readBatch(body, "findings", tenant).map((f, i) =>
    readFinding(f, i, host.name, now, ctx.random)
  );
  const usage = await t.getUsage(tenant.name);
  if (usage.findings + rows.length > tenant.settings.quota_findings) {
    throw new ControlError(
      "QUOTA_EXCEEDED",
      `Tenant ${tenant.name} stores ${usage.findings} of ${tenant.settings.quota_findings} findings; this batch of ${rows.length} would exceed the quota`,
      { details: { quota: tenant.settings.quota_findings, used: usage.findings } },
    );
  }
  let added = 0;
  for (const r of rows) if (await t.upsertFinding(tenant.name, r)) added++;
  await t.addUsage(tenant.name, 0, added);
  return { accepted: rows.length, new: added, updated: rows.length - added };
}

function limitOf(o: Obj): number {
  return optInt(o, "limit", 1, 500) ?? 50;
}

/**
 * Queries spans with filters and a cursor.
 *
 * @param t the transaction
 * @param tenant the tenant
 * @param q `{host?, service?, min_status?, since_ms?, until_ms?, name?, limit?, cursor?}`
 * @returns a page
 */
export async function querySpans(
  t: StoreTx,
  tenant: string,
  q: Obj,
): Promise<Record<string, unknown>> {
  object(
    q,
    ["host", "service", "min_status", "since_ms", "until_ms", "name", "limit", "cursor"],
    "query",
  );
  const limit = limitOf(q);
  const rows = await t.querySpans(tenant, {
    limit,
    before: decodeCursor(optStr(q, "cursor", { max: 400 })),
    host: optStr(q, "host"),
    service: optStr(q, "service"),
    minStatus: optInt(q, "min_status", 0, 999),
    since: optInt(q, "since_ms", 0, 8.64e15),
    until: optInt(q, "until_ms", 0, 8.64e15),
    nameContains: optStr(q, "name", { max: 256 }),
  });
  const last = rows.at(-1);
  return {
    items: rows.map(spanView),
    next_cursor: rows.length === limit && last ? encodeCursor([last.startMs, last.spanId]) : null,
  };
}

/**
 * The API view of a span.
 *
 * @param s the span
 * @returns the view
 */
export function spanView(s: SpanRow): Record<string, unknown> {
  return {
    trace_id: s.traceId,
    span_id: s.spanId,
    parent_span_id: s.parentSpanId,
    host: s.host,
    service: s.service,
    name: s.name,
    start_ms: s.startMs,
    duration_ms: s.durationMs,
    status: s.status,
    attributes: (s.data as Obj | null)?.attributes ?? null,
  };
}

/**
 * Queries findings with filters and a cursor.
 *
 * @param t the transaction
 * @param tenant the tenant
 * @param q `{host?, category?, severity?: [...], status?, limit?, cursor?}`
 * @returns a page
 */
export async function queryFindings(
  t: StoreTx,
  tenant: string,
  q: Obj,
): Promise<Record<string, unknown>> {
  object(q, ["host", "category", "severity", "status", "limit", "cursor"], "query");
  const limit = limitOf(q);
  const severity = optStrArray(q, "severity", { maxItems: 4, max: 16 });
  if (severity?.some((s) => !(SEVERITIES as readonly string[]).includes(s))) {
    throw new ControlError(
      "BAD_REQUEST",
      `Invalid field "severity": items are ${SEVERITIES.join(", ")}`,
      {
        details: { field: "severity" },
      },
    );
  }
  const status = optStr(q, "status", { max: 16 });
  if (status !== undefined && status !== "open" && status !== "resolved") {
    throw new ControlError("BAD_REQUEST", 'Invalid field "status": "open" or "resolved"', {
      details: { field: "status" },
    });
  }
  const rows = await t.queryFindings(tenant, {
    limit,
    before: decodeCursor(optStr(q, "cursor", { max: 400 })),
    host: optStr(q, "host"),
    category: optStr(q, "category"),
    severities: severity as FindingRow["severity"][] | undefined,
    status: status as FindingRow["status"] | undefined,
  });
  const last = rows.at(-1);
  return {
    items: rows.map((f) => ({
      id: f.id,
      host: f.host,
      fingerprint: f.fingerprint,
      category: f.category,
      severity: f.severity,
      title: f.title,
      service: f.service,
      status: f.status,
      count: f.count,
      first_seen: iso(f.firstSeen),
      last_seen: iso(f.lastSeen),
      detail: (f.data as Obj | null)?.detail ?? null,
      trace_id: (f.data as Obj | null)?.trace_id ?? null,
    })),
    next_cursor: rows.length === limit && last ? encodeCursor([last.lastSeen, last.id]) : null,
  };
}

function decodeProofHash(s: unknown, i: number): Uint8Array {
  if (typeof s === "string") {
    try {
      const b = /^[0-9a-f]{64}$/.test(s)
        ? decodeHex(s)
        : s.includes("-") || s.includes("_")
        ? decodeBase64Url(s)
        : decodeBase64(s);
      if (b.length === 32) return b;
    } catch {
      // fall through
    }
  }
  throw new ControlError(
    "BAD_REQUEST",
    `Invalid field "proof[${i}]": a 32-byte hash (hex or base64)`,
    {
      details: { field: `proof[${i}]` },
    },
  );
}

/**
 * Countersigns an agent's ledger checkpoint after checking its signature (by the agent's
 * enrolled key) and a consistency proof from the host's previous countersigned anchor.
 * Refusals are recorded as evidence.
 *
 * @param ctx the context
 * @param tenant the tenant
 * @param host the agent
 * @param body `{checkpoint, proof?: [hash…]}`
 * @returns the countersigned note
 */
export async function submitAnchor(
  ctx: Ctx,
  tenant: TenantRow,
  host: IdentityRow,
  body: Obj,
  t: StoreTx,
): Promise<Record<string, unknown> | ControlError> {
  object(body, ["checkpoint", "proof"]);
  const now = ctx.now();
  const note = str(body, "checkpoint", { max: 8192 });
  const proofRaw = body.proof ?? [];
  if (!Array.isArray(proofRaw) || proofRaw.length > 128) {
    throw new ControlError("BAD_REQUEST", 'Invalid field "proof": an array of at most 128 hashes', {
      details: { field: "proof" },
    });
  }
  const proof = proofRaw.map(decodeProofHash);
  const refuse = async (message: string) => {
    await appendEvidence(t, tenant.name, {
      type: "anchor.rejected",
      actor: `agent:${host.name}`,
      data: { host: host.name, reason: message },
    }, now);
    return new ControlError("BAD_CONSISTENCY", message);
  };
  const publicKey = decodeBase64Url(host.publicKey);
  let cp;
  try {
    const verifiers = verifiersForKey(note, publicKey);
    cp = verifyCheckpoint(
      note,
      verifiers.length > 0 ? verifiers : [{ name: host.name, publicKey }],
    );
  } catch (e) {
    if (e instanceof LedgerError) {
      return await refuse(`Checkpoint not signed by ${host.name}'s key: ${e.message}`);
    }
    throw e;
  }
  const prev = await t.latestAnchor(tenant.name, host.name);
  if (prev) {
    const root1 = decodeHex(prev.root);
    if (cp.size < prev.size) {
      return await refuse(
        `Checkpoint size ${cp.size} is smaller than the last countersigned size ${prev.size}`,
      );
    }
    const ok = cp.size === prev.size
      ? encodeHex(cp.root) === prev.root
      : verifyConsistency({ size1: prev.size, size2: cp.size, root1, root2: cp.root, proof });
    if (!ok && prev.size > 0) {
      return await refuse(
        `Consistency proof from ${prev.size}:${prev.root} to ${cp.size}:${
          encodeHex(cp.root)
        } does not verify`,
      );
    }
  }
  let cosigned: string;
  try {
    cosigned = cosignNote(note, { name: CONTROL_NOTE_NAME, key: ctx.key });
  } catch (e) {
    if (e instanceof LedgerError) return await refuse(e.message);
    throw e;
  }
  await t.insertAnchor(tenant.name, {
    host: host.name,
    size: cp.size,
    root: encodeHex(cp.root),
    note: cosigned,
    createdAt: now,
  });
  const anchor = `${cp.size}:${encodeHex(cp.root)}`;
  const h = await t.getHost(tenant.name, host.name);
  if (h) await t.upsertHost(tenant.name, { ...h, anchor, checkpoint: cosigned });
  await appendEvidence(t, tenant.name, {
    type: "anchor.countersign",
    actor: `agent:${host.name}`,
    data: {
      host: host.name,
      origin: cp.origin,
      anchor,
      previous: prev ? `${prev.size}:${prev.root}` : null,
    },
  }, now);
  return { anchor, countersigned: cosigned, previous: prev ? `${prev.size}:${prev.root}` : null };
}
