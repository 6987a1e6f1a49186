-- Search over tickets for agents: each message's text (and each ticket's subject, the body of its
-- `opened` event) folded by the hub as searches fold what is typed (Arabic letter forms to Persian,
-- no short vowels or joiners, ASCII digits, lower case), its `simple` text search vector stored
-- beside it (ranking reads it instead of parsing each matching text again), and a GIN index of
-- the vectors. Rows stored before this column existed are folded by the hub in the background.

ALTER TABLE ticket_events ADD COLUMN search_text TEXT;
ALTER TABLE ticket_events ADD COLUMN search_vector TSVECTOR
    GENERATED ALWAYS AS (to_tsvector('simple', COALESCE(search_text, ''))) STORED;
CREATE INDEX ticket_events_search_idx ON ticket_events USING GIN (search_vector);
