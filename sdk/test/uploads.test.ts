import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { HubError } from "../src/errors.js";
import { deleteUpload, readAttachment, uploadAttachment, uploadMaxSize, uploadStatus, type HttpFetch, type Upload, type UploadProgress } from "../src/uploads.js";
import type { TicketEvent } from "../src/types.js";
import { Hub, until } from "./hub.js";
import { connected, signInAgent, signInUser, type Peer } from "./support.js";

/** Small enough that an over-limit file is cheap, large enough for several 32 KiB pieces. */
const MAX_BYTES = 256 * 1024;
const PIECE = 32 * 1024;

const hub = new Hub({ HUB_ATTACHMENT_MAX_BYTES: String(MAX_BYTES) });


/** Plain text the hub accepts, with Persian letters so that pieces split multi-byte characters. */
function textFile(bytes: number): Uint8Array<ArrayBuffer> {
  const line = new TextEncoder().encode("شماره پیگیری ۱۲۳۴۵ - support log line, nothing to see\n");
  const out = new Uint8Array(bytes).fill(0x2e);
  // Whole lines, then dots and a line break: never half a character.
  const lines = Math.floor((bytes - 1) / line.length);
  for (let i = 0; i < lines; i++) out.set(line, i * line.length);
  out[bytes - 1] = 0x0a;
  return out;
}

/** The global fetch, with a hook that sees every request first. */
function spyFetch(hook: (method: string, url: string, n: number) => "pass" | "fail" | "lose-reply" | number): HttpFetch & { calls: string[] } {
  const calls: string[] = [];
  const f = (async (url, init) => {
    calls.push(init.method);
    const action = hook(init.method, url, calls.length);
    if (action === "fail") throw new TypeError("fetch failed");
    if (typeof action === "number") {
      return { status: action, headers: new Headers(), text: async () => "", arrayBuffer: async () => new ArrayBuffer(0) };
    }
    const res = await fetch(url, init as RequestInit);
    if (action === "lose-reply") {
      await res.arrayBuffer();
      throw new TypeError("fetch failed");
    }
    return res;
  }) as HttpFetch as HttpFetch & { calls: string[] };
  f.calls = calls;
  return f;
}

let user: Peer;
let agent: Peer;
let ticketId = "";

before(async () => {
  await hub.start();
  const agentPassword = hub.addAgent("nima@anapars.test", "Nima");
  user = await signInUser(hub, "json");
  agent = await signInAgent(hub, "nima@anapars.test", agentPassword, "json");
  await Promise.all([connected(user), connected(agent)]);
  const open = await user.client.openTicket("A receipt", "Here it comes");
  const opened = await user.client.outbox.settled(open.client_msg_id);
  assert.equal(opened.state, "sent");
  ticketId = (opened as { ticket_id: string }).ticket_id;
  await agent.client.request({ type: "ticket.claim", ticket_id: ticketId });
  agent.client.follow(ticketId, 0);
});
after(async () => {
  user?.client.disconnect();
  agent?.client.disconnect();
  await hub.stop();
});

test("a file goes up in pieces, is aborted mid-way, resumes from the hub's offset, and reaches the agent byte for byte", async () => {
  const file = textFile(200 * 1024 + 123);
  const progress: UploadProgress[] = [];
  const created: string[] = [];
  const abort = new AbortController();
  await assert.rejects(
    uploadAttachment(hub.url, user.token, file, {
      name: "رسید/../receipt.txt",
      chunkSize: PIECE,
      signal: abort.signal,
      onCreated: (c) => {
        created.push(c.id);
        assert.ok(c.expiresAt && c.expiresAt > Date.now(), "Upload-Expires is read");
      },
      onProgress: (p) => {
        progress.push(p);
        if (p.sent >= 3 * PIECE) abort.abort();
      },
    }),
    (e: unknown) => e instanceof Error && e.name === "AbortError",
  );
  assert.equal(created.length, 1);
  assert.deepEqual(progress.map((p) => p.sent), [PIECE, 2 * PIECE, 3 * PIECE]);
  const id = created[0]!;
  const halfway = await uploadStatus(hub.url, user.token, id);
  assert.equal(halfway.state, "uploading");
  assert.equal(halfway.received, 3 * PIECE);
  assert.equal(halfway.length, file.length);

  const resumed: number[] = [];
  const spy = spyFetch(() => "pass");
  const upload = await uploadAttachment(hub.url, user.token, file, {
    uploadId: id,
    chunkSize: PIECE,
    fetch: spy,
    onCreated: () => assert.fail("a resumed upload is not created again"),
    onProgress: (p) => resumed.push(p.sent),
  });
  assert.equal(spy.calls[0], "HEAD", "the hub is asked for its offset first");
  assert.equal(resumed[0], 4 * PIECE, "the bytes before the hub's offset are not sent again");
  assert.equal(resumed.at(-1), file.length);
  assert.equal(spy.calls.filter((m) => m === "PATCH").length, Math.ceil(file.length / PIECE) - 3);
  assert.equal(upload.id, id);
  assert.equal(upload.state, "stored");
  assert.equal(upload.kind, "file");
  assert.equal(upload.media_type, "text/plain");
  assert.equal(upload.size, file.length);
  assert.equal(upload.name, "receipt.txt", "the hub keeps the last path segment");
  assert.equal(upload.url, `/v1/attachments/${id}`);

  const entry = await user.client.send(ticketId, "", { attachments: [upload.id] });
  const settled = await user.client.outbox.settled(entry.client_msg_id);
  assert.equal(settled.state, "sent");
  let seen: TicketEvent | undefined;
  await until(() => (seen = agent.events.get(ticketId)?.find((e) => e.client_msg_id === entry.client_msg_id)) !== undefined, 10_000, "the agent's event");
  assert.equal(seen!.kind, "message");
  assert.equal(seen!.attachments?.length, 1);
  const attachment = seen!.attachments![0]!;
  assert.deepEqual(
    { id: attachment.id, kind: attachment.kind, media_type: attachment.media_type, size: attachment.size, name: attachment.name, url: attachment.url },
    { id, kind: "file", media_type: "text/plain", size: file.length, name: "receipt.txt", url: `/v1/attachments/${id}` },
  );

  const read = await readAttachment(hub.url, agent.token, attachment);
  assert.equal(read.status, 200);
  assert.equal(read.contentType, "text/plain; charset=utf-8");
  assert.deepEqual(read.bytes, file, "the agent reads back exactly the bytes uploaded");
  const part = await readAttachment(hub.url, user.token, id, { range: { start: 10, end: 19 } });
  assert.equal(part.status, 206);
  assert.deepEqual(part.bytes, file.subarray(10, 20));
  assert.equal((await uploadStatus(hub.url, user.token, id)).state, "attached");
});

