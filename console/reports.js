// The supervisors' reports (`GET /v1/reports`): which days are asked for, how durations and
// percentages read, and where the chart's bars go. No DOM here (tests/e2e/reports.test.mjs);
// app.js draws the page from what these functions return.
//
// A range is whole local days: `from` is the local midnight that starts the first day, `to` the
// local midnight after the last one, both in Unix ms, as the hub takes them. Days are counted in
// the calendar (not as 24 hours), so a range over a change of clocks still starts at midnight.
// In Persian the agent reads and types dates in the Solar Hijri calendar, in English in the
// Gregorian one; digits may be typed in any of the three scripts.

/** The range the page opens with. */
export const DEFAULT_PRESET = 'week';
/** The presets, each as the number of days it covers, today included. */
export const PRESETS = { today: 1, week: 7, month: 30 };
/** The longest range the hub answers, in days. */
export const MAX_DAYS = 366;

const DAY_MS = 86_400_000;

/** Persian (۰-۹) and Arabic-Indic (٠-٩) digits as ASCII ones; anything else is left as it is. */
export function latinDigits(text) {
  return String(text ?? '')
    .replace(/[\u06f0-\u06f9]/g, (d) => String(d.charCodeAt(0) - 0x06f0))
    .replace(/[\u0660-\u0669]/g, (d) => String(d.charCodeAt(0) - 0x0660));
}

/** The local midnight that starts the day of `ms`. */
export function dayStart(ms) {
  const d = new Date(ms);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

/** The local midnight `days` calendar days after (or before) the midnight `ms`. */
export function addDays(ms, days) {
  const d = new Date(ms);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate() + days).getTime();
}

/** A preset (`today`, `week`, `month`) as `{from, to}`: the last days up to and including today. */
export function presetRange(preset, now = Date.now()) {
  const days = PRESETS[preset] ?? PRESETS[DEFAULT_PRESET];
  const to = addDays(dayStart(now), 1);
  return { from: addDays(to, -days), to };
}

/** How many calendar days `{from, to}` covers. */
export function rangeDays({ from, to }) {
  return Math.round((to - from) / DAY_MS);
}

/** The calendar dates are typed and shown in, for a language: Solar Hijri in Persian. */
export function calendarOf(lang) {
  return lang === 'fa' ? 'persian' : 'gregory';
}

/** A day's `{year, month, day}` in `calendar`, from its local midnight. */
const partFormats = new Map();
function partsIn(calendar, ms) {
  let f = partFormats.get(calendar);
  if (!f) {
    f = new Intl.DateTimeFormat(`en-US-u-ca-${calendar}-nu-latn`, { year: 'numeric', month: 'numeric', day: 'numeric' });
    partFormats.set(calendar, f);
  }
  const out = {};
  for (const p of f.formatToParts(new Date(ms))) if (p.type in { year: 1, month: 1, day: 1 }) out[p.type] = Number.parseInt(p.value, 10);
  return out;
}

/** The local midnight of the day `year/month/day` in `calendar`, or null when there is no such day. */
export function dayOf(calendar, year, month, day) {
  if (![year, month, day].every(Number.isInteger) || month < 1 || month > 12 || day < 1 || day > 31) return null;
  if (calendar !== 'persian') {
    const ms = new Date(year, month - 1, day).getTime();
    const d = new Date(ms);
    return d.getFullYear() === year && d.getMonth() === month - 1 && d.getDate() === day ? ms : null;
  }
  if (year < 1 || year > 9000) return null;
  // 1 Farvardin is the 20th or 21st of March (a day further either way over the centuries): a
  // guess from the 21st, then the days around it; a day that is not in the calendar never matches.
  const dayOfYear = (month <= 6 ? (month - 1) * 31 : 186 + (month - 7) * 30) + day - 1;
  for (const shift of [0, -1, 1, -2, 2, -3]) {
    const ms = new Date(year + 621, 2, 21 + dayOfYear + shift).getTime();
    const p = partsIn('persian', ms);
    if (p.year === year && p.month === month && p.day === day) return ms;
  }
  return null;
}

