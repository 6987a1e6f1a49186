-- Mobile numbers sealed at rest: each user's number as XChaCha20-Poly1305 ciphertext under a data
-- key kept outside the database (`phone_sealed`, the key's id in `phone_key_id`), found by a keyed
-- hash (`phone_hash`, unique). The hub seals the plain numbers of databases made before this in
-- batches when it starts, then drops the plain column.
--
-- SQLite cannot make a column nullable in place, so the table is rebuilt. The store runs
-- migrations on a connection with foreign keys off, so dropping the old table cascades to none of
-- the tables that reference users (and the store checks every foreign key afterwards).
CREATE TABLE users_sealed (
    id             BLOB PRIMARY KEY NOT NULL,
    -- Plain, from before sealing; emptied by the hub as it seals, then dropped.
    phone          TEXT,
    registered_at  INTEGER NOT NULL,
    name           TEXT CHECK (length(name) BETWEEN 1 AND 64),
    image          TEXT,
    hide_last_seen INTEGER NOT NULL DEFAULT 0,
    last_seen_at   INTEGER,
    search_name    TEXT,
    phone_sealed   BLOB,
    phone_key_id   TEXT,
    phone_hash     BLOB
) STRICT;
INSERT INTO users_sealed (id, phone, registered_at, name, image, hide_last_seen, last_seen_at, search_name)
    SELECT id, phone, registered_at, name, image, hide_last_seen, last_seen_at, search_name FROM users;
DROP TABLE users;
ALTER TABLE users_sealed RENAME TO users;
CREATE UNIQUE INDEX users_phone_idx ON users (phone);
CREATE UNIQUE INDEX users_phone_hash_idx ON users (phone_hash);
CREATE INDEX users_image_idx ON users (image) WHERE image IS NOT NULL;
