// The agent's side of the console's end-to-end test, in headless Chromium (playwright-core).
// tests/console.rs starts a real hub, plays the users over real WebSockets, and runs this script.
//
// The two sides take turns over stdio: this script prints `STEP <name>` when it needs a user to
// act and waits for `OK <name>` on stdin. Every wait has a deadline; the whole run has one too.
//
// The browser asks for Persian, so the console starts in Persian; half-way the agent switches it to
// English. Private notes: the agent writes one naming a colleague (NASRIN, created by the Rust side)
// and one while the hub is down; later the colleague writes one naming this agent, on a ticket they
// are not looking at. Labels and search: the agent (a supervisor) creates a label, puts it on a
// ticket and filters the list by it, and searches with a word typed in Arabic letters. Ratings and
// reports: the agent resolves Ali's ticket and sees his rating arrive; then, as a supervisor, reads
// Reports (this run's figures, the first-response chart, the CSV file, a range typed in Solar
// Hijri dates) in Persian and again in English. Strings are checked against the console's own
// catalogues (console/lang-*.js), and a few against the words themselves, so that a catalogue
// cannot drift into nonsense unnoticed.
//
// Environment: HUB_URL, AGENT_EMAIL, AGENT_PASSWORD, CHROMIUM_PATH, SCREENSHOT_DIR (where
// console.png and console-phone.png go), REZA_ID (the other agent), HIDDEN_NUMBERS (the users'
// numbers without their country code, comma-separated: never on the page), RECEIPT_WIDTH (the
// width of the picture the user sends), CHART_PNG (a picture file the agent attaches), NOTE_TEXT
// (the text file the agent attaches), and optionally
// HEADFUL=1 to watch it, CONSOLE_DIR=../../console to serve the console's files from the working
// tree instead of the hub's embedded copy (to try changes to them without rebuilding the hub).

import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import fa from '../../console/lang-fa.js';
import en from '../../console/lang-en.js';

const RUN_DEADLINE_MS = 120_000;
const WAIT_MS = 10_000;
/** Reconnecting after the hub comes back may sit in one backoff wait (at most 4 s by then). */
const RECONNECT_MS = 20_000;
const MIXED = 'تراکنش ref: TX-99812 ساعت 14:05 بود.';
const CANNED_FA = 'مبلغ تا ۷۲ ساعت دیگر به کارت شما برمی‌گردد.';
const CANNED_EN = 'Your refund is on its way: allow 3 working days.';
/** The private notes (tests/console.rs checks them in the hub and the customer's export). */
const NOTE_FA = 'لطفاً تراکنش TX-99812 را در درگاه بانک بررسی کن.';
const OFFLINE_NOTE = 'کاربر دو بار شارژ شده؛ بازپرداخت دستی لازم است.';
/** Part of the note the colleague writes to this agent. */
const MENTION_TEXT = 'لطفاً پیگیری کن';
/** The label the agent (a supervisor) creates and puts on the first ticket (tests/console.rs finds
 *  it by this name), and the same name typed with the Arabic kaf, which the hub takes as the same. */
const LABEL = 'کارت بانکی';
const LABEL_ARABIC = 'كارت بانكی';
/** A word of the user's first message typed with the Arabic kaf (the message has «کارتم»). */
const SEARCH_ARABIC = 'كارت';
/** The colleague the agent names in a note, and the agent's own name. */
const NASRIN = 'نسرین';
const SARA = 'Sara';
/** Ali's comment on the resolution of his ticket (tests/console.rs). */
const RATING_COMMENT = 'ممنون، سریع درست شد 👍';
/** The figures of this run when the agent opens Reports (see `reports`). */
const REPORT = {
  opened: 4,
  resolved: 2,
  chartGroups: 1,
  csvHeader: 'scope,id,name,opened,reopened,claimed,resolved,first_response_count,first_response_p50_ms,first_response_p90_ms,queue_wait_count,queue_wait_p50_ms,queue_wait_p90_ms,resolution_count,resolution_p50_ms,resolution_p90_ms,ratings_requested,ratings_rated,ratings_average,ratings_1,ratings_2,ratings_3,ratings_4,ratings_5,ratings_response_rate',
};
const PERSIAN_MONTHS = /فروردین|اردیبهشت|خرداد|تیر|مرداد|شهریور|مهر|آبان|آذر|دی|بهمن|اسفند/;
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 760 };

const env = (name) => {
  const v = process.env[name];
  if (!v) fail(`${name} is not set`);
  return v;
};
const HUB = env('HUB_URL');
const EMAIL = env('AGENT_EMAIL');
const PASSWORD = env('AGENT_PASSWORD');
const CHROMIUM = env('CHROMIUM_PATH');
const SHOTS = env('SCREENSHOT_DIR');
const REZA = env('REZA_ID');
const HIDDEN = env('HIDDEN_NUMBERS').split(',');
const RECEIPT_WIDTH = Number(env('RECEIPT_WIDTH'));
const CHART_PNG = env('CHART_PNG');
const NOTE_TEXT = env('NOTE_TEXT');
/** The hub's largest attachment (`attachment_max_bytes`). */
const MAX_BYTES = 10 * 1024 * 1024;

let browser = null;
/** Errors the page logged; a failure lists them, since they usually say why. */
const problems = [];
/** blob: URLs the script loads to see that they were revoked. */
const probed = new Set();

function log(...args) {
  console.error('[console.mjs]', ...args);
}

/** The page, for a picture of it when something fails. */
let shownPage = null;
let failing = false;
const never = () => new Promise(() => {});

/** Ends the run: says why on stderr, keeps a screenshot of the page (console-failure.png beside
 *  the others), then tells the Rust side, which stops everything. Never resolves. */
function fail(message) {
  if (failing) return never();
  failing = true;
  if (problems.length) message += `\n  browser errors so far:\n  ${problems.join('\n  ')}`;
  console.error(`[console.mjs] FAIL: ${message}`);
  const end = () => {
    console.log(`FAIL ${message.split('\n')[0]}`);
    if (browser) browser.close().catch(() => {});
    process.exit(1);
  };
  if (shownPage && process.env.SCREENSHOT_DIR) {
    setTimeout(end, 3000);
    shownPage.screenshot({ path: join(process.env.SCREENSHOT_DIR, 'console-failure.png') }).then(
      () => console.error(`[console.mjs] the page as it was: ${join(process.env.SCREENSHOT_DIR, 'console-failure.png')}`),
      () => {},
    ).finally(end);
  } else {
    end();
  }
  return never();
}

setTimeout(() => fail(`the run took longer than ${RUN_DEADLINE_MS / 1000} s`), RUN_DEADLINE_MS).unref();

// --- turns with the Rust side -----------------------------------------------------------------
const lines = createInterface({ input: process.stdin });
const inbox = [];
const waiting = [];
lines.on('line', (line) => {
  const w = waiting.shift();
  if (w) w(line);
  else inbox.push(line);
});
lines.on('close', () => {
  for (const w of waiting.splice(0)) w(null);
});

function nextLine() {
  if (inbox.length) return Promise.resolve(inbox.shift());
  return new Promise((resolve) => waiting.push(resolve));
}

/** Asks the users' side to do `name`, and waits until it has. */
async function step(name) {
  if (failing) await never();
  console.log(`STEP ${name}`);
  const timer = new Promise((_, reject) => setTimeout(() => reject(new Error(`no OK for ${name}`)), 20_000));
  const line = await Promise.race([nextLine(), timer]);
  if (line !== `OK ${name}`) fail(`expected "OK ${name}", got ${JSON.stringify(line)}`);
  log(`step ${name}: done`);
}

/** Persian digits, as the console writes numbers in Persian. */
const faDigits = (n) => String(n).replace(/\d/g, (d) => '۰۱۲۳۴۵۶۷۸۹'[d]);

