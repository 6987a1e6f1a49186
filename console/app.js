// The agent console: sign-in, the live queue, and the ticket view. It speaks protocol v1 only
// (protocol/PROTOCOL.md). Everything the hub sends is shown with textContent, never as HTML.

import { HubConnection } from './connection.js';
import { Thread, sameParticipant } from './thread.js';
import { loadSession, saveSession, clearSession, loadJson, saveJson, clearTabState, signIn, signOut } from './session.js';

const FOLLOW_KEY = 'anapars.console.follow';
const OUTBOX_KEY = 'anapars.console.outbox';
/** The users' receipts as last seen, shown at once after a reload; `ticket.subscribe.ok` brings the hub's. */
const MARKS_KEY = 'anapars.console.marks';
/** Tickets the socket keeps following (the hub allows 100); the oldest opened are let go. */
const MAX_FOLLOWED = 20;
const PAGE = 50;
const TYPING_SEND_EVERY_MS = 2500;
const TYPING_SHOW_MS = 5000;
/** Errors after which a message is resent unchanged (protocol: "Sending a message"). */
const RETRYABLE = new Set(['disconnected', 'timeout', 'overloaded', 'unavailable', 'rate_limited']);

const $ = (id) => document.getElementById(id);

const state = {
  session: null,
  conn: null,
  me: null,
  /** agent id -> agent */
  agents: new Map(),
  /** ticket id -> ticket (the copy with the highest last_seq) */
  tickets: new Map(),
  /** ticket id -> place in the queue (order of arrival in the queue, as far as this tab knows) */
  queueOrder: new Map(),
  queueCounter: 0,
  filter: 'unassigned',
  /** user id -> profile */
  profiles: new Map(),
  profileWanted: new Set(),
  profileLoading: false,
  /** ticket id -> Thread, most recently opened last */
  threads: new Map(),
  current: null,
  /** ticket id -> last_seq when the agent last looked at it */
  seen: new Map(),
  lastTypingSent: 0,
  online: false,
};

// ---------------------------------------------------------------------------------------------
// Start-up, sign-in and sign-out

function start() {
  $('signin-form').addEventListener('submit', onSignIn);
  $('signout').addEventListener('click', onSignOut);
  $('retry-now').addEventListener('click', () => state.conn && state.conn.retryNow());
  $('my-status').addEventListener('change', onMyStatus);
  for (const tab of document.querySelectorAll('[role=tab]')) {
    tab.addEventListener('click', () => setFilter(tab.dataset.filter, false));
    tab.addEventListener('keydown', onTabKey);
  }
  $('claim').addEventListener('click', () => ticketAction('claim'));
  $('resolve').addEventListener('click', () => ticketAction('resolve'));
  $('transfer').addEventListener('click', () => ticketAction('transfer'));
  $('transfer-to').addEventListener('focus', refreshAgents);
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    sendReply();
  });
  $('reply').addEventListener('keydown', onReplyKey);
  $('reply').addEventListener('input', onReplyInput);
  $('messages').addEventListener('scroll', onMessagesScroll, { passive: true });
  $('older').addEventListener('click', loadOlder);
  document.addEventListener('visibilitychange', () => markRead(currentThread()));
  window.addEventListener('focus', () => markRead(currentThread()));
  window.addEventListener('hashchange', openFromHash);
  setInterval(tick, 15000);

  const session = loadSession();
  if (session) {
    begin(session);
  } else {
    showSignIn();
  }
}

function showSignIn(message) {
  $('app').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message || '';
  $('email').focus();
}

async function onSignIn(e) {
  e.preventDefault();
  const email = $('email').value.trim();
  const password = $('password').value;
  if (!email || !password) {
    $('signin-error').textContent = 'Enter your email and password.';
    return;
  }
  $('signin-button').disabled = true;
  $('signin-error').textContent = '';
  try {
    const session = await signIn(email, password);
    $('password').value = '';
    saveSession(session);
    begin(session);
  } catch (err) {
    $('signin-error').textContent = err.message;
  } finally {
    $('signin-button').disabled = false;
  }
}

function begin(session) {
  state.session = session;
  state.me = session.agent;
  $('signin').hidden = true;
  $('app').hidden = false;
  renderMe();
  setFilter(state.filter, false);
  // Threads followed before a reload, and messages that were still being sent.
  for (const id of loadJson(FOLLOW_KEY, [])) thread(id);
  for (const [ticketId, [delivered, read]] of Object.entries(loadJson(MARKS_KEY, {}))) {
    const t = state.threads.get(ticketId);
    if (t) Object.assign(t, { userDelivered: delivered, userRead: read });
  }
  const outbox = loadJson(OUTBOX_KEY, {});
  for (const [ticketId, items] of Object.entries(outbox)) {
    const t = thread(ticketId);
    for (const m of items) t.outbox.set(m.id, { body: m.body, author: m.author, state: 'pending', inFlight: false });
  }
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  state.conn = new HubConnection({
    url: `${scheme}//${location.host}/v1/ws`,
    token: session.token,
    onState: renderConnection,
    onReady,
    onEvent,
    onSignInAgain: (reason) => endSession(`You were signed out: ${reason}. Sign in again.`),
  });
  state.conn.start();
  openFromHash();
}

