/**
 * The dashboard's way into the control plane: it calls the control-plane API in process,
 * with the signed-in user's session token as the bearer, so every read and every change
 * passes through the very handlers, rules (humans only, distinct approvers, N of M, tenant
 * scoping, roles) and evidence appends the API applies to any other client.
 *
 * @module
 */
import { ControlError, type ControlErrorCode, ERROR_STATUS } from "../error.ts";

/** Something that answers control-plane API requests (the app's `fetch`). */
export type ApiFetch = (request: Request) => Response | Promise<Response>;

/** The origin used for in-process API requests (never sent over a network). */
const INTERNAL = "http://control.internal";

/** Calls the API of one tenant as one session. */
export class ApiCaller {
  readonly #fetch: ApiFetch;
  readonly #tenant: string;
  readonly #token: string | null;

  /**
   * @param fetch the API
   * @param tenant the tenant
   * @param token the bearer (session token), or null for public routes
   */
  constructor(fetch: ApiFetch, tenant: string, token: string | null) {
    this.#fetch = fetch;
    this.#tenant = tenant;
    this.#token = token;
  }

  /**
   * Calls a route; `path` is relative to `/v1/t/{tenant}` unless it starts with `/v1/`.
   *
   * @param method HTTP method
   * @param path the path (with query)
   * @param body a JSON body
   * @returns the parsed JSON
   * @throws {ControlError} the API's error code and message
   */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, body);
    const text = await res.text();
    if (!res.ok) throw errorOf(res.status, text);
    return JSON.parse(text) as T;
  }

  /**
   * Calls a route and returns the response as is.
   *
   * @param method HTTP method
   * @param path the path
   * @param body a JSON body
   * @returns the response
   */
  async raw(method: string, path: string, body?: unknown): Promise<Response> {
    const url = path.startsWith("/v1/")
      ? `${INTERNAL}${path}`
      : `${INTERNAL}/v1/t/${encodeURIComponent(this.#tenant)}${path}`;
    const headers: Record<string, string> = {};
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    return await this.#fetch(
      new Request(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );
  }

  /** GET shorthand. */
  get<T>(path: string): Promise<T> {
    return this.call<T>("GET", path);
  }

  /** POST shorthand. */
  post<T>(path: string, body: unknown = {}): Promise<T> {
    return this.call<T>("POST", path, body);
  }
}

function errorOf(status: number, text: string): ControlError {
  try {
    const e = JSON.parse(text)?.error;
    if (e && typeof e.code === "string" && e.code in ERROR_STATUS) {
      return new ControlError(e.code as ControlErrorCode, String(e.message ?? e.code));
    }
  } catch {
    // not JSON
  }
  return new ControlError(
    status === 404 ? "NOT_FOUND" : "INTERNAL",
    `Control-plane API answered ${status}`,
  );
}

/**
 * Builds a query string from defined, non-empty values.
 *
 * @param q the values
 * @returns `?a=1&b=2` or an empty string
 */
export function query(q: Record<string, string | number | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v !== undefined && v !== null && v !== "") p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : "";
}