// --- the run -----------------------------------------------------------------------------------
async function main() {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: process.env.HEADFUL !== '1',
    // Root in a container has no user namespaces for the sandbox. A page served from disk (below)
    // has no address, and Chromium would not let it reach the hub on 127.0.0.1.
    args: [
      '--no-sandbox',
      '--disable-dev-shm-usage',
      ...(process.env.CONSOLE_DIR ? ['--disable-features=LocalNetworkAccessChecks'] : []),
    ],
    timeout: WAIT_MS,
  });
  // A browser that asks for Persian: the first visit is in Persian.
  const context = await browser.newContext({ viewport: DESKTOP, locale: 'fa-IR' });
  context.setDefaultTimeout(WAIT_MS);
  await context.grantPermissions(['notifications'], { origin: HUB });
  // Records the desktop notifications and sounds the page makes (both are off until the agent
  // turns them on).
  await context.addInitScript(() => {
    window.__alerts = { notifications: [], sounds: 0 };
    const Real = window.Notification;
    class Recorded extends Real {
      constructor(title, options) {
        window.__alerts.notifications.push({ title, body: options && options.body });
        super(title, options);
      }
    }
    Object.defineProperty(Recorded, 'permission', { get: () => Real.permission });
    Recorded.requestPermission = (...args) => Real.requestPermission(...args);
    window.Notification = Recorded;
    const oscillator = AudioContext.prototype.createOscillator;
    AudioContext.prototype.createOscillator = function () {
      window.__alerts.sounds++;
      return oscillator.call(this);
    };
  });
  if (process.env.CONSOLE_DIR) await serveFromDisk(context, process.env.CONSOLE_DIR);
  const page = await context.newPage();
  shownPage = page;

  const urls = [];
  page.on('console', (m) => {
    // Loading a blob: URL on purpose after the page gave it back (expectGone) fails, as it should.
    if (probed.has(m.location().url) && m.text().includes('ERR_FILE_NOT_FOUND')) return;
    if (m.type() === 'error' && !/WebSocket connection to .* failed/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => urls.push(r.url()));
  page.on('websocket', (ws) => urls.push(ws.url()));

  // ---- Persian: the first visit follows the browser's language --------------------------------
  const response = await page.goto(`${HUB}/console`);
  const csp = response.headers()['content-security-policy'] || '';
  if (!csp.includes("script-src 'self'")) fail(`no strict CSP on /console: ${csp}`);
  // Attachments are shown through blob: URLs, and images come from nowhere else.
  if (!/img-src 'self' blob:;/.test(csp)) fail(`img-src does not allow exactly 'self' and blob: ${csp}`);
  await expectAttr(page.locator('html'), 'lang', 'fa');
  await expectAttr(page.locator('html'), 'dir', 'rtl');
  await expectStyle(page.locator('#signin-form'), 'direction', 'rtl');
  await expectText(page.locator('#signin-button'), 'ورود', true);
  await expectText(page.locator('label[for=password]'), fa['signin.password'], true);
  await page.locator('#email').fill(EMAIL);
  await page.locator('#password').fill('wrong password');
  await page.locator('#signin-button').click();
  await expectText(page.locator('#signin-error'), fa['signin.wrong'], true);
  // Chromium logs the expected 401 of that attempt as an error; nothing before it is expected.
  if (problems.length !== 1 || !problems[0].includes('401')) fail(`browser errors: ${problems}`);
  problems.length = 0;
  await page.locator('#password').fill(PASSWORD);
  await page.locator('#password').press('Enter');
  await online(page, WAIT_MS);
  await expectText(page.locator('#connection-text'), fa['connection.online'], true);
  if ((await page.title()) !== fa['app.title']) fail(`title: ${await page.title()}`);
  log('signed in, in Persian');
  await indexedDbOutbox(page);

  // A new agent is away: the console offers to become available.
  await expectText(page.locator('#available-prompt'), fa['status.away']);
  await page.locator('#become-available').click();
  await expectAttr(page.locator('#available-prompt'), 'hidden', '');
  if ((await page.locator('#my-status').inputValue()) !== 'available') fail('status is not available');

  // Three users open tickets: they arrive without a reload, the one waiting longest first, each
  // saying how long its user has waited.
  await step('open-tickets');
  const t1 = page.locator('.ticket-item', { hasText: 'پرداخت ناموفق بود' });
  await t1.waitFor();
  await expectText(page.locator('#count-unassigned'), faDigits(3), true);
  await expectText(t1, 'مریم کریمی');
  await expectText(page.locator('.ticket-item').first(), 'پرداخت ناموفق بود');
  await expectText(t1.locator('.when'), `${fa['duration.under_minute']} در انتظار`, true);
  await expectCount(page.locator('.ticket-item', { hasText: 'سؤال درباره اشتراک' }), 0);

  // Keyboard: in Persian the next tab is to the left; ↑ ↓ move in the list; Enter opens.
  await page.locator('#tab-unassigned').focus();
  await page.keyboard.press('ArrowLeft');
  await expectAttr(page.locator('#tab-mine'), 'aria-selected', 'true');
  await page.keyboard.press('ArrowRight');
  await expectAttr(page.locator('#tab-unassigned'), 'aria-selected', 'true');
  await page.locator('.ticket-item').first().focus();
  await page.keyboard.press('ArrowDown');
  await expectFocus(page, '.ticket-item', 'Wrong name on my receipt');
  await page.keyboard.press('ArrowUp');
  await expectFocus(page, '.ticket-item', 'پرداخت ناموفق بود');
  await page.keyboard.press('Enter');
  await expectText(page.locator('#ticket-subject'), 'پرداخت ناموفق بود', true);
  await expectText(page.locator('#events'), 'کارتم دو بار شارژ شد!');
  await expectText(page.locator('#user-name'), 'مریم کریمی', true);
  await expectText(page.locator('#user-presence'), fa['presence.online'], true);
  await page.locator('#user-image[src^="/v1/media/"]').waitFor();
  await expectDirection(page, '#ticket-subject', 'rtl');
  await expectIsolated(page, '#user-name');

  // The customer beside the conversation: the device her app reported, her earlier ticket from
  // the hub (this tab never saw it), dates in the Solar Hijri calendar, never her number.
  await expectVisible(page, '#customer');
  await expectText(page.locator('#customer-name'), 'مریم کریمی', true);
  await expectText(page.locator('#customer-device'), 'android 14');
  await expectText(page.locator('#customer-device'), 'Google Pixel 8');
  await expectText(page.locator('#customer-device'), '3.2.1');
  await expectText(page.locator('#customer-device'), fa['customer.app_version']);
  const earlier = page.locator('#customer-tickets .customer-ticket', { hasText: 'سؤال درباره اشتراک' });
  await earlier.waitFor();
  await expectText(earlier, fa['badge.resolved']);
  await expectSolarHijri(earlier.locator('time'));
  await expectText(page.locator('#customer-tickets [aria-current=true]'), fa['customer.this_ticket']);
  await expectNoNumber(page);

  await page.locator('#claim').click();
  await expectText(page.locator('#ticket-status'), fa['ticket.assigned_you'], true);
  await expectText(page.locator('#count-mine'), faDigits(1), true);
  await step('claimed');

  // Typing, then a mixed message and an English one from the user.
  await step('user-types');
  await expectText(page.locator('#typing'), `مریم کریمی در حال نوشتن است`);
  await expectIsolated(page, '#typing bdi');
  await step('user-writes');
  const bubble = (text) => page.locator('#events .message .body', { hasText: text });
  await bubble(MIXED).waitFor();
  await bubble('It was 12.50 EUR, on Monday').waitFor();
  await expectText(page.locator('#typing'), '', true);
  await expectMixedRightToLeft(page, MIXED);
  await expectDirection(page, '#events .message.user .body >> nth=0', 'rtl');
  await expectStyle(bubble('It was 12.50 EUR, on Monday'), 'direction', 'ltr');
  await expectSolarHijri(page.locator('#events .message time').last(), 'title');
  await expectPersianDigits(page.locator('#events .message time').last());

  // A canned reply: added in its dialog, inserted with `/` and a word of its text typed the
  // Arabic way (ي for ی), then a line of the agent's own, sent with Enter.
  await addCannedReply(page, 'بازپرداخت', CANNED_FA);
  const reply = page.locator('#reply');
  await reply.focus();
  await reply.pressSequentially('/ديگر');
  await expectVisible(page, '#canned-picker');
  await expectText(page.locator('#canned-options [aria-selected=true]'), 'بازپرداخت');
  await page.keyboard.press('Enter');
  await expectValue(reply, CANNED_FA);
  await expectStyle(reply, 'direction', 'rtl');
  await page.keyboard.press('Shift+Enter');
  await reply.pressSequentially('Ref: TX-99812');
  await page.keyboard.press('Enter');
  const mine = page.locator('#events .message.mine');
  await expectText(mine.last(), 'Ref: TX-99812');
  await step('agent-replied');
  await expectText(mine.last().locator('.tick'), fa['tick.read'], true);

  await privateNote(page);
  await labelsAndSearch(page);

  // A message in the agent's ticket while they look at another: the title and the list count it.
  // Notifications and sounds are off until the agent turns them on.
  await page.locator('.ticket-item', { hasText: 'Wrong name on my receipt' }).click();
  await expectText(page.locator('#ticket-subject'), 'Wrong name on my receipt', true);
  await expectDirection(page, '#ticket-subject', 'ltr');
  await expectVisible(page, '#customer-no-device');
  await expectHidden(page, '#customer-device');
  await expectText(page.locator('#customer-name'), 'Ali Rezaei', true);
  await step('user-writes-again');
  await expectTitle(page, `(${faDigits(1)}) ${fa['app.title']}`);
  await page.locator('#tab-mine').click();
  await expectText(page.locator('.ticket-item .unread-count'), faDigits(1), true);
  const alerts = await page.evaluate(() => window.__alerts);
  if (alerts.notifications.length || alerts.sounds) fail(`alerts while they are off: ${JSON.stringify(alerts)}`);
  await page.locator('.ticket-item', { hasText: 'پرداخت ناموفق بود' }).click();
  await expectText(page.locator('#events'), 'هنوز منتظرم');
  await expectTitle(page, fa['app.title']);
  await expectCount(page.locator('.ticket-item .unread-count'), 0);

  // A reload keeps the session and the open ticket; nothing is shown twice; the customer's
  // tickets come from the hub again.
  await page.reload();
  await online(page, WAIT_MS);
  await expectText(page.locator('#ticket-subject'), 'پرداخت ناموفق بود', true);
  await expectText(mine.last(), 'Ref: TX-99812');
  await expectCount(page.locator('#events .message'), 5);
  await expectText(mine.last().locator('.tick'), fa['tick.read'], true);
  // The note comes back with `note.list`, in its place after the messages it followed.
  await expectCount(page.locator('#events .note'), 1);
  await until('the note between the reply it followed and the message after it', () =>
    page.evaluate(
      ([note]) => {
        const items = [...document.querySelectorAll('#events > li')].map((li) => li.textContent);
        const at = items.findIndex((x) => x.includes(note));
        return (at > 0 && items[at - 1].includes('Ref: TX-99812') && items[at + 1].includes('هنوز منتظرم')) || items.join(' | ');
      },
      [NOTE_FA],
    ),
  );
  await page.locator('#customer-tickets .customer-ticket', { hasText: 'سؤال درباره اشتراک' }).waitFor();
  await expectAttr(page.locator('html'), 'dir', 'rtl');

  // The hub goes away: the console says so, keeps a message for later, and resumes by itself.
  await page.evaluate(() => {
    window.__states = [];
    const box = document.getElementById('connection');
    new MutationObserver(() => window.__states.push(box.dataset.state)).observe(box, { attributes: true });
  });
  await step('stop-hub');
  await expectAttr(page.locator('#connection'), 'data-state', /waiting|connecting/);
  await expectText(page.locator('#connection-text'), /اتصال/);
  await reply.fill('هنوز آنجا هستید؟');
  await page.keyboard.press('Enter');
  await expectText(page.locator('#outbox'), 'هنوز آنجا هستید؟');
  // A note written meanwhile waits too, and is stored once the hub is back.
  await page.locator('#mode-note').check();
  await reply.fill(OFFLINE_NOTE);
  await page.keyboard.press('Enter');
  await expectText(page.locator('#outbox .note'), OFFLINE_NOTE);
  await expectText(page.locator('#outbox .note .tick'), fa['tick.waiting'], true);
  await page.locator('#mode-message').check();
  await step('start-hub');
  await online(page, RECONNECT_MS);
  await expectText(mine.last(), 'هنوز آنجا هستید؟');
  await expectCount(page.locator('#outbox .message'), 0);
  await expectCount(page.locator('#outbox .note'), 0);
  await expectCount(page.locator('#events .note', { hasText: OFFLINE_NOTE }), 1);
  await step('offline-message-arrived');
  await expectText(page.locator('#events .message').last(), 'بله، هستم');
  await expectCount(page.locator('#events .message'), 7);
  const states = await page.evaluate(() => window.__states);
  if (!states.includes('waiting') || states[states.length - 1] !== 'online') fail(`connection states: ${states}`);

  await attachments(page, urls);

  // The user leaves: presence changes to last seen.
  await expectText(page.locator('#user-presence'), fa['presence.online'], true);
  await step('user-leaves');
  await expectText(page.locator('#user-presence'), /آخرین بازدید/);
  await page.locator('#tab-all').click();
  await page.locator('#reply').focus();
  await page.screenshot({ path: join(SHOTS, 'console.png') });

  // Phone size: the conversation alone, filling the screen, nothing sideways; back to the list.
  await page.setViewportSize(PHONE);
  await expectPhoneLayout(page, 'the conversation, Persian');
  await page.screenshot({ path: join(SHOTS, 'console-phone.png') });
  await page.locator('#customer-toggle').click();
  await expectVisible(page, '#customer');
  await expectText(page.locator('#customer-device'), 'Pixel 8');
  await expectNoOverflow(page, 'the customer panel, Persian');
  await page.locator('#customer-close').click();
  await expectHidden(page, '#customer');
  await page.locator('#back').click();
  await expectVisible(page, '#ticket-list');
  await expectHidden(page, '#conversation');
  await expectNoOverflow(page, 'the list, Persian');
  await page.setViewportSize(DESKTOP);
  log('Persian screenshots written');

  // Another ticket: claimed, resolved; Send is off where the hub would refuse the message.
  await page.locator('#tab-unassigned').click();
  await page.locator('.ticket-item', { hasText: 'Wrong name on my receipt' }).click();
  if (!(await page.locator('#send').isDisabled())) fail('Send is enabled on an unclaimed ticket');
  await page.locator('#claim').click();
  await expectText(page.locator('#ticket-status'), fa['ticket.assigned_you'], true);
  if (!(await page.locator('#send').isDisabled())) fail('Send is enabled with nothing to send');
  await page.locator('#reply').fill('   ');
  if (!(await page.locator('#send').isDisabled())) fail('Send is enabled for white space');
  await page.locator('#reply').fill('');
  await page.locator('#resolve').click();
  await expectText(page.locator('#ticket-status'), 'حل‌شده به دست شما', true);
  if (!(await page.locator('#send').isDisabled()) || !(await page.locator('#reply').isDisabled())) {
    fail('Send is enabled on a resolved ticket');
  }
  await expectText(page.locator('#count-unassigned'), faDigits(1), true);
  // Ali rates the resolution from his app (tests/console.rs): it shows here at once.
  await step('rated');
  await expectRating(page, fa, faDigits(4), fa['agent.you']);
  await expectText(page.locator('#announcer'), fa['announce.rated'].split('{n}')[0]);
  await reports(page);

  // Alt+↓ and Alt+↑ go through the list: from the first ticket of "Mine" to the next.
  await page.locator('#tab-all').click();
  await page.locator('.ticket-item').first().click();
  const firstSubject = await page.locator('#ticket-subject').textContent();
  await page.keyboard.press('Alt+ArrowDown');
  await expectText(page.locator('#ticket-subject'), new RegExp(`^(?!${escape(firstSubject)}$)`));
  await page.keyboard.press('Alt+ArrowUp');
  await expectText(page.locator('#ticket-subject'), firstSubject, true);

  // Transfer the first ticket to the other agent.
  await page.locator('#tab-mine').click();
  await page.locator('.ticket-item', { hasText: 'پرداخت ناموفق بود' }).click();
  await page.locator('#transfer-to').selectOption(REZA);
  await page.locator('#transfer').click();
  await expectText(page.locator('#ticket-status'), 'سپرده به Reza', true);
  await expectText(page.locator('#count-mine'), faDigits(0), true);
  await step('transferred');

  // A user deletes their account while the agent looks at their ticket: it disappears.
  await page.locator('#tab-unassigned').click();
  await page.locator('.ticket-item', { hasText: 'App crashes on login' }).click();
  await expectText(page.locator('#ticket-subject'), 'App crashes on login', true);
  await step('account-deleted');
  await expectText(page.locator('#count-unassigned'), faDigits(0), true);
  await expectCount(page.locator('.ticket-item', { hasText: 'App crashes on login' }), 0);
  await expectText(page.locator('#announcer'), fa['announce.deleted_current']);

  // ---- English: chosen in the settings, remembered over a reload ------------------------------
  await page.locator('#settings-open').click();
  await page.locator('#settings-lang').selectOption('en');
  await expectAttr(page.locator('html'), 'lang', 'en');
  await expectAttr(page.locator('html'), 'dir', 'ltr');
  await expectText(page.locator('#settings-title'), 'Settings', true);
  // Notifications and the sound, turned on.
  await page.locator('#pref-notify').check();
  await page.locator('#pref-sound').check();
  await page.locator('#settings-close').click();
  await page.reload();
  await online(page, WAIT_MS);
  await expectAttr(page.locator('html'), 'dir', 'ltr');
  await expectText(page.locator('#signout'), 'Sign out', true);
  await expectText(page.locator('#tab-all'), en['tabs.all']);
  if ((await page.title()) !== 'Anapars support') fail(`title: ${await page.title()}`);
  log('switched to English');
  await expectAttr(page.locator('#search'), 'placeholder', en['search.placeholder']);
  await expectText(page.locator('#label-filter option').first(), en['labels.all'], true);
  // Reports in English: Gregorian dates, Latin digits, the chart from the left.
  await page.locator('#reports-open').click();
  await expectText(page.locator('#reports-span'), /^From .*20\d\d to .*20\d\d$/);
  await expectText(page.locator('#reports-tiles [data-figure=resolved] .tile-value'), String(REPORT.resolved), true);
  await expectText(page.locator('#reports-agents tbody tr', { hasText: SARA }).locator('[data-column=first_response_p50]'), /^\d+ (s|min)/);
  await until('the chart reads from the left', () =>
    page.evaluate(() => {
      const x = (s) => Number(document.querySelector(`#reports-chart ${s}`).getAttribute('x'));
      return (x('.bar.p50') < x('.bar.p90') && x('text.tick') < x('.bar.p50')) || `${x('.bar.p50')} ${x('.bar.p90')} ${x('text.tick')}`;
    }),
  );
  await page.keyboard.press('Escape');
  await expectHidden(page, '#reports-dialog');

  await page.locator('#tab-unassigned').click();
  await step('english-ticket');
  const t4 = page.locator('.ticket-item', { hasText: 'Refund still missing' });
  await t4.waitFor();
  await expectText(page.locator('#count-unassigned'), '1', true);
  await expectText(t4.locator('.when'), 'waiting under a minute', true);
  await t4.click();
  await page.locator('#claim').click();
  await expectText(page.locator('#ticket-status'), 'Assigned to you', true);
  await step('claimed-en');
  await bubble('شماره پیگیری TX-77120 است.').waitFor();
  await bubble('Thanks!').waitFor();
  await expectDirection(page, '#ticket-subject', 'ltr');
  await expectStyle(bubble('سلام، هنوز پولم برنگشته'), 'direction', 'rtl');
  await expectMixedRightToLeft(page, 'شماره پیگیری TX-77120 است.');
  await expectStyle(bubble('Thanks!'), 'direction', 'ltr');
  await expectIsolated(page, '#user-name');
  await expectText(page.locator('#user-name'), 'مریم کریمی', true);
  const time = await page.locator('#events .message time').last().getAttribute('title');
  if (!/20\d\d/.test(time) || /[۰-۹]/.test(time)) fail(`an English date: ${time}`);
  // The customer panel in English, with her tickets from the Persian half, fetched again.
  await expectText(page.locator('#customer-device'), 'android 14');
  await expectText(page.locator('#customer-device'), 'App version');
  await expectText(page.locator('#customer-tickets'), 'سؤال درباره اشتراک');
  await expectText(page.locator('#customer-tickets'), 'پرداخت ناموفق بود');
  await expectNoNumber(page);

  // The reply box takes its direction from what is typed in it.
  await reply.fill('سلام');
  await expectStyle(reply, 'direction', 'rtl');
  await reply.fill('Hello');
  await expectStyle(reply, 'direction', 'ltr');
  await reply.fill('');
  // An English canned reply, found by a word of its text.
  await addCannedReply(page, 'Refund', CANNED_EN);
  await reply.focus();
  await reply.pressSequentially('Hi. /working');
  await expectText(page.locator('#canned-options [aria-selected=true]'), 'Refund');
  await page.keyboard.press('Tab');
  await expectValue(reply, `Hi. ${CANNED_EN}`);
  await page.keyboard.press('Enter');
  await expectText(mine.last(), CANNED_EN);

  // Unread in the title, in English digits; now with a notification and a sound.
  await page.locator('#tab-all').click();
  await page.locator('.ticket-item', { hasText: 'Wrong name on my receipt' }).click();
  await expectText(page.locator('#customer-no-device'), en['customer.no_device'], true);
  // Ali's rating, read from the hub after the reload.
  await expectRating(page, en, '4', en['agent.you']);
  await step('user-writes-en');
  await expectTitle(page, '(1) Anapars support');
  const heard = await page.evaluate(() => window.__alerts);
  if (!heard.sounds || !heard.notifications.some((n) => n.title.includes('مریم کریمی') && n.body === 'Refund still missing')) {
    fail(`no notification or sound: ${JSON.stringify(heard)}`);
  }
  await page.locator('.ticket-item', { hasText: 'Refund still missing' }).click();
  await expectTitle(page, 'Anapars support');

  await mentioned(page);

  // Phone size in English.
  await page.setViewportSize(PHONE);
  await expectPhoneLayout(page, 'the conversation, English');
  await page.locator('#back').click();
  await expectNoOverflow(page, 'the list, English');
  await page.setViewportSize(DESKTOP);

  // Sign out: the session is gone, also after a reload; the language stays.
  await page.locator('#signout').click();
  await page.locator('#email').waitFor();
  await expectText(page.locator('#signin-button'), 'Sign in', true);
  await page.reload();
  await page.locator('#email').waitFor();
  await expectAttr(page.locator('html'), 'lang', 'en');
  const stored = await page.evaluate(() => Object.keys(sessionStorage));
  if (stored.length) fail(`sessionStorage after sign-out: ${stored}`);

  const leaked = urls.filter((u) => u.includes('agt_') || u.includes(PASSWORD));
  if (leaked.length) fail(`a secret in a URL: ${leaked}`);
  if (problems.length) fail(`browser errors:\n${problems.join('\n')}`);
  await browser.close();
  // stdin stays open (the Rust side holds it): leave explicitly once the last line is out.
  process.stdout.write('DONE\n', () => process.exit(0));
}

/** Files both ways in the ticket on screen: the user's picture, the agent's picture and text file
 *  (by the button, a paste and a drop), and files refused by the hub and by the console itself. */
/** The SDK's IndexedDB outbox store in a real browser: entries written by one store are read by
 *  another (as after an app restart), in order, and a deleted one stays deleted. */
async function indexedDbOutbox(page) {
  const result = await page.evaluate(async () => {
    const { IndexedDbOutboxStore, Outbox } = await import('/console/hub-client.js');
    const name = `outbox-test-${Date.now()}`;
    const first = new Outbox(new IndexedDbOutboxStore(name));
    const a = await first.send({ ticket_id: '019b0000-0000-7000-8000-000000000001' }, 'یک', undefined, { note: 'first' });
    const b = await first.send({ ticket_id: '019b0000-0000-7000-8000-000000000001' }, 'two');
    const c = await first.open('subject', 'three');
    await first.remove(b.client_msg_id);
    const again = new Outbox(new IndexedDbOutboxStore(name));
    await again.load();
    const list = again.list();
    return {
      ids: list.map((e) => e.client_msg_id),
      want: [a.client_msg_id, c.client_msg_id],
      bodies: list.map((e) => e.body),
      meta: list[0] && list[0].meta,
    };
  });
  if (JSON.stringify(result.ids) !== JSON.stringify(result.want)) fail(`IndexedDB outbox: ${JSON.stringify(result)}`);
  if (JSON.stringify(result.bodies) !== JSON.stringify(['یک', 'three']) || !result.meta || result.meta.note !== 'first') {
    fail(`IndexedDB outbox kept ${JSON.stringify(result)}`);
  }
  log('the SDK outbox in IndexedDB survives a new store');
}

async function attachments(page, urls) {
  const subject = await page.locator('#ticket-subject').textContent();
  const theirs = page.locator('#events .message.user').last();
  const thumb = (message) => message.locator('.thumb img');

  // The user sends a picture: its thumbnail is fetched with the agent's token and shown through a
  // blob: URL; a click opens it full size, Escape or a click closes it.
  await step('user-sends-image');
  await expectText(theirs, 'این هم رسید');
  await expectImage(thumb(theirs));
  await expectAttr(theirs.locator('.thumb'), 'aria-label', `نمایش \u2068رسید پرداخت.png\u2069 در اندازهٔ کامل`);
  await theirs.locator('.thumb').click();
  await expectVisible(page, '#viewer');
  await expectImage(page.locator('#viewer-image'), RECEIPT_WIDTH);
  const full = await page.locator('#viewer-image').getAttribute('src');
  await page.keyboard.press('Escape');
  await expectHidden(page, '#viewer');
  await expectGone(page, full);
  await theirs.locator('.thumb').click();
  await expectImage(page.locator('#viewer-image'), RECEIPT_WIDTH);
  await page.locator('#viewer').click();
  await expectHidden(page, '#viewer');

  // A thumbnail's blob: URL lives while it is on screen: another ticket gives it back, coming back
  // fetches it again.
  const shown = await thumb(theirs).getAttribute('src');
  if ((await loads(page, shown)) !== true) fail(`the thumbnail on screen does not load: ${shown}`);
  await page.locator('#tab-all').click();
  await page.locator('.ticket-item', { hasText: 'Wrong name on my receipt' }).click();
  await expectText(page.locator('#ticket-subject'), 'Wrong name on my receipt', true);
  await expectGone(page, shown);
  await page.locator('.ticket-item', { hasText: subject }).click();
  await expectText(page.locator('#ticket-subject'), subject, true);
  await expectImage(thumb(page.locator('#events .message.user').last()));

  // The agent attaches a picture with the button, a text file by pasting it and another by dropping
  // it on the conversation; each uploads at once, with its progress. One is taken out again.
  await page.locator('#attach-input').setInputFiles({ name: 'نمودار خطا.png', mimeType: 'image/png', buffer: await readFile(CHART_PNG) });
  await page.evaluate((text) => {
    const data = new DataTransfer();
    data.items.add(new File([text], 'یادداشت پرداخت.txt', { type: 'text/plain' }));
    const paste = new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true });
    document.getElementById('reply').dispatchEvent(paste);
  }, NOTE_TEXT);
  await page.evaluate(() => {
    const data = new DataTransfer();
    data.items.add(new File(['not this one'], 'extra.txt', { type: 'text/plain' }));
    const target = document.getElementById('messages');
    for (const type of ['dragenter', 'dragover', 'drop']) {
      target.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
    }
  });
  const files = page.locator('#drafts .draft-file');
  await expectCount(files, 3);
  await expectCount(page.locator('#drafts .draft-file[data-state=stored]'), 3);
  await until('every progress bar full', () =>
    page.evaluate(() => [...document.querySelectorAll('#drafts progress')].every((p) => p.value === p.max && p.max > 1)),
  );
  const note = files.filter({ hasText: 'یادداشت پرداخت.txt' });
  const noteBytes = Buffer.byteLength(NOTE_TEXT);
  await expectText(note.locator('.size'), `${faDigits(noteBytes)} بایت`, true);
  await expectText(note.locator('.status'), fa['attach.stored'], true);
  await expectStyle(note.locator('.name'), 'direction', 'rtl');
  if (await page.locator('#ticket').evaluate((e) => e.classList.contains('dropping'))) fail('the drop hint stayed');
  await files.filter({ hasText: 'extra.txt' }).locator('button.remove').click();
  await expectCount(files, 2);
  const reply = page.locator('#reply');
  await reply.fill('رسید و یادداشت را فرستادم');
  await page.keyboard.press('Enter');
  await expectCount(files, 0);
  await expectHidden(page, '#drafts');
  const mine = page.locator('#events .message.mine').last();
  await expectText(mine, 'رسید و یادداشت را فرستادم');
  await step('agent-sent-files');
  // The agent's own message shows the picture and the text file, which downloads under its name.
  await expectImage(thumb(mine));
  const chip = mine.locator('.file-chip');
  await expectText(chip.locator('.name'), 'یادداشت پرداخت.txt', true);
  await expectText(chip.locator('.size'), `${faDigits(noteBytes)} بایت`, true);
  const [download] = await Promise.all([page.waitForEvent('download'), chip.click()]);
  if (download.suggestedFilename() !== 'یادداشت پرداخت.txt') fail(`downloaded as ${download.suggestedFilename()}`);
  const saved = await readFile(await download.path(), 'utf8');
  if (saved !== NOTE_TEXT) fail(`the downloaded file holds ${JSON.stringify(saved)}`);

  // An HTML page named .png: the hub refuses it by its bytes, and the agent reads why, in Persian.
  if (problems.length) fail(`browser errors before the refused upload: ${problems}`);
  await page.locator('#attach-input').setInputFiles({
    name: 'فاکتور.png',
    mimeType: 'image/png',
    buffer: Buffer.from('<!doctype html><html><body><script>alert(1)</script></body></html>'),
  });
  const refused = files.filter({ hasText: 'فاکتور.png' });
  await expectAttr(refused, 'data-state', 'failed');
  await expectText(refused.locator('.status'), fa['attach.error.unsupported_media'], true);
  await expectText(refused.locator('.status'), 'این نوع فایل پذیرفته نمی‌شود');
  // Chromium logs the refused request as an error; nothing else is expected.
  if (problems.length !== 1 || !problems[0].includes('415')) fail(`browser errors: ${problems}`);
  problems.length = 0;
  // Over 10 MiB: refused by the console itself, never sent.
  const uploads = () => urls.filter((u) => u.includes('/v1/attachments?')).length;
  const sentBefore = uploads();
  await page.locator('#attach-input').setInputFiles({ name: 'big.pdf', mimeType: 'application/pdf', buffer: Buffer.alloc(MAX_BYTES + 1) });
  const big = files.filter({ hasText: 'big.pdf' });
  await expectText(big.locator('.status'), 'حجم این فایل بیش از ۱۰ مگابایت است.', true);
  await expectText(big.locator('.size'), `${faDigits('10')} مگابایت`, true);
  if (uploads() !== sentBefore) fail('a file over the limit was sent');
  if (!(await page.locator('#send').isDisabled())) fail('Send is enabled with only refused files');
  await refused.locator('button.remove').click();
  await big.locator('button.remove').click();
  await expectHidden(page, '#drafts');
  log('attachments both ways');
}

