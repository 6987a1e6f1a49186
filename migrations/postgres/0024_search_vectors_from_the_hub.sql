-- The search vector of an event is written by the hub with the event, from the words it splits the
-- folded text into (as it splits the searches, and as SQLite's index splits texts), instead of being
-- computed by Postgres' parser on insert: `to_tsvector` made one word of an address or an amount
-- (`a.b@example.com`, `1234.56`) and a negative number of the `-99` in `TX-99`, which searches for
-- their parts did not find. Vectors already stored keep their value.
ALTER TABLE ticket_events ALTER COLUMN search_vector DROP EXPRESSION;

-- Events of a new month found in the default partition move with their vectors. With no generated
-- column left, they move as whole rows (a partition has its table's columns in its table's order),
-- so a column added later moves with them too.
CREATE OR REPLACE FUNCTION ticket_events_add_month(first_day TIMESTAMP) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
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
            SELECT * FROM ticket_events_default WHERE created_at >= low AND created_at < high;
        DELETE FROM ticket_events_default WHERE created_at >= low AND created_at < high;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF ticket_events FOR VALUES FROM (%s) TO (%s)', part_name, low, high);
    IF strays THEN
        INSERT INTO ticket_events SELECT * FROM ticket_events_moving;
        DROP TABLE ticket_events_moving;
    END IF;
    RETURN TRUE;
END
$$;
