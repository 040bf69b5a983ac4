//! The clone-URL parser on anything a person could paste: no panic, and whatever it accepts
//! has a canonical form that parses again to the same repository (see
//! `berth_core::clone_url::check_canonical_roundtrip`).
#![no_main]

use berth_core::clone_url::{check_canonical_roundtrip, fuzz_integrations};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static INTEGRATIONS: OnceLock<Vec<berth_core::Integration>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let integrations = INTEGRATIONS.get_or_init(fuzz_integrations);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = check_canonical_roundtrip(text, integrations) {
            panic!("{e}");
        }
    }
});
