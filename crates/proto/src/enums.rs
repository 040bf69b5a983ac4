//! The API's string enumerations (declared with `wire_enum!`, see the crate root).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

wire_enum! {
    /// A user's role: what they may do.
    Role {
        /// Everything, including users, settings and the audit log.
        Admin = "admin",
        /// Registers and edits repositories, creates and uses credentials.
        Registrar = "registrar",
        /// Reads only.
        Viewer = "viewer",
    }
}

wire_enum! {
    /// Something a role may or may not do (`GET /api/v1/me` lists the caller's).
    Action {
        ReadCredentials = "read_credentials",
        CreateCredential = "create_credential",
        UpdateCredential = "update_credential",
        DeleteCredential = "delete_credential",
        UseCredential = "use_credential",
        ReadRepositories = "read_repositories",
        RegisterRepository = "register_repository",
        UpdateRepository = "update_repository",
        DeleteRepository = "delete_repository",
        CheckRepository = "check_repository",
        ManageUsers = "manage_users",
        ReadAudit = "read_audit",
        ManageSettings = "manage_settings",
        ManageOwnAccount = "manage_own_account",
        ManageTemplates = "manage_templates",
        ApplyConfig = "apply_config",
        ManageKnownHosts = "manage_known_hosts",
    }
}

wire_enum! {
    /// A registered repository's state.
    RepositoryStatus {
        /// The last check passed.
        Ok = "ok",
        /// The last check passed with warnings.
        Warn = "warn",
        /// The last check failed.
        Fail = "fail",
        /// Not checked yet.
        Unchecked = "unchecked",
        /// Background checks of its credential are paused after repeated authentication failures.
        Paused = "paused",
    }
}

impl From<berth_core::CheckStatus> for RepositoryStatus {
    fn from(s: berth_core::CheckStatus) -> Self {
        match s {
            berth_core::CheckStatus::Ok => RepositoryStatus::Ok,
            berth_core::CheckStatus::Warn => RepositoryStatus::Warn,
            berth_core::CheckStatus::Fail => RepositoryStatus::Fail,
        }
    }
}

wire_enum! {
    /// A credential's expiry, judged against today's date.
    ExpiryStatus {
        /// No expiry date recorded.
        Unknown = "unknown",
        Valid = "valid",
        /// Within the warning window before the expiry date.
        ExpiresSoon = "expires_soon",
        Expired = "expired",
    }
}

wire_enum! {
    /// The Git smart-HTTP protocol version a server spoke.
    GitProtocol {
        V2 = "v2",
        V0 = "v0",
    }
}

wire_enum! {
    /// How an audited attempt ended.
    AuditOutcome {
        /// Done.
        Ok = "ok",
        /// Refused (a name locked after too many failed sign-ins).
        Denied = "denied",
        /// Failed (a wrong password or second-factor code).
        Failed = "failed",
    }
}

wire_enum! {
    /// A version control system Berth registers.
    Vcs {
        Git = "git",
    }
}
