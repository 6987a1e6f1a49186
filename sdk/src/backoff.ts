/**
 * Reconnect backoff with full jitter (CLIENTS.md section 4):
 * `delay = random_uniform(0, min(cap, base * 2^attempt))`. Full jitter spreads the phones of a
 * whole cell or a restarted node over the window instead of bunching them at its edge.
 */

export interface BackoffPolicy {
  /** Milliseconds. */
  base: number;
  /** Milliseconds. */
  cap: number;
}

/** The normal policy: a lost Wi-Fi hand-over heals within a second; nobody waits over 30 s. */
export const NORMAL_BACKOFF: BackoffPolicy = { base: 500, cap: 30_000 };

/** After close 1007, 1009, 4009 or 4010: a client bug must not hammer the hub in a loop. */
export const LONG_BACKOFF: BackoffPolicy = { base: 30_000, cap: 300_000 };

/** Uniform random in [0, 1), injectable so tests can pin the delay. */
export type Random = () => number;

/** The upper bound of the delay for `attempt` (0-based): `min(cap, base * 2^attempt)`. */
export function backoffCeiling(attempt: number, policy: BackoffPolicy = NORMAL_BACKOFF): number {
  const exp = Math.min(Math.max(0, Math.floor(attempt)), 52);
  return Math.min(policy.cap, policy.base * 2 ** exp);
}

/**
 * The delay before the next try. A hint from the hub (`retry_after_ms`) is never undercut:
 * the wait is `max(delay, hint)`.
 */
export function backoffDelay(
  attempt: number,
  options: { policy?: BackoffPolicy; random?: Random; retryAfterMs?: number } = {},
): number {
  const random = options.random ?? Math.random;
  const delay = Math.floor(random() * backoffCeiling(attempt, options.policy));
  return Math.max(delay, options.retryAfterMs ?? 0);
}
