//! The client side of the `berth` command, as a library so integration tests can drive the
//! API with the same typed client the CLI uses: [`client::ApiClient`] speaks the REST API,
//! [`output`] renders what it answers for people.

pub mod client;
pub mod output;
