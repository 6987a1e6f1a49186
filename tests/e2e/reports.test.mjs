// Unit tests of the supervisors' reports (console/reports.js): ranges are whole local days,
// typed in the Solar Hijri or the Gregorian calendar with digits of any script; durations,
// percentages and the chart's geometry. Run with `node --test` in tests/e2e (CI does).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_DAYS,
  addDays,
  calendarOf,
  chartGeometry,
  customRange,
  dayOf,
  dayStart,
  fetchReport,
  dayText,
  distributionShares,
  durationParts,
  latinDigits,
  parseDay,
  percent,
  presetRange,
  rangeDays,
  reportPath,
} from '../../console/reports.js';

const local = (y, m, d, h = 0, min = 0) => new Date(y, m - 1, d, h, min).getTime();

test('digits of the three scripts read the same', () => {
  assert.equal(latinDigits('۱۴۰۵/۰۹/۱۲'), '1405/09/12');
  assert.equal(latinDigits('٢٠٢٦-١٢-٠٣'), '2026-12-03');
  assert.equal(latinDigits('2026 and ۳'), '2026 and 3');
});

test('presets are the last days up to today, from local midnight to the midnight after today', () => {
  const now = local(2026, 12, 3, 16, 25);
  assert.deepEqual(presetRange('today', now), { from: local(2026, 12, 3), to: local(2026, 12, 4) });
  assert.deepEqual(presetRange('week', now), { from: local(2026, 11, 27), to: local(2026, 12, 4) });
  assert.deepEqual(presetRange('month', now), { from: local(2026, 11, 4), to: local(2026, 12, 4) });
  assert.deepEqual(presetRange('nonsense', now), presetRange('week', now), 'the default is the last 7 days');
  assert.equal(rangeDays(presetRange('month', now)), 30);
  assert.equal(dayStart(now), local(2026, 12, 3));
  assert.equal(addDays(local(2026, 12, 31), 1), local(2027, 1, 1));
});

test('Solar Hijri dates: known days, and every day of a few years there and back', () => {
  assert.equal(calendarOf('fa'), 'persian');
  assert.equal(calendarOf('en'), 'gregory');
  assert.equal(dayOf('persian', 1405, 1, 1), local(2026, 3, 21));
  assert.equal(dayOf('persian', 1405, 9, 12), local(2026, 12, 3));
  assert.equal(dayOf('persian', 1403, 12, 30), local(2025, 3, 20), '1403 is a leap year');
  assert.equal(dayOf('persian', 1404, 12, 30), null, '1404 is not');
  assert.equal(dayOf('persian', 1405, 7, 31), null, 'the second half-year has 30-day months');
  assert.equal(dayOf('persian', 1405, 13, 1), null);
  for (let ms = local(2023, 1, 1); ms < local(2028, 1, 1); ms = addDays(ms, 1)) {
    const [y, m, d] = dayText(ms, 'persian').split('/').map(Number);
    assert.equal(dayOf('persian', y, m, d), ms, dayText(ms, 'persian'));
  }
});

test('typed dates: Persian, Arabic-Indic or ASCII digits, slashes, dashes or dots', () => {
  assert.equal(parseDay('۱۴۰۵/۰۹/۱۲', 'persian'), local(2026, 12, 3));
  assert.equal(parseDay(' ١٤٠٥-٩-١٢ ', 'persian'), local(2026, 12, 3));
  assert.equal(parseDay('2026-12-03', 'gregory'), local(2026, 12, 3));
  assert.equal(parseDay('۲۰۲۶.۱۲.۰۳', 'gregory'), local(2026, 12, 3));
  assert.equal(parseDay('2026-02-30', 'gregory'), null);
  assert.equal(parseDay('12/03/2026', 'gregory'), null, 'year first, so no day and month are mixed up');
  assert.equal(parseDay('', 'persian'), null);
  assert.equal(parseDay('دیروز', 'persian'), null);
  assert.equal(dayText(local(2026, 12, 3), 'persian'), '1405/09/12');
  assert.equal(dayText(local(2026, 12, 3), 'gregory'), '2026/12/03');
});

test('a custom range covers both days typed; wrong ones say why', () => {
  assert.deepEqual(customRange('۱۴۰۵/۰۹/۰۱', '۱۴۰۵/۰۹/۱۲', 'persian'), { from: local(2026, 11, 22), to: local(2026, 12, 4) });
  assert.deepEqual(customRange('2026-12-03', '2026-12-03', 'gregory'), { from: local(2026, 12, 3), to: local(2026, 12, 4) });
  assert.deepEqual(customRange('2026-12-04', '2026-12-03', 'gregory'), { error: 'order' });
  assert.deepEqual(customRange('2026-13-04', '2026-12-03', 'gregory'), { error: 'date' });
  assert.deepEqual(customRange('2025-01-01', '2025-12-31', 'gregory').to, local(2026, 1, 1));
  assert.equal(rangeDays(customRange('2024-01-01', '2024-12-31', 'gregory')), MAX_DAYS, 'a leap year fits');
  assert.deepEqual(customRange('2024-01-01', '2025-01-01', 'gregory'), { error: 'long' });
  assert.equal(reportPath({ from: 1, to: 2 }), '/v1/reports?from=1&to=2');
  assert.equal(reportPath({ from: 1, to: 2 }, true), '/v1/reports?from=1&to=2&format=csv');
});

