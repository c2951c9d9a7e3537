//! The timeline of a small deterministic run (Tokio's paused clock, a
//! seeded cluster): what `--timeline` draws.

use raft_election::{NodeId, Timer};
use raft_election_cli::timeline::timeline;
use raft_election_runtime::{
    ClusterConfig, ClusterHandle, Event, EventKind, LinkFaults, spawn_cluster,
};
use std::collections::BTreeSet;
use std::time::Duration;

const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);
const WAIT: Duration = Duration::from_secs(5);

/// Every fault control once, with an election between some of them.
async fn faulty_run(seed: u64) -> ClusterHandle {
    let cluster = spawn_cluster(ClusterConfig::seeded(3, seed)).expect("a cluster");
    let (leader, term) = cluster.wait_for_leader(WAIT).await.expect("a leader");
    cluster.crash(leader).await.expect("crash");
    let (_, term) = cluster
        .wait_for_leader_after(term, WAIT)
        .await
        .expect("a new leader");
    cluster.restart(leader).await.expect("restart");
    cluster.isolate(N0).expect("isolate");
    tokio::time::sleep(Duration::from_millis(400)).await;
    cluster.heal();
    cluster
        .partition(&[BTreeSet::from([N0, N1])])
        .expect("partition");
    cluster.cut(N0, N1).expect("cut");
    cluster
        .set_link(
            N1,
            N2,
            LinkFaults {
                drop: 0.5,
                ..LinkFaults::default()
            },
        )
        .expect("a lossy link");
    cluster
        .set_link(N1, N2, LinkFaults::default())
        .expect("a faultless link");
    cluster.disconnect(N2).expect("disconnect");
    cluster.connect(N2).expect("connect");
    cluster.heal();
    cluster.fire(N1, Timer::Election).expect("fire");
    cluster
        .wait_for_leader_after(term, WAIT)
        .await
        .expect("a leader after the heal");
    cluster
}

/// How many faults the timeline should mark for `events`: every fault
/// control's event, and each start after a crash (a restart).
fn faults_in(events: &[Event]) -> usize {
    let mut crashed = BTreeSet::new();
    events
        .iter()
        .filter(|e| match e.kind {
            EventKind::Crashed => {
                crashed.insert(e.node);
                true
            }
            EventKind::Started { .. } => crashed.contains(&e.node),
            EventKind::Partitioned { .. }
            | EventKind::LinkChanged { .. }
            | EventKind::Disconnected
            | EventKind::Connected
            | EventKind::Healed => true,
            _ => false,
        })
        .count()
}

fn attribute_values<'a>(
    document: &'a roxmltree::Document<'a>,
    class: &str,
    attribute: &str,
) -> Vec<&'a str> {
    document
        .descendants()
        .filter(|n| n.attribute("class") == Some(class))
        .filter_map(|n| n.attribute(attribute))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_runs_timeline_has_a_lane_per_node_an_arrow_per_delivered_message_and_every_fault() {
    for seed in [1, 2, 3] {
        let cluster = faulty_run(seed).await;
        let events = cluster.events();
        let notes = [(Duration::ZERO, "start".to_owned())];
        let svg = timeline("faults", cluster.config().ids(), &events, &notes).to_svg();
        cluster.shutdown().await.expect("clean shutdown");
        let document = roxmltree::Document::parse(&svg)
            .unwrap_or_else(|e| panic!("seed {seed}: not XML: {e}"));

        let lanes = attribute_values(&document, "tl-lane", "data-node");
        assert_eq!(lanes, ["n0", "n1", "n2"], "seed {seed}");

        // A short run: no heartbeats are thinned, so every arrow is one message.
        let received = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Received { .. }))
            .count();
        let messages: Vec<_> = document
            .descendants()
            .filter(|n| n.attribute("class") == Some("tl-message"))
            .collect();
        let delivered = messages
            .iter()
            .filter(|n| n.attribute("data-fate") == Some("delivered"))
            .count();
        assert!(
            messages
                .iter()
                .all(|n| n.attribute("data-count") == Some("1"))
        );
        assert_eq!(
            delivered, received,
            "seed {seed}: one arrow per delivered message"
        );
        // And each arrow joins the right lanes at the right times: on the
        // paused clock a message is stepped at the instant it is sent, so
        // every receipt in the log is an arrow from its sender to its
        // receiver, sent and delivered at the receipt's time.
        let ms = |at: Duration| format!("{:.3}", at.as_secs_f64() * 1e3);
        let mut expected: Vec<(String, String, String)> = events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::Received { from, .. } => {
                    Some((from.to_string(), e.node.to_string(), ms(e.at)))
                }
                _ => None,
            })
            .collect();
        let mut drawn: Vec<(String, String, String)> = messages
            .iter()
            .filter(|n| n.attribute("data-fate") == Some("delivered"))
            .map(|n| {
                let attribute = |name| n.attribute(name).unwrap_or_default().to_owned();
                assert_eq!(
                    attribute("data-sent"),
                    attribute("data-delivered"),
                    "seed {seed}: an arrow not delivered when sent"
                );
                (
                    attribute("data-from"),
                    attribute("data-to"),
                    attribute("data-delivered"),
                )
            })
            .collect();
        expected.sort();
        drawn.sort();
        assert_eq!(drawn, expected, "seed {seed}: arrows and receipts differ");
        assert!(
            received > 10,
            "seed {seed}: {received} messages is no election"
        );

        let faults = attribute_values(&document, "tl-fault", "data-fault");
        assert_eq!(faults.len(), faults_in(&events), "seed {seed}: {faults:?}");
        for kind in [
            "crash",
            "restart",
            "partition",
            "heal",
            "cut",
            "faulty-link",
            "link-restored",
            "disconnect",
            "connect",
        ] {
            assert!(
                faults.contains(&kind),
                "seed {seed}: no {kind} mark in {faults:?}"
            );
        }
        let timeouts = events
            .iter()
            .filter(|e| e.kind == EventKind::ElectionTimeout)
            .count();
        assert_eq!(
            attribute_values(&document, "tl-timeout", "data-node").len(),
            timeouts,
            "seed {seed}"
        );
    }
}
