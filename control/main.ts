/**
 * `infraveil control …`: set up, serve and operate the control plane.
 *
 * ```
 * control init --data DIR --tenant NAME --admin EMAIL [--policy FILE] [--database URL] [--public-url URL]
 * control serve --data DIR [--database postgres://…] [--listen 127.0.0.1:8700] [--public-url URL]
 * control enroll --data DIR --tenant T --kind agent|mcp --name NAME --out FILE [--environment ENV] [--service SVC] [--operator EMAIL] [--control-url URL]
 * control enroll-token --data DIR --tenant T --kind agent|mcp --name NAME [--environment ENV] [--service SVC] [--operator EMAIL] [--ttl SECONDS]
 * control approve|reject REQUEST --tenant T [--token TOKEN] [--url URL] [--comment TEXT]
 * control evidence export --data DIR --tenant T --out FILE [--database URL]
 * control authority who REQUEST --tenant T [--token TOKEN] [--url URL]
 * control authority why REQUEST USER --tenant T [--token TOKEN] [--url URL]
 * ```
 *
 * The only file of this package that reads arguments, the environment and files.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { encodeBase64Url, generateKeyPair, TrustError } from "@infraveil/trust";
import { readPrivateKeyFile, writeKeyFiles } from "@infraveil/trust/io";
import { controlStorePasskeyStore, createControlPlane } from "./dashboard/mod.ts";
import { ControlError } from "./error.ts";
import { exportEvidence } from "./evidence.ts";
import { openPostgresStore } from "./postgres_store.ts";
import { openSqliteStore } from "./sqlite_store.ts";
import type { ControlStore } from "./store.ts";
import { createEnrollmentToken, enrollIdentity, initTenant } from "./tenant.ts";
import type { IdentityFile } from "./client.ts";
import { formatPath, type PathStep } from "./authority.ts";

const USAGE = `Usage: infraveil control <command> [options]

Commands:
  init          create the data directory, the control plane's key, the database, a tenant,
                its admin and first active policy; prints a one-time sign-up link
  serve         serve the API (SQLite in the data directory, or --database postgres://…)
  enroll        enroll an agent or MCP identity and write its identity file (0600)
  enroll-token  create a one-time enrollment token for an identity
  approve       approve a request with a personal API token (where the tenant allows it)
  reject        reject a request with a personal API token
  evidence      export a tenant's evidence log (ledger JSONL; verify with infraveil verify ledger)
  authority     who can approve a request; why a user can

Run infraveil control <command> --help for the options of each.
Exit codes: 0 success, 1 refused or failed, 2 usage or input error.`;

const HELP: Record<string, string> = {
  init: `Usage: infraveil control init --data DIR --tenant NAME --admin EMAIL [--policy FILE]
                              [--database URL] [--public-url URL]
Creates DIR (0700), DIR/control.key (0600) and .pub, DIR/control.db (unless --database),
the tenant, its admin and the first active policy (default: deny everything), and prints a
one-time sign-up link for the admin.`,
  serve: `Usage: infraveil control serve --data DIR [--database postgres://…] [--listen HOST:PORT]
                               [--public-url URL]
Serves the API on --listen (default 127.0.0.1:8700) until SIGINT/SIGTERM.`,
  enroll:
    `Usage: infraveil control enroll --data DIR --tenant T --kind agent|mcp --name NAME --out FILE
                                [--environment ENV] [--service SVC] [--operator EMAIL]
                                [--control-url URL] [--database URL]
Generates a key, enrolls it and writes the identity file (0600) the agent or MCP server reads
(INFRAVEIL_AGENT_FILE). Agents need --environment (and may have --service): the labels of the
host; requests naming the host must carry the same ones. MCP identities need --operator: an
existing user of the tenant, the human operating them, who can never approve their requests.`,
  "enroll-token":
    `Usage: infraveil control enroll-token --data DIR --tenant T --kind agent|mcp --name NAME
                                      [--environment ENV] [--service SVC] [--operator EMAIL]
                                      [--ttl SECONDS] [--database URL]
Prints a one-time enrollment token and the control plane's public key to pin. Agents need
--environment (and may have --service); MCP identities need --operator (an existing user).`,
  approve:
    `Usage: infraveil control approve REQUEST --tenant T [--token TOKEN] [--url URL] [--comment TEXT]
Token from --token or INFRAVEIL_CONTROL_TOKEN; URL from --url, INFRAVEIL_CONTROL_URL or
http://127.0.0.1:8700. Refused (exit 1) where the tenant does not accept token approvals.`,
  reject:
    `Usage: infraveil control reject REQUEST --tenant T [--token TOKEN] [--url URL] [--comment TEXT]`,
  evidence:
    `Usage: infraveil control evidence export --data DIR --tenant T --out FILE [--database URL]`,
  authority: `Usage: infraveil control authority who REQUEST --tenant T [--token TOKEN] [--url URL]
       infraveil control authority why REQUEST USER --tenant T [--token TOKEN] [--url URL]`,
};

class UsageError extends Error {}

type Flags = Record<string, string | boolean | undefined>;

function flags(
  args: string[],
  names: string[],
  bools: string[] = [],
): { values: Flags; positionals: string[] } {
  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" } };
  for (const n of names) options[n] = { type: "string" };
  for (const n of bools) options[n] = { type: "boolean" };
  try {
    const { values, positionals } = parseArgs({
      args,
      options,
      strict: true,
      allowPositionals: true,
    });
    return { values: values as Flags, positionals };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function need(v: Flags, name: string): string {
  const x = v[name];
  if (typeof x !== "string" || x === "") throw new UsageError(`missing --${name}`);
  return x;
}

async function openStore(data: string, database: string | undefined): Promise<ControlStore> {
  if (database) {
    if (!/^postgres(ql)?:\/\//.test(database)) {
      throw new UsageError(
        `--database must be a postgres:// URL (got ${JSON.stringify(database)})`,
      );
    }
    return await openPostgresStore(database);
  }
  return await openSqliteStore(`${data}/control.db`);
}

async function controlKey(data: string) {
  return await readPrivateKeyFile(`${data}/control.key`);
}

function out(text: string): void {
  console.log(text);
}

async function cmdInit(args: string[]): Promise<number> {
  const { values } = flags(args, ["data", "tenant", "admin", "policy", "database", "public-url"]);
  if (values.help) return help("init");
  const data = need(values, "data");
  const policyText = typeof values.policy === "string"
    ? await readInput(values.policy, "--policy")
    : undefined;
  await Deno.mkdir(data, { recursive: true, mode: 0o700 });
  let key;
  try {
    key = await controlKey(data);
  } catch (e) {
    if (!(e instanceof TrustError) || !/no such file/.test(e.message)) throw e;
    key = generateKeyPair();
    await writeKeyFiles(`${data}/control.key`, key);
  }
  const store = await openStore(data, values.database as string | undefined);
  try {
    const r = await initTenant(store, {
      tenant: need(values, "tenant"),
      adminEmail: need(values, "admin"),
      policyText,
    });
    const base = (values["public-url"] as string | undefined) ?? "http://localhost:8700";
    out(`tenant:             ${values.tenant}`);
    out(`active policy:      ${r.policyHash}`);
    out(`control key id:     ${key.kid}`);
    out(`control public key: ${encodeBase64Url(key.publicKey)}`);
    out(`admin sign-up link (one-time, 7 days):`);
    out(
      `  ${base}/signup?tenant=${encodeURIComponent(String(values.tenant))}&token=${
        encodeURIComponent(r.signupToken)
      }`,
    );
    return 0;
  } finally {
    await store.close();
  }
}

async function readInput(path: string, flag: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new UsageError(
      `cannot read ${flag} ${path}: ${e instanceof Deno.errors.NotFound ? "no such file" : e}`,
    );
  }
}

/** Options of {@link serveControl}. */
export interface ServeOptions {
  /** Data directory (control key; SQLite file unless `database`). */
  data: string;
  /** PostgreSQL URL. */
  database?: string;
  /** Host and port. */
  hostname: string;
  /** Port (0: any free port). */
  port: number;
  /** Public URL for links. */
  publicUrl?: string;
  /** Stops the server. */
  signal?: AbortSignal;
  /** Called with the bound address. */
  onListen?: (addr: { hostname: string; port: number }) => void;
}

