// Unit tests of the console's private notes (console/notes.js, console/mentions.js): a note is kept
// once however often it arrives, notes take their place among the messages by time, a note being
// added keeps its client_msg_id over resends, and @mentions are found, inserted and named the way
// the agent wrote them. Run with `node --test` in tests/e2e (CI does).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_MENTIONS, NoteList, mentionsMe, timeline } from '../../console/notes.js';
import { filterAgents, insertMention, mentionQuery, mentionedIds, splitMentions } from '../../console/mentions.js';
import { setLanguage } from '../../console/i18n.js';

const ME = 'a-sara';
const REZA = 'a-reza';
const NASRIN = 'a-nasrin';
/** Note ids are time-ordered UUIDv7; these sort the same way. */
const nid = (n) => `0190a1b2-0000-7000-8000-${String(n).padStart(12, '0')}`;
const note = (n, extra = {}) => ({
  id: nid(n),
  ticket_id: 't',
  agent_id: REZA,
  body: `note ${n}`,
  mentions: [],
  client_msg_id: `c-${n}`,
  at: n * 10,
  ...extra,
});
const ev = (seq, at) => ({ ticket_id: 't', seq, kind: 'message', author: { kind: 'user', id: 'u' }, body: `m${seq}`, at });
const keys = (view) => view.items.map((i) => i.key);

// --- keeping notes -------------------------------------------------------------------------------

test('a note arriving again, live or in a page, is kept once', () => {
  const list = new NoteList('t');
  assert.equal(list.add(note(1)), true);
  assert.equal(list.add(note(1)), false, 'the same id is a copy');
  assert.equal(list.add({ ...note(1), body: 'changed' }), false);
  list.newest([note(1), note(2)], false);
  assert.deepEqual(list.ordered().map((n) => n.id), [nid(1), nid(2)]);
  assert.equal(list.ordered()[0].body, 'note 1', 'the first copy stays');
  assert.equal(list.add({ ...note(3), ticket_id: 'other' }), false, 'another ticket’s note is not this list’s');
  assert.equal(list.add(null), false);
});

test('the newest page sets whether older notes remain; older pages fill in', () => {
  const list = new NoteList('t');
  list.newest([note(51), note(52), note(53)], true);
  assert.equal(list.loaded, true);
  assert.equal(list.more, true);
  assert.equal(list.oldestId(), nid(51));
  list.older([note(49), note(50)], false);
  assert.equal(list.more, false);
  assert.deepEqual(list.ordered().map((n) => n.at), [490, 500, 510, 520, 530]);
});

test('after a reconnect: an overlapping newest page merges, notes that arrived live stay', () => {
  const list = new NoteList('t');
  list.newest([note(10), note(11)], true);
  list.older([note(8), note(9)], true);
  list.stale = true;
  // A note that arrived live while the page was on its way is newer than the page.
  list.add(note(14));
  list.newest([note(11), note(12), note(13)], true);
  assert.equal(list.stale, false);
  assert.equal(list.more, true, 'older notes still remain before note 8');
  assert.deepEqual(list.ordered().map((n) => n.at), [80, 90, 100, 110, 120, 130, 140]);
});

test('after a reconnect: a newest page with no note in common lets the older ones go (a gap)', () => {
  const list = new NoteList('t');
  list.newest([note(1), note(2)], false);
  list.add(note(90));
  // Many notes were written meanwhile: the newest page does not reach back to note 2.
  list.newest([note(60), note(61)], true);
  assert.deepEqual(list.ordered().map((n) => n.at), [600, 610, 900], 'nothing is shown across the gap');
  assert.equal(list.more, true, 'the gap is read again as older pages');
});

test('a newest page with no older notes is the whole list', () => {
  const list = new NoteList('t');
  list.newest([note(5)], true);
  assert.equal(list.more, true);
  list.newest([note(4), note(5), note(6)], false);
  assert.equal(list.more, false);
  assert.deepEqual(list.ordered().map((n) => n.at), [40, 50, 60]);
});

