-- Labels on tickets, from a team-wide list that supervisors manage; agents put them on tickets
-- and filter and search by them. Users never see them.

ALTER TABLE agents ADD COLUMN supervisor BOOLEAN NOT NULL DEFAULT false;

CREATE TABLE labels (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL,
    -- The name folded (Arabic letter forms, marks, joiners, digits, case): unique, so that `كارت`
    -- and `کارت` cannot be two labels.
    name_key   TEXT NOT NULL UNIQUE,
    color      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE ticket_labels (
    ticket_id UUID NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    label_id  UUID NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    added_by  UUID NOT NULL REFERENCES agents (id),
    added_at  BIGINT NOT NULL,
    PRIMARY KEY (ticket_id, label_id)
);
CREATE INDEX ticket_labels_label_idx ON ticket_labels (label_id, ticket_id);
