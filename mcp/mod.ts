/**
 * Governed MCP server: lets an AI agent read fleet state and request changes, never apply
 * them. Every call to the control plane is a signed envelope and every response is verified
 * against the control plane's pinned key before any of it reaches the AI agent.
 *
 * `infraveil mcp` (see `./main`) serves it over stdio; {@link createMcpServer} builds it over
 * any {@link ControlApi}, and {@link callTool} is its pure core.
 *
 * @module
 */
export * from "./error.ts";
export * from "./identity.ts";
export type * from "./control_api.ts";
export {
  callTool,
  describeError,
  errorResult,
  formatIssues,
  runTool,
  TOOL_NAMES,
  type ToolAnnotations,
  type ToolContext,
  type ToolDefinition,
  type ToolResult,
  TOOLS,
} from "./tools.ts";
export {
  createMcpServer,
  type Logger,
  type McpServerDeps,
  serveMcp,
  type ServeMcpOptions,
  SERVER_NAME,
  SERVER_VERSION,
} from "./server.ts";
export { type ControlApiOptions, createControlApi, mapControlError } from "./control_client.ts";
