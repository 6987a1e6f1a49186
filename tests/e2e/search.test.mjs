// Unit tests of the console's search (console/search.js): the request sent, snippets as text parts
// safe for the DOM, pages merged with each match once, phone numbers recognised in the forms people
// type them. Run with `node --test` in tests/e2e (CI does).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_QUERY,
  SEARCH_PAGE,
  SearchResults,
  isPhoneRefusal,
  looksLikePhone,
  searchFrame,
  searchKey,
  snippetParts,
} from '../../console/search.js';

const ticket = (id, extra = {}) => ({ id, subject: `s-${id}`, status: 'open', last_seq: 3, ...extra });
const match = (id, seq) => ({ ticket: ticket(id), seq, at: 1000 + seq, snippet: [{ text: 'x', match: true }] });

test('the request: the query as typed (Persian digits and Arabic letters too), filters only when chosen', () => {
  assert.deepEqual(searchFrame('  كارت ۱۲  '), { type: 'ticket.search', query: 'كارت ۱۲', offset: 0, limit: SEARCH_PAGE });
  assert.deepEqual(searchFrame('card', { status: 'resolved', labelId: 'l1' }, 40), {
    type: 'ticket.search',
    query: 'card',
    offset: 40,
    limit: SEARCH_PAGE,
    status: 'resolved',
    label_id: 'l1',
  });
  assert.deepEqual(searchFrame('card', { status: '', labelId: '' }), { type: 'ticket.search', query: 'card', offset: 0, limit: SEARCH_PAGE });
  assert.equal(searchFrame('   '), null);
  assert.equal(searchFrame(''), null);
  assert.equal(searchFrame('ک'.repeat(MAX_QUERY + 1)), null);
  assert.ok(searchFrame('ک'.repeat(MAX_QUERY)));
});

test('the same search at another offset has the same key; another filter has another', () => {
  const a = searchFrame('card', { status: 'open' }, 0);
  const b = searchFrame('card', { status: 'open' }, 20);
  assert.equal(searchKey(a), searchKey({ ...b, id: 7 }));
  assert.notEqual(searchKey(a), searchKey(searchFrame('card', { status: 'resolved' })));
  assert.notEqual(searchKey(a), searchKey(searchFrame('cards', { status: 'open' })));
});

test('snippets become text parts: kept as written, markup stays text, junk dropped', () => {
  const parts = snippetParts([
    { text: '…', match: false },
    { text: 'سلام، ', match: false },
    { text: 'کارتم', match: true },
    { text: '', match: true },
    { text: ' <b>دو</b> بار', match: false },
    { text: ' شارژ', match: false },
    { text: 42, match: true },
    null,
    { text: 'x', match: 'yes' },
  ]);
  assert.deepEqual(parts, [
    { text: '…سلام، ', match: false },
    { text: 'کارتم', match: true },
    { text: ' <b>دو</b> بار شارژx', match: false },
  ]);
  assert.deepEqual(snippetParts(undefined), []);
  assert.deepEqual(snippetParts('text'), []);
});

test('pages merge in the hub’s order, each match once; the next offset counts what the hub gave', () => {
  const r = new SearchResults('k');
  assert.ok(r.add(0, [match('t1', 2), match('t2', 1)], true));
  assert.equal(r.offset, 2);
  assert.ok(r.more);
  // The index moved meanwhile: the next page repeats a match.
  assert.ok(r.add(2, [match('t2', 1), match('t3', 5)], false));
  assert.deepEqual(r.results.map((x) => `${x.ticket.id}:${x.seq}`), ['t1:2', 't2:1', 't3:5']);
  assert.equal(r.offset, 4);
  assert.equal(r.more, false);
});

test('customers found by name head the first page beside their subject matches and move no offset', () => {
  const r = new SearchResults('k');
  const byName = { ...match('t1', 1), matched: 'customer_name' };
  assert.ok(r.add(0, [byName, { ...match('t1', 1), matched: 'text' }, match('t2', 3)], true));
  assert.equal(r.results.length, 3, 'the name and the subject of one ticket are two matches');
  assert.equal(r.offset, 2, 'the hub pages text matches only');
  assert.ok(r.add(2, [match('t3', 4)], false));
  assert.deepEqual(r.results.map((x) => x.ticket.id), ['t1', 't1', 't2', 't3']);
});

test('a late page for another offset is not taken; an empty page ends the search', () => {
  const r = new SearchResults('k');
  assert.equal(r.add(20, [match('t1', 2)], true), false);
  assert.deepEqual(r.results, []);
  r.add(0, [match('t1', 2)], true);
  assert.equal(r.add(0, [match('t9', 2)], true), false, 'the first page again, late');
  r.add(1, [], true);
  assert.equal(r.more, false);
});

test('results follow the tickets as they are now, and lose deleted ones', () => {
  const r = new SearchResults('k');
  r.add(0, [match('t1', 2), match('t1', 4), match('t2', 1)], false);
  r.updateTicket(ticket('t1', { status: 'resolved' }));
  assert.deepEqual(r.results.filter((x) => x.ticket.id === 't1').map((x) => x.ticket.status), ['resolved', 'resolved']);
  r.dropTicket('t1');
  assert.deepEqual(r.results.map((x) => x.ticket.id), ['t2']);
});

test('phone numbers in the forms people type them', () => {
  for (const q of ['09121234567', '+989121234567', '۰۹۱۲ ۱۲۳ ۴۵۶۷', '٠٩١٢-١٢٣-٤٥٦٧', '(0912) 123 4567', '98.912.123.4567']) {
    assert.ok(looksLikePhone(q), q);
  }
  for (const q of ['1234567', 'TX-99812', 'کارت 09121234567', '1234567890123456', 'card']) {
    assert.ok(!looksLikePhone(q), q);
  }
  assert.ok(isPhoneRefusal({ code: 'bad_request', message: 'search does not look up phone numbers' }, 'x'));
  assert.ok(isPhoneRefusal({ code: 'bad_request', message: '' }, '0912 123 4567'));
  assert.ok(!isPhoneRefusal({ code: 'bad_request', message: 'too many words' }, 'a b c d e f g h i'));
  assert.ok(!isPhoneRefusal({ code: 'unavailable', message: 'phone' }, '09121234567'));
});
