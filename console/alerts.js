// Telling the agent about new messages, and notes that name them, outside the conversation they look
// at: the unread count in the page title (always), and, only when the agent turned them on in
// Settings (both are off by default), a desktop notification and a short sound. Preferences are
// kept in this browser.

import { t, typed } from './i18n.js';

const PREFS_KEY = 'anapars.console.alerts';

/** `{notify, sound}`, both false until the agent turns them on. */
export function loadPrefs() {
  try {
    const p = JSON.parse(localStorage.getItem(PREFS_KEY) || '{}');
    return { notify: p.notify === true, sound: p.sound === true };
  } catch {
    return { notify: false, sound: false };
  }
}

export function savePrefs(prefs) {
  try {
    localStorage.setItem(PREFS_KEY, JSON.stringify({ notify: !!prefs.notify, sound: !!prefs.sound }));
  } catch {
    // Storage disabled: the choice lasts until the page closes.
  }
}

/** The page title with the number of unread messages and unseen notes for the agent in front. */
export function setTitle(unread) {
  const base = t('app.title');
  const title = unread > 0 ? t('title.unread', { n: unread, base }) : base;
  if (document.title !== title) document.title = title;
}

/** Whether the browser may show notifications now; asks once, in answer to the agent's click. */
export async function allowNotifications() {
  if (!('Notification' in window)) return false;
  if (Notification.permission === 'granted') return true;
  if (Notification.permission === 'denied') return false;
  return (await Notification.requestPermission()) === 'granted';
}

export function notificationsBlocked() {
  return !('Notification' in window) || Notification.permission === 'denied';
}

/** A desktop notification for a new message (or, with `title` and `tag`, a note for the agent);
 *  clicking it brings the ticket up. Only a name and the subject: the text itself stays in the
 *  console. */
export function notify({ ticketId, name, subject, onClick, title, tag }) {
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  try {
    const n = new Notification(title || t('notify.title', { name: typed(name) }), {
      body: subject,
      tag: tag || `ticket-${ticketId}`,
      lang: document.documentElement.lang,
      dir: 'auto',
    });
    n.onclick = () => {
      window.focus();
      onClick();
      n.close();
    };
  } catch {
    // Some browsers allow notifications only from a service worker; the title still counts.
  }
}

let audio = null;

/** Prepares sound in answer to the agent's click (browsers start audio only after a gesture). */
export function unlockSound() {
  try {
    audio = audio || new AudioContext();
    if (audio.state === 'suspended') audio.resume();
  } catch {
    audio = null;
  }
}

/** Two short soft tones. */
export function chime() {
  try {
    audio = audio || new AudioContext();
    if (audio.state === 'suspended') audio.resume().catch(() => {});
    const start = audio.currentTime;
    for (const [i, freq] of [660, 880].entries()) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      const at = start + i * 0.14;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.15, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.18);
      osc.connect(gain).connect(audio.destination);
      osc.start(at);
      osc.stop(at + 0.2);
    }
  } catch {
    // No audio: the title and the list still show it.
  }
}
