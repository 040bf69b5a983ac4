//! Offline maintenance: reset a password, rotate the master key. Both work on the same
//! database and key file as a running server, which keeps working throughout.

use crate::config::Config;
use crate::{auth, open_store, StartError};
use secrecy::SecretString;

pub async fn reset_password(config: &Config, username: &str, password: &SecretString) -> Result<(), StartError> {
    auth::validate_password(secrecy::ExposeSecret::expose_secret(password))
        .map_err(|_| StartError::Other(format!("{}: {}", auth::PasswordRule::MESSAGE, auth::PasswordRule::REMEDY)))?;
    let store = open_store(config).await?;
    // A mistyped name must not create a new administrator: users are created in the UI or API.
    let Some(user) = store.find_user(username).await? else {
        return Err(StartError::Other(format!(
            "there is no user named {:?}; check the name (Admin > Users lists them)",
            username.chars().take(64).collect::<String>()
        )));
    };
    let hash = auth::hash_password(password).map_err(|e| StartError::Other(e.to_string()))?;
    store.set_password(user.id, &hash, true).await?;
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
    let mut rewrapped = store.rewrap_all().await?;
    // A server running beside this command re-reads the key file before sealing, but a write
    // it sealed just before the new key appeared may commit after the first sweep. Sweep again
    // after a pause until a sweep finds nothing, and only then drop the old keys.
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let late = store.rewrap_all().await?;
        rewrapped += late;
        if late == 0 {
            break;
        }
    }
    store.vault().retire_old_keys()?;
    Ok(Rotation { retired, active, rewrapped })
}
