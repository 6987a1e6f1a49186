-- SMS reminders: when an agent's reply stays unread and the user has no push target, one short
-- SMS (no message text) tells them support answered; at most one per ticket per period, and only
-- with the user's `sms_reminders` consent, which is off until they turn it on.

ALTER TABLE consent ADD COLUMN sms_reminders INTEGER NOT NULL DEFAULT 0 CHECK (sms_reminders IN (0, 1));
ALTER TABLE consent ADD COLUMN sms_reminders_changed_at INTEGER;

-- One row per ticket with an agent reply since its last reminder: `due_at` is when to look again
-- (NULL: nothing waits), `seq` the newest reply, `sent_at` the last reminder's time.
CREATE TABLE sms_reminders (
    ticket_id    BLOB PRIMARY KEY NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    user_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL CHECK (seq >= 0),
    due_at       INTEGER,
    leased_until INTEGER,
    attempts     INTEGER NOT NULL CHECK (attempts >= 0),
    sent_at      INTEGER
) STRICT;
CREATE INDEX sms_reminders_due_idx ON sms_reminders (due_at) WHERE due_at IS NOT NULL;
