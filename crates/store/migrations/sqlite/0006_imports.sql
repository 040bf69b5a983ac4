-- Bulk imports: what a workspace, project or organisation listing found, and each listed
-- repository's progress. Progress lives here, not in memory, so any instance answers for an
-- import and a restart loses nothing: items left `registering` by a stopped instance are taken
-- again once their lease has passed.

CREATE TABLE imports (
    id              INTEGER PRIMARY KEY,
    -- The credential the listing used; registrations use it too. NULL once it is deleted.
    credential_id   INTEGER REFERENCES credentials(id) ON DELETE SET NULL,
    credential_name TEXT NOT NULL,
    -- The canonical source URL and its provider.
    source          TEXT NOT NULL,
    provider        TEXT NOT NULL,
    -- listed | registering | done
    state           TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE TABLE import_items (
    id               INTEGER PRIMARY KEY,
    import_id        INTEGER NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
    -- ws/slug, KEY/slug, owner/name as the host lists it: what a person selects.
    full_name        TEXT NOT NULL,
    slug             TEXT NOT NULL,
    name             TEXT NOT NULL,
    clone_url        TEXT NOT NULL,
    private          INTEGER NOT NULL,
    -- The repository registered with this clone URL when the listing ran.
    existing_id      INTEGER,
    existing_name    TEXT,
    selected         INTEGER NOT NULL DEFAULT 0,
    -- pending | registering | registered | failed | skipped
    status           TEXT NOT NULL DEFAULT 'pending',
    code             TEXT,
    message          TEXT,
    remedy           TEXT,
    repository_id    INTEGER,
    repository_name  TEXT,
    lease_until      TEXT,
    updated_at       TEXT NOT NULL,
    UNIQUE (import_id, full_name)
);
CREATE INDEX import_items_progress ON import_items(import_id, selected, status);
