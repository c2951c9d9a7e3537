//! The election rules of Raft Figure 2 / §5.2 / §5.4.1, one node at a time.
//!
//! Each test drives a single [`Node`] through its public `step` and looks at
//! its state and outputs, in the spirit of etcd's `TestVoteFromAnyState` and
//! raft-rs's `test_raft_paper.rs`. The nodes run Figure 2 alone
//! ([`Features::NONE`]); the thesis' features have `features.rs`.

use raft_election::{
    Config, Features, HardState, Input, LogSummary, Message, Node, NodeId, Output, Role, Term,
    Timer, Timing,
};

const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);

fn config(id: NodeId) -> Config {
    Config::new(id, [N0, N1, N2], Timing::default())
        .expect("valid config")
        .with_features(Features::NONE)
}

fn step(node: &mut Node, id: NodeId, input: Input) -> Vec<Output> {
    let mut out = Vec::new();
    node.step(&config(id), input, &mut out);
    out
}

fn receive(node: &mut Node, id: NodeId, from: NodeId, message: Message) -> Vec<Output> {
    step(node, id, Input::Receive { from, message })
}

fn log(last_log_index: u64, last_log_term: u64) -> LogSummary {
    LogSummary {
        last_log_index,
        last_log_term: Term(last_log_term),
    }
}

/// Node 0 in `role` at `term`, with `voted_for` if it is a follower.
fn node_in(role: Role, term: u64, voted_for: Option<NodeId>, own_log: LogSummary) -> Node {
    let start = match role {
        Role::Follower => term,
        Role::Candidate | Role::Leader => term - 1,
        Role::PreCandidate => unreachable!("Figure 2 has no pre-candidates"),
    };
    let hard_state = HardState {
        current_term: Term(start),
        voted_for: if role == Role::Follower {
            voted_for
        } else {
            None
        },
    };
    let mut node = Node::restore(hard_state, own_log);
    step(&mut node, N0, Input::Start);
    if role != Role::Follower {
        step(&mut node, N0, Input::Timeout(Timer::Election));
    }
    if role == Role::Leader {
        let grant = Message::RequestVoteResponse {
            term: Term(term),
            vote_granted: true,
        };
        receive(&mut node, N0, N1, grant);
    }
    assert_eq!((node.role(), node.current_term()), (role, Term(term)));
    node
}

fn request_vote(term: u64, candidate: NodeId, candidate_log: LogSummary) -> Message {
    Message::RequestVote {
        term: Term(term),
        candidate_id: candidate,
        last_log_index: candidate_log.last_log_index,
        last_log_term: candidate_log.last_log_term,
        leadership_transfer: false,
    }
}

fn vote_reply(outputs: &[Output]) -> Option<(Term, bool)> {
    outputs.iter().find_map(|o| match o {
        Output::Send {
            message: Message::RequestVoteResponse { term, vote_granted },
            ..
        } => Some((*term, *vote_granted)),
        _ => None,
    })
}

fn resets_election_timer(outputs: &[Output]) -> bool {
    outputs.iter().any(|o| {
        matches!(
            o,
            Output::SetTimer {
                timer: Timer::Election,
                ..
            }
        )
    })
}

fn sends(outputs: &[Output]) -> Vec<(NodeId, Message)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { to, message } => Some((*to, *message)),
            _ => None,
        })
        .collect()
}

/// One row of the vote table: the voter's role, term, `voted_for` and log;
/// the request's term and the candidate's log; whether the vote is granted
/// and the term the reply carries.
type VoteRow = (
    Role,
    u64,
    Option<NodeId>,
    LogSummary,
    u64,
    LogSummary,
    bool,
    u64,
);

