-- Tickets' events are kept in a table partitioned by month: range partitions on created_at, one per
-- calendar month in UTC (`ticket_events_2026_12` holds the events stamped in December 2026), and a
-- default partition (`ticket_events_default`) for an event stamped outside every month that has
-- one (a node whose clock is far off), so that no insert ever fails for want of a partition. The
-- hub creates the current month and the three after it at start and on every purge round; old
-- months can then go as whole tables (a retention setting) instead of row by row.
--
-- Keys: a unique index of a partitioned table must contain its partition key, so
--   - the primary key is (ticket_id, seq, created_at). One seq per ticket is kept by the writers,
--     as before: a seq is allocated under the ticket's row lock (last_seq + 1). The key still gives
--     every partition the (ticket_id, seq) b-tree that reading a conversation uses;
--   - a message's client_msg_id stays unique by the same lock: a batch locks its tickets, then
--     looks for the messages already stored under its keys, through the index below (no longer
--     unique: a repeat of a message is stamped with a new time, so a unique key with created_at in
--     it would not catch it anyway).
--
-- Existing events are copied into their months' partitions: this takes about as long as copying the
-- table, needs as much free disk again, and runs in one transaction (`anapars-hub migrate` with the
-- nodes stopped, as for every migration).

ALTER TABLE ticket_events RENAME TO ticket_events_unpartitioned;
-- Free the names of its key and indexes for the new table's.
ALTER TABLE ticket_events_unpartitioned DROP CONSTRAINT ticket_events_pkey;
DROP INDEX ticket_events_client_msg_idx;
DROP INDEX ticket_events_created_brin;
DROP INDEX ticket_events_search_idx;
DROP INDEX ticket_events_lifecycle_idx;

-- The same columns, checks and generated search vector; the keys and indexes follow the rows.
CREATE TABLE ticket_events (
    LIKE ticket_events_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED
) PARTITION BY RANGE (created_at);

CREATE TABLE ticket_events_default PARTITION OF ticket_events DEFAULT;

-- Creates the partition of the UTC month that starts at `first_day` unless it exists; whether it did.
-- Events of that month already in the default partition move into it. Nodes calling this at once
-- take turns through a transaction-scoped advisory lock; the later ones find the partition made.
-- Creating a partition locks the whole table for a moment: callers set a lock_timeout.
CREATE FUNCTION ticket_events_add_month(first_day TIMESTAMP) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    part_name   TEXT := 'ticket_events_' || to_char(date_trunc('month', first_day), 'YYYY_MM');
    low         BIGINT := (extract(epoch FROM date_trunc('month', first_day)) * 1000)::BIGINT;
    high        BIGINT := (extract(epoch FROM date_trunc('month', first_day) + INTERVAL '1 month') * 1000)::BIGINT;
    strays      BOOLEAN;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('anapars-hub: ticket_events partitions'));
    IF to_regclass(part_name) IS NOT NULL THEN
        RETURN FALSE;
    END IF;
    SELECT EXISTS (SELECT 1 FROM ticket_events_default WHERE created_at >= low AND created_at < high) INTO strays;
    IF strays THEN
        CREATE TEMPORARY TABLE ticket_events_moving AS
            SELECT ticket_id, seq, kind, author_kind, author_id, body, client_msg_id, agent_id, created_at,
                   attachments, search_text
            FROM ticket_events_default WHERE created_at >= low AND created_at < high;
        DELETE FROM ticket_events_default WHERE created_at >= low AND created_at < high;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF ticket_events FOR VALUES FROM (%s) TO (%s)', part_name, low, high);
    IF strays THEN
        INSERT INTO ticket_events (ticket_id, seq, kind, author_kind, author_id, body, client_msg_id, agent_id,
                                   created_at, attachments, search_text)
            SELECT * FROM ticket_events_moving;
        DROP TABLE ticket_events_moving;
    END IF;
    RETURN TRUE;
END
$$;

-- Creates the partitions of the month holding `at` (milliseconds since the epoch) and of the `ahead`
-- months after it that are missing; how many it created.
CREATE FUNCTION ticket_events_add_months(at BIGINT, ahead INTEGER) RETURNS INTEGER LANGUAGE sql AS $$
    SELECT count(*) FILTER (WHERE ticket_events_add_month(m))::INTEGER
    FROM generate_series(
        date_trunc('month', to_timestamp(at / 1000.0) AT TIME ZONE 'UTC'),
        date_trunc('month', to_timestamp(at / 1000.0) AT TIME ZONE 'UTC') + make_interval(months => ahead),
        INTERVAL '1 month'
    ) AS m
$$;

-- Drops every partition whose months all ended at or before `before` (milliseconds since the
-- epoch), oldest first; their names. The default partition always stays.
CREATE FUNCTION ticket_events_drop_months(before BIGINT) RETURNS SETOF TEXT LANGUAGE plpgsql AS $$
DECLARE
    part RECORD;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('anapars-hub: ticket_events partitions'));
    FOR part IN
        SELECT c.relname AS name,
               substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''?(-?[0-9]+)''?\)')::BIGINT AS high
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'ticket_events'::regclass
        ORDER BY 2
    LOOP
        IF part.high IS NOT NULL AND part.high <= before THEN
            EXECUTE format('DROP TABLE %I', part.name);
            RETURN NEXT part.name;
        END IF;
    END LOOP;
END
$$;

-- The months the existing events were stamped in, and the current one with the three after it.
SELECT ticket_events_add_month(m)
FROM (SELECT DISTINCT date_trunc('month', to_timestamp(created_at / 1000.0) AT TIME ZONE 'UTC') AS m
      FROM ticket_events_unpartitioned) AS months;
SELECT ticket_events_add_months((extract(epoch FROM now()) * 1000)::BIGINT, 3);

INSERT INTO ticket_events (ticket_id, seq, kind, author_kind, author_id, body, client_msg_id, agent_id, created_at,
                           attachments, search_text)
    SELECT ticket_id, seq, kind, author_kind, author_id, body, client_msg_id, agent_id, created_at,
           attachments, search_text
    FROM ticket_events_unpartitioned;
DROP TABLE ticket_events_unpartitioned;

-- Built once the rows are in, on every partition (and on each one created later).
ALTER TABLE ticket_events ADD PRIMARY KEY (ticket_id, seq, created_at);
-- Finding a batch's messages already stored (see the keys above). The nil UUID stands in for the
-- system author, whose author_id is NULL; the store compares with this same expression.
CREATE INDEX ticket_events_client_msg_idx ON ticket_events
    (ticket_id, author_kind, COALESCE(author_id, '00000000-0000-0000-0000-000000000000'::uuid), client_msg_id)
    WHERE client_msg_id IS NOT NULL;
CREATE INDEX ticket_events_created_brin ON ticket_events USING brin (created_at) WITH (autosummarize = on);
CREATE INDEX ticket_events_search_idx ON ticket_events USING GIN (search_vector);
CREATE INDEX ticket_events_lifecycle_idx ON ticket_events (created_at) WHERE kind <> 'message';

-- The events of deleted tickets (migration 0008), found by each month's primary key: as a join, the
-- planner cannot know that a ticket's events lie in a month or two, and reads every month whole.
CREATE OR REPLACE FUNCTION ticket_events_follow_their_tickets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM ticket_events WHERE ticket_id = ANY (ARRAY(SELECT id FROM deleted_tickets));
    RETURN NULL;
END
$$;
