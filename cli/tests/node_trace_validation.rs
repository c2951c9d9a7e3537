//! Trace validation of real node processes: three `raft-election node`
//! processes on 127.0.0.1 log with `--log-steps`, the leader is killed with
//! SIGKILL and restarted, the cluster is stopped with SIGTERM (a leader hands
//! over first), and every node's JSON log, all lives of it, is replayed
//! through the model (`raft_election_model::replay`): each step must be one
//! the core allows from the state the model holds, with the logged input,
//! ending in the logged term, vote, role and leader; each save must precede
//! the sends that depend on it; each restart must come back with what was
//! saved; each received message must have been sent by its sender, as its
//! own log says.
//!
//! The logs are parsed by the cli's `node_log` (where their format is
//! defined); the replay is the model's, the one the in-process runtime's
//! traces go through.

mod common;

use common::Cluster;
use raft_election::{Features, Input, NodeId, Term};
use raft_election_cli::node_log::{NodeLogs, Replayed};
use raft_election_model::replay::{self, Observed, TraceEvent};

/// The node processes are `n1..n3`; the model's nodes are `n0..n2`.
fn model_id(id: NodeId) -> NodeId {
    NodeId(id.0 - 1)
}

/// A node log line as an event of the model's replay, ids renamed.
fn trace_event(node: NodeId, replayed: Replayed) -> TraceEvent {
    let id = model_id(node);
    match replayed {
        Replayed::Started(mut hard_state) => {
            hard_state.voted_for = hard_state.voted_for.map(model_id);
            TraceEvent::Started(id, hard_state)
        }
        Replayed::Saved(mut hard_state) => {
            hard_state.voted_for = hard_state.voted_for.map(model_id);
            TraceEvent::Saved(id, hard_state)
        }
        Replayed::Sent { to, message } => {
            TraceEvent::Sent(id, model_id(to), message.map_ids(model_id))
        }
        Replayed::Stepped { input, after } => TraceEvent::Stepped {
            id,
            before: None,
            input: match input {
                Input::Receive { from, message } => Input::Receive {
                    from: model_id(from),
                    message: message.map_ids(model_id),
                },
                Input::TransferLeadership { to } => Input::TransferLeadership { to: model_id(to) },
                other => other,
            },
            after: Observed::Summary {
                current_term: after.current_term,
                voted_for: after.voted_for.map(model_id),
                role: after.role,
                leader_id: after.leader_id.map(model_id),
            },
        },
    }
}

#[test]
fn every_logged_step_of_three_node_processes_through_kill_9_and_restart_is_one_the_model_allows() {
    let mut cluster = Cluster::new(15, 3, None);
    cluster.extra.push("--log-steps".into());
    cluster.start_all();
    let (first, t1) = cluster.wait_for_leader_after(Term(0));
    cluster.kill(first);
    let (_, t2) = cluster.wait_for_leader_after(t1);
    cluster.start(first, false);
    // Waited for: the restarted node follows the leader of a term at least
    // t2 (it heard a heartbeat after its restart).
    cluster.wait_for(&format!("{first} to follow a leader again"), |history| {
        let log = &history.nodes[&first];
        (log.events("start").count() == 2 && log.leader.is_some() && log.term >= t2).then_some(())
    });
    for id in cluster.ids.clone() {
        cluster.terminate(id);
    }

    let paths: Vec<_> = cluster.ids.iter().map(|&id| cluster.log_path(id)).collect();
    let logs = NodeLogs::read(&paths).expect("the node logs");
    assert_eq!(
        logs.skipped().incomplete,
        0,
        "unreadable lines: {}",
        logs.skipped()
    );
    let trace: Vec<TraceEvent> = logs
        .replayed()
        .into_iter()
        .map(|(node, replayed)| trace_event(node, replayed))
        .collect();
    let steps = replay::validate(3, Features::default(), &trace)
        .unwrap_or_else(|refused| panic!("{refused}\nin {}", cluster.dir.path().display()));
    let starts = trace
        .iter()
        .filter(|e| matches!(e, TraceEvent::Started(..)))
        .count();
    let saves = trace
        .iter()
        .filter(|e| matches!(e, TraceEvent::Saved(..)))
        .count();
    let sends = trace
        .iter()
        .filter(|e| matches!(e, TraceEvent::Sent(..)))
        .count();
    eprintln!("{steps} steps, {saves} saves, {sends} sends, {starts} starts validated");
    // Not vacuous: two elections and a restart were replayed.
    assert_eq!(starts, 4, "three starts and one restart");
    assert!(saves >= 4, "{saves} saves");
    assert!(steps >= 20 && sends >= 20, "{steps} steps, {sends} sends");
}
