/**
 * The authority graph: users, groups (nestable), roles, grants and delegations, and the two
 * questions asked of it — who can approve this request, and why can this user approve it (the
 * path through the graph). Pure: built from {@link AuthorityData}, no storage, no clock of its
 * own.
 *
 * Rules: a grant lets a role approve an action on an environment and a service (`*` matches
 * any; a request without a service or environment matches only `*`). A user holds the roles
 * assigned to them and to every group they belong to, directly or through nested groups. A
 * delegation gives its receiver the delegator's own roles (or one of them) until it expires;
 * delegations do not chain. Only active users count.
 *
 * @module
 */
import type { AuthorityData, GrantRow, UserRow } from "./store.ts";

/** What an approver approves: action, environment and service. */
export interface ApprovalTarget {
  /** Action name (`policy.activate` for policy changes). */
  action: string;
  /** Environment, or null. */
  environment: string | null;
  /** Service, or null. */
  service: string | null;
}

/** One step of a path through the graph. */
export type PathStep =
  | { type: "user"; user: string; email: string }
  | {
    type: "delegation";
    id: string;
    from: string;
    from_email: string;
    role: string | null;
    expires_at: number;
  }
  | { type: "member_of"; group: string }
  | { type: "role"; role: string }
  | { type: "grant"; id: string; action: string; environment: string; service: string };

/** An eligible approver and the shortest reason. */
export interface Approver {
  /** The user. */
  user: UserRow;
  /** The path from the user to a matching grant. */
  path: PathStep[];
}

function matches(pattern: string, value: string | null): boolean {
  return pattern === "*" || (value !== null && pattern === value);
}

/**
 * Whether a grant covers a target.
 *
 * @param grant the grant
 * @param target action, environment and service
 * @returns true when every field matches
 */
export function grantCovers(grant: GrantRow, target: ApprovalTarget): boolean {
  return matches(grant.action, target.action) && matches(grant.environment, target.environment) &&
    matches(grant.service, target.service);
}

/** The graph of one tenant, indexed for queries. */
export class AuthorityGraph {
  readonly #data: AuthorityData;
  readonly #users = new Map<string, UserRow>();
  readonly #parents = new Map<string, string[]>(); // "user:id" | "group:name" -> groups
  readonly #roles = new Map<string, string[]>(); // "user:id" | "group:name" -> roles

  /** @param data the tenant's authority data */
  constructor(data: AuthorityData) {
    this.#data = data;
    for (const u of data.users) this.#users.set(u.id, u);
    for (const m of data.members) {
      const key = `${m.memberKind}:${m.member}`;
      const list = this.#parents.get(key) ?? [];
      list.push(m.group);
      this.#parents.set(key, list);
    }
    for (const a of data.assignments) {
      const key = `${a.subjectKind}:${a.subject}`;
      const list = this.#roles.get(key) ?? [];
      list.push(a.role);
      this.#roles.set(key, list);
    }
  }

  /** The data the graph was built from. */
  get data(): AuthorityData {
    return this.#data;
  }

  /**
   * A user by id.
   *
   * @param id user id
   * @returns the user
   */
  user(id: string): UserRow | undefined {
    return this.#users.get(id);
  }

