// Files the agent attaches to a reply, before it is sent: the composer's draft of uploads, and the
// two HTTP routes around them (protocol/PROTOCOL.md, "Attachments"). No DOM here: the rules (how
// many, how large, how many at once, when Send may go) live in `Draft`, and tests/e2e/uploads.test.mjs
// checks them.
//
// Each file is uploaded as soon as it is chosen, in one request (`POST /v1/attachments?name=`),
// with XMLHttpRequest for its upload progress. The hub checks the content (the type comes from the
// bytes) and answers the stored attachment; the message then names its id in `ticket.send`.
// Attachments are read with the agent's token in the `Authorization` header (never in a URL), so
// a browser cannot load them with a plain `<img src>`: `fetchBlob` fetches them for a blob: URL.

import { ConnectionLost, HubError } from './hub-client.js';
import { attachmentSummary } from './thread.js';

/** Files per message: the hub's `attachments_per_message` default. */
export const MAX_FILES = 10;
/** Largest file: the hub's `attachment_max_bytes` default (10 MiB). Larger ones are not sent at all. */
export const MAX_BYTES = 10 * 1024 * 1024;
/** Uploads running at once: the hub's `uploads_in_progress` default; the others wait their turn. */
export const PARALLEL = 4;

/** The routes an attachment's `url` and `thumbnail` may name: the token goes nowhere else. */
const ATTACHMENT_PATH = /^\/v1\/attachments\/[0-9a-f-]{36}(\/thumbnail)?$/;

/**
 * The files of one reply being written. Items, in the order chosen:
 * `{key, name, size, file, state, sent, attachment, error}` where `state` is `waiting` (its turn to
 * upload has not come), `uploading` (`sent` bytes so far), `stored` (`attachment` is the hub's) or
 * `failed` (`error`: the hub's code, or `too_large`, `too_many`, `empty_file` decided here).
 */
export class Draft {
  constructor() {
    this.items = [];
    this.nextKey = 1;
  }

  /** Adds a chosen file. One over the limits is shown as failed and never uploaded. */
  add(file) {
    const item = { key: this.nextKey++, name: file.name || '', size: file.size, file, state: 'waiting', sent: 0 };
    if (file.size > MAX_BYTES) Object.assign(item, { state: 'failed', error: 'too_large' });
    else if (file.size === 0) Object.assign(item, { state: 'failed', error: 'empty_file' });
    else if (this.counted() >= MAX_FILES) Object.assign(item, { state: 'failed', error: 'too_many' });
    this.items.push(item);
    return item;
  }

  /** Files that will go with the message (or may still): all but the failed. */
  counted() {
    return this.items.filter((i) => i.state !== 'failed').length;
  }

  /** Waiting items whose turn has come: at most `PARALLEL` uploads run at once. Marks them
   *  `uploading`; the caller starts them. */
  start() {
    const running = this.items.filter((i) => i.state === 'uploading').length;
    const next = this.items.filter((i) => i.state === 'waiting').slice(0, Math.max(0, PARALLEL - running));
    for (const i of next) i.state = 'uploading';
    return next;
  }

  find(key) {
    return this.items.find((i) => i.key === key) || null;
  }

  progress(key, sent) {
    const i = this.find(key);
    if (i && i.state === 'uploading') i.sent = Math.min(sent, i.size);
  }

  stored(key, attachment) {
    const i = this.find(key);
    if (!i || i.state !== 'uploading') return false;
    Object.assign(i, { state: 'stored', sent: i.size, attachment: attachmentSummary(attachment), file: null });
    return true;
  }

  failed(key, code) {
    const i = this.find(key);
    if (!i || i.state !== 'uploading') return false;
    Object.assign(i, { state: 'failed', error: code, file: null });
    return true;
  }

  /** Takes a file out of the reply; returns it (the caller stops its upload). */
  remove(key) {
    const i = this.find(key);
    if (i) this.items = this.items.filter((x) => x !== i);
    return i;
  }

