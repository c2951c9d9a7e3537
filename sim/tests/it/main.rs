//! The integration tests of this crate, one module a file, built as one
//! binary: `cargo test -p raft-election-sim --test it MODULE::` runs one file's.

mod check_quorum_timing;
mod features;
mod fuzz_corpus;
mod scenarios;
