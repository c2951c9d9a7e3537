//! The integration tests of this crate, one module a file, built as one
//! binary: `cargo test -p raft-election-runtime --test it MODULE::` runs one file's.

mod driver;
mod durability;
mod faults;
mod features;
mod fed_server;
mod frame_corpus;
mod leader_lease;
mod runtime;
mod server;
mod support;
mod tcp;
mod tcp_connections;
mod tcp_reconnect;
mod tcp_tls;
