-- Lists that answer in milliseconds at 100,000 repositories, whatever they count or search.
--
-- 1. Counts. A list's `total` and the status chips' counts come from `repository_counts`: rows
--    of (status, credential, provider, host, n) whose sums per key are how many repositories
--    have them. Triggers on `repositories` append a row per change rather than updating one row
--    per key in place: concurrent transactions (several instances recording checks) then never
--    wait on each other or deadlock over a counter. The store folds the rows back into one per
--    key when they accumulate (`compact_repository_counts`). Any filter but the text search is a
--    sum over a few rows, never a count over every repository.
CREATE TABLE repository_counts (
    id            BIGSERIAL PRIMARY KEY,
    status        TEXT NOT NULL,
    -- 0 for repositories without a credential (anonymous access).
    credential_id BIGINT NOT NULL,
    provider      TEXT NOT NULL,
    host          TEXT NOT NULL,
    n             BIGINT NOT NULL
);
INSERT INTO repository_counts (status, credential_id, provider, host, n)
    SELECT status, COALESCE(credential_id, 0), provider, host, COUNT(*) FROM repositories GROUP BY 1, 2, 3, 4;

-- One statement's changes, summed per key (statement-level: a bulk insert of 500 rows adds one
-- row per key, not 500).
CREATE FUNCTION repository_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO repository_counts (status, credential_id, provider, host, n)
            SELECT status, COALESCE(credential_id, 0), provider, host, COUNT(*) FROM new_rows GROUP BY 1, 2, 3, 4;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO repository_counts (status, credential_id, provider, host, n)
            SELECT status, COALESCE(credential_id, 0), provider, host, -COUNT(*) FROM old_rows GROUP BY 1, 2, 3, 4;
    ELSE
        INSERT INTO repository_counts (status, credential_id, provider, host, n)
            SELECT k.status, k.credential_id, k.provider, k.host, SUM(k.n) FROM (
                SELECT o.status, COALESCE(o.credential_id, 0) AS credential_id, o.provider, o.host, -1 AS n
                  FROM old_rows o JOIN new_rows w ON w.id = o.id
                 WHERE (o.status, o.credential_id, o.provider, o.host)
                       IS DISTINCT FROM (w.status, w.credential_id, w.provider, w.host)
                UNION ALL
                SELECT w.status, COALESCE(w.credential_id, 0) AS credential_id, w.provider, w.host, 1 AS n
                  FROM old_rows o JOIN new_rows w ON w.id = o.id
                 WHERE (o.status, o.credential_id, o.provider, o.host)
                       IS DISTINCT FROM (w.status, w.credential_id, w.provider, w.host)
            ) k GROUP BY 1, 2, 3, 4 HAVING SUM(k.n) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER repository_counts_insert AFTER INSERT ON repositories
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION repository_counts_track();
CREATE TRIGGER repository_counts_delete AFTER DELETE ON repositories
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION repository_counts_track();
CREATE TRIGGER repository_counts_update AFTER UPDATE ON repositories
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION repository_counts_track();

-- 2. The text search (`q`: a substring of the name or the clone URL, case-insensitive) reads
--    one column, the lower-cased name and URL, with a trigram index (pg_trgm) when the database
--    allows the extension: the planner then finds the few repositories a specific search
--    matches without reading the others, and walks the name index for a search that matches
--    many. Where pg_trgm cannot be created (a managed database that refuses it), searches still
--    work, reading the list.
ALTER TABLE repositories ADD COLUMN search TEXT
    GENERATED ALWAYS AS (lower(name COLLATE "C") || E'\n' || lower(clone_url COLLATE "C")) STORED;

DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX repositories_search_trgm ON repositories USING gin (search gin_trgm_ops);
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm is not available (%): the repository search reads the list', SQLERRM;
END $$;
