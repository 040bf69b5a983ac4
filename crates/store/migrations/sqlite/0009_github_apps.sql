-- GitHub App credentials (kind `github_app`): the app's id and, optionally, the one installation
-- to use (NULL: found per repository owner). The private key is the credential's sealed secret.
ALTER TABLE credentials ADD COLUMN app_id TEXT;
ALTER TABLE credentials ADD COLUMN installation_id INTEGER;
