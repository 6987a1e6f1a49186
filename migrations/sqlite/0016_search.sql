-- Search over tickets for agents: each message's text (and each ticket's subject, the body of its
-- `opened` event) folded by the hub as searches fold what is typed (Arabic letter forms to Persian,
-- no short vowels or joiners, ASCII digits, lower case), in an FTS5 index kept by triggers.
-- Rows stored before this column existed are folded by the hub in the background.

ALTER TABLE ticket_events ADD COLUMN search_text TEXT;

CREATE VIRTUAL TABLE ticket_search USING fts5 (
    search_text,
    content = 'ticket_events',
    content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 0'
);

CREATE TRIGGER ticket_search_insert AFTER INSERT ON ticket_events WHEN NEW.search_text IS NOT NULL
BEGIN
    INSERT INTO ticket_search (rowid, search_text) VALUES (NEW.rowid, NEW.search_text);
END;

CREATE TRIGGER ticket_search_delete AFTER DELETE ON ticket_events WHEN OLD.search_text IS NOT NULL
BEGIN
    INSERT INTO ticket_search (ticket_search, rowid, search_text) VALUES ('delete', OLD.rowid, OLD.search_text);
END;

CREATE TRIGGER ticket_search_update AFTER UPDATE OF search_text ON ticket_events
BEGIN
    INSERT INTO ticket_search (ticket_search, rowid, search_text)
        SELECT 'delete', OLD.rowid, OLD.search_text WHERE OLD.search_text IS NOT NULL;
    INSERT INTO ticket_search (rowid, search_text) SELECT NEW.rowid, NEW.search_text WHERE NEW.search_text IS NOT NULL;
END;