async function onSignOut() {
  const token = state.session && state.session.token;
  if (state.conn && state.online) {
    // Leave the queue's auto-assignment before going; the sign-out below ends the session anyway.
    await state.conn.request({ type: 'agent.status', status: 'away' }).catch(() => {});
  }
  endSession('');
  if (token) await signOut(token);
}

function endSession(message) {
  if (state.conn) state.conn.stop();
  state.conn = null;
  clearSession();
  clearTabState([FOLLOW_KEY, OUTBOX_KEY, MARKS_KEY]);
  state.session = null;
  state.tickets.clear();
  state.queueOrder.clear();
  state.threads.clear();
  state.profiles.clear();
  state.seen.clear();
  state.current = null;
  history.replaceState(null, '', location.pathname);
  $('ticket-list').replaceChildren();
  $('events').replaceChildren();
  $('outbox').replaceChildren();
  showTicketPane(false);
  showSignIn(message);
}

// ---------------------------------------------------------------------------------------------
// The connection

function renderConnection({ state: s, retryAt }) {
  state.online = s === 'online';
  const box = $('connection');
  box.dataset.state = s;
  $('retry-now').hidden = s !== 'waiting';
  clearInterval(renderConnection.countdown);
  if (s === 'online') $('connection-text').textContent = 'Connected';
  else if (s === 'connecting') $('connection-text').textContent = 'Connecting…';
  else if (s === 'stopped') $('connection-text').textContent = 'Disconnected';
  else if (s === 'waiting') {
    const show = () => {
      const secs = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      $('connection-text').textContent = `Connection lost. Reconnecting in ${secs} s…`;
    };
    show();
    renderConnection.countdown = setInterval(show, 1000);
  }
  renderTicket();
}

/** After every successful `auth`: fetch the lists again and resume every followed ticket from its
 *  cursor (protocol: "Resuming after a reconnect"). */
async function onReady(reply) {
  state.me = reply.agent;
  renderMe();
  const conn = state.conn;
  try {
    const agents = await conn.request({ type: 'agent.list' });
    setAgents(agents.agents);
    const queue = await conn.request({ type: 'queue.subscribe' });
    takeQueueSnapshot(queue.tickets);
    for (const t of [...state.threads.values()]) {
      await follow(t);
    }
    if (state.current) await loadProfile(ticketUser(state.current), true);
    for (const t of state.threads.values()) flushOutbox(t);
    markRead(currentThread());
    wantProfilesForList();
  } catch (e) {
    // The socket dropped while resuming; the next `onReady` starts over.
    if (e.code !== 'disconnected' && e.code !== 'timeout') console.warn('resume failed:', e.code);
  }
}

function onEvent(frame) {
  switch (frame.type) {
    case 'ticket.updated':
      updateTicket(frame.ticket, true);
      break;
    case 'ticket.deleted':
      onTicketDeleted(frame.ticket_id);
      break;
    case 'ticket.event':
      onTicketEvent(frame.event);
      break;
    case 'ticket.receipt':
      onReceipt(frame);
      break;
    case 'ticket.typing':
      onTyping(frame);
      break;
    case 'presence':
      onPresence(frame);
      break;
    case 'profile.updated':
      setProfile(frame.profile);
      break;
    case 'session.expiring':
      refreshSession();
      break;
    default:
      // `session.revoked` and `session.expired` are followed by a close code that says it all.
      break;
  }
}

async function refreshSession() {
  try {
    const r = await state.conn.request({ type: 'session.refresh' });
    // The old token stopped working: keep the new one before anything else.
    state.session = { ...state.session, token: r.token, expires_at: r.expires_at };
    saveSession(state.session);
    state.conn.setToken(r.token);
  } catch {
    // The hub sends `session.expired` and closes at expiry; the agent then signs in again.
  }
}

// ---------------------------------------------------------------------------------------------
// Agents, profiles, presence

function renderMe() {
  if (!state.me) return;
  $('me').textContent = state.me.name;
  $('my-status').value = state.me.status;
}

async function onMyStatus() {
  const status = $('my-status').value;
  try {
    const r = await state.conn.request({ type: 'agent.status', status });
    state.me = r.agent;
  } catch {
    announce('Your status could not be changed. Try again when connected.');
  }
  renderMe();
}

function setAgents(list) {
  state.agents.clear();
  for (const a of list) state.agents.set(a.id, a);
  renderTransferOptions();
  renderList();
  renderTicket();
}

let agentsFetchedAt = 0;
async function refreshAgents() {
  if (!state.online || Date.now() - agentsFetchedAt < 5000) return;
  agentsFetchedAt = Date.now();
  try {
    setAgents((await state.conn.request({ type: 'agent.list' })).agents);
  } catch {
    // Keep the list we have.
  }
}

