// A ledger worker whose sandbox self-test reports a leak: the supervisor must refuse it.
import { runLedgerWorker } from "../ledger_worker.ts";

const scope = globalThis as unknown as {
  postMessage(m: unknown): void;
  addEventListener(t: "message", l: (e: MessageEvent) => void): void;
};
const post = scope.postMessage.bind(scope);
scope.postMessage = (m: unknown) => {
  const r = m as { type?: string; result?: Record<string, string> };
  if (r?.type === "reply" && r.result && "connect" in r.result) r.result.connect = "allowed";
  post(m);
};
runLedgerWorker(scope);
