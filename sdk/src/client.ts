/**
 * `HubClient`: the one socket of a session, with the connection state machine, sessions, cursors
 * and resume of CLIENTS.md sections 2 to 7.
 */
import { backoffDelay, LONG_BACKOFF, NORMAL_BACKOFF, type Random } from "./backoff.js";
import { codecFor, type Codec, type Encoding, type WireData } from "./codec.js";
import { ConnectionLost, HubError } from "./errors.js";
import { Outbox, type Delivery, type OutboxEntry, type OutboxStore } from "./outbox.js";
import { Receipts, type MarkChange } from "./receipts.js";
import {
  isReplyOrError,
  type Agent,
  type ErrorFrame,
  type Event,
  type Participant,
  type Reply,
  type ReplyTo,
  type Request,
  type RequestType,
  type Seq,
  type ServerFrame,
  type Ticket,
  type TicketEvent,
  type Uuid,
} from "./types.js";

export type ConnectionState = "disconnected" | "connecting" | "authenticating" | "connected" | "closed";

/** The session token as the client keeps it (in secure storage in an app). */
export interface SessionToken {
  token: string;
  /** `expires_at` of sign-in or the last refresh, ms. */
  expiresAt?: number;
  /** When the token was received: the lifetime is `expiresAt - receivedAt`. */
  receivedAt?: number;
  /** Set before `session.refresh` is sent, cleared with the new token (CLIENTS.md section 5). */
  refreshInFlight?: boolean;
}

/**
 * Where the token lives. `save(null)` deletes it: the session is dead. `save` must be atomic and
 * durable: a refreshed token is the only one that works.
 */
export interface TokenStore {
  load(): Promise<SessionToken | null> | SessionToken | null;
  save(token: SessionToken | null): Promise<void> | void;
}

export class MemoryTokenStore implements TokenStore {
  constructor(private value: SessionToken | null) {}
  load() {
    return this.value;
  }
  save(token: SessionToken | null) {
    this.value = token;
  }
}

/** The subset of the WebSocket API the client uses: browsers, React Native and the `ws` package. */
export interface WebSocketLike {
  readonly protocol: string;
  readonly readyState: number;
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string, protocols: string | string[]) => WebSocketLike;

export interface HubClientOptions {
  /** The hub's base URL, `https://hub.example` (or `wss://`); the socket is at `/v1/ws`. */
  url: string;
  /**
   * The session token, or a callback that reads it (from secure storage) before every connect.
   * With a callback, refreshed tokens reach the app through the `token` listener only; pass a
   * `tokenStore` to have them saved.
   */
  token?: string | SessionToken | (() => Promise<string | SessionToken | null> | string | SessionToken | null);
  tokenStore?: TokenStore;
  encoding?: Encoding;
  /** Defaults to the global `WebSocket` (browsers, React Native, Node 22). */
  WebSocket?: WebSocketConstructor;
  outboxStore?: OutboxStore;
  /** Cursors of the tickets to follow from the start: ticket id → cursor. */
  follow?: Record<Uuid, Seq>;
  /** Read `ticket.list` (and, for agents, `queue.subscribe`) after every auth. Default true. */
  resumeLists?: boolean;
  /** Follow every ticket the client opens. Default true. */
  followOpened?: boolean;
  /** Timeout of requests other than the outbox's, ms. Default 15 s. */
  requestTimeoutMs?: number;
  random?: Random;
}

/** Why the client reached `closed`. */
export interface ClosedReason {
  /** `signed_out` (by this client), `session_ended` (a close code or `unauthorized`), `refused`, `no_token`. */
  kind: "signed_out" | "session_ended" | "refused" | "no_token";
  closeCode?: number;
  /** `reason` of `session.revoked`, for close 4003. */
  revokeReason?: string;
}

type Listeners = {
  state: (state: ConnectionState) => void;
  /** Every event the hub sends, `ticket.event` included. */
  event: (event: Event) => void;
  /**
   * A ticket event in order: the cursor advances only after the returned promise resolves, so a
   * listener that stores the event makes the cursor durable with it.
   */
  "ticket.event": (event: TicketEvent) => void | Promise<void>;
  cursor: (ticketId: Uuid, cursor: Seq) => void;
  /** A message of the local principal changed state: pending, sent, delivered, read or failed. */
  delivery: (delivery: Delivery | MarkChange) => void;
  /** The session token changed (refresh) or was deleted (`null`). */
  token: (token: SessionToken | null) => void;
  tickets: (tickets: Ticket[]) => void;
  closed: (reason: ClosedReason) => void;
  /** The next connection attempt is due at this time (ms): for "reconnecting in 5 s". */
  retry: (at: number) => void;
  /** A followed ticket was resumed on the current socket: its `ticket.subscribe.ok`. */
  subscribed: (ticketId: Uuid, reply: ReplyTo<"ticket.subscribe">) => void;
  /** Problems to report: a proxy or hub mismatch, a client bug. */
  report: (message: string) => void;
};