function agentName(id) {
  if (!id) return 'an agent';
  if (state.me && id === state.me.id) return 'you';
  const a = state.agents.get(id);
  return a ? a.name : 'another agent';
}

function ticketUser(ticketId) {
  const t = state.tickets.get(ticketId);
  return t ? t.user_id : null;
}

function userName(userId) {
  const p = state.profiles.get(userId);
  if (p && p.name) return p.name;
  return userId ? `User ${userId.slice(-4)}` : 'User';
}

function setProfile(profile) {
  if (!profile || !profile.user_id) return;
  state.profiles.set(profile.user_id, profile);
  renderList();
  if (ticketUser(state.current) === profile.user_id) renderTicket();
}

async function loadProfile(userId, force) {
  if (!userId || !state.online || (!force && state.profiles.has(userId))) return;
  try {
    setProfile((await state.conn.request({ type: 'profile.get', user_id: userId })).profile);
  } catch {
    // Shown by id until the next try.
  }
}

/** Names for the tickets in the list, fetched one at a time in the background. */
function wantProfilesForList() {
  for (const t of visibleTickets().slice(0, 50)) {
    if (!state.profiles.has(t.user_id)) state.profileWanted.add(t.user_id);
  }
  drainProfiles();
}

async function drainProfiles() {
  if (state.profileLoading) return;
  state.profileLoading = true;
  try {
    while (state.online && state.profileWanted.size) {
      const [userId] = state.profileWanted;
      state.profileWanted.delete(userId);
      await loadProfile(userId, false);
    }
  } finally {
    state.profileLoading = false;
  }
}

function onPresence(frame) {
  const p = frame.participant;
  if (!p || p.kind !== 'user') return;
  const known = state.profiles.get(p.id) || { user_id: p.id, name: null, image: null };
  const updated = { ...known, online: frame.online };
  if (frame.online) delete updated.last_seen_at;
  else if (frame.last_seen_at) updated.last_seen_at = frame.last_seen_at;
  else delete updated.last_seen_at;
  setProfile(updated);
  if (ticketUser(state.current) === p.id) {
    announce(`${userName(p.id)} is ${frame.online ? 'online' : 'offline'}.`);
  }
}

function presenceText(profile) {
  if (!profile) return '';
  if (profile.online) return 'online';
  if (profile.last_seen_at) return `last seen ${relativeTime(profile.last_seen_at)}`;
  return 'offline';
}

// ---------------------------------------------------------------------------------------------
// The queue

function takeQueueSnapshot(tickets) {
  // The snapshot is the truth for open and assigned tickets; resolved ones this tab saw stay.
  for (const [id, t] of state.tickets) {
    if (t.status !== 'resolved' && !state.threads.has(id)) state.tickets.delete(id);
  }
  state.queueOrder.clear();
  state.queueCounter = 0;
  for (const t of tickets) {
    state.tickets.set(t.id, t);
    if (t.status === 'open') state.queueOrder.set(t.id, state.queueCounter++);
  }
  renderList();
  renderTicket();
}

function updateTicket(ticket, live) {
  const known = state.tickets.get(ticket.id);
  if (known && known.last_seq > ticket.last_seq) return;
  state.tickets.set(ticket.id, ticket);
  if (ticket.status === 'open') {
    if (!known || known.status !== 'open' || !state.queueOrder.has(ticket.id)) {
      state.queueOrder.set(ticket.id, state.queueCounter++);
      if (live) announce(`New ticket in the queue: ${ticket.subject}`);
    }
  } else {
    state.queueOrder.delete(ticket.id);
  }
  if (!state.profiles.has(ticket.user_id)) {
    state.profileWanted.add(ticket.user_id);
    drainProfiles();
  }
  renderList();
  if (ticket.id === state.current) renderTicket();
}

/** The ticket's user deleted their account: the ticket, its messages and everything this tab kept
 *  of it (the thread, unsent replies) go. */
function onTicketDeleted(ticketId) {
  const ticket = state.tickets.get(ticketId);
  state.tickets.delete(ticketId);
  state.queueOrder.delete(ticketId);
  state.seen.delete(ticketId);
  if (state.threads.delete(ticketId)) {
    saveFollowed();
    saveOutbox();
  }
  if (state.current === ticketId) {
    state.current = null;
    history.replaceState(null, '', location.pathname);
    $('events').replaceChildren();
    $('outbox').replaceChildren();
    showTicketPane(false);
    announce('This ticket was deleted: its user deleted their account.');
  } else if (ticket) {
    announce(`A ticket was deleted: ${ticket.subject}`);
  }
  renderList();
}

function visibleTickets(filter = state.filter) {
  const all = [...state.tickets.values()];
  const mine = (t) => t.status === 'assigned' && state.me && t.agent_id === state.me.id;
  const rank = { open: 0, assigned: 1, resolved: 2 };
  const byQueue = (a, b) => (state.queueOrder.get(a.id) ?? 0) - (state.queueOrder.get(b.id) ?? 0);
  const byUpdate = (a, b) => b.updated_at - a.updated_at;
  if (filter === 'unassigned') return all.filter((t) => t.status === 'open').sort(byQueue);
  if (filter === 'mine') return all.filter(mine).sort(byUpdate);
  return all.sort((a, b) => rank[a.status] - rank[b.status] || (a.status === 'open' ? byQueue(a, b) : byUpdate(a, b)));
}

