-- Push notifications: each device session's registration with one provider, and the durable queue
-- of notifications waiting to be sent. A registration lives only while its session does: deleted
-- with the session (account deletion, purge), and by the trigger below when the session is
-- revoked (sign-out, revocation, the account moving to a new phone).

CREATE TABLE push_registrations (
    session_id  UUID PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    provider    TEXT NOT NULL CHECK (provider IN ('fcm', 'apns', 'webpush')),
    token       TEXT,
    environment TEXT CHECK (environment IN ('production', 'sandbox')),
    endpoint    TEXT,
    p256dh      BYTEA,
    auth        BYTEA,
    preview     BOOLEAN NOT NULL,
    language    TEXT NOT NULL CHECK (language IN ('fa', 'en')),
    updated_at  BIGINT NOT NULL,
    CHECK ((provider = 'webpush') = (endpoint IS NOT NULL AND p256dh IS NOT NULL AND auth IS NOT NULL)),
    CHECK ((provider = 'webpush') <> (token IS NOT NULL)),
    CHECK ((provider = 'apns') = (environment IS NOT NULL))
);

CREATE FUNCTION push_registrations_end_with_their_session() RETURNS trigger AS $$
BEGIN
    DELETE FROM push_registrations WHERE session_id = NEW.id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER push_registrations_end_with_their_session
AFTER UPDATE OF revoked_at ON sessions
FOR EACH ROW WHEN (NEW.revoked_at IS NOT NULL)
EXECUTE FUNCTION push_registrations_end_with_their_session();

CREATE TABLE push_queue (
    id           BIGSERIAL PRIMARY KEY,
    session_id   UUID NOT NULL REFERENCES push_registrations (session_id) ON DELETE CASCADE,
    ticket_id    UUID NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('message', 'assigned', 'resolved', 'queued')),
    preview      TEXT,
    events       BIGINT NOT NULL CHECK (events >= 1),
    attempts     BIGINT NOT NULL CHECK (attempts >= 0),
    due_at       BIGINT NOT NULL,
    leased_until BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX push_queue_due_idx ON push_queue (due_at);
CREATE INDEX push_queue_collapse_idx ON push_queue (session_id, ticket_id);
