//! The leader lease as an embedding application sees it:
//! `Server::leadership()`'s `lease_until` and `has_lease()`. Node n1 of
//! {n1, n2, n3} with the lease on, over a transport the test feeds by hand;
//! Tokio's paused clock, so every instant is exact.

use crate::fed_server::{Fed, elect};
use raft_election::storage::MemStorage;
use raft_election::{ClockDrift, Config, Message, NodeId, Term, Timing};
use raft_election_runtime::{Server, TimeoutSource};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);

/// Of virtual time.
const DEADLINE: Duration = Duration::from_secs(60);

fn ack(round: u64) -> Message {
    Message::AppendEntriesResponse {
        term: Term(1),
        success: true,
        last_log_index: 0,
        last_log_term: Term(0),
        round,
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_leader_holds_the_lease_from_its_acknowledged_round_start_until_it_runs_out_or_steps_down()
 {
    let config = Config::new(N1, [N1, N2, NodeId(3)], Timing::default())
        .unwrap()
        .with_leader_lease(ClockDrift::DEFAULT)
        .unwrap();
    let duration = config.lease_duration().unwrap();
    let (peers, inbox) = mpsc::channel(16);
    let server = Server::builder(config)
        .storage(MemStorage::new())
        .transport(Fed { inbox })
        .timeouts(TimeoutSource::Seeded(1))
        .spawn()
        .unwrap();
    elect(&server, &peers).await;
    let mut leadership = server.leadership();
    // Round 1 started with the election; no one acknowledged it yet.
    let elected = Instant::now();
    assert!(!leadership.borrow().has_lease());

    // n2 acknowledges round 1 later: the lease counts from round 1's start.
    tokio::time::sleep(Duration::from_millis(30)).await;
    peers.send((N2, ack(1))).await.unwrap();
    let now = *timeout(DEADLINE, leadership.wait_for(|l| l.lease_until.is_some()))
        .await
        .expect("a lease")
        .unwrap();
    assert_eq!(now.lease_until, Some(elected + duration));
    assert!(now.has_lease());

    // No acknowledgement of later rounds: the lease runs out by itself.
    tokio::time::sleep_until(elected + duration).await;
    assert!(!leadership.borrow().has_lease(), "the lease ran out");

    // A higher term deposes n1: no lease at all.
    let newer = Message::AppendEntries {
        term: Term(2),
        leader_id: N2,
        round: 1,
    };
    peers.send((N2, newer)).await.unwrap();
    let last = *timeout(DEADLINE, leadership.wait_for(|l| !l.is_me))
        .await
        .expect("n1 steps down")
        .unwrap();
    assert_eq!(last.lease_until, None);
    drop(peers);
    server.shutdown().await.unwrap();
}
