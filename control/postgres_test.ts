/**
 * The control-plane scenario suite on a real PostgreSQL (started by the test harness on
 * 127.0.0.1; skipped visibly when the binaries are absent, failed under `CI=true`), plus the
 * scenarios only a shared database has: several control-plane instances at once.
 *
 * @module
 */
import { postgresBackend, stopPostgres } from "./_testing.ts";
import { requestScenarios } from "./_scenario_requests.ts";
import { authScenarios } from "./_scenario_auth.ts";
import { governanceScenarios } from "./_scenario_governance.ts";
import { fleetScenarios } from "./_scenario_fleet.ts";
import { concurrencyScenarios, multiInstanceScenarios, storeScenarios } from "./_scenario_store.ts";
import { securityScenarios } from "./_scenario_security.ts";
import { evidenceScenarios } from "./_scenario_evidence.ts";

if (postgresBackend.unavailable) {
  console.error(`%cSKIP postgres: ${postgresBackend.unavailable}`, "color: yellow");
}

storeScenarios(postgresBackend);
concurrencyScenarios(postgresBackend);
requestScenarios(postgresBackend);
authScenarios(postgresBackend);
governanceScenarios(postgresBackend);
fleetScenarios(postgresBackend);
multiInstanceScenarios(postgresBackend);
securityScenarios(postgresBackend);
evidenceScenarios(postgresBackend);

Deno.test({
  name: "[postgres] stop the test server",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: stopPostgres,
});
