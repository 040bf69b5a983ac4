//! What a snapshot holds: every table the migrations create, each column with its portable
//! type, in an order that respects the foreign keys; and the few tables left out, with why.
//! `tests/snapshot.rs` compares this list with a migrated database, so a migration that adds a
//! table or a column fails the suite until the snapshot covers it (or says why it does not).

/// A column's portable type: how it is read from either database, written in a snapshot
/// line, and bound again on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Text,
    Bool,
    /// A point in time (`TEXT` on SQLite, `timestamptz` on PostgreSQL).
    Ts,
    /// A calendar date (`TEXT` on SQLite, `date` on PostgreSQL).
    Date,
    Bytes,
}

#[derive(Debug)]
pub(crate) struct Column {
    pub name: &'static str,
    pub kind: Kind,
}

#[derive(Debug)]
pub(crate) struct TableSpec {
    pub name: &'static str,
    pub columns: &'static [Column],
    /// The primary key's columns, the order rows are exported in.
    pub order_by: &'static str,
    /// Whether `id` is an identity column whose sequence PostgreSQL must be moved past the
    /// copied ids.
    pub identity: bool,
}

macro_rules! columns {
    ($($name:ident: $kind:ident),* $(,)?) => {
        &[$(Column { name: stringify!($name), kind: Kind::$kind }),*]
    };
}

/// Every table a snapshot copies, parents before children.
pub(crate) const TABLES: &[TableSpec] = &[
    TableSpec {
        name: "users",
        columns: columns![id: Int, username: Text, password_hash: Text, role: Text, created_at: Ts, updated_at: Ts],
        order_by: "id",
        identity: true,
    },
    TableSpec {
        name: "api_tokens",
        columns: columns![
            id: Int, user_id: Int, name: Text, token_hash: Text, created_at: Ts, expires_at: Ts, last_used_at: Ts,
            revoked_at: Ts,
        ],
        order_by: "id",
        identity: true,
    },
    TableSpec {
        name: "user_sso_identities",
        columns: columns![user_id: Int, issuer: Text, subject: Text, created_at: Ts],
        order_by: "user_id",
        identity: false,
    },
    TableSpec {
        name: "user_totp",
        columns: columns![
            user_id: Int, key_id: Text, wrapped_key: Bytes, ciphertext: Bytes, enabled: Bool, last_step: Int,
            created_at: Ts,
        ],
        order_by: "user_id",
        identity: false,
    },
    TableSpec {
        name: "recovery_codes",
        columns: columns![id: Int, user_id: Int, code_hash: Text, used_at: Ts],
        order_by: "id",
        identity: true,
    },
    TableSpec {
        name: "login_failures",
        columns: columns![username: Text, failures: Int, first_failure: Ts, locked_until: Ts],
        order_by: "username",
        identity: false,
    },
    TableSpec {
        name: "credentials",
        columns: columns![
            id: Int, name: Text, kind: Text, username: Text, email: Text, expires_on: Date, scopes: Text,
            key_id: Text, wrapped_key: Bytes, ciphertext: Bytes, created_at: Ts, updated_at: Ts,
            secret_updated_at: Ts, auth_failures: Int, checks_paused_at: Ts, host: Text, verification: Text,
            app_id: Text, installation_id: Int, public_key: Text, client_certificate: Text,
            client_certificate_subject: Text, client_certificate_not_after: Ts,
        ],
        order_by: "id",
        identity: true,
    },
    TableSpec {
        name: "credential_client_keys",
        columns: columns![credential_id: Int, key_id: Text, wrapped_key: Bytes, ciphertext: Bytes],
        order_by: "credential_id",
        identity: false,
    },
    TableSpec {
        name: "repositories",
        columns: columns![
            id: Int, name: Text, vcs: Text, clone_url: Text, repo_key: Text, provider: Text, default_branch: Text,
            credential_id: Int, created_at: Ts, updated_at: Ts, next_check_at: Ts, lease_owner: Text,
            lease_until: Ts, due_reason: Text, check_status: Text, status: Text, host: Text,
        ],
        order_by: "id",
        identity: true,
    },
    TableSpec {
        name: "repository_branch_lists",
        columns: columns![
            repository_id: Int, default_branch: Text, branch_count: Int, digest: Text, source: Text, updated_at: Ts,
        ],
        order_by: "repository_id",
        identity: false,
    },
    TableSpec {
        name: "repository_branches",
        columns: columns![repository_id: Int, name: Text, commit_id: Text],
        order_by: "repository_id, name",
        identity: false,
    },
    TableSpec {
        name: "repository_webhooks",
        columns: columns![
            repository_id: Int, provider: Text, hook_id: Text, url: Text, key_id: Text, wrapped_key: Bytes,
            ciphertext: Bytes, deliveries: Int, rejected: Int, last_delivery_at: Ts, last_rejected_at: Ts,
            created_at: Ts,
        ],
        order_by: "repository_id",
        identity: false,
    },
    TableSpec {
        name: "checks",
        columns: columns![
            id: Int, repository_id: Int, ok: Bool, code: Text, checked_at: Ts, duration_ms: Int, steps: Text,
            status: Text, reason: Text, instance: Text, warn_codes: Text,
        ],
        order_by: "id",
        identity: true,
    },
    TableSpec {
        name: "audit_log",
        columns: columns![
            id: Int, at: Ts, actor_id: Int, actor: Text, action: Text, target_kind: Text, target_id: Int,
            target_name: Text, detail: Text, remote_addr: Text, outcome: Text,
        ],
        order_by: "id",
        identity: true,
    },
    TableSpec {
        name: "imports",
        columns: columns![
            id: Int, credential_id: Int, credential_name: Text, source: Text, provider: Text, state: Text,
            created_by: Text, created_at: Ts, updated_at: Ts,
        ],
        order_by: "id",
        identity: true,
    },
    TableSpec {
        name: "import_items",
        columns: columns![
            id: Int, import_id: Int, full_name: Text, slug: Text, name: Text, clone_url: Text, private: Bool,
            existing_id: Int, existing_name: Text, selected: Bool, status: Text, code: Text, message: Text,
            remedy: Text, repository_id: Int, repository_name: Text, lease_until: Ts, updated_at: Ts,
        ],
        order_by: "id",
        identity: true,
    },
    TableSpec {
        name: "credential_templates",
        columns: columns![
            id: Int, url_prefix: Text, credential_id: Int, created_by: Text, created_at: Ts, updated_at: Ts,
        ],
        order_by: "id",
        identity: true,
    },
    TableSpec {
        name: "notification_channels",
        columns: columns![
            id: Int, name: Text, kind: Text, settings: Text, events: Text, repository_pattern: Text,
            credential_id: Int, enabled: Bool, key_id: Text, wrapped_key: Bytes, ciphertext: Bytes, created_at: Ts,
            updated_at: Ts,
        ],
        order_by: "id",
        identity: true,
    },
    TableSpec {
        name: "notification_events",
        columns: columns![
            id: Int, kind: Text, subject: Text, subject_id: Int, subject_name: Text, credential_id: Int,
            old_status: Text, new_status: Text, code: Text, message: Text, remedy: Text, details: Text,
            created_at: Ts,
        ],
        order_by: "id",
        identity: true,
    },
    TableSpec {
        name: "notification_deliveries",
        columns: columns![
            id: Int, channel_id: Int, event_id: Int, delivery_uuid: Text, state: Text, attempts: Int,
            next_attempt_at: Ts, lease_owner: Text, lease_until: Ts, last_status: Int, last_error: Text,
            created_at: Ts, updated_at: Ts,
        ],
        order_by: "id",
        identity: true,
    },
    TableSpec {
        name: "credential_expiry_notices",
        columns: columns![credential_id: Int, expires_on: Date, expiry_window: Text, created_at: Ts],
        order_by: "credential_id, expires_on, expiry_window",
        identity: false,
    },
    TableSpec {
        name: "known_hosts",
        columns: columns![
            id: Int, host: Text, key_type: Text, public_key: Text, fingerprint: Text, added_by: Text, created_at: Ts,
        ],
        order_by: "id",
        identity: true,
    },
    TableSpec { name: "meta", columns: columns![key: Text, value: Text], order_by: "key", identity: false },
    // Last: the canary proves the key after everything it guards is in place.
    TableSpec {
        name: "vault_canary",
        columns: columns![id: Int, key_id: Text, wrapped_key: Bytes, ciphertext: Bytes],
        order_by: "id",
        identity: false,
    },
];

