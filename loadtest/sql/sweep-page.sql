-- One page of the cluster sweep's read of changed tickets, as the hub runs it on Postgres
-- (`changed_since` in src/adapters/sql/postgres/tickets.rs), from :since, a page of 2,000.
SELECT t.id, t.user_id, t.subject, t.status, t.agent_id, t.created_at, t.updated_at, t.queued_at, t.last_seq
FROM (SELECT DISTINCT ticket_id FROM ticket_events WHERE created_at >= :since) AS e,
     LATERAL (SELECT id, user_id, subject, status, agent_id, created_at, updated_at, queued_at, last_seq
              FROM tickets WHERE id = e.ticket_id AND updated_at >= :since LIMIT 1) AS t
ORDER BY t.updated_at, t.id LIMIT 2000;
