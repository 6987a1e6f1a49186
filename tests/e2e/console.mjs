// The agent's side of the console's end-to-end test, in headless Chromium (playwright-core).
// tests/console.rs starts a real hub, plays the user over a real WebSocket, and runs this script.
//
// The two sides take turns over stdio: this script prints `STEP <name>` when it needs the user to
// act and waits for `OK <name>` on stdin. Every wait has a deadline; the whole run has one too.
//
// Environment: HUB_URL, AGENT_EMAIL, AGENT_PASSWORD, CHROMIUM_PATH, SCREENSHOT (a file to write),
// and optionally HEADFUL=1 to watch it.

import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

const RUN_DEADLINE_MS = 60_000;
const WAIT_MS = 10_000;
/** Reconnecting after the hub comes back may sit in one backoff wait (at most 4 s by then). */
const RECONNECT_MS = 20_000;

const env = (name) => {
  const v = process.env[name];
  if (!v) fail(`${name} is not set`);
  return v;
};
const HUB = env('HUB_URL');
const EMAIL = env('AGENT_EMAIL');
const PASSWORD = env('AGENT_PASSWORD');
const CHROMIUM = env('CHROMIUM_PATH');
const SCREENSHOT = env('SCREENSHOT');

let browser = null;

function log(...args) {
  console.error('[console.mjs]', ...args);
}

