//! Berth's persistence. The [`vault`] is the only code that sees a secret in plaintext; the
//! [`Store`] keeps everything else in SQL and hands secrets to the vault on the way in and out.

pub mod keyring;
pub mod store;
pub mod vault;

pub use keyring::{Keyring, KeyringError};
pub use store::*;
pub use vault::{Sealed, Vault, VaultError};
