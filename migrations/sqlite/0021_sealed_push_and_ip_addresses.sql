-- Push addresses and IP addresses sealed at rest, as mobile numbers are: where a device's
-- notifications go (the FCM or APNs token, or the Web Push subscription) in `address_sealed`, the
-- IP address a socket came from in `ip_sealed`, each as XChaCha20-Poly1305 ciphertext under a data
-- key kept outside the database, the key's id beside it. The hub seals the plain values of
-- databases made before this in batches when it starts, then drops the plain columns.
--
-- SQLite cannot relax a constraint in place, so both tables are rebuilt (foreign keys are off
-- while migrations run; the store checks every foreign key afterwards). The trigger that ends a
-- registration with its session names the table, so it is made again around the rebuild.
DROP TRIGGER push_registrations_end_with_their_session;

CREATE TABLE push_registrations_sealed (
    session_id     BLOB PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    provider       TEXT NOT NULL CHECK (provider IN ('fcm', 'apns', 'webpush')),
    environment    TEXT CHECK (environment IN ('production', 'sandbox')),
    address_sealed BLOB,
    address_key_id TEXT,
    preview        INTEGER NOT NULL CHECK (preview IN (0, 1)),
    language       TEXT NOT NULL CHECK (language IN ('fa', 'en')),
    updated_at     INTEGER NOT NULL,
    -- Plain, from before sealing; emptied by the hub as it seals, then dropped.
    token          TEXT,
    endpoint       TEXT,
    p256dh         BLOB,
    auth           BLOB,
    CHECK ((address_sealed IS NULL) = (address_key_id IS NULL)),
    CHECK ((provider = 'apns') = (environment IS NOT NULL))
) STRICT;
INSERT INTO push_registrations_sealed
    (session_id, provider, environment, preview, language, updated_at, token, endpoint, p256dh, auth)
    SELECT session_id, provider, environment, preview, language, updated_at, token, endpoint, p256dh, auth
    FROM push_registrations;
DROP TABLE push_registrations;
ALTER TABLE push_registrations_sealed RENAME TO push_registrations;

CREATE TRIGGER push_registrations_end_with_their_session
AFTER UPDATE OF revoked_at ON sessions
WHEN NEW.revoked_at IS NOT NULL
BEGIN
    DELETE FROM push_registrations WHERE session_id = NEW.id;
END;

CREATE TABLE connections_sealed (
    id              BLOB PRIMARY KEY NOT NULL,
    user_id         BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id       BLOB NOT NULL,
    ip_sealed       BLOB,
    ip_key_id       TEXT,
    user_agent      TEXT,
    client_version  TEXT,
    connected_at    INTEGER NOT NULL,
    disconnected_at INTEGER,
    -- Plain, from before sealing; emptied by the hub as it seals, then dropped.
    ip              TEXT,
    CHECK ((ip_sealed IS NULL) = (ip_key_id IS NULL))
) STRICT;
INSERT INTO connections_sealed (id, user_id, device_id, user_agent, client_version, connected_at, disconnected_at, ip)
    SELECT id, user_id, device_id, user_agent, client_version, connected_at, disconnected_at, ip FROM connections;
DROP TABLE connections;
ALTER TABLE connections_sealed RENAME TO connections;
CREATE INDEX connections_user_idx ON connections (user_id, connected_at);
CREATE INDEX connections_time_idx ON connections (connected_at);
