//! The leader lease's rules (thesis §6.4.1; proofs.md, "Leader lease"), one
//! node at a time: node `n0` of a 3-node cluster with the default features
//! and a 10% drift bound, driven through its public `step`. That no two
//! nodes ever hold a lease at once is checked over real time by
//! `raft_election_sim::lease_runs`.

use raft_election::config::BadClockDrift;
use raft_election::{
    ClockDrift, Config, ConfigError, Features, HardState, Input, LogSummary, Message, Node, NodeId,
    Output, Role, Term, Timer, Timing,
};
use std::time::Duration;

const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);

fn config() -> Config {
    Config::new(N0, [N0, N1, N2], Timing::default())
        .expect("valid config")
        .with_leader_lease(ClockDrift::DEFAULT)
        .expect("the default features guard votes")
}

fn step(node: &mut Node, input: Input) -> Vec<Output> {
    let mut out = Vec::new();
    node.step(&config(), input, &mut out);
    out
}

fn ack(term: u64, round: u64) -> Input {
    Input::Receive {
        from: N1,
        message: Message::AppendEntriesResponse {
            term: Term(term),
            success: true,
            last_log_index: 0,
            last_log_term: Term(0),
            round,
        },
    }
}

fn request_vote(from: NodeId, term: u64, leadership_transfer: bool) -> Input {
    Input::Receive {
        from,
        message: Message::RequestVote {
            term: Term(term),
            candidate_id: from,
            last_log_index: 0,
            last_log_term: Term(0),
            leadership_transfer,
        },
    }
}

fn granted(out: &[Output]) -> bool {
    out.iter().any(|o| {
        matches!(
            o,
            Output::Send {
                message: Message::RequestVoteResponse {
                    vote_granted: true,
                    ..
                },
                ..
            }
        )
    })
}

/// n0 elected in term 1 by n1's vote: it has started round 1.
fn leader() -> Node {
    let mut node = Node::new();
    step(&mut node, Input::Start);
    step(&mut node, Input::Timeout(Timer::Lease));
    step(&mut node, Input::Timeout(Timer::Election));
    let out = step(
        &mut node,
        Input::Receive {
            from: N1,
            message: Message::RequestVoteResponse {
                term: Term(1),
                vote_granted: true,
            },
        },
    );
    assert_eq!(node.role(), Role::Leader);
    assert!(out.contains(&Output::RoundStarted { round: 1 }), "{out:?}");
    node
}

#[test]
fn the_lease_is_the_minimum_election_timeout_divided_by_one_plus_the_drift_bound() {
    // 150 ms / 1.1, rounded down to the nanosecond.
    assert_eq!(
        config().lease_duration(),
        Some(Duration::from_nanos(136_363_636))
    );
    assert_eq!("10%".parse(), Ok(ClockDrift::DEFAULT));
    assert_eq!("0.05%".parse(), Ok(ClockDrift(500)));
    assert_eq!(ClockDrift(500).to_string(), "0.05%");
    assert!("101%".parse::<ClockDrift>().is_err());
    assert!("-1%".parse::<ClockDrift>().is_err());
    assert!("ten".parse::<ClockDrift>().is_err());
}

#[test]
fn a_drift_bound_takes_at_most_four_decimals_and_only_digits_after_the_point() {
    assert_eq!("0.1234%".parse(), Ok(ClockDrift(1_234)));
    assert_eq!("1.5".parse(), Ok(ClockDrift(15_000)));
    for bad in ["0.12345%", "1.12345%", "1.+5%", "1.5x%", ".5%", "%", ""] {
        assert_eq!(
            bad.parse::<ClockDrift>(),
            Err(BadClockDrift(bad.to_owned())),
            "{bad:?}"
        );
    }
}

