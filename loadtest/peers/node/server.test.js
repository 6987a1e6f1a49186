// The Node peer relays a message between two sockets and fans an announcement out, as the load
// harness drives it. Run with `node --test` in this folder (after `npm ci`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { start } from './server.js';

/** A JSON socket that queues every frame it receives, with a `next(type)` to wait for one. */
async function connect(base) {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/ws`, 'anapars.v1.json');
  const frames = [];
  const waiters = [];
  ws.on('message', (data) => {
    frames.push(JSON.parse(data));
    for (const w of waiters.splice(0)) w();
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  assert.equal(ws.protocol, 'anapars.v1.json');
  let nextId = 1;
  const next = async (pred) => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const i = frames.findIndex(pred);
      if (i >= 0) return frames.splice(i, 1)[0];
      assert.ok(Date.now() < deadline, 'timed out waiting for a frame');
      await new Promise((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  };
  const request = async (type, fields = {}) => {
    const id = nextId++;
    ws.send(JSON.stringify({ id, type, ...fields }));
    return next((f) => f.id === id);
  };
  return { ws, next, request };
}

async function post(base, path, body) {
  const r = await fetch(`${base}${path}`, { method: 'POST', body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

test('a message goes from the user to the agent once, in order, and announcements reach both', async (t) => {
  const peer = await start({ port: 0 });
  t.after(() => peer.close());
  const base = `http://127.0.0.1:${peer.port}`;

  assert.equal((await post(base, '/v1/auth/code', { phone: '+989120000000' })).status, 202);
  const verify = await post(base, '/v1/auth/verify', { phone: '+989120000000', code: '123456', device: { id: 'd' } });
  assert.equal(verify.status, 200);
  const login = await post(base, '/v1/agent/login', { email: 'a@x.test', password: 'anything' });
  assert.equal(login.status, 200);
  assert.ok(login.body.token.startsWith('agt_'));

  const user = await connect(base);
  const agent = await connect(base);
  const ok = await user.request('auth', { token: verify.body.token });
  assert.deepEqual([ok.type, ok.user_id], ['auth.ok', verify.body.user_id]);
  assert.equal((await agent.request('auth', { token: login.body.token })).type, 'auth.agent.ok');

  const opened = await user.request('ticket.open', { subject: 's', body: 'first', client_msg_id: 'c1' });
  assert.equal(opened.type, 'ticket.open.ok');
  const ticket = opened.ticket.id;
  assert.equal(opened.ticket.last_seq, 2);
  assert.equal((await agent.request('ticket.claim', { ticket_id: ticket })).type, 'ticket.update.ok');
  assert.equal((await user.request('ticket.subscribe', { ticket_id: ticket, after_seq: 0 })).type, 'ticket.subscribe.ok');
  const sub = await agent.request('ticket.subscribe', { ticket_id: ticket, after_seq: 1 });
  assert.equal(sub.ticket.last_seq, 3);
  // The replay came before the reply: seqs 2 (message) and 3 (claimed).
  for (const seq of [2, 3]) assert.equal((await agent.next((f) => f.type === 'ticket.event')).event.seq, seq);

  const sent = await user.request('ticket.send', { ticket_id: ticket, client_msg_id: 'u-1-5', body: 'hello' });
  assert.deepEqual([sent.type, sent.seq, sent.duplicate], ['ticket.send.ok', 4, false]);
  const got = await agent.next((f) => f.type === 'ticket.event');
  assert.deepEqual(
    [got.event.seq, got.event.kind, got.event.author.kind, got.event.body, got.event.client_msg_id],
    [4, 'message', 'user', 'hello', 'u-1-5'],
  );

  const announced = await fetch(`${base}/v1/admin/announcements`, {
    method: 'POST',
    headers: { authorization: 'Bearer any' },
    body: JSON.stringify({ text: 'maintenance tonight' }),
  });
  assert.equal(announced.status, 202);
  for (const s of [user, agent]) assert.equal((await s.next((f) => f.type === 'announcement')).text, 'maintenance tonight');
  assert.equal((await user.request('ping')).type, 'ping.ok');
  assert.match(await (await fetch(`${base}/metrics`)).text(), /^hub_connections 2$/m);
  user.ws.close();
  agent.ws.close();
});

test('an offer without the JSON subprotocol is refused', async (t) => {
  const peer = await start({ port: 0 });
  t.after(() => peer.close());
  const ws = new WebSocket(`ws://127.0.0.1:${peer.port}/v1/ws`, 'anapars.v1.msgpack');
  const error = await new Promise((resolve) => ws.once('error', resolve));
  assert.match(String(error.message), /400/);
});
