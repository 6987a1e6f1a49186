/**
 * Attachments over HTTP (PROTOCOL.md, "Attachments"; CLIENTS.md section 10): resumable uploads
 * with the hub's tus 1.0.0 routes under `/v1/uploads`, and reading an attachment's bytes with the
 * token in `Authorization`. Everything here works with any `fetch`: browsers, React Native, Node.
 */
import { backoffDelay, type Random } from "./backoff.js";
import { HubError } from "./errors.js";
import type { Attachment, ErrorCode, Time, Uuid } from "./types.js";

/** The part of the Fetch API this module uses; pass one to run without a global `fetch`. */
export type HttpFetch = (
  url: string,
  init: {
    method: string;
    headers: Record<string, string>;
    body?: Uint8Array | string;
    signal?: AbortSignal;
  },
) => Promise<{
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
}>;

/** A `Blob` or `File` (browsers, React Native) or anything else that can hand out byte ranges. */
export interface BlobLike {
  readonly size: number;
  slice(start: number, end: number): { arrayBuffer(): Promise<ArrayBuffer> };
}

export type UploadSource = Uint8Array | BlobLike;

/** An upload as the hub describes it (`attachment` of the `/v1/uploads` answers). */
export interface Upload {
  id: Uuid;
  state: "uploading" | "stored" | "attached";
  name: string;
  length: number;
  received: number;
  expires_at?: Time;
  kind?: Attachment["kind"];
  media_type?: string;
  size?: number;
  width?: number;
  height?: number;
  url?: string;
  thumbnail?: string;
}

/** What the app persists once an upload exists, to resume it after a restart. */
export interface UploadCreated {
  id: Uuid;
  /** `Upload-Expires`, ms: the upload is removed then unless a message carries it. */
  expiresAt: Time | undefined;
}

export interface UploadProgress {
  /** Bytes the hub has taken (its `Upload-Offset`). */
  sent: number;
  total: number;
}

export interface UploadOptions {
  /** The file name the hub stores (sanitised by the hub). */
  name?: string;
  /**
   * Continue this upload (from `onCreated` of an earlier try): the hub is asked for its offset
   * first. When the hub no longer has it (`not_found`, expired), a new upload is started.
   */
  uploadId?: Uuid;
  /**
   * Bytes per request, at least 16384 (the hub refuses smaller pieces that do not finish an
   * upload). Default 1 MiB: `fetch` reports no progress within a request body, so progress moves
   * once per piece; `Infinity` sends the rest of the file in one request.
   */
  chunkSize?: number;
  /**
   * `Tus-Max-Size` of the hub (`uploadMaxSize`): a larger file is refused with `too_large`
   * before any byte is sent.
   */
  maxBytes?: number;
  /** Called once the upload exists, before more bytes are sent: persist `id` to resume it. */
  onCreated?: (created: UploadCreated) => void | Promise<void>;
  onProgress?: (progress: UploadProgress) => void;
  /** Aborts the upload; it stays on the hub and can be resumed with `uploadId`. */
  signal?: AbortSignal;
  /** Failures in a row (network errors, 5xx, `conflict`, `upload_limit`) before giving up. Default 5. */
  maxTries?: number;
  fetch?: HttpFetch;
  random?: Random;
}

const TUS_VERSION = "1.0.0";
const OFFSET_STREAM = "application/offset+octet-stream";
/** The hub's smallest piece that does not finish an upload. */
export const MIN_UPLOAD_PIECE = 16_384;
const DEFAULT_CHUNK = 1024 * 1024;
/** Most uploads one person has in progress is 4: `upload_limit` then says when to try again. */
const UPLOAD_LIMIT_WAIT_MS = 5000;

/**
 * Uploads a file with tus and resolves with the checked attachment (`state: "stored"`): put its
 * `id` in `attachments` of `ticket.send` or `ticket.open`.
 *
 * The first piece travels with the creation (`creation-with-upload`), the rest in `PATCH`es from
 * the hub's offset. After a network error, a 5xx or a `conflict`, the hub is asked for its offset
 * (`HEAD`) and the upload continues from there after a backoff delay. Final refusals reject with
 * `HubError`: `too_large`, `unsupported_media` and `bad_image` (the upload no longer exists),
 * `unauthorized`, or `upload_limit` for the day's bytes. An aborted upload rejects with the
 * signal's reason and can be resumed with `uploadId`.
 */
