// Unit tests of the canned replies picker's rules (console/canned.js): when `/` opens it, and
// which replies a filter finds. Run with `node --test` in tests/e2e (CI does).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { filterReplies, slashQuery } from '../../console/canned.js';

test('a slash opens the list at the start of the text or after white space only', () => {
  assert.deepEqual(slashQuery('/', 1), { start: 0, query: '' });
  assert.deepEqual(slashQuery('/ref', 4), { start: 0, query: 'ref' });
  assert.deepEqual(slashQuery('Hi. /refund card', 16), { start: 4, query: 'refund card' });
  assert.deepEqual(slashQuery('line one\n/باز', 13), { start: 9, query: 'باز' });
  assert.equal(slashQuery('and/or', 6), null, 'a slash inside a word is a slash');
  assert.equal(slashQuery('1/2', 3), null);
  assert.equal(slashQuery('/ref', 0), null, 'the caret before the slash');
  assert.equal(slashQuery('/ ref', 5), null, 'a space right after the slash closes it');
  assert.equal(slashQuery('/ref\nmore', 9), null, 'a line break ends it');
  assert.equal(slashQuery(`/${'x'.repeat(41)}`, 42), null, 'too long to be a filter');
  assert.equal(slashQuery('no slash', 8), null);
});

const replies = [
  { id: '1', title: 'بازپرداخت', body: 'مبلغ تا ۷۲ ساعت دیگر به کارت شما برمی‌گردد.' },
  { id: '2', title: 'Refund', body: 'Your refund is on its way: allow 3 working days.' },
  { id: '3', title: 'Greeting', body: 'Hello, how can I help with your refund?' },
];

test('a filter finds titles and texts, titles that start with it first', () => {
  assert.deepEqual(filterReplies(replies, '').map((r) => r.id), ['1', '2', '3']);
  assert.deepEqual(filterReplies(replies, 'ref').map((r) => r.id), ['2', '3']);
  assert.deepEqual(filterReplies(replies, 'working').map((r) => r.id), ['2']);
  assert.deepEqual(filterReplies(replies, 'help refund').map((r) => r.id), ['3'], 'every word must match');
  assert.deepEqual(filterReplies(replies, 'nothing').map((r) => r.id), []);
});

test('Persian is found however it was typed: Arabic letters, either digits', () => {
  assert.deepEqual(filterReplies(replies, 'ديگر').map((r) => r.id), ['1'], 'Arabic yeh');
  assert.deepEqual(filterReplies(replies, '72').map((r) => r.id), ['1'], 'ASCII digits');
  assert.deepEqual(filterReplies(replies, '٧٢').map((r) => r.id), ['1'], 'Arabic-Indic digits');
  assert.deepEqual(filterReplies(replies, 'باز').map((r) => r.id), ['1']);
});
