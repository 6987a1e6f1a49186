// The console's one socket to the hub: protocol v1 in JSON (`anapars.v1.json`), authenticated with
// the `auth` frame (the token never goes in a URL), requests matched to replies by id, and
// reconnection with backoff and jitter according to the close code (protocol/PROTOCOL.md, "Close
// codes"). It knows nothing about tickets: the app resumes them in `onReady`.

const SUBPROTOCOL = 'anapars.v1.json';
/** A request without a reply after this long fails with `timeout` and the socket is recycled. */
const REQUEST_TIMEOUT_MS = 15000;
/** An application `ping` this often: browsers answer WebSocket pings but cannot see them, so a dead
 *  network is noticed only by asking. */
const KEEPALIVE_MS = 20000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30000;
/** For client bugs the hub reports (1007, 1009, 4009, 4010): wait long before trying again. */
const BACKOFF_ABUSE_MS = 60000;

/** Close codes after which the token is dead: the agent must sign in again, told why (the
 *  catalogue's `signin.reason.*`). */
const SIGN_IN_AGAIN = new Map([
  [1000, 'signed_out'],
  [4002, 'token_refused'],
  [4003, 'revoked'],
  [4004, 'expired'],
]);
const ABUSE = new Set([1007, 1009, 4009, 4010]);

/** A failed request: `code` is the hub's error code (or `disconnected` / `timeout`). */
export class RequestError extends Error {
  constructor(code, message, retryAfterMs) {
    super(message || code);
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * One logical connection that keeps itself open.
 *
 * Callbacks: `onState({state, detail, retryAt})` with state `connecting`, `online`, `waiting`
 * (reconnecting after `retryAt`) or `stopped`; `onReady(agent)` after every successful `auth`;
 * `onEvent(frame)` for every frame without an `id`; `onSignInAgain(reason)` when the token is dead
 * (`reason`: `signed_out`, `token_refused`, `revoked`, `expired` or `not_agent`).
 */
export class HubConnection {
  constructor({ url, token, onState, onReady, onEvent, onSignInAgain }) {
    this.url = url;
    this.token = token;
    this.onState = onState;
    this.onReady = onReady;
    this.onEvent = onEvent;
    this.onSignInAgain = onSignInAgain;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
    this.attempt = 0;
    this.retryTimer = null;
    this.keepaliveTimer = null;
    this.stopped = false;
    this.ready = false;
  }

  /** Opens the socket (again). */
  start() {
    this.stopped = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.open();
  }

  /** Closes for good (sign-out): no reconnection. */
  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.keepaliveTimer);
    if (this.ws) {
      this.ws.close(1000);
      this.ws = null;
    }
    this.failPending('disconnected');
    this.ready = false;
    this.onState({ state: 'stopped' });
  }

  /** Skips the rest of the backoff wait. */
  retryNow() {
    if (this.retryTimer && !this.stopped) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.open();
    }
  }

  open() {
    this.ready = false;
    this.onState({ state: 'connecting' });
    let ws;
    try {
      ws = new WebSocket(this.url, SUBPROTOCOL);
    } catch (e) {
      this.scheduleRetry(false);
      return;
    }
    this.ws = ws;
    ws.onopen = () => this.authenticate(ws);
    ws.onmessage = (m) => this.receive(ws, m);
    ws.onclose = (c) => this.closed(ws, c.code);
    // `onerror` is always followed by `onclose`, which decides what to do.
  }

  async authenticate(ws) {
    try {
      const reply = await this.request({ type: 'auth', token: this.token }, ws);
      if (reply.type !== 'auth.agent.ok') {
        // A user token cannot drive the console.
        this.signInAgain('not_agent');
        return;
      }
      this.attempt = 0;
      this.ready = true;
      clearInterval(this.keepaliveTimer);
      this.keepaliveTimer = setInterval(() => this.keepalive(ws), KEEPALIVE_MS);
      this.onState({ state: 'online' });
      this.onReady(reply);
    } catch (e) {
      if (e.code === 'unauthorized') {
        this.signInAgain('token_refused');
      } else if (this.ws === ws) {
        ws.close(4000);
      }
    }
  }

  async keepalive(ws) {
    try {
      await this.request({ type: 'ping' }, ws);
    } catch (e) {
      // No answer: the network is gone even if the browser has not noticed.
      if (e.code === 'timeout' && this.ws === ws) {
        ws.close(4000);
      }
    }
  }

  signInAgain(reason) {
    this.stop();
    this.onSignInAgain(reason);
  }

  receive(ws, message) {
    if (ws !== this.ws || typeof message.data !== 'string') return;
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    if (!frame || typeof frame !== 'object') return;
    if (!('id' in frame)) {
      this.onEvent(frame);
      return;
    }
    const waiting = frame.id === null ? null : this.pending.get(frame.id);
    if (!waiting) return; // `"id": null`: one of our frames was refused; its request times out.
    this.pending.delete(frame.id);
    clearTimeout(waiting.timer);
    if (frame.type === 'error') {
      waiting.reject(new RequestError(frame.code, frame.message, frame.retry_after_ms));
    } else {
      waiting.resolve(frame);
    }
  }

  closed(ws, code) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.ready = false;
    clearInterval(this.keepaliveTimer);
    this.failPending('disconnected');
    if (this.stopped) return;
    if (SIGN_IN_AGAIN.has(code)) {
      this.signInAgain(SIGN_IN_AGAIN.get(code));
      return;
    }
    this.scheduleRetry(ABUSE.has(code));
  }

  scheduleRetry(long) {
    const base = long ? BACKOFF_ABUSE_MS : Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    // Full jitter in the upper half, so that a restarted hub is not hit by every console at once.
    const wait = Math.round(base / 2 + Math.random() * (base / 2));
    this.attempt = Math.min(this.attempt + 1, 16);
    const retryAt = Date.now() + wait;
    this.onState({ state: 'waiting', retryAt });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) this.open();
    }, wait);
  }

  failPending(code) {
    for (const [, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.reject(new RequestError(code, 'the connection closed before the reply'));
    }
    this.pending.clear();
  }

  /**
   * Sends a request and resolves with its reply; rejects with a {@link RequestError}. Requests made
   * while the socket is not ready fail at once with `disconnected`: the app resends what matters
   * after `onReady`.
   */
  request(frame, ws = this.readySocket()) {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new RequestError('disconnected', 'not connected'));
    }
    const id = this.nextId;
    this.nextId = this.nextId >= Number.MAX_SAFE_INTEGER ? 1 : this.nextId + 1;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) {
          reject(new RequestError('timeout', 'no reply from the hub'));
          if (this.ws === ws) ws.close(4000);
        }
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...frame, id }));
    });
  }

  readySocket() {
    return this.ready ? this.ws : null;
  }

  /** Replaces the token (after `session.refresh`) for the next `auth`. */
  setToken(token) {
    this.token = token;
  }
}
