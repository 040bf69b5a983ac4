-- Credential templates: the credential to use for every clone URL under a URL prefix, when a
-- registration, a Refresh or an import names none. `url_prefix` is stored normalised (lower-case
-- host and path, no user name, no `.git`, a trailing '/'), so one prefix has one row. A
-- credential a template uses cannot be deleted (the store refuses first and names the templates;
-- the foreign key is the backstop).
CREATE TABLE credential_templates (
    id            INTEGER PRIMARY KEY,
    url_prefix    TEXT NOT NULL UNIQUE,
    credential_id INTEGER NOT NULL REFERENCES credentials(id) ON DELETE RESTRICT,
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX credential_templates_credential ON credential_templates(credential_id);
