//! loom checks of the runtime's cross-task shared state: every interleaving
//! of the threads below is explored (loom cannot run Tokio itself, so these
//! are the pieces outside Tokio's channels: the link table, the status board,
//! the safety monitor and the event log).
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test --release -p raft-election-runtime --lib loom
//! ```
//!
//! Unit tests of the crate, not integration tests: the shared types they
//! check are crate-private.
//!
//! Each test states its property in its name. The last two run a deliberately
//! naive variant, written here, and require loom to find the race in it: a
//! check that passes on the real types and also on a broken one proves nothing.

use crate::cluster::event_log::EventLog;
use crate::cluster::links::{Links, Route};
use crate::cluster::monitor::SafetyMonitor;
use crate::cluster::status::StatusBoard;
use crate::cluster::{Event, EventKind, NodeStatus};
use crate::transport::Delivery;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;
use raft_election::invariants::{History, Invariant};
use raft_election::{Config, Input, LogSummary, Message, Node, NodeId, Role, Term, Timing};
use std::collections::BTreeSet;
use std::time::Duration;

/// What the link table does with a message from `from` to `to`: its loss,
/// or `None` if it passes.
fn fate(links: &Links, from: NodeId, to: NodeId) -> Option<Delivery> {
    match links.route(from, to) {
        Route::Lost(delivery) => Some(delivery),
        Route::Deliver { .. } => None,
    }
}

const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);

fn status(term: u64) -> NodeStatus {
    NodeStatus {
        role: Role::Follower,
        term: Term(term),
        leader: None,
        voted_for: None,
        transfer_target: None,
    }
}

/// Once `crash` has returned, no later `route` lets a message reach the node.
#[test]
fn a_crash_is_never_lost_by_a_concurrent_sender() {
    loom::model(|| {
        let links = Arc::new(Links::new(3, 0));
        let crashed = Arc::new(AtomicBool::new(false));
        let handle = {
            let (links, crashed) = (links.clone(), crashed.clone());
            thread::spawn(move || {
                links.mark_down(N1).expect("n1 is up");
                crashed.store(true, Ordering::Release);
            })
        };
        // A driver sending to n1 while the handle crashes it.
        let seen_crashed = crashed.load(Ordering::Acquire);
        let delivery = fate(&links, N0, N1);
        if seen_crashed {
            assert_eq!(
                delivery,
                Some(Delivery::Down),
                "sent to n1 after its crash returned"
            );
        }
        handle.join().unwrap();
        assert_eq!(fate(&links, N0, N1), Some(Delivery::Down));
        assert!(!links.is_up(N1));
    });
}

/// A partition and a crash made at the same time both take effect.
#[test]
fn a_partition_and_a_crash_made_concurrently_both_hold_afterwards() {
    loom::model(|| {
        let links = Arc::new(Links::new(3, 0));
        let partitioner = {
            let links = links.clone();
            thread::spawn(move || {
                let groups = [BTreeSet::from([N0]), BTreeSet::from([N1, N2])];
                links.partition(&groups).expect("valid groups");
            })
        };
        links.mark_down(N2).expect("n2 is up");
        partitioner.join().unwrap();
        assert_eq!(fate(&links, N0, N1), Some(Delivery::Cut));
        assert_eq!(fate(&links, N1, N2), Some(Delivery::Down));
        links.heal();
        assert_eq!(fate(&links, N0, N1), None);
    });
}

/// A dying node's last report, racing its crash, never puts it back on the board.
#[test]
fn a_crashed_node_never_reappears_on_the_status_board() {
    loom::model(|| {
        let config = Config::cluster(3, Timing::default()).unwrap().remove(0);
        let board = Arc::new(StatusBoard::new(&config));
        board.revive(N1, status(1));
        let late_report = {
            let board = board.clone();
            thread::spawn(move || {
                board.update(N1, status(2));
            })
        };
        board.crash(N1);
        late_report.join().unwrap();
        assert!(
            board.snapshot().get(N1).is_none(),
            "a dead node is on the board"
        );
    });
}

/// Pushes from two drivers at once are both kept.
#[test]
fn concurrent_events_are_never_lost() {
    loom::model(|| {
        let log = Arc::new(EventLog::default());
        let event = |node| Event {
            at: Duration::ZERO,
            node,
            term: Term(1),
            kind: EventKind::Crashed,
        };
        let other = {
            let log = log.clone();
            thread::spawn(move || log.push(event(N1)))
        };
        log.push(event(N0));
        other.join().unwrap();
        let nodes: BTreeSet<NodeId> = log.snapshot().iter().map(|e| e.node).collect();
        assert_eq!(nodes, BTreeSet::from([N0, N1]));
    });
}