function setFilter(filter, focus) {
  state.filter = filter;
  for (const tab of document.querySelectorAll('[role=tab]')) {
    const selected = tab.dataset.filter === filter;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
    if (selected) {
      $('ticket-panel').setAttribute('aria-labelledby', tab.id);
      if (focus) tab.focus();
    }
  }
  renderList();
  wantProfilesForList();
}

/** Arrow keys move between the tabs (WAI-ARIA tabs pattern). */
function onTabKey(e) {
  const tabs = [...document.querySelectorAll('[role=tab]')];
  const i = tabs.indexOf(e.currentTarget);
  let next = null;
  if (e.key === 'ArrowRight') next = tabs[(i + 1) % tabs.length];
  else if (e.key === 'ArrowLeft') next = tabs[(i - 1 + tabs.length) % tabs.length];
  else if (e.key === 'Home') next = tabs[0];
  else if (e.key === 'End') next = tabs[tabs.length - 1];
  if (next) {
    e.preventDefault();
    setFilter(next.dataset.filter, true);
  }
}

function renderList() {
  for (const f of ['unassigned', 'mine', 'all']) $(`count-${f}`).textContent = String(visibleTickets(f).length);
  const list = $('ticket-list');
  const tickets = visibleTickets();
  const focusedId = document.activeElement && document.activeElement.dataset && document.activeElement.dataset.ticket;
  const items = tickets.map((t) => {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'ticket-item';
    b.dataset.ticket = t.id;
    if (t.id === state.current) b.setAttribute('aria-current', 'true');
    const unread = state.me && t.agent_id === state.me.id && t.status === 'assigned' && (state.seen.get(t.id) ?? 0) < t.last_seq;
    const subject = el('span', 'subject', t.subject);
    const meta = el('span', 'meta', '');
    const profile = state.profiles.get(t.user_id);
    const dot = el('span', `presence-dot ${profile && profile.online ? 'on' : 'off'}`, '');
    dot.setAttribute('aria-hidden', 'true');
    meta.append(dot, el('span', '', userName(t.user_id)));
    meta.append(el('span', `badge ${t.status}`, statusLabel(t)));
    meta.append(el('time', 'when', shortTime(t.updated_at)));
    b.append(subject, meta);
    if (unread) {
      b.classList.add('unread');
      b.append(el('span', 'visually-hidden', ' (new messages)'));
    }
    b.addEventListener('click', () => openTicket(t.id, true));
    li.append(b);
    return li;
  });
  list.replaceChildren(...items);
  $('empty-list').hidden = tickets.length > 0;
  if (focusedId) {
    const again = list.querySelector(`[data-ticket="${CSS.escape(focusedId)}"]`);
    if (again) again.focus();
  }
}

function statusLabel(t) {
  if (t.status === 'open') return 'waiting';
  if (t.status === 'resolved') return 'resolved';
  return state.me && t.agent_id === state.me.id ? 'yours' : `with ${agentName(t.agent_id)}`;
}

// ---------------------------------------------------------------------------------------------
// Following tickets

function thread(ticketId) {
  let t = state.threads.get(ticketId);
  if (!t) {
    t = new Thread(ticketId);
    state.threads.set(ticketId, t);
  }
  return t;
}

function currentThread() {
  return state.current ? state.threads.get(state.current) : null;
}

function saveFollowed() {
  if (state.session) saveJson(FOLLOW_KEY, [...state.threads.keys()]);
}

function saveOutbox() {
  // After sign-out, late replies must not write the tab's state back.
  if (!state.session) return;
  const out = {};
  for (const [id, t] of state.threads) {
    const pending = [...t.outbox.entries()]
      .filter(([, m]) => m.state === 'pending')
      .map(([mid, m]) => ({ id: mid, body: m.body, author: m.author }));
    if (pending.length) out[id] = pending;
  }
  saveJson(OUTBOX_KEY, out);
}

function openFromHash() {
  const m = /^#ticket=([0-9a-f-]{36})$/.exec(location.hash);
  if (m && state.session && m[1] !== state.current) openTicket(m[1], false);
}

async function openTicket(ticketId, fromList) {
  state.current = ticketId;
  if (location.hash !== `#ticket=${ticketId}`) history.replaceState(null, '', `#ticket=${ticketId}`);
  // Most recently opened last; let the oldest go beyond the limit.
  const t = thread(ticketId);
  state.threads.delete(ticketId);
  state.threads.set(ticketId, t);
  while (state.threads.size > MAX_FOLLOWED) {
    const [oldId, old] = state.threads.entries().next().value;
    if (old.outbox.size) break;
    state.threads.delete(oldId);
    if (state.online) state.conn.request({ type: 'ticket.unsubscribe', ticket_id: oldId }).catch(() => {});
  }
  saveFollowed();
  $('events').replaceChildren();
  $('outbox').replaceChildren();
  $('ticket-error').textContent = '';
  $('reply').value = '';
  showTicketPane(true);
  renderTicket();
  renderMessages(true);
  renderList();
  if (fromList) focusTicketAction();
  if (state.online) {
    await follow(t);
    await loadProfile(ticketUser(ticketId), true);
  }
}

