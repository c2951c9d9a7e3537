//! `node --run-while-leader` with real processes: three nodes, each told to
//! run a small script while it holds the leader lease. The script appends
//! `start <term> <node> <time>` when it starts, `alive ...` every 10 ms and
//! `stop ...` on SIGTERM to one shared file, the time from the machine's
//! one wall clock (so the drift between the processes is zero). The
//! leader is killed with SIGKILL, cut off by nftables in a namespace of the
//! test's own, and paused with SIGSTOP for several leases, then resumed.
//! From the file: the active intervals of different nodes never overlap
//! (an interval runs from a `start` to the last line of that copy, which
//! covers a copy killed by SIGKILL) and their terms increase. At the end
//! every node gets SIGTERM and must exit promptly.
//!
//! Needs root, `ip` and `nft` like `partitions.rs`; skipped (saying why)
//! without them unless `RAFT_ELECTION_REQUIRE_NETWORK_FAULTS=1`.

use crate::common::{Cluster, namespace};
use raft_election::NodeId;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Generous: each wait is for an election and a lease on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(30);

/// Lease 400 ms / 1.1 = 363 ms; SIGTERM 150 ms before its end, SIGKILL
/// 75 ms later.
pub(crate) const FLAGS: &[&str] = &[
    "--election-min-ms",
    "400",
    "--election-max-ms",
    "800",
    "--heartbeat-ms",
    "50",
    "--stop-margin-ms",
    "150",
    "--kill-grace-ms",
    "75",
    "--run-while-leader",
];

pub(crate) const SCRIPT: &str = r#"f="$1"
trap 'echo "stop $RAFT_TERM $RAFT_NODE_ID $EPOCHREALTIME" >> "$f"; exit 0' TERM
echo "start $RAFT_TERM $RAFT_NODE_ID $EPOCHREALTIME" >> "$f"
while true; do
    echo "alive $RAFT_TERM $RAFT_NODE_ID $EPOCHREALTIME" >> "$f"
    sleep 0.01
done
"#;

/// One copy's time of activity.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Interval {
    pub(crate) term: u64,
    pub(crate) node: u8,
    from: f64,
    to: f64,
}

/// The copies in the file, in the order they started.
pub(crate) fn intervals(file: &Path) -> Vec<Interval> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    // The latest copy of each node: lines of one copy follow its start.
    let mut current: BTreeMap<u8, usize> = BTreeMap::new();
    let mut out: Vec<Interval> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [kind, term, node, time] = fields[..] else {
            continue;
        };
        let (Ok(term), Ok(node), Ok(time)) = (term.parse(), node.parse(), time.parse::<f64>())
        else {
            continue;
        };
        if kind == "start" {
            current.insert(node, out.len());
            out.push(Interval {
                term,
                node,
                from: time,
                to: time,
            });
        } else if let Some(&index) = current.get(&node) {
            out[index].to = out[index].to.max(time);
        }
    }
    out
}

/// Polls the file until `found` holds of its intervals, at most [`DEADLINE`].
fn wait_for(file: &Path, what: &str, found: impl Fn(&[Interval]) -> bool) -> Vec<Interval> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let copies = intervals(file);
        if found(&copies) {
            return copies;
        }
        assert!(
            Instant::now() < deadline,
            "waited {DEADLINE:?} for {what}; copies: {copies:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The copy started last, once it has run a while (not just started).
pub(crate) fn running_copy(file: &Path, after_term: u64) -> Interval {
    let copies = wait_for(file, &format!("a copy of a term after {after_term}"), |c| {
        c.last()
            .is_some_and(|last| last.term > after_term && last.to - last.from > 0.1)
    });
    *copies.last().expect("waited for one")
}

/// Two copies of different nodes that ran at once, if any.
pub(crate) fn overlap(copies: &[Interval]) -> Option<(Interval, Interval)> {
    copies.iter().enumerate().find_map(|(i, a)| {
        copies[i + 1..]
            .iter()
            .find(|b| a.node != b.node && !(b.from > a.to || a.from > b.to))
            .map(|b| (*a, *b))
    })
}

/// No two copies of different nodes overlap, and terms increase.
fn check(copies: &[Interval]) {
    if let Some((a, b)) = overlap(copies) {
        panic!("overlap: {a:?} and {b:?}\nall: {copies:#?}");
    }
    for (i, a) in copies.iter().enumerate() {
        for b in &copies[i + 1..] {
            assert!(b.term >= a.term, "terms went back: {a:?} then {b:?}");
        }
    }
}

pub(crate) fn signal(pid: u32, name: &str) {
    crate::common::sh("kill", &[&format!("-{name}"), &pid.to_string()]).unwrap();
}

#[test]
fn one_copy_runs_at_a_time_through_kill_9_a_partition_and_a_paused_leader() {
    let Some(ns) = namespace("rwl") else { return };
    let mut cluster = Cluster::new(0, 3, Some(ns.name.clone()));
    let script = cluster.dir().join("child.sh");
    std::fs::write(&script, SCRIPT).unwrap();
    let file = cluster.dir().join("active.log");
    cluster.extra = FLAGS.iter().map(|&f| f.to_owned()).collect();
    cluster.extra.extend([
        "--".to_owned(),
        "bash".to_owned(),
        script.display().to_string(),
        file.display().to_string(),
    ]);
    cluster.start_all();

    // 1. kill -9 the node whose copy runs: its watchdog stops the copy, and
    //    another node's copy starts, in a later term.
    let first = running_copy(&file, 0);
    cluster.kill(NodeId(first.node));
    let second = running_copy(&file, first.term);
    assert_ne!(second.node, first.node);
    cluster.start(NodeId(first.node), false);

    // 2. Cut the active node off: its lease runs out, the watchdog stops
    //    the copy; the majority elects a leader whose copy starts.
    let leader = cluster.addrs()[&NodeId(second.node)];
    for (&id, &addr) in cluster.addrs() {
        if id != NodeId(second.node) {
            ns.drop(leader, addr, false, 100);
            ns.drop(addr, leader, false, 100);
        }
    }
    let third = running_copy(&file, second.term);
    assert_ne!(third.node, second.node);
    ns.heal();

    // 3. Pause the active node for several leases: the node cannot stop its
    //    copy, the watchdog does, by the lease's end; then resume it.
    let paused = NodeId(third.node);
    let pid = cluster.pid(paused);
    signal(pid, "STOP");
    let fourth = running_copy(&file, third.term);
    std::thread::sleep(Duration::from_secs(2));
    signal(pid, "CONT");
    assert_ne!(fourth.node, third.node);
    // The resumed node learns the new term and runs nothing: a copy that
    // starts from here on is a new leader's, in a later term.
    std::thread::sleep(Duration::from_secs(2));

    // SIGTERM stops every node promptly, followers and the active one,
    // whose program is stopped first.
    for id in cluster.running() {
        let status = cluster.terminate(id);
        assert!(status.success(), "{id} exited with {status}");
    }
    let copies = intervals(&file);
    check(&copies);
    let terms: Vec<u64> = copies.iter().map(|c| c.term).collect();
    println!("{} copies, terms {terms:?}", copies.len());
}