  /** Roles a user holds without delegation, each with its shortest path (after the user step). */
  #ownRoles(userId: string): Map<string, PathStep[]> {
    const out = new Map<string, PathStep[]>();
    const seen = new Set<string>([`user:${userId}`]);
    let frontier: [string, PathStep[]][] = [[`user:${userId}`, []]];
    while (frontier.length > 0) {
      const next: [string, PathStep[]][] = [];
      for (const [node, path] of frontier) {
        for (const role of this.#roles.get(node) ?? []) {
          if (!out.has(role)) out.set(role, [...path, { type: "role", role }]);
        }
        for (const group of this.#parents.get(node) ?? []) {
          const key = `group:${group}`;
          if (seen.has(key)) continue;
          seen.add(key);
          next.push([key, [...path, { type: "member_of", group }]]);
        }
      }
      frontier = next;
    }
    return out;
  }

  /**
   * Every role a user holds at `now` (own roles first, then delegated ones), with paths that
   * start at the user.
   *
   * @param userId the user
   * @param now the time, ms
   * @returns role → shortest path
   */
  roles(userId: string, now: number): Map<string, PathStep[]> {
    const user = this.#users.get(userId);
    const out = new Map<string, PathStep[]>();
    if (!user || user.status !== "active") return out;
    const head: PathStep = { type: "user", user: user.id, email: user.email };
    for (const [role, path] of this.#ownRoles(userId)) out.set(role, [head, ...path]);
    for (const d of this.#data.delegations) {
      if (d.toUser !== userId || d.revokedAt !== null || d.expiresAt <= now) continue;
      const from = this.#users.get(d.fromUser);
      if (!from || from.status !== "active" || from.id === userId) continue;
      for (const [role, path] of this.#ownRoles(from.id)) {
        if (d.role !== null && d.role !== role) continue;
        const full: PathStep[] = [
          head,
          {
            type: "delegation",
            id: d.id,
            from: from.id,
            from_email: from.email,
            role: d.role,
            expires_at: d.expiresAt,
          },
          ...path,
        ];
        const have = out.get(role);
        if (!have || have.length > full.length) out.set(role, full);
      }
    }
    return out;
  }

  /**
   * Whether a user holds a role (directly, through groups, or delegated).
   *
   * @param userId the user
   * @param role the role
   * @param now the time, ms
   * @returns true when held
   */
  hasRole(userId: string, role: string, now: number): boolean {
    return this.roles(userId, now).has(role);
  }

  /**
   * Why a user can approve a target: the shortest path to a covering grant, or null.
   *
   * @param userId the user
   * @param target action, environment, service
   * @param now the time, ms
   * @returns the path, or null when the user cannot approve
   */
  explain(userId: string, target: ApprovalTarget, now: number): PathStep[] | null {
    let best: PathStep[] | null = null;
    const roles = this.roles(userId, now);
    for (const grant of this.#data.grants) {
      if (!grantCovers(grant, target)) continue;
      const path = roles.get(grant.role);
      if (!path) continue;
      const full: PathStep[] = [...path, {
        type: "grant",
        id: grant.id,
        action: grant.action,
        environment: grant.environment,
        service: grant.service,
      }];
      if (!best || full.length < best.length) best = full;
    }
    return best;
  }

  /**
   * Everyone who can approve a target, each with a path, minus the excluded users.
   *
   * @param target action, environment, service
   * @param now the time, ms
   * @param exclude user ids that may not approve (the requester, the operator)
   * @returns approvers ordered by email
   */
  approvers(
    target: ApprovalTarget,
    now: number,
    exclude: ReadonlySet<string> = new Set(),
  ): Approver[] {
    const out: Approver[] = [];
    for (const user of this.#data.users) {
      if (exclude.has(user.id)) continue;
      const path = this.explain(user.id, target, now);
      if (path) out.push({ user, path });
    }
    return out.sort((a, b) => a.user.email.localeCompare(b.user.email));
  }
}

/**
 * A path as one line of text, e.g. `alice → group ops → role deployer → grant deploy on production/*`.
 *
 * @param path the path
 * @returns the text
 */
export function formatPath(path: readonly PathStep[]): string {
  return path.map((s) => {
    switch (s.type) {
      case "user":
        return s.email;
      case "delegation":
        return `delegated by ${s.from_email}${s.role ? ` (role ${s.role})` : ""} until ${
          new Date(s.expires_at).toISOString()
        }`;
      case "member_of":
        return `group ${s.group}`;
      case "role":
        return `role ${s.role}`;
      case "grant":
        return `grant ${s.action} on ${s.environment}/${s.service}`;
    }
  }).join(" → ");
}
