// The customer panel beside a conversation: who the user is (name, picture, online or last seen),
// the device their app last reported (only while the user allows analytics: the hub leaves it out
// otherwise), and their tickets, from the hub (`customer.get`), not from what this tab has seen.
// The hub never sends an agent a phone number, so there is none to show.

import { bdi, fullTime, languageName, longDate, t } from './i18n.js';

const $ = (id) => document.getElementById(id);

/**
 * Fills the panel. `view`: `{customer, loading, failed}` (customer as in `customer.get.ok`),
 * `profile`: the live profile (presence changes after the fetch), `ticketId`: the ticket on
 * screen, `name(userId)`, `presence(profile)`, `badge(ticket)`, `open(ticketId)`.
 */
export function renderCustomer(view, { profile, ticketId, name, presence, badge, open }) {
  const c = view.customer;
  $('customer-state').textContent = view.loading && !c ? t('customer.loading') : view.failed ? t('customer.failed') : '';
  const userId = c ? c.profile.user_id : null;
  const shownProfile = profile || (c && c.profile);
  $('customer-name').textContent = userId ? name(userId) : '';
  const pres = $('customer-presence');
  pres.textContent = shownProfile ? presence(shownProfile) : '';
  pres.dataset.online = shownProfile && shownProfile.online ? 'true' : 'false';
  picture(shownProfile, userId ? name(userId) : '');
  device(c);
  tickets(c, { ticketId, badge, open });
}

function picture(profile, who) {
  const img = $('customer-image');
  const initial = $('customer-initial');
  if (profile && typeof profile.image === 'string' && profile.image.startsWith('/v1/media/')) {
    if (img.getAttribute('src') !== profile.image) img.src = profile.image;
    img.alt = t('picture.of', { name: who });
    img.hidden = false;
    initial.hidden = true;
  } else {
    img.hidden = true;
    img.removeAttribute('src');
    initial.hidden = !who;
    initial.textContent = who ? who.slice(0, 1).toUpperCase() : '';
  }
}

function device(c) {
  const list = $('customer-device');
  const d = c && c.device;
  $('customer-no-device').hidden = !c || !!d;
  if (!d) {
    list.replaceChildren();
    list.hidden = true;
    return;
  }
  const rows = [];
  const row = (key, value, asText = true) => {
    if (!value) return;
    const dd = document.createElement('dd');
    // What the app reported is shown as it reported it, in its own direction.
    if (asText) dd.append(bdi(value));
    else dd.append(value);
    const dt = document.createElement('dt');
    dt.textContent = t(key);
    rows.push(dt, dd);
  };
  row('customer.os', [d.os, d.os_version].filter(Boolean).join(' '));
  row('customer.model', [d.manufacturer, d.model].filter(Boolean).join(' '));
  row('customer.app_version', d.app_version);
  if (d.locale) row('customer.locale', `${languageName(d.locale)} (${d.locale})`);
  const when = document.createElement('time');
  when.dateTime = new Date(d.reported_at).toISOString();
  when.textContent = longDate(d.reported_at);
  when.title = fullTime(d.reported_at);
  row('customer.reported', when, false);
  list.replaceChildren(...rows);
  list.hidden = false;
}

function tickets(c, { ticketId, badge, open }) {
  const list = $('customer-tickets');
  if (!c) {
    list.replaceChildren();
    return;
  }
  if (!c.tickets.length) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = t('customer.no_tickets');
    list.replaceChildren(li);
    return;
  }
  list.replaceChildren(
    ...c.tickets.map((ticket) => {
      const li = document.createElement('li');
      const here = ticket.id === ticketId;
      const item = document.createElement(here ? 'div' : 'button');
      item.className = here ? 'here' : 'customer-ticket';
      item.dataset.ticket = ticket.id;
      if (here) item.setAttribute('aria-current', 'true');
      else {
        item.type = 'button';
        item.addEventListener('click', () => open(ticket.id));
      }
      const subject = document.createElement('span');
      subject.className = 'subject';
      subject.dir = 'auto';
      subject.textContent = ticket.subject;
      const meta = document.createElement('span');
      meta.className = 'meta';
      const status = document.createElement('span');
      status.className = `badge ${ticket.status}`;
      status.textContent = badge(ticket);
      const when = document.createElement('time');
      when.dateTime = new Date(ticket.created_at).toISOString();
      when.textContent = longDate(ticket.created_at);
      when.title = fullTime(ticket.created_at);
      meta.append(status, when);
      if (here) {
        const note = document.createElement('span');
        note.textContent = t('customer.this_ticket');
        meta.append(note);
      }
      item.append(subject, meta);
      li.append(item);
      return li;
    }),
  );
}
