-- Mobile numbers sealed at rest: each user's number as XChaCha20-Poly1305 ciphertext under a data
-- key kept outside the database (`phone_sealed`, the key's id in `phone_key_id`), found by a keyed
-- hash (`phone_hash`, unique). The hub seals the plain numbers of databases made before this in
-- batches when it starts, then drops the plain column.
ALTER TABLE users ADD COLUMN phone_sealed BYTEA, ADD COLUMN phone_key_id TEXT, ADD COLUMN phone_hash BYTEA;
ALTER TABLE users ALTER COLUMN phone DROP NOT NULL;
CREATE UNIQUE INDEX users_phone_hash_idx ON users (phone_hash);
