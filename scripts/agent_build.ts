/**
 * `deno run -A scripts/agent_build.ts --out DIR`: writes the files of an agent release (the
 * entry `agent.js` and the workers, each one self-contained module) to DIR. Then:
 *
 *   infraveil release bundle --src DIR --entry agent.js --version V --release-key KEY \
 *     --tenant-keys TENANT.key --out agent.bundle
 *
 * @module
 */
import { parseArgs } from "node:util";
import { buildAgentFiles } from "@infraveil/agent/build";

const { values } = parseArgs({
  args: Deno.args,
  options: { out: { type: "string" }, minify: { type: "boolean" }, help: { type: "boolean" } },
  strict: true,
});
if (values.help || !values.out) {
  console.error("Usage: deno run -A scripts/agent_build.ts --out DIR [--minify]");
  Deno.exit(values.help ? 0 : 2);
}
const files = await buildAgentFiles(values.out, { minify: values.minify });
console.log(`wrote ${files.join(", ")} to ${values.out}`);
