-- The files a message carries, as the message event shows them: a JSON array of
-- {"id", "media_type", "size", "name", "dimensions"?} written with the message (NULL for none),
-- so that reading a conversation needs no other table.
ALTER TABLE ticket_events ADD COLUMN attachments TEXT;