// --- adding notes --------------------------------------------------------------------------------

test('a note being added is sent with the same client_msg_id on every resend, then replaced by the stored one', () => {
  const list = new NoteList('t');
  const id = list.queue('@Reza look at this', [REZA, REZA], ME);
  const first = list.sendFrame(id);
  assert.deepEqual(first, { type: 'note.add', ticket_id: 't', client_msg_id: id, body: '@Reza look at this', mentions: [REZA] });
  // The socket dropped before the answer: the same frame goes again.
  assert.deepEqual(list.unsent().map(([k]) => k), [id]);
  assert.deepEqual(list.sendFrame(id), first);
  // Another agent's note with the same client_msg_id is not ours.
  list.add(note(1, { client_msg_id: id, agent_id: REZA }));
  assert.equal(list.outbox.size, 1);
  list.add(note(2, { client_msg_id: id, agent_id: ME, body: '@Reza look at this' }));
  assert.equal(list.outbox.size, 0);
  assert.equal(list.ordered().filter((n) => n.body === '@Reza look at this').length, 1);
});

test('a note without mentions names none; a note names at most the hub’s limit', () => {
  const list = new NoteList('t');
  assert.equal('mentions' in list.sendFrame(list.queue('plain', [], ME)), false);
  const many = Array.from({ length: MAX_MENTIONS + 3 }, (_, i) => `a-${i}`);
  assert.equal(list.sendFrame(list.queue('all of you', many, ME)).mentions.length, MAX_MENTIONS);
  assert.equal(list.sendFrame('c-unknown'), null);
});

test('notes still to send survive a reload, and are sent again with the same ids', () => {
  const list = new NoteList('t');
  const id = list.queue('برای @نسرین', [NASRIN], ME);
  const failed = list.queue('too long', [], ME);
  Object.assign(list.outbox.get(failed), { state: 'failed', errorCode: 'too_large' });
  const kept = JSON.parse(JSON.stringify(list.stored()));
  assert.deepEqual(kept.map((m) => m.id), [id], 'only notes still to send are kept');
  const again = new NoteList('t');
  again.restore([...kept, null, { id: 7 }, { id: 'c-x', body: 'x', mentions: [null, REZA] }]);
  assert.deepEqual(again.sendFrame(id), list.sendFrame(id));
  assert.deepEqual(again.sendFrame('c-x').mentions, [REZA]);
  assert.equal(again.outbox.size, 2);
});

test('a failed note is taken back whole for editing; reset keeps the notes being added', () => {
  const list = new NoteList('t');
  const id = list.queue('text @Reza', [REZA], ME);
  assert.equal(list.takeBack(id), null, 'a note still being sent is not taken back');
  Object.assign(list.outbox.get(id), { state: 'failed', errorCode: 'bad_request' });
  assert.deepEqual(list.takeBack(id), { body: 'text @Reza', mentions: [REZA] });
  assert.equal(list.outbox.size, 0);
  list.queue('later', [], ME);
  list.newest([note(1)], true);
  list.reset();
  assert.equal(list.notes.size, 0);
  assert.equal(list.loaded, false);
  assert.equal(list.more, false);
  assert.equal(list.outbox.size, 1);
});

test('a note is for me when someone else names me in it', () => {
  assert.equal(mentionsMe(note(1, { mentions: [ME] }), ME), true);
  assert.equal(mentionsMe(note(1, { mentions: [REZA] }), ME), false);
  assert.equal(mentionsMe(note(1, { agent_id: ME, mentions: [ME] }), ME), false, 'not my own note');
  assert.equal(mentionsMe(note(1, { mentions: [ME] }), null), false);
});

// --- notes among the messages ---------------------------------------------------------------------