/**
 * Serves the control plane until the signal aborts.
 *
 * @param options data directory, database, address, signal
 * @returns when the server has stopped and the store is closed
 */
export async function serveControl(options: ServeOptions): Promise<void> {
  const keys = await controlKey(options.data);
  const store = await openStore(options.data, options.database);
  // The dashboard's passkeys live in the control store, shared by every instance on one
  // database (see docs/dashboard.md).
  const passkeys = controlStorePasskeyStore(store);
  const app = createControlPlane({
    store,
    keys,
    passkeys,
    publicUrl: options.publicUrl ?? `http://localhost:${options.port}`,
  });
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    signal: options.signal,
    onListen: (addr) => options.onListen?.(addr),
  }, app.fetch);
  await server.finished;
  await passkeys.close();
  await store.close();
}

async function cmdServe(args: string[]): Promise<number> {
  const { values } = flags(args, ["data", "database", "listen", "public-url"]);
  if (values.help) return help("serve");
  const listen = (values.listen as string | undefined) ?? "127.0.0.1:8700";
  const m = /^(.*):(\d{1,5})$/.exec(listen);
  if (!m) throw new UsageError(`--listen must be HOST:PORT (got ${listen})`);
  const ac = new AbortController();
  const stop = () => ac.abort();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  try {
    await serveControl({
      data: need(values, "data"),
      database: values.database as string | undefined,
      hostname: m[1],
      port: Number(m[2]),
      publicUrl: values["public-url"] as string | undefined,
      signal: ac.signal,
      onListen: (a) =>
        console.error(`infraveil control plane listening on http://${a.hostname}:${a.port}`),
    });
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
  }
  return 0;
}