/// Figure 2, RequestVote receiver: "1. Reply false if term < currentTerm.
/// 2. If votedFor is null or candidateId, and candidate's log is at least as
/// up-to-date as receiver's log, grant vote." Every row: node 0, in a role,
/// term and vote, with a log, receives RequestVote from node 1.
#[test]
fn a_vote_is_granted_exactly_when_figure_2_allows_it() {
    use Role::{Candidate, Follower, Leader};
    let empty = log(0, 0);
    let ahead = log(5, 2);
    #[rustfmt::skip]
    let table: &[VoteRow] = &[
        // role,    term, voted_for, own log, req term, cand log, granted, reply term
        (Follower,  1, None,     empty, 1, empty, true,  1), // free vote, same term
        (Follower,  1, Some(N1), empty, 1, empty, true,  1), // repeat of our vote
        (Follower,  1, Some(N2), empty, 1, empty, false, 1), // voted for another
        (Follower,  1, Some(N2), empty, 2, empty, true,  2), // new term clears the vote
        (Follower,  2, None,     empty, 1, empty, false, 2), // stale candidate
        (Follower,  1, None,     ahead, 1, empty, false, 1), // candidate's log is behind
        (Follower,  1, None,     ahead, 2, empty, false, 2), // behind, even in a new term
        (Follower,  1, None,     ahead, 1, log(5, 2), true, 1), // equal logs are up to date
        (Follower,  1, None,     ahead, 1, log(1, 3), true, 1), // later last term wins
        (Follower,  1, None,     ahead, 1, log(9, 1), false, 1), // longer but older log loses
        (Candidate, 1, None,     empty, 1, empty, false, 1), // voted for itself
        (Candidate, 1, None,     empty, 2, empty, true,  2), // higher term: steps down, votes
        (Candidate, 2, None,     empty, 1, empty, false, 2), // stale candidate
        (Leader,    1, None,     empty, 1, empty, false, 1), // voted for itself
        (Leader,    1, None,     empty, 2, empty, true,  2), // higher term: steps down, votes
        (Leader,    1, None,     ahead, 2, empty, false, 2), // steps down, log check refuses
    ];
    for (row, &(role, term, voted_for, own_log, req_term, cand_log, granted, reply_term)) in
        table.iter().enumerate()
    {
        let mut node = node_in(role, term, voted_for, own_log);
        let before = node.hard_state();
        let out = receive(&mut node, N0, N1, request_vote(req_term, N1, cand_log));
        assert_eq!(
            vote_reply(&out),
            Some((Term(reply_term), granted)),
            "row {row}: {role} t{term} voted_for={voted_for:?} {own_log} <- RequestVote t{req_term} {cand_log}"
        );
        if granted {
            assert_eq!(
                node.voted_for(),
                Some(N1),
                "row {row}: the vote is recorded"
            );
            assert_eq!(node.role(), Follower, "row {row}: a voter is a follower");
            assert!(
                resets_election_timer(&out),
                "row {row}: granting resets the timer"
            );
        }
        // A changed term or vote is persisted before the reply that depends on
        // it; a repeated vote is already durable and is not written again.
        let persisted =
            matches!(out.first(), Some(Output::Persist(hs)) if *hs == node.hard_state());
        assert_eq!(
            persisted,
            node.hard_state() != before,
            "row {row}: persist exactly when the hard state changed, first: {out:?}"
        );
        if req_term > term {
            assert_eq!(
                node.role(),
                Follower,
                "row {row}: a higher term makes a follower"
            );
            assert_eq!(node.current_term(), Term(req_term), "row {row}");
        }
    }
}

/// Figure 2, followers: reset the timer on a granted vote, not on every message.
/// A candidate with a stale log must not be able to suppress our election.
#[test]
fn a_rejected_candidate_does_not_reset_the_election_timer() {
    let mut node = node_in(Role::Follower, 1, None, log(5, 2));
    let out = receive(&mut node, N0, N1, request_vote(2, N1, log(0, 0)));
    assert_eq!(vote_reply(&out), Some((Term(2), false)));
    assert!(!resets_election_timer(&out), "{out:?}");
    assert_eq!(node.current_term(), Term(2), "the term is still adopted");
    assert_eq!(out.first(), Some(&Output::Persist(node.hard_state())));
}

#[test]
fn a_heartbeat_from_the_leader_resets_the_election_timer_and_names_the_leader() {
    let mut node = node_in(Role::Follower, 1, None, log(0, 0));
    let heartbeat = Message::AppendEntries {
        term: Term(1),
        leader_id: N2,
        round: 0,
    };
    let out = receive(&mut node, N0, N2, heartbeat);
    assert!(resets_election_timer(&out));
    assert_eq!(node.leader_id(), Some(N2));
    let reply = Message::AppendEntriesResponse {
        term: Term(1),
        success: true,
        last_log_index: 0,
        last_log_term: Term(0),
        round: 0,
    };
    assert_eq!(sends(&out), vec![(N2, reply)]);
}