interface Pending {
  resolve: (reply: Reply) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Close codes after which the session is dead: sign in again (CLIENTS.md section 3). */
const SESSION_ENDED = new Set([4002, 4003, 4004]);
/** Close codes that mean a client bug: resume with the long backoff. */
const CLIENT_BUG = new Set([1007, 1009, 4009, 4010]);

const CONNECT_TIMEOUT_MS = 15_000;
const AUTH_TIMEOUT_MS = 15_000;
/** Browsers cannot see WebSocket pings: after 30 s of silence, `ping`; after 60 s, drop. */
const PING_AFTER_MS = 30_000;
const SILENCE_LIMIT_MS = 60_000;
const ATTEMPT_RESET_MS = 60_000;
const REFRESH_CHECK_MS = 3_600_000;
const BACKGROUND_GRACE_MS = 10_000;
/** The hub's limit of tickets one socket follows. */
const MAX_FOLLOWED = 100;
const NETWORK_PING_MS = 10_000;
const TYPING_INTERVAL_MS = 3000;
/** Pacing: 40 frames per second in bursts of at most 80, below the hub's 50 and 100. */
const FRAMES_PER_SEC = 40;
const FRAME_BURST = 80;

export class HubClient {
  private stateValue: ConnectionState = "disconnected";
  private readonly codec: Codec;
  private readonly WS: WebSocketConstructor;
  private readonly tokenStore: TokenStore;
  private readonly listeners: { [K in keyof Listeners]: Set<Listeners[K]> } = {
    state: new Set(), event: new Set(), "ticket.event": new Set(), cursor: new Set(), delivery: new Set(),
    token: new Set(), tickets: new Set(), closed: new Set(), retry: new Set(), subscribed: new Set(), report: new Set(),
  };
  readonly outbox: Outbox;
  private readonly receipts: Receipts;
  private readonly random: Random;

  private ws: WebSocketLike | undefined;
  /** Increases with every socket; frames and timers of an older socket are ignored. */
  private generation = 0;
  /** Increases with every `open`, so that overlapping ones make one socket. */
  private opening = 0;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private inbound: Promise<void> = Promise.resolve();
  private sendQueue: (string | Uint8Array)[] = [];
  private tokens = FRAME_BURST;
  private tokensAt = Date.now();
  private paceTimer: ReturnType<typeof setTimeout> | undefined;

  private attempt = 0;
  private longBackoff = false;
  private timers = new Set<ReturnType<typeof setTimeout>>();
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private retryAt = 0;
  private lastInbound = 0;
  private clientClosing = false;
  private signingOut = false;
  private revokeReason: string | undefined;
  private sessionDead = false;
  private session: SessionToken | null = null;
  private inBackground = false;
  private started = false;
  private offline = false;
  private backgroundTimer: ReturnType<typeof setTimeout> | undefined;

  /** The signed-in principal, from `auth.ok` / `auth.agent.ok`. */
  userId: Uuid | undefined;
  agent: Agent | undefined;

  /** Request types answered `unknown_type` on this socket: the hub is older; not sent again on it. */
  private unsupported = new Set<RequestType>();
  /** Per ticket: when `ticket.typing` was last sent. */
  private readonly typingAt = new Map<Uuid, number>();
  private readonly cursors = new Map<Uuid, Seq>();
  private readonly followed = new Set<Uuid>();
  /** Followed tickets whose `ticket.subscribe.ok` arrived on the current socket. */
  private readonly resumed = new Set<Uuid>();

