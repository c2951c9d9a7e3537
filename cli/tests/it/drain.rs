//! The drain before a hand-over (`node --run-while-leader`, SIGTERM): the
//! program gets SIGTERM and takes 2 s to finish while its node keeps
//! leading and renewing its lease; the node then hands over, and the
//! successor's copy starts. Three rounds, each stopping the node whose copy
//! runs: never two copies at once, every copy finishes its 2 s, and the
//! gap from one copy's exit to the next one's start is measured (printed;
//! the issue's target is 50 ms, asserted generously, the machine is shared).
//!
//! The script appends `start`, `alive` and `exit` lines with the machine's
//! one wall clock ($EPOCHREALTIME) to a file all copies share.

use crate::common::{Cluster, DEADLINE};
use raft_election::NodeId;
use raft_election_cli::log_lines::NodeEvent;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SCRIPT: &str = r#"f="$1"
trap 'sleep 2; echo "exit $RAFT_TERM $RAFT_NODE_ID $EPOCHREALTIME" >> "$f"; exit 0' TERM
echo "start $RAFT_TERM $RAFT_NODE_ID $EPOCHREALTIME" >> "$f"
while true; do
    sleep 0.01
done
"#;

/// One copy: its node, and when it started and exited (if it has).
#[derive(Clone, Copy, Debug)]
struct Copy {
    node: u8,
    started: f64,
    exited: Option<f64>,
}

fn copies(file: &Path) -> Vec<Copy> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut out: Vec<Copy> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [kind, _term, node, time] = fields[..] else {
            continue;
        };
        let (Ok(node), Ok(time)) = (node.parse::<u8>(), time.parse::<f64>()) else {
            continue;
        };
        match kind {
            "start" => out.push(Copy {
                node,
                started: time,
                exited: None,
            }),
            "exit" => {
                if let Some(copy) = out.iter_mut().rev().find(|c| c.node == node) {
                    copy.exited = Some(time);
                }
            }
            _ => {}
        }
    }
    out
}

fn wait_for_copies(file: &Path, count: usize) -> Vec<Copy> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let found = copies(file);
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "waited for {count} copies: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[test]
fn a_stopping_leader_lets_its_program_finish_then_hands_over_to_the_next_copy() {
    let mut cluster = Cluster::new(61, 3, None);
    let script = cluster.dir().join("drain.sh");
    std::fs::write(&script, SCRIPT).unwrap();
    let file = cluster.dir().join("copies.log");
    cluster.extra.extend(
        [
            "--run-while-leader",
            "--drain-timeout-ms",
            "5000",
            "--",
            "bash",
        ]
        .map(String::from),
    );
    cluster
        .extra
        .extend([script.display().to_string(), file.display().to_string()]);
    cluster.start_all();
    let mut gaps = Vec::new();
    for round in 1..=3 {
        let running = wait_for_copies(&file, round);
        let active = NodeId(running[round - 1].node);
        let signalled = now();
        let status = cluster.terminate(active);
        assert!(status.success(), "{active} exited with {status}");
        let after = wait_for_copies(&file, round + 1);
        let (old, new) = (after[round - 1], after[round]);
        let exited = old.exited.expect("the drained copy wrote its exit");
        assert_ne!(new.node, old.node);
        assert!(
            exited - signalled >= 1.9,
            "the copy had its 2 s: {old:?}, SIGTERM at {signalled}"
        );
        let gap = new.started - exited;
        assert!(gap > 0.0, "two copies at once: {old:?} and {new:?}");
        assert!(gap < 2.0, "the next copy started {gap:.3} s after the exit");
        gaps.push(gap * 1e3);
        let log = &cluster.history().nodes[&active];
        let drained = log
            .events()
            .any(|(_, e)| matches!(e, NodeEvent::ProgramDraining { .. }));
        let handed = log
            .events()
            .any(|(_, e)| matches!(e, NodeEvent::HandedOver { .. }));
        assert!(drained && handed, "{active} drained and handed over");
        cluster.start(active, false);
    }
    let all = copies(&file);
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert!(
                a.exited.is_none_or(|exited| b.started > exited),
                "overlap: {a:?} {b:?}"
            );
        }
    }
    println!("exit of a drained copy to the start of the next, ms: {gaps:.1?}");
    cluster.terminate_all(DEADLINE).unwrap();
}
