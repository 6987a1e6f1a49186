-- Every batch of messages updates its tickets' last_seq and updated_at, and SQLite rewrites the entry
-- of every index that names a column the UPDATE sets: with updated_at in three indexes, each message
-- dirtied a page in each of them, and every dirtied page is a 4 KiB frame in the WAL at the commit.
-- So, as on Postgres, no index names updated_at or last_seq where messages change them:
--   - a user's tickets are found by the unique index that starts with user_id, then sorted;
--   - assigned tickets by their partial index, then sorted;
--   - resolved tickets (the only list that grows without bound) by a partial index of their own: a
--     message to a resolved ticket reopens it, so no message batch updates a row in that index
--     without moving it out;
--   - tickets changed lately (the cluster sweep) by their events' times: a new event's entry goes at
--     the end of that index, where a batch's events share a page.
DROP INDEX tickets_changed_idx;
DROP INDEX tickets_user_idx;
DROP INDEX tickets_status_idx;

CREATE INDEX tickets_resolved_idx ON tickets (updated_at DESC, id DESC) WHERE status = 'resolved';
CREATE INDEX ticket_events_created_idx ON ticket_events (created_at);
