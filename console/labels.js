// The team's labels and the labels on tickets, as the console keeps them (protocol/PROTOCOL.md,
// "Labels"). No DOM here: the rules for what a ticket shows and in which order live in this file
// alone (tests/e2e/labels.test.mjs).
//
// The team's list comes whole (`label.list.ok`, `labels.updated`); a ticket's labels come as ids
// (`ticket.list.ok`'s `labels`, `ticket.label.ok`, `ticket.labels`). Chips follow the team's list, so
// every ticket shows its labels in the same order, and an id the list no longer holds (a label
// deleted meanwhile) shows nothing.

/** The longest name the hub takes, after trimming. */
export const MAX_NAME = 40;

const COLOR = /^#[0-9a-f]{6}$/i;

/** Whether `color` is one the hub takes (`#rrggbb`). */
export function isColor(color) {
  return typeof color === 'string' && COLOR.test(color);
}

/** The labels with ids in `ids`, in the order of the team's list `team`; unknown ids are left out. */
export function chips(team, ids) {
  if (!Array.isArray(ids) || !ids.length) return [];
  const wanted = new Set(ids);
  return team.filter((l) => wanted.has(l.id));
}

/** Black or white, whichever reads better on `color` (`#rrggbb`); white on anything not a colour. */
export function inkOn(color) {
  if (!isColor(color)) return '#ffffff';
  const channel = (i) => {
    const c = parseInt(color.slice(i, i + 2), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
  // The contrast of white against the colour and of the colour against black, compared.
  return (1.05 / (luminance + 0.05)) >= ((luminance + 0.05) / 0.05) ? '#ffffff' : '#000000';
}

/** What the agent typed as a label's name, trimmed, or null when the hub would refuse its length. */
export function labelName(text) {
  const name = String(text ?? '').trim();
  const length = [...name].length;
  return length >= 1 && length <= MAX_NAME ? name : null;
}

/** Which tickets carry which labels. */
export class TicketLabels {
  constructor() {
    /** ticket id -> label ids (as the hub last said) */
    this.byTicket = new Map();
  }

  /** Keeps one ticket's labels (`{ticket_id, label_ids}`). */
  set(entry) {
    if (!entry || typeof entry.ticket_id !== 'string' || !Array.isArray(entry.label_ids)) return;
    if (entry.label_ids.length) this.byTicket.set(entry.ticket_id, [...entry.label_ids]);
    else this.byTicket.delete(entry.ticket_id);
  }

  /**
   * Keeps a `ticket.list.ok` answer: `labels` names only the listed tickets that have labels, so a
   * listed ticket missing from it has none.
   */
  listed(tickets, labels) {
    for (const ticket of tickets || []) this.byTicket.delete(ticket.id);
    for (const entry of labels || []) this.set(entry);
  }

  /** The ids on a ticket. */
  ids(ticketId) {
    return this.byTicket.get(ticketId) || [];
  }

  has(ticketId, labelId) {
    return this.ids(ticketId).includes(labelId);
  }

  /** Forgets the labels the team's list no longer holds (after `labels.updated`). */
  keepOnly(team) {
    const known = new Set(team.map((l) => l.id));
    for (const [ticketId, ids] of this.byTicket) {
      const kept = ids.filter((id) => known.has(id));
      if (kept.length === ids.length) continue;
      if (kept.length) this.byTicket.set(ticketId, kept);
      else this.byTicket.delete(ticketId);
    }
  }

  forget(ticketId) {
    this.byTicket.delete(ticketId);
  }

  clear() {
    this.byTicket.clear();
  }
}