async function cmdEnroll(args: string[]): Promise<number> {
  const { values } = flags(args, [
    "data",
    "tenant",
    "kind",
    "name",
    "out",
    "operator",
    "environment",
    "service",
    "control-url",
    "database",
  ]);
  if (values.help) return help("enroll");
  const data = need(values, "data");
  const file = need(values, "out");
  const kind = need(values, "kind");
  if (kind !== "agent" && kind !== "mcp") throw new UsageError(`--kind must be agent or mcp`);
  const tenant = need(values, "tenant");
  const name = need(values, "name");
  const control = await controlKey(data);
  const key = generateKeyPair();
  const identity: IdentityFile = {
    kind,
    name,
    tenant,
    kid: key.kid,
    private: encodeBase64Url(key.privateKey),
    public: encodeBase64Url(key.publicKey),
    ...(typeof values["control-url"] === "string" ? { control_url: values["control-url"] } : {}),
    control_public_key: encodeBase64Url(control.publicKey),
    control_kid: control.kid,
  };
  // The identity file first: a refused --out must leave nothing enrolled.
  try {
    await Deno.writeTextFile(file, JSON.stringify(identity, null, 2) + "\n", {
      createNew: true,
      mode: 0o600,
    });
    await Deno.chmod(file, 0o600);
  } catch (e) {
    throw new UsageError(
      `cannot write --out ${file}: ${
        e instanceof Deno.errors.AlreadyExists ? "it exists; choose another path" : e
      }`,
    );
  }
  const store = await openStore(data, values.database as string | undefined);
  try {
    await store.tx(async (t) => {
      if (!(await t.getTenant(tenant))) {
        throw new ControlError("UNKNOWN_TENANT", `Tenant ${tenant} not found`);
      }
      await enrollIdentity(t, tenant, {
        name,
        kind,
        publicKey: key.publicKey,
        operator: (values.operator as string | undefined) ?? null,
        environment: (values.environment as string | undefined) ?? null,
        service: (values.service as string | undefined) ?? null,
        actor: "operator:cli",
        now: Date.now(),
        via: "control enroll",
      });
    });
  } catch (e) {
    // Not enrolled: the key in the file would be useless, and it is a secret.
    await Deno.remove(file).catch(() => {});
    throw e;
  } finally {
    await store.close();
  }
  out(`enrolled ${kind} ${name} in ${tenant} (key ${key.kid}); identity file ${file} (0600)`);
  return 0;
}

