//! Writing to standard output and standard error without ever panicking.
//!
//! `println!` panics when the reader of a pipe has gone (`berth repo list --json | head -c1`):
//! Rust ignores SIGPIPE, so the write fails with `EPIPE` and the macro turns that into a panic.
//! A well-made Unix tool stops printing quietly instead. Every line the `berth` binary prints
//! goes through [`out`] or [`err`]: once a write to standard output fails, later output is
//! dropped, and the command still ends with the exit code its outcome deserves.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once standard output cannot be written (the reader went away, or the disk is full):
/// nothing more is tried there.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Writes `text` to standard output as is. Never panics.
pub fn out(text: &str) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).is_err() {
        // Broken pipe or otherwise: there is no one left to tell, and no point in retrying.
        STDOUT_GONE.store(true, Ordering::Relaxed);
    }
}

/// True once standard output cannot be written: a command printing page after page stops
/// asking the server for more.
pub fn stdout_gone() -> bool {
    STDOUT_GONE.load(Ordering::Relaxed)
}

/// Writes `text` to standard error as is. Never panics; a closed standard error is ignored.
pub fn err(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes()).and_then(|()| stderr.flush());
}

/// `println!` that stops quietly at a closed pipe.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::term::out(&format!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that stops quietly at a closed pipe.
macro_rules! outp {
    ($($arg:tt)*) => { $crate::term::out(&format!($($arg)*)) };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::term::err(&format!("{}\n", format_args!($($arg)*))) };
}
