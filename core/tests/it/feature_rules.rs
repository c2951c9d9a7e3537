//! The transition rules of the election features' decisions
//! (`invariants::check_transition`, proofs.md 10): a transfer request, the
//! acknowledgement that decides a transfer, its abandonment, a TimeoutNow
//! received, the fields of every message a feature sends, the heartbeat
//! rounds of the leader lease and the length of every timer. For each, the
//! core's own step passes, and a plausible wrong step (the core's outputs
//! or state with one thing changed) is caught, naming its rule.

use raft_election::invariants::{Invariant, check_transition};
use raft_election::{
    ClockDrift, Config, Features, HardState, Input, LogSummary, Message, Node, NodeId, Output,
    Role, Term, Timer, Timing,
};

const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);

const TRANSFER: Features = Features {
    pre_vote: false,
    check_quorum: false,
    lease_guarded_votes: true,
    leadership_transfer: true,
};

/// Node `n0`'s configuration in a 3-node cluster with `features`.
fn config(features: Features) -> Config {
    Config::new(N0, [N0, N1, N2], Timing::default())
        .expect("valid config")
        .with_features(features)
}

/// [`config`] with the leader lease on.
fn leased(features: Features) -> Config {
    config(features)
        .with_leader_lease(ClockDrift::DEFAULT)
        .expect("the features guard votes")
}

/// A log of `index` entries, the last of `term`.
fn log(index: u64, term: u64) -> LogSummary {
    LogSummary {
        last_log_index: index,
        last_log_term: Term(term),
    }
}

/// The core's step from `before` on `input`, which must follow its rule.
fn core_step(config: &Config, before: &Node, input: Input) -> (Node, Vec<Output>) {
    let mut after = before.clone();
    let mut outputs = Vec::new();
    after.step_without_assertions(config, input, &mut outputs);
    assert_eq!(
        check_transition(config, before, &input, &after, &outputs),
        Ok(()),
        "the core's own step on {input:?}"
    );
    (after, outputs)
}

/// Asserts the step from `before` on `input` to `after` with `outputs`
/// breaks a transition rule whose text contains `rule`.
fn caught(
    config: &Config,
    (before, input): (&Node, Input),
    (after, outputs): (&Node, &[Output]),
    rule: &str,
) {
    let violation = check_transition(config, before, &input, after, outputs)
        .expect_err("the wrong step was not caught");
    assert_eq!(violation.invariant, Invariant::TransitionRules);
    assert!(violation.detail.contains(rule), "{violation}");
}

fn receive(from: NodeId, message: Message) -> Input {
    Input::Receive { from, message }
}

/// An acknowledgement of heartbeat `round` of t1 from `from`, whose log is `log`.
fn ack(from: NodeId, round: u64, log: LogSummary) -> Input {
    receive(
        from,
        Message::AppendEntriesResponse {
            term: Term(1),
            success: true,
            last_log_index: log.last_log_index,
            last_log_term: log.last_log_term,
            round,
        },
    )
}

/// `n0` with log `log`, elected leader of t1 by its own vote and `n1`'s.
fn leader(config: &Config, log: LogSummary) -> Node {
    let node = Node::restore(HardState::default(), log);
    let (candidate, _) = core_step(config, &node, Input::Timeout(Timer::Election));
    let grant = receive(
        N1,
        Message::RequestVoteResponse {
            term: Term(1),
            vote_granted: true,
        },
    );
    let (leader, _) = core_step(config, &candidate, grant);
    assert_eq!(leader.role(), Role::Leader);
    leader
}

/// `n0`, leader of t1 with log `log`, transferring to `n1`.
fn transferring(config: &Config, log: LogSummary) -> Node {
    let (node, _) = core_step(
        config,
        &leader(config, log),
        Input::TransferLeadership { to: N1 },
    );
    assert_eq!(node.transfer_target(), Some(N1));
    node
}

/// The outputs with every one `drop` picks taken out.
fn without(outputs: &[Output], drop: impl Fn(&Output) -> bool) -> Vec<Output> {
    outputs.iter().copied().filter(|o| !drop(o)).collect()
}