/// Tables a snapshot leaves out, and why. A table whose name starts with one of these
/// followed by `_` (SQLite's FTS5 shadow tables) is left out with it.
pub const NOT_COPIED: &[(&str, &str)] = &[
    ("sessions", "sign-ins do not survive a restore: people sign in again (API tokens are kept)"),
    ("repository_counts", "kept by the triggers of migration 0010 as the repositories are written"),
    ("repository_search", "SQLite's search index (migrations 0010 and 0015), kept by triggers"),
    ("search_trigram_counts", "kept by the triggers of migration 0019 as the repositories are written"),
    ("_sqlx_migrations", "written by the target's own migrations"),
];

/// Columns a snapshot leaves out, and why.
pub const COLUMNS_NOT_COPIED: &[(&str, &str, &str)] =
    &[("repositories", "search", "PostgreSQL computes it (a generated column, migration 0010)")];

pub(crate) fn spec(table: &str) -> Option<&'static TableSpec> {
    TABLES.iter().find(|t| t.name == table)
}

/// Why a table of a Berth database is not in a snapshot, or `None` when it is copied.
pub(crate) fn not_copied(table: &str) -> Option<&'static str> {
    NOT_COPIED
        .iter()
        .find(|(name, _)| table == *name || table.strip_prefix(name).is_some_and(|rest| rest.starts_with('_')))
        .map(|(_, why)| *why)
}

/// How a snapshot treats a table's column: for the test that keeps this file complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    Copied,
    /// Left out on purpose, and why.
    NotCopied(&'static str),
    /// Neither: a migration added it and this file does not know it yet.
    Unknown,
}

/// How a snapshot treats `table` (and `column` of it, when given).
pub fn coverage(table: &str, column: Option<&str>) -> Coverage {
    if let Some(why) = not_copied(table) {
        return Coverage::NotCopied(why);
    }
    let Some(spec) = spec(table) else { return Coverage::Unknown };
    match column {
        None => Coverage::Copied,
        Some(c) if spec.columns.iter().any(|k| k.name == c) => Coverage::Copied,
        Some(c) => COLUMNS_NOT_COPIED
            .iter()
            .find(|(t, name, _)| *t == table && *name == c)
            .map_or(Coverage::Unknown, |(_, _, why)| Coverage::NotCopied(why)),
    }
}
