-- Push addresses and IP addresses sealed at rest, as mobile numbers are: where a device's
-- notifications go (the FCM or APNs token, or the Web Push subscription) in `address_sealed`, the
-- IP address a socket came from in `ip_sealed`, each as XChaCha20-Poly1305 ciphertext under a data
-- key kept outside the database, the key's id beside it. The hub seals the plain values of
-- databases made before this in batches when it starts, then drops the plain columns.
ALTER TABLE push_registrations
    ADD COLUMN address_sealed BYTEA,
    ADD COLUMN address_key_id TEXT,
    -- The two checks that tied the plain columns to the provider (named by Postgres in order).
    DROP CONSTRAINT push_registrations_check,
    DROP CONSTRAINT push_registrations_check1,
    ADD CHECK ((address_sealed IS NULL) = (address_key_id IS NULL));
ALTER TABLE connections
    ADD COLUMN ip_sealed BYTEA,
    ADD COLUMN ip_key_id TEXT,
    ALTER COLUMN ip DROP NOT NULL,
    ADD CHECK ((ip_sealed IS NULL) = (ip_key_id IS NULL));