export async function uploadAttachment(baseUrl: string, token: string, source: UploadSource, opts: UploadOptions = {}): Promise<Upload> {
  const total = sizeOf(source);
  if (total === 0) throw new HubError({ code: "bad_request", message: "an upload has at least 1 byte" });
  if (opts.maxBytes !== undefined && total > opts.maxBytes) {
    throw new HubError({ code: "too_large", message: `a file of ${total} bytes is over the limit of ${opts.maxBytes} bytes` });
  }
  const chunk = Math.max(MIN_UPLOAD_PIECE, opts.chunkSize ?? DEFAULT_CHUNK);
  const maxTries = opts.maxTries ?? 5;
  const http = new Http(baseUrl, token, opts.fetch, opts.signal);
  const signal = opts.signal;

  let id = opts.uploadId;
  /** The hub's offset, when known; `undefined` means ask (HEAD) before sending. */
  let offset: number | undefined = undefined;
  let failures = 0;

  const failed = async (err: unknown): Promise<void> => {
    throwIfAborted(signal);
    if (!retryable(err) || ++failures >= maxTries) throw err;
    const hint = err instanceof HubError ? err.retryAfterMs : undefined;
    const wait = err instanceof HubError && err.code === "upload_limit" ? Math.max(hint ?? UPLOAD_LIMIT_WAIT_MS, 1) : undefined;
    await sleep(wait ?? backoffDelay(failures - 1, { random: opts.random, retryAfterMs: hint }), signal);
    offset = undefined;
  };

  for (;;) {
    throwIfAborted(signal);
    try {
      if (id === undefined) {
        const first = await readRange(source, 0, Math.min(total, chunk));
        const created = await http.create(total, opts.name, first);
        id = created.id;
        offset = created.offset;
        await opts.onCreated?.({ id, expiresAt: created.expiresAt });
        failures = 0;
        opts.onProgress?.({ sent: offset, total });
        if (offset === total && created.upload?.state === "stored") return created.upload;
        continue;
      }
      if (offset === undefined) {
        offset = await http.offset(id);
      }
      if (offset >= total) return await http.status(id);
      const end = Math.min(total, offset + chunk);
      const next = await http.patch(id, offset, await readRange(source, offset, end));
      if (next > offset) failures = 0;
      offset = next;
      opts.onProgress?.({ sent: offset, total });
    } catch (err) {
      if (err instanceof HubError && err.code === "not_found" && id !== undefined && !signal?.aborted) {
        // The upload expired or never existed (HEAD or PATCH): start again while the bytes are at
        // hand, counted as a failure.
        if (++failures >= maxTries) throw err;
        id = undefined;
        continue;
      }
      await failed(err);
    }
  }
}

/** `OPTIONS /v1/uploads`: the hub's largest file (`Tus-Max-Size`), to check files before sending. */
export async function uploadMaxSize(baseUrl: string, opts: { fetch?: HttpFetch } = {}): Promise<number> {
  const res = await fetchOf(opts.fetch)(trim(baseUrl) + "/v1/uploads", { method: "OPTIONS", headers: {} });
  if (res.status !== 204 && res.status !== 200) throw await errorOf(res);
  const max = Number(res.headers.get("tus-max-size"));
  if (!Number.isSafeInteger(max) || max <= 0) throw new HubError({ code: "internal", message: "no Tus-Max-Size in the answer" });
  return max;
}

/** `GET /v1/uploads/<id>`: an upload of the token's principal, `state` and checked result included. */
export function uploadStatus(baseUrl: string, token: string, id: Uuid, opts: { fetch?: HttpFetch; signal?: AbortSignal } = {}): Promise<Upload> {
  return new Http(baseUrl, token, opts.fetch, opts.signal).status(id);
}

/**
 * `DELETE /v1/uploads/<id>`: cancels an upload or removes a stored attachment on no message (when
 * the person deletes a waiting or failed message). `wrong_state` for one on a message.
 */
