-- Accounts, sessions, sign-in codes, per-number lock-outs and the hub's own keys.
--
-- Times are BIGINT milliseconds since the Unix epoch: the same integers SQLite stores and the wire
-- carries, so every backend agrees to the millisecond. Hashes are raw bytes. Later tables (tickets,
-- messages) reference users(id) with ON DELETE CASCADE, so deleting a user deletes everything of theirs.

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    phone         TEXT NOT NULL UNIQUE,
    registered_at BIGINT NOT NULL
);

CREATE TABLE devices (
    id               UUID PRIMARY KEY,
    user_id          UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_device_id TEXT NOT NULL,
    name             TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    last_seen_at     BIGINT NOT NULL,
    -- The upsert key; its leading column also serves lookups by user.
    UNIQUE (user_id, client_device_id),
    -- Target of the sessions' (device_id, user_id) foreign key.
    UNIQUE (id, user_id)
);

CREATE TABLE sessions (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id  UUID NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    -- A session can only ever be bound to a device of its own user.
    FOREIGN KEY (device_id, user_id) REFERENCES devices (id, user_id) ON DELETE CASCADE
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_device_idx ON sessions (device_id, user_id);
-- For the purge, which deletes by either time.
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
CREATE INDEX sessions_revoked_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- One row per number: a new code replaces the previous one in a single upsert, so that only the
-- newest code works even when two resends race.
CREATE TABLE sign_in_codes (
    id         UUID PRIMARY KEY,
    phone_key  TEXT NOT NULL UNIQUE,
    code_hash  BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    consumed   BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX sign_in_codes_expires_idx ON sign_in_codes (expires_at);

CREATE TABLE phone_guards (
    phone_key    TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
    lockouts     INTEGER NOT NULL DEFAULT 0 CHECK (lockouts >= 0),
    locked_until BIGINT
);

CREATE TABLE hub_keys (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
