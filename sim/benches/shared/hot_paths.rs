//! The election hot paths both step benchmarks measure (`core_step` in
//! time, `core_step_instructions` in instructions): for each, the node
//! before the step and the input it steps on, so the two measure the same
//! steps.

use raft_election::{Config, Input, Message, Node, NodeId, Role, Term, Timer, Timing};

const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);

/// The paths, each with raft-rs 0.7's instruction count for the same input
/// where there is one.
pub(crate) const PATHS: [(&str, Option<u32>); 5] = [
    // The steady-state path: a follower hearing its leader.
    ("follower handles heartbeat", Some(657)),
    // A new term: adopts it, votes and persists.
    ("follower grants vote", Some(1_592)),
    // A candidate of a term the follower already voted in.
    ("follower rejects vote", Some(809)),
    // The vote that makes it leader: sends heartbeats.
    ("candidate wins on last vote", Some(4_131)),
    // Its election timer: new term, self-vote, persist, broadcast.
    ("follower starts election", None),
];

/// Node `n0`'s configuration in a cluster of three.
pub(crate) fn config() -> Config {
    Config::new(N0, [N0, N1, N2], Timing::default()).expect("valid config")
}

fn receive(from: NodeId, message: Message) -> Input {
    Input::Receive { from, message }
}

/// `n1`'s heartbeat as leader of term 1.
fn heartbeat() -> Input {
    receive(
        N1,
        Message::AppendEntries {
            term: Term(1),
            leader_id: N1,
            round: 0,
        },
    )
}

/// The node and input of the path named `path`, or `None` for no path.
pub(crate) fn prepare(path: &str) -> Option<(Node, Input)> {
    let config = config();
    let mut follower = Node::new();
    follower.step(&config, heartbeat(), &mut Vec::new());
    let mut candidate = Node::new();
    candidate.step(&config, Input::Timeout(Timer::Election), &mut Vec::new());
    assert_eq!(candidate.role(), Role::Candidate);
    let request = |term, candidate_id| Message::RequestVote {
        term,
        candidate_id,
        last_log_index: 0,
        last_log_term: Term(0),
        leadership_transfer: false,
    };
    let grant = Message::RequestVoteResponse {
        term: Term(1),
        vote_granted: true,
    };
    Some(match path {
        "follower handles heartbeat" => (follower, heartbeat()),
        "follower grants vote" => (Node::new(), receive(N1, request(Term(2), N1))),
        "follower rejects vote" => (follower, receive(N2, request(Term(1), N2))),
        "candidate wins on last vote" => (candidate, receive(N1, grant)),
        "follower starts election" => (follower, Input::Timeout(Timer::Election)),
        _ => return None,
    })
}
