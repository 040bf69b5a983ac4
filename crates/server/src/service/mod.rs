//! The use cases of Berth, each written once. A use case takes typed input (a request shape of
//! `berth_proto`, an id, the acting [`CurrentUser`]) and returns domain values or one
//! [`Error`]. It checks the caller's role ([`CurrentUser::require`]) and writes the audit log
//! itself, so the REST API (`api/`) and the web pages (`web/`) are thin adapters: they decode a
//! request, call a use case and render the answer. Only this layer talks to the store.
//!
//! [`CurrentUser`]: crate::auth::CurrentUser
//! [`CurrentUser::require`]: crate::auth::CurrentUser::require

pub mod accounts;
pub mod audit;
pub mod checks;
mod client_certs;
pub mod config;
pub mod credentials;
mod error;
pub mod host_webhooks;
pub mod imports;
pub mod known_hosts;
pub mod notifications;
pub mod ops;
pub mod paging;
pub mod repositories;
pub mod scheduler;
pub mod sessions;
mod ssh_keys;
pub mod sso;
pub mod templates;
pub mod tokens;
pub mod verification;

pub use error::{not_found_code, Conflict, Entity, Error, Refusal, Result};

#[cfg(test)]
mod testing;
