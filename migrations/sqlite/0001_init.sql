-- Accounts, sessions, sign-in codes, per-number lock-outs and the hub's own keys.
--
-- The same schema as migrations/postgres, in SQLite's types: ids are UUIDs in sqlx's encoding (a
-- 16-byte BLOB), times INTEGER milliseconds since the Unix epoch, hashes BLOBs, booleans 0 or 1.
-- STRICT makes SQLite refuse a value of the wrong type instead of storing it anyway. Later tables
-- (tickets, messages) reference users(id) with ON DELETE CASCADE (foreign keys are switched on per
-- connection by the store).

CREATE TABLE users (
    id            BLOB PRIMARY KEY NOT NULL,
    phone         TEXT NOT NULL UNIQUE,
    registered_at INTEGER NOT NULL
) STRICT;

CREATE TABLE devices (
    id               BLOB PRIMARY KEY NOT NULL,
    user_id          BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_device_id TEXT NOT NULL,
    name             TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    last_seen_at     INTEGER NOT NULL,
    -- The upsert key; its leading column also serves lookups by user.
    UNIQUE (user_id, client_device_id),
    -- Target of the sessions' (device_id, user_id) foreign key.
    UNIQUE (id, user_id)
) STRICT;

CREATE TABLE sessions (
    id         BLOB PRIMARY KEY NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id  BLOB NOT NULL,
    token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    -- A session can only ever be bound to a device of its own user.
    FOREIGN KEY (device_id, user_id) REFERENCES devices (id, user_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_device_idx ON sessions (device_id, user_id);
-- For the purge, which deletes by either time.
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
CREATE INDEX sessions_revoked_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- One row per number: a new code replaces the previous one in a single upsert, so that only the
-- newest code works.
CREATE TABLE sign_in_codes (
    id         BLOB PRIMARY KEY NOT NULL,
    phone_key  TEXT NOT NULL UNIQUE,
    code_hash  BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    consumed   INTEGER NOT NULL DEFAULT 0 CHECK (consumed IN (0, 1))
) STRICT;
CREATE INDEX sign_in_codes_expires_idx ON sign_in_codes (expires_at);

CREATE TABLE phone_guards (
    phone_key    TEXT PRIMARY KEY NOT NULL,
    failures     INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
    lockouts     INTEGER NOT NULL DEFAULT 0 CHECK (lockouts >= 0),
    locked_until INTEGER
) STRICT;

CREATE TABLE hub_keys (
    name  TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) STRICT;