/// The outputs with every RequestVote's transfer flag cleared.
fn without_transfer_flag(outputs: &[Output]) -> Vec<Output> {
    outputs
        .iter()
        .map(|&o| match o {
            Output::Send {
                to,
                message:
                    Message::RequestVote {
                        term,
                        candidate_id,
                        last_log_index,
                        last_log_term,
                        ..
                    },
            } => Output::Send {
                to,
                message: Message::RequestVote {
                    term,
                    candidate_id,
                    last_log_index,
                    last_log_term,
                    leadership_transfer: false,
                },
            },
            other => other,
        })
        .collect()
}

/// `outputs` and then `extra`.
fn with(outputs: &[Output], extra: Output) -> Vec<Output> {
    let mut more = outputs.to_vec();
    more.push(extra);
    more
}

/// Sending `to` a TimeoutNow of term `term`.
fn send_timeout_now(to: NodeId, term: u64) -> Output {
    Output::Send {
        to,
        message: Message::TimeoutNow { term: Term(term) },
    }
}

fn is_timeout_now(output: &Output) -> bool {
    matches!(
        output,
        Output::Send {
            message: Message::TimeoutNow { .. },
            ..
        }
    )
}

#[test]
fn a_transfer_request_that_skips_the_probe_or_moves_the_deadline_is_caught() {
    let config = &config(TRANSFER);
    let leader = leader(config, log(0, 0));
    let request = Input::TransferLeadership { to: N1 };
    let (target_taken, outputs) = core_step(config, &leader, request);
    // Waiting for the next heartbeat to learn the target's log.
    let no_probe = without(&outputs, |o| matches!(o, Output::Send { .. }));
    let rule = "asks the target for its log at once";
    caught(config, (&leader, request), (&target_taken, &no_probe), rule);
    // Sending TimeoutNow before the target's log is known.
    let eager = with(&outputs, send_timeout_now(N1, 1));
    caught(config, (&leader, request), (&target_taken, &eager), rule);
    // Asking again for the same target extends no deadline.
    let (_, repeat) = core_step(config, &target_taken, request);
    assert_eq!(repeat, []);
    let rule = "changes nothing unless";
    caught(
        config,
        (&target_taken, request),
        (&target_taken, &outputs),
        rule,
    );
    // A request for itself is refused.
    let itself = Input::TransferLeadership { to: N0 };
    caught(config, (&leader, itself), (&leader, &outputs), rule);
}

#[test]
fn a_transfer_decided_other_than_by_the_targets_log_is_caught() {
    let config = &config(TRANSFER);
    let before = transferring(config, log(1, 0));
    // The target is behind (§5.4.1): the core refuses the transfer at once.
    let behind = ack(N1, 0, log(0, 0));
    let (refused, outputs) = core_step(config, &before, behind);
    assert_eq!(refused.transfer_target(), None);
    assert!(!outputs.iter().any(is_timeout_now));
    let asked = with(&outputs, send_timeout_now(N1, 1));
    let rule = "behind the leader's refuses the transfer";
    caught(config, (&before, behind), (&before, &asked), rule);
    // A target as up to date, on a longer log of a later term: TimeoutNow.
    let ahead = ack(N1, 0, log(1, 1));
    let (asking, outputs) = core_step(config, &before, ahead);
    assert!(outputs.iter().any(is_timeout_now));
    let silent = without(&outputs, is_timeout_now);
    let rule = "is sent one TimeoutNow of the leader's term";
    caught(config, (&before, ahead), (&asking, &silent), rule);
    let next_term = [send_timeout_now(N1, 2)];
    caught(config, (&before, ahead), (&asking, &next_term), rule);
    // Another follower's acknowledgement is no reason to hand over to it.
    let other = ack(N2, 0, log(1, 0));
    let to_other = [send_timeout_now(N2, 1)];
    let rule = "only the transfer target's acknowledgement";
    caught(config, (&before, other), (&before, &to_other), rule);
}

