// The agent console: sign-in, the live queue, the ticket view and the customer beside it. It speaks
// protocol v1 only (protocol/PROTOCOL.md). Everything the hub sends is shown with textContent,
// never as HTML; what people typed keeps its own direction (`dir="auto"`, `<bdi>`), and every
// string of the interface comes from the catalogues through i18n.js.

import { HubClient, KeyValueOutboxStore } from './hub-client.js';
import { Thread, attachmentSummary, attachmentsOf, sameParticipant } from './thread.js';
import {
  clearSession,
  clearTabState,
  loadJson,
  loadSession,
  saveJson,
  saveSession,
  signIn,
  signOut,
  tabStorage,
  tokenStore,
} from './session.js';
import {
  applyStatic,
  bdi,
  compare,
  direction,
  duration,
  errorText,
  formatNumber,
  fullTime,
  language,
  languageOptions,
  locale,
  longDate,
  rememberedLanguage,
  rememberLanguage,
  relativeTime,
  setLanguage,
  shortTime,
  t,
  tNodes,
  typed,
} from './i18n.js';
import { CannedPicker } from './canned.js';
import { MentionPicker, mentionedIds, splitMentions } from './mentions.js';
import { NoteList, mentionsMe, timeline } from './notes.js';
import { TicketLabels, chips, inkOn, isColor, labelName } from './labels.js';
import { SEARCH_DELAY_MS, SearchResults, isPhoneRefusal, searchFrame, searchKey, snippetParts } from './search.js';
import { MAX_SCORE, Ratings, stars } from './ratings.js';
import {
  DEFAULT_PRESET,
  MAX_DAYS,
  addDays,
  calendarOf,
  chartGeometry,
  customRange,
  dayText,
  distributionShares,
  durationParts,
  fetchReport,
  percent,
  presetRange,
} from './reports.js';
import { renderCustomer } from './customer.js';
import { attachmentList, pendingList, renderDraft, setupAttachments } from './attachments.js';
import { discard, Draft, upload } from './uploads.js';
import {
  allowNotifications,
  chime,
  loadPrefs,
  notificationsBlocked,
  notify,
  savePrefs,
  setTitle,
  unlockSound,
} from './alerts.js';

const FOLLOW_KEY = 'anapars.console.follow';
/** The SDK's outbox: the replies not yet acknowledged, kept over a reload of the tab. */
const OUTBOX_KEY = 'anapars.console.outbox';
/** Private notes still to be stored, per ticket, kept over a reload like the messages. */
const NOTE_OUTBOX_KEY = 'anapars.console.note-outbox';
/** The users' receipts as last seen, shown at once after a reload; `ticket.subscribe.ok` brings the hub's. */
const MARKS_KEY = 'anapars.console.marks';
/** "Not now" on the prompt to become available, for this tab. */
const PROMPT_KEY = 'anapars.console.prompt-dismissed';
/** Tickets the socket keeps following (the hub allows 100); the oldest opened are let go. */
const MAX_FOLLOWED = 20;
const PAGE = 50;
const NOTE_PAGE = 50;
/** How many note ids the console remembers having alerted about (a note is alerted once). */
const ALERTED_NOTES = 500;
const TYPING_SHOW_MS = 5000;
/** At most one sound this often, however many messages arrive at once. */
const CHIME_EVERY_MS = 2000;
/** Errors after which a note is resent unchanged (protocol: "Sending a message"). */
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
  /** ticket id -> the files attached to the reply being written there (uploads.js `Draft`) */
  drafts: new Map(),
  current: null,
  /** ticket id -> the highest seq this agent read (here, in another tab, or as the hub says) */
  seen: new Map(),
  online: false,
  /** The last connection state, to render it again in another language. */
  connection: { state: 'connecting' },
  /** The agent's canned replies, oldest first. */
  canned: [],
  /** The customer panel: `{userId, customer, loading, failed}`. */
  customer: { userId: null, customer: null, loading: false, failed: false },
  /** Narrow screens: `list` or `ticket`. */
  view: 'list',
  panelOpen: false,
  prefs: loadPrefs(),
  lastChime: 0,
  /** Tickets whose composer writes a private note instead of a message. */
  noteMode: new Set(),
  /** The agents chosen in the mention picker for the note being written: `[{id, name}]`. */
  chosenMentions: [],
  /** ticket id -> ids of notes naming this agent that they have not seen yet */
  mentioned: new Map(),
  /** Ids of notes already alerted about. */
  alerted: new Set(),
  /** The team's labels, oldest first (`label.list.ok`, `labels.updated`). */
  labels: [],
  /** Which tickets carry which labels (labels.js). */
  ticketLabels: new TicketLabels(),
  /** The label the list is filtered by, or ''. */
  labelFilter: '',
  /** The search on screen (search.js `SearchResults`), or null while the box is empty. */
  search: null,
  /** Why the search failed: `{key}` of the catalogue or the hub's `{code}`; null when it did not. */
  searchError: null,
  /** A page of the search is on its way. */
  searchBusy: false,
  /** The users' ratings of the tickets opened here (ratings.js). */
  ratings: new Ratings(),
  /** The reports page: the preset or `custom`, the range asked for, the last answer, and why it failed. */
  reports: { preset: DEFAULT_PRESET, range: null, report: null, error: null, busy: false },
};

let picker = null;
let mentionPicker = null;

// ---------------------------------------------------------------------------------------------
// Start-up, language, sign-in and sign-out

function start() {
  $('signin-form').addEventListener('submit', onSignIn);
  $('signout').addEventListener('click', onSignOut);
  $('retry-now').addEventListener('click', () => state.conn && state.conn.retryNow());
  $('my-status').addEventListener('change', () => setMyStatus($('my-status').value));
  $('become-available').addEventListener('click', () => setMyStatus('available'));
  $('prompt-dismiss').addEventListener('click', () => {
    saveJson(PROMPT_KEY, true);
    renderPrompt();
  });
  for (const select of document.querySelectorAll('.lang-select')) {
    select.replaceChildren(...languageOptions());
    select.addEventListener('change', () => useLanguage(select.value, true));
  }
  for (const tab of document.querySelectorAll('[role=tab]')) {
    tab.addEventListener('click', () => setFilter(tab.dataset.filter, false));
    tab.addEventListener('keydown', onTabKey);
  }
  $('ticket-list').addEventListener('keydown', onListKey);
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
  $('reply').addEventListener('paste', onReplyPaste);
  $('attach').addEventListener('click', () => $('attach-input').click());
  $('attach-input').addEventListener('change', () => {
    attachFiles([...$('attach-input').files]);
    $('attach-input').value = '';
  });
  for (const kind of ['dragenter', 'dragover']) $('ticket').addEventListener(kind, onDragOver);
  $('ticket').addEventListener('dragleave', (e) => {
    if (!e.relatedTarget || !$('ticket').contains(e.relatedTarget)) $('ticket').classList.remove('dropping');
  });
  $('ticket').addEventListener('drop', onDrop);
  // A file dropped elsewhere must not replace the console with itself.
  for (const kind of ['dragover', 'drop']) {
    document.addEventListener(kind, (e) => {
      if (hasFiles(e.dataTransfer)) e.preventDefault();
    });
  }
  setupAttachments({
    token: () => (state.session ? state.session.token : ''),
    dialog: $('viewer'),
    roots: [$('events'), $('outbox')],
  });
  $('messages').addEventListener('scroll', onMessagesScroll, { passive: true });
  $('older').addEventListener('click', loadOlder);
  $('back').addEventListener('click', showList);
  $('customer-toggle').addEventListener('click', () => setPanel(!state.panelOpen));
  $('customer-close').addEventListener('click', () => setPanel(false));
  $('settings-open').addEventListener('click', openSettings);
  $('settings-close').addEventListener('click', () => $('settings-dialog').close());
  $('settings-canned').addEventListener('click', () => {
    $('settings-dialog').close();
    openCanned();
  });
  $('pref-notify').addEventListener('change', onNotifyPref);
  $('pref-sound').addEventListener('change', onSoundPref);
  $('canned-manage').addEventListener('click', openCanned);
  $('canned-close').addEventListener('click', () => $('canned-dialog').close());
  $('canned-form').addEventListener('submit', addCanned);
  picker = new CannedPicker({
    textarea: $('reply'),
    box: $('canned-picker'),
    list: $('canned-options'),
    replies: () => state.canned,
    enabled: () => !noteMode(),
    onInsert: onReplyInput,
  });
  mentionPicker = new MentionPicker({
    textarea: $('reply'),
    box: $('mention-picker'),
    list: $('mention-options'),
    agents: () => [...state.agents.values()].filter((a) => !state.me || a.id !== state.me.id),
    enabled: noteMode,
    onChoose: (agent) => {
      if (!state.chosenMentions.some((a) => a.id === agent.id)) state.chosenMentions.push({ id: agent.id, name: agent.name });
      updateSend();
    },
  });
  for (const radio of document.querySelectorAll('input[name=compose-mode]')) {
    radio.addEventListener('change', () => radio.checked && setComposeMode(radio.value));
  }
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    runSearch();
  });
  $('search').addEventListener('input', onSearchInput);
  $('search').addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && $('search').value) {
      e.preventDefault();
      $('search').value = '';
      runSearch();
    }
  });
  $('search-status').addEventListener('change', runSearch);
  $('search-label').addEventListener('change', runSearch);
  $('search-more').addEventListener('click', moreResults);
  $('label-filter').addEventListener('change', () => setLabelFilter($('label-filter').value));
  $('label-add').addEventListener('change', () => {
    const id = $('label-add').value;
    $('label-add').value = '';
    if (id) labelTicket(id, true);
  });
  $('labels-manage').addEventListener('click', openLabels);
  $('reports-open').addEventListener('click', openReports);
  $('settings-reports').addEventListener('click', () => {
    $('settings-dialog').close();
    openReports();
  });
  $('reports-close').addEventListener('click', () => $('reports-dialog').close());
  $('reports-preset').addEventListener('change', onReportsPreset);
  $('reports-form').addEventListener('submit', onReportsCustom);
  $('reports-csv').addEventListener('click', downloadReport);
  $('labels-close').addEventListener('click', () => $('labels-dialog').close());
  $('label-form').addEventListener('submit', createLabel);
  document.addEventListener('keydown', onGlobalKey);
  // Browsers start sound only after a gesture: any click or key of the agent's prepares it.
  for (const kind of ['pointerdown', 'keydown']) {
    document.addEventListener(kind, () => state.prefs.sound && unlockSound(), { passive: true });
  }
  document.addEventListener('visibilitychange', () => {
    markRead(currentThread());
    seeMentions(state.current);
  });
  window.addEventListener('focus', () => {
    markRead(currentThread());
    seeMentions(state.current);
  });
  window.addEventListener('hashchange', openFromHash);
  setInterval(tick, 15000);

  useLanguage(rememberedLanguage(null), false);
  const session = loadSession();
  if (session) {
    begin(session);
  } else {
    showSignIn();
  }
}

/** Switches the interface to `code` (`fa` or `en`) and renders everything again; `remember`: the
 *  agent chose it (kept for this browser and this agent). */
function useLanguage(code, remember) {
  setLanguage(code);
  if (remember) rememberLanguage(language(), state.me && state.me.id);
  applyStatic();
  for (const select of document.querySelectorAll('.lang-select')) select.value = language();
  if (!state.session) {
    setTitle(0);
    return;
  }
  renderConnection(state.connection);
  renderMe();
  renderPrompt();
  renderLabelSelects();
  renderLabelsDialog();
  renderSearch();
  renderList();
  renderTicket();
  if (state.current) renderMessages(true);
  renderComposerFiles();
  renderCustomerPanel();
  if ($('reports-dialog').open) renderReports();
}

function showSignIn(message) {
  $('app').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message || '';
  setTitle(0);
  $('email').focus();
}

async function onSignIn(e) {
  e.preventDefault();
  const email = $('email').value.trim();
  const password = $('password').value;
  if (!email || !password) {
    $('signin-error').textContent = t('signin.missing');
    return;
  }
  $('signin-button').disabled = true;
  $('signin-error').textContent = '';
  try {
    const session = await signIn(email, password);
    $('password').value = '';
    await saveSession(session);
    begin(session);
  } catch (err) {
    $('signin-error').textContent = err.key ? t(err.key, err.params) : t('signin.failed');
  } finally {
    $('signin-button').disabled = false;
  }
}

