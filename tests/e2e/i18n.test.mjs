// Unit tests of the console's languages (console/i18n.js, lang-fa.js, lang-en.js): the two
// catalogues say the same things, every error code the hub can answer has words in both, and
// numbers and dates come out in each language's own digits and calendar. Run with `node --test`
// in tests/e2e (CI does).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import fa from '../../console/lang-fa.js';
import en from '../../console/lang-en.js';
import {
  browserLanguage,
  duration,
  errorText,
  fold,
  formatNumber,
  longDate,
  setLanguage,
  t,
  typed,
} from '../../console/i18n.js';

const placeholders = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

test('both catalogues have the same keys, each with the same placeholders', () => {
  assert.deepEqual(Object.keys(fa).sort(), Object.keys(en).sort());
  for (const key of Object.keys(en)) {
    assert.deepEqual(placeholders(fa[key]), placeholders(en[key]), key);
    assert.ok(fa[key].trim() && en[key].trim(), `${key} is empty`);
  }
});

test('the Persian catalogue is Persian, not English left untranslated', () => {
  const latinOnly = Object.entries(fa).filter(
    ([key, s]) => !/[\u0600-\u06ff]/.test(s) && !['title.unread', 'announce.message', 'action.agent_option', 'lang.name', 'conversation.back_arrow'].includes(key),
  );
  assert.deepEqual(latinOnly, []);
});

test('every error code of the protocol has words in both languages', async () => {
  const doc = await readFile(new URL('../../protocol/PROTOCOL.md', import.meta.url), 'utf8');
  const section = doc.split('\n## Error codes')[1].split('\n## ')[0];
  const codes = [...section.matchAll(/^\| `([a-z_]+)` \| \d{3}/gm)].map((m) => m[1]);
  assert.ok(codes.length >= 25, `found ${codes}`);
  for (const code of [...codes, 'disconnected', 'timeout']) {
    assert.ok(`error.${code}` in en && `error.${code}` in fa, `no words for ${code}`);
  }
  setLanguage('fa');
  assert.equal(errorText('forbidden'), fa['error.forbidden']);
  assert.equal(errorText('no_such_code'), fa['act.failed'], 'an unknown code still gets a sentence');
});

test('the first visit follows the browser: Persian first, English when asked for first', () => {
  assert.equal(browserLanguage(['fa-IR', 'en-US']), 'fa');
  assert.equal(browserLanguage(['en-GB', 'fa']), 'en');
  assert.equal(browserLanguage(['de-DE', 'en']), 'en');
  assert.equal(browserLanguage(['de-DE']), 'fa');
  assert.equal(browserLanguage([]), 'fa');
});

test('Persian numbers and dates: Persian digits, the Solar Hijri calendar', () => {
  setLanguage('fa');
  assert.equal(formatNumber(1405), '۱٬۴۰۵');
  assert.equal(t('duration.minutes', { n: 4 }), '۴ دقیقه');
  // 2026-03-21 is 1 Farvardin 1405, the Persian new year.
  assert.equal(longDate(Date.UTC(2026, 2, 21, 12)), '۱ فروردین ۱۴۰۵');
  assert.equal(duration(4 * 60_000 + 59_000), '۴ دقیقه');
  setLanguage('en');
  assert.equal(t('duration.minutes', { n: 4 }), '4 min');
  assert.match(longDate(Date.UTC(2026, 2, 21, 12)), /21 March 2026|March 21, 2026/);
  assert.equal(duration(30_000), 'under a minute');
  assert.equal(duration(3 * 3600_000), '3 h');
});

test('typed text is isolated inside a sentence, whatever its direction', () => {
  setLanguage('en');
  assert.equal(t('typing', { name: typed('مریم') }), '\u2068مریم\u2069 is typing…');
  setLanguage('fa');
  assert.equal(t('badge.with', { agent: typed('Reza') }), 'نزد \u2068Reza\u2069');
  assert.equal(t('badge.with', { agent: 'شما' }), 'نزد شما', 'the interface’s own words are not');
});

test('filtering folds the ways Persian is typed', () => {
  assert.equal(fold('ديگر'), fold('دیگر'));
  assert.equal(fold('كارت'), fold('کارت'));
  assert.equal(fold('۷۲ و ٧٢'), '72 و 72');
  assert.equal(fold('می‌شود'), fold('میشود'));
  assert.equal(fold('Refund'), 'refund');
});