#[test]
fn a_transfer_that_loses_its_deadline_before_it_ends_is_caught() {
    let config = &config(TRANSFER);
    let before = transferring(config, log(0, 0));
    let equal = ack(N1, 0, log(0, 0));
    let (asking, outputs) = core_step(config, &before, equal);
    assert_eq!(asking.transfer_target(), Some(N1));
    // The leader takes the TimeoutNow for the end of the transfer: were it
    // lost, the transfer would never be abandoned.
    let done = with(&outputs, Output::CancelTimer(Timer::Transfer));
    let rule = "keeps its target and its deadline";
    caught(config, (&before, equal), (&asking, &done), rule);
    // The deadline fires after the TimeoutNow went out: abandoned anyway.
    let deadline = Input::Timeout(Timer::Transfer);
    let (abandoned, _) = core_step(config, &asking, deadline);
    assert_eq!(abandoned.transfer_target(), None);
    let rule = "abandons a transfer that timed out";
    caught(config, (&asking, deadline), (&asking, &[]), rule);
    // A leader deposed mid-transfer cancels the deadline.
    let higher = receive(
        N2,
        Message::RequestVoteResponse {
            term: Term(3),
            vote_granted: false,
        },
    );
    let (deposed, outputs) = core_step(config, &asking, higher);
    assert_eq!(deposed.role(), Role::Follower);
    let kept = without(&outputs, |o| *o == Output::CancelTimer(Timer::Transfer));
    let rule = "cancels its deadline";
    caught(config, (&asking, higher), (&deposed, &kept), rule);
}

#[test]
fn a_timeout_now_campaign_through_pre_vote_or_on_an_old_timer_is_caught() {
    let config = &config(Features::ALL);
    // A follower of n1 in t1, in its lease: it heard n1 just now.
    let heartbeat = receive(
        N1,
        Message::AppendEntries {
            term: Term(1),
            leader_id: N1,
            round: 0,
        },
    );
    let (follower, _) = core_step(config, &Node::new(), heartbeat);
    assert!(follower.in_lease());
    let timeout_now = receive(N1, Message::TimeoutNow { term: Term(1) });
    let (candidate, outputs) = core_step(config, &follower, timeout_now);
    assert_eq!(
        (candidate.role(), candidate.current_term()),
        (Role::Candidate, Term(2))
    );
    let rule = "bypassing Pre-Vote and the lease";
    // Keeping the election timer that was running.
    let old_timer = without(&outputs, |o| {
        matches!(
            o,
            Output::SetTimer {
                timer: Timer::Election,
                ..
            }
        )
    });
    caught(
        config,
        (&follower, timeout_now),
        (&candidate, &old_timer),
        rule,
    );
    // Keeping the lease's timer running while campaigning.
    let lease_kept = without(&outputs, |o| *o == Output::CancelTimer(Timer::Lease));
    caught(
        config,
        (&follower, timeout_now),
        (&candidate, &lease_kept),
        rule,
    );
    // A pre-vote round instead of the campaign.
    let (pre_candidate, pre_vote) = core_step(config, &follower, Input::Timeout(Timer::Election));
    assert_eq!(pre_candidate.role(), Role::PreCandidate);
    caught(
        config,
        (&follower, timeout_now),
        (&pre_candidate, &pre_vote),
        rule,
    );
    // The campaign without the transfer flag, which the voters' leases refuse.
    let flagless = without_transfer_flag(&outputs);
    caught(
        config,
        (&follower, timeout_now),
        (&candidate, &flagless),
        rule,
    );
}

#[test]
fn a_timeout_now_held_back_by_the_leader_leases_vote_guard_is_caught() {
    let config = &leased(TRANSFER);
    // A follower of n1 in t1 whose vote guard runs: it heard n1 just now.
    let heartbeat = receive(
        N1,
        Message::AppendEntries {
            term: Term(1),
            leader_id: N1,
            round: 1,
        },
    );
    let (follower, _) = core_step(config, &Node::new(), heartbeat);
    assert!(follower.in_lease());
    // Its own election timeout waits for the guard; a TimeoutNow does not.
    let (waiting, waits) = core_step(config, &follower, Input::Timeout(Timer::Election));
    assert_eq!(waiting, follower);
    let timeout_now = receive(N1, Message::TimeoutNow { term: Term(1) });
    let (candidate, _) = core_step(config, &follower, timeout_now);
    assert_eq!(candidate.role(), Role::Candidate);
    let rule = "bypassing Pre-Vote and the lease";
    caught(config, (&follower, timeout_now), (&follower, &waits), rule);
}

