-- Webhooks on the host (issue 15, section 2): each repository's branch list as its last check
-- or push left it, and the webhook Berth registered on the host for it.

-- The list's head: the remote's default branch, how many branches, a digest of the whole list
-- (a check that finds the same list writes nothing more), and what wrote it last.
CREATE TABLE repository_branch_lists (
    repository_id  INTEGER PRIMARY KEY REFERENCES repositories(id) ON DELETE CASCADE,
    default_branch TEXT,
    branch_count   INTEGER NOT NULL DEFAULT 0,
    digest         TEXT NOT NULL,
    -- `check` or `webhook`.
    source         TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

-- One row per branch; the primary key is also the list's keyset order.
CREATE TABLE repository_branches (
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    commit_id     TEXT NOT NULL,
    PRIMARY KEY (repository_id, name)
);

-- The webhook Berth registered on the host: the host's id for it (to delete it), the URL it
-- posts to, the signing secret sealed in the vault, and counts of deliveries taken and refused.
CREATE TABLE repository_webhooks (
    repository_id    INTEGER PRIMARY KEY REFERENCES repositories(id) ON DELETE CASCADE,
    provider         TEXT NOT NULL,
    hook_id          TEXT NOT NULL,
    url              TEXT NOT NULL,
    key_id           TEXT NOT NULL,
    wrapped_key      BLOB NOT NULL,
    ciphertext       BLOB NOT NULL,
    deliveries       INTEGER NOT NULL DEFAULT 0,
    rejected         INTEGER NOT NULL DEFAULT 0,
    last_delivery_at TEXT,
    last_rejected_at TEXT,
    created_at       TEXT NOT NULL
);
