//! What the tests share: durations in milliseconds, reading a node's file,
//! waiting for a new leader, and ending a cluster's run with its safety
//! checked.

use raft_election::storage::Storage;
use raft_election::{ClusterId, HardState, NodeId, Term};
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

/// The leader that replaces `old`, leader of `old_term`: another node, in
/// a higher term, elected within `within`. Panics naming `context` if
/// none is.
pub(crate) async fn successor(
    cluster: &ClusterHandle,
    (old, old_term): (NodeId, Term),
    within: Duration,
    context: &str,
) -> (NodeId, Term) {
    let (new, new_term) = cluster
        .wait_for_leader_after(old_term, within)
        .await
        .unwrap_or_else(|e| panic!("{context}: {e}"));
    assert_ne!(new, old, "{context}");
    assert!(new_term > old_term, "{context}");
    (new, new_term)
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
