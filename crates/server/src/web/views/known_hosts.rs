//! What Admin > Known hosts shows: the trusted SSH host keys and the form to trust one.

use super::{Layout, Problem};
use askama::Template;

pub struct KnownHostView {
    /// 0 for a pinned key (it has no id and cannot be removed).
    pub id: i64,
    pub host: String,
    pub key_type: String,
    pub fingerprint: String,
    /// "pinned in Berth …" or "trusted by alice on 2026-12-02".
    pub source: String,
    pub pinned: bool,
}

#[derive(Template)]
#[template(path = "known_hosts.html")]
pub struct KnownHostsPage {
    pub l: Layout,
    pub keys: Vec<KnownHostView>,
    /// Filled in from a `host_key_unknown` step's "Trust this key" link.
    pub offered_host: String,
    pub offered_fingerprint: String,
    pub problem: Option<Problem>,
}