async function cmdEnrollToken(args: string[]): Promise<number> {
  const { values } = flags(args, [
    "data",
    "tenant",
    "kind",
    "name",
    "operator",
    "environment",
    "service",
    "ttl",
    "database",
  ]);
  if (values.help) return help("enroll-token");
  const data = need(values, "data");
  const kind = need(values, "kind");
  if (kind !== "agent" && kind !== "mcp") throw new UsageError(`--kind must be agent or mcp`);
  const tenant = need(values, "tenant");
  const ttl = values.ttl === undefined ? 3600 : Number(values.ttl);
  if (!Number.isSafeInteger(ttl) || ttl < 60) {
    throw new UsageError("--ttl must be whole seconds ≥ 60");
  }
  const control = await controlKey(data);
  const store = await openStore(data, values.database as string | undefined);
  try {
    const r = await store.tx(async (t) => {
      if (!(await t.getTenant(tenant))) {
        throw new ControlError("UNKNOWN_TENANT", `Tenant ${tenant} not found`);
      }
      return await createEnrollmentToken(t, tenant, {
        name: need(values, "name"),
        kind,
        operator: (values.operator as string | undefined) ?? null,
        environment: (values.environment as string | undefined) ?? null,
        service: (values.service as string | undefined) ?? null,
        createdBy: "operator:cli",
        ttlSeconds: ttl,
        now: Date.now(),
        random: (b) => crypto.getRandomValues(b),
      });
    });
    out(`token:              ${r.token}`);
    out(`expires:            ${new Date(r.expiresAt).toISOString()}`);
    out(`control key id:     ${control.kid}`);
    out(`control public key: ${encodeBase64Url(control.publicKey)}`);
    return 0;
  } finally {
    await store.close();
  }
}

function apiTarget(values: Flags): { url: string; token: string; tenant: string } {
  const url = (values.url as string | undefined) ?? Deno.env.get("INFRAVEIL_CONTROL_URL") ??
    "http://localhost:8700";
  const token = (values.token as string | undefined) ?? Deno.env.get("INFRAVEIL_CONTROL_TOKEN");
  if (!token) throw new UsageError("missing --token (or INFRAVEIL_CONTROL_TOKEN)");
  return { url: url.replace(/\/+$/, ""), token, tenant: need(values, "tenant") };
}

