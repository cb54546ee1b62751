/**
 * Tamper-evident audit ledger: append-only JSONL entries chained by hash, an RFC 6962
 * Merkle tree with inclusion and consistency proofs, signed checkpoints and an offline verifier.
 *
 * @module
 */
export {};
