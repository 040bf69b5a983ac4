//! Offline maintenance: reset a password, rotate the master key. Both work on the same
//! database and key file as a running server, which keeps working throughout.

use crate::config::Config;
use crate::{auth, open_store, StartError};
use secrecy::SecretString;

pub async fn reset_password(config: &Config, username: &str, password: &SecretString) -> Result<(), StartError> {
    if secrecy::ExposeSecret::expose_secret(password).chars().count() < 8 {
        return Err(StartError::Other("the new password must have at least 8 characters".into()));
    }
    let store = open_store(config).await?;
    let hash = auth::hash_password(password).map_err(|e| StartError::Other(e.message))?;
    match store.find_user(username).await? {
        Some(u) => store.set_password(u.id, &hash).await?,
        None => {
            store.create_user(username, &hash, auth::ADMIN_ROLE).await?;
        }
    }
    Ok(())
}

#[derive(Debug)]
pub struct Rotation {
    pub retired: Vec<String>,
    pub active: String,
    pub rewrapped: usize,
}

/// Adds a new master key, re-wraps every secret under it in one transaction, then drops the
/// old keys from the key file. A crash in between leaves both keys in the file, which opens
/// the database either way.
pub async fn rotate_key(config: &Config) -> Result<Rotation, StartError> {
    let store = open_store(config).await?;
    let retired = store.vault().key_ids();
    let active = store.vault().add_master_key()?;
    let rewrapped = store.rewrap_all().await?;
    store.vault().retire_old_keys()?;
    Ok(Rotation { retired, active, rewrapped })
}
