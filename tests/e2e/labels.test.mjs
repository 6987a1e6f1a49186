// Unit tests of the console's labels (console/labels.js): a ticket's chips follow the team's list,
// a ticket listed without labels has none, a deleted label leaves every ticket, names are checked
// as the hub checks them. Run with `node --test` in tests/e2e (CI does).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_NAME, TicketLabels, chips, inkOn, isColor, labelName } from '../../console/labels.js';

const TEAM = [
  { id: 'l-refund', name: 'بازپرداخت', color: '#1f7a8c' },
  { id: 'l-card', name: 'card', color: '#aa3300' },
  { id: 'l-vip', name: 'ویژه', color: '#ffd166' },
];

test('chips are in the order of the team list, whatever order the ids came in', () => {
  assert.deepEqual(chips(TEAM, ['l-vip', 'l-refund']).map((l) => l.id), ['l-refund', 'l-vip']);
  assert.deepEqual(chips(TEAM, ['l-card']).map((l) => l.name), ['card']);
  assert.deepEqual(chips(TEAM, []), []);
  assert.deepEqual(chips(TEAM, undefined), []);
});

test('an id the team list does not hold shows no chip', () => {
  assert.deepEqual(chips(TEAM, ['l-gone', 'l-card']).map((l) => l.id), ['l-card']);
});

test('a ticket.list answer: listed tickets missing from `labels` have none', () => {
  const held = new TicketLabels();
  held.set({ ticket_id: 't1', label_ids: ['l-card'] });
  held.set({ ticket_id: 't9', label_ids: ['l-vip'] });
  held.listed([{ id: 't1' }, { id: 't2' }], [{ ticket_id: 't2', label_ids: ['l-refund', 'l-card'] }]);
  assert.deepEqual(held.ids('t1'), [], 'taken off since the last answer');
  assert.deepEqual(held.ids('t2'), ['l-refund', 'l-card']);
  assert.deepEqual(held.ids('t9'), ['l-vip'], 'a ticket not listed keeps what was known');
  assert.ok(held.has('t2', 'l-card'));
  assert.ok(!held.has('t1', 'l-card'));
});

test('live changes replace a ticket’s labels; none left forgets the ticket', () => {
  const held = new TicketLabels();
  held.set({ ticket_id: 't1', label_ids: ['l-card'] });
  held.set({ ticket_id: 't1', label_ids: ['l-card', 'l-vip'] });
  assert.deepEqual(held.ids('t1'), ['l-card', 'l-vip']);
  held.set({ ticket_id: 't1', label_ids: [] });
  assert.equal(held.byTicket.has('t1'), false);
  held.set(null);
  held.set({ ticket_id: 't1' });
  assert.deepEqual(held.ids('t1'), []);
});

test('a label deleted from the team list leaves every ticket', () => {
  const held = new TicketLabels();
  held.set({ ticket_id: 't1', label_ids: ['l-card', 'l-vip'] });
  held.set({ ticket_id: 't2', label_ids: ['l-card'] });
  held.keepOnly(TEAM.filter((l) => l.id !== 'l-card'));
  assert.deepEqual(held.ids('t1'), ['l-vip']);
  assert.equal(held.byTicket.has('t2'), false);
});

test('names are trimmed and 1 to 40 characters, counted as characters', () => {
  assert.equal(labelName('  بازپرداخت  '), 'بازپرداخت');
  assert.equal(labelName('   '), null);
  assert.equal(labelName(''), null);
  assert.equal(labelName('ک'.repeat(MAX_NAME)), 'ک'.repeat(MAX_NAME));
  assert.equal(labelName('ک'.repeat(MAX_NAME + 1)), null);
  assert.equal(labelName('😀'.repeat(MAX_NAME)), '😀'.repeat(MAX_NAME), 'emoji count once');
});

test('colours are #rrggbb, and chip text reads on them', () => {
  assert.ok(isColor('#1f7a8c'));
  assert.ok(isColor('#AA3300'));
  assert.ok(!isColor('1f7a8c'));
  assert.ok(!isColor('#fff'));
  assert.ok(!isColor('red'));
  assert.equal(inkOn('#000000'), '#ffffff');
  assert.equal(inkOn('#ffffff'), '#000000');
  assert.equal(inkOn('#ffd166'), '#000000');
  assert.equal(inkOn('#1f7a8c'), '#ffffff');
  assert.equal(inkOn('javascript:'), '#ffffff');
});