export async function deleteUpload(baseUrl: string, token: string, id: Uuid, opts: { fetch?: HttpFetch } = {}): Promise<void> {
  const res = await fetchOf(opts.fetch)(`${trim(baseUrl)}/v1/uploads/${encodeURIComponent(id)}`, {
    method: "DELETE",
    headers: tusHeaders(token),
  });
  if (res.status !== 204) throw await errorOf(res);
}

export interface AttachmentBytes {
  bytes: Uint8Array;
  /** `Content-Type`: the stored type (`text/plain; charset=utf-8` for text, `image/jpeg` for thumbnails). */
  contentType: string;
  /** 200, or 206 for a range. */
  status: number;
  /** `Content-Range` of a 206. */
  contentRange?: string;
}

/**
 * `GET /v1/attachments/<id>` (or its `/thumbnail`) with the token in `Authorization`: the bytes to
 * save or to show through a `blob:` URL (an `<img src>` cannot carry the token). `attachment` is an
 * id, an attachment of an event or an upload, or its `url`/`thumbnail` path. `not_found` means not allowed or
 * gone: show a placeholder and do not retry.
 */
export async function readAttachment(
  baseUrl: string,
  token: string,
  attachment: Uuid | string | { id: Uuid; url?: string },
  opts: { thumbnail?: boolean; range?: { start: number; end?: number }; fetch?: HttpFetch; signal?: AbortSignal } = {},
): Promise<AttachmentBytes> {
  const path =
    typeof attachment !== "string"
      ? attachment.url ?? `/v1/attachments/${encodeURIComponent(attachment.id)}`
      : attachment.startsWith("/")
        ? attachment
        : `/v1/attachments/${encodeURIComponent(attachment)}`;
  const url = trim(baseUrl) + (opts.thumbnail && !path.endsWith("/thumbnail") ? `${path}/thumbnail` : path);
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (opts.range) headers["range"] = `bytes=${opts.range.start}-${opts.range.end ?? ""}`;
  const res = await fetchOf(opts.fetch)(url, { method: "GET", headers, ...(opts.signal ? { signal: opts.signal } : {}) });
  if (res.status !== 200 && res.status !== 206) throw await errorOf(res);
  const range = res.headers.get("content-range");
  return {
    bytes: new Uint8Array(await res.arrayBuffer()),
    contentType: res.headers.get("content-type") ?? "application/octet-stream",
    status: res.status,
    ...(range ? { contentRange: range } : {}),
  };
}

// ---------------------------------------------------------------------------------------------

/** The tus requests of one upload. */
class Http {
  private readonly fetch: HttpFetch;
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
    fetch: HttpFetch | undefined,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.fetch = fetchOf(fetch);
  }

  private call(method: string, path: string, headers: Record<string, string>, body?: Uint8Array) {
    return this.fetch(trim(this.baseUrl) + path, {
      method,
      headers: { ...tusHeaders(this.token), ...headers },
      ...(body ? { body } : {}),
      ...(this.signal ? { signal: this.signal } : {}),
    });
  }

  async create(length: number, name: string | undefined, first: Uint8Array) {
    const headers: Record<string, string> = { "upload-length": String(length), "content-type": OFFSET_STREAM };
    if (name !== undefined) headers["upload-metadata"] = `filename ${base64(new TextEncoder().encode(name))}`;
    const res = await this.call("POST", "/v1/uploads", headers, first);
    if (res.status !== 201) throw await errorOf(res);
    const text = await res.text();
    const upload = text ? (JSON.parse(text) as { attachment?: Upload }).attachment : undefined;
    const location = res.headers.get("location");
    const id = upload?.id ?? location?.split("/").pop();
    if (!id) throw new HubError({ code: "internal", message: "the creation answered no upload id" });
    const expires = res.headers.get("upload-expires");
    return { id, offset: offsetOf(res), expiresAt: expires ? Date.parse(expires) : upload?.expires_at, upload };
  }

  async offset(id: Uuid): Promise<number> {
    const res = await this.call("HEAD", `/v1/uploads/${encodeURIComponent(id)}`, {});
    if (res.status !== 200) throw await errorOf(res);
    return offsetOf(res);
  }

  async patch(id: Uuid, offset: number, bytes: Uint8Array): Promise<number> {
    const res = await this.call("PATCH", `/v1/uploads/${encodeURIComponent(id)}`, { "upload-offset": String(offset), "content-type": OFFSET_STREAM }, bytes);
    if (res.status !== 204) throw await errorOf(res);
    return offsetOf(res);
  }

  async status(id: Uuid): Promise<Upload> {
    const res = await this.call("GET", `/v1/uploads/${encodeURIComponent(id)}`, {});
    if (res.status !== 200) throw await errorOf(res);
    return (JSON.parse(await res.text()) as { attachment: Upload }).attachment;
  }
}

