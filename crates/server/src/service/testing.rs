//! A throwaway server state for unit tests of the use cases: SQLite in a temporary directory.

use crate::auth::{CurrentUser, Via};
use crate::config::Config;
use crate::service::{Error, Result};
use crate::state::AppState;

pub const ADMIN_PASSWORD: &str = "admin password for tests";

pub struct TestState {
    pub st: AppState,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TestState {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.st
    }
}

pub async fn state() -> Result<TestState> {
    let dir = tempfile::tempdir().map_err(|e| Error::internal(&e))?;
    let data = dir.path().display().to_string();
    let env = move |k: &str| match k {
        "BERTH_DATA_DIR" => Some(data.clone()),
        "BERTH_ADMIN_PASSWORD" => Some(ADMIN_PASSWORD.to_owned()),
        _ => None,
    };
    let config = Config::load(&env).map_err(|e| Error::internal(&e))?;
    let ready = crate::prepare(config).await.map_err(|e| Error::internal(&e))?;
    Ok(TestState { st: ready.state, _dir: dir })
}

/// The caller `username` as if signed in on the web.
pub async fn caller(st: &AppState, username: &str) -> Result<CurrentUser> {
    let user = st.store.find_user(username).await?.ok_or(Error::NotFound(crate::service::Entity::User))?;
    Ok(CurrentUser::new(user, Some("127.0.0.1".into()), Via::Web))
}
