//! Offline maintenance: reset a password, rotate the master key. Both work on the same
//! database and key file as a running server, which keeps working throughout.

use crate::config::Config;
use crate::{auth, StartError};
use berth_store::{Store, StoreError};
use secrecy::SecretString;

/// The database of an installation that exists. Maintenance run from the wrong folder, or with
/// the wrong `BERTH_DATA_DIR`, must not create an empty installation and report success: it is
/// refused, and nothing is written.
pub(crate) async fn open_existing(config: &Config) -> Result<Store, StartError> {
    match Store::open_existing(&config.database_url, &config.master_key_file).await {
        Ok(store) => Ok(store),
        Err(StoreError::NoDatabase(why)) => {
            let sqlite = config.database_url.starts_with("sqlite:");
            Err(StartError::NoDatabase(if sqlite && !config.data_dir.is_dir() {
                format!("the data directory {} does not exist", config.data_dir.display())
            } else {
                format!("no Berth database at {:?}: {why}", config.database_url)
            }))
        }
        // A key file that does not open this database says so as the vault's error.
        Err(StoreError::Vault(v)) => Err(StartError::Vault(v)),
        Err(e) => Err(e.into()),
    }
}

pub async fn reset_password(config: &Config, username: &str, password: &SecretString) -> Result<(), StartError> {
    auth::validate_password(secrecy::ExposeSecret::expose_secret(password))
        .map_err(|_| StartError::Invalid(format!("{}: {}", auth::PasswordRule::MESSAGE, auth::PasswordRule::REMEDY)))?;
    let store = open_existing(config).await?;
    // A mistyped name must not create a new administrator: users are created in the UI or API.
    let Some(user) = store.find_user(username).await? else {
        return Err(StartError::Invalid(format!(
            "there is no user named {:?}; check the name (GET /api/v1/users lists them)",
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
    let store = open_existing(config).await?;
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
