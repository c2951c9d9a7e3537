//! The Tokio runtime of the `raft-election` core: the one node [`Driver`]
//! (wait for an input, step the core, execute its outputs), the
//! [`Transport`] seam it talks to peers through and the [`Pacer`] that says
//! how it waits for its next input, an in-process [`cluster`]
//! of such drivers over channels, with fault controls and observation for
//! tests, the demo and the benchmarks, and for real clusters the [`tcp`]
//! transport and [`Server`], one node for an application to embed.
//!
//! The runtime only executes what [`raft_election::Node::step`] asks: it
//! persists, sends, arms and cancels timers, and picks timer durations.
//! Every vote, role and term decision stays in the core.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use raft_election_runtime::{ClusterConfig, spawn_cluster};
//! use std::time::Duration;
//!
//! let cluster = spawn_cluster(ClusterConfig::seeded(3, 42))?;
//! let (leader, term) = cluster.wait_for_leader(Duration::from_secs(1)).await?;
//! println!("{leader} leads {term}");
//! cluster.check_safety()?;
//! cluster.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`driver`]: [`Driver`] and the [`Observer`] it reports to.
//! - [`timers`]: a node's armed [`Timers`], owned by its driver and read by
//!   its pacer.
//! - [`transport`]: the [`Transport`] trait (send, receive) and what became
//!   of a message ([`Delivery`]).
//! - [`pacer`]: how a driver waits for its next input ([`Pacer`], [`Wake`]):
//!   [`Independent`] for a node on a machine of its own, and the one precise
//!   wait for election deadlines ([`PRECISE_WINDOW`]) every pacer uses.
//! - [`timeouts`]: where election timeouts come from ([`TimeoutSource`]).
//! - [`cluster`]: the in-process cluster ([`spawn_cluster`],
//!   [`ClusterHandle`]): channels as the transport, a pacing policy for nodes
//!   that share one process, the link table and its faults, the event log,
//!   the status board and the safety monitor.
//! - [`tcp`]: the TCP transport ([`TcpTransport`]) and its wire format.
//! - [`server`]: [`Server`], one node on its own task with a watch on who
//!   leads ([`Leadership`]); [`round_trips`]: its heartbeats' round trips;
//!   [`record_log`]: its records as log lines, typed.
//! - [`data_dir`]: a node's data directory, locked for the process's life
//!   ([`DataDir`]).
//! - `file_storage`: a node's hard state in a file ([`FileStorage`]: atomic
//!   replace, fsync, checksum, the owner recorded).
//! - `sync`: the std/loom facade the shared pieces are built on.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cluster;
pub mod data_dir;
pub mod driver;
mod file_storage;
pub mod pacer;
pub mod record_log;
pub mod round_trips;
// Tokio leaves out its network under `--cfg loom`, and loom checks only the
// shared pieces of the in-process cluster.
#[cfg(not(loom))]
pub mod server;
mod sync;
#[cfg(not(loom))]
pub mod tcp;
pub mod timeouts;
pub mod timers;
pub mod transport;

pub use cluster::{
    ClusterConfig, ClusterConfigError, ClusterHandle, Event, EventKind, FaultError, LinkChange,
    LinkFaults, LinkTable, MessageCounts, NetworkStats, NodeStatus, Observation, Pacing,
    RestoreError, ShutdownError, SpawnError, Statuses, StorageKind, TransferError, WaitError,
    spawn_cluster,
};
pub use data_dir::{DataDir, DataDirError, DirStorage};
pub use driver::{Driver, NodeError, Observer, Requests, RequestsFull};
pub use file_storage::{FileStorage, FileStorageError};
pub use pacer::{Independent, PRECISE_WINDOW, Pacer, Wake};
pub use record_log::{ConnectionEnd, ConnectionEnded, Json, RECORD_LOG_TARGET};
pub use round_trips::RoundTrips;
#[cfg(not(loom))]
pub use server::{
    Leadership, Noted, Server, ServerBuilder, ServerError, ServerStatus, StatusReader,
};
#[cfg(not(loom))]
pub use tcp::{PeerAddress, TcpConfig, TcpError, TcpStats, TcpStatsHandle, TcpTransport};
pub use timeouts::{TimeoutPicker, TimeoutSource};
pub use timers::Timers;
pub use transport::{Delivery, Transport};

#[cfg(all(test, loom))]
mod loom_tests;

/// What the unit tests share.
#[cfg(test)]
mod testing {
    use std::time::Duration;

    /// `millis` milliseconds.
    pub(crate) fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }
}
