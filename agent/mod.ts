/**
 * Host agent: release bundles and attestations, the self-verifying launcher, the worker
 * supervisor and the runner that executes approved actions only.
 *
 * @module
 */
export {};