  constructor(private readonly options: HubClientOptions) {
    this.codec = codecFor(options.encoding ?? "json");
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new TypeError("no WebSocket: pass one in the options (Node 20: the `ws` package)");
    this.WS = WS;
    this.tokenStore = options.tokenStore ?? tokenStoreOf(options.token);
    this.random = options.random ?? Math.random;
    this.outbox = new Outbox(options.outboxStore, this.random);
    this.outbox.onDelivery((d) => this.onDelivery(d));
    this.receipts = new Receipts(
      (p) => this.isLocal(p),
      (change) => this.emit("delivery", change),
      async (type, ticketId, seq) => {
        await this.request({ type, ticket_id: ticketId, seq });
      },
    );
    this.outbox.attach({
      canSend: (ticketId) =>
        this.stateValue === "connected" && !this.sessionDead && (ticketId === undefined || !this.followed.has(ticketId) || this.resumed.has(ticketId)),
      sendOpen: async (e) => ((await this.sendRequest(openRequest(e), 0)) as ReplyTo<"ticket.open">).ticket,
      sendMessage: async (e) => (await this.sendRequest(sendRequest(e), 0)) as ReplyTo<"ticket.send">,
    });
    for (const [ticketId, cursor] of Object.entries(options.follow ?? {})) this.follow(ticketId, cursor);
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  on<K extends keyof Listeners>(type: K, listener: Listeners[K]): () => void {
    this.listeners[type].add(listener);
    return () => this.listeners[type].delete(listener);
  }

  /** Connects (from `disconnected` or `closed` after a new token): attempt 0. */
  async connect(): Promise<void> {
    if (this.stateValue !== "disconnected" && this.stateValue !== "closed") return;
    this.attempt = 0;
    this.sessionDead = false;
    this.started = true;
    await this.outbox.load();
    this.open();
  }

  /**
   * Starts again after a sign-in (from `closed`): stores the new token and connects. The caller
   * deletes the previous account's local data first when `user_id` changed.
   */
  async useSession(token: string | SessionToken): Promise<void> {
    const session = asSession(token)!;
    await this.saveToken({ ...session, receivedAt: session.receivedAt ?? Date.now() });
    if (this.stateValue === "closed") this.setState("disconnected");
    await this.connect();
  }

  /** Closes the socket with 1000 and arms no timer, as when the app goes to the background. */
  disconnect(): void {
    this.cancelTimers();
    this.outbox.stop();
    const ws = this.ws;
    if (ws) {
      this.clientClosing = true;
      this.endSocket(undefined);
      ws.close(1000);
    }
    if (this.stateValue !== "closed") this.setState("disconnected");
  }

  /**
   * The app went to the background. After the 10 s grace the socket is closed with 1000 and no
   * reconnect timer is armed, so the hub pushes notifications again (CLIENTS.md section 9).
   * Entries without a reply by then stay in the outbox.
   */
  background(): void {
    this.inBackground = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    if (this.backgroundTimer) clearTimeout(this.backgroundTimer);
    this.backgroundTimer = setTimeout(() => {
      this.backgroundTimer = undefined;
      if (this.inBackground && this.stateValue !== "closed") this.disconnect();
    }, BACKGROUND_GRACE_MS);
  }

  /** The app came to the foreground: connect after up to 1 s of jitter, keeping the attempt. */
  foreground(): void {
    this.inBackground = false;
    if (this.backgroundTimer) clearTimeout(this.backgroundTimer);
    this.backgroundTimer = undefined;
    this.reconnectSoon();
  }

  /**
   * The OS reports the network lost or back (or changed). Lost: no tries, and the attempt does not
   * grow. Back while disconnected: connect after up to 1 s. While connected: `ping`, and without
   * `ping.ok` within 10 s the connection is dropped, the attempt unchanged.
   */
  networkChanged(online: boolean): void {
    this.offline = !online;
    if (!online) {
      if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
      return;
    }
    if (this.stateValue === "connected") {
      const generation = this.generation;
      this.request({ type: "ping" }, NETWORK_PING_MS).catch(() => {
        if (generation === this.generation && this.ws) this.drop(undefined, "no ping.ok after a network change", false);
      });
    } else {
      this.reconnectSoon();
    }
  }

  private reconnectSoon(): void {
    if (this.stateValue !== "disconnected" || this.inBackground || this.offline || !this.sessionLoadable()) return;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const delay = Math.floor(this.random() * 1000);
    this.retryAt = Date.now() + delay;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.stateValue === "disconnected") void this.outbox.load().then(() => this.open());
    }, delay);
  }

  /** Whether the client was started (`connect`) and not signed out. */
  private sessionLoadable(): boolean {
    return this.started;
  }

  /**
   * Signs out: `session.sign_out` when connected, then at once deletes the token, the outbox and
   * the cursors, whatever the answer. (Without a socket the app calls `signOut` of http.ts.)
   */
  async signOut(): Promise<void> {
    this.signingOut = true;
    if (this.stateValue === "connected") {
      try {
        await this.request({ type: "session.sign_out" });
      } catch {
        // The token is deleted whatever the answer.
      }
    }
    for (const e of this.outbox.list()) await this.outbox.remove(e.client_msg_id);
    this.cursors.clear();
    this.followed.clear();
    await this.saveToken(null);
    this.disconnect();
    this.started = false;
    this.toClosed({ kind: "signed_out" });
  }

  /** Follows a ticket from `cursor` (the highest seq stored locally; 0 for none). */
  follow(ticketId: Uuid, cursor: Seq = 0): void {
    this.followed.add(ticketId);
    if (!this.cursors.has(ticketId) || (this.cursors.get(ticketId) ?? 0) < cursor) this.cursors.set(ticketId, cursor);
    if (this.stateValue === "connected") this.subscribe(ticketId);
  }

  async unfollow(ticketId: Uuid): Promise<void> {
    this.followed.delete(ticketId);
    this.resumed.delete(ticketId);
    if (this.stateValue === "connected") await this.request({ type: "ticket.unsubscribe", ticket_id: ticketId }).catch(() => {});
  }

  /**
   * The person has seen the ticket up to `seq` (the app in the foreground, the event on screen):
   * `ticket.read`, at most once per second, never above the cursor.
   */
  markRead(ticketId: Uuid, seq: Seq): void {
    const cursor = this.cursors.get(ticketId) ?? 0;
    this.receipts.read(ticketId, Math.min(seq, cursor));
  }

  cursor(ticketId: Uuid): Seq | undefined {
    return this.cursors.get(ticketId);
  }

  /** Opens a ticket through the outbox. Resolves with its entry (`client_msg_id`). */
  openTicket(subject: string, body: string): Promise<OutboxEntry> {
    return this.outbox.open(subject, body);
  }

  /**
   * Sends a message through the outbox: it goes once, in order, whatever the connection does.
   * `attachments`: ids of stored uploads; `meta`: the app's data kept with the entry.
   */
  send(ticketId: Uuid, body: string, options: { attachments?: Uuid[]; meta?: unknown } = {}): Promise<OutboxEntry> {
    return this.outbox.send({ ticket_id: ticketId }, body, options.attachments, options.meta);
  }

  /** When the next connection attempt is due (ms), while one is waiting. */
  get nextAttemptAt(): number | undefined {
    return this.reconnectTimer ? this.retryAt : undefined;
  }

  /** Skips the rest of the backoff wait ("retry now"); the attempt count is kept. */
  retryNow(): void {
    if (!this.reconnectTimer || this.stateValue !== "disconnected") return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    void this.open();
  }

  /**
   * Sends a request and resolves with its reply. Rejects with `HubError` on an `error` frame and
   * with `ConnectionLost` when the socket ends, the client is not connected, or no reply comes in
   * time. Requests are not replayed after a reconnect: recompute them from the resumed state.
   */
  request<T extends RequestType>(request: Extract<Request, { type: T }>, timeoutMs?: number): Promise<ReplyTo<T>> {
    if (this.stateValue !== "connected") return Promise.reject(new ConnectionLost(`not connected (${this.stateValue})`));
    if (this.unsupported.has(request.type)) {
      return Promise.reject(new HubError({ code: "unknown_type", message: `${request.type} is unknown to this hub` }));
    }
    const reply = this.sendRequest(request, timeoutMs ?? this.options.requestTimeoutMs ?? 15_000) as Promise<ReplyTo<T>>;
    return reply.catch((err) => {
      if (err instanceof HubError && err.code === "unknown_type") this.unsupported.add(request.type);
      throw err;
    });
  }

  /**
   * The person is typing in a followed ticket: `ticket.typing` at most every 3 s (the hub refuses
   * a second one within 2 s; 3 s leaves room for timer jitter). A refusal is dropped, never resent.
   */
  typing(ticketId: Uuid): void {
    const now = Date.now();
    if (now - (this.typingAt.get(ticketId) ?? 0) < TYPING_INTERVAL_MS || this.stateValue !== "connected") return;
    this.typingAt.set(ticketId, now);
    this.request({ type: "ticket.typing", ticket_id: ticketId }).catch(() => {});
  }

  // -------------------------------------------------------------------------------------------
  // The socket

  private wsUrl(): string {
    const base = this.options.url.replace(/\/+$/, "").replace(/^http/, "ws");
    return `${base}/v1/ws`;
  }

  private async open(): Promise<void> {
    this.cancelTimers();
    // Two opens may overlap while the token loads (`connect` called twice, a network event as
    // the backoff timer fires): only the latest makes a socket, or the other would stay open
    // unauthenticated, with handlers that ignore it.
    const opening = ++this.opening;
    const session = await this.tokenStore.load();
    if (opening !== this.opening) return;
    this.session = session;
    if (!this.session) return this.toClosed({ kind: "no_token" });
    const generation = ++this.generation;
    this.setState("connecting");
    this.nextId = 1;
    this.unsupported = new Set();
    this.typingAt.clear();
    this.resumed.clear();
    this.clientClosing = false;
    this.revokeReason = undefined;
    let ws: WebSocketLike;
    try {
      // Exactly one subprotocol is offered (CLIENTS.md section 11).
      ws = new this.WS(this.wsUrl(), this.codec.subprotocol);
    } catch (err) {
      this.report(`cannot open the socket: ${String(err)}`);
      return this.retryLater();
    }
    this.ws = ws;
    ws.binaryType = "arraybuffer";
    const current = () => generation === this.generation;
    this.timer(() => {
      if (current() && this.stateValue === "connecting") this.drop(undefined, "connect timeout");
    }, CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
      if (!current()) return;
      if (ws.protocol !== this.codec.subprotocol) {
        this.report(`the hub answered subprotocol "${ws.protocol}" instead of ${this.codec.subprotocol}`);
        this.clientClosing = true;
        ws.close(1000);
        this.endSocket(undefined);
        return this.retryLater();
      }
      this.lastInbound = Date.now();
      this.setState("authenticating");
      this.authenticate(generation);
      this.watchSilence(generation);
    };
    ws.onmessage = (ev) => {
      if (!current()) return;
      this.lastInbound = Date.now();
      let frame: ServerFrame;
      try {
        frame = this.codec.decode(ev.data as WireData);
      } catch (err) {
        return this.report(`undecodable frame from the hub: ${String(err)}`);
      }
      // Frames are handled one at a time, in order: a refreshed token is stored before the next
      // frame, and a ticket event is stored before its cursor moves.
      this.inbound = this.inbound.then(() => (current() ? this.handle(frame) : undefined)).catch((err) => this.report(String(err)));
    };
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      if (!current()) return;
      this.onClose(ev.code);
    };
  }

  private authenticate(generation: number): void {
    const token = this.session!.token;
    this.sendRequest({ type: "auth", token }, AUTH_TIMEOUT_MS, true).then(
      (reply) => {
        if (generation !== this.generation) return;
        if (reply.type === "auth.ok") {
          this.userId = reply.user_id;
          this.agent = undefined;
        } else if (reply.type === "auth.agent.ok") {
          this.agent = reply.agent;
          this.userId = undefined;
        }
        const expiresAt = (reply as { session_expires_at: number }).session_expires_at;
        void this.onAuthenticated(generation, expiresAt);
      },
      (err: Error) => {
        if (generation !== this.generation) return;
        if (err instanceof HubError && err.code === "unauthorized") {
          // The token is dead. Refreshed tokens are stored before anything else, so there is no
          // second token to try: sign in again.
          void this.sessionEnded({ kind: "session_ended" });
        } else if (!(err instanceof ConnectionLost) || err.closeCode === undefined) {
          // `unavailable`, `internal`, `already_authenticated` or no reply: close and reconnect
          // rather than send `auth` again on this socket.
          this.drop(1000, `auth failed: ${err.message}`);
        }
      },
    );
  }

  private async onAuthenticated(generation: number, expiresAt: number): Promise<void> {
    const session = this.session!;
    // The stored token worked, so a refresh marked in flight never took effect: clear the flag.
    if (session.expiresAt !== expiresAt || session.receivedAt === undefined || session.refreshInFlight) {
      const { refreshInFlight: _, ...rest } = session;
      this.session = { ...rest, expiresAt, receivedAt: session.receivedAt ?? Date.now() };
      await this.saveToken(this.session, false);
    }
    this.setState("connected");
    this.timer(() => {
      if (generation === this.generation && this.stateValue === "connected") {
        this.attempt = 0;
        this.longBackoff = false;
      }
    }, ATTEMPT_RESET_MS);
    this.scheduleRefreshCheck(generation);
    await this.resume();
  }

  /** The resume sequence (CLIENTS.md section 7): lists, subscriptions from cursors, the outbox. */
  private async resume(): Promise<void> {
    if (this.options.resumeLists ?? true) {
      this.request({ type: "ticket.list" }).then((r) => this.emit("tickets", r.tickets), () => {});
      if (this.agent) this.request({ type: "queue.subscribe" }).then((r) => this.emit("tickets", r.tickets), () => {});
    }
    for (const ticketId of this.followed) this.subscribe(ticketId);
    this.outbox.flush();
  }

  private subscribe(ticketId: Uuid): void {
    const cursor = this.cursors.get(ticketId) ?? 0;
    this.resumed.delete(ticketId);
    this.request({ type: "ticket.subscribe", ticket_id: ticketId, after_seq: cursor }).then(
      (reply) => {
        this.resumed.add(ticketId);
        this.emit("subscribed", ticketId, reply);
        for (const mark of reply.marks) this.receipts.mark(ticketId, mark);
        const now = this.cursors.get(ticketId);
        if (now) this.receipts.delivered(ticketId, now);
        this.outbox.flush();
      },
      (err) => this.subscribeFailed(ticketId, err),
    );
  }

  private subscribeFailed(ticketId: Uuid, err: unknown): void {
    if (!(err instanceof HubError) || !this.followed.has(ticketId)) return;
    if (err.code === "bad_request" && this.followed.size > MAX_FOLLOWED) {
      // The socket follows at most 100 tickets: this one is not followed on it.
      this.followed.delete(ticketId);
      this.report(`more than ${MAX_FOLLOWED} tickets followed; ${ticketId} is no longer followed`);
    } else if (err.code === "bad_request") {
      // The local copy is ahead of the hub: start the ticket again.
      this.cursors.set(ticketId, 0);
      this.emit("cursor", ticketId, 0);
      this.subscribe(ticketId);
    } else if (err.code === "not_found" || err.code === "forbidden") {
      this.receipts.forget(ticketId);
      this.followed.delete(ticketId);
      this.cursors.delete(ticketId);
      void this.outbox.dropTicket(ticketId);
    } else if (err.code === "unavailable" || err.code === "internal" || err.code === "rate_limited") {
      const delay = backoffDelay(this.attempt, { random: this.random, ...(err.retryAfterMs ? { retryAfterMs: err.retryAfterMs } : {}) });
      this.timer(() => {
        if (this.stateValue === "connected" && this.followed.has(ticketId)) this.subscribe(ticketId);
      }, delay);
    } else {
      this.report(`ticket.subscribe refused: ${err.message}`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Frames

  private async handle(frame: ServerFrame): Promise<void> {
    if (isReplyOrError(frame)) return this.handleReply(frame);
    const event = frame as Event;
    switch (event.type) {
      case "ticket.event":
        await this.handleTicketEvent(event.event);
        break;
      case "session.expiring":
        // A socket may still get one `session.expiring` for the expiry before a refresh: stale.
        if (event.expires_at >= (this.session?.expiresAt ?? 0)) void this.refresh();
        break;
      case "session.expired":
      case "session.revoked":
        // The token is dead: stop sending and wait for the close frame (at most 2 s).
        this.sessionDead = true;
        if (event.type === "session.revoked") this.revokeReason = event.reason;
        {
          const generation = this.generation;
          this.timer(() => {
            if (generation === this.generation && this.ws) this.onClose(event.type === "session.revoked" ? 4003 : 4004);
          }, 2000);
        }
        break;
      case "ticket.receipt":
        this.receipts.mark(event.ticket_id, event);
        break;
      case "ticket.deleted":
        this.receipts.forget(event.ticket_id);
        this.followed.delete(event.ticket_id);
        this.cursors.delete(event.ticket_id);
        await this.outbox.dropTicket(event.ticket_id);
        break;
    }
    this.emit("event", event);
  }

  private async handleReply(frame: Reply | ErrorFrame): Promise<void> {
    if (frame.id === null) {
      // One of the recent frames was refused; for rate_limited the outbox resends what has no reply.
      const err = frame as ErrorFrame;
      if (err.code !== "rate_limited") this.report(`a frame was refused: ${err.code}`);
      return;
    }
    const pending = this.pending.get(frame.id);
    if (!pending) return;
    this.pending.delete(frame.id);
    if (pending.timer) clearTimeout(pending.timer);
    if (frame.type === "error") return pending.reject(new HubError(frame));
    if (frame.type === "session.refresh.ok") {
      // The old token no longer works: store the new one before any other frame is handled.
      this.session = { token: frame.token, expiresAt: frame.expires_at, receivedAt: Date.now() };
      await this.saveToken(this.session);
    }
    pending.resolve(frame);
  }

  private async handleTicketEvent(event: TicketEvent): Promise<void> {
    const ticketId = event.ticket_id;
    const cursor = this.cursors.get(ticketId);
    if (cursor === undefined) {
      // Not followed by this client (another socket's subscription): pass it on, keep no cursor.
      await this.emitTicketEvent(event);
      return;
    }
    if (event.seq <= cursor) return;
    if (event.seq > cursor + 1) {
      // A gap: local state was lost. Restart the ticket from the cursor.
      if (this.stateValue === "connected") this.subscribe(ticketId);
      return;
    }
    await this.emitTicketEvent(event);
    if (this.isOwn(event)) await this.outbox.ownEvent(event);
    this.cursors.set(ticketId, event.seq);
    this.emit("cursor", ticketId, event.seq);
    this.receipts.delivered(ticketId, event.seq);
  }

  private async emitTicketEvent(event: TicketEvent): Promise<void> {
    for (const l of this.listeners["ticket.event"]) await l(event);
  }

  private isOwn(event: TicketEvent): boolean {
    return this.isLocal(event.author);
  }

  /** Whether a participant is the local principal. */
  private isLocal(p: Participant): boolean {
    if (p.kind === "user") return p.id === this.userId;
    if (p.kind === "agent") return p.id === this.agent?.id;
    return false;
  }

  private onDelivery(delivery: Delivery): void {
    if (delivery.state === "sent") this.receipts.sent(delivery.ticket_id, delivery.client_msg_id, delivery.seq);
    if (delivery.state === "sent" && delivery.ticket && (this.options.followOpened ?? true)) {
      if (!this.followed.has(delivery.ticket_id)) this.follow(delivery.ticket_id, 0);
    }
    this.emit("delivery", delivery);
  }

  // -------------------------------------------------------------------------------------------
  // Sessions

  private scheduleRefreshCheck(generation: number): void {
    this.maybeRefresh();
    this.timer(() => {
      if (generation === this.generation && this.stateValue === "connected") this.scheduleRefreshCheck(generation);
    }, REFRESH_CHECK_MS);
  }

  /** Refreshes when less than half of the session's lifetime is left. */
  private maybeRefresh(): void {
    const s = this.session;
    if (!s?.expiresAt || s.receivedAt === undefined || s.refreshInFlight) return;
    const lifetime = s.expiresAt - s.receivedAt;
    if (s.expiresAt - Date.now() < lifetime / 2) void this.refresh();
  }

  /** `session.refresh`, with the in-flight flag written first and the new token stored at once. */
  async refresh(): Promise<void> {
    if (this.stateValue !== "connected" || !this.session || this.session.refreshInFlight) return;
    this.session = { ...this.session, refreshInFlight: true };
    await this.saveToken(this.session, false);
    try {
      // Handled in the inbound chain, so the new token is stored before any later frame.
      await this.request({ type: "session.refresh" });
    } catch (err) {
      if (err instanceof HubError && err.code === "unauthorized") return this.sessionEnded({ kind: "session_ended" });
      if (err instanceof HubError && err.code === "rate_limited") {
        this.session = { ...this.session!, refreshInFlight: false };
        this.timer(() => void this.refresh(), err.retryAfterMs ?? 1000);
        return;
      }
      // `unavailable`, `internal` or a lost socket: retried after the next auth (the flag stays
      // set until then; the old token is tried first).
      if (this.session) this.session = { ...this.session, refreshInFlight: false };
    }
  }

  private async saveToken(token: SessionToken | null, announce = true): Promise<void> {
    await this.tokenStore.save(token);
    if (announce) this.emit("token", token);
  }

  /** The session is dead: delete the token and the local data, fail pending requests, `closed`. */
  private async sessionEnded(reason: ClosedReason): Promise<void> {
    const ws = this.ws;
    this.clientClosing = true;
    this.endSocket(reason.closeCode);
    ws?.close(1000);
    this.cursors.clear();
    this.followed.clear();
    for (const e of this.outbox.list()) await this.outbox.remove(e.client_msg_id);
    await this.saveToken(null);
    this.toClosed(reason);
  }

  // -------------------------------------------------------------------------------------------
  // Closing, reconnecting

  private onClose(code: number): void {
    const byClient = this.clientClosing;
    this.endSocket(code);
    if (byClient) return;
    if (code === 1000) {
      if (this.signingOut) return this.toClosed({ kind: "signed_out" });
      // A close 1000 the client did not cause: the session was signed out.
      void this.sessionEnded({ kind: "session_ended", closeCode: 1000 });
      return;
    }
    if (SESSION_ENDED.has(code)) {
      void this.sessionEnded({
        kind: "session_ended",
        closeCode: code,
        ...(code === 4003 && this.revokeReason ? { revokeReason: this.revokeReason } : {}),
      });
      return;
    }
    if (code === 1012) this.attempt = Math.max(this.attempt, 3);
    if (CLIENT_BUG.has(code)) {
      this.longBackoff = true;
      this.report(`the hub closed with ${code}: a client bug`);
    }
    this.retryLater();
  }

  /** Ends the current socket locally: pending requests fail at once; the outbox keeps its entries. */
  private endSocket(closeCode: number | undefined): void {
    this.generation++;
    this.ws = undefined;
    this.resumed.clear();
    this.receipts.cancel();
    this.sendQueue = [];
    if (this.paceTimer) clearTimeout(this.paceTimer);
    this.paceTimer = undefined;
    const pending = this.pending;
    this.pending = new Map();
    for (const p of pending.values()) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new ConnectionLost("the socket ended", closeCode));
    }
  }

  /** Drops the connection (timeouts, failed auth) and reconnects with backoff. */
  private drop(code: number | undefined, why: string, countAttempt = true): void {
    const ws = this.ws;
    this.clientClosing = true;
    this.endSocket(undefined);
    try {
      ws?.close(code ?? 1000);
    } catch {
      // Closing a socket that never opened may throw.
    }
    this.report(why);
    this.retryLater(countAttempt);
  }

  /** `disconnected` with the backoff timer armed; none in the background or without a network. */
  private retryLater(countAttempt = true): void {
    this.cancelTimers();
    this.setState("disconnected");
    if (this.inBackground || this.offline) return;
    const delay = backoffDelay(this.attempt, { policy: this.longBackoff ? LONG_BACKOFF : NORMAL_BACKOFF, random: this.random });
    if (countAttempt) this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.stateValue === "disconnected") void this.open();
    }, delay);
    this.emit("retry", this.retryAt);
  }

  private toClosed(reason: ClosedReason): void {
    this.cancelTimers();
    this.outbox.stop();
    this.started = false;
    if (this.stateValue === "closed") return;
    this.setState("closed");
    this.emit("closed", reason);
  }

  private watchSilence(generation: number): void {
    const check = () => {
      if (generation !== this.generation) return;
      const silent = Date.now() - this.lastInbound;
      if (silent >= SILENCE_LIMIT_MS) return this.drop(undefined, "no inbound frame for 60 s");
      if (silent >= PING_AFTER_MS && this.stateValue === "connected") this.request({ type: "ping" }).catch(() => {});
      this.timer(check, PING_AFTER_MS / 2);
    };
    this.timer(check, PING_AFTER_MS / 2);
  }

  private timer(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private cancelTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Sending

  /** `timeoutMs` 0: no timeout (outbox requests wait for their reply or the socket's end). */
  private sendRequest(request: Request, timeoutMs: number, authFrame = false): Promise<Reply> {
    const ws = this.ws;
    if (!ws || (!authFrame && (this.stateValue !== "connected" || this.sessionDead))) {
      return Promise.reject(new ConnectionLost(`not connected (${this.stateValue})`));
    }
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this.pending.delete(id);
              reject(new ConnectionLost(`no reply to ${request.type} within ${timeoutMs} ms`, undefined, "timeout"));
              if (authFrame) this.drop(1000, "no reply to auth");
            }, timeoutMs)
          : undefined;
      this.pending.set(id, { resolve, reject, timer });
      this.enqueue(this.codec.encode({ id, ...request }));
    });
  }

  /** Paces frames with a token bucket (40 per second, bursts of 80). */
  private enqueue(data: string | Uint8Array): void {
    this.sendQueue.push(data);
    this.pace();
  }

  private pace(): void {
    const now = Date.now();
    this.tokens = Math.min(FRAME_BURST, this.tokens + ((now - this.tokensAt) * FRAMES_PER_SEC) / 1000);
    this.tokensAt = now;
    while (this.sendQueue.length > 0 && this.tokens >= 1 && this.ws) {
      this.tokens -= 1;
      this.ws.send(this.sendQueue.shift()!);
    }
    if (this.sendQueue.length > 0 && !this.paceTimer) {
      this.paceTimer = setTimeout(() => {
        this.paceTimer = undefined;
        this.pace();
      }, Math.ceil(((1 - this.tokens) * 1000) / FRAMES_PER_SEC));
    }
  }

  private setState(state: ConnectionState): void {
    if (this.stateValue === state) return;
    this.stateValue = state;
    this.emit("state", state);
  }

  private report(message: string): void {
    this.emit("report", message);
  }

  private emit<K extends keyof Listeners>(type: K, ...args: Parameters<Listeners[K]>): void {
    for (const l of this.listeners[type]) (l as (...a: Parameters<Listeners[K]>) => void)(...args);
  }
}

function asSession(token: string | SessionToken | null | undefined): SessionToken | null {
  return typeof token === "string" ? { token } : token ?? null;
}

function tokenStoreOf(token: HubClientOptions["token"]): TokenStore {
  if (typeof token !== "function") return new MemoryTokenStore(asSession(token));
  // The callback is read before every connect; a refreshed or deleted token overrides it.
  let saved: SessionToken | null | undefined;
  return {
    load: async () => (saved !== undefined ? saved : asSession(await token())),
    save: (t) => {
      saved = t;
    },
  };
}

function openRequest(e: OutboxEntry): Request {
  return {
    type: "ticket.open",
    subject: e.subject ?? "",
    body: e.body,
    client_msg_id: e.client_msg_id,
    ...(e.attachments ? { attachments: e.attachments } : {}),
  };
}

function sendRequest(e: OutboxEntry): Request {
  return {
    type: "ticket.send",
    ticket_id: e.ticket_id!,
    body: e.body,
    client_msg_id: e.client_msg_id,
    ...(e.attachments ? { attachments: e.attachments } : {}),
  };
}