  /** Whether uploads are still waiting or running: Send waits for them. */
  busy() {
    return this.items.some((i) => i.state === 'waiting' || i.state === 'uploading');
  }

  /** The stored attachments, for `ticket.send`. */
  attachments() {
    return this.items.filter((i) => i.state === 'stored').map((i) => i.attachment);
  }

  /** Whether a reply of `body` and these files can be sent: nothing still uploading, and some text
   *  or at least one stored file (the hub takes an empty body with attachments). */
  sendable(body) {
    return !this.busy() && (body.trim() !== '' || this.attachments().length > 0);
  }

  /** After sending: the stored files went with the message; the failed ones are dropped. */
  clear() {
    this.items = [];
  }

  /** A failed message back in the composer: its attachments are stored uploads again. */
  putBack(attachments) {
    for (const a of attachments) {
      if (this.items.some((i) => i.attachment && i.attachment.id === a.id)) continue;
      this.items.push({ key: this.nextKey++, name: a.name, size: a.size, file: null, state: 'stored', sent: a.size, attachment: a });
    }
  }
}

/**
 * Uploads one file in one request (`POST /v1/attachments?name=`). `onProgress(sentBytes)` follows
 * the body going out. Returns `{promise, abort}`: the promise resolves to the stored attachment or
 * rejects with a `HubError` (or `ConnectionLost`) whose code is the hub's (`unsupported_media`, `too_large`,
 * `bad_image`, `upload_limit`, ...), `disconnected` when the network failed, `aborted` after `abort()`.
 */
export function upload(file, { token, onProgress = () => {}, XHR = globalThis.XMLHttpRequest }) {
  const xhr = new XHR();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', `/v1/attachments?name=${encodeURIComponent(file.name || 'file')}`);
    xhr.setRequestHeader('authorization', `Bearer ${token}`);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      const body = parseJson(xhr.responseText);
      if (xhr.status === 201 && body && body.attachment && typeof body.attachment.id === 'string') {
        resolve(body.attachment);
        return;
      }
      reject(errorOf(xhr.status, body));
    };
    xhr.onerror = () => reject(new ConnectionLost('the upload did not reach the hub'));
    xhr.onabort = () => reject(new HubError({ code: 'aborted', message: 'the upload was stopped' }));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}

/** Forgets a stored upload the agent removed before sending (best effort: unattached uploads expire
 *  on their own). */
export async function discard(id, token, fetcher = globalThis.fetch) {
  try {
    await fetcher(`/v1/uploads/${encodeURIComponent(id)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0' },
      credentials: 'omit',
    });
  } catch {
    // Offline: it expires.
  }
}

/** An attachment's bytes (`url` or `thumbnail` of the hub's attachment map) as a Blob, read with
 *  the token in the header. Rejects with a `HubError` or `ConnectionLost`. */
export async function fetchBlob(path, token, fetcher = globalThis.fetch) {
  if (typeof path !== 'string' || !ATTACHMENT_PATH.test(path)) throw new HubError({ code: 'not_found', message: 'not an attachment' });
  let response;
  try {
    response = await fetcher(path, { headers: { authorization: `Bearer ${token}` }, credentials: 'omit', cache: 'no-store' });
  } catch {
    throw new ConnectionLost('the hub cannot be reached');
  }
  if (!response.ok) throw errorOf(response.status, await response.json().catch(() => null));
  return response.blob();
}

/** The hub's error body, or a code from the status when a proxy answered without one. */
function errorOf(status, body) {
  const e = body && body.error;
  if (e && typeof e.code === 'string') return new HubError(e);
  const byStatus = { 401: 'unauthorized', 404: 'not_found', 413: 'too_large', 415: 'unsupported_media', 429: 'upload_limit' };
  return status === 0 ? new ConnectionLost(`status ${status}`) : new HubError({ code: byStatus[status] || 'unavailable', message: `status ${status}` });
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