/** A private note on the ticket on screen, naming the colleague: the composer's toggle and its
 *  warning, the @mention picker with Persian and Latin names, the note among the messages. The
 *  users' side then checks that the user never received it and that their export holds it. */
async function privateNote(page) {
  const reply = page.locator('#reply');
  // The console says that the agent is typing at most every 2.5 s: let the last one (the reply)
  // pass, so that one sent while the note is written would reach the user and be seen.
  await new Promise((r) => setTimeout(r, 2600));
  await expectHidden(page, '#note-warning');
  await expectText(page.locator('.compose-mode .mode:not(.mode-note)'), 'پیام به مشتری', true);
  await expectText(page.locator('.compose-mode .mode-note'), 'یادداشت خصوصی', true);
  await page.locator('#mode-note').check();
  await expectVisible(page, '#note-warning');
  await expectText(page.locator('#note-warning'), fa['note.warning'], true);
  await expectText(page.locator('#note-warning'), 'جزو اطلاعات مشتری‌اند و در خروجی اطلاعاتش می‌آیند');
  await expectText(page.locator('#send'), fa['composer.add_note'], true);
  await expectAttr(reply, 'placeholder', fa['composer.placeholder_note']);
  await expectText(page.locator('#composer-hint'), fa['composer.hint_note'], true);
  if (!(await page.locator('#attach').isDisabled())) fail('files can be attached to a note');

  // `@` offers the other agents, Persian and Latin names alike (not the agent herself); a few
  // letters choose one; Enter puts the name in.
  await reply.focus();
  await reply.pressSequentially('@');
  await expectVisible(page, '#mention-picker');
  const options = page.locator('#mention-options [role=option]');
  await expectCount(options, 2);
  await expectText(page.locator('#mention-options'), 'Reza');
  await expectText(page.locator('#mention-options'), NASRIN);
  await reply.pressSequentially('نس');
  await expectCount(options, 1);
  await expectText(page.locator('#mention-options [aria-selected=true]'), NASRIN, true);
  // Still open a moment later: the focus the toggle took and gave back does not close it.
  await new Promise((r) => setTimeout(r, 300));
  await expectVisible(page, '#mention-picker');
  await page.keyboard.press('Enter');
  await expectValue(reply, `@${NASRIN} `);
  await expectHidden(page, '#mention-picker');
  await reply.pressSequentially(NOTE_FA);
  await expectHidden(page, '#mention-picker');
  await expectHidden(page, '#canned-picker');
  await page.keyboard.press('Enter');
  await expectValue(reply, '');

  // The note among the messages: its own look, the words and the lock, the writer and the time,
  // its text in its own direction with the name picked out.
  const note = page.locator('#events .note', { hasText: NOTE_FA });
  await note.waitFor();
  await expectCount(page.locator('#events .note'), 1);
  await expectCount(page.locator('#outbox .note'), 0);
  await expectText(note.locator('.note-label'), fa['note.label'], true);
  await expectVisible(page, '#events .note .note-label svg');
  await expectText(note.locator('.author'), fa['message.you'], true);
  await expectText(note.locator('.body'), `@${NASRIN} ${NOTE_FA}`, true);
  await expectText(note.locator('.mention'), `@${NASRIN}`, true);
  await expectStyle(note.locator('.body'), 'direction', 'rtl');
  await expectPersianDigits(note.locator('time'));
  await expectSolarHijri(note.locator('time'), 'title');
  const background = (locator) => locator.evaluate((e) => getComputedStyle(e).backgroundColor);
  if ((await background(note)) === (await background(page.locator('#events .message.mine').last()))) fail('a note looks like a message');
  await step('note-written');

  // Back to messages: the warning goes, Send says send again.
  await page.locator('#mode-message').check();
  await expectHidden(page, '#note-warning');
  await expectText(page.locator('#send'), fa['composer.send'], true);
  await expectAttr(reply, 'placeholder', fa['composer.placeholder']);
  log('a private note written');
}

