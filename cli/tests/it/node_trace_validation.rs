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
//! The logs are read by the cli's `node_log`, each line's record
//! deserialized as the core's `Record` it was logged as; the replay is the
//! model's, the one the in-process runtime's traces go through.

use crate::common::Cluster;
use raft_election::{Features, NodeId, Record, Term};
use raft_election_cli::node_log::NodeLogs;
use raft_election_model::replay::{self, TraceEvent};

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
        (log.starts().count() == 2 && log.leader.is_some() && log.term >= t2).then_some(())
    });
    for id in cluster.ids() {
        cluster.terminate(id);
    }

    let paths: Vec<_> = cluster
        .ids()
        .iter()
        .map(|&id| cluster.log_path(id))
        .collect();
    let logs = NodeLogs::read(&paths).expect("the node logs");
    assert!(
        logs.skipped().unknown_facts.is_empty(),
        "unreadable lines: {}",
        logs.skipped()
    );
    // The node processes are `n1..n3`; the model's nodes are `n0..n2`.
    let model_id = |id: NodeId| NodeId(id.0 - 1);
    let trace: Vec<TraceEvent> = logs
        .records()
        .into_iter()
        .map(|(node, record)| TraceEvent::new(model_id(node), record.map_ids(model_id)))
        .collect();
    let steps = replay::validate(3, Features::default(), &trace)
        .unwrap_or_else(|refused| panic!("{refused}\nin {}", cluster.dir().display()));
    let count = |kind: fn(&Record) -> bool| trace.iter().filter(|e| kind(&e.record)).count();
    let starts = count(|r| matches!(r, Record::Started(_)));
    let saves = count(|r| matches!(r, Record::Saved(_)));
    let sends = count(|r| matches!(r, Record::Sent { .. }));
    eprintln!("{steps} steps, {saves} saves, {sends} sends, {starts} starts validated");
    // Not vacuous: two elections and a restart were replayed.
    assert_eq!(starts, 4, "three starts and one restart");
    assert!(saves >= 4, "{saves} saves");
    assert!(steps >= 20 && sends >= 20, "{steps} steps, {sends} sends");
}
