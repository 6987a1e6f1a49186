//! SQL written once for both backends (`?N` placeholders; Postgres spells them `$N`), and small
//! helpers both backends share.

use crate::model::ids::SessionId;

/// The statements that delete an account's rows, children before parents, written once for both
/// backends (`?1` is the user id; Postgres spells it `$1`). Every table keyed by a user is named
/// here, including those whose foreign key would cascade anyway.
pub(super) const DELETE_ACCOUNT_ROWS: &[&str] = &[
    "DELETE FROM ticket_marks WHERE ticket_id IN (SELECT id FROM tickets WHERE user_id = ?1)",
    "DELETE FROM ticket_marks WHERE participant_kind = 'user' AND participant_id = ?1",
    DELETE_ACCOUNT_EVENTS,
    "DELETE FROM attachments WHERE ticket_id IN (SELECT id FROM tickets WHERE user_id = ?1)",
    "DELETE FROM attachments WHERE user_id = ?1",
    "DELETE FROM tickets WHERE user_id = ?1",
    "DELETE FROM view_events WHERE user_id = ?1",
    "DELETE FROM connections WHERE user_id = ?1",
    "DELETE FROM device_info_history WHERE user_id = ?1",
    "DELETE FROM device_info WHERE user_id = ?1",
    "DELETE FROM user_settings WHERE user_id = ?1",
    "DELETE FROM consent WHERE user_id = ?1",
    "DELETE FROM purchases WHERE user_id = ?1",
    "DELETE FROM sessions WHERE user_id = ?1",
    "DELETE FROM devices WHERE user_id = ?1",
    "DELETE FROM users WHERE id = ?1",
];

/// The events of an account's tickets (one of [`DELETE_ACCOUNT_ROWS`]).
const DELETE_ACCOUNT_EVENTS: &str =
    "DELETE FROM ticket_events WHERE ticket_id IN (SELECT id FROM tickets WHERE user_id = ?1)";

/// The statement of [`DELETE_ACCOUNT_ROWS`] as Postgres runs it: `?N` becomes `$N`, and the events
/// are found by a list of ticket ids. Postgres keeps events partitioned by month; for the join the
/// shared statement is, its planner cannot know that a ticket's events lie in a month or two, and
/// reads every month whole, where a list probes each month's primary key.
pub(super) fn delete_account_row_postgres(statement: &str) -> String {
    if statement == DELETE_ACCOUNT_EVENTS {
        return "DELETE FROM ticket_events WHERE ticket_id = ANY (ARRAY(SELECT id FROM tickets WHERE user_id = $1))"
            .into();
    }
    postgres(statement)
}

/// Deletes the sign-in codes and lock-outs of one number (`?1` is its keyed hash).
pub(super) const DELETE_PHONE_ROWS: &[&str] =
    &["DELETE FROM sign_in_codes WHERE phone_key = ?1", "DELETE FROM phone_guards WHERE phone_key = ?1"];

/// Adds one to a counter (`?1` its name).
pub(super) const BUMP_COUNTER: &str = "INSERT INTO hub_counters (name, value) VALUES (?1, 1)
     ON CONFLICT (name) DO UPDATE SET value = hub_counters.value + 1";

/// The tickets of a user after a `(created_at, id)` cursor (`?2`, `?3`; `?2` NULL for the first
/// page), oldest first, at most `?4`.
pub(super) const TICKETS_AFTER: &str = "SELECT id, user_id, subject, status, agent_id, created_at, updated_at, \
     queued_at, last_seq FROM tickets WHERE user_id = ?1 AND (?2 IS NULL OR (created_at, id) > (?2, ?3)) \
     ORDER BY created_at, id LIMIT ?4";

/// The same statement for Postgres: `?N` becomes `$N`.
pub(super) fn postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// Rows per multi-row `INSERT` (well under both backends' limits of bound parameters).
pub(super) const INSERT_CHUNK: usize = 500;

/// The ids of `ids` that are not in `live`, in their order.
pub(super) fn not_among(ids: &[SessionId], live: Vec<uuid::Uuid>) -> Vec<SessionId> {
    let live: std::collections::HashSet<uuid::Uuid> = live.into_iter().collect();
    ids.iter().copied().filter(|id| !live.contains(&id.0)).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn postgres_placeholders_are_numbered_dollars() {
        assert_eq!(
            super::postgres("a = ?1 AND (?2 IS NULL OR x > ?12) AND y = '?'"),
            "a = $1 AND ($2 IS NULL OR x > $12) AND y = '?'"
        );
    }
}
