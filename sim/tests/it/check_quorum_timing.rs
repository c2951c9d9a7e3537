//! CheckQuorum on the virtual clock (thesis §6.2): how long a leader cut off
//! in a minority takes to step down, measured from the cut and from the
//! last moment it heard a majority, over many seeds of election timeouts,
//! message delays and cut moments; and that a leader which keeps a majority
//! never steps down. Virtual time is exact, so the timings are the
//! protocol's. The step-by-step situations are in `features.rs`; the same
//! bound on the Tokio runtime's paused clock is in the runtime's
//! `tests/features.rs`.

use raft_election::{Config, Features, NodeId, Role, Term, Ticks, Timing};
use raft_election_sim::timed::{PickDelay, PickDuration, TimedCluster};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

const TIMING: Timing = Timing {
    election_timeout_min: Duration::from_millis(150),
    election_timeout_max: Duration::from_millis(300),
    heartbeat_interval: Duration::from_millis(50),
};

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// A cluster of `nodes` with the default features whose election timeouts
/// and message delays (50 µs to `max_delay`) are drawn from `seed`.
fn seeded_cluster(nodes: u8, seed: u64, max_delay: Duration) -> TimedCluster {
    let rng = Rc::new(RefCell::new(Xoshiro256PlusPlus::seed_from_u64(seed)));
    let configs: Vec<Config> = Config::cluster(nodes, TIMING)
        .expect("valid timing")
        .into_iter()
        .map(|config| config.with_features(Features::default()))
        .collect();
    let pick: PickDuration = {
        let rng = Rc::clone(&rng);
        Box::new(move |min, max| rng.borrow_mut().random_range(min..=max))
    };
    let delays: PickDelay = Box::new(move || {
        rng.borrow_mut()
            .random_range(Duration::from_micros(50)..=max_delay)
    });
    TimedCluster::new(configs, Duration::ZERO, pick).with_delays(delays)
}

/// Runs until one leader is known, then a while longer; returns it.
fn elect(cluster: &mut TimedCluster, context: &str) -> (NodeId, Term) {
    let elected = cluster
        .run_until(ms(5_000), |c| c.leaders().len() == 1)
        .unwrap_or_else(|v| panic!("{context}: {v}"));
    assert!(elected, "{context}: no leader within 5 s");
    cluster.leaders()[0]
}

/// Cuts every link between `group` and the other nodes, both ways.
fn partition(cluster: &mut TimedCluster, nodes: u8, group: &BTreeSet<NodeId>) {
    for a in (0..nodes).map(NodeId) {
        for b in (0..nodes).map(NodeId) {
            if group.contains(&a) != group.contains(&b) {
                cluster.cut(a, b);
            }
        }
    }
}

/// When a leader last heard each peer: the moment its count of CheckQuorum
/// ticks since went back to 0 (one heartbeat, one acknowledgement, per tick).
#[derive(Default)]
struct LastHeard {
    at: BTreeMap<NodeId, Duration>,
    counts: BTreeMap<NodeId, Ticks>,
}

impl LastHeard {
    /// Looks at `leader` after an event.
    fn observe(&mut self, cluster: &TimedCluster, leader: NodeId) {
        let Some(node) = cluster.node(leader) else {
            return;
        };
        for (&peer, &ticks) in node.heard_from() {
            if ticks == Ticks(0) && self.counts.get(&peer) != Some(&Ticks(0)) {
                self.at.insert(peer, cluster.now());
            }
        }
        self.counts.clone_from(node.heard_from());
    }

    /// The latest moment a majority had been heard: the quorum-th most
    /// recent among the leader itself (always) and its peers.
    fn majority(&self, nodes: u8) -> Option<Duration> {
        let mut times: Vec<Duration> = self.at.values().copied().collect();
        times.sort_unstable_by(|a, b| b.cmp(a));
        let quorum = usize::from(nodes) / 2 + 1;
        times.get(quorum - 2).copied()
    }
}

/// What one cut-off leader did: when it stepped down, counted from the cut
/// and from the last moment it had heard a majority (itself included).
struct StepDown {
    after_cut: Duration,
    after_majority: Duration,
}

