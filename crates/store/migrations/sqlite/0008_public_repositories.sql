-- no-transaction
-- Public repositories: a repository may be registered without a credential (anonymous access),
-- so `repositories.credential_id` may be NULL. SQLite cannot drop NOT NULL in place; this is its
-- documented table rebuild (https://www.sqlite.org/lang_altertable.html, "other kinds of table
-- schema changes"): foreign keys off outside the transaction, so dropping the old table does not
-- cascade to `checks`, the new table renamed into place, its indexes made again, and every
-- foreign key checked before the commit.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE repositories_rebuilt (
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
INSERT INTO repositories_rebuilt (id, name, vcs, clone_url, repo_key, provider, default_branch, credential_id,
    created_at, updated_at, next_check_at, lease_owner, lease_until, due_reason, check_status, status, host)
SELECT id, name, vcs, clone_url, repo_key, provider, default_branch, credential_id,
    created_at, updated_at, next_check_at, lease_owner, lease_until, due_reason, check_status, status, host
FROM repositories;
DROP TABLE repositories;
ALTER TABLE repositories_rebuilt RENAME TO repositories;
CREATE INDEX repositories_due ON repositories(next_check_at);
CREATE INDEX repositories_status_name ON repositories(status, name COLLATE NOCASE);
CREATE INDEX repositories_provider_name ON repositories(provider, name COLLATE NOCASE);
CREATE INDEX repositories_host_name ON repositories(host, name COLLATE NOCASE);
CREATE INDEX repositories_credential_name ON repositories(credential_id, name COLLATE NOCASE);
COMMIT;
PRAGMA foreign_keys = ON;
