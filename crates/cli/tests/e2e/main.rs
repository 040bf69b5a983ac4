//! End-to-end tests: a real Berth server (in-process, real SQLite file, real vault) against a
//! real `git http-backend` serving real repositories, driven through the typed
//! `berth::client::ApiClient`, the `berth` binary, the web UI and, where HTTP itself is tested,
//! raw requests. No network beyond 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod abuse;
mod api;
mod app_ops;
mod background;
mod backup;
mod cli;
mod cli_tool;
mod client_certs;
mod config_apply;
mod contract;
mod crash;
mod github_apps;
mod harness;
mod host_webhooks;
mod imports;
mod instances;
mod leaks;
mod listing;
mod notifications;
mod outage;
mod outbound;
mod providers;
mod proxy;
mod public_repos;
mod roles;
mod ssh;
mod sso;
mod templates;
mod ui;
mod ui_ssh;
mod ui_apps;
mod verdicts;
