/**
 * The fixed vocabulary of the policy DSL: action names and which of them mutate.
 *
 * @module
 */

/** Every action name the DSL knows, with whether it changes production. */
export const ACTIONS: Readonly<
  Record<string, { mutating: boolean; files: boolean; summary: string }>
> = Object.freeze({
  deploy: { mutating: true, files: true, summary: "ship a new release (governed by `deploy`)" },
  rollback: {
    mutating: true,
    files: true,
    summary: "return to an earlier release (governed by `deploy`)",
  },
  restart: { mutating: true, files: false, summary: "restart a service's processes" },
  remediate: {
    mutating: true,
    files: false,
    summary: "apply a fix for a finding (governed by `remediation`)",
  },
  scale: { mutating: true, files: false, summary: "change the number of instances" },
  config_change: { mutating: true, files: false, summary: "change runtime configuration" },
  rotate_secret: { mutating: true, files: false, summary: "rotate a credential" },
  delete: { mutating: true, files: false, summary: "delete a resource" },
  db_migrate: { mutating: true, files: false, summary: "run a database migration" },
  drop_table: { mutating: true, files: false, summary: "drop a database table" },
  read: { mutating: false, files: false, summary: "read status, logs or traces (never frozen)" },
});

/** Action names, in documentation order. */
export const ACTION_NAMES: readonly string[] = Object.freeze(Object.keys(ACTIONS));

/** True for a known action that changes production (everything but `read`). */
export function isMutating(action: string): boolean {
  return Object.hasOwn(ACTIONS, action) && ACTIONS[action].mutating;
}

/** True for actions governed by the `deploy` block (they carry `files`). */
export function changesFiles(action: string): boolean {
  return action === "deploy" || action === "rollback";
}
