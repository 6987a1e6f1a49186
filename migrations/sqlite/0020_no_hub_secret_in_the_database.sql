-- The hub's secret for hashing sign-in codes and numbers in lock-outs is derived from the data keys
-- (kept outside the database) when the `secret` setting is unset. The one earlier releases kept here
-- would let a copy of the database test numbers against those hashes: it goes.
DELETE FROM hub_keys WHERE name = 'hmac';