/// Two votes of one node in one term, reported by two tasks at once (a crashed
/// incarnation's late report racing the restarted one's): one of them alone
/// is fine, both together break "one vote per term", and the monitor must
/// see it in every interleaving.
#[test]
fn a_double_vote_reported_by_two_tasks_at_once_is_always_detected() {
    loom::model(|| {
        let monitor = Arc::new(SafetyMonitor::new(&vote_step(N0).0));
        let (first, second) = (vote_step(N0), vote_step(N2));
        let other = {
            let monitor = monitor.clone();
            thread::spawn(move || {
                let (config, before, input, after) = second;
                let _ = monitor.record_step(&config, &before, &input, &after);
            })
        };
        let (config, before, input, after) = first;
        let _ = monitor.record_step(&config, &before, &input, &after);
        other.join().unwrap();
        let violation = monitor.violation().expect("the double vote went unnoticed");
        assert_eq!(violation.invariant, Invariant::OneVotePerTerm);
    });
}

/// n1, a fresh follower, granting its vote of term 1 to `candidate`.
fn vote_step(candidate: NodeId) -> (Config, Node, Input, Node) {
    let config = Config::cluster(3, Timing::default()).unwrap().remove(1);
    let before = Node::new();
    let input = Input::Receive {
        from: candidate,
        message: Message::RequestVote {
            term: Term(1),
            candidate_id: candidate,
            last_log_index: 0,
            last_log_term: Term(0),
            leadership_transfer: false,
        },
    };
    let mut after = before.clone();
    after.step(&config, input, &mut Vec::new());
    assert_eq!(after.voted_for(), Some(candidate));
    (config, before, input, after)
}

/// The naive monitor checks a copy of the history and writes it back under a
/// second lock: a lost update. loom must find the interleaving that loses a vote.
#[test]
fn loom_catches_a_monitor_that_checks_a_copy_and_writes_it_back() {
    struct NaiveMonitor {
        history: Mutex<History>,
        violated: Mutex<bool>,
    }
    impl NaiveMonitor {
        fn record_step(&self, step: &(Config, Node, Input, Node)) {
            let (config, before, input, after) = step;
            let mut copy = self.history.lock().unwrap().clone();
            if copy.record_step(config, before, input, after).is_err() {
                *self.violated.lock().unwrap() = true;
            }
            *self.history.lock().unwrap() = copy;
        }
    }
    let outcome = std::panic::catch_unwind(|| {
        loom::model(|| {
            let monitor = Arc::new(NaiveMonitor {
                history: Mutex::new(History::new(
                    [N0, N1, N2].map(|id| (id, LogSummary::default())),
                )),
                violated: Mutex::new(false),
            });
            let other = {
                let monitor = monitor.clone();
                thread::spawn(move || monitor.record_step(&vote_step(N2)))
            };
            monitor.record_step(&vote_step(N0));
            other.join().unwrap();
            assert!(*monitor.violated.lock().unwrap(), "double vote lost");
        });
    });
    assert_found_race(outcome, "double vote lost");
}

/// The naive board checks "is it down?" and inserts under two separate locks:
/// a crash between the two lets the dead node reappear. loom must find it.
#[test]
fn loom_catches_a_board_that_checks_and_inserts_under_two_locks() {
    struct NaiveBoard {
        down: Mutex<BTreeSet<NodeId>>,
        live: Mutex<BTreeSet<NodeId>>,
    }
    let outcome = std::panic::catch_unwind(|| {
        loom::model(|| {
            let board = Arc::new(NaiveBoard {
                down: Mutex::new(BTreeSet::new()),
                live: Mutex::new(BTreeSet::from([N1])),
            });
            let late_report = {
                let board = board.clone();
                thread::spawn(move || {
                    let is_down = board.down.lock().unwrap().contains(&N1);
                    if !is_down {
                        board.live.lock().unwrap().insert(N1);
                    }
                })
            };
            board.live.lock().unwrap().remove(&N1);
            board.down.lock().unwrap().insert(N1);
            late_report.join().unwrap();
            assert!(
                !board.live.lock().unwrap().contains(&N1),
                "dead node on the board"
            );
        });
    });
    assert_found_race(outcome, "dead node on the board");
}

/// Requires that loom panicked, and with the naive variant's own assertion
/// (not some unrelated failure).
fn assert_found_race(outcome: std::thread::Result<()>, expected: &str) {
    let payload = outcome.expect_err("loom explored no interleaving with the race");
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    assert!(
        message.contains(expected),
        "loom failed for another reason: {message}"
    );
}
