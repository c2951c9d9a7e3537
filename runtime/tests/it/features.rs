//! The thesis' election features on the Tokio runtime with real timers on a
//! paused clock: how long a minority leader takes to step down, what a
//! returning partitioned node does with and without Pre-Vote, how long a
//! healed cluster goes without a leader, and leadership transfer (to a live
//! node, to a dead one, and a leader stopping gracefully). Virtual time is
//! exact, so the timings below are the protocol's, not this machine's.
//!
//! The same situations step by step are in `sim/tests/it/features.rs`.

use crate::support::{finish, ms};
use raft_election::{Features, Message, NodeId, Role, Term, Timing};
use raft_election_runtime::{
    ClusterConfig, ClusterHandle, EventKind, Statuses, TransferError, spawn_cluster,
};
use std::collections::BTreeSet;
use std::time::Duration;

fn config(nodes: u8, seed: u64, features: Features) -> ClusterConfig {
    ClusterConfig {
        features,
        ..ClusterConfig::seeded(nodes, seed)
    }
}

/// The leader every live node follows, with its term.
async fn settled(cluster: &ClusterHandle, context: &str) -> (NodeId, Term) {
    cluster
        .wait_for_leader_known_to_all(ms(2_000))
        .await
        .unwrap_or_else(|e| panic!("{context}: {e}"))
}

const TIMING: Timing = Timing {
    election_timeout_min: Duration::from_millis(150),
    election_timeout_max: Duration::from_millis(300),
    heartbeat_interval: Duration::from_millis(50),
};

mod elections {
    use super::*;

    /// With every feature on, a leader is elected and known to all as fast
    /// as under Figure 2 (Pre-Vote's round trip takes no virtual time in
    /// process), for 100 seeds of 3 and of 5 nodes.
    #[tokio::test(start_paused = true)]
    async fn every_feature_on_still_elects_a_leader_known_to_all_within_500_ms() {
        for nodes in [3, 5] {
            for seed in 0..100 {
                let context = format!("{nodes} nodes, seed {seed}");
                let cluster = spawn_cluster(config(nodes, seed, Features::ALL)).unwrap();
                cluster
                    .wait_until(|s| s.leader_known_to_all().is_some(), ms(500))
                    .await
                    .unwrap_or_else(|e| panic!("{context}: {e}"));
                finish(cluster, &context).await;
            }
        }
    }
}

mod disruptive_follower {
    use super::*;

    /// A follower partitioned away for two seconds, then healed; one second
    /// later, who has led which term. Returns the terms that got a leader
    /// after the original one, and whether the original leader still leads.
    async fn partition_one_follower(seed: u64, features: Features) -> (usize, bool) {
        let context = format!("seed {seed}, {features}");
        let cluster = spawn_cluster(config(3, seed, features)).unwrap();
        let (leader, term) = settled(&cluster, &context).await;
        let follower = NodeId((leader.0 + 1) % 3);
        cluster.isolate(follower).unwrap();
        tokio::time::sleep(ms(2_000)).await;
        cluster.heal();
        tokio::time::sleep(ms(1_000)).await;
        let later = cluster.leaders_by_term().range(Term(term.0 + 1)..).count();
        let still = cluster.statuses().leader_known_to_all() == Some((leader, term));
        finish(cluster, &context).await;
        (later, still)
    }

    /// Without Pre-Vote the returning follower's term, raised by its
    /// campaigns while cut off, deposes the leader (its answer to the first
    /// heartbeat carries it): a new election every time. With Pre-Vote its
    /// term never rose, and the leader stays, for every seed.
    #[tokio::test(start_paused = true)]
    async fn a_returning_follower_deposes_the_leader_without_pre_vote_and_never_with_it() {
        for seed in 0..20 {
            let (later, still) = partition_one_follower(seed, Features::default()).await;
            assert!(later >= 1 && !still, "seed {seed}: without Pre-Vote");
            let (later, still) = partition_one_follower(seed, Features::ALL).await;
            assert!(later == 0 && still, "seed {seed}: with Pre-Vote");
        }
    }
}

