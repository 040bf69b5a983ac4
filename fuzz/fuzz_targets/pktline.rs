//! The pkt-line decoder and the advertisement parsers (discovery and v2 `ls-refs`), on any
//! bytes a hostile Git server could send: no panic, and the outcome does not depend on how the
//! network splits the body.
#![no_main]

use berth_git::replay;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let whole = body.len().max(1);
    // A chunk size derived from the input, so the fuzzer explores splits too.
    let odd = 1 + body.first().map_or(0, |b| usize::from(*b) % 17);
    let d = format!("{:?}", replay::discovery(body, whole));
    for chunk in [1, odd] {
        assert_eq!(d, format!("{:?}", replay::discovery(body, chunk)), "discovery differs at chunk {chunk}");
    }
    let l = format!("{:?}", replay::ls_refs(body, whole));
    for chunk in [1, odd] {
        assert_eq!(l, format!("{:?}", replay::ls_refs(body, chunk)), "ls-refs differs at chunk {chunk}");
    }
});