#[test]
fn the_lease_takes_drift_bounds_up_to_one_hundred_percent_and_reports_the_one_it_was_given() {
    let base = Config::new(N0, [N0, N1, N2], Timing::default()).unwrap();
    assert_eq!(base.leader_lease(), None);
    let with = |drift| base.clone().with_leader_lease(drift);
    assert_eq!(
        with(ClockDrift(500)).unwrap().leader_lease(),
        Some(ClockDrift(500))
    );
    assert_eq!(
        with(ClockDrift::MAX).unwrap().leader_lease(),
        Some(ClockDrift::MAX)
    );
    let too_large = ClockDrift(ClockDrift::MAX.0 + 1);
    assert_eq!(
        with(too_large).unwrap_err(),
        ConfigError::DriftTooLarge(too_large)
    );
}

#[test]
fn a_lease_without_lease_guarded_votes_is_refused() {
    let err = Config::new(N0, [N0, N1, N2], Timing::default())
        .unwrap()
        .with_features(Features::NONE)
        .with_leader_lease(ClockDrift::DEFAULT)
        .unwrap_err();
    assert_eq!(err, ConfigError::LeaseWithoutGuardedVotes);
}

#[test]
fn features_that_guard_votes_and_the_lease_give_the_same_config_in_either_order() {
    let base = Config::new(N0, [N0, N1, N2], Timing::default()).unwrap();
    let lease = |config: Config| config.with_leader_lease(ClockDrift(200_000)).unwrap();
    let guarding = Features::combinations().filter(|f| f.lease_guarded_votes);
    for features in guarding {
        let features_first = lease(base.clone().with_features(features));
        let lease_first = lease(base.clone()).with_features(features);
        assert_eq!(lease_first, features_first, "{features}");
        assert_eq!(lease_first.features(), features);
        assert_eq!(lease_first.leader_lease(), Some(ClockDrift(200_000)));
        assert_eq!(
            lease_first.lease_duration(),
            Some(ClockDrift(200_000).shorten(Timing::default().election_timeout_min))
        );
    }
}

#[test]
#[should_panic(expected = "the leader lease needs lease-guarded votes")]
fn features_that_turn_lease_guarded_votes_off_under_a_lease_are_refused() {
    let features = Features {
        lease_guarded_votes: false,
        ..Features::ALL
    };
    let _ = config().with_features(features);
}

#[test]
fn the_round_starts_before_its_heartbeats_leave_and_the_lease_names_that_round() {
    let mut node = leader();
    let out = step(&mut node, Input::Timeout(Timer::Heartbeat));
    assert_eq!(out[0], Output::RoundStarted { round: 2 });
    assert!(matches!(
        out[1],
        Output::Send {
            message: Message::AppendEntries { round: 2, .. },
            ..
        }
    ));
    // n1 acknowledges round 1 late, after round 2 began: the lease is
    // measured from round 1's start, not from round 2 nor from now.
    let out = step(&mut node, ack(1, 1));
    let duration = config().lease_duration().unwrap();
    assert_eq!(out, [Output::LeaseExtended { round: 1, duration }]);
    assert_eq!(node.lease_round(), Some(1));
    // A duplicate extends nothing; round 2's acknowledgement does.
    assert!(step(&mut node, ack(1, 1)).is_empty());
    assert_eq!(
        step(&mut node, ack(1, 2)),
        [Output::LeaseExtended { round: 2, duration }]
    );
}

#[test]
fn an_acknowledgement_of_a_round_not_yet_started_extends_nothing() {
    let mut node = leader();
    assert!(step(&mut node, ack(1, 7)).is_empty());
    assert_eq!(node.lease_round(), None);
}

#[test]
fn an_acknowledgement_of_round_zero_extends_nothing() {
    // Rounds count from 1; 0 is what a response carries without the lease.
    let mut node = leader();
    assert!(step(&mut node, ack(1, 0)).is_empty());
    assert_eq!(node.lease_round(), None);
}

