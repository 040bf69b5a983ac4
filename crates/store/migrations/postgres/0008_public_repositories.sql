-- Public repositories: a repository may be registered without a credential (anonymous access),
-- so `repositories.credential_id` may be NULL.
ALTER TABLE repositories ALTER COLUMN credential_id DROP NOT NULL;
