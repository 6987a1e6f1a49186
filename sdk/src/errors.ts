/** Errors the SDK rejects requests with. */
import type { ErrorCode, ErrorFrame } from "./types.js";

/** The hub answered `error`: switch on `code`, never on `message`. */
export class HubError extends Error {
  readonly code: ErrorCode;
  readonly retryAfterMs: number | undefined;
  constructor(frame: Pick<ErrorFrame, "code" | "message" | "retry_after_ms">) {
    super(`${frame.code}: ${frame.message}`);
    this.name = "HubError";
    this.code = frame.code;
    this.retryAfterMs = frame.retry_after_ms;
  }
}

/**
 * The request got no reply: the socket ended (every pending request fails at once), the client
 * was not connected, or the reply did not come in time. The request may or may not have been
 * handled.
 */
export class ConnectionLost extends Error {
  /** The close code that ended the socket, when there was one. */
  readonly closeCode: number | undefined;
  /**
   * `timeout` when no reply came in time, `disconnected` otherwise: beside `HubError`'s codes, so
   * that an app can switch on `code` alone.
   */
  readonly code: "disconnected" | "timeout";
  constructor(message: string, closeCode?: number, code: "disconnected" | "timeout" = "disconnected") {
    super(message);
    this.name = "ConnectionLost";
    this.closeCode = closeCode;
    this.code = code;
  }
}
