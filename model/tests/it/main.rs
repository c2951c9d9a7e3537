//! The integration tests of this crate, one module a file, built as one
//! binary: `cargo test -p raft-election-model --test it MODULE::` runs one file's.

mod check_cli;
mod explorer;
mod feature_decisions;
mod model;
mod reductions;
mod trace_validation;