/** The colleague names this agent in a note on a ticket they are not looking at: the same alerts
 *  as for a message (title, notification, sound), the ticket marked in the list; opening it shows
 *  the note as addressed to them. */
/**
 * Labels and search, on the first ticket (claimed, with the user's «کارتم دو بار شارژ شد!»). The
 * agent is a supervisor: they create a label in the dialog, where the same name typed with Arabic
 * letters is refused; put it on the ticket (tests/console.rs sees it there through `ticket.list`);
 * the list filters by it. Then the agent, on another ticket, searches for a word typed with the
 * Arabic kaf and finds the user's message, its word marked as the user wrote it, and opens it; a
 * phone number is refused with its own sentence.
 */
async function labelsAndSearch(page) {
  await expectText(page.locator('#labels-manage'), fa['labels.manage'], true);
  await page.locator('#labels-manage').click();
  await expectVisible(page, '#labels-dialog');
  await expectText(page.locator('#labels-empty'), fa['labels.none'], true);
  await page.locator('#label-new-name').fill(LABEL);
  await page.locator('#label-new-color').fill('#aa3300');
  await page.locator('#label-create').click();
  await expectCount(page.locator('#labels-list li'), 1);
  await expectValue(page.locator('#labels-list .label-name'), LABEL);
  await expectAttr(page.locator('#labels-list .label-name'), 'dir', 'auto');
  await expectStyle(page.locator('#labels-list .chip'), 'background-color', 'rgb(170, 51, 0)');
  await expectValue(page.locator('#label-new-name'), '');
  await page.locator('#label-new-name').fill(LABEL_ARABIC);
  await page.locator('#label-create').click();
  await expectText(page.locator('#labels-error'), fa['labels.error.conflict'], true);
  await expectText(page.locator('#labels-error'), 'برچسبی با این نام هست', false);
  await expectCount(page.locator('#labels-list li'), 1);
  // A second label: renamed and recoloured in its row, then deleted (after the console asks).
  await page.locator('#label-new-name').fill('موقت');
  await page.locator('#label-create').click();
  await expectCount(page.locator('#labels-list li'), 2);
  await expectText(page.locator('#labels-error'), '', true);
  const second = page.locator('#labels-list li').nth(1);
  await second.locator('.label-name').fill('فوری');
  await second.locator('.label-color').fill('#ffd166');
  await second.locator('.label-save').click();
  await expectText(second.locator('.chip'), 'فوری', true);
  await expectStyle(second.locator('.chip'), 'background-color', 'rgb(255, 209, 102)');
  await expectStyle(second.locator('.chip'), 'color', 'rgb(0, 0, 0)');
  await expectText(page.locator('#label-filter'), 'فوری');
  page.once('dialog', (d) => (d.message().includes('فوری') ? d.accept() : d.dismiss()));
  await second.locator('.label-delete').click();
  await expectCount(page.locator('#labels-list li'), 1);
  await expectValue(page.locator('#labels-list .label-name'), LABEL);
  await page.locator('#labels-close').click();
  await expectHidden(page, '#labels-dialog');

  // On the ticket: a chip in the ticket view and in the list, the name in its own direction.
  await page.locator('#label-add').selectOption({ label: LABEL });
  const chip = page.locator('#ticket-labels .chip');
  await expectText(chip, LABEL);
  await expectAttr(chip.locator('.chip-name'), 'dir', 'auto');
  await expectDirection(page, '#ticket-labels .chip-name', 'rtl');
  await expectAttr(chip.locator('.chip-remove'), 'aria-label', /برداشتن برچسب/);
  await expectHidden(page, '#label-add');
  await page.locator('#tab-all').click();
  const listed = page.locator('.ticket-item', { hasText: 'پرداخت ناموفق بود' });
  await expectText(listed.locator('.chip'), LABEL, true);
  // Taken off with its button, put on again.
  await chip.locator('.chip-remove').click();
  await expectCount(chip, 0);
  await expectCount(listed.locator('.chip'), 0);
  await page.locator('#label-add').selectOption({ label: LABEL });
  await expectText(chip, LABEL);
  await step('labelled');
  // The other agent took it off (tests/console.rs): gone here at once, then put on again.
  await expectCount(chip, 0);
  await expectCount(listed.locator('.chip'), 0);
  await page.locator('#label-add').selectOption({ label: LABEL });
  await expectText(listed.locator('.chip'), LABEL, true);

  // The list filtered by the label: only that ticket; the whole list again without.
  await page.locator('#label-filter').selectOption({ label: LABEL });
  await expectCount(page.locator('.ticket-item'), 1);
  await expectText(page.locator('.ticket-item'), 'پرداخت ناموفق بود');
  await expectText(page.locator('#count-all'), faDigits(1), true);
  await page.locator('#label-filter').selectOption('');
  await expectCount(page.locator('.ticket-item', { hasText: 'Wrong name on my receipt' }), 1);
  await page.locator('#tab-unassigned').click();

  // Search, from another ticket: the word typed with the Arabic kaf finds the user's «کارتم».
  await page.locator('.ticket-item', { hasText: 'Wrong name on my receipt' }).click();
  await expectText(page.locator('#ticket-subject'), 'Wrong name on my receipt', true);
  const search = page.locator('#search');
  await expectAttr(search, 'placeholder', 'جستجو در گفت‌وگوها');
  await search.pressSequentially(SEARCH_ARABIC);
  await expectVisible(page, '#search-results');
  await expectHidden(page, '#ticket-list');
  const hit = page.locator('.search-result', { has: page.locator('mark', { hasText: 'کارتم' }) });
  await hit.waitFor();
  await expectText(hit.locator('mark').first(), 'کارتم', true);
  await expectText(hit.locator('.snippet'), 'کارتم دو بار شارژ شد!');
  await expectAttr(hit.locator('.snippet'), 'dir', 'auto');
  await expectDirection(page, '.search-result:has(mark) .snippet >> nth=0', 'rtl');
  await expectText(hit.locator('.subject'), 'پرداخت ناموفق بود', true);
  await expectText(hit.locator('.chip'), LABEL, true);
  await expectText(page.locator('#search-state'), /نتیجه/);
  // The filters: no resolved ticket says so; the label keeps it.
  await page.locator('#search-status').selectOption('resolved');
  await expectText(page.locator('#search-state'), fa['search.none'], true);
  await expectCount(page.locator('.search-result'), 0);
  await page.locator('#search-status').selectOption('');
  await page.locator('#search-label').selectOption({ label: LABEL });
  await hit.waitFor();
  await page.locator('#search-label').selectOption('');
  await hit.waitFor();
  await hit.click();
  await expectText(page.locator('#ticket-subject'), 'پرداخت ناموفق بود', true);
  await expectText(page.locator('#events'), 'کارتم دو بار شارژ شد!');
  await expectAttr(page.locator('.search-result[aria-current=true]').first(), 'data-ticket', /./);

  // A phone number is no query, in Persian digits as well.
  await search.fill('۰۹۱۲ ۱۲۳ ۴۵۶۷');
  await expectText(page.locator('#search-state'), fa['search.phone'], true);
  await expectCount(page.locator('.search-result'), 0);
  await search.press('Escape');
  await expectHidden(page, '#search-results');
  await expectVisible(page, '#ticket-list');
  await expectValue(search, '');
}

