-- Webhooks on the host (as migrations/sqlite/0013_host_webhooks.sql).

CREATE TABLE repository_branch_lists (
    repository_id  BIGINT PRIMARY KEY REFERENCES repositories(id) ON DELETE CASCADE,
    default_branch TEXT,
    branch_count   BIGINT NOT NULL DEFAULT 0,
    digest         TEXT NOT NULL,
    source         TEXT NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

-- Branch names in byte order, as SQLite orders them, so pages read the same on both.
CREATE TABLE repository_branches (
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    name          TEXT COLLATE "C" NOT NULL,
    commit_id     TEXT NOT NULL,
    PRIMARY KEY (repository_id, name)
);

CREATE TABLE repository_webhooks (
    repository_id    BIGINT PRIMARY KEY REFERENCES repositories(id) ON DELETE CASCADE,
    provider         TEXT NOT NULL,
    hook_id          TEXT NOT NULL,
    url              TEXT NOT NULL,
    key_id           TEXT NOT NULL,
    wrapped_key      BYTEA NOT NULL,
    ciphertext       BYTEA NOT NULL,
    deliveries       BIGINT NOT NULL DEFAULT 0,
    rejected         BIGINT NOT NULL DEFAULT 0,
    last_delivery_at TIMESTAMPTZ,
    last_rejected_at TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL
);