mod check_quorum {
    use super::*;

    /// When `leader` last received an acknowledgement of a heartbeat of
    /// `term` before `until`, from the cluster's event log.
    fn last_acknowledged(
        cluster: &ClusterHandle,
        leader: NodeId,
        term: Term,
        until: Duration,
    ) -> Option<Duration> {
        cluster
            .events()
            .into_iter()
            .filter(|e| e.node == leader && e.at <= until)
            .filter(|e| {
                matches!(
                    e.kind,
                    EventKind::Received {
                        message: Message::AppendEntriesResponse { term: t, success: true, .. },
                        ..
                    } if t == term
                )
            })
            .map(|e| e.at)
            .next_back()
    }

    /// §6.2 with a sliding window: a leader cut off from every follower
    /// steps down on its own, in its own term, at the first CheckQuorum tick
    /// (one per heartbeat) at which it has heard no one within the minimum
    /// election timeout: no sooner than 150 ms after its last
    /// acknowledgement, at most a heartbeat (50 ms) later than that, and
    /// so within the longest election timeout (300 ms) of the cut, wherever
    /// in its heartbeat cycle the cut falls. Without CheckQuorum it still
    /// leads a minute later.
    #[tokio::test(start_paused = true)]
    async fn a_leader_in_a_minority_steps_down_within_one_election_timeout() {
        let (shortest, longest) = (TIMING.election_timeout_min, TIMING.election_timeout_max);
        for seed in 0..20 {
            let context = format!("seed {seed}");
            let cluster = spawn_cluster(config(3, seed, Features::default())).unwrap();
            let (leader, term) = settled(&cluster, &context).await;
            // Cut at a seeded point of its heartbeat cycle.
            tokio::time::sleep(ms(seed * 37 % 300)).await;
            cluster.isolate(leader).unwrap();
            let cut_at = cluster.elapsed();
            cluster
                .wait_until(
                    |s| s.get(leader).is_some_and(|n| n.role == Role::Follower),
                    longest * 3,
                )
                .await
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            let stepped_at = cluster.elapsed();
            let heard_at = last_acknowledged(&cluster, leader, term, stepped_at)
                .unwrap_or_else(|| panic!("{context}: no acknowledgement"));
            let (after_cut, after_heard) = (stepped_at - cut_at, stepped_at - heard_at);
            assert!(
                after_heard >= shortest && after_heard <= shortest + TIMING.heartbeat_interval,
                "{context}: stepped down {after_heard:?} after its last acknowledgement"
            );
            assert!(
                after_cut <= longest,
                "{context}: {after_cut:?} after the cut"
            );
            let status = *cluster.statuses().get(leader).unwrap();
            assert_eq!(
                status.term, term,
                "{context}: it stepped down in its own term"
            );
            finish(cluster, &context).await;
        }
        let cluster = spawn_cluster(config(3, 1, Features::NONE)).unwrap();
        let (leader, term) = settled(&cluster, "no CheckQuorum").await;
        cluster.isolate(leader).unwrap();
        tokio::time::sleep(ms(60_000)).await;
        let status = *cluster.statuses().get(leader).unwrap();
        assert_eq!((status.role, status.term), (Role::Leader, term));
        finish(cluster, "no CheckQuorum").await;
    }
}

mod pre_vote_with_check_quorum {
    use super::*;

    /// The cluster's leaderless stretches, as (start, end) pairs of virtual
    /// time since it started, read from the event log: from the moment no
    /// live node leads to the moment one does again.
    fn leaderless(cluster: &ClusterHandle) -> Vec<(Duration, Duration)> {
        let mut leading: BTreeSet<NodeId> = BTreeSet::new();
        let mut since = Some(Duration::ZERO);
        let mut gaps = Vec::new();
        for event in cluster.events() {
            match event.kind {
                EventKind::RoleChanged {
                    to: Role::Leader, ..
                } => {
                    leading.insert(event.node);
                }
                EventKind::RoleChanged {
                    from: Role::Leader, ..
                }
                | EventKind::Crashed => {
                    leading.remove(&event.node);
                }
                _ => {}
            }
            match (leading.is_empty(), since) {
                (true, None) => since = Some(event.at),
                (false, Some(start)) => {
                    gaps.push((start, event.at));
                    since = None;
                }
                _ => {}
            }
        }
        gaps
    }