async function api(
  target: { url: string; token: string; tenant: string },
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  let res: Response;
  try {
    res = await fetch(`${target.url}/v1/t/${encodeURIComponent(target.tenant)}${path}`, {
      method,
      headers: { authorization: `Bearer ${target.token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new UsageError(`cannot reach the control plane at ${target.url}: ${e}`);
  }
  const json = await res.json().catch(() => ({}));
  return { status: res.status, json };
}

function failure(r: { status: number; json: Record<string, unknown> }): number {
  const err = r.json.error as { code?: string; message?: string } | undefined;
  console.error(`error: ${err?.code ?? r.status}: ${err?.message ?? "request failed"}`);
  return r.status === 400 ? 2 : 1;
}

async function cmdVote(decision: "approve" | "reject", args: string[]): Promise<number> {
  const { values, positionals } = flags(args, ["tenant", "token", "url", "comment"]);
  if (values.help) return help(decision);
  if (positionals.length !== 1) throw new UsageError(`${decision} needs exactly one REQUEST id`);
  const target = apiTarget(values);
  const r = await api(
    target,
    "POST",
    `/requests/${encodeURIComponent(positionals[0])}/${decision}`,
    {
      ...(values.comment ? { comment: values.comment } : {}),
    },
  );
  if (r.status !== 200) return failure(r);
  out(
    `${positionals[0]}: ${r.json.status}${
      r.json.approvals_needed ? ` (${r.json.approvals_needed} more approval(s) needed)` : ""
    }`,
  );
  if (r.json.approval_id) out(`signed approval: ${r.json.approval_id}`);
  return 0;
}

async function cmdEvidence(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "--help" || sub === "-h" || sub === undefined) {
    return help("evidence", sub === undefined);
  }
  if (sub !== "export") throw new UsageError(`unknown evidence subcommand "${sub}"; use export`);
  const { values } = flags(rest, ["data", "tenant", "out", "database"]);
  if (values.help) return help("evidence");
  const tenant = need(values, "tenant");
  const file = need(values, "out");
  const store = await openStore(need(values, "data"), values.database as string | undefined);
  try {
    if (!(await store.tx((t) => t.getTenant(tenant)))) {
      throw new ControlError("UNKNOWN_TENANT", `Tenant ${tenant} not found`);
    }
    const f = await Deno.open(file, { write: true, create: true, truncate: true });
    const enc = new TextEncoder();
    let lines = 0;
    try {
      for await (const chunk of exportEvidence(store, tenant)) {
        const bytes = enc.encode(chunk);
        let off = 0;
        while (off < bytes.length) off += await f.write(bytes.subarray(off));
        lines += chunk.split("\n").length - 1;
      }
      await f.sync();
    } finally {
      f.close();
    }
    out(
      `exported ${lines} evidence entries of ${tenant} to ${file}; verify with: infraveil verify ledger ${file}`,
    );
    return 0;
  } finally {
    await store.close();
  }
}

async function cmdAuthority(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "--help" || sub === "-h" || sub === undefined) {
    return help("authority", sub === undefined);
  }
  const { values, positionals } = flags(rest, ["tenant", "token", "url"]);
  if (values.help) return help("authority");
  const target = apiTarget(values);
  if (sub === "who") {
    if (positionals.length !== 1) throw new UsageError("authority who needs one REQUEST id");
    const r = await api(target, "GET", `/requests/${encodeURIComponent(positionals[0])}/approvers`);
    if (r.status !== 200) return failure(r);
    out(
      `${
        positionals[0]
      }: ${r.json.approvals_needed} of ${r.json.approvals_required} approval(s) still needed`,
    );
    for (const a of r.json.approvers as { email: string; path_text: string }[]) {
      out(`  ${a.email}: ${a.path_text}`);
    }
    return 0;
  }
  if (sub === "why") {
    if (positionals.length !== 2) throw new UsageError("authority why needs REQUEST and USER");
    const r = await api(
      target,
      "GET",
      `/requests/${encodeURIComponent(positionals[0])}/why/${encodeURIComponent(positionals[1])}`,
    );
    if (r.status !== 200) return failure(r);
    if (r.json.can_approve) {
      out(
        `${r.json.email} can approve ${positionals[0]}: ${formatPath(r.json.path as PathStep[])}`,
      );
      return 0;
    }
    out(`${r.json.email} cannot approve ${positionals[0]}: ${r.json.reason}`);
    return 1;
  }
  throw new UsageError(`unknown authority subcommand "${sub}"; use who or why`);
}

function help(command: string, asError = false): number {
  const text = HELP[command] ?? USAGE;
  if (asError) {
    console.error(text);
    return 2;
  }
  console.log(text);
  return 0;
}

/**
 * Runs `infraveil control …`.
 *
 * @param args the arguments after `control`
 * @returns the exit code
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case undefined:
        console.error(USAGE);
        return 2;
      case "--help":
      case "-h":
      case "help":
        console.log(USAGE);
        return 0;
      case "init":
        return await cmdInit(rest);
      case "serve":
        return await cmdServe(rest);
      case "enroll":
        return await cmdEnroll(rest);
      case "enroll-token":
        return await cmdEnrollToken(rest);
      case "approve":
      case "reject":
        return await cmdVote(command, rest);
      case "evidence":
        return await cmdEvidence(rest);
      case "authority":
        return await cmdAuthority(rest);
      default:
        console.error(`error: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}\n\n${HELP[command] ?? USAGE}`);
      return 2;
    }
    if (e instanceof ControlError) {
      console.error(`error: ${e.code}: ${e.message}`);
      return e.status === 409 || e.status === 404 || e.status === 403 ? 1 : 2;
    }
    if (e instanceof TrustError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
