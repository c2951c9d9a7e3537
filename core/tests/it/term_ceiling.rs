//! The term ceiling ([`Term::CEILING`]): each message kind at each term
//! around it, to each role a node can hold near it, with every feature set
//! and the leader lease. Every step runs the core's debug-build checks
//! (`check_transition` has the ceiling's rule); these tests add what a
//! restart needs: no step takes a term past the ceiling, and every state a
//! step persists is one the node's restart accepts.

use raft_election::{
    ClockDrift, Config, Features, HardState, Input, LogSummary, Message, Node, NodeId, Output,
    Role, Term, Timer, Timing,
};

const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);
const C: u64 = Term::CEILING.0;

/// Node `n0` of three with every feature set, and with the leader lease
/// where lease-guarded votes allow it.
fn configs() -> Vec<Config> {
    let base = Config::new(N0, [N0, NodeId(1), NodeId(2)], Timing::default()).unwrap();
    let mut configs = Vec::new();
    for features in Features::combinations() {
        let config = base.clone().with_features(features);
        if features.lease_guarded_votes {
            configs.push(
                config
                    .clone()
                    .with_leader_lease(ClockDrift::DEFAULT)
                    .unwrap(),
            );
        }
        configs.push(config);
    }
    configs
}

/// Steps `node`, checking that its term stays within the ceiling and that
/// whatever it persists its restart would take.
fn step(config: &Config, node: &mut Node, input: Input) -> Vec<Output> {
    let mut out = Vec::new();
    node.step(config, input, &mut out);
    assert!(
        node.current_term() <= Term::CEILING,
        "{input:?} took {node:?} past the ceiling"
    );
    for output in &out {
        if let Output::Persist(hard_state) = output {
            assert_eq!(config.check_restored(hard_state), Ok(()), "after {input:?}");
        }
    }
    out
}

/// Node `n0` in `role` at `term`, reached by ordinary steps; `None` where
/// no step leads there (a pre-candidate needs Pre-Vote and a next term).
fn node_in(config: &Config, role: Role, term: u64) -> Option<Node> {
    let pre_vote = config.features().pre_vote;
    let start = match role {
        Role::Follower | Role::PreCandidate => term,
        Role::Candidate | Role::Leader => term - 1,
    };
    if role == Role::PreCandidate && (!pre_vote || term >= C) {
        return None;
    }
    let hard_state = HardState {
        current_term: Term(start),
        voted_for: None,
    };
    let mut node = Node::restore(hard_state, LogSummary::default());
    step(config, &mut node, Input::Start);
    if role != Role::Follower {
        // A restarted node guards its vote under the leader lease first.
        step(config, &mut node, Input::Timeout(Timer::Lease));
        step(config, &mut node, Input::Timeout(Timer::Election));
    }
    let grant = |term, pre: bool| {
        let term = Term(term);
        let message = if pre {
            Message::PreVoteResponse {
                term,
                vote_granted: true,
            }
        } else {
            Message::RequestVoteResponse {
                term,
                vote_granted: true,
            }
        };
        Input::Receive { from: N1, message }
    };
    if matches!(role, Role::Candidate | Role::Leader) && pre_vote {
        step(config, &mut node, grant(term, true));
    }
    if role == Role::Leader {
        step(config, &mut node, grant(term, false));
    }
    assert_eq!((node.role(), node.current_term()), (role, Term(term)));
    Some(node)
}

/// Every message kind at `term`, from `n1`, granting and refusing.
fn messages(term: u64) -> Vec<Message> {
    let term = Term(term);
    let mut messages = vec![
        Message::AppendEntries {
            term,
            leader_id: N1,
            round: 0,
        },
        Message::TimeoutNow { term },
        Message::PreVote {
            term,
            candidate_id: N1,
            last_log_index: 0,
            last_log_term: Term(0),
        },
    ];
    for transfer in [false, true] {
        messages.push(Message::RequestVote {
            term,
            candidate_id: N1,
            last_log_index: 0,
            last_log_term: Term(0),
            leadership_transfer: transfer,
        });
    }
    for granted in [false, true] {
        messages.push(Message::RequestVoteResponse {
            term,
            vote_granted: granted,
        });
        messages.push(Message::PreVoteResponse {
            term,
            vote_granted: granted,
        });
        messages.push(Message::AppendEntriesResponse {
            term,
            success: granted,
            last_log_index: 0,
            last_log_term: Term(0),
            round: 0,
        });
    }
    messages
}

