//! Cost of one `Node::step` on the election hot paths (issue: core step cost).
//!
//! Run with `cargo bench --bench core_step`. Each benchmark clones a prepared
//! node outside the timed region and reuses one output buffer, so what is
//! timed is the step itself. Compare with raft-rs 0.7 `Raft::step` under
//! valgrind: heartbeat 657 instructions, vote grant 1,592, winning vote 4,131;
//! `cargo bench --bench core_step_instructions` counts ours the same way.

use divan::{Bencher, black_box};
use raft_election::{Config, Input, Message, Node, NodeId, Output, Role, Term, Timer, Timing};

/// Counts allocations per step: divan prints them beside the times. The
/// paths a running cluster repeats (heartbeat, vote reject) must show none.
#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);

fn config() -> Config {
    Config::new(N0, [N0, N1, NodeId(2)], Timing::default()).expect("valid config")
}

fn follower_of_term_1() -> Node {
    let mut node = Node::new();
    let heartbeat = Message::AppendEntries {
        term: Term(1),
        leader_id: N1,
        round: 0,
    };
    node.step(
        &config(),
        Input::Receive {
            from: N1,
            message: heartbeat,
        },
        &mut Vec::new(),
    );
    node
}

fn candidate_of_term_1() -> Node {
    let mut node = Node::new();
    node.step(&config(), Input::Timeout(Timer::Election), &mut Vec::new());
    assert_eq!(node.role(), Role::Candidate);
    node
}

/// Runs `input` against a fresh clone of `node` on every iteration.
fn bench_step(bencher: Bencher, node: Node, input: Input) {
    let config = config();
    let mut out: Vec<Output> = Vec::with_capacity(16);
    bencher
        .with_inputs(|| node.clone())
        .bench_local_refs(|node| {
            out.clear();
            node.step(&config, black_box(input), &mut out);
            black_box(out.len())
        });
}

/// A follower handling a heartbeat of its leader: the steady-state path.
#[divan::bench]
fn follower_handles_heartbeat(bencher: Bencher) {
    let heartbeat = Message::AppendEntries {
        term: Term(1),
        leader_id: N1,
        round: 0,
    };
    let input = Input::Receive {
        from: N1,
        message: heartbeat,
    };
    bench_step(bencher, follower_of_term_1(), input);
}

/// A follower granting its vote in a new term (adopts the term, persists).
#[divan::bench]
fn follower_grants_vote(bencher: Bencher) {
    let request = Message::RequestVote {
        term: Term(2),
        candidate_id: N1,
        last_log_index: 0,
        last_log_term: Term(0),
        leadership_transfer: false,
    };
    let input = Input::Receive {
        from: N1,
        message: request,
    };
    bench_step(bencher, Node::new(), input);
}

/// A follower refusing a candidate of a term it already voted in.
#[divan::bench]
fn follower_rejects_vote(bencher: Bencher) {
    let request = Message::RequestVote {
        term: Term(1),
        candidate_id: NodeId(2),
        last_log_index: 0,
        last_log_term: Term(0),
        leadership_transfer: false,
    };
    let input = Input::Receive {
        from: NodeId(2),
        message: request,
    };
    bench_step(bencher, follower_of_term_1(), input);
}

/// A candidate receiving the vote that makes it leader (sends heartbeats).
#[divan::bench]
fn candidate_wins_on_last_vote(bencher: Bencher) {
    let grant = Message::RequestVoteResponse {
        term: Term(1),
        vote_granted: true,
    };
    let input = Input::Receive {
        from: N1,
        message: grant,
    };
    bench_step(bencher, candidate_of_term_1(), input);
}

/// A follower's election timer firing: new term, self-vote, persist, broadcast.
#[divan::bench]
fn follower_starts_election(bencher: Bencher) {
    bench_step(
        bencher,
        follower_of_term_1(),
        Input::Timeout(Timer::Election),
    );
}