#[test]
fn a_pre_vote_or_a_request_vote_carrying_its_term_for_its_log_is_caught() {
    let pre_vote = Features {
        pre_vote: true,
        ..Features::NONE
    };
    // A follower of t2 whose log ends in t0: its term is not its log's.
    let node = Node::restore(
        HardState {
            current_term: Term(2),
            voted_for: None,
        },
        log(1, 0),
    );
    let timeout = Input::Timeout(Timer::Election);
    for (config, rule) in [
        (config(pre_vote), "a PreVote carries the next term"),
        (
            config(Features::NONE),
            "a RequestVote carries the candidate's term",
        ),
    ] {
        let (after, outputs) = core_step(&config, &node, timeout);
        let wrong: Vec<Output> = outputs
            .iter()
            .map(|&o| match o {
                Output::Send {
                    to,
                    message:
                        Message::PreVote {
                            term,
                            candidate_id,
                            last_log_index,
                            ..
                        },
                } => Output::Send {
                    to,
                    message: Message::PreVote {
                        term,
                        candidate_id,
                        last_log_index,
                        last_log_term: Term(2),
                    },
                },
                Output::Send {
                    to,
                    message:
                        Message::RequestVote {
                            term, candidate_id, ..
                        },
                } => Output::Send {
                    to,
                    message: Message::RequestVote {
                        term,
                        candidate_id,
                        last_log_index: 2,
                        last_log_term: Term(0),
                        leadership_transfer: false,
                    },
                },
                other => other,
            })
            .collect();
        caught(&config, (&node, timeout), (&after, &wrong), rule);
    }
}

#[test]
fn an_acknowledgement_that_misreports_its_log_or_the_round_is_caught() {
    let config = &leased(TRANSFER);
    let follower = Node::restore(
        HardState {
            current_term: Term(1),
            voted_for: None,
        },
        log(1, 0),
    );
    let heartbeat = receive(
        N1,
        Message::AppendEntries {
            term: Term(1),
            leader_id: N1,
            round: 7,
        },
    );
    let (after, outputs) = core_step(config, &follower, heartbeat);
    let rule = "an acknowledgement carries the node's term and own log";
    for (last_log_term, round) in [(Term(1), 7), (Term(0), 6)] {
        let wrong: Vec<Output> = outputs
            .iter()
            .map(|&o| match o {
                Output::Send {
                    to,
                    message: Message::AppendEntriesResponse { term, success, .. },
                } => Output::Send {
                    to,
                    message: Message::AppendEntriesResponse {
                        term,
                        success,
                        last_log_index: 1,
                        last_log_term,
                        round,
                    },
                },
                other => other,
            })
            .collect();
        caught(config, (&follower, heartbeat), (&after, &wrong), rule);
    }
}

#[test]
fn a_timer_armed_for_another_length_than_its_rule_states_is_caught() {
    let config = &leased(TRANSFER);
    let lease = config.lease_duration().expect("leased");
    let min = Timing::default().election_timeout_min;
    assert!(lease < min);
    // The vote guard of a follower that hears its leader, armed for the
    // leader's shortened lease rather than the minimum election timeout.
    let heartbeat = receive(
        N1,
        Message::AppendEntries {
            term: Term(1),
            leader_id: N1,
            round: 1,
        },
    );
    let (follower, outputs) = core_step(config, &Node::new(), heartbeat);
    let guard = |duration| Output::SetTimer {
        timer: Timer::Lease,
        min: duration,
        max: duration,
    };
    assert!(outputs.contains(&guard(min)));
    let short: Vec<Output> = outputs
        .iter()
        .map(|&o| if o == guard(min) { guard(lease) } else { o })
        .collect();
    let rule = "the vote guard runs the minimum election timeout by its own clock";
    caught(config, (&Node::new(), heartbeat), (&follower, &short), rule);
    // The transfer deadline and the election timer.
    let leader = leader(config, log(0, 0));
    let request = Input::TransferLeadership { to: N1 };
    let (target_taken, outputs) = core_step(config, &leader, request);
    let max = Timing::default().election_timeout_max;
    let long: Vec<Output> = outputs
        .iter()
        .map(|&o| match o {
            Output::SetTimer { timer, .. } if timer == Timer::Transfer => Output::SetTimer {
                timer,
                min: max,
                max,
            },
            other => other,
        })
        .collect();
    let rule = "asks the target for its log at once";
    caught(config, (&leader, request), (&target_taken, &long), rule);
    let timeout = Input::Timeout(Timer::Election);
    let (candidate, outputs) = core_step(config, &Node::new(), timeout);
    let fixed: Vec<Output> = outputs
        .iter()
        .map(|&o| match o {
            Output::SetTimer { timer, min, .. } => Output::SetTimer {
                timer,
                min,
                max: min,
            },
            other => other,
        })
        .collect();
    let rule = "the election timer is drawn from the election timeout's range";
    caught(config, (&Node::new(), timeout), (&candidate, &fixed), rule);
}

