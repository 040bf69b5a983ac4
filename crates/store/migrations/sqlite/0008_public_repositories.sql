-- Public repositories: a repository may be registered without a credential (anonymous access),
-- so `repositories.credential_id` may be NULL. SQLite cannot drop NOT NULL in place, so the
-- table is made again. sqlx runs every migration in a transaction, where `PRAGMA foreign_keys`
-- cannot be turned off, and dropping a table deletes its rows first, cascading to the history
-- in `checks`: so the history is set aside first, `checks` dropped, `repositories` rebuilt (same
-- ids), and `checks` made again as it was (migrations 0001, 0003-0005) with its rows.
CREATE TABLE checks_before_0008 AS SELECT * FROM checks;
DROP TABLE checks;

CREATE TABLE repositories_0008 (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    vcs            TEXT NOT NULL,
    clone_url      TEXT NOT NULL,
    repo_key       TEXT NOT NULL UNIQUE,
    provider       TEXT NOT NULL,
    default_branch TEXT NOT NULL,
    -- NULL: no credential, anonymous access (a public repository).
    credential_id  INTEGER REFERENCES credentials(id) ON DELETE RESTRICT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    next_check_at  TEXT,
    lease_owner    TEXT,
    lease_until    TEXT,
    due_reason     TEXT,
    check_status   TEXT NOT NULL DEFAULT 'unchecked',
    status         TEXT NOT NULL DEFAULT 'unchecked',
    host           TEXT NOT NULL DEFAULT ''
);
INSERT INTO repositories_0008 (id, name, vcs, clone_url, repo_key, provider, default_branch, credential_id,
    created_at, updated_at, next_check_at, lease_owner, lease_until, due_reason, check_status, status, host)
SELECT id, name, vcs, clone_url, repo_key, provider, default_branch, credential_id,
    created_at, updated_at, next_check_at, lease_owner, lease_until, due_reason, check_status, status, host
FROM repositories;
DROP TABLE repositories;
ALTER TABLE repositories_0008 RENAME TO repositories;
CREATE INDEX repositories_due ON repositories(next_check_at);
CREATE INDEX repositories_status_name ON repositories(status, name COLLATE NOCASE);
CREATE INDEX repositories_provider_name ON repositories(provider, name COLLATE NOCASE);
CREATE INDEX repositories_host_name ON repositories(host, name COLLATE NOCASE);
CREATE INDEX repositories_credential_name ON repositories(credential_id, name COLLATE NOCASE);

CREATE TABLE checks (
    id            INTEGER PRIMARY KEY,
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    ok            INTEGER NOT NULL,
    code          TEXT NOT NULL,
    checked_at    TEXT NOT NULL,
    duration_ms   INTEGER NOT NULL,
    steps         TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'ok',
    reason        TEXT NOT NULL DEFAULT 'manual',
    instance      TEXT NOT NULL DEFAULT '',
    warn_codes    TEXT NOT NULL DEFAULT ''
);
INSERT INTO checks (id, repository_id, ok, code, checked_at, duration_ms, steps, status, reason, instance, warn_codes)
SELECT id, repository_id, ok, code, checked_at, duration_ms, steps, status, reason, instance, warn_codes
FROM checks_before_0008;
DROP TABLE checks_before_0008;
CREATE INDEX checks_repository ON checks(repository_id, id DESC);
CREATE INDEX checks_checked_at ON checks(checked_at);