#[test]
fn a_stale_heartbeat_is_refused_with_the_current_term_and_resets_nothing() {
    let mut node = node_in(Role::Follower, 3, None, log(0, 0));
    let heartbeat = Message::AppendEntries {
        term: Term(2),
        leader_id: N2,
        round: 0,
    };
    let out = receive(&mut node, N0, N2, heartbeat);
    assert!(!resets_election_timer(&out));
    assert_eq!(node.leader_id(), None);
    let reply = Message::AppendEntriesResponse {
        term: Term(3),
        success: false,
        last_log_index: 0,
        last_log_term: Term(0),
        round: 0,
    };
    assert_eq!(sends(&out), vec![(N2, reply)]);
}

/// §5.2: a candidate that hears from a leader of its own term steps down.
#[test]
fn a_candidate_that_sees_a_heartbeat_of_its_term_becomes_a_follower() {
    let mut node = node_in(Role::Candidate, 2, None, log(0, 0));
    let heartbeat = Message::AppendEntries {
        term: Term(2),
        leader_id: N1,
        round: 0,
    };
    let out = receive(&mut node, N0, N1, heartbeat);
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.current_term(), Term(2));
    assert_eq!(
        node.voted_for(),
        Some(N0),
        "the vote of this term stays cast"
    );
    assert_eq!(node.leader_id(), Some(N1));
    assert!(resets_election_timer(&out));
}

/// §5.2: "A candidate wins an election if it receives votes from a majority".
#[test]
fn a_candidate_never_counts_a_vote_twice() {
    let config = Config::new(N0, (0..5).map(NodeId), Timing::default())
        .unwrap()
        .with_features(Features::NONE);
    let mut node = Node::new();
    let mut out = Vec::new();
    node.step(&config, Input::Timeout(Timer::Election), &mut out);
    let grant = Message::RequestVoteResponse {
        term: Term(1),
        vote_granted: true,
    };
    for _ in 0..3 {
        node.step(
            &config,
            Input::Receive {
                from: N1,
                message: grant,
            },
            &mut out,
        );
    }
    assert_eq!(
        node.role(),
        Role::Candidate,
        "2 distinct votes of 5 are no quorum"
    );
    node.step(
        &config,
        Input::Receive {
            from: N2,
            message: grant,
        },
        &mut out,
    );
    assert_eq!(
        node.role(),
        Role::Leader,
        "3 distinct votes of 5 are a quorum"
    );
}

#[test]
fn a_vote_from_an_earlier_term_does_not_count() {
    let mut node = node_in(Role::Candidate, 2, None, log(0, 0));
    let old_grant = Message::RequestVoteResponse {
        term: Term(1),
        vote_granted: true,
    };
    let out = receive(&mut node, N0, N1, old_grant);
    assert_eq!(node.role(), Role::Candidate);
    assert_eq!(node.votes_granted().len(), 1, "only its own vote");
    assert!(out.is_empty(), "a stale response gets no answer: {out:?}");
}

/// Figure 2, "Rules for Servers: Leaders": "Upon election: send initial empty
/// AppendEntries RPCs (heartbeat) to each server".
#[test]
fn a_new_leader_sends_heartbeats_at_once_and_arms_the_heartbeat_timer() {
    let mut node = node_in(Role::Candidate, 1, None, log(0, 0));
    let grant = Message::RequestVoteResponse {
        term: Term(1),
        vote_granted: true,
    };
    let out = receive(&mut node, N0, N2, grant);
    assert_eq!(node.role(), Role::Leader);
    let heartbeat = Message::AppendEntries {
        term: Term(1),
        leader_id: N0,
        round: 0,
    };
    assert_eq!(sends(&out), vec![(N1, heartbeat), (N2, heartbeat)]);
    assert!(out.contains(&Output::CancelTimer(Timer::Election)));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::SetTimer {
            timer: Timer::Heartbeat,
            ..
        }
    )));
}

/// Figure 2, all servers: "If RPC request or response contains term T >
/// currentTerm: set currentTerm = T, convert to follower".
#[test]
fn a_leader_that_sees_a_higher_term_steps_down_and_arms_an_election_timer() {
    let mut node = node_in(Role::Leader, 1, None, log(0, 0));
    let reply = Message::AppendEntriesResponse {
        term: Term(4),
        success: false,
        last_log_index: 0,
        last_log_term: Term(0),
        round: 0,
    };
    let out = receive(&mut node, N0, N2, reply);
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.current_term(), Term(4));
    assert_eq!(node.voted_for(), None);
    assert_eq!(out.first(), Some(&Output::Persist(node.hard_state())));
    assert!(out.contains(&Output::CancelTimer(Timer::Heartbeat)));
    assert!(resets_election_timer(&out));
}

