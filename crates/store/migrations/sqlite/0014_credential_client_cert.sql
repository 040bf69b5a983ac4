-- A credential's own TLS client certificate (issue 14 §2: hosts that tie certificates to users).
-- The certificate is not a secret: its PEM, subject and end of validity live on the credential,
-- so lists show them without opening anything. Its private key is sealed like every secret, in
-- a row of its own bound to the credential (`berth:credential:{id}:client-key:v1`).
ALTER TABLE credentials ADD COLUMN client_certificate TEXT;
ALTER TABLE credentials ADD COLUMN client_certificate_subject TEXT;
ALTER TABLE credentials ADD COLUMN client_certificate_not_after TEXT;
CREATE TABLE credential_client_keys (
    credential_id INTEGER PRIMARY KEY REFERENCES credentials(id) ON DELETE CASCADE,
    key_id        TEXT NOT NULL,
    wrapped_key   BLOB NOT NULL,
    ciphertext    BLOB NOT NULL
);
