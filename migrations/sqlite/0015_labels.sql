-- Labels on tickets, from a team-wide list that supervisors manage; agents put them on tickets
-- and filter and search by them. Users never see them.

ALTER TABLE agents ADD COLUMN supervisor INTEGER NOT NULL DEFAULT 0 CHECK (supervisor IN (0, 1));

CREATE TABLE labels (
    id         BLOB PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    -- The name folded (Arabic letter forms, marks, joiners, digits, case): unique, so that `كارت`
    -- and `کارت` cannot be two labels.
    name_key   TEXT NOT NULL UNIQUE,
    color      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE ticket_labels (
    ticket_id BLOB NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    label_id  BLOB NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    added_by  BLOB NOT NULL REFERENCES agents (id),
    added_at  INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, label_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX ticket_labels_label_idx ON ticket_labels (label_id, ticket_id);