#[test]
fn an_election_timeout_persists_the_new_term_and_vote_before_requesting_votes() {
    let mut node = Node::restore(HardState::default(), log(3, 1));
    let out = step(&mut node, N0, Input::Timeout(Timer::Election));
    let expected = HardState {
        current_term: Term(1),
        voted_for: Some(N0),
    };
    assert_eq!(out.first(), Some(&Output::Persist(expected)));
    let request = request_vote(1, N0, log(3, 1));
    assert_eq!(sends(&out), vec![(N1, request), (N2, request)]);
}

#[test]
fn stale_timers_are_ignored() {
    let mut leader = node_in(Role::Leader, 1, None, log(0, 0));
    let before = leader.clone();
    assert!(step(&mut leader, N0, Input::Timeout(Timer::Election)).is_empty());
    assert_eq!(leader, before);
    let mut follower = node_in(Role::Follower, 1, None, log(0, 0));
    let before = follower.clone();
    assert!(step(&mut follower, N0, Input::Timeout(Timer::Heartbeat)).is_empty());
    assert_eq!(follower, before);
}

#[test]
fn messages_from_non_members_or_from_itself_change_nothing() {
    for from in [N0, NodeId(7)] {
        let mut node = node_in(Role::Follower, 1, None, log(0, 0));
        let before = node.clone();
        let out = receive(&mut node, N0, from, request_vote(9, from, log(0, 0)));
        assert!(out.is_empty(), "from {from}: {out:?}");
        assert_eq!(node, before, "from {from}");
    }
}

/// etcd's rule: once a follower knows the leader of a term it refuses other
/// candidates of that term (answering the "RequestVote after the election is
/// decided" question of proofs.md).
#[test]
fn a_follower_that_knows_the_leader_refuses_a_late_candidate_of_the_same_term() {
    let mut node = node_in(Role::Follower, 1, None, log(0, 0));
    let heartbeat = Message::AppendEntries {
        term: Term(1),
        leader_id: N2,
        round: 0,
    };
    receive(&mut node, N0, N2, heartbeat);
    let out = receive(&mut node, N0, N1, request_vote(1, N1, log(0, 0)));
    assert_eq!(vote_reply(&out), Some((Term(1), false)));
    assert_eq!(node.voted_for(), None);
}

/// The only output of a timeout at the last term: the election timer again.
fn only_rearms_the_election_timer(out: &[Output]) -> bool {
    matches!(
        out,
        [Output::SetTimer {
            timer: Timer::Election,
            ..
        }]
    )
}

/// A message above the term ceiling comes from no server following the
/// protocol (none passes it): it is dropped, so a forged one cannot leave a
/// node in a term its restart would refuse.
#[test]
fn a_message_above_the_term_ceiling_is_dropped() {
    for term in [Term::CEILING.0 + 1, u64::MAX] {
        let mut node = Node::new();
        let heartbeat = Message::AppendEntries {
            term: Term(term),
            leader_id: N1,
            round: 0,
        };
        let out = receive(&mut node, N0, N1, heartbeat);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(node.current_term(), Term(0));
        step(&mut node, N0, Input::Timeout(Timer::Election));
        assert_eq!(
            (node.role(), node.current_term()),
            (Role::Candidate, Term(1))
        );
    }
}

/// A node restored one term below the ceiling campaigns in the ceiling's
/// term; it cannot start another, so it stays a candidate with its timer
/// armed again, and never wraps around. A late vote of the ceiling's term
/// still counts: the ceiling's term can have its leader.
#[test]
fn a_candidate_at_the_term_ceiling_keeps_its_timer_never_wraps_and_can_still_win() {
    let below = HardState {
        current_term: Term(Term::CEILING.0 - 1),
        voted_for: None,
    };
    let mut node = Node::restore(below, log(0, 0));
    step(&mut node, N0, Input::Timeout(Timer::Election));
    assert_eq!(
        (node.role(), node.current_term()),
        (Role::Candidate, Term::CEILING)
    );
    let out = step(&mut node, N0, Input::Timeout(Timer::Election));
    assert!(only_rearms_the_election_timer(&out), "{out:?}");
    assert_eq!(
        (node.role(), node.current_term()),
        (Role::Candidate, Term::CEILING)
    );
    let late_grant = Message::RequestVoteResponse {
        term: Term::CEILING,
        vote_granted: true,
    };
    receive(&mut node, N0, N1, late_grant);
    assert_eq!(
        (node.role(), node.current_term()),
        (Role::Leader, Term::CEILING)
    );
}

