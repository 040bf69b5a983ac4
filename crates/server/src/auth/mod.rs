//! Who may do what, and the building blocks of proving who a caller is.
//!
//! What a role may do is decided in one place, [`Role::allows`], which every use case reaches
//! through [`CurrentUser::require`]. The sign-in use cases themselves (password, second factor,
//! lockout, sessions) live in `crate::service::sessions`; this module holds the rules and the
//! primitives they use: password hashing and tokens ([`secrets`]), TOTP ([`totp`]) and the
//! authenticated caller ([`caller`]).

pub mod caller;
pub mod secrets;
pub mod totp;

pub use caller::{bearer_token, came_over_tls, remote_addr, set_trust_forwarded, CurrentUser, Forbidden, Via};
pub use secrets::{
    constant_time_eq, hash_password, hash_password_async, new_csrf_token, new_personal_token, new_recovery_codes,
    new_token, recovery_code_hash, token_hash, validate_password, verify_password, HashFailed, PasswordRule,
};

pub const ADMIN_ROLE: &str = berth_store::ADMIN_ROLE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, including users, settings and the audit log.
    Admin,
    /// Registers and edits repositories, creates and uses credentials.
    Registrar,
    /// Reads only.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Registrar, Role::Viewer];

    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Some(Role::Admin),
            "registrar" => Some(Role::Registrar),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Registrar => "registrar",
            Role::Viewer => "viewer",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Role::Admin => "everything, including users, security settings and the audit log",
            Role::Registrar => "register, edit, check and delete repositories; create, update and use credentials",
            Role::Viewer => "read only",
        }
    }

    /// The one table of who may do what.
    pub fn allows(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Admin => true,
            Role::Registrar => {
                !matches!(action, DeleteCredential | ManageUsers | ReadAudit | ManageSettings | ManageKnownHosts)
            }
            Role::Viewer => matches!(action, ReadCredentials | ReadRepositories | ManageOwnAccount),
        }
    }
}
/// Everything a caller can ask Berth to do, as far as roles are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ReadCredentials,
    CreateCredential,
    /// Rename, change fields, replace the token.
    UpdateCredential,
    DeleteCredential,
    /// Send a stored credential to a remote to list its branches (Refresh).
    UseCredential,
    ReadRepositories,
    RegisterRepository,
    UpdateRepository,
    DeleteRepository,
    CheckRepository,
    ManageUsers,
    ReadAudit,
    ManageSettings,
    /// Own password, second factor and personal API tokens.
    ManageOwnAccount,
    /// Create and delete credential templates (URL prefix to credential).
    ManageTemplates,
    /// Apply a configuration document (each change also needs its own action).
    ApplyConfig,
    /// List, trust and remove SSH host keys (administrators: a trusted key decides which
    /// server every SSH credential is offered to).
    ManageKnownHosts,
}

impl Action {
    pub const ALL: [Action; 17] = [
        Action::ReadCredentials,
        Action::CreateCredential,
        Action::UpdateCredential,
        Action::DeleteCredential,
        Action::UseCredential,
        Action::ReadRepositories,
        Action::RegisterRepository,
        Action::UpdateRepository,
        Action::DeleteRepository,
        Action::CheckRepository,
        Action::ManageUsers,
        Action::ReadAudit,
        Action::ManageSettings,
        Action::ManageOwnAccount,
        Action::ManageTemplates,
        Action::ApplyConfig,
        Action::ManageKnownHosts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::ReadCredentials => "read_credentials",
            Action::CreateCredential => "create_credential",
            Action::UpdateCredential => "update_credential",
            Action::DeleteCredential => "delete_credential",
            Action::UseCredential => "use_credential",
            Action::ReadRepositories => "read_repositories",
            Action::RegisterRepository => "register_repository",
            Action::UpdateRepository => "update_repository",
            Action::DeleteRepository => "delete_repository",
            Action::CheckRepository => "check_repository",
            Action::ManageUsers => "manage_users",
            Action::ReadAudit => "read_audit",
            Action::ManageSettings => "manage_settings",
            Action::ManageOwnAccount => "manage_own_account",
            Action::ManageTemplates => "manage_templates",
            Action::ApplyConfig => "apply_config",
            Action::ManageKnownHosts => "manage_known_hosts",
        }
    }

    /// "register a repository": completes "You must have permission to …".
    pub fn phrase(self) -> &'static str {
        match self {
            Action::ReadCredentials => "view credentials",
            Action::CreateCredential => "create a credential",
            Action::UpdateCredential => "change a credential",
            Action::DeleteCredential => "delete a credential",
            Action::UseCredential => "use a credential to list remote branches",
            Action::ReadRepositories => "view repositories",
            Action::RegisterRepository => "register a repository",
            Action::UpdateRepository => "edit a repository",
            Action::DeleteRepository => "delete a repository",
            Action::CheckRepository => "check a repository",
            Action::ManageUsers => "manage users",
            Action::ReadAudit => "read the audit log",
            Action::ManageSettings => "change security settings",
            Action::ManageOwnAccount => "manage your account",
            Action::ManageTemplates => "manage credential templates",
            Action::ApplyConfig => "apply a configuration",
            Action::ManageKnownHosts => "manage trusted SSH host keys",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_the_issue_says() {
        for a in Action::ALL {
            assert!(Role::Admin.allows(a));
        }
        assert!(Role::Registrar.allows(Action::RegisterRepository));
        assert!(Role::Registrar.allows(Action::CreateCredential));
        assert!(Role::Registrar.allows(Action::UseCredential));
        assert!(!Role::Registrar.allows(Action::ManageUsers));
        assert!(!Role::Registrar.allows(Action::ReadAudit));
        assert!(!Role::Registrar.allows(Action::ManageKnownHosts));
        assert!(!Role::Viewer.allows(Action::RegisterRepository));
        assert!(!Role::Viewer.allows(Action::UseCredential));
        assert!(Role::Viewer.allows(Action::ReadRepositories));
        assert_eq!(Role::parse("Registrar"), Some(Role::Registrar));
        assert_eq!(Role::parse("root"), None);
    }

    /// The OpenAPI document lists roles and actions as enums declared in berth-proto (which
    /// cannot see these types): a role or action added here must be added there too.
    #[test]
    fn the_api_documents_every_role_and_action() {
        let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        let documented: Vec<&str> = berth_proto::Role::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(roles, documented, "berth_proto::Role");
        let actions: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        let documented: Vec<&str> = berth_proto::Action::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(actions, documented, "berth_proto::Action");
    }
}
