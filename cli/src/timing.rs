//! The timing flags, the same for the demo and a node.

use raft_election::Timing;
use std::time::Duration;

/// Election timeouts and heartbeat, in milliseconds (the paper's §9.3
/// defaults); checked by the core's `Timing::validate`.
#[derive(Clone, Copy, Debug, clap::Args)]
pub(crate) struct TimingArgs {
    /// Shortest election timeout, in milliseconds.
    #[arg(long, default_value_t = 150)]
    pub(crate) election_min_ms: u64,
    /// Longest election timeout, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub(crate) election_max_ms: u64,
    /// Interval between a leader's heartbeats, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub(crate) heartbeat_ms: u64,
}

impl TimingArgs {
    /// The core's timing (not validated yet).
    pub(crate) fn timing(self) -> Timing {
        Timing {
            election_timeout_min: Duration::from_millis(self.election_min_ms),
            election_timeout_max: Duration::from_millis(self.election_max_ms),
            heartbeat_interval: Duration::from_millis(self.heartbeat_ms),
        }
    }
}
