//! What the `raft-election` binaries share: the demo (`cargo run`, bin
//! `raft-election`), the `failover` and `scale` benchmarks.
//!
//! ```text
//! cli/       the binaries and this library: logging, progress, pictures
//!   │  └───> timeline/  raft-election-timeline: timelines and sequence diagrams as SVG
//!   ▼
//! runtime/   Tokio: the driver, transports, the in-process cluster and its event log
//!   ▼
//! core/      the sans-IO election core
//! ```
//!
//! - [`certs`]: a CA and node certificates for mutual TLS
//!   (`raft-election certs`).
//! - [`logging`]: the one logger setup ([`logging::init_logging`]): the
//!   the story, or JSON lines with each node's span fields (node, term, role).
//! - [`log_lines`]: a node process's log lines, typed: the events it
//!   writes beside the runtime's records, and [`log_lines::LogLine`], how
//!   every reader reads a line back.
//! - [`timeline`]: a cluster's event log as a timeline picture
//!   (`--timeline FILE`).
//! - [`node_log`]: a real cluster's node logs (`--log-format json`) as a
//!   timeline picture (`raft-election timeline`).
//! - [`http`]: one request to a node's status endpoint.
//! - [`processes`]: a cluster of node processes on loopback, read back
//!   from their logs, for the TCP benchmarks and the tests.
//! - [`profile`]: timing profiles for one machine, a LAN or a WAN
//!   (`node --timing`), and the figures a node derives from them.
//! - [`plot`]: distributions as CDF charts (`failover --plot FILE`).
//! - [`progress`]: progress bars on a terminal, silent in a pipe.
//!
//! A small election drawn as a timeline, on Tokio's paused clock:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use raft_election_cli::timeline::timeline;
//! use raft_election_runtime::{ClusterConfig, spawn_cluster};
//! use std::time::Duration;
//!
//! let cluster = spawn_cluster(ClusterConfig::seeded(3, 7))?;
//! let (leader, _) = cluster.wait_for_leader(Duration::from_secs(1)).await?;
//! let notes = [(cluster.elapsed(), format!("{leader} elected"))];
//! let picture = timeline("an election", cluster.config().ids(), &cluster.events(), &notes);
//! assert!(picture.to_svg().contains(&format!("{leader} elected")));
//! cluster.shutdown().await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod certs;
pub mod http;
pub mod log_lines;
pub mod logging;
pub mod node_log;
pub mod plot;
pub mod processes;
pub mod profile;
pub mod progress;
pub mod timeline;