function fail(message) {
  console.log(`FAIL ${message}`);
  console.error(`[console.mjs] FAIL: ${message}`);
  if (browser) browser.close().catch(() => {});
  process.exit(1);
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

/** Asks the user's side to do `name`, and waits until it has. */
async function step(name) {
  console.log(`STEP ${name}`);
  const timer = new Promise((_, reject) => setTimeout(() => reject(new Error(`no OK for ${name}`)), 20_000));
  const line = await Promise.race([nextLine(), timer]);
  if (line !== `OK ${name}`) fail(`expected "OK ${name}", got ${JSON.stringify(line)}`);
  log(`step ${name}: done`);
}

// --- the run -----------------------------------------------------------------------------------
async function main() {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: process.env.HEADFUL !== '1',
    // Root in a container has no user namespaces for the sandbox.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
    timeout: WAIT_MS,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 760 }, locale: 'en-GB' });
  context.setDefaultTimeout(WAIT_MS);
  const page = await context.newPage();

  const problems = [];
  const urls = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !/WebSocket connection to .* failed/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => urls.push(r.url()));
  page.on('websocket', (ws) => urls.push(ws.url()));

  // Sign in.
  const response = await page.goto(`${HUB}/console`);
  const csp = response.headers()['content-security-policy'] || '';
  if (!csp.includes("script-src 'self'")) fail(`no strict CSP on /console: ${csp}`);
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expectText(page.locator('#signin-error'), 'Wrong email or password.');
  // Chromium logs the expected 401 of that attempt as an error; nothing before it is expected.
  if (problems.length !== 1 || !problems[0].includes('401')) fail(`browser errors: ${problems}`);
  problems.length = 0;
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByLabel('Password').press('Enter');
  await online(page, WAIT_MS);
  log('signed in');

  // The user opens a ticket (and two other people open theirs): they arrive without a reload.
  await step('open-tickets');
  const t1 = page.locator('.ticket-item', { hasText: 'Payment failed' });
  await t1.waitFor();
  await expectText(page.locator('#count-unassigned'), '3');
  await expectText(t1, 'Maryam Karimi');

  // Keyboard: Tab from the tabs reaches the list; open the ticket with Enter.
  await page.locator('#tab-unassigned').focus();
  await page.keyboard.press('ArrowRight');
  await expectAttr(page.locator('#tab-mine'), 'aria-selected', 'true');
  await page.keyboard.press('ArrowLeft');
  await expectAttr(page.locator('#tab-unassigned'), 'aria-selected', 'true');
  await t1.focus();
  await page.keyboard.press('Enter');
  await expectText(page.locator('#ticket-subject'), 'Payment failed');
  await expectText(page.locator('#events'), 'My card was charged twice');
  await expectText(page.locator('#user-name'), 'Maryam Karimi');
  await expectText(page.locator('#user-presence'), 'online');
  await page.locator('#user-image[src^="/v1/media/"]').waitFor();

  await page.getByRole('button', { name: 'Claim' }).click();
  await expectText(page.locator('#ticket-status'), 'Assigned to you');
  await expectText(page.locator('#count-mine'), '1');
  await step('claimed');

  // Typing, then a message, from the user.
  await step('user-types');
  await expectText(page.locator('#typing'), 'Maryam Karimi is typing');
  await step('user-writes');
  await expectText(page.locator('#events'), 'It was 12.50 EUR, on Monday');
  await expectText(page.locator('#typing'), '', true);

  // The agent answers on two lines (Shift+Enter), sent with Enter.
  const reply = page.getByLabel('Reply');
  await reply.focus();
  await reply.pressSequentially('Sorry about that.');
  await page.keyboard.press('Shift+Enter');
  await reply.pressSequentially('I am refunding it now.');
  await page.keyboard.press('Enter');
  const mine = page.locator('#events .message.mine');
  await expectText(mine.last(), 'I am refunding it now.');
  await step('agent-replied');
  await expectText(mine.last().locator('.tick'), 'Read');

  // A reload keeps the session and the open ticket; nothing is shown twice.
  await page.reload();
  await online(page, WAIT_MS);
  await expectText(page.locator('#ticket-subject'), 'Payment failed');
  await expectText(mine.last(), 'I am refunding it now.');
  await expectCount(page.locator('#events .message'), 3);
  await expectText(mine.last().locator('.tick'), 'Read');

  // The hub goes away: the console says so, keeps a message for later, and resumes by itself.
  await page.evaluate(() => {
    window.__states = [];
    const box = document.getElementById('connection');
    new MutationObserver(() => window.__states.push(box.dataset.state)).observe(box, { attributes: true });
  });
  await step('stop-hub');
  await expectAttr(page.locator('#connection'), 'data-state', /waiting|connecting/);
  await expectText(page.locator('#connection-text'), /Reconnecting|Connecting/);
  await reply.fill('Are you still there?');
  await page.keyboard.press('Enter');
  await expectText(page.locator('#outbox'), 'Are you still there?');
  await step('start-hub');
  await online(page, RECONNECT_MS);
  await expectText(mine.last(), 'Are you still there?');
  await expectCount(page.locator('#outbox .message'), 0);
  await step('offline-message-arrived');
  await expectText(page.locator('#events .message').last(), 'Yes, still here');
  await expectCount(page.locator('#events .message'), 5);
  const states = await page.evaluate(() => window.__states);
  if (!states.includes('waiting') || states[states.length - 1] !== 'online') fail(`connection states: ${states}`);

  // The user leaves: presence changes to last seen.
  await expectText(page.locator('#user-presence'), 'online', true);
  await step('user-leaves');
  await expectText(page.locator('#user-presence'), /last seen/);
  await expectText(mine.last().locator('.tick'), 'Read');
  await page.locator('#tab-all').click();
  await page.locator('#reply').focus();
  await page.screenshot({ path: SCREENSHOT });
  log(`screenshot: ${SCREENSHOT}`);

  // Another ticket: claim and resolve it.
  await page.locator('#tab-unassigned').click();
  await page.locator('.ticket-item', { hasText: 'Wrong name on my receipt' }).click();
  await page.getByRole('button', { name: 'Claim' }).click();
  await expectText(page.locator('#ticket-status'), 'Assigned to you');
  await page.getByRole('button', { name: 'Resolve' }).click();
  await expectText(page.locator('#ticket-status'), 'Resolved by you');
  await expectText(page.locator('#count-unassigned'), '1');

  // Transfer the first ticket to the other agent.
  await page.locator('#tab-mine').click();
  await page.locator('.ticket-item', { hasText: 'Payment failed' }).click();
  await page.getByLabel('Transfer to').selectOption({ label: 'Reza (offline)' });
  await page.getByRole('button', { name: 'Transfer' }).click();
  await expectText(page.locator('#ticket-status'), 'Assigned to Reza');
  await expectText(page.locator('#count-mine'), '0');
  await step('transferred');

  // A user deletes their account while the agent looks at their ticket: it disappears.
  await page.locator('#tab-unassigned').click();
  await page.locator('.ticket-item', { hasText: 'App crashes on login' }).click();
  await expectText(page.locator('#ticket-subject'), 'App crashes on login');
  await step('account-deleted');
  await expectText(page.locator('#count-unassigned'), '0');
  await expectCount(page.locator('.ticket-item', { hasText: 'App crashes on login' }), 0);
  await expectText(page.locator('#announcer'), 'its user deleted their account');

  // Sign out: the session is gone, also after a reload.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Email').waitFor();
  await page.reload();
  await page.getByLabel('Email').waitFor();
  const stored = await page.evaluate(() => Object.keys(sessionStorage));
  if (stored.length) fail(`sessionStorage after sign-out: ${stored}`);

  const leaked = urls.filter((u) => u.includes('agt_') || u.includes(PASSWORD));
  if (leaked.length) fail(`a secret in a URL: ${leaked}`);
  if (problems.length) fail(`browser errors:\n${problems.join('\n')}`);
  await browser.close();
  // stdin stays open (the Rust side holds it): leave explicitly once the last line is out.
  process.stdout.write('DONE\n', () => process.exit(0));
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
    if (Date.now() > end) fail(`${what} (last seen: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function matches(actual, expected, exact) {
  if (expected instanceof RegExp) return expected.test(actual);
  return exact ? actual.trim() === expected : actual.includes(expected);
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

async function expectAttr(locator, name, expected, timeout = WAIT_MS) {
  await until(
    `${name}=${expected} on ${locator}`,
    async () => {
      const v = (await locator.getAttribute(name, { timeout: 1000 })) ?? '';
      return matches(v, expected, true) || v;
    },
    timeout,
  );
}

async function expectCount(locator, n) {
  await until(`${n} of ${locator}`, async () => {
    const c = await locator.count();
    return c === n || c;
  });
}

main().catch((e) => fail(e.stack || String(e)));