/// A RequestVote naming a candidate other than its sender, or an
/// AppendEntries naming a leader other than its sender, comes from no server
/// following the protocol: every role drops it whole, higher term included,
/// so it neither moves the term nor deposes a leader, and gets no reply.
#[test]
fn a_message_that_names_someone_other_than_its_sender_is_dropped_in_every_role() {
    let malformed = [
        request_vote(1, N2, log(0, 0)),
        request_vote(5, N2, log(0, 0)),
        Message::AppendEntries {
            term: Term(1),
            leader_id: N2,
            round: 0,
        },
        Message::AppendEntries {
            term: Term(5),
            leader_id: N2,
            round: 0,
        },
    ];
    for role in [Role::Follower, Role::Candidate, Role::Leader] {
        for message in malformed {
            let mut node = node_in(role, 1, None, log(0, 0));
            let before = node.clone();
            let out = receive(&mut node, N0, N1, message);
            assert!(out.is_empty(), "{role} <- {message} from n1: {out:?}");
            assert_eq!(node, before, "{role} <- {message} from n1");
        }
    }
}

#[test]
fn a_single_node_cluster_elects_itself() {
    let config = Config::new(N0, [N0], Timing::default())
        .unwrap()
        .with_features(Features::NONE);
    let mut node = Node::new();
    let mut out = Vec::new();
    node.step(&config, Input::Timeout(Timer::Election), &mut out);
    assert_eq!(node.role(), Role::Leader);
    assert_eq!(node.current_term(), Term(1));
    assert!(sends(&out).is_empty());
}

// Rules found untested by cargo-mutants (core/mutants-equivalent.txt lists
// the survivors that are not rules).

#[test]
fn start_arms_a_followers_election_timer() {
    let mut node = Node::new();
    let out = step(&mut node, N0, Input::Start);
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::SetTimer {
                timer: Timer::Election,
                ..
            }
        )),
        "{out:?}"
    );
}

#[test]
fn a_follower_keeps_following_its_leader_on_its_second_heartbeat() {
    let mut node = node_in(Role::Follower, 1, None, LogSummary::default());
    let heartbeat = Message::AppendEntries {
        term: Term(1),
        round: 0,
        leader_id: N1,
    };
    receive(&mut node, N0, N1, heartbeat);
    let out = receive(&mut node, N0, N1, heartbeat);
    assert_eq!(node.leader_id(), Some(N1));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::SetTimer {
            timer: Timer::Election,
            ..
        }
    )));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send {
            to: N1,
            message: Message::AppendEntriesResponse { success: true, .. }
        }
    )));
}

#[test]
fn a_candidate_ignores_an_append_entries_response_of_its_term() {
    let mut node = node_in(Role::Candidate, 1, None, LogSummary::default());
    let forged = Message::AppendEntriesResponse {
        term: Term(1),
        round: 0,
        success: true,
        last_log_index: 0,
        last_log_term: Term(0),
    };
    assert_eq!(receive(&mut node, N0, N1, forged), []);
    assert_eq!(node.role(), Role::Candidate);
}

#[test]
fn a_leader_refuses_a_second_leader_of_its_term_and_ignores_late_votes() {
    let mut node = node_in(Role::Leader, 1, None, LogSummary::default());
    let forged = Message::AppendEntries {
        term: Term(1),
        round: 0,
        leader_id: N2,
    };
    let out = receive(&mut node, N0, N2, forged);
    assert!(matches!(
        out.as_slice(),
        [Output::Send {
            to: N2,
            message: Message::AppendEntriesResponse { success: false, .. }
        }]
    ));
    let late = Message::RequestVoteResponse {
        term: Term(1),
        vote_granted: true,
    };
    assert_eq!(receive(&mut node, N0, N2, late), []);
    assert_eq!(node.role(), Role::Leader);
}
