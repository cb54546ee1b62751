/**
 * Governed MCP server: lets an AI agent read fleet state and request changes, never apply
 * them.
 *
 * @module
 */
export {};
