//! Deterministic harnesses for the `raft-election` core: what the tests, the
//! fuzz targets and the benchmarks drive.
//!
//! - [`Cluster`]: an in-memory cluster stepped by hand (deliver, drop,
//!   duplicate, fire, crash, restart, cut, isolate, heal, and ask a leader to
//!   transfer leadership), checking every
//!   invariant of [`raft_election::invariants`] after every step. No clock:
//!   which timer fires first is the caller's choice.
//! - [`timed::TimedCluster`]: the same core on a virtual clock with an ideal
//!   network, the benchmarks' "ideal"; with drifting clocks, arbitrary
//!   delays and faults, the leader lease's check ([`lease_runs`]).
//! - [`fuzzing`]: the fuzz inputs and harnesses, shared by the cargo-fuzz
//!   targets in `fuzz/` and the corpus replay test, so the fuzzer and
//!   `cargo test` run the very same code.
//!
//! ```
//! use raft_election::{Config, LogSummary, NodeId, Role, Timing};
//! use raft_election_sim::Cluster;
//!
//! let configs = Config::cluster(3, Timing::default())?;
//! let mut cluster = Cluster::new(configs, &[LogSummary::default(); 3]);
//! // n1's election timer fires first; every message is then delivered.
//! assert!(cluster.campaign(NodeId(1), 100)?);
//! assert_eq!(cluster.role(NodeId(1)), Some(Role::Leader));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(not(fuzzing), warn(missing_docs))]

pub mod cluster;
pub mod fuzzing;
pub mod lease_runs;
pub mod lease_watch;
pub mod timed;

pub use cluster::{Cluster, FeatureCounts};
