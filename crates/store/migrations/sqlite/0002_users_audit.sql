-- Users and roles, web sessions, personal API tokens, two-factor sign-in, login lockout and
-- the audit log. Timestamps are RFC 3339 text in UTC.

-- Web sessions carry a CSRF token; a session that has passed the password but not yet the
-- second factor is `mfa_pending` and opens nothing.
ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'api';
ALTER TABLE sessions ADD COLUMN csrf_token TEXT;
ALTER TABLE sessions ADD COLUMN mfa_pending INTEGER NOT NULL DEFAULT 0;

-- Personal API tokens for automation: only the SHA-256 of the token is kept.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

-- TOTP (RFC 6238): the shared key is sealed by the vault, bound to the user's row.
CREATE TABLE user_totp (
    user_id     INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    key_id      TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 0,
    -- The last accepted time step: a code is never accepted twice.
    last_step   INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);

-- One-time recovery codes, hashed.
CREATE TABLE recovery_codes (
    id        INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   TEXT
);
CREATE INDEX recovery_codes_user ON recovery_codes(user_id);

-- Failed sign-ins per user name (also for names that do not exist), shared by every instance
-- that uses this database.
CREATE TABLE login_failures (
    username      TEXT PRIMARY KEY COLLATE NOCASE,
    failures      INTEGER NOT NULL,
    first_failure TEXT NOT NULL,
    locked_until  TEXT
);

-- Who changed what, when and from where. Never a secret.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor_id    INTEGER,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id   INTEGER,
    target_name TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT '',
    remote_addr TEXT,
    outcome     TEXT NOT NULL DEFAULT 'ok'
);
CREATE INDEX audit_log_at ON audit_log(id DESC);
