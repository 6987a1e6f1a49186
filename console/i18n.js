// The console's languages: Persian (first) and English. One catalogue per language (lang-fa.js,
// lang-en.js); numbers, dates and times come from the browser's Intl in the chosen language, so
// Persian shows Persian digits and the Solar Hijri calendar with no date library.
//
// Direction: the interface follows the language (`<html dir>`); anything a person typed (names,
// subjects, messages) keeps its own direction. In the DOM it goes into `<bdi>` or an element with
// `dir="auto"`; in plain text (the page title, notifications, screen-reader announcements, option
// labels) it is wrapped in the Unicode isolates FSI ... PDI, which do the same.

import en from './lang-en.js';
import fa from './lang-fa.js';

export const LANGUAGES = { fa, en };
/** Persian first: the language when the browser asks for neither. */
export const DEFAULT_LANGUAGE = 'fa';
const LANG_KEY = 'anapars.console.lang';
const FSI = '\u2068';
const PDI = '\u2069';

let lang = DEFAULT_LANGUAGE;
let formats = null;

/** Text someone typed, to be isolated wherever it is placed in a sentence. */
export class Typed {
  constructor(text) {
    this.text = text == null ? '' : String(text);
  }
}
export const typed = (text) => new Typed(text);

/** The language of the first visit: the first of the browser's languages the console speaks. */
export function browserLanguage(languages) {
  for (const tag of languages || []) {
    const primary = String(tag).toLowerCase().split(/[-_]/)[0];
    if (primary in LANGUAGES) return primary;
  }
  return DEFAULT_LANGUAGE;
}

/** The remembered choice: the agent's own (`agentId`), else this browser's last, else the browser's
 *  languages. */
export function rememberedLanguage(agentId) {
  const stored = [agentId && read(`${LANG_KEY}.${agentId}`), read(LANG_KEY)].find((l) => l && l in LANGUAGES);
  return stored || browserLanguage(globalThis.navigator ? navigator.languages : []);
}

/** Remembers a choice for this browser and, once signed in, for the agent. */
export function rememberLanguage(code, agentId) {
  write(LANG_KEY, code);
  if (agentId) write(`${LANG_KEY}.${agentId}`, code);
}

function read(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Storage disabled: the choice lasts until the page closes.
  }
}

export function language() {
  return lang;
}

export function direction(code = lang) {
  return code === 'fa' ? 'rtl' : 'ltr';
}

/** Switches the catalogue and the formats; the caller re-renders. */
export function setLanguage(code) {
  lang = code in LANGUAGES ? code : DEFAULT_LANGUAGE;
  formats = makeFormats(lang);
  if (globalThis.document) {
    document.documentElement.lang = lang;
    document.documentElement.dir = direction(lang);
  }
  return lang;
}

/** The BCP 47 locale Intl formats with: Persian in Iran's calendar and digits; English in the
 *  browser's own English if it has one. */
export function locale(code = lang) {
  if (code === 'fa') return 'fa-IR-u-ca-persian-nu-arabext';
  const english = (globalThis.navigator ? navigator.languages : []).find((l) => /^en\b/i.test(l));
  return english || 'en-GB';
}

function makeFormats(code) {
  const loc = locale(code);
  return {
    number: new Intl.NumberFormat(loc),
    decimal: new Intl.NumberFormat(loc, { maximumFractionDigits: 1 }),
    time: new Intl.DateTimeFormat(loc, { hour: '2-digit', minute: '2-digit' }),
    dayTime: new Intl.DateTimeFormat(loc, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }),
    date: new Intl.DateTimeFormat(loc, { year: 'numeric', month: 'long', day: 'numeric' }),
    full: new Intl.DateTimeFormat(loc, { dateStyle: 'full', timeStyle: 'short' }),
    collator: new Intl.Collator(loc),
  };
}

function fmt() {
  if (!formats) formats = makeFormats(lang);
  return formats;
}

/** A string of the catalogue with its placeholders filled in, as plain text. */
export function t(key, params = {}) {
  return template(key).replace(/\{(\w+)\}/g, (_, name) => plain(params[name]));
}

/** The same as nodes, for the DOM: typed text goes into `<bdi>`, nodes are placed as they are. */
export function tNodes(key, params = {}) {
  const out = [];
  const parts = template(key).split(/\{(\w+)\}/);
  parts.forEach((part, i) => {
    if (i % 2 === 0) {
      if (part) out.push(document.createTextNode(part));
      return;
    }
    const value = params[part];
    if (value instanceof Node) out.push(value);
    else if (value instanceof Typed) out.push(bdi(value.text));
    else out.push(document.createTextNode(plain(value)));
  });
  return out;
}

