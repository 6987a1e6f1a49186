-- FTS5 answers a deleted row by writing a delete marker into a new segment of its index and leaves
-- the row's words in the older segment, to be dropped when the two are merged, whenever that is:
-- a deleted account's messages stayed in the search index, word for word, after the rows were
-- gone. With secure-delete a deletion takes the row's entries out of the index at once.
INSERT INTO ticket_search (ticket_search, rank) VALUES ('secure-delete', 1);
-- What deletions before this left: merging every segment into one drops it.
INSERT INTO ticket_search (ticket_search) VALUES ('optimize');
