/**
 * Test helpers: connect to a spawned MCP server over stdio with either SDK generation, behind
 * one small interface.
 *
 * @module
 */
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport as StdioV1 } from "@modelcontextprotocol/sdk/client/stdio.js";
import { Client as ClientV2 } from "@modelcontextprotocol/client";
import { StdioClientTransport as StdioV2 } from "@modelcontextprotocol/client/stdio";

/** Which client: the v1 SDK (2025-11-25) or the v2 client pinned to 2026-07-28. */
export type Generation = "2025-11-25" | "2026-07-28";

/** Both generations, for loops. */
export const GENERATIONS: readonly Generation[] = ["2025-11-25", "2026-07-28"];

/** A tool as listed. */
export interface ListedTool {
  /** Name. */
  name: string;
  /** Input JSON Schema. */
  inputSchema: Record<string, unknown>;
  /** Output JSON Schema. */
  outputSchema?: Record<string, unknown>;
  /** Annotations. */
  annotations?: Record<string, unknown>;
  /** Description. */
  description?: string;
}

/** A tool result as received. */
export interface ReceivedResult {
  /** Content blocks. */
  content: { type: string; text?: string }[];
  /** Structured result. */
  structuredContent?: Record<string, unknown>;
  /** Error flag. */
  isError?: boolean;
}

/** A connected MCP client. */
export interface TestClient {
  /** The negotiated protocol version. */
  protocolVersion: string | undefined;
  /** The server's instructions. */
  instructions: string | undefined;
  /** tools/list. */
  listTools(): Promise<ListedTool[]>;
  /** tools/call. */
  callTool(name: string, args: Record<string, unknown>): Promise<ReceivedResult>;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
  /** Closes the connection (and the server process). */
  close(): Promise<void>;
}

/** How to start the server. */
export interface SpawnOptions {
  /** `deno run` arguments after `run` (permissions, script). */
  args: string[];
  /** Environment of the server. */
  env?: Record<string, string>;
}

/** Wraps a v1 stdio transport to remember the protocol version the server's `initialize` chose. */
function captureVersion(transport: StdioV1): { version?: string } {
  const seen: { version?: string } = {};
  const t = transport as unknown as {
    start(): Promise<void>;
    onmessage?: (message: unknown) => void;
  };
  const start = t.start.bind(t);
  t.start = () => {
    const inner = t.onmessage;
    t.onmessage = (message) => {
      const result = (message as { result?: { protocolVersion?: unknown } }).result;
      if (seen.version === undefined && typeof result?.protocolVersion === "string") {
        seen.version = result.protocolVersion;
      }
      inner?.(message);
    };
    return start();
  };
  return seen;
}

function collect(stream: unknown, sink: string[]): void {
  const s = stream as { on?: (ev: string, cb: (chunk: unknown) => void) => void } | null;
  s?.on?.("data", (chunk) => sink.push(String(chunk)));
}

/**
 * Spawns `deno run …` and connects to it with the given client generation.
 *
 * @param generation which SDK client
 * @param options the server's arguments and environment
 * @returns the connected client
 */
export async function connect(generation: Generation, options: SpawnOptions): Promise<TestClient> {
  const params = {
    command: Deno.execPath(),
    args: ["run", "--quiet", ...options.args],
    env: { PATH: Deno.env.get("PATH") ?? "", NO_COLOR: "1", ...options.env },
    stderr: "pipe" as const,
  };
  const errors: string[] = [];
  if (generation === "2025-11-25") {
    const transport = new StdioV1(params);
    const seen = captureVersion(transport);
    collect(transport.stderr, errors);
    const client = new ClientV1({ name: "infraveil-test-v1", version: "1.0.0" });
    await client.connect(transport);
    return {
      protocolVersion: seen.version,
      instructions: client.getInstructions(),
      async listTools() {
        return (await client.listTools()).tools as ListedTool[];
      },
      async callTool(name, args) {
        return await client.callTool({ name, arguments: args }) as ReceivedResult;
      },
      stderr: () => errors.join(""),
      close: () => client.close(),
    };
  }
  const transport = new StdioV2(params);
  collect(transport.stderr, errors);
  const client = new ClientV2(
    { name: "infraveil-test-v2", version: "2.0.0" },
    { versionNegotiation: { mode: { pin: "2026-07-28" } } },
  );
  await client.connect(transport);
  return {
    protocolVersion: client.getNegotiatedProtocolVersion(),
    instructions: client.getInstructions(),
    async listTools() {
      return (await client.listTools()).tools as unknown as ListedTool[];
    },
    async callTool(name, args) {
      return await client.callTool({ name, arguments: args }) as unknown as ReceivedResult;
    },
    stderr: () => errors.join(""),
    close: () => client.close(),
  };
}
