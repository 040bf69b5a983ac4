//! A counting global allocator: `System` plus atomics for the current and the peak heap size, so
//! the bench can report the heap peak of one call.

// `GlobalAlloc` is an unsafe trait: implementing it takes `unsafe impl` and `unsafe fn` whatever
// the bodies do. This module only forwards to `System` and counts; it is the one place in the
// crate where unsafe code is allowed (Cargo.toml denies it everywhere else).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;

pub struct Counting {
    current: AtomicUsize,
    peak: AtomicUsize,
}

impl Counting {
    pub const fn new() -> Self {
        Counting { current: AtomicUsize::new(0), peak: AtomicUsize::new(0) }
    }

    /// Starts a new peak measurement at the current heap size, which it returns.
    pub fn reset_peak(&self) -> usize {
        let now = self.current.load(Relaxed);
        self.peak.store(now, Relaxed);
        now
    }

    /// The largest heap size since the last [`Counting::reset_peak`].
    pub fn peak(&self) -> usize {
        self.peak.load(Relaxed)
    }

    fn grew(&self, bytes: usize) {
        let now = self.current.fetch_add(bytes, Relaxed) + bytes;
        // A plain load first: most allocations do not set a new peak, and fetch_max always writes.
        if now > self.peak.load(Relaxed) {
            self.peak.fetch_max(now, Relaxed);
        }
    }

    fn shrank(&self, bytes: usize) {
        self.current.fetch_sub(bytes, Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; our caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            self.grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            self.grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) };
        self.shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; our caller upholds `GlobalAlloc::realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as growth first: the old and new blocks may both exist while data is copied.
            self.grew(new_size);
            self.shrank(layout.size());
        }
        p
    }
}
