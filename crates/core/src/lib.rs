//! Berth's domain: what a credential is, what a clone URL is, which provider hosts it,
//! what a check finds and which addresses Berth may contact. Nothing here does IO, so every
//! rule can be tested in isolation and reused by the server, the CLI and the simulator.

pub mod branch_match;
pub mod check_status;
pub mod clone_url;
pub mod credential;
pub mod finding;
pub mod glob;
pub mod host;
pub mod import_source;
pub mod net_policy;
pub mod provider;
pub mod scopes;
pub mod words;

pub use check_status::{CheckReason, CheckStatus};
pub use clone_url::{CloneUrl, PrefixRelation, Scheme, UrlError, UrlPrefix};
pub use credential::{CredentialKind, CredentialRules, Expiry, GitIdentity};
pub use finding::{Check, Code, Step, StepName, StepStatus};
pub use host::HostBase;
pub use import_source::{ImportScope, ImportSource, SourceError};
pub use net_policy::NetworkPolicy;
pub use provider::{Integration, Provider};
pub use scopes::Capability;
