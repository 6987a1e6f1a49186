/**
 * HTTP sign-in (PROTOCOL.md, "Signing in (HTTP)" and "Signing in as an agent"). Errors come back
 * as `HubError` with the body's `code`, `message` and `retry_after_ms`.
 */
import { HubError } from "./errors.js";
import type { Agent, ErrorCode, Time, Uuid } from "./types.js";

export interface CodeSent {
  expires_in_ms: number;
  resend_after_ms: number;
}

export interface UserSession {
  token: string;
  expires_at: Time;
  user_id: Uuid;
  device_id: Uuid;
  new_user: boolean;
}

export interface AgentSession {
  token: string;
  expires_at: Time;
  agent: Pick<Agent, "id" | "name" | "status" | "capacity"> & { email: string };
}

/** The installation: `id` is a UUID generated once and never changed; `name` the device model. */
export interface Installation {
  id: string;
  name?: string;
}

type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body?: string }) => Promise<{
  status: number;
  text(): Promise<string>;
}>;

function fetchOf(custom?: FetchLike): FetchLike {
  const f = custom ?? (globalThis as { fetch?: FetchLike }).fetch;
  if (!f) throw new TypeError("no fetch: pass one in the options");
  return f;
}

async function call<T>(baseUrl: string, method: string, path: string, body: unknown, opts: { fetch?: FetchLike; token?: string } = {}): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (opts.token) headers["authorization"] = `Bearer ${opts.token}`;
  const res = await fetchOf(opts.fetch)(baseUrl.replace(/\/+$/, "") + path, {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // Not the hub's JSON: a proxy's error page.
    throw new HubError({ code: res.status >= 500 ? "unavailable" : "internal", message: `HTTP ${res.status} without a JSON body` });
  }
  if (res.status >= 200 && res.status < 300) return parsed as T;
  const error = (parsed as { error?: { code: ErrorCode; message: string; retry_after_ms?: number } } | undefined)?.error;
  throw new HubError(error ?? { code: "internal", message: `HTTP ${res.status}` });
}

/** `POST /v1/auth/code`: the number as typed (the hub reads Persian digits and spaces). */
export function requestCode(baseUrl: string, phone: string, opts?: { fetch?: FetchLike }): Promise<CodeSent> {
  return call(baseUrl, "POST", "/v1/auth/code", { phone }, opts);
}

/** `POST /v1/auth/verify`: the code as typed; answers the session token. */
export function signIn(baseUrl: string, phone: string, code: string, device: Installation, opts?: { fetch?: FetchLike }): Promise<UserSession> {
  return call(baseUrl, "POST", "/v1/auth/verify", { phone, code, device }, opts);
}

/** `POST /v1/agent/login`: an `agt_` token that lives `agent_session_ttl_secs`. */
export function agentLogin(baseUrl: string, email: string, password: string, opts?: { fetch?: FetchLike }): Promise<AgentSession> {
  return call(baseUrl, "POST", "/v1/agent/login", { email, password }, opts);
}

/** `DELETE /v1/auth/session`: signs out without a socket. */
export async function signOut(baseUrl: string, token: string, opts?: { fetch?: FetchLike }): Promise<void> {
  await call(baseUrl, "DELETE", "/v1/auth/session", undefined, { ...opts, token });
}

/** `GET /v1/me`: the account behind a user token. */
export function me(baseUrl: string, token: string, opts?: { fetch?: FetchLike }): Promise<{ user_id: Uuid; phone: string; registered_at: Time }> {
  return call(baseUrl, "GET", "/v1/me", undefined, { ...opts, token });
}
