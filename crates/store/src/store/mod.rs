//! The SQL store. Every query is plain SQL through sqlx; secrets pass through the [`Vault`]
//! on the way in and out and are stored only sealed.
//!
//! `types.rs` holds the rows, `error.rs` the typed errors, `dialect.rs` the two-database
//! plumbing, `open.rs` opening and the vault proof, `mappers.rs` every row reader; the other
//! files each add one area's `impl Store` block.

// Declared first: `on_pool!` is a textual macro the modules below use.
#[macro_use]
mod dialect;
mod error;
mod mappers;
mod open;
mod types;

mod accounts;
#[macro_use]
mod branches;
mod bulk;
mod credentials;
#[macro_use]
mod list_query;
mod list_counts;
mod list_search;
mod listing;
#[macro_use]
mod notifications;
mod imports;
mod known_hosts;
mod repositories;
mod recording;
mod schedule;
mod templates;
mod sso;
mod totp;
mod webhooks;

pub mod snapshot;
mod verify;

pub use branches::{BranchChange, BranchEntry, BranchList, BranchListHead};
pub use bulk::CheckCount;
pub use webhooks::{NewWebhook, WebhookRow};
pub use dialect::Dialect;
pub use error::{Entity, ExistingRepo, Result, StoreError};
pub use imports::{ImportItemRow, ImportRow, ItemOutcome, NewImport, NewImportItem};
pub use known_hosts::NewKnownHost;
pub use list_counts::{ListTotal, StatusCounts, SEARCH_COUNT_BOUND};
pub use list_search::SEARCH_CANDIDATE_CAP;
pub use listing::{RepositoryFilter, REPOSITORY_STATUSES};
pub use notifications::{
    AttemptOutcome, ChannelPatch, ChannelRow, DeliveryRow, EventRow, LeasedDelivery, NewChannel, NewEvent,
};
pub use open::is_postgres_url;
pub use recording::{AuthCount, AuthResult, OutcomeRecorded, OutcomeToRecord};
pub use types::*;
pub use verify::VerifyReport;

use crate::vault::Vault;
use dialect::Db;

#[derive(Clone)]
pub struct Store {
    db: Db,
    vault: Vault,
}