async function mentioned(page) {
  // One sound at most every 2 s: let the last one (the user's message) pass.
  await new Promise((r) => setTimeout(r, 2100));
  const before = await page.evaluate(() => window.__alerts);
  await step('colleague-mentions');
  await expectTitle(page, '(1) Anapars support');
  const title = en['notify.note'].replace('{name}', `\u2068${NASRIN}\u2069`);
  await until('a notification and a sound for the note', async () => {
    const now = await page.evaluate(() => window.__alerts);
    const shown = now.notifications.slice(before.notifications.length);
    return (now.sounds > before.sounds && shown.some((n) => n.title === title && n.body === 'پرداخت ناموفق بود')) || JSON.stringify(now);
  });
  await expectText(page.locator('#announcer'), 'A note for you from');
  await expectText(page.locator('#announcer'), 'پرداخت ناموفق بود');
  await page.locator('#tab-all').click();
  const noted = page.locator('.ticket-item', { hasText: 'پرداخت ناموفق بود' });
  await expectText(noted.locator('.mention-badge'), '@', true);
  await expectText(noted.locator('.visually-hidden'), en['list.mentioned']);
  await noted.click();
  const forMe = page.locator('#events .note.for-me');
  await expectText(forMe, MENTION_TEXT);
  await expectText(forMe.locator('.note-for'), en['note.for_you'], true);
  await expectText(forMe.locator('.note-label'), en['note.label'], true);
  await expectText(forMe.locator('.author'), NASRIN, true);
  await expectText(forMe.locator('.mention'), `@${SARA}`, true);
  await expectStyle(forMe.locator('.body'), 'direction', 'rtl');
  await expectIsolated(page, '#events .note.for-me .author');
  if (/[۰-۹]/.test(await forMe.locator('time').textContent())) fail('Persian digits in English');
  // The notes of the Persian half, under English words, in their places.
  await expectText(page.locator('#events .note', { hasText: NOTE_FA }).locator('.author'), 'You', true);
  await expectCount(page.locator('#events .note'), 3);
  await expectTitle(page, 'Anapars support');
  await expectCount(page.locator('.mention-badge'), 0);
  log('a note for the agent alerted them');
}

