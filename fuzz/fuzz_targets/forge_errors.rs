//! The readers of Git hosts' REST error bodies (Bitbucket Cloud, Bitbucket Data Center, GitHub,
//! plain text, `Link` headers) on any bytes: no panic, and every text they return is clipped.
#![no_main]

use berth_forge::parse::check_error_body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Err(e) = check_error_body(body) {
        panic!("{e}");
    }
});