function begin(session) {
  state.session = session;
  state.me = session.agent;
  // The agent's own choice of language, if they made one in this browser.
  useLanguage(rememberedLanguage(state.me && state.me.id), false);
  $('signin').hidden = true;
  $('app').hidden = false;
  renderMe();
  renderPrompt();
  setFilter(state.filter, false);
  // Threads followed before a reload, and messages that were still being sent.
  for (const id of loadJson(FOLLOW_KEY, [])) thread(id);
  for (const [ticketId, [delivered, read]] of Object.entries(loadJson(MARKS_KEY, {}))) {
    const th = state.threads.get(ticketId);
    if (th) Object.assign(th, { userDelivered: delivered, userRead: read });
  }
  for (const [ticketId, items] of Object.entries(loadJson(NOTE_OUTBOX_KEY, {}))) thread(ticketId).notes.restore(items);
  // The SDK keeps the socket, the session (refreshed before it expires), each followed ticket's
  // cursor and resume, and the outbox of replies (protocol/CLIENTS.md).
  const client = new HubClient({
    url: location.origin,
    tokenStore,
    outboxStore: new KeyValueOutboxStore(tabStorage, OUTBOX_KEY),
    // The console reads the queue itself after every auth (onReady).
    resumeLists: false,
    followOpened: false,
  });
  state.conn = client;
  const mine = (fn) => (...args) => {
    if (state.conn === client) return fn(...args);
  };
  client.on('state', mine(onClientState));
  client.on('retry', mine(() => onClientState(client.state)));
  client.on('event', mine(onEvent));
  client.on('ticket.event', mine(onTicketEvent));
  client.on('subscribed', mine(onSubscribed));
  client.on('cursor', mine(onCursorReset));
  client.on('delivery', mine(onDelivery));
  client.on('closed', mine(onClosed));
  client.on('report', (message) => console.warn('hub client:', message));
  client.connect();
  openFromHash();
}

async function onSignOut() {
  const client = state.conn;
  const stored = await tokenStore.load();
  if (client && state.online) {
    // Leave the queue's auto-assignment before going; the sign-out below ends the session anyway.
    await client.request({ type: 'agent.status', status: 'away' }).catch(() => {});
    // `session.sign_out`, then the SDK forgets the token and the outbox whatever the answer.
    await client.signOut();
    endSession('');
    return;
  }
  endSession('');
  if (stored) await signOut(stored.token);
}

/** Why the SDK closed for good, as the catalogue's `signin.reason.*`. */
function closedReason(reason) {
  if (reason.kind === 'signed_out' || reason.closeCode === 1000) return 'signed_out';
  if (reason.closeCode === 4003) return 'revoked';
  if (reason.closeCode === 4004) return 'expired';
  return 'token_refused';
}

function onClosed(reason) {
  if (reason.kind === 'signed_out') endSession('');
  else endSession(t('signin.again', { reason: t(`signin.reason.${closedReason(reason)}`) }));
}

function endSession(message) {
  const client = state.conn;
  state.conn = null;
  if (client) client.disconnect();
  clearSession();
  clearTabState([FOLLOW_KEY, OUTBOX_KEY, NOTE_OUTBOX_KEY, MARKS_KEY, PROMPT_KEY]);
  state.session = null;
  state.tickets.clear();
  state.queueOrder.clear();
  state.threads.clear();
  for (const ticketId of [...state.drafts.keys()]) dropDraft(ticketId);
  state.profiles.clear();
  state.seen.clear();
  state.canned = [];
  state.noteMode.clear();
  state.chosenMentions = [];
  state.mentioned.clear();
  state.alerted.clear();
  state.labels = [];
  state.ticketLabels.clear();
  state.labelFilter = '';
  state.search = null;
  state.searchError = null;
  state.searchBusy = false;
  clearTimeout(searchTimer);
  $('search').value = '';
  renderSearch();
  state.current = null;
  state.customer = { userId: null, customer: null, loading: false, failed: false };
  history.replaceState(null, '', location.pathname);
  $('ticket-list').replaceChildren();
  $('events').replaceChildren();
  $('outbox').replaceChildren();
  $('drafts').replaceChildren();
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  showTicketPane(false);
  showSignIn(message);
}

// ---------------------------------------------------------------------------------------------
// The connection

/** The SDK's connection state as the console shows it: `online`, `connecting`, `waiting` (until
 *  the next attempt, with "retry now") or `stopped`. */
function onClientState(clientState) {
  const client = state.conn;
  const wasOnline = state.online;
  if (clientState === 'connected') {
    if (!client.agent) {
      // A user token cannot drive the console.
      endSession(t('signin.again', { reason: t('signin.reason.not_agent') }));
      return;
    }
    renderConnection({ state: 'online' });
    if (!wasOnline) onReady({ agent: client.agent });
  } else if (clientState === 'connecting' || clientState === 'authenticating') {
    renderConnection({ state: 'connecting' });
  } else if (clientState === 'closed') {
    renderConnection({ state: 'stopped' });
  } else {
    const retryAt = client.nextAttemptAt;
    renderConnection(retryAt ? { state: 'waiting', retryAt } : { state: 'connecting' });
  }
}

