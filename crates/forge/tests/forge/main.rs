//! berth-forge against small axum mocks of Bitbucket Cloud, Bitbucket Data Center and GitHub on
//! 127.0.0.1. Bodies follow forge-facts.md and the Atlassian OpenAPI specs. One test binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cloud;
mod datacenter;
mod github;
mod mock;