/** The rating Ali gave (4 of 5, with a Persian comment) in the ticket view, in `lang`'s words. */
async function expectRating(page, lang, four, you) {
  const rating = page.locator('#rating-list .rating');
  await expectCount(rating, 1);
  await expectText(rating.locator('.stars'), '★★★★☆', true);
  await expectAttr(rating.locator('.stars'), 'aria-hidden', 'true');
  const spoken = lang['rating.score'].replace('{n}', four).replace('{max}', four === '4' ? '5' : faDigits(5));
  await expectText(rating.locator('.score .visually-hidden'), spoken, true);
  await expectText(rating.locator('.rating-by'), lang['rating.resolved_by'].replace('{agent}', you), true);
  await expectText(rating.locator('.rating-comment'), RATING_COMMENT, true);
  await expectAttr(rating.locator('.rating-comment'), 'dir', 'auto');
  await expectStyle(rating.locator('.rating-comment'), 'direction', 'rtl');
  await expectAttr(rating.locator('time'), 'datetime', /^20\d\d-/);
}

/**
 * The reports page in Persian: this run's figures (4 tickets opened: Maryam's earlier one and the
 * three of the first step; 2 resolved: Maryam's earlier one by Reza and Ali's by this agent), this
 * agent's first response, the chart, the CSV file, and a range typed in Solar Hijri dates.
 */
