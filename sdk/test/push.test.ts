import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createDecipheriv, createECDH, hkdfSync, randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { HubError } from "../src/errors.js";
import { requestCode, signIn } from "../src/http.js";
import { newClientMsgId } from "../src/outbox.js";
import { MemoryPushStateStore, PushRegistrar, registerPush, unregisterPush, vapidPublicKey, type PushRegistrationRequest } from "../src/push.js";
import { Hub, TEST_CODE, until } from "./hub.js";
import { connected, signInAgent, signInUser, type Peer } from "./support.js";

// http:// Web Push endpoints let the test be the push service; a short collapse window keeps it
// quick. Presence keeps its default grace (5 s): an app that just closed its socket is notified
// at once all the same.
const hub = new Hub({ HUB_WEBPUSH_ALLOW_HTTP: "true", HUB_PUSH_COLLAPSE_MS: "100" });
let agentPassword = "";

/** What the hub POSTed to the local push service. */
interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}
const received: Received[] = [];
let service: Server;
let servicePort = 0;

before(async () => {
  service = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(201).end();
    });
  });
  await new Promise<void>((r) => service.listen(0, "127.0.0.1", r));
  servicePort = (service.address() as { port: number }).port;
  await hub.start();
  agentPassword = hub.addAgent("leila@anapars.test", "Leila");
});
after(async () => {
  await hub.stop();
  // The hub's HTTP client keeps its connections open: close them, or close() waits for ever.
  service.closeAllConnections();
  await new Promise((r) => service.close(r));
});

/** A browser's push subscription: a P-256 key pair and an auth secret, as `toJSON()` gives them. */
function subscription(path: string) {
  const ecdh = createECDH("prime256v1");
  const publicKey = ecdh.generateKeys();
  const auth = randomBytes(16);
  const registration: PushRegistrationRequest = {
    provider: "webpush",
    endpoint: `http://127.0.0.1:${servicePort}${path}`,
    keys: { p256dh: publicKey.toString("base64url"), auth: auth.toString("base64url") },
  };
  /** RFC 8291 (aes128gcm, one record): what the browser does with a push message. */
  const decrypt = (body: Buffer): unknown => {
    const salt = body.subarray(0, 16);
    const idlen = body[20]!;
    const serverKey = body.subarray(21, 21 + idlen);
    const ciphertext = body.subarray(21 + idlen);
    const secret = ecdh.computeSecret(serverKey);
    const info = Buffer.concat([Buffer.from("WebPush: info\0"), publicKey, serverKey]);
    const ikm = Buffer.from(hkdfSync("sha256", secret, auth, info, 32));
    const cek = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16));
    const nonce = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: nonce\0"), 12));
    const decipher = createDecipheriv("aes-128-gcm", cek, nonce);
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
    const padded = Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - 16)), decipher.final()]);
    let end = padded.length - 1;
    while (end > 0 && padded[end] === 0) end--;
    assert.equal(padded[end], 2, "the last record's delimiter");
    return JSON.parse(padded.subarray(0, end).toString("utf8"));
  };
  return { registration, decrypt };
}

/** Counts the `push.register` frames a client sends. */
function countRegisters(peer: Peer): { n: number } {
  const count = { n: 0 };
  const request = peer.client.request.bind(peer.client);
  peer.client.request = ((r: Parameters<typeof request>[0], t?: number) => {
    if (r.type === "push.register") count.n += 1;
    return request(r, t);
  }) as typeof peer.client.request;
  return count;
}

