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