async function reports(page) {
  // Another agent, no supervisor, is refused (tests/console.rs).
  await step('reports');
  await expectText(page.locator('#reports-open'), fa['reports.open'], true);
  await page.locator('#reports-open').click();
  await expectVisible(page, '#reports-dialog');
  await expectValue(page.locator('#reports-preset'), 'week');
  const tile = (name) => page.locator(`#reports-tiles [data-figure=${name}] .tile-value`);
  await expectText(tile('opened'), faDigits(REPORT.opened), true);
  await expectText(tile('resolved'), faDigits(REPORT.resolved), true);
  await expectSolarHijri(page.locator('#reports-span'));
  await expectPersianDigits(page.locator('#reports-tiles [data-figure=first_response] .tile-more'));
  await expectText(tile('rating_average'), fa['rating.score'].replace('{n}', '۴٫۰').replace('{max}', '۵'), true);
  // Two resolutions asked for a rating (Reza's of Maryam's earlier ticket, and Ali's), one rated.
  await expectText(tile('response_rate'), '۵۰٪', true);
  // This agent's row: a first response measured, in Persian words and digits.
  const row = page.locator('#reports-agents tbody tr', { hasText: SARA });
  const first = row.locator('[data-column=first_response_p50]');
  await expectText(first, /ثانیه|دقیقه/);
  await expectPersianDigits(first);
  await expectAttr(row.locator('.name'), 'dir', 'auto');
  // The chart: a group of two bars per agent with a first response, from the right.
  const groups = page.locator('#reports-chart svg .bar-group');
  await expectCount(groups, REPORT.chartGroups);
  await expectCount(page.locator('#reports-chart svg .bar-group .bar'), 2 * REPORT.chartGroups);
  await expectCount(page.locator(`#reports-chart .bar-group[data-agent="${await row.getAttribute('data-id')}"]`), 1);
  await until('the chart reads from the right', () =>
    page.evaluate(() => {
      const p50 = document.querySelector('#reports-chart .bar.p50');
      const p90 = document.querySelector('#reports-chart .bar.p90');
      const tick = document.querySelector('#reports-chart text.tick');
      const x = (e) => Number(e.getAttribute('x'));
      return (x(p50) > x(p90) && x(tick) > x(p50)) || `${x(p50)} ${x(p90)} ${x(tick)}`;
    }),
  );
  await expectPersianDigits(page.locator('#reports-chart text.tick').last());
  // The CSV file, saved under the hub's name.
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#reports-csv').click()]);
  if (!/\.csv$/.test(download.suggestedFilename())) fail(`the CSV file's name: ${download.suggestedFilename()}`);
  const csv = (await readFile(await download.path(), 'utf8')).split(/\r?\n/);
  // A byte order mark first, so that spreadsheets read Persian names right.
  if (csv[0] !== `\ufeff${REPORT.csvHeader}`) fail(`the CSV file's first line: ${JSON.stringify(csv[0])}`);
  if (!csv[1].startsWith(`overall,,,${REPORT.opened},`)) fail(`the CSV file's overall row: ${csv[1]}`);
  await expectText(page.locator('#announcer'), fa['reports.csv_saved'], true);
  // A range of days typed: the dates shown in the Solar Hijri calendar, today typed in
  // Arabic-Indic digits; the last day before the first is refused here.
  await page.locator('#reports-preset').selectOption('custom');
  await expectValue(page.locator('#reports-to'), /^۱۴[۰-۹]{2}\/[۰-۹]{2}\/[۰-۹]{2}$/);
  const today = await page.locator('#reports-to').inputValue();
  const arabicIndic = today.replace(/[۰-۹]/g, (d) => '٠١٢٣٤٥٦٧٨٩'['۰۱۲۳۴۵۶۷۸۹'.indexOf(d)]);
  await page.locator('#reports-from').fill('۱۴۹۹/۰۱/۰۱');
  await page.locator('#reports-apply').click();
  await expectText(page.locator('#reports-error'), fa['reports.error.order'], true);
  await page.locator('#reports-from').fill(arabicIndic);
  await page.locator('#reports-apply').click();
  await expectText(page.locator('#reports-error'), '', true);
  await expectText(tile('opened'), faDigits(REPORT.opened), true);
  await page.locator('#reports-close').click();
  await expectHidden(page, '#reports-dialog');
  log('reports read in Persian');
}

/** Adds a canned reply in its dialog, from the link under the reply box. */
async function addCannedReply(page, title, body) {
  await page.locator('#canned-manage').click();
  await page.locator('#canned-new-title').fill(title);
  await page.locator('#canned-new-body').fill(body);
  await page.locator('#canned-add').click();
  await expectText(page.locator('#canned-list'), title);
  await page.locator('#canned-close').click();
}

