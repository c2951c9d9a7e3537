//! The driver over a second, trivial transport: one that records every send
//! and delivers only what the test hands it. The same `Driver` the
//! in-process cluster runs; nothing here knows another node's deadline.
//! Paused clock: timings are exact.

use crate::support::ms;
use raft_election::storage::{Storage, StorageError};
use raft_election::{Config, HardState, Input, Message, NodeId, Role, Term, Timer, Timing};
use raft_election_runtime::driver::{Observer, Requests};
use raft_election_runtime::{Delivery, Driver, TimeoutPicker, TimeoutSource, Transport};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);

/// What the driver did to the outside world, in the order it did it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Io {
    Saved(HardState),
    Sent(Instant, NodeId, Message),
}

/// One log shared by the transport and the storage, so the order of saves
/// and sends across the two is recorded, not only each one's own order.
type IoLog = Arc<Mutex<Vec<Io>>>;

/// Sends are recorded with the instant they were made; messages come only
/// from the test's channel, and the transport closes when the test drops it.
struct RecordingTransport {
    log: IoLog,
    inbox: mpsc::Receiver<(NodeId, Message)>,
}

impl Transport for RecordingTransport {
    fn send(&mut self, to: NodeId, message: Message) -> Delivery {
        let sent = Io::Sent(Instant::now(), to, message);
        self.log.lock().unwrap().push(sent);
        Delivery::Delivered
    }

    async fn recv(&mut self) -> Option<(NodeId, Message)> {
        self.inbox.recv().await
    }
}

/// Storage that records every state it was asked to save in the shared log.
#[derive(Clone)]
struct RecordingStorage(IoLog);

impl Storage for RecordingStorage {
    fn load(&self) -> Result<HardState, StorageError> {
        let log = self.0.lock().unwrap();
        let saved = log.iter().rev().find_map(|io| match *io {
            Io::Saved(hard_state) => Some(hard_state),
            Io::Sent(..) => None,
        });
        Ok(saved.unwrap_or_default())
    }

    fn save(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        self.0.lock().unwrap().push(Io::Saved(*hard_state));
        Ok(())
    }
}

/// Remembers the role after every step, to see the node's life from outside.
#[derive(Clone, Default)]
struct Roles(Arc<Mutex<Vec<(Term, Role)>>>);

impl Observer for Roles {
    fn stepped(
        &mut self,
        _: &Config,
        _: &raft_election::Node,
        _: &Input,
        after: &raft_election::Node,
    ) {
        self.0
            .lock()
            .unwrap()
            .push((after.current_term(), after.role()));
    }
}

struct Harness {
    log: IoLog,
    roles: Roles,
    peers: mpsc::Sender<(NodeId, Message)>,
    requests: Arc<Requests>,
    task: tokio::task::JoinHandle<Result<(), raft_election_runtime::NodeError>>,
    start: Instant,
}

/// Node n0 of a 3-node cluster with election timeouts of exactly 200 ms
/// (a schedule), on the recording transport.
fn spawn_n0() -> Harness {
    let config = Config::new(N0, [N0, N1, N2], Timing::default()).unwrap();
    let log = IoLog::default();
    let (peers, inbox) = mpsc::channel(16);
    let transport = RecordingTransport {
        log: Arc::clone(&log),
        inbox,
    };
    let roles = Roles::default();
    let schedule = [(N0, vec![ms(200)])].into_iter().collect();
    let timeouts = TimeoutPicker::new(&TimeoutSource::Schedule(schedule), N0, 0);
    let driver = Driver::new(
        config,
        HardState::default(),
        RecordingStorage(Arc::clone(&log)),
        transport,
        roles.clone(),
        timeouts,
    );
    let requests = driver.requests();
    let start = Instant::now();
    let task = tokio::spawn(driver.run());
    Harness {
        log,
        roles,
        peers,
        requests,
        task,
        start,
    }
}

impl Harness {
    fn sent(&self) -> Vec<(Duration, NodeId, Message)> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter_map(|io| match *io {
                Io::Sent(at, to, message) => Some((at - self.start, to, message)),
                Io::Saved(_) => None,
            })
            .collect()
    }

    fn role(&self) -> Option<(Term, Role)> {
        self.roles.0.lock().unwrap().last().copied()
    }

    /// Closes the transport and waits for the driver to return.
    async fn close(self) {
        drop(self.peers);
        self.task.await.unwrap().unwrap();
    }
}

fn request_vote(term: u64) -> Message {
    Message::RequestVote {
        term: Term(term),
        candidate_id: N0,
        last_log_index: 0,
        last_log_term: Term(0),
        leadership_transfer: false,
    }
}

