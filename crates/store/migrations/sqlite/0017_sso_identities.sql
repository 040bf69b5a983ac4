-- Single sign-on (issue 16 §4): which OpenID provider's subject a user is. A person is known by
-- (issuer, subject), never by the name the provider gives: a provider account renamed to
-- "admin" does not become Berth's local administrator.
CREATE TABLE user_sso_identities (
    user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (issuer, subject)
);