test('notes go between the messages by time, after the events stored with or before them', () => {
  const events = [ev(1, 10), ev(2, 20), ev(3, 30), ev(4, 40)];
  const notes = [note(0, { at: 5 }), note(2, { at: 20 }), note(3, { at: 35 }), note(9, { at: 90 })];
  const view = timeline(events, false, notes, false);
  assert.deepEqual(keys(view), [`n:${nid(0)}`, 'e:1', 'e:2', `n:${nid(2)}`, 'e:3', `n:${nid(3)}`, 'e:4', `n:${nid(9)}`]);
  assert.equal(view.more, false);
  assert.equal(new Set(keys(view)).size, view.items.length, 'keys are unique');
});

test('the events keep their seq order, whatever their clocks say', () => {
  // Two hub nodes a little apart: seq 3 was stored "before" seq 2 by the clock.
  const view = timeline([ev(1, 10), ev(2, 30), ev(3, 25)], false, [note(1, { at: 27 })], false);
  const seqs = view.items.filter((i) => i.event).map((i) => i.event.seq);
  assert.deepEqual(seqs, [1, 2, 3]);
});

test('the conversation starts where both streams are read: nothing older than the later of the two', () => {
  const events = [ev(51, 510), ev(52, 520), ev(53, 530)];
  const notes = [note(40, { at: 400 }), note(52, { at: 525 })];
  // Older events remain: the note from before event 51 waits for them.
  let view = timeline(events, true, notes, false);
  assert.deepEqual(keys(view), ['e:51', 'e:52', `n:${nid(52)}`, 'e:53']);
  assert.equal(view.more, true);
  // All events are read, older notes remain: events before the oldest note held wait.
  view = timeline(events, false, [note(52, { at: 525 })], true);
  assert.deepEqual(keys(view), [`n:${nid(52)}`, 'e:53']);
  assert.equal(view.more, true);
  // Everything read: everything shown.
  view = timeline(events, false, notes, false);
  assert.equal(view.items.length, 5);
  assert.equal(view.more, false);
  // No notes, or no events yet: the other stream alone.
  assert.deepEqual(keys(timeline(events, true, [], false)), ['e:51', 'e:52', 'e:53']);
  assert.deepEqual(keys(timeline([], false, notes, false)), [`n:${nid(40)}`, `n:${nid(52)}`]);
});

// --- mentions ------------------------------------------------------------------------------------

test('@ opens the list at the start of the note or after white space only', () => {
  assert.deepEqual(mentionQuery('@', 1), { start: 0, query: '' });
  assert.deepEqual(mentionQuery('لطفاً @نس', 9), { start: 6, query: 'نس' });
  assert.deepEqual(mentionQuery('ask @Reza Ka', 12), { start: 4, query: 'Reza Ka' }, 'names have spaces');
  assert.deepEqual(mentionQuery('one\n@re', 7), { start: 4, query: 're' });
  assert.equal(mentionQuery('mail sara@anapars.test', 22), null, 'an @ inside a word is no mention');
  assert.equal(mentionQuery('@ re', 4), null, 'a space right after the @ closes it');
  assert.equal(mentionQuery('@re\nmore', 8), null, 'a line break ends it');
  assert.equal(mentionQuery('@re', 0), null, 'the caret before the @');
  assert.equal(mentionQuery(`@${'x'.repeat(65)}`, 66), null);
  assert.equal(mentionQuery('no at', 5), null);
});

const agents = [
  { id: ME, name: 'Sara' },
  { id: REZA, name: 'Reza Karimi' },
  { id: NASRIN, name: 'نسرین' },
  { id: 'a-ali', name: 'Ali Rezaei' },
  { id: 'a-yasi', name: 'یاسمن کیانی' },
];

