//! What the tests share: durations in milliseconds, reading a node's file,
//! and ending a cluster's run with its safety checked.

use raft_election::storage::Storage;
use raft_election::{ClusterId, HardState, NodeId};
use raft_election_runtime::{ClusterHandle, FileStorage};
use std::path::Path;
use std::time::Duration;

pub(crate) fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// What node `id`'s file in `dir` (of cluster 1, the in-process default)
/// holds, read by a fresh handle.
pub(crate) fn on_disk(dir: &Path, id: NodeId) -> HardState {
    FileStorage::open(dir, ClusterId(1), id)
        .load()
        .unwrap_or_else(|e| panic!("{id}: {e}"))
}

/// Every cluster-wide invariant held over the whole run (election safety
/// among them), then every task ended cleanly.
pub(crate) async fn finish(cluster: ClusterHandle, context: &str) {
    if let Err(violation) = cluster.check_safety() {
        panic!("{context}: {violation}");
    }
    if let Err(e) = cluster.shutdown().await {
        panic!("{context}: {e}");
    }
}
