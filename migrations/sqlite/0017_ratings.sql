-- Users' ratings of their tickets' resolutions: one per resolution (a ticket resolved again after
-- a reopen may be rated again), credited to the agent who resolved it. The request itself is not
-- stored: it is the ticket's last event while the ticket stays resolved. Deleted with the ticket
-- (and so with the account).

CREATE TABLE ticket_ratings (
    ticket_id      BLOB NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    -- The seq of the 'resolved' event rated.
    resolution_seq INTEGER NOT NULL CHECK (resolution_seq >= 1),
    agent_id       BLOB REFERENCES agents (id),
    score          INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment        TEXT,
    rated_at       INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, resolution_seq)
) STRICT, WITHOUT ROWID;

-- Reports read the events that change a ticket's state (never messages) by time; messages are most
-- of the table and stay out of this index, so storing one costs nothing more.
CREATE INDEX ticket_events_lifecycle_idx ON ticket_events (created_at) WHERE kind <> 'message';
