/**
 * The demo's AI agent: a scripted MCP client (the official TypeScript SDK v2 client) that
 * spawns `infraveil mcp` over stdio, exactly as Claude Code or Cursor would, and calls its
 * tools.
 *
 * @module
 */
import { Client } from "npm:@modelcontextprotocol/client@2.4.0";
import { StdioClientTransport } from "npm:@modelcontextprotocol/client@2.4.0/stdio";
import { DemoError } from "./_demo_runtime.ts";

/** A tool's result as the client receives it. */
export interface ToolResult {
  /** Text blocks. */
  content: { type: string; text?: string }[];
  /** The structured result. */
  // deno-lint-ignore no-explicit-any
  structuredContent?: any;
  /** Set when the tool failed. */
  isError?: boolean;
}

/** A connected scripted AI agent. */
export interface ScriptedAgent {
  /** The protocol version the server and client agreed on. */
  protocolVersion: string | undefined;
  /** Names of the tools the server lists. */
  tools: string[];
  /**
   * Calls a tool and returns its structured result.
   *
   * @throws {DemoError} when the tool reports an error
   */
  // deno-lint-ignore no-explicit-any
  call(name: string, args: Record<string, unknown>): Promise<any>;
  /** What the server wrote to stderr (its per-call log). */
  stderr(): string;
  /** Closes the connection; the server process exits with it. */
  close(): Promise<void>;
}

/**
 * Spawns `deno run FLAGS main.ts mcp` with the given environment and connects to it.
 *
 * @param options the `deno run` arguments (flags, script, `mcp`), the server's environment and
 *   where to register its clean-up
 * @returns the connected client
 */
export async function connectScriptedAgent(
  options: {
    args: string[];
    env: Record<string, string>;
    cwd: string;
    onCleanup: (close: () => Promise<void>) => void;
  },
): Promise<ScriptedAgent> {
  const errors: string[] = [];
  const transport = new StdioClientTransport({
    command: Deno.execPath(),
    args: ["run", "--quiet", "--no-prompt", ...options.args],
    env: { PATH: Deno.env.get("PATH") ?? "", NO_COLOR: "1", ...options.env },
    cwd: options.cwd,
    stderr: "pipe",
  });
  const stream = transport.stderr as
    | { on?: (ev: string, cb: (chunk: unknown) => void) => void }
    | null;
  stream?.on?.("data", (chunk) => errors.push(String(chunk)));
  const client = new Client(
    { name: "infraveil-demo-agent", version: "1.0.0" },
    { versionNegotiation: { mode: { pin: "2026-07-28" } } },
  );
  options.onCleanup(() => client.close().catch(() => transport.close()));
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((t) => t.name);
  return {
    protocolVersion: client.getNegotiatedProtocolVersion(),
    tools,
    async call(name, args) {
      const r = await client.callTool({ name, arguments: args }) as unknown as ToolResult;
      if (r.isError) {
        const text = r.content.map((c) => c.text ?? "").join("\n");
        throw new DemoError(`MCP tool ${name} failed: ${text}`);
      }
      return r.structuredContent;
    },
    stderr: () => errors.join(""),
    close: () => client.close(),
  };
}
