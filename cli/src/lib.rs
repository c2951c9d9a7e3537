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
//! - [`logging`]: the one logger setup ([`logging::init_logging`]): the
//!   the story, or JSON lines with each node's span fields (node, term, role).
//! - [`timeline`]: a cluster's event log as a timeline picture
//!   (`--timeline FILE`).
//! - [`node_log`]: a real cluster's node logs (`--log-format json`) as a
//!   timeline picture (`raft-election timeline`).
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

pub mod logging;
pub mod node_log;
pub mod plot;
pub mod progress;
pub mod timeline;

/// Whether `path` can be written, found out before a long run that writes
/// it at the end. Leaves the file system as it was: an existing file is
/// opened without truncating it, a new one is removed again.
pub fn check_writable(path: &std::path::Path) -> std::io::Result<()> {
    if path.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
    } else {
        std::fs::File::create(path)?;
        std::fs::remove_file(path)
    }
}
