//! What every request handler shares.

use crate::config::Config;
use berth_git::GitClient;
use berth_store::Store;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// One client, one connection pool, for every check.
    pub git: GitClient,
    pub config: Arc<Config>,
}