function renderConnection(connection) {
  const { state: s, retryAt } = connection;
  state.connection = connection;
  state.online = s === 'online';
  const box = $('connection');
  box.dataset.state = s;
  $('retry-now').hidden = s !== 'waiting';
  clearInterval(renderConnection.countdown);
  if (s === 'online') $('connection-text').textContent = t('connection.online');
  else if (s === 'connecting') $('connection-text').textContent = t('connection.connecting');
  else if (s === 'stopped') $('connection-text').textContent = t('connection.stopped');
  else if (s === 'waiting') {
    const show = () => {
      const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      $('connection-text').textContent = t('connection.waiting', { seconds });
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
  renderPrompt();
  const conn = state.conn;
  // Notes written while the socket was down reached nobody here: each list is read again before
  // it is trusted.
  for (const th of state.threads.values()) if (th.notes.loaded) th.notes.stale = true;
  try {
    const agents = await conn.request({ type: 'agent.list' });
    setAgents(agents.agents);
    const queue = await conn.request({ type: 'queue.subscribe' });
    takeQueueSnapshot(queue.tickets);
    loadCanned();
    loadLabels();
    if (currentThread()) loadNotes(currentThread());
    if (state.current) loadRatings(state.current);
    // Tickets the SDK follows were resumed by it; the ones restored from a reload start here.
    for (const th of [...state.threads.values()]) {
      if (!th.loaded) await follow(th);
    }
    if (state.current) {
      await loadProfile(ticketUser(state.current), true);
      loadCustomer(ticketUser(state.current), true);
    }
    for (const th of state.threads.values()) flushNotes(th);
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
    case 'ticket.note':
      onTicketNote(frame.note);
      break;
    case 'labels.updated':
      setLabels(frame.labels);
      break;
    case 'ticket.rated':
      onRated(frame.rating);
      break;
    case 'ticket.labels':
      onTicketLabels(frame.labels);
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
    default:
      // The SDK refreshes the session (`session.expiring`); `session.revoked` and
      // `session.expired` end in its `closed`.
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// The agent: status, the prompt to become available, settings

function renderMe() {
  if (!state.me) return;
  $('me').textContent = state.me.name;
  $('my-status').value = state.me.status;
  $('labels-manage').hidden = !state.me.supervisor;
  // On a phone the topbar has no room: the settings dialog has the way in.
  $('reports-open').hidden = !state.me.supervisor;
  $('settings-reports').hidden = !state.me.supervisor;
  if (!state.me.supervisor && $('reports-dialog').open) $('reports-dialog').close();
}

/** Agents start away; while they are not available the hub gives them nothing, so say so. */
function renderPrompt() {
  const show = !!state.me && state.me.status !== 'available' && !loadJson(PROMPT_KEY, false);
  $('available-prompt').hidden = !show;
  if (show) $('available-text').textContent = t('prompt.available', { status: t(`status.${state.me.status}`) });
}

async function setMyStatus(status) {
  try {
    const r = await state.conn.request({ type: 'agent.status', status });
    state.me = r.agent;
  } catch {
    announce(t('status.failed'));
  }
  renderMe();
  renderPrompt();
}

function openSettings() {
  $('pref-notify').checked = state.prefs.notify;
  $('pref-sound').checked = state.prefs.sound;
  $('notify-blocked').hidden = !state.prefs.notify || !notificationsBlocked();
  $('settings-dialog').showModal();
}

async function onNotifyPref() {
  const box = $('pref-notify');
  let on = box.checked;
  if (on) on = await allowNotifications();
  box.checked = on;
  $('notify-blocked').hidden = on || !notificationsBlocked();
  state.prefs = { ...state.prefs, notify: on };
  savePrefs(state.prefs);
}

function onSoundPref() {
  const on = $('pref-sound').checked;
  if (on) {
    unlockSound();
    chime();
  }
  state.prefs = { ...state.prefs, sound: on };
  savePrefs(state.prefs);
}

/** A user's message the agent is not looking at: the title counts it (see renderList); the sound
 *  and the desktop notification only if the agent turned them on. */
function alertNewMessage(ticket) {
  ring();
  if (state.prefs.notify && ticket) {
    notify({
      ticketId: ticket.id,
      name: userName(ticket.user_id),
      subject: ticket.subject,
      onClick: () => openTicket(ticket.id, true),
    });
  }
}

/** A note naming this agent, on a ticket they are not looking at: the same alert as for a new
 *  message, the writer's name in the notification's title. */
function alertNote(note, ticket) {
  ring();
  if (state.prefs.notify) {
    notify({
      ticketId: note.ticket_id,
      title: t('notify.note', { name: typed(agentName(note.agent_id)) }),
      subject: ticket ? ticket.subject : t('note.label'),
      tag: `note-${note.id}`,
      onClick: () => openTicket(note.ticket_id, true),
    });
  }
}

/** The sound, if the agent turned it on, at most once every CHIME_EVERY_MS. */
function ring() {
  if (state.prefs.sound && Date.now() - state.lastChime > CHIME_EVERY_MS) {
    state.lastChime = Date.now();
    chime();
  }
}

// ---------------------------------------------------------------------------------------------
// Agents, profiles, presence

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

/** An agent as a catalogue parameter: another agent's name (isolated), or "you". */
function agentRef(id, atStart) {
  if (!id) return t('agent.an');
  if (state.me && id === state.me.id) return t(atStart ? 'agent.you_start' : 'agent.you');
  const a = state.agents.get(id);
  return a ? typed(a.name) : t('agent.another');
}

/** An agent's name as plain text: another agent's, or the catalogue's words for an unknown one. */
function agentName(id) {
  const a = state.agents.get(id);
  return a ? a.name : t('agent.another');
}

function ticketUser(ticketId) {
  const th = state.tickets.get(ticketId);
  return th ? th.user_id : null;
}

function userName(userId) {
  const p = state.profiles.get(userId);
  if (p && p.name) return p.name;
  return userId ? t('user.fallback', { tail: userId.slice(-4) }) : t('user.fallback', { tail: '' });
}

function setProfile(profile) {
  if (!profile || !profile.user_id) return;
  state.profiles.set(profile.user_id, profile);
  renderList();
  if (ticketUser(state.current) === profile.user_id) {
    renderTicket();
    renderCustomerPanel();
  }
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
  for (const th of visibleTickets().slice(0, 50)) {
    if (!state.profiles.has(th.user_id)) state.profileWanted.add(th.user_id);
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
    announce(t(frame.online ? 'announce.online' : 'announce.offline', { name: typed(userName(p.id)) }));
  }
}

function presenceText(profile) {
  if (!profile) return '';
  if (profile.online) return t('presence.online');
  if (profile.last_seen_at) return t('presence.last_seen', { when: relativeTime(profile.last_seen_at) });
  return t('presence.offline');
}

// ---------------------------------------------------------------------------------------------
// The customer panel

function setPanel(open) {
  state.panelOpen = open;
  $('app').dataset.panel = open ? 'open' : 'closed';
  $('customer-toggle').setAttribute('aria-expanded', String(open));
  if (open) $('customer-close').focus();
}

/** Fetches the customer of the ticket on screen (`customer.get`): profile, device, tickets. */
async function loadCustomer(userId, force) {
  if (!userId) return;
  if (state.customer.userId !== userId) {
    state.customer = { userId, customer: null, loading: false, failed: false };
  }
  const view = state.customer;
  if (!state.online || view.loading || (!force && view.customer)) {
    renderCustomerPanel();
    return;
  }
  view.loading = true;
  renderCustomerPanel();
  try {
    const r = await state.conn.request({ type: 'customer.get', user_id: userId });
    view.customer = r.customer;
    view.failed = false;
    if (state.customer === view) {
      setProfile(r.customer.profile);
      for (const ticket of r.customer.tickets) updateTicket(ticket, false);
    }
  } catch {
    view.failed = !view.customer;
  } finally {
    view.loading = false;
    renderCustomerPanel();
  }
}

/** A ticket of the customer on screen changed: the panel's list follows without a new fetch. */
function patchCustomerTickets(ticket) {
  const c = state.customer.customer;
  if (!c || ticket.user_id !== state.customer.userId) return;
  const rest = c.tickets.filter((x) => x.id !== ticket.id);
  const known = c.tickets.find((x) => x.id === ticket.id);
  if (known && known.last_seq > ticket.last_seq) return;
  c.tickets = [ticket, ...rest].sort((a, b) => b.updated_at - a.updated_at).slice(0, 50);
  renderCustomerPanel();
}

function renderCustomerPanel() {
  const ticket = state.tickets.get(state.current);
  const panel = $('customer');
  panel.hidden = !state.current;
  $('app').querySelector('.columns').classList.toggle('with-customer', !!state.current);
  if (!state.current) return;
  const userId = ticket ? ticket.user_id : null;
  const view = state.customer.userId === userId ? state.customer : { customer: null, loading: true, failed: false };
  renderCustomer(view, {
    profile: userId ? state.profiles.get(userId) : null,
    ticketId: state.current,
    name: userName,
    presence: presenceText,
    badge: statusLabel,
    open: (id) => {
      setPanel(false);
      openTicket(id, true);
    },
  });
}

// ---------------------------------------------------------------------------------------------
// The queue

function takeQueueSnapshot(tickets) {
  // The snapshot is the truth for open and assigned tickets; resolved ones this tab saw stay.
  for (const [id, th] of state.tickets) {
    if (th.status !== 'resolved' && !state.threads.has(id)) state.tickets.delete(id);
  }
  state.queueOrder.clear();
  state.queueCounter = 0;
  for (const th of tickets) {
    state.tickets.set(th.id, th);
    if (th.status === 'open') state.queueOrder.set(th.id, state.queueCounter++);
    // The agent's own tickets are followed, for their unread counts; `onReady` subscribes.
    if (isMine(th) && state.threads.size < MAX_FOLLOWED) thread(th.id);
  }
  saveFollowed();
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
      if (live) {
        announce(t('announce.new_ticket', { subject: typed(ticket.subject) }));
        if (state.prefs.sound && Date.now() - state.lastChime > CHIME_EVERY_MS) {
          state.lastChime = Date.now();
          chime();
        }
      }
    }
  } else {
    state.queueOrder.delete(ticket.id);
  }
  if (isMine(ticket) && !state.threads.has(ticket.id) && state.threads.size < MAX_FOLLOWED) {
    const th = thread(ticket.id);
    saveFollowed();
    if (state.online) follow(th);
  }
  if (!state.profiles.has(ticket.user_id)) {
    state.profileWanted.add(ticket.user_id);
    drainProfiles();
  }
  patchCustomerTickets(ticket);
  if (state.search) {
    state.search.updateTicket(ticket);
    renderSearch();
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
  state.mentioned.delete(ticketId);
  state.noteMode.delete(ticketId);
  state.ticketLabels.forget(ticketId);
  state.ratings.forget(ticketId);
  if (state.search) {
    state.search.dropTicket(ticketId);
    renderSearch();
  }
  dropDraft(ticketId);
  if (state.threads.delete(ticketId)) {
    saveFollowed();
    saveNoteOutbox();
  }
  const c = state.customer.customer;
  if (c) c.tickets = c.tickets.filter((x) => x.id !== ticketId);
  if (state.current === ticketId) {
    state.current = null;
    history.replaceState(null, '', location.pathname);
    $('events').replaceChildren();
    $('outbox').replaceChildren();
    showTicketPane(false);
    showList();
    announce(t('announce.deleted_current'));
  } else if (ticket) {
    announce(t('announce.deleted', { subject: typed(ticket.subject) }));
  }
  renderList();
}

/** Since when an open ticket's user has waited: its entry in the queue (the hub's `queued_at`). */
function waitingSince(ticket) {
  return ticket.queued_at ?? ticket.created_at;
}

function visibleTickets(filter = state.filter) {
  const label = state.labelFilter;
  const all = [...state.tickets.values()].filter((th) => !label || state.ticketLabels.has(th.id, label));
  const mine = (th) => isMine(th);
  const rank = { open: 0, assigned: 1, resolved: 2 };
  // The queue: who waited longest first.
  const byWait = (a, b) =>
    waitingSince(a) - waitingSince(b) || (state.queueOrder.get(a.id) ?? 0) - (state.queueOrder.get(b.id) ?? 0);
  const byUpdate = (a, b) => b.updated_at - a.updated_at;
  if (filter === 'unassigned') return all.filter((th) => th.status === 'open').sort(byWait);
  if (filter === 'mine') return all.filter(mine).sort(byUpdate);
  return all.sort((a, b) => rank[a.status] - rank[b.status] || (a.status === 'open' ? byWait(a, b) : byUpdate(a, b)));
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

/** Arrow keys move between the tabs (WAI-ARIA tabs pattern), in the reading direction: in Persian
 *  the next tab is on the left. */
function onTabKey(e) {
  const tabs = [...document.querySelectorAll('[role=tab]')];
  const i = tabs.indexOf(e.currentTarget);
  const forward = direction() === 'rtl' ? 'ArrowLeft' : 'ArrowRight';
  const backward = direction() === 'rtl' ? 'ArrowRight' : 'ArrowLeft';
  let next = null;
  if (e.key === forward) next = tabs[(i + 1) % tabs.length];
  else if (e.key === backward) next = tabs[(i - 1 + tabs.length) % tabs.length];
  else if (e.key === 'Home') next = tabs[0];
  else if (e.key === 'End') next = tabs[tabs.length - 1];
  if (next) {
    e.preventDefault();
    setFilter(next.dataset.filter, true);
  }
}

/** ↑ ↓ Home End move between the tickets of the list; Enter opens one. */
function onListKey(e) {
  const items = [...$('ticket-list').querySelectorAll('.ticket-item')];
  const i = items.indexOf(document.activeElement);
  if (i < 0 || e.altKey || e.ctrlKey || e.metaKey) return;
  let next = null;
  if (e.key === 'ArrowDown') next = items[Math.min(i + 1, items.length - 1)];
  else if (e.key === 'ArrowUp') next = items[Math.max(i - 1, 0)];
  else if (e.key === 'Home') next = items[0];
  else if (e.key === 'End') next = items[items.length - 1];
  if (next) {
    e.preventDefault();
    next.focus();
  }
}

/** Anywhere: Alt+↓ and Alt+↑ open the next and previous ticket of the list; Esc closes the
 *  customer drawer. */
function onGlobalKey(e) {
  if (!state.session || $('app').hidden || document.querySelector('dialog[open]')) return;
  if (e.altKey && !e.ctrlKey && !e.metaKey && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
    const list = visibleTickets();
    if (!list.length) return;
    e.preventDefault();
    const i = list.findIndex((th) => th.id === state.current);
    const step = e.key === 'ArrowDown' ? 1 : -1;
    const next = i < 0 ? list[0] : list[Math.min(Math.max(i + step, 0), list.length - 1)];
    if (next && next.id !== state.current) openTicket(next.id, true);
  } else if (e.key === 'Escape' && state.panelOpen && !picker.open) {
    setPanel(false);
    $('customer-toggle').focus();
  }
}

function renderList() {
  let unreadTotal = 0;
  for (const f of ['unassigned', 'mine', 'all']) $(`count-${f}`).textContent = formatNumber(visibleTickets(f).length);
  const list = $('ticket-list');
  const tickets = visibleTickets();
  const focusedId = document.activeElement && document.activeElement.dataset && document.activeElement.dataset.ticket;
  const now = Date.now();
  for (const ticket of state.tickets.values()) unreadTotal += unreadCount(ticket);
  // Notes naming the agent count as unread, on any ticket (also one this tab does not list).
  for (const ids of state.mentioned.values()) unreadTotal += ids.size;
  const items = tickets.map((ticket) => {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'ticket-item';
    b.dataset.ticket = ticket.id;
    if (ticket.id === state.current) b.setAttribute('aria-current', 'true');
    const unread = unreadCount(ticket);
    const line = el('span', 'line', '');
    const subject = el('span', 'subject', ticket.subject);
    subject.dir = 'auto';
    line.append(subject);
    const mentioned = state.mentioned.has(ticket.id);
    if (mentioned) {
      const badge = el('span', 'mention-badge', '@');
      badge.setAttribute('aria-hidden', 'true');
      badge.title = t('list.mentioned');
      line.append(badge);
    }
    if (unread) {
      const count = el('span', 'unread-count', formatNumber(unread));
      count.setAttribute('aria-hidden', 'true');
      line.append(count);
    }
    const meta = el('span', 'meta', '');
    const profile = state.profiles.get(ticket.user_id);
    const dot = el('span', `presence-dot ${profile && profile.online ? 'on' : 'off'}`, '');
    dot.setAttribute('aria-hidden', 'true');
    meta.append(dot, bdi(userName(ticket.user_id), 'name'));
    // An open ticket says how long it has waited, which says that it waits.
    if (ticket.status !== 'open') meta.append(el('span', `badge ${ticket.status}`, statusLabel(ticket)));
    if (ticket.status === 'open') {
      const since = waitingSince(ticket);
      const when = el('time', 'when waiting', t('list.waiting', { duration: duration(now - since) }));
      when.dateTime = new Date(since).toISOString();
      when.title = fullTime(since);
      meta.append(when);
    } else {
      const when = el('time', 'when', shortTime(ticket.updated_at, now));
      when.dateTime = new Date(ticket.updated_at).toISOString();
      when.title = fullTime(ticket.updated_at);
      meta.append(when);
    }
    b.append(line, meta);
    const on = chips(state.labels, state.ticketLabels.ids(ticket.id));
    if (on.length) b.append(chipRow(on));
    if (unread) {
      b.classList.add('unread');
      b.append(el('span', 'visually-hidden', ` (${t('list.unread', { n: unread })})`));
    }
    if (mentioned) b.append(el('span', 'visually-hidden', ` (${t('list.mentioned')})`));
    b.addEventListener('click', () => openTicket(ticket.id, true));
    li.append(b);
    return li;
  });
  list.replaceChildren(...items);
  $('empty-list').hidden = tickets.length > 0;
  $('empty-list').textContent = t(state.labelFilter ? 'labels.filter_empty' : 'list.empty');
  if (focusedId) {
    const again = list.querySelector(`[data-ticket="${CSS.escape(focusedId)}"]`);
    if (again) again.focus();
  }
  setTitle(unreadTotal);
}

/** The user's messages in a ticket the agent holds that the agent has not read yet. */
function unreadCount(ticket) {
  if (!isMine(ticket)) return 0;
  const th = state.threads.get(ticket.id);
  if (!th || !th.loaded) return 0;
  const seen = state.seen.get(ticket.id) ?? 0;
  let n = 0;
  for (const e of th.events.values()) {
    if (e.seq > seen && e.kind === 'message' && e.author.kind === 'user') n++;
  }
  return n;
}

function statusLabel(ticket) {
  if (ticket.status === 'open') return t('badge.open');
  if (ticket.status === 'resolved') return t('badge.resolved');
  return state.me && ticket.agent_id === state.me.id ? t('badge.yours') : t('badge.with', { agent: agentRef(ticket.agent_id) });
}

// ---------------------------------------------------------------------------------------------
// Following tickets

function thread(ticketId) {
  let th = state.threads.get(ticketId);
  if (!th) {
    th = new Thread(ticketId);
    th.notes = new NoteList(ticketId);
    state.threads.set(ticketId, th);
  }
  return th;
}

function currentThread() {
  return state.current ? state.threads.get(state.current) : null;
}

function saveFollowed() {
  if (state.session) saveJson(FOLLOW_KEY, [...state.threads.keys()]);
}

function saveNoteOutbox() {
  if (!state.session) return;
  const out = {};
  for (const [id, th] of state.threads) {
    const pending = th.notes.stored();
    if (pending.length) out[id] = pending;
  }
  saveJson(NOTE_OUTBOX_KEY, out);
}

function openFromHash() {
  const m = /^#ticket=([0-9a-f-]{36})$/.exec(location.hash);
  if (m && state.session && m[1] !== state.current) openTicket(m[1], false);
}

/** Narrow screens: back from the conversation to the list. */
function showList() {
  setView('list');
  setPanel(false);
  const item = state.current && $('ticket-list').querySelector(`[data-ticket="${CSS.escape(state.current)}"]`);
  if (item && !$('app').hidden) item.focus();
}

function setView(view) {
  state.view = view;
  $('app').dataset.view = view;
}

async function openTicket(ticketId, fromList) {
  state.current = ticketId;
  setView('ticket');
  if (location.hash !== `#ticket=${ticketId}`) history.replaceState(null, '', `#ticket=${ticketId}`);
  // Most recently opened last; let the oldest go beyond the limit.
  const th = thread(ticketId);
  state.threads.delete(ticketId);
  state.threads.set(ticketId, th);
  while (state.threads.size > MAX_FOLLOWED) {
    const [oldId, old] = state.threads.entries().next().value;
    if (pendingOf(oldId).length || old.sent.size || old.notes.outbox.size) break;
    state.threads.delete(oldId);
    state.conn.unfollow(oldId);
  }
  saveFollowed();
  $('events').replaceChildren();
  $('outbox').replaceChildren();
  $('ticket-error').textContent = '';
  $('reply').value = '';
  state.chosenMentions = [];
  picker.close();
  mentionPicker.close();
  renderComposerFiles();
  showTicketPane(true);
  renderTicket();
  renderMessages(true);
  seeMentions(ticketId);
  renderList();
  const user = ticketUser(ticketId);
  if (user) loadCustomer(user, true);
  renderCustomerPanel();
  if (fromList) focusTicketAction();
  if (state.online) {
    if (!th.notes.loaded || th.notes.stale) loadNotes(th);
    loadRatings(ticketId);
    await follow(th);
    // A ticket followed before: its new events are on screen now.
    markRead(th);
    await loadProfile(ticketUser(ticketId), true);
  }
}

/** Reads the last page of a ticket and has the SDK follow it from there: the hub sends the
 *  events after the page, and the SDK resumes the ticket after every reconnect. */
function follow(th) {
  // One at a time per ticket: a call while another runs waits for it, then runs again (it may come
  // from a reconnect that made the first one fail).
  const run = (th.following || Promise.resolve()).catch(() => {}).then(() => followOnce(th));
  th.following = run;
  run
    .finally(() => {
      if (th.following === run) th.following = null;
    })
    .catch(() => {});
  return run;
}

async function followOnce(th) {
  const client = state.conn;
  if (!client || !state.threads.has(th.ticketId) || th.loaded) return;
  try {
    const known = state.tickets.get(th.ticketId);
    const before = known ? known.last_seq + 1 : Number.MAX_SAFE_INTEGER;
    const page = await client.request({ type: 'ticket.history', ticket_id: th.ticketId, before_seq: before, limit: PAGE });
    th.prepend(page.events, page.more);
    th.loaded = true;
    client.follow(th.ticketId, th.cursor);
  } catch (e) {
    if (e.code === 'not_found' || e.code === 'forbidden') {
      state.threads.delete(th.ticketId);
      saveFollowed();
      if (th.ticketId === state.current) $('ticket-error').textContent = t('ticket.cannot_open');
    }
    // `disconnected`: the next `onReady` tries again.
  }
}

/** The SDK resumed a followed ticket on the current socket (`ticket.subscribe.ok`). */
async function onSubscribed(ticketId, r) {
  const th = state.threads.get(ticketId);
  if (!th) return;
  updateTicket(r.ticket, false);
  for (const m of r.marks || []) onReceipt({ ticket_id: ticketId, ...m });
  if (!state.profiles.has(r.ticket.user_id)) await loadProfile(r.ticket.user_id, false);
  if (ticketId === state.current) {
    if (state.customer.userId !== r.ticket.user_id) loadCustomer(r.ticket.user_id, true);
    renderMessages(false);
    markRead(th);
  }
  renderList();
}

/** The SDK starts a ticket again from seq 0: our copy is ahead of the hub's (a restored database). */
function onCursorReset(ticketId, cursor) {
  const th = state.threads.get(ticketId);
  if (!th || cursor !== 0) return;
  th.reset();
  th.notes.reset();
  if (ticketId === state.current) {
    renderMessages(true);
    loadNotes(th);
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
  const th = state.threads.get(event.ticket_id);
  if (!th || !th.loaded) return;
  if (!th.push(event)) return;
  const ticket = state.tickets.get(event.ticket_id);
  if (event.kind === 'message' && event.author.kind === 'user') {
    th.typingUntil = 0;
    const looking = event.ticket_id === state.current && document.visibilityState === 'visible';
    if (event.ticket_id === state.current) {
      const body = event.body || t('message.files', { n: (event.attachments || []).length });
      announce(t('announce.message', { name: typed(userName(event.author.id)), body: typed(body) }));
    } else if (ticket) {
      announce(t('announce.new_message', { subject: typed(ticket.subject) }));
    }
    if (!looking || !document.hasFocus()) alertNewMessage(ticket);
  }
  if (event.ticket_id === state.current) {
    renderMessages(false);
    renderTyping();
    markRead(th);
  }
  renderList();
}

/** A note stored on any ticket (`ticket.note`, to every agent's socket, the writer's too): kept in
 *  the ticket's thread if this tab follows it; a note naming this agent alerts them unless they
 *  are looking at its ticket. */
function onTicketNote(note) {
  if (!note || typeof note.id !== 'string' || !note.ticket_id) return;
  const th = state.threads.get(note.ticket_id);
  if (th) {
    th.notes.add(note);
    saveNoteOutbox();
  }
  const current = note.ticket_id === state.current;
  const byMe = !!state.me && note.agent_id === state.me.id;
  if (!byMe && !state.alerted.has(note.id)) {
    if (state.alerted.size >= ALERTED_NOTES) state.alerted.clear();
    state.alerted.add(note.id);
    const ticket = state.tickets.get(note.ticket_id);
    const name = typed(agentName(note.agent_id));
    const forMe = !!state.me && mentionsMe(note, state.me.id);
    const visible = current && document.visibilityState === 'visible';
    if (current) announce(t('announce.note', { name, body: typed(note.body) }));
    else if (forMe) announce(t('announce.note_for_you', { name, subject: typed(ticket ? ticket.subject : '') }));
    if (forMe && !visible) {
      if (!state.mentioned.has(note.ticket_id)) state.mentioned.set(note.ticket_id, new Set());
      state.mentioned.get(note.ticket_id).add(note.id);
    }
    if (forMe && !(visible && document.hasFocus())) alertNote(note, ticket);
  }
  if (current) renderMessages(false);
  renderList();
}

/** The agent sees the ticket on screen: its notes for them are no longer unseen. */
function seeMentions(ticketId) {
  if (!ticketId || ticketId !== state.current || document.visibilityState !== 'visible') return;
  if (state.mentioned.delete(ticketId)) renderList();
}

/** Reads a ticket's newest notes (on opening it, and after a reconnect); older ones come with
 *  `loadOlder`. */
async function loadNotes(th) {
  const notes = th.notes;
  if (!state.online || notes.loading) return;
  notes.loading = true;
  try {
    const r = await state.conn.request({ type: 'note.list', ticket_id: th.ticketId, limit: NOTE_PAGE });
    notes.newest(r.notes, r.more);
    saveNoteOutbox();
    if (th.ticketId === state.current) renderMessages(false);
  } catch {
    // Read again when the ticket is opened or the socket is back.
  } finally {
    notes.loading = false;
  }
}

function onReceipt(frame) {
  const th = state.threads.get(frame.ticket_id);
  const p = frame.participant;
  if (!th || !p) return;
  if (p.kind === 'agent' && state.me && p.id === state.me.id) {
    // This agent read it here, in another tab, or before a reload.
    if (frame.read_seq > (state.seen.get(frame.ticket_id) ?? 0)) {
      state.seen.set(frame.ticket_id, frame.read_seq);
      th.readSent = Math.max(th.readSent, frame.read_seq);
      renderList();
    }
    return;
  }
  if (p.kind !== 'user') return;
  th.userDelivered = Math.max(th.userDelivered, frame.delivered_seq);
  th.userRead = Math.max(th.userRead, frame.read_seq);
  if (state.session) {
    const marks = {};
    for (const [id, x] of state.threads) if (x.userDelivered) marks[id] = [x.userDelivered, x.userRead];
    saveJson(MARKS_KEY, marks);
  }
  if (frame.ticket_id === state.current) updateTicks();
}

function onTyping(frame) {
  const th = state.threads.get(frame.ticket_id);
  if (!th || !frame.participant || frame.participant.kind !== 'user') return;
  th.typingUntil = Date.now() + TYPING_SHOW_MS;
  if (frame.ticket_id === state.current) {
    renderTyping();
    setTimeout(renderTyping, TYPING_SHOW_MS + 50);
  }
}

/** Read marks go out when the agent can see the conversation (the SDK sends them at most once a
 *  second, and delivered marks as events arrive). */
function markRead(th) {
  if (!th || !th.loaded || !state.online || document.visibilityState !== 'visible') return;
  if (th.cursor <= th.readSent) return;
  const seq = th.cursor;
  th.readSent = seq;
  state.seen.set(th.ticketId, Math.max(seq, state.seen.get(th.ticketId) ?? 0));
  renderList();
  state.conn.markRead(th.ticketId, seq);
}

/** Reads further back in the stream, messages or notes, where the conversation on screen starts
 *  (see `timeline` in notes.js): the one whose oldest item held is the later. */
async function loadOlder() {
  const th = currentThread();
  if (!th || !th.loaded || th.loadingOlder || !state.online) return;
  const events = th.ordered();
  const notes = th.notes.ordered();
  const eventsFrom = th.more && events.length ? events[0].at : -Infinity;
  const notesFrom = th.notes.loaded && th.notes.more && notes.length ? notes[0].at : -Infinity;
  if (eventsFrom === -Infinity && notesFrom === -Infinity) return;
  th.loadingOlder = true;
  const box = $('messages');
  const fromBottom = box.scrollHeight - box.scrollTop;
  try {
    if (eventsFrom >= notesFrom) {
      const page = await state.conn.request({
        type: 'ticket.history',
        ticket_id: th.ticketId,
        before_seq: th.oldest,
        limit: PAGE,
      });
      th.prepend(page.events, page.more);
    } else {
      const page = await state.conn.request({
        type: 'note.list',
        ticket_id: th.ticketId,
        before_id: notes[0].id,
        limit: NOTE_PAGE,
      });
      th.notes.older(page.notes, page.more);
    }
    if (th.ticketId === state.current) {
      renderMessages(false);
      // Keep the messages the agent was reading where they were.
      box.scrollTop = box.scrollHeight - fromBottom;
    }
  } catch {
    // Try again on the next scroll.
  } finally {
    th.loadingOlder = false;
  }
}

function onMessagesScroll() {
  if ($('messages').scrollTop < 80) loadOlder();
}

// ---------------------------------------------------------------------------------------------
// Sending, and canned replies

function onReplyKey(e) {
  if (picker.key(e) || mentionPicker.key(e)) return;
  if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.isComposing) {
    e.preventDefault();
    sendReply();
  }
}

function onReplyInput() {
  updateSend();
  // A note is for agents: the user is not told that someone writes.
  if (noteMode()) return;
  const ticket = state.tickets.get(state.current);
  if (!state.online || !ticket || !isMine(ticket) || !$('reply').value.trim()) return;
  state.conn.typing(ticket.id);
}

function isMine(ticket) {
  return !!state.me && !!ticket && ticket.status === 'assigned' && ticket.agent_id === state.me.id;
}

/** Send works only where the hub would take the message: a ticket the agent holds, and a reply
 *  that is not only white space. Offline it is kept and sent after the reconnect. */
function updateSend() {
  const ticket = state.tickets.get(state.current);
  const body = $('reply').value;
  $('send').disabled = noteMode() ? !ticket || !body.trim() : !isMine(ticket) || !draftOf(state.current).sendable(body);
}

function sendReply() {
  if (noteMode()) {
    sendNote();
    return;
  }
  const ticket = state.tickets.get(state.current);
  const body = $('reply').value;
  if (!ticket) return;
  const draft = draftOf(ticket.id);
  if (!draft.sendable(body)) return;
  if (!isMine(ticket)) {
    $('ticket-error').textContent = t('action.claim_first');
    return;
  }
  const attachments = draft.attachments();
  // With files, white space alone is no text: the hub takes an empty body then.
  const text = attachments.length && !body.trim() ? '' : body;
  // The SDK's outbox sends it once, in order, over reconnects and reloads; the attachments'
  // names and sizes ride in the entry to show it meanwhile.
  state.conn.send(ticket.id, text, {
    attachments: attachments.map((a) => a.id),
    meta: { attachments: attachments.map(attachmentSummary) },
  });
  draft.clear();
  renderComposerFiles();
  $('reply').value = '';
  updateSend();
  renderMessages(false, true);
}

/** The replies of a ticket still in the SDK's outbox, oldest first. */
function pendingOf(ticketId) {
  return state.conn ? state.conn.outbox.list().filter((e) => e.ticket_id === ticketId && e.state !== 'failed') : [];
}

/** A reply changed state in the SDK's outbox: pending, sent (acknowledged) or failed. */
function onDelivery(d) {
  // Marks of the user's (delivered, read): the ticks follow `ticket.receipt`.
  if (d.state === 'delivered' || d.state === 'read') return;
  const th = d.ticket_id && state.threads.get(d.ticket_id);
  if (th && d.state === 'sent') th.acknowledged(d.client_msg_id, d.entry, d.seq);
  if (th && d.state === 'failed') {
    th.refused(d.client_msg_id, d.entry, d.code);
    // Kept by the SDK after `internal` for a retry with the same id; the agent edits it instead.
    state.conn.outbox.remove(d.client_msg_id);
  }
  if (d.ticket_id === state.current) renderMessages(false);
}

// ---------------------------------------------------------------------------------------------
// Private notes: the composer writes one instead of a message when its toggle says so. Notes can
// be written on any ticket, whoever holds it; they carry no files.

/** Whether the composer of the ticket on screen writes a private note. */
function noteMode() {
  return !!state.current && state.noteMode.has(state.current);
}

function setComposeMode(mode) {
  if (!state.current) return;
  if (mode === 'note') {
    state.noteMode.add(state.current);
    // Agents added since the socket opened can be mentioned too.
    refreshAgents();
  } else {
    state.noteMode.delete(state.current);
  }
  picker.close();
  mentionPicker.close();
  $('ticket-error').textContent = '';
  renderTicket();
  renderComposerFiles();
  if (!$('reply').disabled) $('reply').focus();
}

/** The toggle, the warning, and what the reply box and Send say, for the mode of the ticket. */
function renderComposerMode() {
  const note = noteMode();
  $('mode-note').checked = note;
  $('mode-message').checked = !note;
  $('composer').classList.toggle('note-mode', note);
  $('note-warning').hidden = !note;
  const placeholder = t(note ? 'composer.placeholder_note' : 'composer.placeholder');
  if ($('reply').placeholder !== placeholder) $('reply').placeholder = placeholder;
  $('reply').setAttribute('aria-describedby', note ? 'note-warning composer-hint' : 'composer-hint');
  const send = t(note ? 'composer.add_note' : 'composer.send');
  if ($('send').textContent !== send) $('send').textContent = send;
}

function sendNote() {
  const ticket = state.tickets.get(state.current);
  const body = $('reply').value;
  if (!ticket || !body.trim() || !state.me) return;
  const th = thread(ticket.id);
  th.notes.queue(body, mentionedIds(body, state.chosenMentions), state.me.id);
  state.chosenMentions = [];
  mentionPicker.close();
  $('reply').value = '';
  updateSend();
  saveNoteOutbox();
  renderMessages(false, true);
  flushNotes(th);
}

/** Sends every unsent note of a thread, each with its own `client_msg_id`, so that a resend after a
 *  reconnect or a lost reply is stored once (the hub answers the note stored first). */
function flushNotes(th) {
  if (!state.online) return;
  for (const [clientMsgId, m] of th.notes.unsent()) {
    m.inFlight = true;
    state.conn
      .request(th.notes.sendFrame(clientMsgId))
      .then((r) => {
        m.inFlight = false;
        th.notes.add(r.note);
      })
      .catch((e) => {
        m.inFlight = false;
        if (RETRYABLE.has(e.code)) {
          // Sent again after the hint, or by the next `onReady` after a reconnect.
          if (e.retryAfterMs) setTimeout(() => flushNotes(th), e.retryAfterMs);
          return;
        }
        Object.assign(m, { state: 'failed', errorCode: e.code });
      })
      .finally(() => {
        saveNoteOutbox();
        if (th.ticketId === state.current) renderMessages(false);
      });
  }
}

/** Why a note was not stored, by the hub's error code. */
function noteErrorText(code) {
  return ['too_large', 'empty_body', 'bad_request', 'not_found'].includes(code) ? t(`note.${code}`) : t('note.failed');
}

/** Why a message was not sent, by the hub's error code. */
function sendErrorText(code) {
  const key = `send.${code}`;
  return ['wrong_state', 'forbidden', 'too_large', 'empty_body', 'not_found'].includes(code) ? t(key) : t('send.failed');
}

// ---------------------------------------------------------------------------------------------
// Files attached to the reply: chosen with the button, pasted, or dropped on the ticket. Each one
// uploads at once (a few at a time); Send waits until they are all in.

function draftOf(ticketId) {
  let draft = state.drafts.get(ticketId);
  if (!draft) {
    draft = new Draft();
    state.drafts.set(ticketId, draft);
  }
  return draft;
}

/** Forgets a ticket's files, stopping their uploads (sign-out, a deleted ticket). */
function dropDraft(ticketId) {
  const draft = state.drafts.get(ticketId);
  if (!draft) return;
  state.drafts.delete(ticketId);
  for (const item of draft.items) if (item.abort) item.abort();
}

function attachFiles(files) {
  const ticket = state.tickets.get(state.current);
  if (!files.length || !ticket) return;
  if (noteMode()) {
    $('ticket-error').textContent = t('note.no_files');
    return;
  }
  if (!isMine(ticket)) {
    $('ticket-error').textContent = t('attach.claim_first');
    return;
  }
  $('ticket-error').textContent = '';
  const draft = draftOf(ticket.id);
  for (const file of files) draft.add(file);
  startUploads(ticket.id, draft);
  renderComposerFiles();
}

/** Starts the uploads whose turn has come; each one that ends lets the next start. */
function startUploads(ticketId, draft) {
  for (const item of draft.start()) {
    const { promise, abort } = upload(item.file, {
      token: state.session.token,
      onProgress: (sent) => {
        draft.progress(item.key, sent);
        if (state.current === ticketId) renderComposerFiles();
      },
    });
    item.abort = abort;
    promise
      .then((attachment) => draft.stored(item.key, attachment))
      .catch((e) => draft.failed(item.key, e.code))
      .finally(() => {
        item.abort = null;
        if (state.drafts.get(ticketId) !== draft) return;
        startUploads(ticketId, draft);
        if (state.current === ticketId) renderComposerFiles();
      });
  }
}

function removeFile(key) {
  const ticketId = state.current;
  const draft = state.drafts.get(ticketId);
  const item = draft && draft.remove(key);
  if (!item) return;
  if (item.abort) item.abort();
  if (item.state === 'stored' && state.session) discard(item.attachment.id, state.session.token);
  startUploads(ticketId, draft);
  renderComposerFiles();
  $('reply').focus();
}

/** The reply's files, and what Send and the hint say about them. */
function renderComposerFiles() {
  const draft = state.current ? draftOf(state.current) : new Draft();
  renderDraft(draft, $('drafts'), removeFile);
  // A message's files wait while a note is written: the note does not carry them.
  if (noteMode()) $('drafts').hidden = true;
  updateSend();
  renderComposerHint();
}

function onReplyPaste(e) {
  const files = e.clipboardData ? [...e.clipboardData.files] : [];
  if (!files.length) return;
  // A pasted picture is a file to attach, not text.
  e.preventDefault();
  attachFiles(files);
}

function hasFiles(dataTransfer) {
  return !!dataTransfer && [...dataTransfer.types].includes('Files');
}

function onDragOver(e) {
  if (!hasFiles(e.dataTransfer)) return;
  e.preventDefault();
  e.dataTransfer.dropEffect = isMine(state.tickets.get(state.current)) && !noteMode() ? 'copy' : 'none';
  $('ticket').classList.add('dropping');
}

function onDrop(e) {
  $('ticket').classList.remove('dropping');
  if (!hasFiles(e.dataTransfer)) return;
  e.preventDefault();
  attachFiles([...e.dataTransfer.files]);
}

async function loadCanned() {
  try {
    state.canned = (await state.conn.request({ type: 'canned.list' })).replies;
    renderCanned();
  } catch {
    // Loaded again on the next connection.
  }
}

function openCanned() {
  $('canned-error').textContent = '';
  renderCanned();
  $('canned-dialog').showModal();
  $('canned-new-title').focus();
}

function renderCanned() {
  $('canned-empty').hidden = state.canned.length > 0;
  $('canned-list').replaceChildren(
    ...state.canned.map((r) => {
      const li = document.createElement('li');
      const text = el('span', 'text', '');
      const body = el('span', 'body', r.body);
      body.dir = 'auto';
      text.append(bdi(r.title, 'title'), body);
      const del = el('button', 'link', t('canned.delete'));
      del.type = 'button';
      del.setAttribute('aria-label', t('canned.delete_named', { title: typed(r.title) }));
      del.addEventListener('click', () => deleteCanned(r.id));
      li.append(text, del);
      return li;
    }),
  );
}

async function addCanned(e) {
  e.preventDefault();
  const title = $('canned-new-title').value;
  const body = $('canned-new-body').value;
  $('canned-error').textContent = '';
  try {
    const r = await state.conn.request({ type: 'canned.add', title, body });
    state.canned = r.replies;
    $('canned-new-title').value = '';
    $('canned-new-body').value = '';
    renderCanned();
    $('canned-new-title').focus();
  } catch (err) {
    $('canned-error').textContent = err.code === 'bad_request' ? t('canned.title_length') : errorText(err.code);
  }
}

async function deleteCanned(id) {
  $('canned-error').textContent = '';
  try {
    await state.conn.request({ type: 'canned.delete', reply_id: id });
    state.canned = state.canned.filter((r) => r.id !== id);
    renderCanned();
  } catch (err) {
    $('canned-error').textContent = errorText(err.code);
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
      $('ticket-error').textContent = t('action.choose_first');
      return;
    }
  }
  try {
    const r = await state.conn.request(frame);
    updateTicket(r.ticket, false);
    if (action === 'claim') {
      announce(t('announce.claimed'));
      $('reply').focus();
    } else if (action === 'transfer') {
      announce(t('announce.transferred', { agent: agentRef(frame.agent_id) }));
    } else {
      announce(t('announce.resolved'));
    }
  } catch (e) {
    $('ticket-error').textContent = actionErrorText(action, e.code);
  }
}

function actionErrorText(action, code) {
  if (code === 'disconnected' || code === 'timeout') return t('act.not_connected');
  if (code === 'wrong_state' && action === 'claim') return t('act.claim_taken');
  if (code === 'wrong_state') return t('act.not_yours');
  if (code === 'forbidden') return t('act.forbidden');
  if (code === 'not_found' && action === 'transfer') return t('act.no_such_agent');
  return errorText(code);
}

// ---------------------------------------------------------------------------------------------
// The ticket pane

function showTicketPane(show) {
  $('ticket').hidden = !show;
  $('no-ticket').hidden = show;
  if (!show) renderCustomerPanel();
}

function renderTicket() {
  const ticket = state.tickets.get(state.current);
  if (!state.current) return;
  const profile = ticket ? state.profiles.get(ticket.user_id) : null;
  $('ticket-subject').textContent = ticket ? ticket.subject : t('conversation.loading');
  $('user-name').textContent = ticket ? userName(ticket.user_id) : '';
  const presence = $('user-presence');
  presence.textContent = presenceText(profile);
  presence.dataset.online = profile && profile.online ? 'true' : 'false';
  const img = $('user-image');
  const initial = $('user-initial');
  if (profile && typeof profile.image === 'string' && profile.image.startsWith('/v1/media/')) {
    if (img.getAttribute('src') !== profile.image) img.src = profile.image;
    img.alt = t('picture.of', { name: typed(userName(ticket.user_id)) });
    img.hidden = false;
    initial.hidden = true;
  } else {
    img.hidden = true;
    img.removeAttribute('src');
    initial.hidden = false;
    initial.textContent = ticket ? userName(ticket.user_id).slice(0, 1).toUpperCase() : '';
  }
  const mine = isMine(ticket);
  const status = $('ticket-status');
  status.replaceChildren(
    ...(!ticket
      ? []
      : ticket.status === 'open'
        ? tNodes('ticket.open')
        : ticket.status === 'resolved'
          ? tNodes('ticket.resolved_by', { agent: agentRef(ticket.agent_id) })
          : mine
            ? tNodes('ticket.assigned_you')
            : tNodes('ticket.assigned_to', { agent: agentRef(ticket.agent_id) })),
  );
  $('claim').hidden = !ticket || ticket.status !== 'open';
  $('transfer-box').hidden = !mine;
  $('resolve').hidden = !mine;
  for (const id of ['claim', 'transfer', 'resolve']) $(id).disabled = !state.online;
  // A note can be written on any ticket; a message only on one the agent holds.
  const note = noteMode();
  $('reply').disabled = !(mine || (note && ticket));
  $('attach').disabled = !mine || note;
  if (!mine) picker.close();
  renderComposerMode();
  updateSend();
  renderComposerHint();
  $('canned-manage').hidden = !mine || note;
  for (const ref of $('events').querySelectorAll('.user-ref')) {
    const name = userName(ref.dataset.user);
    if (ref.textContent !== name) ref.textContent = name;
  }
  for (const ref of $('events').querySelectorAll('.note .author[data-agent]')) {
    const name = noteAuthorName(ref.dataset.agent);
    if (ref.textContent !== name) ref.textContent = name;
  }
  renderTransferOptions();
  renderTyping();
  renderTicketLabels();
  renderRatings();
}

function renderComposerHint() {
  const ticket = state.tickets.get(state.current);
  const mine = isMine(ticket);
  let text = '';
  if (!ticket) text = '';
  else if (noteMode()) text = t('composer.hint_note');
  else if (mine && draftOf(ticket.id).busy()) text = t('composer.uploading');
  else if (mine) text = t('composer.hint_mine');
  else if (ticket.status === 'open') text = t('composer.hint_open');
  else if (ticket.status === 'resolved') text = t('composer.hint_resolved');
  else text = t('composer.hint_other');
  if ($('composer-hint').textContent !== text) $('composer-hint').textContent = text;
}

function renderTransferOptions() {
  const select = $('transfer-to');
  const previous = select.value;
  const others = [...state.agents.values()]
    .filter((a) => !state.me || a.id !== state.me.id)
    .sort((a, b) => compare(a.name, b.name));
  // Rebuilt only when the list changed, so that an open drop-down is left alone.
  const key = JSON.stringify([language(), others.map((a) => [a.id, a.name, a.online, a.status])]);
  if (select.dataset.key === key) return;
  select.dataset.key = key;
  const options = others.map((a) => {
    const o = document.createElement('option');
    o.value = a.id;
    o.textContent = t('action.agent_option', {
      name: typed(a.name),
      state: a.online ? t(`status.${a.status}`) : t('agent.offline'),
    });
    return o;
  });
  const none = document.createElement('option');
  none.value = '';
  none.textContent = options.length ? t('action.choose_agent') : t('action.no_agents');
  select.replaceChildren(none, ...options);
  if ([...select.options].some((o) => o.value === previous)) select.value = previous;
}

function renderTyping() {
  const th = currentThread();
  const ticket = state.tickets.get(state.current);
  const typing = th && ticket && th.typingUntil > Date.now();
  $('typing').replaceChildren(...(typing ? tNodes('typing', { name: typed(userName(ticket.user_id)) }) : []));
}

/** Brings the message list in line with the thread: events in seq order with the ticket's notes
 *  among them by time (`timeline`), then the messages and notes being sent. Elements are keyed
 *  (`e:` seq, `n:` note id), so nothing is ever shown twice. */
function renderMessages(reset, forceBottom) {
  const th = currentThread();
  const list = $('events');
  const box = $('messages');
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  if (reset) list.replaceChildren();
  if (!th) return;
  const view = timeline(th.ordered(), th.more, th.notes.ordered(), th.notes.more);
  const keys = new Set(view.items.map((item) => item.key));
  const shown = new Map();
  for (const li of [...list.children]) {
    if (keys.has(li.dataset.key) && !shown.has(li.dataset.key)) shown.set(li.dataset.key, li);
    else li.remove();
  }
  let next = null;
  for (let i = view.items.length - 1; i >= 0; i--) {
    const item = view.items[i];
    const li = shown.get(item.key) || (item.event ? eventItem(item.event) : noteItem(item.note));
    if (li.parentNode !== list || li.nextSibling !== next) list.insertBefore(li, next);
    next = li;
  }
  const outbox = [
    ...[...th.sent.entries()].map(([id, m]) => outboxItem(id, { ...m, state: 'sent' })),
    ...pendingOf(th.ticketId).map((e) => outboxItem(e.client_msg_id, { body: e.body, attachments: attachmentsOf(e), state: 'pending' })),
    ...[...th.failed.entries()].map(([id, m]) => outboxItem(id, { ...m, state: 'failed' })),
  ];
  const notes = [...th.notes.outbox.entries()].map(([id, m]) => noteOutboxItem(id, m));
  $('outbox').replaceChildren(...outbox, ...notes);
  $('older').hidden = !view.more;
  updateTicks();
  if (reset || forceBottom || nearBottom) box.scrollTop = box.scrollHeight;
  // A short page leaves nothing to scroll: read further back at once.
  if (th.loaded && view.more && box.scrollHeight <= box.clientHeight) loadOlder();
}

function timeElement(ms) {
  const when = el('time', 'when', shortTime(ms));
  when.dateTime = new Date(ms).toISOString();
  when.title = fullTime(ms);
  return when;
}

function eventItem(e) {
  const li = document.createElement('li');
  li.dataset.key = `e:${e.seq}`;
  li.dataset.seq = String(e.seq);
  const when = timeElement(e.at);
  if (e.kind === 'message') {
    const mine = state.me && sameParticipant(e.author, { kind: 'agent', id: state.me.id });
    li.className = `message ${e.author.kind}${mine ? ' mine' : ''}`;
    const author = mine ? el('span', '', t('message.you')) : who(e.author, true);
    author.classList.add('author');
    li.append(author);
    if (e.body || !e.attachments || !e.attachments.length) {
      const body = el('p', 'body', e.body || '');
      // What a person wrote is laid out in its own direction, whatever the interface's.
      body.dir = 'auto';
      li.append(body);
    }
    if (Array.isArray(e.attachments) && e.attachments.length) li.append(attachmentList(e.attachments));
    li.append(when);
    if (mine) {
      const tick = el('span', 'tick', '');
      tick.dataset.seq = String(e.seq);
      li.append(tick);
    }
    return li;
  }
  li.className = 'system';
  const line = el('span', '', '');
  const by = who(e.author, true);
  switch (e.kind) {
    case 'opened':
      line.append(...tNodes('event.opened', { who: by, subject: typed(e.body || '') }));
      break;
    case 'claimed':
      if (e.author.kind === 'system') line.append(...tNodes('event.claimed_auto', { agent: agentRef(e.agent_id) }));
      else line.append(...tNodes('event.claimed', { who: by }));
      break;
    case 'transferred':
      line.append(...tNodes('event.transferred', { who: by, agent: agentRef(e.agent_id) }));
      break;
    case 'resolved':
      line.append(...tNodes('event.resolved', { who: by }));
      break;
    case 'reopened':
      line.append(...tNodes('event.reopened', { who: by }));
      break;
    default:
      line.append(...tNodes('event.other', { kind: e.kind }));
  }
  li.append(line, when);
  return li;
}

/** A stored private note: marked as one (its own background, a lock and the words), its writer and
 *  time, its text in its own direction with the agents it names picked out. */
function noteItem(n) {
  const li = document.createElement('li');
  li.dataset.key = `n:${n.id}`;
  const mine = !!state.me && n.agent_id === state.me.id;
  const forMe = !!state.me && mentionsMe(n, state.me.id);
  li.className = `note${mine ? ' mine' : ''}${forMe ? ' for-me' : ''}`;
  li.append(noteHead(n.agent_id, forMe), noteBody(n.body, n.mentions), timeElement(n.at));
  return li;
}

/** A note this agent is adding: pending, or failed with the reason and a way to edit it. */
function noteOutboxItem(id, m) {
  const li = document.createElement('li');
  li.className = `note mine ${m.state}`;
  li.dataset.clientMsgId = id;
  li.append(noteHead(state.me ? state.me.id : null, false), noteBody(m.body, m.mentions));
  const status = m.state === 'failed' ? noteErrorText(m.errorCode) : state.online ? t('note.saving') : t('tick.waiting');
  li.append(el('span', 'tick', status));
  if (m.state === 'failed') {
    const edit = el('button', 'link', t('tick.edit'));
    edit.type = 'button';
    edit.addEventListener('click', () => {
      const th = currentThread();
      const back = th && th.notes.takeBack(id);
      if (!back) return;
      state.noteMode.add(th.ticketId);
      $('reply').value = back.body;
      state.chosenMentions = back.mentions.filter((a) => state.agents.has(a)).map((a) => ({ id: a, name: state.agents.get(a).name }));
      renderTicket();
      renderComposerFiles();
      saveNoteOutbox();
      renderMessages(false);
      $('reply').focus();
    });
    li.append(edit);
  }
  return li;
}

function noteHead(agentId, forMe) {
  const head = el('span', 'note-head', '');
  const label = el('span', 'note-label', '');
  label.append(lockIcon(), el('span', '', t('note.label')));
  const author = agentId && state.me && agentId === state.me.id ? el('span', '', '') : document.createElement('bdi');
  author.className = 'author';
  author.dataset.agent = agentId || '';
  author.textContent = noteAuthorName(agentId);
  head.append(label, author);
  if (forMe) head.append(el('span', 'note-for', t('note.for_you')));
  return head;
}

/** A note's writer: "you", another agent's name, or the words for one the console does not know. */
function noteAuthorName(agentId) {
  if (state.me && agentId === state.me.id) return t('message.you');
  return agentName(agentId);
}

function noteBody(text, mentions) {
  const body = el('p', 'body', '');
  // What an agent wrote is laid out in its own direction, whatever the interface's.
  body.dir = 'auto';
  const names = new Map((mentions || []).map((id) => [id, state.agents.has(id) ? state.agents.get(id).name : '']));
  for (const piece of splitMentions(text, names)) {
    body.append(piece.id ? bdi(piece.text, 'mention') : document.createTextNode(piece.text));
  }
  return body;
}

/** A padlock, drawn inline (the page's policy allows no image from elsewhere). */
function lockIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('class', 'note-icon');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('fill-rule', 'evenodd');
  path.setAttribute('d', 'M4 7V5a4 4 0 0 1 8 0v2h1v8H3V7h1zm2 0h4V5a2 2 0 0 0-4 0v2z');
  svg.append(path);
  return svg;
}

/** A participant's name as an element, isolated from the sentence around it; a user's name is
 *  refreshed when their profile arrives. */
function who(p, atStart) {
  if (p.kind === 'user') {
    const name = bdi(userName(p.id), 'user-ref');
    name.dataset.user = p.id;
    return name;
  }
  if (p.kind === 'system') return el('span', '', t('agent.hub'));
  const ref = agentRef(p.id, atStart);
  return typeof ref === 'string' ? el('span', '', ref) : bdi(ref.text);
}

function outboxItem(id, m) {
  const li = document.createElement('li');
  li.className = `message agent mine ${m.state}`;
  li.dataset.clientMsgId = id;
  li.append(el('span', 'author', t('message.you')));
  if (m.body) {
    const body = el('p', 'body', m.body);
    body.dir = 'auto';
    li.append(body);
  }
  if (m.attachments && m.attachments.length) li.append(pendingList(m.attachments));
  const status =
    m.state === 'failed'
      ? sendErrorText(m.code)
      : m.state === 'sent'
        ? t('tick.sent')
        : state.online
          ? t('tick.sending')
          : t('tick.waiting');
  li.append(el('span', 'tick', status));
  if (m.state === 'failed') {
    const edit = document.createElement('button');
    edit.type = 'button';
    edit.className = 'link';
    edit.textContent = t('tick.edit');
    edit.addEventListener('click', () => {
      const th = currentThread();
      const back = th && th.takeBack(id);
      if (!back) return;
      $('reply').value = back.body;
      draftOf(th.ticketId).putBack(back.attachments);
      renderComposerFiles();
      updateSend();
      renderMessages(false);
      $('reply').focus();
    });
    li.append(edit);
  }
  return li;
}

/** Sent / delivered / read, from the user's receipts (protocol: "Delivery states"). */
function updateTicks() {
  const th = currentThread();
  if (!th) return;
  for (const tick of $('events').querySelectorAll('.tick[data-seq]')) {
    const seq = Number(tick.dataset.seq);
    const mark = th.userRead >= seq ? 'read' : th.userDelivered >= seq ? 'delivered' : 'sent';
    const label = t(`tick.${mark}`);
    if (tick.textContent !== label) tick.textContent = label;
    tick.dataset.state = mark;
  }
}

// ---------------------------------------------------------------------------------------------
// Labels: the team's list (kept by supervisors in their dialog), chips on tickets in the list and
// the ticket view, any agent putting them on and taking them off, and the list filtered by one.

async function loadLabels() {
  const conn = state.conn;
  try {
    setLabels((await conn.request({ type: 'label.list' })).labels);
    // The labels of the queue's tickets and of the recently resolved ones.
    for (const frame of [{ type: 'ticket.list' }, { type: 'ticket.list', status: 'resolved' }]) {
      const r = await conn.request(frame);
      state.ticketLabels.listed(r.tickets, r.labels);
    }
    renderList();
    renderTicketLabels();
    if (state.labelFilter) await loadLabelled(state.labelFilter);
  } catch {
    // Read again on the next connection.
  }
}

function setLabels(list) {
  state.labels = Array.isArray(list) ? list : [];
  state.ticketLabels.keepOnly(state.labels);
  if (state.labelFilter && !state.labels.some((l) => l.id === state.labelFilter)) state.labelFilter = '';
  renderLabelSelects();
  renderLabelsDialog();
  renderList();
  renderTicketLabels();
  if (state.search) renderSearch();
}

function onTicketLabels(entry) {
  state.ticketLabels.set(entry);
  renderList();
  if (entry && entry.ticket_id === state.current) renderTicketLabels();
  if (state.search) renderSearch();
}

/** Filters the list by a label (or none): the hub lists the tickets with it, resolved ones too;
 *  from then on the labels this tab knows decide, so changes show at once. */
function setLabelFilter(labelId) {
  state.labelFilter = labelId;
  renderList();
  if (labelId) loadLabelled(labelId);
}

async function loadLabelled(labelId) {
  if (!state.online) return;
  try {
    for (const status of [null, 'resolved']) {
      const frame = { type: 'ticket.list', label_id: labelId };
      if (status) frame.status = status;
      const r = await state.conn.request(frame);
      for (const ticket of r.tickets) {
        const known = state.tickets.get(ticket.id);
        if (!known || known.last_seq <= ticket.last_seq) state.tickets.set(ticket.id, ticket);
      }
      state.ticketLabels.listed(r.tickets, r.labels);
    }
  } catch (e) {
    announce(errorText(e.code));
  }
  renderList();
  wantProfilesForList();
}

/** The filter of the list and of the search: every label of the team, by name. */
function renderLabelSelects() {
  for (const [id, none] of [
    ['label-filter', 'labels.all'],
    ['search-label', 'search.any_label'],
  ]) {
    const select = $(id);
    const value = id === 'label-filter' ? state.labelFilter : select.value;
    select.replaceChildren(option('', t(none)), ...state.labels.map((l) => option(l.id, l.name, true)));
    select.value = state.labels.some((l) => l.id === value) ? value : '';
  }
}

function option(value, text, typedText) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  if (typedText) o.dir = 'auto';
  return o;
}

/** A label as a chip in its colour, its name in its own direction. */
function chipElement(label) {
  const chip = el('span', 'chip', '');
  chip.dataset.label = label.id;
  chip.style.setProperty('--chip', isColor(label.color) ? label.color : '#57606a');
  chip.style.setProperty('--chip-ink', inkOn(label.color));
  const name = el('span', 'chip-name', label.name);
  name.dir = 'auto';
  chip.append(name);
  return chip;
}

function chipRow(labels) {
  const row = el('span', 'chips', '');
  row.append(...labels.map(chipElement));
  return row;
}

/** The ticket view's chips, each with its remove button, and the labels to add. */
function renderTicketLabels() {
  if (!state.current) return;
  const on = chips(state.labels, state.ticketLabels.ids(state.current));
  $('ticket-labels').replaceChildren(
    ...on.map((l) => {
      const li = document.createElement('li');
      const chip = chipElement(l);
      const remove = el('button', 'chip-remove', '×');
      remove.type = 'button';
      remove.title = t('labels.remove_named', { name: typed(l.name) });
      remove.setAttribute('aria-label', remove.title);
      remove.disabled = !state.online;
      remove.addEventListener('click', () => labelTicket(l.id, false));
      chip.append(remove);
      li.append(chip);
      return li;
    }),
  );
  const off = state.labels.filter((l) => !on.includes(l));
  const select = $('label-add');
  select.replaceChildren(option('', t('labels.add_choose')), ...off.map((l) => option(l.id, l.name, true)));
  select.value = '';
  select.hidden = !off.length || !state.tickets.has(state.current);
  select.disabled = !state.online;
}

async function labelTicket(labelId, on) {
  const ticketId = state.current;
  if (!ticketId || !state.conn) return;
  const label = state.labels.find((l) => l.id === labelId);
  $('ticket-error').textContent = '';
  try {
    const r = await state.conn.request({ type: 'ticket.label', ticket_id: ticketId, label_id: labelId, on });
    onTicketLabels(r.labels);
    if (label) announce(t(on ? 'labels.added' : 'labels.removed', { name: typed(label.name) }));
  } catch (e) {
    if (state.current === ticketId) {
      $('ticket-error').textContent = e.code === 'not_found' ? t('labels.error.not_found') : errorText(e.code);
    }
    if (e.code === 'not_found') loadLabels();
  }
}

function openLabels() {
  $('labels-error').textContent = '';
  renderLabelsDialog();
  $('labels-dialog').showModal();
  $('label-new-name').focus();
}

/** The supervisors' dialog: every label with its name and colour to change, and delete. */
function renderLabelsDialog() {
  $('labels-empty').hidden = state.labels.length > 0;
  $('labels-list').replaceChildren(
    ...state.labels.map((l) => {
      const li = document.createElement('li');
      li.dataset.label = l.id;
      const name = document.createElement('input');
      name.className = 'label-name';
      name.dir = 'auto';
      name.maxLength = 40;
      name.autocomplete = 'off';
      name.value = l.name;
      name.setAttribute('aria-label', t('labels.rename_named', { name: typed(l.name) }));
      const color = document.createElement('input');
      color.type = 'color';
      color.className = 'label-color';
      color.value = isColor(l.color) ? l.color.toLowerCase() : '#000000';
      color.setAttribute('aria-label', t('labels.color_named', { name: typed(l.name) }));
      const save = el('button', 'label-save', t('labels.save'));
      save.type = 'button';
      save.setAttribute('aria-label', t('labels.save_named', { name: typed(l.name) }));
      save.addEventListener('click', () => updateLabel(l, name.value, color.value));
      name.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && !e.isComposing) {
          e.preventDefault();
          updateLabel(l, name.value, color.value);
        }
      });
      const del = el('button', 'link label-delete', t('labels.delete'));
      del.type = 'button';
      del.setAttribute('aria-label', t('labels.delete_named', { name: typed(l.name) }));
      del.addEventListener('click', () => deleteLabel(l));
      li.append(chipElement(l), name, color, save, del);
      return li;
    }),
  );
}

