-- A credential's own TLS client certificate (as migrations/sqlite/0014_credential_client_cert.sql).
ALTER TABLE credentials ADD COLUMN client_certificate TEXT;
ALTER TABLE credentials ADD COLUMN client_certificate_subject TEXT;
ALTER TABLE credentials ADD COLUMN client_certificate_not_after TIMESTAMPTZ;
CREATE TABLE credential_client_keys (
    credential_id BIGINT PRIMARY KEY REFERENCES credentials(id) ON DELETE CASCADE,
    key_id        TEXT NOT NULL,
    wrapped_key   BYTEA NOT NULL,
    ciphertext    BYTEA NOT NULL
);