// --- checks ------------------------------------------------------------------------------------

/** A mixed Persian message laid out right to left: it starts at the right and ends (its final
 *  period) at the far left, while its Latin reference reads left to right inside. */
async function expectMixedRightToLeft(page, text) {
  await until(`"${text}" laid out right to left`, () =>
    page.evaluate((text) => {
      const body = [...document.querySelectorAll('#events .message .body')].find((b) => b.textContent === text);
      if (!body) return 'no such bubble';
      const node = body.firstChild;
      const at = (i) => {
        const r = document.createRange();
        r.setStart(node, i);
        r.setEnd(node, i + 1);
        return r.getBoundingClientRect();
      };
      const latin = text.search(/[A-Z]/);
      const digits = text.search(/\d/);
      const seen = {
        direction: getComputedStyle(body).direction,
        first: at(0).left,
        last: at(text.length - 1).left,
        latin: [at(latin).left, at(latin + 1).left],
        digits: [at(digits).left, at(digits + 1).left],
      };
      return (
        (seen.direction === 'rtl' && seen.last < seen.first && seen.latin[0] < seen.latin[1] && seen.digits[0] < seen.digits[1]) ||
        JSON.stringify(seen)
      );
    }, text),
  );
}

/** An image shown through a blob: URL, loaded (of `width` pixels, when given). */
async function expectImage(locator, width) {
  await until(`a loaded blob: image in ${locator}`, () =>
    locator.evaluate(
      (img, width) =>
        (img.src.startsWith('blob:') && img.complete && img.naturalWidth > 0 && (!width || img.naturalWidth === width)) ||
        `${img.src.slice(0, 12)} ${img.complete} ${img.naturalWidth}`,
      width,
    ),
  );
}

/** Whether a blob: URL can still be shown: true, or why not. */
function loads(page, url) {
  return page.evaluate(
    (url) =>
      new Promise((resolve) => {
        const img = new Image();
        img.onload = () => resolve(true);
        img.onerror = () => resolve('error');
        img.src = url;
      }),
    url,
  );
}

/** A blob: URL the page gave back: it shows nothing any more. */
async function expectGone(page, url) {
  if (!url || !url.startsWith('blob:')) fail(`not a blob: URL: ${url}`);
  probed.add(url);
  await until(`${url} revoked`, async () => (await loads(page, url)) === 'error' || 'still loads');
}

async function expectDirection(page, selector, direction) {
  await expectStyle(page.locator(selector), 'direction', direction);
}

/** A name inside a line of the interface is isolated (`<bdi>`): its direction cannot reorder the
 *  sentence around it. */
async function expectIsolated(page, selector) {
  const e = page.locator(selector).first();
  const tag = await e.evaluate((x) => x.tagName.toLowerCase());
  if (tag !== 'bdi') fail(`${selector} is a <${tag}>, not a <bdi>`);
  await expectStyle(e, 'unicode-bidi', 'isolate');
}

async function expectStyle(locator, property, expected) {
  await until(`${property}: ${expected} on ${locator}`, async () => {
    const v = await locator.evaluate((x, p) => getComputedStyle(x).getPropertyValue(p), property);
    return v === expected || v;
  });
}

/** A date in the Solar Hijri calendar with Persian digits: a year 14xx and a Persian month. */
async function expectSolarHijri(locator, attribute) {
  await until(`a Solar Hijri date in ${locator}`, async () => {
    const text = attribute ? await locator.getAttribute(attribute) : await locator.textContent();
    return (/۱۴[۰-۹][۰-۹]/.test(text) && PERSIAN_MONTHS.test(text) && !/\d/.test(text)) || text;
  });
}

async function expectPersianDigits(locator) {
  await until(`Persian digits in ${locator}`, async () => {
    const text = await locator.textContent();
    return (/[۰-۹]/.test(text) && !/\d/.test(text)) || text;
  });
}

/** Neither the users' numbers nor their Persian-digit forms anywhere in the page's text or
 *  attributes. */
async function expectNoNumber(page) {
  const html = await page.evaluate(() => document.documentElement.outerHTML + document.body.innerText);
  for (const n of HIDDEN) {
    if (html.includes(n) || html.includes(faDigits(n))) fail(`a user's number is on the page`);
  }
}

/** At 390x844: the conversation alone, at least half the screen high, nothing wider than the
 *  screen. */
async function expectPhoneLayout(page, what) {
  await expectHidden(page, '.queue');
  await expectVisible(page, '#messages');
  await until(`${what}: the conversation fills at least half of the screen`, async () => {
    const box = await page.locator('#messages').boundingBox();
    return (box && box.height >= PHONE.height / 2 && box.width <= PHONE.width) || JSON.stringify(box);
  });
  await expectNoOverflow(page, what);
}

async function expectNoOverflow(page, what) {
  await until(`${what}: nothing wider than the screen`, () =>
    page.evaluate((width) => {
      const doc = document.documentElement;
      const wide = [...document.querySelectorAll('body *')]
        .filter((e) => e.getClientRects().length && !e.closest('.visually-hidden'))
        .map((e) => [e, e.getBoundingClientRect()])
        .filter(([, r]) => r.width > 0 && (r.right > width + 1 || r.left < -1))
        .map(([e, r]) => `${e.tagName}#${e.id}.${e.className} ${Math.round(r.left)}..${Math.round(r.right)}`);
      return (doc.scrollWidth <= width && document.body.scrollWidth <= width && !wide.length) || `${doc.scrollWidth}: ${wide.slice(0, 5)}`;
    }, PHONE.width),
  );
}

// --- waiting for the page ------------------------------------------------------------------------
async function online(page, timeout) {
  await expectAttr(page.locator('#connection'), 'data-state', 'online', timeout);
}

async function until(what, check, timeout = WAIT_MS) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last === true) return;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > end) await fail(`${what} (last seen: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function matches(actual, expected, exact) {
  if (expected instanceof RegExp) return expected.test(actual);
  return exact ? actual.trim() === expected : actual.includes(expected);
}

function escape(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function expectText(locator, expected, exact = false, timeout = WAIT_MS) {
  let seen = '';
  await until(
    `text ${expected} in ${locator}`,
    async () => {
      seen = (await locator.textContent({ timeout: 1000 })) ?? '';
      return matches(seen, expected, exact || expected === '') || seen;
    },
    timeout,
  );
}

async function expectValue(locator, expected) {
  await until(`value ${expected} in ${locator}`, async () => {
    const v = await locator.inputValue({ timeout: 1000 });
    return (expected instanceof RegExp ? expected.test(v) : v === expected) || v;
  });
}

async function expectTitle(page, expected) {
  await until(`title ${expected}`, async () => {
    const title = await page.title();
    return title === expected || title;
  });
}

async function expectAttr(locator, name, expected, timeout = WAIT_MS) {
  await until(
    `${name}=${expected} on ${locator}`,
    async () => {
      const v = await locator.getAttribute(name, { timeout: 1000 });
      return (v !== null && matches(v, expected, true)) || v;
    },
    timeout,
  );
}

async function expectFocus(page, selector, text) {
  await until(`focus on ${selector} "${text}"`, () =>
    page.evaluate(
      ([selector, text]) => {
        const e = document.activeElement;
        return (!!e && e.matches(selector) && e.textContent.includes(text)) || (e && e.textContent);
      },
      [selector, text],
    ),
  );
}

async function expectVisible(page, selector) {
  await until(`${selector} visible`, () => page.locator(selector).first().isVisible());
}

async function expectHidden(page, selector) {
  await until(`${selector} hidden`, async () => !(await page.locator(selector).first().isVisible()));
}

async function expectCount(locator, n) {
  await until(`${n} of ${locator}`, async () => {
    const c = await locator.count();
    return c === n || c;
  });
}

/** Serves the console's files from a directory of the working tree, with the hub's own headers. */
async function serveFromDisk(context, dir) {
  await context.route(`${HUB}/console**`, async (route) => {
    const url = new URL(route.request().url());
    const name = url.pathname.replace(/^\/console\/?/, '') || 'index.html';
    const real = await route.fetch();
    try {
      const body = await readFile(join(dir, name));
      const headers = { ...real.headers() };
      delete headers.etag;
      delete headers['content-length'];
      await route.fulfill({ status: 200, headers, body });
    } catch {
      await route.fulfill({ response: real });
    }
  });
}

main().catch((e) => fail(e.stack || String(e)));
