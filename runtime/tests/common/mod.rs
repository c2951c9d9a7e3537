//! Helpers shared by the runtime's integration tests.
#![allow(dead_code)] // Each test file uses its own subset.

use raft_election::storage::{FileStorage, Storage};
use raft_election::{ClusterId, HardState, Message, NodeId, Term};
use raft_election_runtime::{ClusterHandle, Delivery, Server, Transport};
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;

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

/// A transport the test feeds by hand: it delivers what the test sends on
/// its channel, and its sends go nowhere. Closes when the test drops the
/// channel.
pub(crate) struct Fed {
    pub(crate) inbox: mpsc::Receiver<(NodeId, Message)>,
}

impl Transport for Fed {
    fn send(&mut self, _to: NodeId, _message: Message) -> Delivery {
        Delivery::Delivered
    }

    async fn recv(&mut self) -> Option<(NodeId, Message)> {
        self.inbox.recv().await
    }
}

/// A server of n1 fed through [`Fed`] times out, campaigns in t1 and wins
/// it with n2's vote, sent on `peers`. Waits at most a minute of (paused)
/// time for each.
pub(crate) async fn elect(server: &Server, peers: &mpsc::Sender<(NodeId, Message)>) {
    const DEADLINE: Duration = Duration::from_secs(60);
    let mut leadership = server.leadership();
    tokio::time::timeout(DEADLINE, leadership.wait_for(|l| l.term == Term(1)))
        .await
        .expect("n1 campaigns")
        .unwrap();
    let vote = Message::RequestVoteResponse {
        term: Term(1),
        vote_granted: true,
    };
    peers.send((NodeId(2), vote)).await.unwrap();
    tokio::time::timeout(DEADLINE, leadership.wait_for(|l| l.is_me))
        .await
        .expect("n1 leads t1")
        .unwrap();
}
