/**
 * The control-plane scenario suite on the SQLite backend.
 *
 * @module
 */
import { sqliteBackend } from "./_testing.ts";
import { requestScenarios } from "./_scenario_requests.ts";

requestScenarios(sqliteBackend);
import { authScenarios } from "./_scenario_auth.ts";
authScenarios(sqliteBackend);
import { governanceScenarios } from "./_scenario_governance.ts";
governanceScenarios(sqliteBackend);
import { fleetScenarios } from "./_scenario_fleet.ts";
fleetScenarios(sqliteBackend);
import { concurrencyScenarios, storeScenarios } from "./_scenario_store.ts";
storeScenarios(sqliteBackend);
concurrencyScenarios(sqliteBackend);
import { securityScenarios } from "./_scenario_security.ts";
securityScenarios(sqliteBackend);
import { evidenceScenarios } from "./_scenario_evidence.ts";
evidenceScenarios(sqliteBackend);
