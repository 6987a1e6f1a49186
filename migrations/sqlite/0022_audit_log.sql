-- The audit log: who (operator, agent, user, billing, the hub) did what to which object, and when.
-- Ids and figures only, never personal content. Kept for audit_retention_days; the entries about a
-- user are in their export and deleted with their account. The kind of object is the part of the
-- action's name before the dot. `detail` is a small JSON object, as text.

CREATE TABLE audit_log (
    id         BLOB PRIMARY KEY,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    actor_id   BLOB,
    action     TEXT NOT NULL,
    object_id  BLOB,
    -- The user an entry concerns besides its actor (a ticket's user).
    user_id    BLOB,
    detail     TEXT
) STRICT;

-- Supervisors read by time; retention deletes by time.
CREATE INDEX audit_log_at_idx ON audit_log (at);
-- A user's export and deletion find their entries.
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_log_user_idx ON audit_log (user_id) WHERE user_id IS NOT NULL;