async function createLabel(e) {
  e.preventDefault();
  const name = labelName($('label-new-name').value);
  $('labels-error').textContent = '';
  if (!name) {
    $('labels-error').textContent = t('labels.error.name');
    return;
  }
  if (await labelRequest({ type: 'label.create', name, color: $('label-new-color').value })) {
    $('label-new-name').value = '';
    $('label-new-name').focus();
  }
}

async function updateLabel(label, nameText, color) {
  $('labels-error').textContent = '';
  const name = labelName(nameText);
  if (!name) {
    $('labels-error').textContent = t('labels.error.name');
    return;
  }
  const frame = { type: 'label.update', label_id: label.id };
  if (name !== label.name) frame.name = name;
  if (isColor(color) && color.toLowerCase() !== String(label.color).toLowerCase()) frame.color = color;
  if (!frame.name && !frame.color) return;
  if (await labelRequest(frame)) announce(t('labels.saved'));
}

async function deleteLabel(label) {
  $('labels-error').textContent = '';
  if (!window.confirm(t('labels.confirm_delete', { name: typed(label.name) }))) return;
  await labelRequest({ type: 'label.delete', label_id: label.id });
}

/** A change to the team's list; the answer is the whole list. False when the hub refused. */
async function labelRequest(frame) {
  try {
    setLabels((await state.conn.request(frame)).labels);
    return true;
  } catch (err) {
    $('labels-error').textContent = labelErrorText(err.code);
    return false;
  }
}

