-- Purchases and subscriptions as the group's billing system reports them (issue 8).
--
-- Keyed by user_id with ON DELETE CASCADE: the policy says that when an account is deleted, every
-- fee paid for activating applications or buying subscriptions with it is deleted too.
-- `reference` is the billing system's own id; its uniqueness is what makes a replayed report
-- idempotent (src/storage/purchases.rs).

CREATE TABLE purchases (
    id           BLOB PRIMARY KEY NOT NULL,
    user_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reference    TEXT NOT NULL UNIQUE,
    product      TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('activation', 'subscription')),
    amount_minor INTEGER NOT NULL CHECK (amount_minor >= 0),
    currency     TEXT NOT NULL,
    purchased_at INTEGER NOT NULL,
    expires_at   INTEGER,
    status       TEXT NOT NULL CHECK (status IN ('paid', 'refunded', 'cancelled')),
    received_at  INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX purchases_user_idx ON purchases (user_id, purchased_at);
