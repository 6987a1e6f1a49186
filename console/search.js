// Searching the tickets (protocol/PROTOCOL.md, "Search"): what the console asks the hub for and
// how it keeps the pages it gets back. No DOM here (tests/e2e/search.test.mjs); app.js shows the
// results with textContent only.
//
// The query goes to the hub as typed: the hub folds Persian (Arabic letter forms, digits of every
// script, the zero-width non-joiner) on both sides, so the console does not.

/** The longest query the hub takes, in characters. */
export const MAX_QUERY = 200;
/** Matches asked for per page. */
export const SEARCH_PAGE = 20;
/** How long typing must pause before the console asks. */
export const SEARCH_DELAY_MS = 300;

/** The `ticket.search` request for `query` and filters (`status`, `label_id`; empty means any), or
 *  null when there is nothing to search for. */
export function searchFrame(query, { status, labelId } = {}, offset = 0) {
  const q = String(query ?? '').trim();
  if (!q || [...q].length > MAX_QUERY) return null;
  const frame = { type: 'ticket.search', query: q, offset, limit: SEARCH_PAGE };
  if (status) frame.status = status;
  if (labelId) frame.label_id = labelId;
  return frame;
}

/** Whether `query` is written as a phone number: 8 to 15 digits of any script, with or without
 *  `+`, spaces, dashes, dots or brackets (the hub refuses such a query). */
export function looksLikePhone(query) {
  const typed = String(query ?? '')
    .replace(/[\u06f0-\u06f9]/g, (d) => String(d.charCodeAt(0) - 0x06f0))
    .replace(/[\u0660-\u0669]/g, (d) => String(d.charCodeAt(0) - 0x0660))
    .replace(/[\s\-.()\u200c\u200e\u200f]/g, '');
  return /^\+?[0-9]{8,15}$/.test(typed);
}

/** Whether an error answer is the hub refusing a phone number as the query `query`. */
export function isPhoneRefusal(err, query) {
  return !!err && err.code === 'bad_request' && (looksLikePhone(query) || /phone/i.test(String(err.message || '')));
}

/**
 * A snippet as parts safe to put in the DOM as text: each `{text, match}` with a string text (kept
 * as written) and a boolean match; empty parts are dropped and neighbours of the same kind joined.
 */
export function snippetParts(snippet) {
  const out = [];
  for (const part of Array.isArray(snippet) ? snippet : []) {
    if (!part || typeof part.text !== 'string' || !part.text) continue;
    const match = part.match === true;
    const last = out[out.length - 1];
    if (last && last.match === match) last.text += part.text;
    else out.push({ text: part.text, match });
  }
  return out;
}

/** The pages of one search, merged: each match (ticket, seq, and whether it is the text or the
 *  customer's name) once, in the hub's order. The hub counts pages in text matches: the customers
 *  found by name that head the first page do not move the next page's offset. */
export class SearchResults {
  /** `key`: what was asked (the frame without its offset), to tell one search from the next. */
  constructor(key) {
    this.key = key;
    this.results = [];
    this.more = false;
    /** Where the next page starts: the text matches the hub gave so far, copies included. */
    this.offset = 0;
    this.seen = new Set();
  }

  /** Adds a page read at `offset`; a page for another place than the next one is ignored (a late
   *  answer). Returns whether it was taken. */
  add(offset, results, more) {
    if (offset !== this.offset) return false;
    const page = Array.isArray(results) ? results : [];
    for (const r of page) {
      if (!r || !r.ticket || typeof r.ticket.id !== 'string') continue;
      const id = `${r.ticket.id}:${r.seq}:${r.matched === 'customer_name' ? 'name' : 'text'}`;
      if (this.seen.has(id)) continue;
      this.seen.add(id);
      this.results.push(r);
    }
    this.offset += page.filter((r) => !r || r.matched !== 'customer_name').length;
    this.more = !!more && page.length > 0;
    return true;
  }

  /** A ticket changed (`ticket.updated`): the results show it as it is now. */
  updateTicket(ticket) {
    for (const r of this.results) if (r.ticket.id === ticket.id) r.ticket = ticket;
  }

  /** A ticket is gone (`ticket.deleted`). */
  dropTicket(ticketId) {
    this.results = this.results.filter((r) => r.ticket.id !== ticketId);
  }
}

/** A request's key: the frame without `id` and `offset`. */
export function searchKey(frame) {
  if (!frame) return '';
  const { offset, id, ...rest } = frame;
  return JSON.stringify(rest, Object.keys(rest).sort());
}
