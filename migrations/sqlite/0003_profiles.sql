-- Profiles: a user's display name and image, and what presence remembers.
ALTER TABLE users ADD COLUMN name TEXT CHECK (length(name) BETWEEN 1 AND 64);
-- Path of the content-addressed image file (`/v1/media/<sha256>.jpg`), when set.
ALTER TABLE users ADD COLUMN image TEXT;
ALTER TABLE users ADD COLUMN hide_last_seen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_seen_at INTEGER;

-- Live sessions of a user, for device transfer.
CREATE INDEX IF NOT EXISTS sessions_live_by_user_idx ON sessions (user_id, created_at) WHERE revoked_at IS NULL;
