-- One table of sessions for users and agents: a session is held either by a user on one of their
-- devices or by an agent. Agents' sessions move here from `agent_sessions`, tokens included, so
-- every signed-in console stays signed in. SQLite cannot relax NOT NULL in place, so the table is
-- rebuilt (no table references `sessions`, so dropping the old one touches nothing else).

CREATE TABLE sessions_of_both (
    id         BLOB PRIMARY KEY NOT NULL,
    user_id    BLOB REFERENCES users (id) ON DELETE CASCADE,
    device_id  BLOB,
    agent_id   BLOB REFERENCES agents (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    -- A session can only ever be bound to a device of its own user.
    FOREIGN KEY (device_id, user_id) REFERENCES devices (id, user_id) ON DELETE CASCADE,
    CHECK (
        (agent_id IS NULL AND user_id IS NOT NULL AND device_id IS NOT NULL)
        OR (agent_id IS NOT NULL AND user_id IS NULL AND device_id IS NULL)
    )
) STRICT;

INSERT INTO sessions_of_both (id, user_id, device_id, token_hash, created_at, expires_at, revoked_at)
SELECT id, user_id, device_id, token_hash, created_at, expires_at, revoked_at FROM sessions;
INSERT INTO sessions_of_both (id, agent_id, token_hash, created_at, expires_at, revoked_at)
SELECT id, agent_id, token_hash, created_at, expires_at, revoked_at FROM agent_sessions;

DROP TABLE sessions;
DROP TABLE agent_sessions;
ALTER TABLE sessions_of_both RENAME TO sessions;

CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_device_idx ON sessions (device_id, user_id);
CREATE INDEX sessions_agent_idx ON sessions (agent_id) WHERE agent_id IS NOT NULL;
-- For the purge, which deletes by either time.
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
CREATE INDEX sessions_revoked_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
-- Live sessions of a user, for device transfer.
CREATE INDEX sessions_live_by_user_idx ON sessions (user_id, created_at) WHERE revoked_at IS NULL;
