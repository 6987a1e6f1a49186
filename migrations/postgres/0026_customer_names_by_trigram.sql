-- The first page of every search looks for customers whose folded name has each word of the query
-- as a word or its beginning: `(' ' || search_name) LIKE '% word%'`. Without an index that reads
-- every user's row, each time: tens of milliseconds with a few hundred thousand accounts, and more
-- with every account. A trigram index (the pg_trgm extension, which ships with Postgres and which
-- any role that may create objects in the database may install) answers those patterns as they
-- are written, Persian included.
--
-- Where the extension cannot be installed (not shipped with this server, or a role without the
-- right), the migration goes on without the index and says so: the names are still found, by
-- reading every row, as before.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX users_search_name_trgm ON users USING gin ((' ' || search_name) gin_trgm_ops)
        WHERE search_name IS NOT NULL;
EXCEPTION
    WHEN undefined_file OR undefined_object OR insufficient_privilege OR feature_not_supported THEN
        RAISE WARNING 'customers'' names are searched without an index (pg_trgm: %)', SQLERRM;
END
$$;
