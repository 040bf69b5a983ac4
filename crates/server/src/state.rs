//! What every request handler and use case shares.

use crate::config::Config;
use crate::instance::Instance;
use berth_forge::Forge;
use berth_git::GitClient;
use berth_store::Store;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// One client, one connection pool, for every check.
    pub git: GitClient,
    /// REST adapters of the Git hosts, sharing the Git client's pool and network policy.
    pub forge: Forge,
    pub config: Arc<Config>,
    /// This instance's in-memory state: metrics, scheduler signals, per-host limits.
    pub instance: Arc<Instance>,
    /// Single sign-on through an OpenID provider, when `[oidc]` is configured.
    pub sso: Option<Arc<crate::service::sso::Sso>>,
}
