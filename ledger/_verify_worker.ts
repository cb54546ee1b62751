/**
 * The verifier's worker: finds, hashes and scans the lines of the chunks it is sent and sends
 * the chunk back with its analysis. It reads and writes nothing and needs no permission; it
 * computes only over the bytes in its messages.
 *
 * Loaded as a worker by `_parallel.ts`, which also imports it so that it is part of the module
 * graph (and of compiled executables); it does nothing unless it is a worker's main module.
 *
 * @module
 */
import { analyzeChunk, type ChunkAnalysis, firstLineStart } from "./_analyze.ts";

/** A chunk to analyse. */
export interface AnalyzeRequest {
  /** Matches the reply to the request. */
  id: number;
  /** The chunk's buffer (transferred). */
  buffer: ArrayBuffer;
  /** Bytes of the chunk in it. */
  length: number;
  /** Whether the chunk begins inside a line. */
  midLine: boolean;
}

/** The worker's first message: it is ready for requests. */
export interface ReadyMessage {
  /** Always true. */
  ready: true;
}

/** The reply: the buffer back, and the analysis or what went wrong. */
export interface AnalyzeReply {
  /** The request's id. */
  id: number;
  /** The chunk's buffer (transferred back). */
  buffer: ArrayBuffer;
  /** The analysis. */
  analysis?: ChunkAnalysis;
  /** Why there is none. */
  error?: string;
}

interface Scope {
  onmessage: ((e: MessageEvent<AnalyzeRequest>) => void) | null;
  postMessage(message: AnalyzeReply | ReadyMessage, transfer: Transferable[]): void;
}

/**
 * Answers analysis requests on a worker scope.
 *
 * @param scope the worker's global scope
 */
export function serveAnalysis(scope: Scope): void {
  scope.onmessage = (e) => {
    const { id, buffer, length, midLine } = e.data;
    try {
      const chunk = new Uint8Array(buffer, 0, length);
      const a = analyzeChunk(chunk, firstLineStart(chunk, midLine), true);
      const scan = a.scan!;
      scope.postMessage({ id, buffer, analysis: a }, [
        buffer,
        a.bounds.buffer as ArrayBuffer,
        a.hashes.buffer as ArrayBuffer,
        scan.seqs.buffer as ArrayBuffer,
        scan.prevAt.buffer as ArrayBuffer,
        scan.flags.buffer as ArrayBuffer,
      ]);
    } catch (err) {
      scope.postMessage({ id, buffer, error: String(err) }, [buffer]);
    }
  };
  scope.postMessage({ ready: true }, []);
}

if (
  import.meta.main &&
  typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "function"
) {
  serveAnalysis(globalThis as unknown as Scope);
}
