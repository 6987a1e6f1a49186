-- One table of sessions for users and agents: a session is held either by a user on one of their
-- devices or by an agent. Agents' sessions move here from `agent_sessions`, tokens included, so
-- every signed-in console stays signed in.

ALTER TABLE sessions
    ALTER COLUMN user_id DROP NOT NULL,
    ALTER COLUMN device_id DROP NOT NULL,
    ADD COLUMN agent_id UUID REFERENCES agents (id) ON DELETE CASCADE,
    ADD CONSTRAINT sessions_one_holder CHECK (
        (agent_id IS NULL AND user_id IS NOT NULL AND device_id IS NOT NULL)
        OR (agent_id IS NOT NULL AND user_id IS NULL AND device_id IS NULL)
    );

INSERT INTO sessions (id, agent_id, token_hash, created_at, expires_at, revoked_at)
SELECT id, agent_id, token_hash, created_at, expires_at, revoked_at FROM agent_sessions;

CREATE INDEX sessions_agent_idx ON sessions (agent_id) WHERE agent_id IS NOT NULL;

DROP TABLE agent_sessions;
