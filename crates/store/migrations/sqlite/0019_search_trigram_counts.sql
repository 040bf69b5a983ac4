-- How many repositories hold each trigram of their search text (the lower-cased name and clone
-- URL), so the list's text search can choose how to find a text before reading anything: by the
-- trigram index, narrowed to the text's rarest trigrams, when those are rare; by walking the name
-- index when every trigram of the text is common (a broad search fills a page in a few rows).
-- Counting a trigram in the index itself reads its whole entry, which for a trigram in every
-- name is the whole table; this keeps the number.
--
-- Only trigrams of three ASCII letters or digits are counted: the same set on both databases
-- (PostgreSQL's pg_trgm indexes letters and digits only), and the selective part of a name. The
-- counts only choose a plan: a search's matches come from the index and the rows, never from
-- here, so a count that were off would cost time, not a wrong answer.
CREATE TABLE search_trigram_counts (
    trigram TEXT PRIMARY KEY,
    n       INTEGER NOT NULL
) WITHOUT ROWID;

-- Each repository's positions up to its own length (not a fixed series crossed with every row).
INSERT INTO search_trigram_counts (trigram, n)
    WITH RECURSIVE p(id, s, k) AS (
        SELECT id, lower(name) || char(10) || lower(clone_url), 1 FROM repositories
        UNION ALL
        SELECT id, s, k + 1 FROM p WHERE k < length(s) - 2
    )
    SELECT substr(s, k, 3) AS t, COUNT(DISTINCT id) FROM p
     WHERE substr(s, k, 3) GLOB '[a-z0-9][a-z0-9][a-z0-9]' GROUP BY t;

-- The triggers take the text's distinct trigrams from a recursive series (allowed in a
-- subquery of a trigger's statement, not as its own WITH). The update trigger repeats the
-- insert and delete triggers' statements: SQLite has no function or view a trigger could share
-- them through without computing every repository's trigrams. A trigram no repository holds any
-- more keeps a row with 0: removing it would cost a scan per write, and 0 is the true count.
CREATE TRIGGER search_trigram_counts_insert AFTER INSERT ON repositories BEGIN
    INSERT INTO search_trigram_counts (trigram, n)
        SELECT DISTINCT substr(s.s, p.k, 3), 1
          FROM (SELECT lower(NEW.name) || char(10) || lower(NEW.clone_url) AS s) s,
               (WITH RECURSIVE p(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM p
                    WHERE k < length(lower(NEW.name) || char(10) || lower(NEW.clone_url)) - 2) SELECT k FROM p) p
         WHERE substr(s.s, p.k, 3) GLOB '[a-z0-9][a-z0-9][a-z0-9]'
        ON CONFLICT (trigram) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER search_trigram_counts_delete AFTER DELETE ON repositories BEGIN
    UPDATE search_trigram_counts SET n = n - 1 WHERE trigram IN (
        SELECT substr(s.s, p.k, 3)
          FROM (SELECT lower(OLD.name) || char(10) || lower(OLD.clone_url) AS s) s,
               (WITH RECURSIVE p(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM p
                    WHERE k < length(lower(OLD.name) || char(10) || lower(OLD.clone_url)) - 2) SELECT k FROM p) p
    );
END;

CREATE TRIGGER search_trigram_counts_update AFTER UPDATE OF name, clone_url ON repositories
WHEN lower(OLD.name) IS NOT lower(NEW.name) OR lower(OLD.clone_url) IS NOT lower(NEW.clone_url)
BEGIN
    UPDATE search_trigram_counts SET n = n - 1 WHERE trigram IN (
        SELECT substr(s.s, p.k, 3)
          FROM (SELECT lower(OLD.name) || char(10) || lower(OLD.clone_url) AS s) s,
               (WITH RECURSIVE p(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM p
                    WHERE k < length(lower(OLD.name) || char(10) || lower(OLD.clone_url)) - 2) SELECT k FROM p) p
    );
    INSERT INTO search_trigram_counts (trigram, n)
        SELECT DISTINCT substr(s.s, p.k, 3), 1
          FROM (SELECT lower(NEW.name) || char(10) || lower(NEW.clone_url) AS s) s,
               (WITH RECURSIVE p(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM p
                    WHERE k < length(lower(NEW.name) || char(10) || lower(NEW.clone_url)) - 2) SELECT k FROM p) p
         WHERE substr(s.s, p.k, 3) GLOB '[a-z0-9][a-z0-9][a-z0-9]'
        ON CONFLICT (trigram) DO UPDATE SET n = n + 1;
END;