/** Reads the last page of a ticket (first time) and subscribes from the cursor, or resumes a
 *  ticket already loaded from its cursor. The hub sends the missed events first. */
function follow(t) {
  // One at a time per ticket: a call while another runs waits for it, then runs again (it may come
  // from a reconnect that made the first one fail).
  const run = (t.following || Promise.resolve()).catch(() => {}).then(() => followOnce(t));
  t.following = run;
  run
    .finally(() => {
      if (t.following === run) t.following = null;
    })
    .catch(() => {});
  return run;
}

async function followOnce(t) {
  const conn = state.conn;
  if (!conn || !state.threads.has(t.ticketId)) return;
  try {
    if (!t.loaded) {
      const known = state.tickets.get(t.ticketId);
      const before = known ? known.last_seq + 1 : Number.MAX_SAFE_INTEGER;
      const page = await conn.request({ type: 'ticket.history', ticket_id: t.ticketId, before_seq: before, limit: PAGE });
      t.prepend(page.events, page.more);
    }
    // The missed events arrive before the reply: take them while the request runs.
    t.subscribing = true;
    const r = await conn.request({ type: 'ticket.subscribe', ticket_id: t.ticketId, after_seq: t.cursor });
    t.subscribing = false;
    t.loaded = true;
    updateTicket(r.ticket, false);
    for (const m of r.marks || []) onReceipt({ ticket_id: t.ticketId, ...m });
    if (!state.profiles.has(r.ticket.user_id)) await loadProfile(r.ticket.user_id, false);
    if (t.ticketId === state.current) {
      renderMessages(false);
      markRead(t);
    } else {
      markDelivered(t);
    }
  } catch (e) {
    t.subscribing = false;
    if (e.code === 'bad_request' && t.cursor > 0) {
      // Our copy is ahead of the hub's (a restored database): start again from the hub's.
      t.reset();
      if (t.ticketId === state.current) renderMessages(true);
      return followOnce(t);
    }
    if (e.code === 'not_found' || e.code === 'forbidden') {
      state.threads.delete(t.ticketId);
      saveFollowed();
      if (t.ticketId === state.current) $('ticket-error').textContent = 'This ticket cannot be opened.';
    }
    // `disconnected`: the next `onReady` resumes it.
  }
}

/** Where the keyboard goes after opening a ticket: the reply box, or the button that makes it
 *  usable, or the conversation. */
function focusTicketAction() {
  const ticket = state.tickets.get(state.current);
  if (ticket && isMine(ticket)) $('reply').focus();
  else if (ticket && ticket.status === 'open' && !$('claim').disabled) $('claim').focus();
  else $('conversation').focus();
}

function onTicketEvent(event) {
  const t = state.threads.get(event.ticket_id);
  if (!t || !(t.loaded || t.subscribing)) return;
  if (event.seq > t.cursor + 1 && t.cursor > 0) {
    // Not expected on one socket (the hub fills gaps); resubscribe from the cursor to be safe.
    follow(t);
    return;
  }
  if (!t.push(event)) return;
  const ticket = state.tickets.get(event.ticket_id);
  if (event.kind === 'message' && event.author.kind === 'user') {
    t.typingUntil = 0;
    if (event.ticket_id === state.current) announce(`${userName(event.author.id)}: ${event.body}`);
    else if (ticket) announce(`New message in “${ticket.subject}”`);
  }
  saveOutbox();
  if (event.ticket_id === state.current) {
    renderMessages(false);
    renderTyping();
    markRead(t);
  } else {
    markDelivered(t);
    renderList();
  }
}

function onReceipt(frame) {
  const t = state.threads.get(frame.ticket_id);
  if (!t || !frame.participant || frame.participant.kind !== 'user') return;
  t.userDelivered = Math.max(t.userDelivered, frame.delivered_seq);
  t.userRead = Math.max(t.userRead, frame.read_seq);
  if (state.session) {
    const marks = {};
    for (const [id, x] of state.threads) if (x.userDelivered) marks[id] = [x.userDelivered, x.userRead];
    saveJson(MARKS_KEY, marks);
  }
  if (frame.ticket_id === state.current) updateTicks();
}

function onTyping(frame) {
  const t = state.threads.get(frame.ticket_id);
  if (!t || !frame.participant || frame.participant.kind !== 'user') return;
  t.typingUntil = Date.now() + TYPING_SHOW_MS;
  if (frame.ticket_id === state.current) {
    renderTyping();
    setTimeout(renderTyping, TYPING_SHOW_MS + 50);
  }
}

