-- Search over tickets for agents: each message's text (and each ticket's subject, the body of its
-- `opened` event) folded by the hub as searches fold what is typed (Arabic letter forms to Persian,
-- no short vowels or joiners, ASCII digits, lower case), with a GIN index of its `simple` text
-- search vector. Rows stored before this column existed are folded by the hub in the background.

ALTER TABLE ticket_events ADD COLUMN search_text TEXT;
CREATE INDEX ticket_events_search_idx ON ticket_events USING GIN (to_tsvector('simple', search_text))
    WHERE search_text IS NOT NULL;