function labelErrorText(code) {
  return ['conflict', 'bad_request', 'forbidden', 'not_found'].includes(code) ? t(`labels.error.${code}`) : errorText(code);
}

// ---------------------------------------------------------------------------------------------
// Search: the box above the list asks the hub (`ticket.search`) once typing pauses; the results
// take the list's place until the box is empty again. The query goes as typed: the hub folds
// Persian letters and digits.

let searchTimer = null;

function onSearchInput() {
  clearTimeout(searchTimer);
  if (!$('search').value.trim()) runSearch();
  else searchTimer = setTimeout(runSearch, SEARCH_DELAY_MS);
}

function searchFilters() {
  return { status: $('search-status').value, labelId: $('search-label').value };
}

async function runSearch() {
  clearTimeout(searchTimer);
  const query = $('search').value;
  const frame = searchFrame(query, searchFilters(), 0);
  if (!frame) {
    state.search = null;
    state.searchError = null;
    state.searchBusy = false;
    renderSearch();
    return;
  }
  const key = searchKey(frame);
  // The same search (a space typed at the end) is not asked again, unless it failed.
  if (state.search && state.search.key === key && !state.searchError) return;
  const results = new SearchResults(key);
  state.search = results;
  state.searchError = null;
  await fetchResults(results, frame, query);
}

