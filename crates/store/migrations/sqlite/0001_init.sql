-- Berth schema, SQLite dialect. Timestamps are RFC 3339 text in UTC.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE vault_canary (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    key_id      TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    ciphertext  BLOB NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE credentials (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE COLLATE NOCASE,
    kind              TEXT NOT NULL,
    username          TEXT,
    email             TEXT,
    expires_on        TEXT,
    scopes            TEXT NOT NULL DEFAULT '[]',
    key_id            TEXT NOT NULL,
    wrapped_key       BLOB NOT NULL,
    ciphertext        BLOB NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    secret_updated_at TEXT NOT NULL
);

CREATE TABLE repositories (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    vcs            TEXT NOT NULL,
    clone_url      TEXT NOT NULL,
    repo_key       TEXT NOT NULL UNIQUE,
    provider       TEXT NOT NULL,
    default_branch TEXT NOT NULL,
    credential_id  INTEGER NOT NULL REFERENCES credentials(id) ON DELETE RESTRICT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX repositories_credential ON repositories(credential_id);

CREATE TABLE checks (
    id            INTEGER PRIMARY KEY,
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    ok            INTEGER NOT NULL,
    code          TEXT NOT NULL,
    checked_at    TEXT NOT NULL,
    duration_ms   INTEGER NOT NULL,
    steps         TEXT NOT NULL
);
CREATE INDEX checks_repository ON checks(repository_id, id DESC);