test('the list offers the other agents, Persian and Latin names alike, the writer left out', () => {
  setLanguage('en');
  assert.deepEqual(filterAgents(agents, '', ME).map((a) => a.id), ['a-ali', REZA, NASRIN, 'a-yasi']);
  assert.deepEqual(filterAgents(agents, 'rez', ME).map((a) => a.id), [REZA, 'a-ali'], 'names starting with it first');
  assert.deepEqual(filterAgents(agents, 'REZA K', ME).map((a) => a.id), [REZA], 'a name as it starts, any case');
  assert.deepEqual(filterAgents(agents, 'Karimi', ME).map((a) => a.id), [REZA], 'one word anywhere in a name');
  assert.deepEqual(filterAgents(agents, 'Reza Karimi ', ME), [], 'a finished name and a space: the note goes on');
  assert.deepEqual(filterAgents(agents, 'نسرین ن', ME), [], 'words after a name, even made of its letters');
  assert.deepEqual(filterAgents(agents, 'نس', ME).map((a) => a.id), [NASRIN]);
  assert.deepEqual(filterAgents(agents, 'كياني', ME).map((a) => a.id), ['a-yasi'], 'Arabic kaf and yeh find Persian ones');
  assert.deepEqual(filterAgents(agents, 'کیانی', ME).map((a) => a.id), ['a-yasi'], 'a later word of the name');
  assert.deepEqual(filterAgents(agents, 'sara', ME), [], 'not the writer');
  assert.deepEqual(filterAgents(agents, 'nobody', ME), []);
});

test('choosing an agent puts @Name in place of what was typed, the caret after one space', () => {
  const typed = 'لطفاً @نس';
  assert.deepEqual(insertMention(typed, mentionQuery(typed, typed.length), 'نسرین'), { text: 'لطفاً @نسرین ', caret: 13 });
  const mid = 'ask @re about it';
  const found = mentionQuery(mid, 7);
  assert.deepEqual(insertMention(mid, found, 'Reza Karimi'), { text: 'ask @Reza Karimi about it', caret: 17 }, 'a space already there is reused');
  assert.deepEqual(insertMention('@', { start: 0, query: '' }, 'Ali Rezaei'), { text: '@Ali Rezaei ', caret: 12 });
});

test('a note names the chosen agents whose @Name is still in its text, in the order written', () => {
  const chosen = [
    { id: REZA, name: 'Reza Karimi' },
    { id: NASRIN, name: 'نسرین' },
    { id: 'a-ali', name: 'Ali' },
  ];
  assert.deepEqual(mentionedIds('@نسرین و @Reza Karimi ببینید', chosen), [NASRIN, REZA]);
  assert.deepEqual(mentionedIds('@Reza Karimi, then @Reza Karimi again', chosen), [REZA], 'once each');
  assert.deepEqual(mentionedIds('only @Reza now', chosen), [], 'a name cut short is no mention');
  assert.deepEqual(mentionedIds('@Alice is not @Ali', chosen), ['a-ali'], '@Ali inside @Alice does not count');
  assert.deepEqual(mentionedIds('@نسرین‌جان', chosen), [], 'a joined Persian word is another word');
  assert.deepEqual(mentionedIds('@نسرین.', chosen), [NASRIN], 'punctuation ends a name');
  assert.deepEqual(mentionedIds('no names left', chosen), []);
  const many = Array.from({ length: MAX_MENTIONS + 2 }, (_, i) => ({ id: `a-${i}`, name: `Agent${i}` }));
  const text = many.map((a) => `@${a.name}`).join(' ');
  assert.equal(mentionedIds(text, many).length, MAX_MENTIONS);
});

test('a note’s text is cut into pieces around the @Names of the agents it names', () => {
  const names = new Map([
    [REZA, 'Ali Reza'],
    ['a-ali', 'Ali'],
  ]);
  assert.deepEqual(splitMentions('see @Ali Reza and @Ali.', names), [
    { text: 'see ' },
    { text: '@Ali Reza', id: REZA },
    { text: ' and ' },
    { text: '@Ali', id: 'a-ali' },
    { text: '.' },
  ]);
  assert.deepEqual(splitMentions('@نسرین لطفاً', new Map([[NASRIN, 'نسرین']])), [{ text: '@نسرین', id: NASRIN }, { text: ' لطفاً' }]);
  assert.deepEqual(splitMentions('plain @Someone', names), [{ text: 'plain @Someone' }]);
  assert.deepEqual(splitMentions('', names), []);
  assert.deepEqual(splitMentions('@Ali', new Map([['a-ali', '']])), [{ text: '@Ali' }], 'an unknown name marks nothing');
});