function moreResults() {
  const results = state.search;
  if (!results || state.searchBusy || !results.more) return;
  const query = $('search').value;
  const frame = searchFrame(query, searchFilters(), results.offset);
  if (!frame || searchKey(frame) !== results.key) {
    runSearch();
    return;
  }
  fetchResults(results, frame, query);
}

async function fetchResults(results, frame, query) {
  state.searchBusy = true;
  renderSearch();
  try {
    if (!state.conn) throw Object.assign(new Error('offline'), { code: 'disconnected' });
    const r = await state.conn.request(frame);
    if (state.search !== results) return;
    results.add(frame.offset, r.results, r.more);
  } catch (err) {
    if (state.search !== results) return;
    state.searchError = isPhoneRefusal(err, query)
      ? { key: 'search.phone' }
      : err.code === 'bad_request'
        ? { key: 'search.bad_request' }
        : { code: err.code };
  } finally {
    if (state.search === results) {
      state.searchBusy = false;
      renderSearch();
    }
  }
}

function renderSearch() {
  const results = state.search;
  $('search-results').hidden = !results;
  $('list-box').hidden = !!results;
  if (!results) {
    $('search-list').replaceChildren();
    $('search-state').textContent = '';
    return;
  }
  const error = state.searchError;
  const found = results.results.length;
  let text;
  if (error) text = error.key ? t(error.key) : errorText(error.code);
  else if (state.searchBusy && !found) text = t('search.searching');
  else if (!found) text = t('search.none');
  else text = t(results.more ? 'search.count_more' : 'search.count', { n: found });
  const stateLine = $('search-state');
  if (stateLine.textContent !== text) stateLine.textContent = text;
  stateLine.classList.toggle('error', !!error);
  $('search-list').replaceChildren(...results.results.map(resultItem));
  $('search-more').hidden = !results.more || !!error;
  $('search-more').disabled = state.searchBusy;
}

