//! The integration tests of this crate, one module a file, built as one
//! binary: `cargo test -p raft-election --test it MODULE::` runs one file's.

mod core_rules;
mod feature_rules;
mod features;
mod leader_lease;
mod term_ceiling;
