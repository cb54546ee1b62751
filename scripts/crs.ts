/**
 * `deno task crs`: scores the CRS engine on go-ftw regression tests (see proxy/crs/main.ts).
 *
 * @module
 */
import { main } from "@infraveil/proxy/crs/main";

if (import.meta.main) Deno.exit(await main(Deno.args));