/** A typed date (`1405/9/12`, `۱۴۰۵-۰۹-۱۲`, `2026.12.03`) as the local midnight starting that day
 *  in `calendar`, or null when it is not a date. */
export function parseDay(text, calendar) {
  const m = /^\s*(\d{4})\s*[/\-.\u066b\u060c]\s*(\d{1,2})\s*[/\-.\u066b\u060c]\s*(\d{1,2})\s*$/.exec(latinDigits(text));
  if (!m) return null;
  return dayOf(calendar, Number(m[1]), Number(m[2]), Number(m[3]));
}

/** A day (its local midnight) as it is typed in `calendar`: `yyyy/mm/dd`, ASCII digits (the page
 *  shows them in the language's digits). */
export function dayText(ms, calendar) {
  const p = calendar === 'persian' ? partsIn('persian', ms) : { year: new Date(ms).getFullYear(), month: new Date(ms).getMonth() + 1, day: new Date(ms).getDate() };
  const two = (n) => String(n).padStart(2, '0');
  return `${p.year}/${two(p.month)}/${two(p.day)}`;
}

/**
 * The range of the days typed as `first` to `last` (both included): `{from, to}`, or `{error}`:
 * `date` (one is not a date), `order` (the last day is before the first), `long` (more than
 * MAX_DAYS days).
 */
export function customRange(first, last, calendar) {
  const from = parseDay(first, calendar);
  const lastDay = parseDay(last, calendar);
  if (from === null || lastDay === null) return { error: 'date' };
  if (lastDay < from) return { error: 'order' };
  const range = { from, to: addDays(lastDay, 1) };
  return rangeDays(range) > MAX_DAYS ? { error: 'long' } : range;
}

/** The query of a report (`from`, `to`, and `format=csv` for the file). */
export function reportPath({ from, to }, csv = false) {
  return `/v1/reports?from=${from}&to=${to}${csv ? '&format=csv' : ''}`;
}

/**
 * A duration as at most two units, largest first: `[[n, unit], ...]` with units `s`, `min`, `h`,
 * `d` ("45 s", "3 min", "1 h 20 min", "2 d 3 h"); a zero second unit is left out. null for no
 * duration (nothing was measured).
 */
export function durationParts(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return null;
  const secs = Math.max(0, Math.round(ms / 1000));
  if (secs < 60) return [[secs, 's']];
  const minutes = Math.round(secs / 60);
  if (minutes < 60) return [[minutes, 'min']];
  if (minutes < 24 * 60) {
    const parts = [[Math.floor(minutes / 60), 'h']];
    if (minutes % 60) parts.push([minutes % 60, 'min']);
    return parts;
  }
  const hours = Math.round(minutes / 60);
  const parts = [[Math.floor(hours / 24), 'd']];
  if (hours % 24) parts.push([hours % 24, 'h']);
  return parts;
}

/** A rate (0 to 1) as a whole percentage (0 to 100), or null. */
export function percent(rate) {
  if (rate === null || rate === undefined || !Number.isFinite(rate)) return null;
  return Math.round(Math.min(1, Math.max(0, rate)) * 100);
}

/** Each score's share of the ratings (1 to 5), as whole percentages; all zero when none. */
export function distributionShares(distribution) {
  const counts = [0, 1, 2, 3, 4].map((i) => (Array.isArray(distribution) && Number.isFinite(distribution[i]) ? distribution[i] : 0));
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((n) => (total ? Math.round((n * 100) / total) : 0));
}

/** Steps the duration axis can take, in ms: each the smallest that leaves at most five ticks. */
const STEPS = [1, 2, 5, 10, 15, 30].map((s) => s * 1000)
  .concat([1, 2, 5, 10, 15, 30].map((m) => m * 60_000))
  .concat([1, 2, 3, 6, 12].map((h) => h * 3_600_000))
  .concat([1, 2, 5, 10, 30].map((d) => d * DAY_MS));