test('durations read in one or two units, largest first', () => {
  assert.equal(durationParts(null), null);
  assert.deepEqual(durationParts(0), [[0, 's']]);
  assert.deepEqual(durationParts(45_400), [[45, 's']]);
  assert.deepEqual(durationParts(3 * 60_000), [[3, 'min']]);
  assert.deepEqual(durationParts(80 * 60_000), [[1, 'h'], [20, 'min']]);
  assert.deepEqual(durationParts(2 * 3_600_000), [[2, 'h']]);
  assert.deepEqual(durationParts(51 * 3_600_000), [[2, 'd'], [3, 'h']]);
  assert.deepEqual(durationParts(59.6 * 60_000), [[1, 'h']], 'rounded before it is split');
});

test('rates as whole percentages, distributions as shares', () => {
  assert.equal(percent(0.5), 50);
  assert.equal(percent(2 / 3), 67);
  assert.equal(percent(null), null);
  assert.deepEqual(distributionShares([0, 0, 1, 2, 1]), [0, 0, 25, 50, 25]);
  assert.deepEqual(distributionShares([]), [0, 0, 0, 0, 0]);
});

const agent = (id, p50, p90) => ({ agent_id: id, name: id, figures: { first_response: { count: p50 === null ? 0 : 3, p50_ms: p50, p90_ms: p90 } } });

test('the chart: a group per agent with figures, bars to scale, ticks on whole steps', () => {
  const agents = [agent('sara', 60_000, 240_000), agent('reza', null, null), agent('nasrin', 30_000, 30_000)];
  const g = chartGeometry(agents);
  assert.deepEqual(g.groups.map((x) => x.agentId), ['sara', 'nasrin'], 'an agent with nothing measured has no bars');
  assert.deepEqual(g.ticks.map((t) => t.value), [0, 60_000, 120_000, 180_000, 240_000]);
  const [sara, nasrin] = g.groups;
  assert.deepEqual(sara.bars.map((b) => b.key), ['p50', 'p90']);
  assert.equal(sara.bars[1].y, g.ticks[4].y, 'the highest bar reaches the top tick');
  assert.ok(Math.abs(sara.bars[0].height * 4 - sara.bars[1].height) < 1e-9, 'heights to scale');
  assert.equal(sara.bars[0].y + sara.bars[0].height, g.baseY, 'bars stand on the axis');
  assert.ok(sara.x < nasrin.x, 'left to right in English');
  assert.ok(sara.bars[0].x < sara.bars[1].x, 'p50 first');
  assert.ok(sara.x >= g.axisX);
});

test('the chart right to left: the axis on the right, groups and bars from the right', () => {
  const agents = [agent('sara', 60_000, 240_000), agent('nasrin', 30_000, 30_000)];
  const g = chartGeometry(agents, { rtl: true });
  const [sara, nasrin] = g.groups;
  assert.ok(sara.x > nasrin.x);
  assert.ok(sara.bars[0].x > sara.bars[1].x);
  assert.ok(sara.x + sara.width <= g.axisX);
  assert.deepEqual(chartGeometry([]).groups, []);
  assert.deepEqual(chartGeometry([]).ticks.length, 2, 'an empty chart still has an axis');
});

test('a report is asked for with the token in a header; refusals carry the hub’s code', async () => {
  const asked = [];
  const answer = (status, body, headers = {}) => async (url, init) => {
    asked.push({ url, init });
    return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status, headers });
  };
  const range = { from: 10, to: 20 };
  assert.deepEqual(await fetchReport(range, 'agt_x', { fetcher: answer(200, { from: 10, to: 20 }) }), { from: 10, to: 20 });
  assert.equal(asked[0].url, '/v1/reports?from=10&to=20');
  assert.equal(asked[0].init.headers.authorization, 'Bearer agt_x');
  await assert.rejects(fetchReport(range, 't', { fetcher: answer(403, { error: { code: 'forbidden', message: 'no' } }) }), { code: 'forbidden' });
  await assert.rejects(fetchReport(range, 't', { fetcher: answer(400, 'not json') }), { code: 'bad_request' });
  await assert.rejects(fetchReport(range, 't', { fetcher: async () => { throw new TypeError('offline'); } }), { code: 'disconnected' });
  const file = await fetchReport(range, 't', {
    csv: true,
    fetcher: answer(200, 'scope,agent\n', { 'content-type': 'text/csv', 'content-disposition': 'attachment; filename="report-2026-12-03.csv"' }),
  });
  assert.equal(asked.at(-1).url, '/v1/reports?from=10&to=20&format=csv');
  assert.equal(file.filename, 'report-2026-12-03.csv');
  assert.equal(await file.blob.text(), 'scope,agent\n');
});

test('a lone agent’s bars keep a bar’s width, centred in the plot', () => {
  const g = chartGeometry([agent('sara', 60_000, 120_000)]);
  const [sara] = g.groups;
  assert.ok(sara.width <= 96);
  const middle = sara.x + sara.width / 2;
  assert.ok(Math.abs(middle - (g.axisX + (g.width - g.axisX) / 2)) < 1e-9);
});
