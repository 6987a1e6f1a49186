-- SMS reminders: when an agent's reply stays unread and the user has no push target, one short
-- SMS (no message text) tells them support answered; at most one per ticket per period, and only
-- with the user's `sms_reminders` consent, which is off until they turn it on.

ALTER TABLE consent ADD COLUMN sms_reminders BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE consent ADD COLUMN sms_reminders_changed_at BIGINT;

-- One row per ticket with an agent reply since its last reminder: `due_at` is when to look again
-- (NULL: nothing waits), `seq` the newest reply, `sent_at` the last reminder's time.
CREATE TABLE sms_reminders (
    ticket_id    UUID PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    seq          BIGINT NOT NULL CHECK (seq >= 0),
    due_at       BIGINT,
    leased_until BIGINT,
    attempts     BIGINT NOT NULL CHECK (attempts >= 0),
    sent_at      BIGINT
);
CREATE INDEX sms_reminders_due_idx ON sms_reminders (due_at) WHERE due_at IS NOT NULL;