test("PushRegistrar registers once per session, again only on a change, and the hub pushes to it while the app is closed", async () => {
  const user = await signInUser(hub, "json");
  const agent = await signInAgent(hub, "leila@anapars.test", agentPassword, "json");
  const registers = countRegisters(user);
  const store = new MemoryPushStateStore();
  const registrar = new PushRegistrar(user.client, { store });
  const sub = subscription("/push/one");

  // Set before connecting: sent after auth.ok.
  assert.equal(await registrar.set(sub.registration), undefined);
  assert.equal(registers.n, 0);
  await Promise.all([connected(user), connected(agent)]);
  await until(() => registrar.registration !== undefined, 5000, "the registration");
  assert.deepEqual({ ...registrar.registration, updated_at: 0 }, { provider: "webpush", preview: false, language: "fa", updated_at: 0 });
  assert.equal(registers.n, 1);

  // The same registration again, and a reconnect of the same session: nothing is sent.
  await registrar.set({ ...sub.registration, preview: false, language: "fa" });
  user.client.disconnect();
  await connected(user);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(registers.n, 1, "no push.register on a reconnect");

  // A change of the person's choices registers again.
  const changed = await registrar.set({ ...sub.registration, preview: true, language: "en" });
  assert.equal(registers.n, 2);
  assert.equal(changed?.preview, true);
  assert.equal(changed?.language, "en");

  const open = await user.client.openTicket("Card charged twice", "Please look");
  const opened = await user.client.outbox.settled(open.client_msg_id);
  const ticketId = (opened as { ticket_id: string }).ticket_id;
  await agent.client.request({ type: "ticket.claim", ticket_id: ticketId });
  // With a live socket the user gets the events, not a notification.
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(received.filter((r) => r.path === "/push/one").length, 0, "no push while the app holds a socket");

  // The hub counts a person online until `presence_grace_ms` after their last socket closed.
  user.client.disconnect();
  await new Promise((r) => setTimeout(r, 600));
  await agent.client.send(ticketId, "We refunded the second charge");
  await until(() => received.some((r) => r.path === "/push/one"), 15_000, "a notification at the push service");
  const push = received.find((r) => r.path === "/push/one")!;
  assert.equal(push.headers["content-encoding"], "aes128gcm");
  assert.equal(push.headers["topic"], ticketId.replaceAll("-", ""));
  assert.equal(push.headers["ttl"], "86400");
  assert.match(String(push.headers["authorization"]), /^vapid t=.+, k=.+$/);
  const payload = sub.decrypt(push.body) as { ticket_id: string; kind: string; title: string; body: string; badge: number };
  assert.equal(payload.ticket_id, ticketId);
  assert.equal(payload.kind, "message");
  assert.equal(payload.title, "Anapars Support");
  assert.equal(payload.body, "We refunded the second charge", "preview on: the message's beginning");
  assert.equal(payload.badge, 1);

  // Signing out ends the session and its registration: a new session registers again.
  await connected(user);
  await user.client.signOut();
  await until(() => store.load() === null, 2000, "the registration forgotten with the session");
  const phone = hub.phone();
  await requestCode(hub.url, phone);
  const session = await signIn(hub.url, phone, TEST_CODE, { id: newClientMsgId() });
  await user.client.useSession({ token: session.token, expiresAt: session.expires_at, receivedAt: Date.now() });
  await until(() => registers.n === 3, 10_000, "a registration for the new session");
  registrar.dispose();
  user.client.disconnect();
  agent.client.disconnect();
});

test("a target the hub refuses is bad_request, and is not sent again on every connect", async () => {
  const user = await signInUser(hub, "msgpack");
  const registers = countRegisters(user);
  const registrar = new PushRegistrar(user.client);
  await connected(user);
  const sub = subscription("/push/two");
  const broken = { ...sub.registration, keys: { ...sub.registration.keys, auth: "c2hvcnQ" } } as PushRegistrationRequest;
  await assert.rejects(registrar.set(broken), (e: unknown) => e instanceof HubError && e.code === "bad_request" && /keys\.auth/.test(e.message));
  user.client.disconnect();
  await connected(user);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(registers.n, 1);
  await assert.rejects(registrar.set({ provider: "fcm", token: "abc" }), (e: unknown) => e instanceof HubError && e.code === "bad_request" && /fcm/.test(e.message));
  // Unregistering sends push.unregister once.
  const ok = await registrar.set(sub.registration);
  assert.equal(ok?.provider, "webpush");
  assert.equal(await registrar.set(null), undefined);
  assert.equal(registrar.registration, undefined);
  registrar.dispose();
  user.client.disconnect();
});

test("over HTTP: the VAPID key, PUT /v1/push and DELETE /v1/push", async () => {
  const key = Buffer.from(await vapidPublicKey(hub.url), "base64url");
  assert.equal(key.length, 65);
  assert.equal(key[0], 4, "an uncompressed P-256 point");
  const user = await signInUser(hub, "json");
  const sub = subscription("/push/three");
  const registration = await registerPush(hub.url, user.token, { ...sub.registration, language: "en" });
  assert.equal(registration.provider, "webpush");
  assert.equal(registration.language, "en");
  assert.ok(registration.updated_at > 0);
  await assert.rejects(
    registerPush(hub.url, user.token, { provider: "apns", token: "abcd" }),
    (e: unknown) => e instanceof HubError && e.code === "bad_request" && /apns/.test(e.message),
  );
  await unregisterPush(hub.url, user.token);
  await assert.rejects(registerPush(hub.url, "y".repeat(43), sub.registration), (e: unknown) => e instanceof HubError && e.code === "unauthorized");
});
