//! The integration tests of this crate, one module a file, built as one
//! binary: `cargo test -p raft-election-cli --test it MODULE::` runs one file's.

mod attacks;
mod bad_input;
mod common;
mod deploy;
mod drain;
mod floods;
mod log_timeline;
mod logging;
mod node_trace_validation;
mod operators;
mod partitions;
mod pictures;
mod process_kill;
mod real_cluster;
mod run_while_leader;
mod tls_flags;