/// Elects a leader of `nodes`, waits a seeded moment, cuts it off with
/// `with` followers, and runs until it steps down.
fn cut_off_leader(nodes: u8, with: u8, seed: u64) -> StepDown {
    let context = format!("{nodes} nodes, leader with {with} followers, seed {seed}");
    let mut cluster = seeded_cluster(nodes, seed, ms(5));
    let (leader, term) = elect(&mut cluster, &context);
    // A seeded moment of its heartbeat cycle, after its followers answered.
    let settle = ms(500) + Duration::from_micros(seed.wrapping_mul(7_919) % 50_000);
    let until = cluster.now() + settle;
    let mut last_heard = LastHeard::default();
    cluster
        .run_until(until, |c| {
            last_heard.observe(c, leader);
            false
        })
        .unwrap_or_else(|v| panic!("{context}: {v}"));
    assert_eq!(cluster.leaders(), vec![(leader, term)], "{context}");
    let minority: BTreeSet<NodeId> = (0..nodes)
        .map(NodeId)
        .filter(|&id| id != leader)
        .take(usize::from(with))
        .chain([leader])
        .collect();
    partition(&mut cluster, nodes, &minority);
    let cut_at = cluster.now();
    let stepped = cluster
        .run_until(cut_at + TIMING.election_timeout_max * 2, |c| {
            last_heard.observe(c, leader);
            c.node(leader).is_some_and(|n| n.role() != Role::Leader)
        })
        .unwrap_or_else(|v| panic!("{context}: {v}"));
    assert!(
        stepped,
        "{context}: still leads two election timeouts after the cut"
    );
    let node = cluster.node(leader).expect("no crash here");
    assert_eq!(
        (node.role(), node.current_term()),
        (Role::Follower, term),
        "{context}: it stepped down in its own term"
    );
    let majority_at = last_heard
        .majority(nodes)
        .unwrap_or_else(|| panic!("{context}: it never heard a majority"));
    StepDown {
        after_cut: cluster.now() - cut_at,
        after_majority: cluster.now() - majority_at,
    }
}

/// §6.2 with a sliding window: over 200 seeds each of a leader cut off
/// alone among 3 nodes and with one follower among 5, the leader steps
/// down no sooner than one minimum election timeout after it last heard a
/// majority (150 ms: it never gives up on a majority that may still trust
/// it), at most one heartbeat later than that (the window is counted in
/// whole heartbeat intervals: 3 of 50 ms), and so within the longest
/// election timeout (300 ms) of the cut, whatever the moment of the cut.
#[test]
fn a_leader_cut_off_in_a_minority_steps_down_within_one_election_timeout() {
    let (min, max, heartbeat) = (
        TIMING.election_timeout_min,
        TIMING.election_timeout_max,
        TIMING.heartbeat_interval,
    );
    for (nodes, with) in [(3, 0), (5, 1)] {
        let mut after_cut = Vec::new();
        for seed in 0..200 {
            let context = format!("{nodes} nodes, leader with {with} followers, seed {seed}");
            let step_down = cut_off_leader(nodes, with, seed);
            assert!(
                step_down.after_majority >= min,
                "{context}: stepped down {:?} after it last heard a majority",
                step_down.after_majority
            );
            assert!(
                step_down.after_majority <= min + heartbeat,
                "{context}: stepped down {:?} after it last heard a majority",
                step_down.after_majority
            );
            assert!(
                step_down.after_cut <= max,
                "{context}: stepped down {:?} after the cut",
                step_down.after_cut
            );
            after_cut.push(step_down.after_cut);
        }
        after_cut.sort_unstable();
        eprintln!(
            "{nodes} nodes: stepped down {:?} to {:?} after the cut (200 seeds)",
            after_cut[0],
            after_cut[after_cut.len() - 1]
        );
    }
}

/// A leader that keeps a majority never steps down: over 20 seeds of
/// 30 s each, 5 nodes of which 2 are cut off, messages delayed up to
/// 20 ms each way, the leader of the other 3 leads throughout.
#[test]
fn a_leader_that_keeps_a_majority_never_steps_down() {
    for seed in 0..20 {
        let context = format!("seed {seed}");
        let mut cluster = seeded_cluster(5, seed, ms(20));
        let (leader, term) = elect(&mut cluster, &context);
        let cut_off: BTreeSet<NodeId> = (0..5)
            .map(NodeId)
            .filter(|&id| id != leader)
            .take(2)
            .collect();
        partition(&mut cluster, 5, &cut_off);
        let from = cluster.now();
        let until = from + ms(30_000);
        let deposed = cluster
            .run_until(until, |c| {
                c.node(leader).is_none_or(|n| n.role() != Role::Leader)
            })
            .unwrap_or_else(|v| panic!("{context}: {v}"));
        assert!(
            !deposed,
            "{context}: the leader of {term} stepped down {:?} after the cut",
            cluster.now() - from
        );
        assert_eq!(cluster.leaders(), vec![(leader, term)], "{context}");
    }
}