    /// The etcd liveness issue (etcd issue 9586, pull request 8334): with
    /// Pre-Vote and CheckQuorum, a cluster whose leader is cut off while the
    /// others still trust it, or that is split and healed at any moment,
    /// must not stay leaderless. Over 40 seeds, a partition of each kind
    /// (the leader alone, a follower alone, the leader with one follower in
    /// a five-node cluster), healed after a seeded time: from the heal,
    /// every node follows one leader within three longest election
    /// timeouts, and no leaderless stretch of the whole run lasts longer.
    #[tokio::test(start_paused = true)]
    async fn pre_vote_and_check_quorum_never_leave_a_healed_cluster_leaderless_for_long() {
        let bound = TIMING.election_timeout_max * 3;
        let mut longest = Duration::ZERO;
        for seed in 0..40 {
            for shape in 0..3_u8 {
                let nodes = if shape == 2 { 5 } else { 3 };
                let context = format!("seed {seed}, partition {shape}, {nodes} nodes");
                let cluster = spawn_cluster(config(nodes, seed, Features::ALL)).unwrap();
                let (leader, _) = settled(&cluster, &context).await;
                let other = |k: u8| NodeId((leader.0 + k) % nodes);
                let minority: BTreeSet<NodeId> = match shape {
                    0 => BTreeSet::from([leader]),
                    1 => BTreeSet::from([other(1)]),
                    _ => BTreeSet::from([leader, other(1)]),
                };
                let majority: BTreeSet<NodeId> = cluster
                    .config()
                    .ids()
                    .filter(|id| !minority.contains(id))
                    .collect();
                cluster.partition(&[minority, majority]).unwrap();
                tokio::time::sleep(ms(100 + seed * 53 % 1_500)).await;
                cluster.heal();
                let healed_at = cluster.elapsed();
                settled(&cluster, &context).await;
                let took = cluster.elapsed() - healed_at;
                assert!(took <= bound, "{context}: {took:?} after the heal");
                for (start, end) in leaderless(&cluster) {
                    let gap = end - start;
                    longest = longest.max(gap);
                    assert!(
                        gap <= bound,
                        "{context}: no leader from {start:?} to {end:?}"
                    );
                }
                finish(cluster, &context).await;
            }
        }
        eprintln!("longest leaderless stretch over 120 runs: {longest:?} (bound {bound:?})");
    }
}

mod transfer {
    use super::*;

    /// §3.10 in process: the target leads, and every node knows it, without
    /// any timer firing: a round trip for the target's log, TimeoutNow, a
    /// round of votes, a heartbeat. No virtual time passes.
    #[tokio::test(start_paused = true)]
    async fn a_transfer_completes_without_waiting_for_any_timeout() {
        for seed in 0..20 {
            let context = format!("seed {seed}");
            let cluster = spawn_cluster(config(3, seed, Features::ALL)).unwrap();
            let (leader, term) = settled(&cluster, &context).await;
            let target = NodeId((leader.0 + 2) % 3);
            let asked_at = cluster.elapsed();
            assert_eq!(cluster.transfer_leadership(target), Ok(leader));
            let (new, new_term) = cluster
                .wait_until(
                    |s| {
                        s.leader_known_to_all()
                            .filter(|&(l, _)| l == target)
                            .is_some()
                    },
                    ms(100),
                )
                .await
                .map(|s: Statuses| s.leader_known_to_all().unwrap())
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_eq!((new, new_term), (target, Term(term.0 + 1)), "{context}");
            assert_eq!(
                cluster.elapsed(),
                asked_at,
                "{context}: no timer was waited for"
            );
            finish(cluster, &context).await;
        }
    }

