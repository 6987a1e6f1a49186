// The agent's session in this browser tab, and the two HTTP routes around it.
//
// The token is kept in sessionStorage: it survives a reload of the tab but not the tab itself, and
// other tabs and windows do not see it (each tab signs in on its own, and closing the tab leaves no
// live token on the disk). It is sent only in the socket's `auth` frame and in the `Authorization`
// header of the sign-out request, never in a URL.

import { agentLogin, HubError, KeyValueTokenStore, signOut as hubSignOut } from './hub-client.js';

const KEY = 'anapars.console.session';
/** The signed-in agent as the sign-in answered, shown before the socket's `auth` says more. */
const AGENT_KEY = 'anapars.console.agent';

/** sessionStorage that never throws (disabled storage, a full quota): the console then forgets on
 *  reload instead of failing. */
export const tabStorage = {
  getItem(key) {
    try {
      return sessionStorage.getItem(key);
    } catch {
      return null;
    }
  },
  setItem(key, value) {
    try {
      sessionStorage.setItem(key, value);
    } catch {
      // Forgotten on reload.
    }
  },
  removeItem(key) {
    try {
      sessionStorage.removeItem(key);
    } catch {
      // Nothing stored.
    }
  },
};

/** Where the SDK keeps the session token (refreshed tokens included): this tab's storage. */
export const tokenStore = new KeyValueTokenStore(tabStorage, KEY);

/** The stored session `{token, expiresAt, agent}`, or null. Expired sessions are forgotten. */
export function loadSession() {
  try {
    const s = JSON.parse(tabStorage.getItem(KEY) || 'null');
    if (s && typeof s.token === 'string' && s.expiresAt > Date.now()) {
      return { ...s, agent: JSON.parse(tabStorage.getItem(AGENT_KEY) || 'null') };
    }
  } catch {
    // A damaged entry is the same as none.
  }
  clearSession();
  return null;
}

/** Keeps a new session from sign-in, in the SDK's token format. */
export async function saveSession(session) {
  tabStorage.setItem(AGENT_KEY, JSON.stringify(session.agent));
  await tokenStore.save({ token: session.token, expiresAt: session.expiresAt, receivedAt: Date.now() });
}

export function clearSession() {
  tabStorage.removeItem(KEY);
  tabStorage.removeItem(AGENT_KEY);
}

/** Per-tab storage of small things that should survive a reload (followed tickets, unsent
 *  messages). */
export function loadJson(key, fallback) {
  try {
    return JSON.parse(sessionStorage.getItem(key) || 'null') ?? fallback;
  } catch {
    return fallback;
  }
}

export function saveJson(key, value) {
  try {
    sessionStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or disabled: the console still works, it just forgets on reload.
  }
}

export function clearTabState(keys) {
  for (const k of keys) sessionStorage.removeItem(k);
}

/** Why a sign-in failed: `key` names the catalogue's message (lang-*.js), `params` fill it in. */
export class SignInError extends Error {
  constructor(key, params = {}) {
    super(key);
    this.key = key;
    this.params = params;
  }
}

/** `POST /v1/agent/login`. Resolves to the session `{token, expiresAt, agent}`; rejects with a
 *  {@link SignInError}. */
export async function signIn(email, password) {
  let session;
  try {
    session = await agentLogin(location.origin, email, password);
  } catch (err) {
    if (!(err instanceof HubError)) throw new SignInError('signin.unreachable');
    if (err.code === 'unauthorized' || err.code === 'bad_request') throw new SignInError('signin.wrong');
    if (err.code === 'rate_limited') {
      const minutes = Math.max(1, Math.ceil((err.retryAfterMs || 60000) / 60000));
      throw new SignInError('signin.rate_limited', { minutes });
    }
    if (err.code === 'forbidden') throw new SignInError('signin.disabled');
    throw new SignInError('signin.failed');
  }
  return { token: session.token, expiresAt: session.expires_at, agent: session.agent };
}

/** `DELETE /v1/auth/session` when the socket is down: the token stops working everywhere. Best
 *  effort: the tab forgets the token whatever the answer. */
export async function signOut(token) {
  try {
    await hubSignOut(location.origin, token);
  } catch {
    // Offline: the session will expire on its own.
  }
}
