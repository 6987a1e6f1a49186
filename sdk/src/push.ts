/**
 * Push registration (PROTOCOL.md, "Push notifications"; CLIENTS.md section 9): the
 * `push.register` / `push.unregister` frames through a `HubClient`, registering once per session
 * and again only when the target or the person's choices change, and the HTTP routes
 * (`PUT /v1/push`, `DELETE /v1/push`, `GET /v1/push/vapid`) for apps without a socket.
 */
import type { HubClient } from "./client.js";
import { HubError } from "./errors.js";
import type { ErrorCode, ReplyTo, Request } from "./types.js";

/** Where notifications go, with the person's choices. */
export type PushRegistrationRequest = Extract<Request, { type: "push.register" }> extends infer R
  ? R extends { type: "push.register" }
    ? Omit<R, "type">
    : never
  : never;

/** A registration as the hub answers it: never its token or keys. */
export type PushRegistration = ReplyTo<"push.register">["registration"];

type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body?: string }) => Promise<{
  status: number;
  text(): Promise<string>;
}>;

/**
 * Where `PushRegistrar` keeps the fingerprint of what the current session has registered. Durable
 * in an app, so that a restart with a live session does not register again.
 */
export interface PushStateStore {
  load(): Promise<string | null> | string | null;
  save(fingerprint: string | null): Promise<void> | void;
}

export class MemoryPushStateStore implements PushStateStore {
  private value: string | null = null;
  load() {
    return this.value;
  }
  save(fingerprint: string | null) {
    this.value = fingerprint;
  }
}

/**
 * Keeps the session's push registration equal to what the app wants, over a `HubClient`.
 *
 * A registration belongs to the session and survives reconnects; sending it again would replace
 * it and drop what the hub queued for it. So `push.register` goes out after `auth.ok` only when the
 * session has not registered this exact target and choices yet (a new session, a new provider
 * token, `preview` or `language` changed), and `push.unregister` when the app sets `null`. When
 * the client reaches `closed` the session and its registration are gone: the next session
 * registers again.
 */
export class PushRegistrar {
  private desired: PushRegistrationRequest | null | undefined;
  /** A fingerprint the hub refused as malformed: not sent again until the app sets another. */
  private refused: string | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly off: (() => void)[];
  private readonly store: PushStateStore;
  /** The last registration the hub answered on this client. */
  registration: PushRegistration | undefined;

  constructor(
    private readonly client: HubClient,
    options: { store?: PushStateStore; onError?: (err: Error) => void } = {},
  ) {
    this.store = options.store ?? new MemoryPushStateStore();
    const onError = options.onError ?? (() => {});
    this.off = [
      client.on("state", (state) => {
        if (state === "connected") this.sync().catch(onError);
      }),
      client.on("closed", () => {
        this.registration = undefined;
        this.enqueue(async () => this.store.save(null)).catch(onError);
      }),
    ];
  }

  /**
   * Sets the registration the app wants (`null`: none). Resolves once the hub has it when the
   * client is connected; otherwise after the next `auth.ok` (with `undefined` now). Rejects with
   * `HubError` (`bad_request` naming the field, `unauthorized`) or `ConnectionLost`.
   */
  set(registration: PushRegistrationRequest | null): Promise<PushRegistration | undefined> {
    this.desired = registration;
    return this.sync();
  }

  /** Stops following the client. */
  dispose(): void {
    for (const off of this.off) off();
  }

  private sync(): Promise<PushRegistration | undefined> {
    return this.enqueue(async () => {
      const desired = this.desired;
      if (desired === undefined || this.client.state !== "connected") return undefined;
      const wanted = desired === null ? null : fingerprint(desired);
      const current = await this.store.load();
      if (wanted === current || (wanted !== null && wanted === this.refused)) return this.registration;
      if (wanted === null) {
        await this.client.request({ type: "push.unregister" });
        this.registration = undefined;
        await this.store.save(null);
        return undefined;
      }
      try {
        const reply = await this.client.request({ type: "push.register", ...desired } as Extract<Request, { type: "push.register" }>);
        this.registration = reply.registration;
        await this.store.save(wanted);
        return reply.registration;
      } catch (err) {
        if (err instanceof HubError && err.code === "bad_request") this.refused = wanted;
        throw err;
      }
    });
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const next = this.chain.then(work, work);
    this.chain = next.catch(() => {});
    return next;
  }
}

/** The registration with its defaults written out and its keys in one order. */
export function pushFingerprint(r: PushRegistrationRequest): string {
  return fingerprint(r);
}

function fingerprint(r: PushRegistrationRequest): string {
  const choices = { preview: r.preview ?? false, language: r.language ?? "fa" };
  if (r.provider === "webpush") return JSON.stringify([r.provider, r.endpoint, r.keys.p256dh, r.keys.auth, choices.preview, choices.language]);
  return JSON.stringify([r.provider, r.token, r.provider === "apns" ? r.environment ?? "production" : null, choices.preview, choices.language]);
}

// ---------------------------------------------------------------------------------------------
// HTTP

async function call<T>(baseUrl: string, method: string, path: string, body: unknown, opts: { fetch?: FetchLike; token?: string } = {}): Promise<T> {
  const f = opts.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
  if (!f) throw new TypeError("no fetch: pass one in the options");
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (opts.token) headers["authorization"] = `Bearer ${opts.token}`;
  const res = await f(baseUrl.replace(/\/+$/, "") + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  const parsed = text ? JSON.parse(text) : undefined;
  if (res.status >= 200 && res.status < 300) return parsed as T;
  const error = (parsed as { error?: { code: ErrorCode; message: string; retry_after_ms?: number } } | undefined)?.error;
  throw new HubError(error ?? { code: "internal", message: `HTTP ${res.status}` });
}

/**
 * `PUT /v1/push`: registers the token's session without a socket (the same rules as
 * `push.register`: it replaces the session's registration, so send it only when it changed).
 */
export async function registerPush(baseUrl: string, token: string, registration: PushRegistrationRequest, opts: { fetch?: FetchLike } = {}): Promise<PushRegistration> {
  const reply = await call<{ registration: PushRegistration }>(baseUrl, "PUT", "/v1/push", registration, { ...opts, token });
  return reply.registration;
}

/** `DELETE /v1/push`: the token's session receives no more notifications. */
export async function unregisterPush(baseUrl: string, token: string, opts: { fetch?: FetchLike } = {}): Promise<void> {
  await call(baseUrl, "DELETE", "/v1/push", undefined, { ...opts, token });
}

/** `GET /v1/push/vapid`: the `applicationServerKey` (base64url) for Web Push subscriptions. */
export async function vapidPublicKey(baseUrl: string, opts: { fetch?: FetchLike } = {}): Promise<string> {
  return (await call<{ public_key: string }>(baseUrl, "GET", "/v1/push/vapid", undefined, opts)).public_key;
}