    /// A transfer to a node that is down is abandoned after the shortest
    /// election timeout; the leader leads on in its term throughout.
    #[tokio::test(start_paused = true)]
    async fn a_transfer_to_a_dead_node_is_abandoned_and_the_leader_stays() {
        let cluster = spawn_cluster(config(3, 7, Features::default())).unwrap();
        let (leader, term) = settled(&cluster, "dead target").await;
        let target = NodeId((leader.0 + 1) % 3);
        cluster.crash(target).await.unwrap();
        cluster.transfer_leadership(target).unwrap();
        let asked_at = cluster.elapsed();
        cluster
            .wait_until(
                |s| {
                    s.get(leader)
                        .is_some_and(|n| n.transfer_target == Some(target))
                },
                ms(10),
            )
            .await
            .unwrap();
        cluster
            .wait_until(
                |s| s.get(leader).is_some_and(|n| n.transfer_target.is_none()),
                ms(1_000),
            )
            .await
            .unwrap();
        assert_eq!(cluster.elapsed() - asked_at, TIMING.election_timeout_min);
        assert_eq!(
            cluster.statuses().acknowledged_leader(),
            Some((leader, term))
        );
        assert_eq!(cluster.leaders_by_term().len(), 1);
        finish(cluster, "dead target").await;
    }

    /// What the handle refuses, with its reason: transfers in a cluster
    /// without the feature, to a non-member, to the leader itself.
    #[tokio::test(start_paused = true)]
    async fn a_transfer_the_cluster_cannot_do_is_refused_with_its_reason() {
        let cluster = spawn_cluster(config(3, 2, Features::NONE)).unwrap();
        let (leader, _) = settled(&cluster, "no transfer").await;
        let err = cluster
            .transfer_leadership(NodeId((leader.0 + 1) % 3))
            .unwrap_err();
        assert!(matches!(err, TransferError::Disabled { .. }), "{err}");
        finish(cluster, "no transfer").await;
        let cluster = spawn_cluster(config(3, 2, Features::default())).unwrap();
        let (leader, _) = settled(&cluster, "refusals").await;
        assert_eq!(
            cluster.transfer_leadership(NodeId(9)),
            Err(TransferError::UnknownNode { id: NodeId(9) })
        );
        assert_eq!(
            cluster.transfer_leadership(leader),
            Err(TransferError::AlreadyLeads { id: leader })
        );
        finish(cluster, "refusals").await;
    }

    /// A leader stopped gracefully hands over first: the cluster has a new
    /// leader known to all at the moment the old one stops, with no
    /// election timeout waited for; a crashed leader leaves the others
    /// waiting one out.
    #[tokio::test(start_paused = true)]
    async fn a_leader_stopped_gracefully_hands_over_before_it_stops() {
        for seed in 0..10 {
            let context = format!("seed {seed}");
            let cluster = spawn_cluster(config(3, seed, Features::default())).unwrap();
            let (leader, term) = settled(&cluster, &context).await;
            let stopped_at = cluster.elapsed();
            let successor = cluster.stop(leader).await.unwrap();
            let successor = successor.unwrap_or_else(|| panic!("{context}: no hand-over"));
            assert_eq!(
                cluster.elapsed(),
                stopped_at,
                "{context}: no timeout waited"
            );
            let statuses = cluster.statuses();
            assert_eq!(statuses.get(leader), None, "{context}: it is down");
            assert_eq!(
                statuses.leader_known_to_all(),
                Some((successor, Term(term.0 + 1))),
                "{context}: {statuses}"
            );
            finish(cluster, &context).await;
        }
        // A follower stops at once; there is nothing to hand over.
        let cluster = spawn_cluster(config(3, 3, Features::default())).unwrap();
        let (leader, _) = settled(&cluster, "a follower").await;
        let follower = NodeId((leader.0 + 1) % 3);
        assert_eq!(cluster.stop(follower).await.unwrap(), None);
        assert_eq!(cluster.statuses().get(follower), None);
        finish(cluster, "a follower").await;
    }
}
