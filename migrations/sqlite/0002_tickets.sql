-- Support agents (their sessions and canned replies), tickets, each ticket's event stream and the
-- participants' read marks.
--
-- The same schema as migrations/postgres, in SQLite's types (see 0001_init.sql). Deleting a user
-- deletes their tickets, and with them every event and mark of those tickets. Agents are disabled,
-- never deleted: tickets and events keep naming them.

CREATE TABLE agents (
    id            BLOB PRIMARY KEY NOT NULL,
    -- Lowercased by the store, so that this constraint is case-insensitive.
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER,
    -- A new agent is away until they say otherwise: nobody is auto-assigned tickets before they
    -- first open the console.
    status        TEXT NOT NULL DEFAULT 'away' CHECK (status IN ('available', 'busy', 'away')),
    capacity      INTEGER NOT NULL DEFAULT 5 CHECK (capacity >= 0)
) STRICT;

CREATE TABLE agent_sessions (
    id         BLOB PRIMARY KEY NOT NULL,
    agent_id   BLOB NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE INDEX agent_sessions_agent_idx ON agent_sessions (agent_id);

CREATE TABLE canned_replies (
    id         BLOB PRIMARY KEY NOT NULL,
    agent_id   BLOB NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    title      TEXT NOT NULL CHECK (length(title) <= 100),
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX canned_replies_agent_idx ON canned_replies (agent_id, created_at);

CREATE TABLE tickets (
    id                 BLOB PRIMARY KEY NOT NULL,
    user_id            BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    subject            TEXT NOT NULL CHECK (length(subject) <= 200),
    status             TEXT NOT NULL CHECK (status IN ('open', 'assigned', 'resolved')),
    agent_id           BLOB REFERENCES agents (id),
    -- The client_msg_id of the first message: opening is idempotent on (user, this).
    open_client_msg_id TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    queued_at          INTEGER,
    -- The seq of the ticket's last event; the next event takes last_seq + 1 in the write transaction.
    last_seq           INTEGER NOT NULL CHECK (last_seq >= 0),
    UNIQUE (user_id, open_client_msg_id),
    -- A ticket is in the queue exactly while it is open, and an assigned ticket has its agent.
    CHECK ((status = 'open') = (queued_at IS NOT NULL)),
    CHECK (status <> 'assigned' OR agent_id IS NOT NULL)
) STRICT;
-- The queue, oldest first.
CREATE INDEX tickets_queue_idx ON tickets (queued_at, id) WHERE status = 'open';
-- A user's tickets, most recently updated first (also serves the cascade from users).
CREATE INDEX tickets_user_idx ON tickets (user_id, updated_at, id);
-- Assigned and resolved tickets, most recently updated first.
CREATE INDEX tickets_status_idx ON tickets (status, updated_at, id);
-- An agent's tickets, and the per-agent counts.
CREATE INDEX tickets_assigned_idx ON tickets (agent_id, created_at, id) WHERE status = 'assigned';

-- The 'system' author (the hub itself) has no id; users and agents always have one. Their ids are
-- not foreign keys: an author is either kind.
CREATE TABLE ticket_events (
    ticket_id     BLOB NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL CHECK (seq >= 1),
    kind          TEXT NOT NULL
                  CHECK (kind IN ('opened', 'message', 'claimed', 'transferred', 'resolved', 'reopened')),
    author_kind   TEXT NOT NULL CHECK (author_kind IN ('user', 'agent', 'system')),
    author_id     BLOB,
    body          TEXT,
    client_msg_id TEXT,
    agent_id      BLOB REFERENCES agents (id),
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, seq),
    CHECK ((author_kind = 'system') = (author_id IS NULL))
) STRICT;
-- Message idempotency. A plain unique index would treat every NULL author_id as distinct and let the
-- system author store one client_msg_id twice; the nil UUID stands in for it here (no user or agent
-- has that id). The store finds duplicates with this same expression.
CREATE UNIQUE INDEX ticket_events_client_msg_idx ON ticket_events
    (ticket_id, author_kind, coalesce(author_id, x'00000000000000000000000000000000'), client_msg_id)
    WHERE client_msg_id IS NOT NULL;

-- How far each participant (a user or an agent) has got in a ticket.
CREATE TABLE ticket_marks (
    ticket_id        BLOB NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    participant_kind TEXT NOT NULL CHECK (participant_kind IN ('user', 'agent')),
    participant_id   BLOB NOT NULL,
    delivered_seq    INTEGER NOT NULL CHECK (delivered_seq >= 0),
    read_seq         INTEGER NOT NULL CHECK (read_seq >= 0),
    PRIMARY KEY (ticket_id, participant_kind, participant_id)
) STRICT, WITHOUT ROWID;
