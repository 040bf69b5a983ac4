//! What every request handler shares.

use crate::background::Background;
use crate::config::Config;
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
    /// This instance's scheduler state and metrics.
    pub background: Arc<Background>,
}