/** Read marks go out when the agent can see the conversation; delivered marks otherwise. */
async function markRead(t) {
  if (!t || !t.loaded || !state.online || document.visibilityState !== 'visible') return;
  if (t.cursor <= t.readSent) return;
  const seq = t.cursor;
  t.readSent = seq;
  t.deliveredSent = Math.max(t.deliveredSent, seq);
  state.seen.set(t.ticketId, seq);
  renderList();
  try {
    await state.conn.request({ type: 'ticket.read', ticket_id: t.ticketId, seq });
  } catch {
    t.readSent = Math.min(t.readSent, seq - 1);
  }
}

async function markDelivered(t) {
  if (!t || !t.loaded || !state.online || t.cursor <= t.deliveredSent) return;
  const seq = t.cursor;
  t.deliveredSent = seq;
  try {
    await state.conn.request({ type: 'ticket.delivered', ticket_id: t.ticketId, seq });
  } catch {
    t.deliveredSent = Math.min(t.deliveredSent, seq - 1);
  }
}

async function loadOlder() {
  const t = currentThread();
  if (!t || !t.loaded || !t.more || t.loadingOlder || !state.online) return;
  t.loadingOlder = true;
  const box = $('messages');
  const fromBottom = box.scrollHeight - box.scrollTop;
  try {
    const page = await state.conn.request({
      type: 'ticket.history',
      ticket_id: t.ticketId,
      before_seq: t.oldest,
      limit: PAGE,
    });
    t.prepend(page.events, page.more);
    if (t.ticketId === state.current) {
      renderMessages(false);
      // Keep the messages the agent was reading where they were.
      box.scrollTop = box.scrollHeight - fromBottom;
    }
  } catch {
    // Try again on the next scroll.
  } finally {
    t.loadingOlder = false;
  }
}

function onMessagesScroll() {
  if ($('messages').scrollTop < 80) loadOlder();
}

// ---------------------------------------------------------------------------------------------
// Sending

function onReplyKey(e) {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    sendReply();
  }
}

function onReplyInput() {
  const ticket = state.tickets.get(state.current);
  if (!state.online || !ticket || !isMine(ticket) || !$('reply').value.trim()) return;
  if (Date.now() - state.lastTypingSent < TYPING_SEND_EVERY_MS) return;
  state.lastTypingSent = Date.now();
  state.conn.request({ type: 'ticket.typing', ticket_id: ticket.id }).catch(() => {});
}

function isMine(ticket) {
  return !!state.me && ticket.status === 'assigned' && ticket.agent_id === state.me.id;
}

function sendReply() {
  const ticket = state.tickets.get(state.current);
  const body = $('reply').value;
  if (!ticket || !body.trim()) return;
  if (!isMine(ticket)) {
    $('ticket-error').textContent = 'Claim the ticket before replying.';
    return;
  }
  const t = thread(ticket.id);
  t.queue(body, { kind: 'agent', id: state.me.id });
  $('reply').value = '';
  saveOutbox();
  renderMessages(false, true);
  flushOutbox(t);
}

/** Sends every unsent message of a thread, each with its own `client_msg_id`, so that a resend
 *  after a reconnect or a lost reply is stored once (`duplicate: true`). */
function flushOutbox(t) {
  if (!state.online || !t.loaded) return;
  for (const [clientMsgId, m] of t.unsent()) {
    m.inFlight = true;
    state.conn
      .request({ type: 'ticket.send', ticket_id: t.ticketId, client_msg_id: clientMsgId, body: m.body })
      .then((r) => {
        m.inFlight = false;
        if (t.events.has(r.seq)) t.outbox.delete(clientMsgId);
        else Object.assign(m, { state: 'sent', seq: r.seq });
      })
      .catch((e) => {
        m.inFlight = false;
        if (RETRYABLE.has(e.code)) {
          // Sent again after the hint, or by the next `onReady` after a reconnect.
          if (e.retryAfterMs) setTimeout(() => flushOutbox(t), e.retryAfterMs);
          return;
        }
        Object.assign(m, { state: 'failed', error: explainSendError(e) });
      })
      .finally(() => {
        saveOutbox();
        if (t.ticketId === state.current) renderMessages(false);
      });
  }
}

function explainSendError(e) {
  switch (e.code) {
    case 'wrong_state':
      return 'Not sent: the ticket is not yours to answer any more.';
    case 'forbidden':
      return 'Not sent: another agent holds this ticket.';
    case 'too_large':
      return 'Not sent: the message is too long.';
    case 'empty_body':
      return 'Not sent: the message is empty.';
    default:
      return 'Not sent.';
  }
}

async function ticketAction(action) {
  const ticket = state.tickets.get(state.current);
  if (!ticket) return;
  $('ticket-error').textContent = '';
  const frame = { type: `ticket.${action}`, ticket_id: ticket.id };
  if (action === 'transfer') {
    frame.agent_id = $('transfer-to').value;
    if (!frame.agent_id) {
      $('ticket-error').textContent = 'Choose an agent to transfer to.';
      return;
    }
  }
  try {
    const r = await state.conn.request(frame);
    updateTicket(r.ticket, false);
    if (action === 'claim') {
      announce('You claimed the ticket.');
      $('reply').focus();
    } else if (action === 'transfer') {
      announce(`Transferred to ${agentName(frame.agent_id)}.`);
    } else {
      announce('Ticket resolved.');
    }
  } catch (e) {
    $('ticket-error').textContent = explainActionError(action, e);
  }
}