const ROLES: [Role; 4] = [
    Role::Follower,
    Role::PreCandidate,
    Role::Candidate,
    Role::Leader,
];

#[test]
fn no_message_around_the_ceiling_takes_any_role_past_it_or_makes_it_persist_what_a_restart_refuses()
{
    let mut cases = 0;
    for config in configs() {
        for role in ROLES {
            for node_term in [C - 2, C - 1, C] {
                let Some(node) = node_in(&config, role, node_term) else {
                    continue;
                };
                for message_term in [C - 1, C, C + 1, u64::MAX] {
                    for message in messages(message_term) {
                        let mut after = node.clone();
                        let input = Input::Receive { from: N1, message };
                        let out = step(&config, &mut after, input);
                        if message_term > C {
                            assert_eq!(
                                after, node,
                                "{message:?} above the ceiling changed the node"
                            );
                            assert!(out.is_empty(), "{message:?} above the ceiling: {out:?}");
                        }
                        // Whatever the message did, time passing takes the
                        // node no further than the ceiling either.
                        for timer in Timer::ALL {
                            step(&config, &mut after.clone(), Input::Timeout(timer));
                        }
                        cases += 1;
                    }
                }
            }
        }
    }
    // 24 configurations, each role that exists at three terms, 13 messages
    // at four terms.
    assert!(cases > 24 * 3 * 2 * 4 * 13, "{cases} cases");
}

#[test]
fn a_node_at_the_ceiling_starts_no_election_and_sends_nothing_on_its_timeout_or_a_timeout_now() {
    for config in configs() {
        for role in [Role::Follower, Role::Candidate] {
            let node = node_in(&config, role, C).unwrap();
            for input in [
                Input::Timeout(Timer::Election),
                Input::Receive {
                    from: N1,
                    message: Message::TimeoutNow { term: Term(C) },
                },
            ] {
                let mut after = node.clone();
                let out = step(&config, &mut after, input);
                assert_eq!(after, node, "{role} at the ceiling on {input:?}");
                assert!(
                    out.iter().all(|o| matches!(
                        o,
                        Output::SetTimer {
                            timer: Timer::Election,
                            ..
                        }
                    )),
                    "{role} at the ceiling on {input:?}: {out:?}"
                );
            }
        }
    }
}

/// Below the ceiling elections go on: a follower one term short of it
/// campaigns into it, wins, and leads it, persisting it (and its restart
/// takes the file).
#[test]
fn a_node_just_below_the_ceiling_campaigns_into_it_and_leads_it() {
    for config in configs() {
        let mut leader = node_in(&config, Role::Leader, C).unwrap();
        assert_eq!(leader.hard_state().voted_for, Some(N0));
        assert_eq!(config.check_restored(&leader.hard_state()), Ok(()));
        let out = step(&config, &mut leader, Input::Timeout(Timer::Heartbeat));
        assert!(out.iter().any(|o| matches!(
            o,
            Output::Send { message: Message::AppendEntries { term, .. }, .. } if term.0 == C
        )));
        assert_eq!(leader.role(), Role::Leader);
    }
}

#[test]
fn a_state_at_the_ceiling_or_below_restores_and_one_above_it_is_refused() {
    let config = &configs()[0];
    for (term, restores) in [(C - 1, true), (C, true), (C + 1, false), (u64::MAX, false)] {
        let hard_state = HardState {
            current_term: Term(term),
            voted_for: Some(N1),
        };
        assert_eq!(
            config.check_restored(&hard_state).is_ok(),
            restores,
            "t{term}"
        );
    }
    assert_eq!(Term(C - 1).next(), Some(Term::CEILING));
    assert_eq!(Term::CEILING.next(), None);
    assert_eq!(Term(u64::MAX).next(), None);
}
