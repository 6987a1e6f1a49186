// The agent's session in this browser tab, and the two HTTP routes around it.
//
// The token is kept in sessionStorage: it survives a reload of the tab but not the tab itself, and
// other tabs and windows do not see it (each tab signs in on its own, and closing the tab leaves no
// live token on the disk). It is sent only in the socket's `auth` frame and in the `Authorization`
// header of the sign-out request, never in a URL.

const KEY = 'anapars.console.session';

/** The stored session `{token, expires_at, agent}`, or null. Expired sessions are forgotten. */
export function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) || 'null');
    if (s && typeof s.token === 'string' && s.expires_at > Date.now()) return s;
  } catch {
    // A damaged entry is the same as none.
  }
  sessionStorage.removeItem(KEY);
  return null;
}

export function saveSession(session) {
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
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

/** `POST /v1/agent/login`. Resolves to the session; rejects with a {@link SignInError}. */
export async function signIn(email, password) {
  let response;
  try {
    response = await fetch('/v1/agent/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password }),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    throw new SignInError('signin.unreachable');
  }
  const body = await response.json().catch(() => ({}));
  if (response.ok && typeof body.token === 'string') {
    return { token: body.token, expires_at: body.expires_at, agent: body.agent };
  }
  const code = body.error && body.error.code;
  if (code === 'unauthorized' || code === 'bad_request') throw new SignInError('signin.wrong');
  if (code === 'rate_limited') {
    const minutes = Math.max(1, Math.ceil((body.error.retry_after_ms || 60000) / 60000));
    throw new SignInError('signin.rate_limited', { minutes });
  }
  if (code === 'forbidden') throw new SignInError('signin.disabled');
  throw new SignInError('signin.failed');
}

/** `DELETE /v1/auth/session`: the token stops working everywhere. Best effort: the tab forgets
 *  the token whatever the answer. */
export async function signOut(token) {
  try {
    await fetch('/v1/auth/session', {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}` },
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    // Offline: the session will expire on its own.
  }
}
