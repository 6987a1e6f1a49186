// The users' ratings of tickets' resolutions (protocol/PROTOCOL.md, "Ratings"), as the console
// keeps them. No DOM here (tests/e2e/ratings.test.mjs). A ticket's ratings come whole with
// `rating.list.ok` when it is opened and one at a time with `ticket.rated`; a resolution is rated
// once, so a rating is kept by its ticket and resolution, whichever of the two arrives first.

export const MAX_SCORE = 5;

/** Whether `rating` is one the console can show. */
export function isRating(rating) {
  return (
    !!rating &&
    typeof rating.ticket_id === 'string' &&
    Number.isInteger(rating.resolution_seq) &&
    Number.isInteger(rating.score) &&
    rating.score >= 1 &&
    rating.score <= MAX_SCORE
  );
}

/** A score as five stars, the first `score` filled: `★★★★☆`. */
export function stars(score) {
  const n = Math.min(MAX_SCORE, Math.max(0, Math.round(Number(score) || 0)));
  return '★'.repeat(n) + '☆'.repeat(MAX_SCORE - n);
}

/** The ratings of the tickets the console has looked at. */
export class Ratings {
  constructor() {
    /** ticket id -> (resolution seq -> rating) */
    this.byTicket = new Map();
    /** The tickets whose list came from the hub. */
    this.fetched = new Set();
  }

  /** Keeps a `rating.list.ok` answer: the ticket's whole list, plus any rating that arrived live
   *  while the list was on its way. */
  listed(ticketId, ratings) {
    const kept = this.byTicket.get(ticketId) || new Map();
    for (const r of ratings || []) if (isRating(r) && r.ticket_id === ticketId) kept.set(r.resolution_seq, r);
    this.byTicket.set(ticketId, kept);
    this.fetched.add(ticketId);
  }

  /** Keeps one rating (`ticket.rated`); returns whether it was new. */
  add(rating) {
    if (!isRating(rating)) return false;
    const kept = this.byTicket.get(rating.ticket_id) || new Map();
    const known = kept.has(rating.resolution_seq);
    kept.set(rating.resolution_seq, rating);
    this.byTicket.set(rating.ticket_id, kept);
    return !known;
  }

  /** Whether the ticket's list came from the hub (else it may be missing older ratings). */
  loaded(ticketId) {
    return this.fetched.has(ticketId);
  }

  /** A ticket's ratings, oldest resolution first. */
  of(ticketId) {
    const kept = this.byTicket.get(ticketId);
    return kept ? [...kept.values()].sort((a, b) => a.resolution_seq - b.resolution_seq) : [];
  }

  forget(ticketId) {
    this.byTicket.delete(ticketId);
    this.fetched.delete(ticketId);
  }

  clear() {
    this.byTicket.clear();
    this.fetched.clear();
  }
}
