-- The texts and names stored before they were searchable, which every node indexes in the background
-- at start, are found through these indexes, which hold only them: empty once the work is done, so
-- that a start reads an empty index instead of every event ever stored, and a round reads its next
-- rows instead of the rows that earlier rounds already indexed.
CREATE INDEX ticket_events_unsearched_idx ON ticket_events (ticket_id, seq)
    WHERE search_text IS NULL AND body IS NOT NULL;
CREATE INDEX users_unsearched_idx ON users (id) WHERE search_name IS NULL AND name IS NOT NULL;