test("network errors and 5xx mid-upload are retried from the offset the hub answers to HEAD", async () => {
  const file = textFile(5 * PIECE + 7);
  let patches = 0;
  const spy = spyFetch((method) => {
    if (method !== "PATCH") return "pass";
    patches += 1;
    // The hub stores the second piece but the reply is lost; the third try meets a 503; the fourth
    // a dead network.
    if (patches === 2) return "lose-reply";
    if (patches === 3) return 503;
    if (patches === 4) return "fail";
    return "pass";
  });
  const upload = await uploadAttachment(hub.url, user.token, file, { chunkSize: PIECE, fetch: spy, random: () => 0, name: "log.txt" });
  assert.equal(upload.state, "stored");
  assert.equal(upload.size, file.length);
  // POST, PATCH, PATCH (lost), HEAD, PATCH (503), HEAD, PATCH (fails), HEAD, then the rest.
  assert.deepEqual(spy.calls.slice(0, 8), ["POST", "PATCH", "PATCH", "HEAD", "PATCH", "HEAD", "PATCH", "HEAD"]);
  assert.equal(spy.calls.filter((m) => m === "POST").length, 1);
  await deleteUpload(hub.url, user.token, upload.id);
  await assert.rejects(uploadStatus(hub.url, user.token, upload.id), (e: unknown) => e instanceof HubError && e.code === "not_found");
});

test("retries are bounded: a hub that keeps failing gives up with its error", async () => {
  const spy = spyFetch((method) => (method === "PATCH" ? 503 : "pass"));
  let id = "";
  await assert.rejects(
    uploadAttachment(hub.url, user.token, textFile(3 * PIECE), { chunkSize: PIECE, fetch: spy, random: () => 0, maxTries: 3, onCreated: (c) => void (id = c.id) }),
    (e: unknown) => e instanceof HubError && e.code === "unavailable",
  );
  assert.equal(spy.calls.filter((m) => m === "PATCH").length, 3);
  // Cancelled, so it does not count towards the uploads in progress.
  await deleteUpload(hub.url, user.token, id);
});

test("a file over attachment_max_bytes is too_large: from the hub, or before any byte with Tus-Max-Size", async () => {
  const max = await uploadMaxSize(hub.url);
  assert.equal(max, MAX_BYTES);
  const big = textFile(MAX_BYTES + 1);
  await assert.rejects(uploadAttachment(hub.url, user.token, big, { chunkSize: PIECE }), (e: unknown) => e instanceof HubError && e.code === "too_large");
  const spy = spyFetch(() => "pass");
  await assert.rejects(uploadAttachment(hub.url, user.token, big, { maxBytes: max, fetch: spy }), (e: unknown) => e instanceof HubError && e.code === "too_large");
  assert.equal(spy.calls.length, 0);
});

test("refusals come back as HubError with the hub's code", async () => {
  // HTML is never accepted: the upload no longer exists after the last byte.
  const page = new TextEncoder().encode("<!DOCTYPE html><html><body>hi</body></html>\n");
  await assert.rejects(uploadAttachment(hub.url, user.token, page, { name: "a.txt" }), (e: unknown) => e instanceof HubError && e.code === "unsupported_media");
  await assert.rejects(uploadAttachment(hub.url, "x".repeat(43), textFile(100)), (e: unknown) => e instanceof HubError && e.code === "unauthorized");
  // Someone else's attachment reads as not found.
  const mine: Upload = await uploadAttachment(hub.url, user.token, textFile(100), { name: "mine.txt" });
  await assert.rejects(readAttachment(hub.url, agent.token, mine.id), (e: unknown) => e instanceof HubError && e.code === "not_found");
  // A Blob is read piece by piece as well as a Uint8Array.
  const blob = new Blob([textFile(2 * PIECE + 5)]);
  const fromBlob = await uploadAttachment(hub.url, user.token, blob, { chunkSize: PIECE, name: "blob.txt" });
  assert.equal(fromBlob.size, blob.size);
  assert.deepEqual((await readAttachment(hub.url, user.token, fromBlob)).bytes, new Uint8Array(await blob.arrayBuffer()));
  await deleteUpload(hub.url, user.token, mine.id);
  await deleteUpload(hub.url, user.token, fromBlob.id);
});