/** The chart's size and margins, in SVG units. */
export const CHART = { width: 640, height: 260, axis: 64, top: 12, bottom: 40, gap: 0.3, maxGroup: 96 };

/**
 * Where the bars of the first-response chart go: one group per agent who has a first-response
 * p50, each with its p50 and p90 bars side by side (p50 first in reading order), and the ticks of
 * the duration axis. In right to left (`rtl`), the axis is on the right and the groups run from
 * the right, as Persian reads.
 *
 * Returns `{width, height, ticks: [{value, y}], axisX, groups: [{agentId, name, x, width, bars:
 * [{key: 'p50'|'p90', value, x, y, width, height}]}]}`; no groups when no agent has figures.
 */
export function chartGeometry(agents, { rtl = false, size = CHART } = {}) {
  const rows = (Array.isArray(agents) ? agents : []).filter(
    (a) => a && a.figures && a.figures.first_response && Number.isFinite(a.figures.first_response.p50_ms),
  );
  const highest = Math.max(0, ...rows.map((a) => Math.max(a.figures.first_response.p50_ms, a.figures.first_response.p90_ms ?? 0)));
  const step = STEPS.find((s) => highest / s <= 5) ?? Math.ceil(highest / 5 / DAY_MS) * DAY_MS;
  const top = Math.max(step, Math.ceil(highest / step) * step);
  const plotHeight = size.height - size.top - size.bottom;
  const plotWidth = size.width - size.axis;
  const y = (value) => size.top + plotHeight - (value / top) * plotHeight;
  // Left to right as drawn; mirrored for right to left.
  const place = (x, width) => (rtl ? size.width - x - width : x);
  const ticks = [];
  for (let v = 0; v <= top + 1e-9; v += step) ticks.push({ value: v, y: y(v) });
  const slot = rows.length ? plotWidth / rows.length : 0;
  // A lone agent's bars stay bars, not a wall.
  const groupWidth = Math.min(slot * (1 - size.gap), size.maxGroup);
  const groups = rows.map((a, i) => {
    const gx = size.axis + i * slot + (slot - groupWidth) / 2;
    const barWidth = groupWidth / 2;
    const bars = [['p50', a.figures.first_response.p50_ms], ['p90', a.figures.first_response.p90_ms]].map(([key, value], j) => {
      const v = Number.isFinite(value) ? value : 0;
      return { key, value: Number.isFinite(value) ? value : null, x: place(gx + j * barWidth, barWidth), y: y(v), width: barWidth, height: size.top + plotHeight - y(v) };
    });
    return { agentId: a.agent_id, name: a.name, x: place(gx, groupWidth), width: groupWidth, bars };
  });
  return { width: size.width, height: size.height, ticks, axisX: rtl ? size.width - size.axis : size.axis, baseY: size.top + plotHeight, groups };
}

/**
 * Asks the hub for a report with the agent's token in a header (never in the URL): the JSON
 * figures, or with `csv` the file as `{blob, filename}`. Rejects with `{code}`: the hub's error
 * code (`forbidden`, `bad_request`, ...), or `disconnected` when the hub was not reached.
 */
export async function fetchReport(range, token, { csv = false, fetcher = globalThis.fetch } = {}) {
  let response;
  try {
    response = await fetcher(reportPath(range, csv), {
      headers: { authorization: `Bearer ${token}` },
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    throw { code: 'disconnected' };
  }
  if (!response.ok) {
    let code = response.status === 403 ? 'forbidden' : response.status === 401 ? 'unauthorized' : response.status === 400 ? 'bad_request' : 'internal';
    try {
      const body = await response.json();
      if (body && body.error && typeof body.error.code === 'string') code = body.error.code;
    } catch {
      // The status said enough.
    }
    throw { code };
  }
  if (!csv) return response.json();
  const disposition = response.headers.get('content-disposition') || '';
  const named = /filename="?([^";]+)"?/i.exec(disposition);
  const filename = named ? named[1].replace(/[/\\]/g, '_') : `report-${range.from}-${range.to}.csv`;
  return { blob: await response.blob(), filename };
}
