// Unit tests of the console's conversation model (console/thread.js): the rules that keep a message
// from being shown twice or lost. Run with `node --test` in tests/e2e (CI does).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Thread, newClientMsgId } from '../../console/thread.js';

const agent = { kind: 'agent', id: 'a-1' };
const user = { kind: 'user', id: 'u-1' };
const ev = (seq, extra = {}) => ({ ticket_id: 't', seq, kind: 'message', author: user, body: `m${seq}`, at: seq, ...extra });

test('events at or below the cursor are copies and are dropped', () => {
  const t = new Thread('t');
  assert.equal(t.push(ev(1)), true);
  assert.equal(t.push(ev(2)), true);
  assert.equal(t.push(ev(2)), false);
  assert.equal(t.push(ev(1)), false);
  assert.equal(t.cursor, 2);
  assert.deepEqual(t.ordered().map((e) => e.seq), [1, 2]);
});

test('an event beyond a gap is refused, so the caller resubscribes from the cursor', () => {
  const t = new Thread('t');
  t.push(ev(1));
  assert.equal(t.push(ev(3)), false);
  assert.equal(t.cursor, 1);
  assert.equal(t.push(ev(2)), true);
  assert.equal(t.push(ev(3)), true);
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

test('the stored copy of a message replaces the pending one, matched by author and client_msg_id', () => {
  const t = new Thread('t');
  t.push(ev(1));
  const id = t.queue('hello', agent);
  assert.equal(t.unsent().length, 1);
  // The user's message with the same client_msg_id is someone else's: it does not match.
  t.push(ev(2, { client_msg_id: id }));
  assert.equal(t.outbox.size, 1);
  t.push(ev(3, { author: agent, client_msg_id: id, body: 'hello' }));
  assert.equal(t.outbox.size, 0);
  assert.equal(t.ordered().filter((e) => e.body === 'hello').length, 1);
});

test('reset forgets what was loaded but keeps the messages being sent', () => {
  const t = new Thread('t');
  t.push(ev(1));
  t.queue('later', agent);
  t.reset();
  assert.equal(t.cursor, 0);
  assert.equal(t.events.size, 0);
  assert.equal(t.outbox.size, 1);
});

test('client_msg_ids are fresh and within the 64-character limit', () => {
  const ids = new Set(Array.from({ length: 1000 }, newClientMsgId));
  assert.equal(ids.size, 1000);
  for (const id of ids) assert.ok(id.length <= 64);
});

// Attachments: a message's files are stored uploads named by id; every (re)send names the same ones.
const png = { id: '0190a1b2-0000-7000-8000-000000000001', state: 'stored', name: 'screen.png', length: 900, size: 812, kind: 'image', media_type: 'image/png', width: 4, height: 3, url: '/v1/attachments/x' };
const txt = { id: '0190a1b2-0000-7000-8000-000000000002', state: 'stored', name: 'log.txt', length: 20, size: 20, kind: 'file', media_type: 'text/plain', url: '/v1/attachments/y' };

test('a message with attachments is sent with their ids, and the same ids on every resend', () => {
  const t = new Thread('t');
  const id = t.queue('see the log', agent, [png, txt]);
  const first = t.sendFrame(id);
  assert.deepEqual(first, {
    type: 'ticket.send',
    ticket_id: 't',
    client_msg_id: id,
    body: 'see the log',
    attachments: [png.id, txt.id],
  });
  // A reconnect: the entry is still pending and goes out unchanged.
  assert.deepEqual(t.unsent().map(([k]) => k), [id]);
  assert.deepEqual(t.sendFrame(id), first);
});

test('a message without attachments names none; files alone go with an empty body', () => {
  const t = new Thread('t');
  const plain = t.queue('hello', agent);
  assert.equal('attachments' in t.sendFrame(plain), false);
  const files = t.queue('  \n ', agent, [txt]);
  assert.equal(t.sendFrame(files).body, '', 'white space alone is no text beside files');
  assert.deepEqual(t.sendFrame(files).attachments, [txt.id]);
  assert.equal(t.sendFrame('c-unknown'), null);
});

test('the outbox keeps only a summary of each attachment, enough to show and name it', () => {
  const t = new Thread('t');
  const id = t.queue('', agent, [png]);
  assert.deepEqual(t.outbox.get(id).attachments, [{ id: png.id, name: 'screen.png', size: 812, kind: 'image', media_type: 'image/png' }]);
});

test('pending messages survive a reload with their attachments, and resend the same ids', () => {
  const t = new Thread('t');
  const id = t.queue('with files', agent, [png, txt]);
  const sent = t.queue('already stored', agent);
  Object.assign(t.outbox.get(sent), { state: 'sent', seq: 9 });
  // What the tab keeps in sessionStorage is plain JSON.
  const kept = JSON.parse(JSON.stringify(t.stored()));
  assert.deepEqual(kept.map((m) => m.id), [id], 'only messages still to send are kept');
  const again = new Thread('t');
  again.restore(kept);
  assert.deepEqual(again.sendFrame(id), t.sendFrame(id));
  // Entries kept before messages had attachments, and damaged ones, are read safely.
  const old = new Thread('t');
  old.restore([{ id: 'c-1', body: 'old', author: agent }, null, { id: 5 }, { id: 'c-2', body: 'x', attachments: [null, { id: png.id }] }]);
  assert.deepEqual([...old.outbox.keys()], ['c-1', 'c-2']);
  assert.equal('attachments' in old.sendFrame('c-1'), false);
  assert.deepEqual(old.sendFrame('c-2').attachments, [png.id]);
});

test('the stored copy of a message with attachments replaces the pending one', () => {
  const t = new Thread('t');
  t.push(ev(1));
  const id = t.queue('', agent, [png]);
  t.push(ev(2, { author: agent, client_msg_id: id, body: '', attachments: [png] }));
  assert.equal(t.outbox.size, 0);
});

test('a failed message is taken back whole for editing: text and attachments', () => {
  const t = new Thread('t');
  const id = t.queue('text', agent, [txt]);
  assert.equal(t.takeBack(id), null, 'a message still being sent is not taken back');
  Object.assign(t.outbox.get(id), { state: 'failed', errorCode: 'not_found' });
  const back = t.takeBack(id);
  assert.equal(back.body, 'text');
  assert.deepEqual(back.attachments.map((a) => a.id), [txt.id]);
  assert.equal(t.outbox.size, 0);
});
