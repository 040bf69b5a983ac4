-- Lists that answer in milliseconds at 100,000 repositories, whatever they count or search.
--
-- 1. Counts. A list's `total` and the status chips' counts come from `repository_counts`, one
--    row per (status, credential, provider, host) with how many repositories have them, kept
--    true by triggers on every write to `repositories` (SQLite has one writer at a time, so the
--    rows are updated in place). Any filter but the text search is then a sum over a few rows,
--    never a count over every repository.
CREATE TABLE repository_counts (
    status        TEXT NOT NULL,
    -- 0 for repositories without a credential (anonymous access).
    credential_id INTEGER NOT NULL,
    provider      TEXT NOT NULL,
    host          TEXT NOT NULL,
    n             INTEGER NOT NULL,
    PRIMARY KEY (status, credential_id, provider, host)
);
INSERT INTO repository_counts (status, credential_id, provider, host, n)
    SELECT status, COALESCE(credential_id, 0), provider, host, COUNT(*) FROM repositories GROUP BY 1, 2, 3, 4;

CREATE TRIGGER repository_counts_insert AFTER INSERT ON repositories BEGIN
    INSERT INTO repository_counts (status, credential_id, provider, host, n)
        VALUES (NEW.status, COALESCE(NEW.credential_id, 0), NEW.provider, NEW.host, 1)
        ON CONFLICT (status, credential_id, provider, host) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER repository_counts_delete AFTER DELETE ON repositories BEGIN
    UPDATE repository_counts SET n = n - 1 WHERE status = OLD.status AND credential_id = COALESCE(OLD.credential_id, 0)
        AND provider = OLD.provider AND host = OLD.host;
    DELETE FROM repository_counts WHERE n <= 0;
END;

CREATE TRIGGER repository_counts_update AFTER UPDATE OF status, credential_id, provider, host ON repositories
WHEN OLD.status IS NOT NEW.status OR OLD.credential_id IS NOT NEW.credential_id
     OR OLD.provider IS NOT NEW.provider OR OLD.host IS NOT NEW.host
BEGIN
    UPDATE repository_counts SET n = n - 1 WHERE status = OLD.status AND credential_id = COALESCE(OLD.credential_id, 0)
        AND provider = OLD.provider AND host = OLD.host;
    DELETE FROM repository_counts WHERE n <= 0;
    INSERT INTO repository_counts (status, credential_id, provider, host, n)
        VALUES (NEW.status, COALESCE(NEW.credential_id, 0), NEW.provider, NEW.host, 1)
        ON CONFLICT (status, credential_id, provider, host) DO UPDATE SET n = n + 1;
END;

-- 2. The text search (`q`: a substring of the name or the clone URL, case-insensitive). A
--    trigram index (FTS5's trigram tokenizer) over the lower-cased name and URL finds the few
--    repositories a specific search matches without reading the others; a search that matches
--    many is answered by walking the name index instead (the store chooses, by asking this
--    index how many match, up to a bound). The row id is the repository's id.
CREATE VIRTUAL TABLE repository_search USING fts5(search, tokenize = 'trigram', detail = 'none');
INSERT INTO repository_search (rowid, search)
    SELECT id, lower(name) || char(10) || lower(clone_url) FROM repositories;

CREATE TRIGGER repository_search_insert AFTER INSERT ON repositories BEGIN
    INSERT INTO repository_search (rowid, search) VALUES (NEW.id, lower(NEW.name) || char(10) || lower(NEW.clone_url));
END;

CREATE TRIGGER repository_search_delete AFTER DELETE ON repositories BEGIN
    DELETE FROM repository_search WHERE rowid = OLD.id;
END;

CREATE TRIGGER repository_search_update AFTER UPDATE OF name, clone_url ON repositories BEGIN
    UPDATE repository_search SET search = lower(NEW.name) || char(10) || lower(NEW.clone_url) WHERE rowid = NEW.id;
END;