/** One match: the ticket's subject and status, its labels, and the text around the match with
 *  the matching words marked, in the text's own direction. */
function resultItem(r) {
  const now = Date.now();
  const li = document.createElement('li');
  const b = el('button', 'search-result', '');
  b.type = 'button';
  b.dataset.ticket = r.ticket.id;
  b.dataset.seq = String(r.seq);
  if (r.ticket.id === state.current) b.setAttribute('aria-current', 'true');
  const line = el('span', 'line', '');
  const subject = el('span', 'subject', r.ticket.subject);
  subject.dir = 'auto';
  line.append(subject, el('span', `badge ${r.ticket.status}`, statusLabel(r.ticket)));
  const snippet = el('span', 'snippet', '');
  snippet.dir = 'auto';
  for (const part of snippetParts(r.snippet)) {
    snippet.append(part.match ? el('mark', '', part.text) : document.createTextNode(part.text));
  }
  const meta = el('span', 'meta', '');
  if (r.matched === 'customer_name') meta.append(el('span', 'where', t('search.customer_name')));
  else if (r.seq === 1) meta.append(el('span', 'where', t('search.subject')));
  const when = el('time', 'when', shortTime(r.at, now));
  when.dateTime = new Date(r.at).toISOString();
  when.title = fullTime(r.at);
  meta.append(when);
  b.append(line, snippet, meta);
  const on = chips(state.labels, state.ticketLabels.ids(r.ticket.id));
  if (on.length) b.append(chipRow(on));
  b.addEventListener('click', () => openResult(r));
  li.append(b);
  return li;
}

function openResult(r) {
  if (!state.tickets.has(r.ticket.id)) updateTicket(r.ticket, false);
  openTicket(r.ticket.id, true);
  renderSearch();
}

// ---------------------------------------------------------------------------------------------
// Ratings: what the user thought of each resolution of the ticket on screen, read when it is
// opened and added as the user rates it.

async function loadRatings(ticketId) {
  try {
    const r = await state.conn.request({ type: 'rating.list', ticket_id: ticketId });
    state.ratings.listed(r.ticket_id, r.ratings);
    if (r.ticket_id === state.current) renderRatings();
  } catch {
    // Read again when the ticket is opened or the socket comes back.
  }
}

