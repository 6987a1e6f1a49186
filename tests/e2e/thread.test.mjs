// Unit tests of the console's conversation model (console/thread.js): what keeps a message from
// being shown twice or lost on screen. The client rules under it (cursors, resume, the outbox) are
// the SDK's, bundled as console/hub-client.js and tested in sdk/. Run with `node --test` in
// tests/e2e (CI does).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Thread, attachmentSummary, attachmentsOf } from '../../console/thread.js';
import { KeyValueOutboxStore, Outbox } from '../../console/hub-client.js';

const agent = { kind: 'agent', id: 'a-1' };
const user = { kind: 'user', id: 'u-1' };
const ev = (seq, extra = {}) => ({ ticket_id: 't', seq, kind: 'message', author: user, body: `m${seq}`, at: seq, ...extra });

const png = { id: '0190a1b2-0000-7000-8000-000000000001', state: 'stored', name: 'screen.png', length: 900, size: 812, kind: 'image', media_type: 'image/png', width: 4, height: 3, url: '/v1/attachments/x' };
const txt = { id: '0190a1b2-0000-7000-8000-000000000002', state: 'stored', name: 'log.txt', length: 20, size: 20, kind: 'file', media_type: 'text/plain', url: '/v1/attachments/y' };
const entry = (body, files = []) => ({ body, attachments: files.map((a) => a.id), meta: { attachments: files.map(attachmentSummary) } });

test('an event is kept once however often it arrives; the cursor is the highest seq', () => {
  const t = new Thread('t');
  assert.equal(t.push(ev(1)), true);
  assert.equal(t.push(ev(2)), true);
  assert.equal(t.push(ev(2)), false);
  assert.equal(t.push(ev(1)), false);
  assert.equal(t.cursor, 2);
  assert.deepEqual(t.ordered().map((e) => e.seq), [1, 2]);
});

test('a history page read backwards sets the cursor and the oldest seq; older pages fill in', () => {
  const t = new Thread('t');
  t.prepend([ev(51), ev(52), ev(53)], true);
  assert.equal(t.cursor, 53);
  assert.equal(t.oldest, 51);
  assert.equal(t.more, true);
  t.prepend([ev(49), ev(50), ev(51)], false);
  assert.equal(t.oldest, 49);
  assert.equal(t.cursor, 53, 'an older page does not move the cursor back');
  assert.deepEqual(t.ordered().map((e) => e.seq), [49, 50, 51, 52, 53]);
  assert.equal(t.push(ev(53)), false);
  assert.equal(t.push(ev(54)), true);
});

test('an acknowledged reply is shown as sent until its stored event replaces it', () => {
  const t = new Thread('t');
  t.push(ev(1));
  t.acknowledged('c-1', entry('hello', [png]), 2);
  assert.deepEqual([...t.sent.keys()], ['c-1']);
  assert.deepEqual(t.sent.get('c-1').attachments.map((a) => a.id), [png.id]);
  t.push(ev(2, { author: agent, client_msg_id: 'c-1', body: 'hello' }));
  assert.equal(t.sent.size, 0);
  assert.equal(t.ordered().filter((e) => e.body === 'hello').length, 1);
  // The event came before the acknowledgement: nothing is shown twice.
  t.push(ev(3, { author: agent, client_msg_id: 'c-2', body: 'again' }));
  t.acknowledged('c-2', entry('again'), 3);
  assert.equal(t.sent.size, 0);
});

test('a refused reply is taken back whole for editing, once', () => {
  const t = new Thread('t');
  t.refused('c-9', entry('text', [txt]), 'not_found');
  assert.equal(t.failed.get('c-9').code, 'not_found');
  const back = t.takeBack('c-9');
  assert.equal(back.body, 'text');
  assert.deepEqual(back.attachments.map((a) => a.id), [txt.id]);
  assert.equal(t.takeBack('c-9'), null);
});

test('attachments are read from an entry\'s meta, damaged or missing meta giving none', () => {
  assert.deepEqual(attachmentsOf(entry('', [png])), [{ id: png.id, name: 'screen.png', size: 812, kind: 'image', media_type: 'image/png' }]);
  assert.deepEqual(attachmentsOf({ body: 'x' }), []);
  assert.deepEqual(attachmentsOf({ meta: { attachments: [null, { id: 5 }, { id: txt.id }] } }).map((a) => a.id), [txt.id]);
  assert.deepEqual(attachmentsOf(null), []);
});

test('reset forgets what was loaded but keeps the replies being sent', () => {
  const t = new Thread('t');
  t.push(ev(1));
  t.acknowledged('c-1', entry('later'), 7);
  t.reset();
  assert.equal(t.cursor, 0);
  assert.equal(t.events.size, 0);
  assert.equal(t.sent.size, 1);
});

test('replies not yet acknowledged survive a reload of the tab with the same ids and attachments', async () => {
  // The tab's sessionStorage, as the console hands it to the SDK (session.js `tabStorage`).
  const storage = new Map();
  const tab = { getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => storage.set(k, v), removeItem: (k) => storage.delete(k) };
  const before = new Outbox(new KeyValueOutboxStore(tab, 'anapars.console.outbox'));
  const a = await before.send({ ticket_id: 't' }, 'with files', [png.id, txt.id], { attachments: [png, txt].map(attachmentSummary) });
  const b = await before.send({ ticket_id: 't' }, 'plain');
  const after = new Outbox(new KeyValueOutboxStore(tab, 'anapars.console.outbox'));
  await after.load();
  const list = after.list();
  assert.deepEqual(list.map((e) => e.client_msg_id), [a.client_msg_id, b.client_msg_id], 'same ids, same order');
  assert.deepEqual(list[0].attachments, [png.id, txt.id]);
  assert.deepEqual(attachmentsOf(list[0]).map((x) => x.name), ['screen.png', 'log.txt']);
  assert.equal('attachments' in list[1], false, 'a reply without files names none');
});