/** An isolated run of typed text. */
export function bdi(text, className) {
  const e = document.createElement('bdi');
  if (className) e.className = className;
  e.textContent = text;
  return e;
}

function template(key) {
  const s = LANGUAGES[lang][key] ?? en[key];
  return s === undefined ? key : s;
}

function plain(value) {
  if (value instanceof Typed) return FSI + value.text + PDI;
  if (typeof value === 'number') return fmt().number.format(value);
  return value == null ? '' : String(value);
}

/** The text of an error the hub answered (or `disconnected` / `timeout`), by its code. */
export function errorText(code) {
  const key = `error.${code}`;
  return key in en ? t(key) : t('act.failed');
}

export function formatNumber(n) {
  return fmt().number.format(n);
}

/** A file's size in bytes, KB or MB (of 1024), in the language's digits and words. */
export function fileSize(bytes) {
  if (bytes < 1024) return t('size.bytes', { n: bytes });
  if (bytes < 1024 * 1024) return t('size.kb', { n: fmt().decimal.format(bytes / 1024) });
  return t('size.mb', { n: fmt().decimal.format(bytes / (1024 * 1024)) });
}

/** A time of day for today's events; with the day for older ones. */
export function shortTime(ms, now = Date.now()) {
  const d = new Date(ms);
  return now - ms < 20 * 3600 * 1000 ? fmt().time.format(d) : fmt().dayTime.format(d);
}

/** A date with the year, in the language's calendar. */
export function longDate(ms) {
  return fmt().date.format(new Date(ms));
}

/** Date and time in full, for tooltips. */
export function fullTime(ms) {
  return fmt().full.format(new Date(ms));
}

/** "3 min ago", "2 h ago", or the date. */
export function relativeTime(ms, now = Date.now()) {
  const secs = Math.round((now - ms) / 1000);
  if (secs < 60) return t('time.just_now');
  if (secs < 3600) return t('time.minutes_ago', { n: Math.round(secs / 60) });
  if (secs < 86400) return t('time.hours_ago', { n: Math.round(secs / 3600) });
  return fmt().dayTime.format(new Date(ms));
}

/** How long something has lasted: "under a minute", "4 min", "2 h", "3 d". */
export function duration(ms) {
  const minutes = Math.floor(Math.max(0, ms) / 60000);
  if (minutes < 1) return t('duration.under_minute');
  if (minutes < 60) return t('duration.minutes', { n: minutes });
  if (minutes < 48 * 60) return t('duration.hours', { n: Math.floor(minutes / 60) });
  return t('duration.days', { n: Math.floor(minutes / 1440) });
}

/** Sorts names as the language does. */
export function compare(a, b) {
  return fmt().collator.compare(a, b);
}

/** A language tag (`fa-IR`) as a name in the interface's language ("Persian (Iran)"). */
export function languageName(tag) {
  try {
    return new Intl.DisplayNames([locale()], { type: 'language' }).of(tag) || tag;
  } catch {
    return tag;
  }
}

/** The languages as options of a `<select>`, each named in its own language. */
export function languageOptions() {
  return Object.entries(LANGUAGES).map(([code, catalogue]) => {
    const o = document.createElement('option');
    o.value = code;
    o.lang = code;
    o.dir = direction(code);
    o.textContent = catalogue['lang.name'];
    return o;
  });
}

/** Fills in the page's fixed text: `data-i18n="key"` sets the text, `data-i18n-attr="attr:key
 *  attr:key"` attributes. */
export function applyStatic(root = document) {
  for (const e of root.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  for (const e of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of e.dataset.i18nAttr.split(/\s+/)) {
      const [attr, key] = pair.split(':');
      if (attr && key) e.setAttribute(attr, t(key));
    }
  }
}

/** Folds what differs between the ways Persian is typed (Arabic yeh and kaf, Persian and
 *  Arabic-Indic digits, zero-width non-joiners, case), for filtering. */
export function fold(text) {
  return String(text)
    .replace(/[\u06f0-\u06f9]/g, (d) => String(d.charCodeAt(0) - 0x06f0))
    .replace(/[\u0660-\u0669]/g, (d) => String(d.charCodeAt(0) - 0x0660))
    .replace(/[\u064a\u0649]/g, '\u06cc')
    .replace(/\u0643/g, '\u06a9')
    .replace(/[\u200c\u200d\u200e\u200f]/g, '')
    .toLocaleLowerCase();
}