#[test]
fn a_leader_gives_its_lease_up_before_it_sends_timeout_now_and_never_holds_it_again_that_term() {
    let mut node = leader();
    step(&mut node, ack(1, 1));
    step(&mut node, Input::TransferLeadership { to: N1 });
    let out = step(&mut node, ack(1, 1));
    let revoked = out.iter().position(|o| *o == Output::LeaseRevoked);
    let timeout_now = out.iter().position(|o| {
        matches!(
            o,
            Output::Send {
                message: Message::TimeoutNow { .. },
                ..
            }
        )
    });
    assert!(revoked.is_some() && revoked < timeout_now, "{out:?}");
    // The transfer is abandoned; the TimeoutNow may still arrive at any time.
    step(&mut node, Input::Timeout(Timer::Transfer));
    step(&mut node, Input::Timeout(Timer::Heartbeat));
    let out = step(&mut node, ack(1, 2));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::LeaseExtended { .. })),
        "{out:?}"
    );
}

#[test]
fn a_leader_that_steps_down_revokes_its_lease() {
    let mut node = leader();
    step(&mut node, ack(1, 1));
    let out = step(
        &mut node,
        Input::Receive {
            from: N2,
            message: Message::AppendEntries {
                term: Term(5),
                leader_id: N2,
                round: 1,
            },
        },
    );
    assert!(out.contains(&Output::LeaseRevoked), "{out:?}");
    assert_eq!(node.lease_round(), None);
}

#[test]
fn a_restarted_node_votes_for_no_one_until_the_minimum_election_timeout_has_passed() {
    // It may have heard a leader just before it went down.
    let mut node = Node::restore(
        HardState {
            current_term: Term(3),
            voted_for: None,
        },
        LogSummary::default(),
    );
    let out = step(&mut node, Input::Start);
    assert!(out.contains(&Output::SetTimer {
        timer: Timer::Lease,
        min: Timing::default().election_timeout_min,
        max: Timing::default().election_timeout_min,
    }));
    assert!(!granted(&step(&mut node, request_vote(N1, 4, false))));
    assert_eq!(node.current_term(), Term(3), "nor adopts the term");
    step(&mut node, Input::Timeout(Timer::Lease));
    assert!(granted(&step(&mut node, request_vote(N1, 4, false))));
}

#[test]
fn a_follower_keeps_its_vote_guard_when_a_late_reply_raises_its_term() {
    let mut node = Node::new();
    step(&mut node, Input::Start);
    step(&mut node, Input::Timeout(Timer::Lease));
    step(
        &mut node,
        Input::Receive {
            from: N1,
            message: Message::AppendEntries {
                term: Term(1),
                leader_id: N1,
                round: 4,
            },
        },
    );
    // A reply to a request of long ago carries a higher term: adopted...
    step(
        &mut node,
        Input::Receive {
            from: N2,
            message: Message::RequestVoteResponse {
                term: Term(2),
                vote_granted: false,
            },
        },
    );
    assert_eq!(node.current_term(), Term(2));
    // ...but n1 heard less than a minimum election timeout ago may still
    // count on this vote: n2's campaign for term 2 gets none.
    assert!(!granted(&step(&mut node, request_vote(N2, 2, false))));
    // A transfer's candidate does: only a leader that gave its lease up asks.
    assert!(granted(&step(&mut node, request_vote(N2, 2, true))));
}

#[test]
fn an_election_timeout_within_the_vote_guard_waits_instead_of_campaigning() {
    let mut node = Node::new();
    step(&mut node, Input::Start);
    // Asked for by hand, or tied with the guard's own expiry: no campaign.
    let out = step(&mut node, Input::Timeout(Timer::Election));
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.current_term(), Term(0));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::SetTimer {
            timer: Timer::Election,
            ..
        }
    )));
    // Once the guard has run out, the next one campaigns.
    step(&mut node, Input::Timeout(Timer::Lease));
    step(&mut node, Input::Timeout(Timer::Election));
    assert_eq!(node.role(), Role::Candidate);
}