#[test]
fn a_round_announced_after_its_heartbeats_or_left_behind_is_caught() {
    let config = &leased(TRANSFER);
    let leader = leader(config, log(0, 0));
    assert_eq!(leader.round(), 1);
    let beat = Input::Timeout(Timer::Heartbeat);
    let (next, outputs) = core_step(config, &leader, beat);
    assert_eq!(next.round(), 2);
    assert!(outputs.contains(&Output::RoundStarted { round: 2 }));
    // The driver would read its clock after the heartbeats left.
    let mut late = without(&outputs, |o| matches!(o, Output::RoundStarted { .. }));
    late.push(Output::RoundStarted { round: 2 });
    let rule = "announced before its first AppendEntries";
    caught(config, (&leader, beat), (&next, &late), rule);
    // No new round: the heartbeats of round 1 again.
    let stale: Vec<Output> = without(&outputs, |o| matches!(o, Output::RoundStarted { .. }))
        .into_iter()
        .map(|o| match o {
            Output::Send {
                to,
                message:
                    Message::AppendEntries {
                        term, leader_id, ..
                    },
            } => Output::Send {
                to,
                message: Message::AppendEntries {
                    term,
                    leader_id,
                    round: 1,
                },
            },
            other => other,
        })
        .collect();
    caught(
        config,
        (&leader, beat),
        (&leader, &stale),
        "each heartbeat broadcast",
    );
}

#[test]
fn a_leader_that_sends_timeout_now_before_giving_its_lease_up_is_caught() {
    let config = &leased(TRANSFER);
    let leader = leader(config, log(0, 0));
    // n1 acknowledges round 1: a majority with the leader, a lease.
    let (leased_leader, outputs) = core_step(config, &leader, ack(N1, 1, log(0, 0)));
    assert!(matches!(
        outputs.as_slice(),
        [Output::LeaseExtended { round: 1, .. }]
    ));
    let (before, _) = core_step(config, &leased_leader, Input::TransferLeadership { to: N2 });
    let equal = ack(N2, 1, log(0, 0));
    let (asking, outputs) = core_step(config, &before, equal);
    assert_eq!(asking.lease_round(), None);
    let revoked_last: Vec<Output> = without(&outputs, |o| *o == Output::LeaseRevoked)
        .into_iter()
        .chain([Output::LeaseRevoked])
        .collect();
    let rule = "gives its lease up (LeaseRevoked) before it sends TimeoutNow";
    caught(config, (&before, equal), (&asking, &revoked_last), rule);
    let never = without(&outputs, |o| *o == Output::LeaseRevoked);
    caught(config, (&before, equal), (&asking, &never), rule);
}

#[test]
fn the_cores_own_transfers_follow_their_rules_with_every_feature_and_the_lease() {
    let config = &leased(Features {
        pre_vote: false,
        ..Features::ALL
    });
    let mut node = leader(config, log(0, 0));
    let inputs = [
        ack(N1, 1, log(0, 0)),
        Input::TransferLeadership { to: N2 },
        Input::TransferLeadership { to: N2 },
        ack(N1, 1, log(0, 0)),
        ack(N2, 1, log(0, 0)),
        Input::Timeout(Timer::Heartbeat),
        ack(N2, 2, log(0, 0)),
        Input::Timeout(Timer::Transfer),
        Input::TransferLeadership { to: N1 },
        ack(N1, 2, log(1, 0)),
        Input::Timeout(Timer::CheckQuorum),
    ];
    let mut timeout_nows = 0;
    for input in inputs {
        let (after, outputs) = core_step(config, &node, input);
        timeout_nows += outputs.iter().filter(|o| is_timeout_now(o)).count();
        node = after;
    }
    // Two TimeoutNows to n2, one per acknowledgement until its deadline,
    // then one to n1, whose log is ahead of the leader's. The lease was
    // given up at the first and is not held again in this term.
    assert_eq!(timeout_nows, 3);
    assert_eq!(
        (node.role(), node.transfer_target(), node.lease_round()),
        (Role::Leader, Some(N1), None)
    );
}
