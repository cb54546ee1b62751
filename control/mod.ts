/**
 * Control plane: tenants, fleet, policies, the approval queue, the authority graph, the
 * evidence store, break-glass, the dashboard, and the client other members use.
 *
 * @module
 */
export {};
