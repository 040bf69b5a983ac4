-- Git over SSH. `known_hosts`: SSH host keys an administrator trusted, one row per endpoint
-- (`host` or `[host]:port`, as OpenSSH names it) and key; the keys bitbucket.org, github.com and
-- gitlab.com publish are pinned in the code, not stored. `credentials.public_key`: the OpenSSH
-- public key of an `ssh_key` credential (not a secret: people paste it into the host), so lists
-- show it and its fingerprint without opening the sealed private key.
CREATE TABLE known_hosts (
    id          INTEGER PRIMARY KEY,
    host        TEXT NOT NULL,
    key_type    TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    added_by    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (host, fingerprint)
);
ALTER TABLE credentials ADD COLUMN public_key TEXT;
