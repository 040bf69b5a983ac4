//! Placeholder until the CLI lands (filled in below).
