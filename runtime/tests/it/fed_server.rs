//! What the server tests (server, leader lease) share: a server of n1 fed
//! by hand and elected.

use raft_election::{Message, NodeId, Term};
use raft_election_runtime::{Delivery, Server, Transport};
use std::time::Duration;
use tokio::sync::mpsc;

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
