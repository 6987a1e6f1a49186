-- Push notifications: each device session's registration with one provider, and the durable queue
-- of notifications waiting to be sent. A registration lives only while its session does: deleted
-- with the session (account deletion, purge), and by the trigger below when the session is
-- revoked (sign-out, revocation, the account moving to a new phone).

CREATE TABLE push_registrations (
    session_id  BLOB PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    provider    TEXT NOT NULL CHECK (provider IN ('fcm', 'apns', 'webpush')),
    token       TEXT,
    environment TEXT CHECK (environment IN ('production', 'sandbox')),
    endpoint    TEXT,
    p256dh      BLOB,
    auth        BLOB,
    preview     INTEGER NOT NULL CHECK (preview IN (0, 1)),
    language    TEXT NOT NULL CHECK (language IN ('fa', 'en')),
    updated_at  INTEGER NOT NULL,
    CHECK ((provider = 'webpush') = (endpoint IS NOT NULL AND p256dh IS NOT NULL AND auth IS NOT NULL)),
    CHECK ((provider = 'webpush') <> (token IS NOT NULL)),
    CHECK ((provider = 'apns') = (environment IS NOT NULL))
) STRICT;

CREATE TRIGGER push_registrations_end_with_their_session
AFTER UPDATE OF revoked_at ON sessions
WHEN NEW.revoked_at IS NOT NULL
BEGIN
    DELETE FROM push_registrations WHERE session_id = NEW.id;
END;

CREATE TABLE push_queue (
    id           INTEGER PRIMARY KEY,
    session_id   BLOB NOT NULL REFERENCES push_registrations (session_id) ON DELETE CASCADE,
    ticket_id    BLOB NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('message', 'assigned', 'resolved', 'queued')),
    preview      TEXT,
    events       INTEGER NOT NULL CHECK (events >= 1),
    attempts     INTEGER NOT NULL CHECK (attempts >= 0),
    due_at       INTEGER NOT NULL,
    leased_until INTEGER,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX push_queue_due_idx ON push_queue (due_at);
CREATE INDEX push_queue_collapse_idx ON push_queue (session_id, ticket_id);
