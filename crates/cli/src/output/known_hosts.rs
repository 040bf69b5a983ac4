//! Trusted SSH host keys as a table.

use super::*;
use berth_proto::KnownHost;

pub fn known_hosts_table(list: &[KnownHost]) -> String {
    let mut t = Table::new(&["ID", "HOST", "TYPE", "FINGERPRINT", "TRUSTED BY"]);
    for k in list {
        let id = k.id.map_or_else(|| "-".to_owned(), |i| i.to_string());
        let by = if k.pinned { "pinned in Berth".to_owned() } else { clean(k.added_by.as_deref().unwrap_or("-")) };
        t.row([id, clean(&k.host), clean(&k.key_type), clean(&k.fingerprint), by]);
    }
    t.render()
}