function explainActionError(action, e) {
  if (e.code === 'disconnected' || e.code === 'timeout') return 'Not connected: try again in a moment.';
  if (e.code === 'wrong_state' && action === 'claim') return 'This ticket is no longer waiting: someone else has it, or it was resolved.';
  if (e.code === 'wrong_state') return 'The ticket is not assigned to you any more.';
  if (e.code === 'forbidden') return 'Another agent holds this ticket.';
  if (e.code === 'not_found' && action === 'transfer') return 'That agent is not available for transfers.';
  return 'That did not work. Try again.';
}

// ---------------------------------------------------------------------------------------------
// The ticket pane

function showTicketPane(show) {
  $('ticket').hidden = !show;
  $('no-ticket').hidden = show;
}

function renderTicket() {
  const ticket = state.tickets.get(state.current);
  if (!state.current) return;
  const profile = ticket ? state.profiles.get(ticket.user_id) : null;
  $('ticket-subject').textContent = ticket ? ticket.subject : 'Loading…';
  $('user-name').textContent = ticket ? userName(ticket.user_id) : '';
  const presence = $('user-presence');
  presence.textContent = presenceText(profile);
  presence.dataset.online = profile && profile.online ? 'true' : 'false';
  const img = $('user-image');
  const initial = $('user-initial');
  if (profile && typeof profile.image === 'string' && profile.image.startsWith('/v1/media/')) {
    if (img.getAttribute('src') !== profile.image) img.src = profile.image;
    img.alt = `Picture of ${userName(ticket.user_id)}`;
    img.hidden = false;
    initial.hidden = true;
  } else {
    img.hidden = true;
    img.removeAttribute('src');
    initial.hidden = false;
    initial.textContent = ticket ? userName(ticket.user_id).slice(0, 1).toUpperCase() : '';
  }
  const mine = ticket && isMine(ticket);
  $('ticket-status').textContent = ticket
    ? ticket.status === 'open'
      ? 'Waiting in the queue'
      : ticket.status === 'resolved'
        ? `Resolved by ${agentName(ticket.agent_id)}`
        : mine
          ? 'Assigned to you'
          : `Assigned to ${agentName(ticket.agent_id)}`
    : '';
  $('claim').hidden = !ticket || ticket.status !== 'open';
  $('transfer-box').hidden = !mine;
  $('resolve').hidden = !mine;
  for (const id of ['claim', 'transfer', 'resolve', 'send']) $(id).disabled = !state.online;
  $('reply').disabled = !mine;
  $('composer-hint').textContent = !ticket
    ? ''
    : mine
      ? 'Enter sends, Shift+Enter adds a line.'
      : ticket.status === 'open'
        ? 'Claim the ticket to reply.'
        : ticket.status === 'resolved'
          ? 'The ticket is resolved. The user can reopen it by writing.'
          : 'Another agent holds this ticket.';
  for (const ref of $('events').querySelectorAll('.user-ref')) {
    const name = userName(ref.dataset.user);
    if (ref.textContent !== name) ref.textContent = name;
  }
  renderTransferOptions();
  renderTyping();
}

function renderTransferOptions() {
  const select = $('transfer-to');
  const previous = select.value;
  const others = [...state.agents.values()]
    .filter((a) => !state.me || a.id !== state.me.id)
    .sort((a, b) => a.name.localeCompare(b.name));
  // Rebuilt only when the list changed, so that an open drop-down is left alone.
  const key = JSON.stringify(others.map((a) => [a.id, a.name, a.online, a.status]));
  if (select.dataset.key === key) return;
  select.dataset.key = key;
  const options = others
    .map((a) => {
      const o = document.createElement('option');
      o.value = a.id;
      o.textContent = `${a.name} (${a.online ? a.status : 'offline'})`;
      return o;
    });
  const none = document.createElement('option');
  none.value = '';
  none.textContent = options.length ? 'Choose an agent' : 'No other agents';
  select.replaceChildren(none, ...options);
  if ([...select.options].some((o) => o.value === previous)) select.value = previous;
}

function renderTyping() {
  const t = currentThread();
  const ticket = state.tickets.get(state.current);
  const typing = t && ticket && t.typingUntil > Date.now();
  $('typing').textContent = typing ? `${userName(ticket.user_id)} is typing…` : '';
}

/** Brings the message list in line with the thread: events in seq order, then the messages being
 *  sent. Elements are keyed by seq, so nothing is ever shown twice. */