function onRated(rating) {
  if (!state.ratings.add(rating)) return;
  if (rating.ticket_id !== state.current) return;
  renderRatings();
  const ticket = state.tickets.get(rating.ticket_id);
  announce(t('announce.rated', { n: rating.score, max: MAX_SCORE, subject: typed(ticket ? ticket.subject : '') }));
}

/** Each rating: its stars (and the score in words for screen readers), the comment in its own
 *  direction, when, and whose resolution it rated. */
function renderRatings() {
  if (!state.current) return;
  const list = state.ratings.of(state.current);
  $('ticket-ratings').hidden = !list.length;
  $('rating-list').replaceChildren(
    ...list.map((r) => {
      const li = el('li', 'rating', '');
      li.dataset.seq = String(r.resolution_seq);
      const score = el('span', 'score', '');
      score.dataset.score = String(r.score);
      const shown = el('span', 'stars', stars(r.score));
      shown.setAttribute('aria-hidden', 'true');
      score.append(shown, el('span', 'visually-hidden', t('rating.score', { n: r.score, max: MAX_SCORE })));
      const by = el('span', 'rating-by muted', '');
      by.append(...tNodes('rating.resolved_by', { agent: agentRef(r.agent_id) }));
      li.append(score, by, timeElement(r.rated_at));
      if (typeof r.comment === 'string' && r.comment) {
        const comment = el('p', 'rating-comment', r.comment);
        comment.dir = 'auto';
        li.append(comment);
      }
      return li;
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Reports, for supervisors: a range of whole days (a preset, or dates typed in the language's
// calendar), the hub's figures as tiles, tables and a chart, and the same as a CSV file.

function openReports() {
  const dialog = $('reports-dialog');
  $('reports-preset').value = state.reports.preset;
  if (!dialog.open) dialog.showModal();
  if (state.reports.preset === 'custom') {
    renderReports();
    return;
  }
  loadReport(presetRange(state.reports.preset));
}

function onReportsPreset() {
  const preset = $('reports-preset').value;
  state.reports.preset = preset;
  if (preset !== 'custom') {
    loadReport(presetRange(preset));
    return;
  }
  // The dates shown so far, to change from.
  const range = state.reports.range || presetRange(DEFAULT_PRESET);
  const calendar = calendarOf(language());
  $('reports-from').value = shownDigits(dayText(range.from, calendar));
  $('reports-to').value = shownDigits(dayText(addDays(range.to, -1), calendar));
  renderReports();
  $('reports-from').focus();
}

function onReportsCustom(e) {
  e.preventDefault();
  const range = customRange($('reports-from').value, $('reports-to').value, calendarOf(language()));
  if (range.error) {
    state.reports.error = { key: `reports.error.${range.error}` };
    renderReports();
    return;
  }
  loadReport(range);
}

/** ASCII digits as the language writes them. */
function shownDigits(text) {
  return language() === 'fa' ? text.replace(/\d/g, (d) => '۰۱۲۳۴۵۶۷۸۹'[d]) : text;
}

async function loadReport(range) {
  const reports = state.reports;
  reports.range = range;
  reports.busy = true;
  reports.error = null;
  renderReports();
  try {
    const report = await fetchReport(range, state.session.token);
    // A later range was asked for meanwhile: its answer is the one to show.
    if (reports.range !== range) return;
    reports.report = report;
  } catch (err) {
    if (reports.range !== range) return;
    reports.report = null;
    reports.error = { code: err.code };
  }
  reports.busy = false;
  renderReports();
}

async function downloadReport() {
  const range = state.reports.range;
  if (!range) return;
  try {
    const { blob, filename } = await fetchReport(range, state.session.token, { csv: true });
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = filename;
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30_000);
    announce(t('reports.csv_saved'));
  } catch (err) {
    state.reports.error = { code: err.code };
    renderReports();
  }
}

function reportErrorText(error) {
  if (error.key) return t(error.key, { n: MAX_DAYS });
  const key = `reports.error.${error.code}`;
  return t(key) !== key ? t(key) : errorText(error.code);
}

/** "3 min", "1 h 20 min", or the catalogue's "none" when nothing was measured. */
function reportDuration(ms) {
  const parts = durationParts(ms);
  if (!parts) return t('reports.none');
  const words = parts.map(([n, unit]) => t(`reports.unit.${unit}`, { n }));
  return words.length === 1 ? words[0] : t('reports.duration_two', { a: words[0], b: words[1] });
}

function reportPercent(rate) {
  const p = percent(rate);
  return p === null ? t('reports.none') : new Intl.NumberFormat(locale(), { style: 'percent' }).format(p / 100);
}

function reportAverage(average) {
  if (average === null || average === undefined) return t('reports.none');
  const n = new Intl.NumberFormat(locale(), { maximumFractionDigits: 1, minimumFractionDigits: 1 }).format(average);
  return t('rating.score', { n, max: MAX_SCORE });
}

function renderReports() {
  const { preset, range, report, error, busy } = state.reports;
  $('reports-custom').hidden = preset !== 'custom';
  $('reports-csv').disabled = !range || busy || !report;
  $('reports-span').textContent = range ? t('reports.span', { from: longDate(range.from), to: longDate(addDays(range.to, -1)) }) : '';
  $('reports-state').textContent = busy ? t('reports.loading') : '';
  $('reports-error').textContent = error ? reportErrorText(error) : '';
  const body = $('reports-body');
  body.hidden = !report || busy;
  if (!report) return;
  renderTiles(report.overall || {});
  renderChart(report.agents || []);
  renderReportTable($('reports-agents'), report.agents || [], (row) => {
    const name = el('span', 'name', row.name);
    name.dir = 'auto';
    return name;
  }, [
    ['reports.claimed', (f) => formatNumber(f.claimed ?? 0)],
    ['reports.resolved', (f) => formatNumber(f.resolved ?? 0)],
    ['reports.first_response_p50', (f) => reportDuration(f.first_response?.p50_ms)],
    ['reports.first_response_p90', (f) => reportDuration(f.first_response?.p90_ms)],
    ['reports.resolution_p50', (f) => reportDuration(f.resolution?.p50_ms)],
    ['reports.rating_average', (f) => reportAverage(f.ratings?.average)],
    ['reports.rated', (f) => formatNumber(f.ratings?.rated ?? 0)],
  ]);
  renderReportTable($('reports-labels'), report.labels || [], (row) => chipElement({ id: row.label_id, name: row.name, color: row.color }), [
    ['reports.opened', (f) => formatNumber(f.opened ?? 0)],
    ['reports.resolved', (f) => formatNumber(f.resolved ?? 0)],
    ['reports.first_response_p50', (f) => reportDuration(f.first_response?.p50_ms)],
    ['reports.resolution_p50', (f) => reportDuration(f.resolution?.p50_ms)],
    ['reports.rating_average', (f) => reportAverage(f.ratings?.average)],
  ]);
}

/** The team's figures: counts, then durations as p50 and p90, then the ratings. */
function renderTiles(f) {
  const tile = (name, key, ...lines) => {
    const li = el('li', 'tile', '');
    li.dataset.figure = name;
    li.append(el('span', 'tile-name', t(key)));
    for (const [i, text] of lines.entries()) li.append(el('span', i ? 'tile-more' : 'tile-value', text));
    return li;
  };
  const ratings = f.ratings || {};
  const shares = distributionShares(ratings.distribution);
  const counts = Array.isArray(ratings.distribution) ? ratings.distribution : [];
  const spread = el('li', 'tile distribution', '');
  spread.dataset.figure = 'distribution';
  spread.append(el('span', 'tile-name', t('reports.distribution')));
  const bars = el('ol', 'spread', '');
  for (let score = MAX_SCORE; score >= 1; score--) {
    const row = el('li', '', '');
    const label = el('span', 'spread-label', t('reports.stars_count', { stars: stars(score), n: counts[score - 1] ?? 0 }));
    const bar = el('span', 'spread-bar', '');
    bar.style.setProperty('--share', `${shares[score - 1]}%`);
    bar.setAttribute('aria-hidden', 'true');
    row.append(label, bar);
    bars.append(row);
  }
  spread.append(bars);
  const duration = (name, key, d = {}) =>
    tile(name, key, t('reports.p50_value', { d: reportDuration(d.p50_ms) }), t('reports.p90_value', { d: reportDuration(d.p90_ms) }));
  $('reports-tiles').replaceChildren(
    tile('opened', 'reports.opened', formatNumber(f.opened ?? 0)),
    tile('reopened', 'reports.reopened', formatNumber(f.reopened ?? 0)),
    tile('claimed', 'reports.claimed', formatNumber(f.claimed ?? 0)),
    tile('resolved', 'reports.resolved', formatNumber(f.resolved ?? 0)),
    duration('first_response', 'reports.first_response', f.first_response),
    duration('queue_wait', 'reports.queue_wait', f.queue_wait),
    duration('resolution', 'reports.resolution', f.resolution),
    tile('rating_average', 'reports.rating_average', reportAverage(ratings.average),
      t('reports.rated_of', { rated: ratings.rated ?? 0, requested: ratings.requested ?? 0 })),
    tile('response_rate', 'reports.response_rate', reportPercent(ratings.response_rate)),
    spread,
  );
}

/** A table with a row per agent or label: its name (in its own direction), then `columns`. */
function renderReportTable(table, rows, nameCell, columns) {
  const head = el('tr', '', '');
  head.append(el('th', '', t('reports.name')), ...columns.map(([key]) => el('th', '', t(key))));
  for (const th of head.children) th.scope = 'col';
  const thead = el('thead', '', '');
  thead.append(head);
  const tbody = el('tbody', '', '');
  if (!rows.length) {
    const tr = el('tr', 'empty', '');
    const td = el('td', 'muted', t('reports.no_rows'));
    td.colSpan = columns.length + 1;
    tr.append(td);
    tbody.append(tr);
  }
  for (const row of rows) {
    const tr = el('tr', '', '');
    tr.dataset.id = row.agent_id || row.label_id || '';
    const name = el('th', '', '');
    name.scope = 'row';
    name.append(nameCell(row));
    tr.append(name, ...columns.map(([key, value]) => {
      const td = el('td', '', value(row.figures || {}));
      td.dataset.column = key.replace('reports.', '');
      return td;
    }));
    tbody.append(tr);
  }
  table.replaceChildren(thead, tbody);
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** The first-response chart: per agent a p50 and a p90 bar, the axis in the language's digits,
 *  from the right in Persian. */
function renderChart(agents) {
  const rtl = language() === 'fa';
  const g = chartGeometry(agents, { rtl });
  const box = $('reports-chart');
  if (!g.groups.length) {
    box.replaceChildren(el('p', 'muted', t('reports.no_chart')));
    return;
  }
  const chart = svg('svg', { viewBox: `0 0 ${g.width} ${g.height}`, role: 'img', 'aria-label': t('reports.chart_label'), class: 'bars' });
  const axisEnd = rtl ? 0 : g.width;
  for (const tick of g.ticks) {
    chart.append(svg('line', { x1: g.axisX, x2: axisEnd, y1: tick.y, y2: tick.y, class: tick.value ? 'grid' : 'base' }));
    chart.append(svg('text', { x: rtl ? g.axisX + 6 : g.axisX - 6, y: tick.y + 4, 'text-anchor': rtl ? 'start' : 'end', class: 'tick' }, reportDuration(tick.value)));
  }
  for (const group of g.groups) {
    const node = svg('g', { class: 'bar-group', 'data-agent': group.agentId });
    for (const bar of group.bars) {
      const rect = svg('rect', { x: bar.x, y: bar.y, width: bar.width, height: Math.max(bar.height, 0.5), class: `bar ${bar.key}`, 'data-ms': bar.value ?? '' });
      rect.append(svg('title', {}, t('reports.bar', { name: typed(group.name), which: t(`reports.${bar.key}`), d: reportDuration(bar.value) })));
      node.append(rect);
    }
    // The name under its bars, isolated so its own direction cannot reorder anything around it.
    node.append(svg('text', { x: group.x + group.width / 2, y: g.baseY + 18, 'text-anchor': 'middle', class: 'agent' }, `\u2068${group.name}\u2069`));
    chart.append(node);
  }
  box.replaceChildren(chart);
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text) e.textContent = text;
  return e;
}

function announce(text) {
  const a = $('announcer');
  a.textContent = '';
  // A fresh text node makes screen readers speak the same text twice in a row too.
  setTimeout(() => {
    a.textContent = text;
  }, 50);
}

function tick() {
  if (!state.session) return;
  renderList();
  if (state.current) renderTicket();
}

start();
