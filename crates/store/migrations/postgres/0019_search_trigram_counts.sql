-- How many repositories hold each trigram of their search text (the `search` column: the
-- lower-cased name and clone URL), so the list's text search can choose how to find a text
-- before reading anything: by the trigram index, narrowed to the text's rarest trigrams, when
-- those are rare; by walking the name index when every trigram of the text is common. pg_trgm's
-- GIN index cannot say how many rows hold a trigram without reading them all, and a generic
-- estimate picks the wrong plan at 100,000 repositories (a search for a rare name walked every
-- row; a broad one read every row through the index).
--
-- Only trigrams of three ASCII letters or digits are counted: what pg_trgm indexes (letters and
-- digits; other characters separate words). The counts only choose a plan: a search's matches
-- come from the index and the rows, never from here.
--
-- As for `repository_counts` (migration 0010), each write appends its changes as rows, so
-- instances writing at once never wait on or deadlock over a counter; the store folds a
-- trigram's rows back into one when it reads too many of them (and all of them when asked).
CREATE TABLE search_trigram_counts (
    id      BIGSERIAL PRIMARY KEY,
    trigram TEXT NOT NULL,
    n       BIGINT NOT NULL
);
CREATE INDEX search_trigram_counts_trigram ON search_trigram_counts (trigram);

-- The distinct counted trigrams of a search text.
CREATE FUNCTION search_trigrams(s TEXT) RETURNS SETOF TEXT LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT DISTINCT t FROM (SELECT substr(s, k, 3) AS t FROM generate_series(1, length(s) - 2) AS k) x
     WHERE t ~ '^[a-z0-9]{3}$'
$$;

INSERT INTO search_trigram_counts (trigram, n)
    SELECT t, COUNT(*) FROM repositories r, search_trigrams(r.search) AS t GROUP BY t;

CREATE FUNCTION search_trigram_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO search_trigram_counts (trigram, n)
            SELECT t, COUNT(*) FROM new_rows w, search_trigrams(w.search) AS t GROUP BY t;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO search_trigram_counts (trigram, n)
            SELECT t, -COUNT(*) FROM old_rows o, search_trigrams(o.search) AS t GROUP BY t;
    ELSE
        -- Checks update many rows' status at a time; only a changed name or URL counts: the
        -- old texts no new row has (-1) and the new texts no old row had (+1). EXCEPT, not a
        -- join of the two transition tables: the function's cached plan for a join was a
        -- nested loop, a second for a status update of 5,000 rows.
        INSERT INTO search_trigram_counts (trigram, n)
            SELECT t, SUM(c.d) FROM (
                SELECT a.search, 1 AS d FROM (SELECT id, search FROM new_rows EXCEPT ALL SELECT id, search FROM old_rows) a
                UNION ALL
                SELECT b.search, -1 FROM (SELECT id, search FROM old_rows EXCEPT ALL SELECT id, search FROM new_rows) b
            ) c CROSS JOIN LATERAL search_trigrams(c.search) AS t
             GROUP BY t HAVING SUM(c.d) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER search_trigram_counts_insert AFTER INSERT ON repositories
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION search_trigram_counts_track();
CREATE TRIGGER search_trigram_counts_delete AFTER DELETE ON repositories
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION search_trigram_counts_track();
CREATE TRIGGER search_trigram_counts_update AFTER UPDATE ON repositories
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION search_trigram_counts_track();