function tusHeaders(token: string): Record<string, string> {
  return { "tus-resumable": TUS_VERSION, authorization: `Bearer ${token}` };
}

function offsetOf(res: { headers: { get(name: string): string | null } }): number {
  const offset = Number(res.headers.get("upload-offset"));
  if (!Number.isSafeInteger(offset) || offset < 0) throw new HubError({ code: "internal", message: "no Upload-Offset in the answer" });
  return offset;
}

/** Codes of answers without a body (`HEAD`), by status. */
const STATUS_CODES: Record<number, ErrorCode> = {
  400: "bad_request",
  401: "unauthorized",
  404: "not_found",
  409: "conflict",
  412: "precondition_failed",
  413: "too_large",
  415: "unsupported_media",
  429: "upload_limit",
  503: "unavailable",
};

async function errorOf(res: { status: number; text(): Promise<string> }): Promise<HubError> {
  let body: { error?: { code: ErrorCode; message: string; retry_after_ms?: number } } | undefined;
  try {
    const text = await res.text();
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // A proxy's page, or no body: the status tells.
  }
  if (body?.error?.code) return new HttpStatusError(res.status, body.error);
  return new HttpStatusError(res.status, { code: STATUS_CODES[res.status] ?? (res.status >= 500 ? "unavailable" : "internal"), message: `HTTP ${res.status}` });
}

/** A `HubError` that remembers the HTTP status, to tell a 5xx from a final refusal. */
class HttpStatusError extends HubError {
  constructor(
    readonly status: number,
    frame: { code: ErrorCode; message: string; retry_after_ms?: number },
  ) {
    super(frame);
  }
}

/** Network errors, 5xx, a stale offset, and the uploads-in-progress limit are worth another try. */
function retryable(err: unknown): boolean {
  if (err instanceof HttpStatusError) {
    if (err.status >= 500) return true;
    if (err.code === "conflict") return true;
    // The day's bytes come back only the next UTC day: not worth waiting for here.
    return err.code === "upload_limit" && (err.retryAfterMs ?? 0) <= 60_000;
  }
  if (err instanceof HubError) return false;
  // `fetch` rejects with a TypeError when the network fails; a body the hub cut short the same.
  return err instanceof Error && (err.name === "TypeError" || err.name === "FetchError");
}

function sizeOf(source: UploadSource): number {
  return source instanceof Uint8Array ? source.byteLength : source.size;
}

async function readRange(source: UploadSource, start: number, end: number): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source.subarray(start, end);
  return new Uint8Array(await source.slice(start, end).arrayBuffer());
}

function fetchOf(custom?: HttpFetch): HttpFetch {
  const f = custom ?? (globalThis as { fetch?: HttpFetch }).fetch;
  if (!f) throw new TypeError("no fetch: pass one in the options");
  return f;
}

function trim(baseUrl: string): string {
  return baseUrl.replace(/\/+$/, "");
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? abortError();
}

function abortError(): Error {
  const err = new Error("the upload was aborted");
  err.name = "AbortError";
  return err;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? abortError());
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason ?? abortError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Standard base64 with padding; `btoa` is missing on some React Native engines. */
function base64(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const [a, b, c] = [bytes[i]!, bytes[i + 1], bytes[i + 2]];
    const n = (a << 16) | ((b ?? 0) << 8) | (c ?? 0);
    out += BASE64[(n >> 18) & 63]! + BASE64[(n >> 12) & 63]!;
    out += b === undefined ? "=" : BASE64[(n >> 6) & 63]!;
    out += c === undefined ? "=" : BASE64[n & 63]!;
  }
  return out;
}
