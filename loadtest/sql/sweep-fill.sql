-- A database for timing the cluster sweep's page of changed tickets: `:old` tickets changed in the
-- six days before now (two events each, resolved) and `:active` in the last six seconds (eighteen
-- events each, one every 0.3 s, open). Run it on an empty database the hub has migrated
-- (`anapars-hub migrate`), then time sweep-page.sql with pgbench, or run the chat on it with
-- `:active` 0 (a long history under a live load); loadtest/README.md has the commands.
\set ON_ERROR_STOP 1
INSERT INTO users (id, registered_at) VALUES ('00000000-0000-0000-0000-0000000000aa', 0);
INSERT INTO tickets (id, user_id, subject, status, open_client_msg_id, created_at, updated_at, queued_at, last_seq,
                     resolved_at)
SELECT gen_random_uuid(), '00000000-0000-0000-0000-0000000000aa', 's', 'resolved', 'o' || g, t, t + 1000, NULL, 2,
       t + 1000
FROM (SELECT g, (extract(epoch FROM now()) * 1000)::bigint - 6 * 86400000 + g * 500 AS t
      FROM generate_series(1, :old) AS g) AS x;
INSERT INTO ticket_events (ticket_id, seq, kind, author_kind, author_id, body, client_msg_id, created_at, search_text,
                           search_vector)
SELECT id, s, 'message', 'user', user_id, 'hello', 'c' || s, created_at + s * 500, 'hello', 'hello:1'
FROM tickets, generate_series(1, 2) AS s;
INSERT INTO tickets (id, user_id, subject, status, open_client_msg_id, created_at, updated_at, queued_at, last_seq)
SELECT gen_random_uuid(), '00000000-0000-0000-0000-0000000000aa', 's', 'open', 'n' || g,
       (extract(epoch FROM now()) * 1000)::bigint - 60000, (extract(epoch FROM now()) * 1000)::bigint - (g % 6000),
       1, 18
FROM generate_series(1, :active) AS g;
INSERT INTO ticket_events (ticket_id, seq, kind, author_kind, author_id, body, client_msg_id, created_at, search_text,
                           search_vector)
SELECT id, s, 'message', 'user', user_id, 'hello', 'c' || s, updated_at - (18 - s) * 300, 'hello', 'hello:1'
FROM tickets, generate_series(1, 18) AS s
WHERE open_client_msg_id LIKE 'n%';
VACUUM ANALYZE tickets;
VACUUM ANALYZE ticket_events;
-- The start of the sweep's window: seven seconds before the last change (for sweep-page.sql).
SELECT max(updated_at) - 7000 AS since FROM tickets \gset
\echo since=:since
