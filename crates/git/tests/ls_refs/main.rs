//! berth-git against a real Git server (git http-backend behind berth-testkit) and its fault
//! routes. One test binary; every server listens on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod failures;
mod hostile;
mod policy;
mod protocol;
mod proxied;
mod secrets;
mod ssh;
mod ssrf;