function renderMessages(reset, forceBottom) {
  const t = currentThread();
  const list = $('events');
  const box = $('messages');
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  if (reset) list.replaceChildren();
  if (!t) return;
  const shown = new Map([...list.children].map((li) => [Number(li.dataset.seq), li]));
  let next = null;
  const ordered = t.ordered();
  for (let i = ordered.length - 1; i >= 0; i--) {
    const e = ordered[i];
    let li = shown.get(e.seq);
    if (!li) {
      li = eventItem(e);
      list.insertBefore(li, next);
    }
    next = li;
  }
  const outbox = [...t.outbox.entries()].map(([id, m]) => outboxItem(id, m));
  $('outbox').replaceChildren(...outbox);
  $('older').hidden = !t.more;
  updateTicks();
  if (reset || forceBottom || nearBottom) box.scrollTop = box.scrollHeight;
  // A short page leaves nothing to scroll: read further back at once.
  if (t.loaded && t.more && box.scrollHeight <= box.clientHeight) loadOlder();
}

function eventItem(e) {
  const li = document.createElement('li');
  li.dataset.seq = String(e.seq);
  const when = el('time', 'when', shortTime(e.at));
  when.dateTime = new Date(e.at).toISOString();
  if (e.kind === 'message') {
    const mine = state.me && sameParticipant(e.author, { kind: 'agent', id: state.me.id });
    li.className = `message ${e.author.kind}${mine ? ' mine' : ''}`;
    const author = mine ? el('span', 'author', 'You') : who(e.author, e.ticket_id, true);
    author.classList.add('author');
    li.append(author, el('p', 'body', e.body || ''), when);
    if (mine) {
      const tick = el('span', 'tick', '');
      tick.dataset.seq = String(e.seq);
      li.append(tick);
    }
    return li;
  }
  li.className = 'system';
  const line = el('span', '', '');
  const by = who(e.author, e.ticket_id, true);
  switch (e.kind) {
    case 'opened':
      line.append(by, ` opened the ticket: ${e.body || ''}`);
      break;
    case 'claimed':
      if (e.author.kind === 'system') line.append(`Assigned to ${agentName(e.agent_id)} automatically`);
      else line.append(by, ' claimed the ticket');
      break;
    case 'transferred':
      line.append(by, ` transferred the ticket to ${agentName(e.agent_id)}`);
      break;
    case 'resolved':
      line.append(by, ' resolved the ticket');
      break;
    case 'reopened':
      line.append(by, ' reopened the ticket');
      break;
    default:
      line.append(`Event: ${e.kind}`);
  }
  li.append(line, when);
  return li;
}

/** A participant's name as an element; a user's name is refreshed when their profile arrives. */
function who(p, ticketId, capitalised) {
  if (p.kind === 'user') {
    const span = el('span', 'user-ref', userName(p.id));
    span.dataset.user = p.id;
    return span;
  }
  const name = p.kind === 'agent' ? agentName(p.id) : 'the hub';
  return el('span', '', capitalised ? capital(name) : name);
}

function outboxItem(id, m) {
  const li = document.createElement('li');
  li.className = `message agent mine ${m.state}`;
  li.dataset.clientMsgId = id;
  li.append(el('span', 'author', 'You'), el('p', 'body', m.body));
  const status = m.state === 'failed' ? m.error : m.state === 'sent' ? 'Sent' : state.online ? 'Sending…' : 'Waiting for the connection…';
  li.append(el('span', 'tick', status));
  if (m.state === 'failed') {
    const edit = document.createElement('button');
    edit.type = 'button';
    edit.className = 'link';
    edit.textContent = 'Edit and resend';
    edit.addEventListener('click', () => {
      const t = currentThread();
      if (!t) return;
      t.outbox.delete(id);
      $('reply').value = m.body;
      saveOutbox();
      renderMessages(false);
      $('reply').focus();
    });
    li.append(edit);
  }
  return li;
}

/** Sent / delivered / read, from the user's receipts (protocol: "Delivery states"). */
function updateTicks() {
  const t = currentThread();
  if (!t) return;
  for (const tick of $('events').querySelectorAll('.tick[data-seq]')) {
    const seq = Number(tick.dataset.seq);
    const label = t.userRead >= seq ? 'Read' : t.userDelivered >= seq ? 'Delivered' : 'Sent';
    if (tick.textContent !== label) tick.textContent = label;
    tick.dataset.state = label.toLowerCase();
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text) e.textContent = text;
  return e;
}

function capital(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

function announce(text) {
  const a = $('announcer');
  a.textContent = '';
  // A fresh text node makes screen readers speak the same text twice in a row too.
  setTimeout(() => {
    a.textContent = text;
  }, 50);
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

function shortTime(ms) {
  const d = new Date(ms);
  return Date.now() - ms < 20 * 3600 * 1000 ? timeFormat.format(d) : dateFormat.format(d);
}

function relativeTime(ms) {
  const secs = Math.round((Date.now() - ms) / 1000);
  if (secs < 60) return 'just now';
  if (secs < 3600) return `${Math.round(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.round(secs / 3600)} h ago`;
  return dateFormat.format(new Date(ms));
}

function tick() {
  if (state.current) renderTicket();
}

start();