fn heartbeat(term: u64) -> Message {
    Message::AppendEntries {
        term: Term(term),
        leader_id: N0,
        round: 0,
    }
}

fn grant(term: u64) -> Message {
    Message::RequestVoteResponse {
        term: Term(term),
        vote_granted: true,
    }
}

/// The whole loop over a transport that is not the in-process network: the
/// election timer fires at its deadline, the term and self-vote are saved
/// before the requests go out, one granted vote makes a leader, and the
/// leader's heartbeats leave on the heartbeat interval.
#[tokio::test(start_paused = true)]
async fn the_driver_campaigns_wins_and_heartbeats_over_a_recording_transport() {
    let harness = spawn_n0();
    tokio::time::sleep(ms(199)).await;
    assert!(harness.sent().is_empty(), "nothing before the timeout");
    tokio::time::sleep(ms(2)).await;
    let campaigned = HardState {
        current_term: Term(1),
        voted_for: Some(N0),
    };
    let at = harness.start + ms(200);
    // Figure 2: the term and the self-vote are on stable storage before the
    // requests that depend on them leave.
    assert_eq!(
        *harness.log.lock().unwrap(),
        [
            Io::Saved(campaigned),
            Io::Sent(at, N1, request_vote(1)),
            Io::Sent(at, N2, request_vote(1)),
        ]
    );

    harness.peers.send((N1, grant(1))).await.unwrap();
    tokio::time::sleep(ms(1)).await;
    assert_eq!(harness.role(), Some((Term(1), Role::Leader)));
    tokio::time::sleep(ms(100)).await;
    let heartbeats: Vec<(Duration, NodeId)> = harness
        .sent()
        .into_iter()
        .filter(|(_, _, m)| *m == heartbeat(1))
        .map(|(at, to, _)| (at, to))
        .collect();
    // On winning, then every 50 ms (Figure 2: "upon election ... repeat
    // during idle periods").
    let expected: Vec<(Duration, NodeId)> = [201, 251, 301]
        .into_iter()
        .flat_map(|at| [(ms(at), N1), (ms(at), N2)])
        .collect();
    assert_eq!(heartbeats, expected);
    harness.close().await;
}

/// A local request to fire the election timer is stepped at once, and the
/// campaign it starts replaces the armed timer: the expiry scheduled for
/// 200 ms does not start a second campaign, the new one (50 + 200 ms) does.
#[tokio::test(start_paused = true)]
async fn a_requested_election_timeout_campaigns_at_once_and_replaces_the_armed_one() {
    let harness = spawn_n0();
    tokio::time::sleep(ms(50)).await;
    harness
        .requests
        .send(Input::Timeout(Timer::Election))
        .unwrap();
    tokio::time::sleep(ms(1)).await;
    assert_eq!(harness.role(), Some((Term(1), Role::Candidate)));
    assert_eq!(
        harness.sent(),
        [(ms(50), N1, request_vote(1)), (ms(50), N2, request_vote(1))]
    );
    // The campaign armed a new 200 ms timeout: the next one is at 250 ms.
    tokio::time::sleep(ms(198)).await;
    assert_eq!(harness.role(), Some((Term(1), Role::Candidate)));
    tokio::time::sleep(ms(2)).await;
    assert_eq!(harness.role(), Some((Term(2), Role::Candidate)));
    harness.close().await;
}

/// A message arriving on the transport is stepped like any input, and the
/// driver returns cleanly when the transport closes.
#[tokio::test(start_paused = true)]
async fn a_heartbeat_from_a_leader_keeps_the_node_a_follower_until_the_transport_closes() {
    let harness = spawn_n0();
    for _ in 0..10 {
        tokio::time::sleep(ms(100)).await;
        let from_n1 = Message::AppendEntries {
            term: Term(1),
            leader_id: N1,
            round: 0,
        };
        harness.peers.send((N1, from_n1)).await.unwrap();
    }
    tokio::time::sleep(ms(1)).await;
    assert_eq!(harness.role(), Some((Term(1), Role::Follower)));
    let acks = harness.sent();
    assert_eq!(
        acks.len(),
        10,
        "one acknowledgement per heartbeat: {acks:?}"
    );
    assert!(acks.iter().all(|(_, to, m)| *to == N1
        && *m
            == Message::AppendEntriesResponse {
                term: Term(1),
                success: true,
                last_log_index: 0,
                last_log_term: Term(0),
                round: 0
            }));
    harness.close().await;
}
