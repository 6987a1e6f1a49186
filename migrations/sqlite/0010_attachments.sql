-- Attachments: the records of uploaded files (their bytes are in the object store, under a key
-- made of the uploader and the id). Uploaded by a user or an agent (exactly one); a user's
-- attachments go with the account, an attachment on a ticket with the ticket.

CREATE TABLE attachments (
    id            BLOB PRIMARY KEY NOT NULL,
    user_id       BLOB REFERENCES users (id) ON DELETE CASCADE,
    agent_id      BLOB REFERENCES agents (id) ON DELETE CASCADE,
    ticket_id     BLOB REFERENCES tickets (id) ON DELETE CASCADE,
    state         TEXT NOT NULL CHECK (state IN ('uploading', 'stored', 'attached')),
    name          TEXT NOT NULL,
    length        INTEGER NOT NULL CHECK (length >= 0),
    received      INTEGER NOT NULL CHECK (received >= 0 AND received <= length),
    media_type    TEXT,
    size          INTEGER CHECK (size >= 0),
    width         INTEGER CHECK (width > 0),
    height        INTEGER CHECK (height > 0),
    thumbnail_key TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    CHECK ((user_id IS NULL) <> (agent_id IS NULL)),
    CHECK ((state = 'attached') = (ticket_id IS NOT NULL)),
    CHECK (state = 'uploading' OR (media_type IS NOT NULL AND size IS NOT NULL AND received = length)),
    CHECK ((width IS NULL) = (height IS NULL))
) STRICT;
CREATE INDEX attachments_user_idx ON attachments (user_id, created_at) WHERE user_id IS NOT NULL;
CREATE INDEX attachments_agent_idx ON attachments (agent_id, created_at) WHERE agent_id IS NOT NULL;
CREATE INDEX attachments_ticket_idx ON attachments (ticket_id) WHERE ticket_id IS NOT NULL;
CREATE INDEX attachments_expiry_idx ON attachments (expires_at) WHERE expires_at IS NOT NULL;
