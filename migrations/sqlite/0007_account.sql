-- Users' rights (issue 8): what the hub keeps after deleting an account is a count of deletions and
-- nothing else. Counters here hold no personal data: a name and a number.
CREATE TABLE hub_counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL CHECK (value >= 0)
);

-- Images are content-addressed files that identical uploads share: before deleting a file the hub
-- asks whether any profile still names it.
CREATE INDEX users_image_idx ON users (image) WHERE image IS NOT NULL;
