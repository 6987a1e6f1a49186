-- Agents' private notes on tickets: information about the customer that only agents see. They
-- are a stream of their own beside the ticket's events, so the events' gapless numbering that the
-- user's apps rely on never skips a note. Deleted with the ticket (and so with the account).

CREATE TABLE ticket_notes (
    id            UUID PRIMARY KEY,
    ticket_id     UUID NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    agent_id      UUID NOT NULL REFERENCES agents (id),
    body          TEXT NOT NULL,
    -- The agents the note names, as a JSON array of ids.
    mentions      TEXT NOT NULL,
    client_msg_id TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (ticket_id, agent_id, client_msg_id)
);
CREATE INDEX ticket_notes_ticket_idx ON ticket_notes (ticket_id, id);
