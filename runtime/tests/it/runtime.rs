//! Scenario tests of the Tokio runtime, on a paused clock: Tokio's virtual
//! time jumps to the next timer whenever every task is idle, so each run is
//! deterministic and timings below are exact, not measured.
//!
//! Every test ends in [`finish`], which checks election safety (and every
//! other cluster-wide invariant of `raft_election::invariants`) over the
//! whole run, cross-checks it against the event log and shuts down cleanly.
//!
//! `RUST_LOG=raft_election=info cargo test --test runtime -- --nocapture`
//! prints the narration ("n1 timed out in t0 as follower, campaigns for t1").

use crate::support::{ms, successor};
use raft_election::{Features, Message, NodeId, Role, Term, Timing};
use raft_election_runtime::{
    ClusterConfig, ClusterHandle, Delivery, Event, EventKind, TimeoutSource, spawn_cluster,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    // Another test may have installed it already.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Who became leader of which term, according to the event log alone.
fn leaders_in_events(events: &[Event]) -> BTreeMap<Term, BTreeSet<NodeId>> {
    let mut leaders: BTreeMap<Term, BTreeSet<NodeId>> = BTreeMap::new();
    for event in events {
        if let EventKind::RoleChanged {
            to: Role::Leader, ..
        } = event.kind
        {
            leaders.entry(event.term).or_default().insert(event.node);
        }
    }
    leaders
}

/// Election safety over the whole run, then a clean shutdown.
///
/// The invariants are checked on every step by `invariants::History` (the one
/// definition); the event log is an independent record of the same run, so
/// the two must agree on who led which term.
async fn finish(cluster: ClusterHandle, context: &str) {
    if let Err(violation) = cluster.check_safety() {
        panic!("{context}: {violation}");
    }
    assert_eq!(
        cluster.events_evicted(),
        0,
        "{context}: the event log is whole"
    );
    let from_events = leaders_in_events(&cluster.events());
    for (term, leaders) in &from_events {
        assert_eq!(
            leaders.len(),
            1,
            "{context}: two leaders in {term}: {leaders:?}"
        );
    }
    let from_history: BTreeMap<Term, BTreeSet<NodeId>> = cluster
        .leaders_by_term()
        .into_iter()
        .map(|(term, leader)| (term, BTreeSet::from([leader])))
        .collect();
    assert_eq!(from_events, from_history, "{context}");
    if let Err(e) = cluster.shutdown().await {
        panic!("{context}: {e}");
    }
}

fn is_heartbeat_from(event: &Event, leader: NodeId, term: Term) -> bool {
    event.node == leader
        && matches!(
            event.kind,
            EventKind::Sent { message: Message::AppendEntries { term: t, .. }, .. } if t == term
        )
}

mod normal_election {
    use super::*;

    async fn elect_over_seeds(nodes: u8, seeds: u64) -> Vec<Duration> {
        init_tracing();
        let mut elected_after = Vec::new();
        for seed in 0..seeds {
            let context = format!("{nodes} nodes, seed {seed}");
            let cluster = spawn_cluster(ClusterConfig::seeded(nodes, seed)).unwrap();
            // One leader, and every live node in its term following it.
            let agreed = cluster
                .wait_until(|s| s.leader_known_to_all().is_some(), ms(500))
                .await
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_eq!(agreed.live().len(), usize::from(nodes), "{context}");
            let [(leader, term)] = agreed.leaders()[..] else {
                panic!("{context}: not exactly one leader: {agreed}");
            };
            assert_eq!(
                agreed.acknowledged_leader(),
                Some((leader, term)),
                "{context}"
            );
            assert!(term >= Term(1), "{context}");
            elected_after.push(cluster.elapsed());
            finish(cluster, &context).await;
        }
        elected_after.sort();
        elected_after
    }

    fn summary(times: &[Duration]) -> String {
        let at = |q: usize| times[(times.len() - 1) * q / 100].as_millis();
        format!("min {} ms, median {} ms, max {} ms", at(0), at(50), at(100))
    }

    /// Raft §5.2: the first node to time out wins every vote it asks for.
    #[tokio::test(start_paused = true)]
    async fn three_nodes_elect_exactly_one_leader_within_500_ms_that_all_agree_on_for_100_seeds() {
        let times = elect_over_seeds(3, 100).await;
        eprintln!(
            "3 nodes, 100 seeds, virtual time to agreement: {}",
            summary(&times)
        );
        assert!(
            times.iter().all(|t| *t >= ms(150)),
            "no one times out before 150 ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn five_nodes_elect_exactly_one_leader_within_500_ms_that_all_agree_on_for_100_seeds() {
        let times = elect_over_seeds(5, 100).await;
        eprintln!(
            "5 nodes, 100 seeds, virtual time to agreement: {}",
            summary(&times)
        );
    }

    /// Figure 2, followers: a heartbeat from the current leader postpones the
    /// election. The driver replaces the deadline each time, so a superseded
    /// one never fires: ten seconds of a live leader, and nobody campaigns.
    #[tokio::test(start_paused = true)]
    async fn a_live_leader_keeps_every_follower_from_timing_out_for_ten_seconds() {
        init_tracing();
        let cluster = spawn_cluster(ClusterConfig::seeded(3, 11)).unwrap();
        let (leader, term) = cluster.wait_for_leader(ms(500)).await.unwrap();
        let elected_at = cluster.elapsed();
        // Half a heartbeat past ten seconds, so the 200th round is surely out.
        tokio::time::sleep(ms(10_025)).await;
        let window = |e: &Event| e.at > elected_at && e.at <= elected_at + ms(10_000);
        let timeouts: Vec<Event> = cluster
            .events()
            .into_iter()
            .filter(|e| e.at > elected_at && e.kind == EventKind::ElectionTimeout)
            .collect();
        assert!(timeouts.is_empty(), "{timeouts:?}");
        let statuses = cluster.statuses();
        assert_eq!(statuses.acknowledged_leader(), Some((leader, term)));
        assert!(statuses.live().values().all(|n| n.term == term));
        // 200 heartbeat rounds to two followers, each acknowledged.
        let heartbeats = cluster
            .events()
            .iter()
            .filter(|e| window(e) && is_heartbeat_from(e, leader, term))
            .count();
        assert_eq!(heartbeats, 2 * 200);
        finish(cluster, "steady leader").await;
    }

    /// The seed decides everything: the same seed replays the same election.
    #[tokio::test(start_paused = true)]
    async fn the_same_seed_replays_the_same_election_event_for_event() {
        let mut runs = Vec::new();
        for _ in 0..2 {
            let cluster = spawn_cluster(ClusterConfig::seeded(3, 42)).unwrap();
            cluster.wait_for_leader(ms(500)).await.unwrap();
            runs.push(cluster.events());
            finish(cluster, "seed 42").await;
        }
        assert!(!runs[0].is_empty());
        assert_eq!(runs[0], runs[1]);
    }
}

mod re_election {
    use super::*;

    /// Raft §5.2: followers that stop hearing heartbeats start a new term.
    #[tokio::test(start_paused = true)]
    async fn after_the_leader_is_crashed_the_others_elect_a_new_leader_in_a_higher_term() {
        init_tracing();
        for seed in 0..20 {
            let context = format!("seed {seed}");
            let cluster = spawn_cluster(ClusterConfig::seeded(3, seed)).unwrap();
            let (old, old_term) = cluster.wait_for_leader(ms(500)).await.unwrap();
            cluster.crash(old).await.unwrap();
            let crashed_at = cluster.elapsed();
            let (new, new_term) = successor(&cluster, (old, old_term), ms(1_000), &context).await;
            let statuses = cluster.statuses();
            assert_eq!(
                statuses.get(old),
                None,
                "{context}: a crashed node is off the board"
            );
            assert_eq!(statuses.live().len(), 2, "{context}");
            // A dead node sends nothing, and nothing reaches it.
            for event in cluster.events().iter().filter(|e| e.at > crashed_at) {
                assert_ne!(event.node, old, "{context}: {event}");
                if let EventKind::Sent { to, delivery, .. } = event.kind {
                    if to == old {
                        assert_eq!(delivery, Delivery::Down, "{context}: {event}");
                    }
                }
            }
            assert!(cluster.network_stats().down > 0, "{context}");
            let leaders = cluster.leaders_by_term();
            assert_eq!(leaders.get(&old_term), Some(&old), "{context}");
            assert_eq!(leaders.get(&new_term), Some(&new), "{context}");
            finish(cluster, &context).await;
        }
    }

    /// Figure 2: currentTerm and votedFor survive a crash, so the node comes
    /// back in its old term, learns the new one and follows its leader.
    #[tokio::test(start_paused = true)]
    async fn a_crashed_leader_restarts_from_its_stored_term_and_vote_and_follows_the_new_leader() {
        init_tracing();
        let cluster = spawn_cluster(ClusterConfig::seeded(3, 3)).unwrap();
        let (old, old_term) = cluster.wait_for_leader(ms(500)).await.unwrap();
        cluster.crash(old).await.unwrap();
        let (new, new_term) = successor(&cluster, (old, old_term), ms(1_000), "restart").await;
        let stored = cluster.hard_state(old).unwrap();
        assert_eq!(
            (stored.current_term, stored.voted_for),
            (old_term, Some(old))
        );

        cluster.restart(old).await.unwrap();
        let statuses = cluster
            .wait_until(
                |s| s.get(old).is_some_and(|n| n.leader == Some(new)),
                ms(100),
            )
            .await
            .unwrap();
        let back = statuses.get(old).unwrap();
        assert_eq!((back.role, back.term), (Role::Follower, new_term));
        let restarted = cluster
            .events()
            .into_iter()
            .filter(|e| e.node == old)
            .find_map(|e| match e.kind {
                EventKind::Started { restored } if restored.current_term > Term(0) => {
                    Some(restored)
                }
                _ => None,
            });
        assert_eq!(restarted, Some(stored), "restored from what it saved");
        assert_eq!(
            cluster.restart(old).await.unwrap_err().to_string(),
            format!("{old} is already running")
        );
        finish(cluster, "restart").await;
    }

    /// A crash whose wait is cancelled (dropped under a timeout) leaves the
    /// node down with its task possibly still ending; the restart joins that
    /// task before loading the stored state, so the two lives never overlap.
    #[tokio::test(start_paused = true)]
    async fn a_restart_after_a_cancelled_crash_joins_the_old_task_first() {
        init_tracing();
        let cluster = spawn_cluster(ClusterConfig::seeded(3, 5)).unwrap();
        let (leader, term) = cluster.wait_for_leader(ms(500)).await.unwrap();
        let cancelled = tokio::time::timeout(Duration::ZERO, cluster.crash(leader)).await;
        assert!(cancelled.is_err(), "the crash's wait was not cancelled");
        assert_eq!(cluster.statuses().get(leader), None, "down all the same");
        let (new, new_term) =
            successor(&cluster, (leader, term), ms(1_000), "cancelled crash").await;
        cluster.restart(leader).await.unwrap();
        cluster
            .wait_until(
                |s| s.get(leader).is_some_and(|n| n.leader == Some(new)),
                ms(200),
            )
            .await
            .unwrap();
        assert_eq!(cluster.statuses().get(leader).unwrap().term, new_term);
        finish(cluster, "cancelled crash").await;
    }
}

mod split_vote {
    use super::*;

    /// Raft §5.2: "if many followers become candidates at the same time, votes
    /// could be split so that no candidate obtains a majority"; randomized
    /// timeouts make the next round succeed. Here every node times out at
    /// 150 ms, votes for itself and refuses the others; then n0 times out
    /// first and wins the next term.
    #[tokio::test(start_paused = true)]
    async fn three_simultaneous_candidates_split_the_vote_and_a_later_round_elects_one_leader() {
        init_tracing();
        let schedule = BTreeMap::from([
            (NodeId(0), vec![ms(150), ms(160)]),
            (NodeId(1), vec![ms(150), ms(250)]),
            (NodeId(2), vec![ms(150), ms(300)]),
        ]);
        let config = ClusterConfig {
            timeouts: TimeoutSource::Schedule(schedule),
            ..ClusterConfig::default()
        };
        let cluster = spawn_cluster(config).unwrap();
        let (leader, term) = cluster.wait_for_leader(ms(1_000)).await.unwrap();
        assert_eq!((leader, term), (NodeId(0), Term(2)));
        assert_eq!(cluster.elapsed(), ms(310), "150 ms split, then n0's 160 ms");

        let events = cluster.events();
        let in_t1 = |e: &&Event| e.term == Term(1);
        // Every node became a candidate of t1 at the same instant.
        let candidates: BTreeMap<NodeId, Duration> = events
            .iter()
            .filter(in_t1)
            .filter(|e| {
                matches!(
                    e.kind,
                    EventKind::RoleChanged {
                        to: Role::Candidate,
                        ..
                    }
                )
            })
            .map(|e| (e.node, e.at))
            .collect();
        assert_eq!(candidates.len(), 3, "{candidates:?}");
        assert!(
            candidates.values().all(|&at| at == ms(150)),
            "{candidates:?}"
        );
        // Nobody granted a vote in t1, and nobody won it.
        let granted_in_t1 = events.iter().filter(in_t1).any(|e| {
            matches!(e.kind, EventKind::VoteGranted { .. })
                || matches!(
                    e.kind,
                    EventKind::Sent {
                        message: Message::RequestVoteResponse {
                            vote_granted: true,
                            ..
                        },
                        ..
                    }
                )
        });
        assert!(!granted_in_t1, "a vote was granted in the split term");
        let refusals_in_t1 = events
            .iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    EventKind::Sent {
                        message: Message::RequestVoteResponse {
                            term: Term(1),
                            vote_granted: false
                        },
                        ..
                    }
                )
            })
            .count();
        assert_eq!(
            refusals_in_t1, 6,
            "each of three candidates refuses the other two"
        );
        assert_eq!(
            cluster.leaders_by_term(),
            BTreeMap::from([(Term(2), NodeId(0))]),
            "t1 has no leader; t2 has exactly one"
        );
        finish(cluster, "split vote").await;
    }
}

mod stale_leader {
    use super::*;

    /// Raft §5.1: a leader cut off from the majority keeps acting as leader of
    /// its old term; the majority elects a new leader in a higher term; once
    /// the partition heals, the old leader sees the higher term and steps down.
    /// Without CheckQuorum, which would have it step down on its own about
    /// as soon as the majority elects a successor (`features.rs`).
    #[tokio::test(start_paused = true)]
    async fn a_partitioned_leader_keeps_heartbeating_then_steps_down_when_it_sees_the_new_term() {
        init_tracing();
        for seed in 0..10 {
            let context = format!("seed {seed}");
            let heartbeat = Timing::default().heartbeat_interval;
            let config = ClusterConfig {
                features: Features {
                    check_quorum: false,
                    ..Features::default()
                },
                ..ClusterConfig::seeded(3, seed)
            };
            let cluster = spawn_cluster(config).unwrap();
            let (old, old_term) = cluster.wait_for_leader(ms(500)).await.unwrap();
            let cut_at = cluster.elapsed();
            cluster.isolate(old).unwrap();
            let (new, new_term) = successor(&cluster, (old, old_term), ms(1_000), &context).await;
            let still = *cluster.statuses().get(old).unwrap();
            assert_eq!(
                (still.role, still.term),
                (Role::Leader, old_term),
                "{context}"
            );

            // The old leader kept heartbeating into the partition, every interval.
            let partitioned_at = cluster.elapsed();
            let lost_rounds: BTreeSet<Duration> = cluster
                .events()
                .iter()
                .filter(|e| e.at > cut_at && is_heartbeat_from(e, old, old_term))
                .map(|e| {
                    assert!(
                        matches!(
                            e.kind,
                            EventKind::Sent {
                                delivery: Delivery::Cut,
                                ..
                            }
                        ),
                        "{context}: {e}"
                    );
                    e.at
                })
                .collect();
            let intervals = (partitioned_at - cut_at).as_millis() / heartbeat.as_millis();
            assert!(
                intervals >= 3,
                "{context}: an election takes at least 150 ms"
            );
            assert_eq!(
                lost_rounds.len() as u128,
                intervals,
                "{context}: one round per interval"
            );

            let healed_at = cluster.elapsed();
            cluster.heal();
            let statuses = cluster
                .wait_until(
                    |s| s.get(old).is_some_and(|n| n.role == Role::Follower),
                    heartbeat,
                )
                .await
                .unwrap_or_else(|e| panic!("{context}: no step-down within one heartbeat: {e}"));
            let after = statuses.get(old).unwrap();
            assert!(after.term >= new_term, "{context}: it adopted the new term");
            let events = cluster.events();
            let step_down = events
                .iter()
                .find(|e| {
                    e.node == old
                        && matches!(
                            e.kind,
                            EventKind::RoleChanged {
                                from: Role::Leader,
                                to: Role::Follower
                            }
                        )
                })
                .unwrap();
            assert_eq!(
                step_down.term, new_term,
                "{context}: stepped down into the new term"
            );
            assert!(
                step_down.at - healed_at <= heartbeat,
                "{context}: {step_down}"
            );
            // No heartbeat of the old term after stepping down.
            assert!(
                !events
                    .iter()
                    .any(|e| e.at > step_down.at && is_heartbeat_from(e, old, old_term)),
                "{context}"
            );
            // And it follows the new leader.
            cluster
                .wait_until(
                    |s| {
                        s.get(old)
                            .is_some_and(|n| n.term == new_term && n.leader == Some(new))
                    },
                    heartbeat,
                )
                .await
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            finish(cluster, &context).await;
        }
    }
}

mod faults_and_errors {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_invalid_config_is_refused_before_any_task_starts() {
        let err = spawn_cluster(ClusterConfig::seeded(0, 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid cluster configuration: a cluster needs at least one voter"
        );
    }

    #[test]
    fn spawning_outside_a_tokio_runtime_is_an_error_not_a_panic() {
        let err = spawn_cluster(ClusterConfig::default()).unwrap_err();
        assert!(err.to_string().contains("inside a Tokio runtime"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn fault_controls_refuse_nodes_outside_the_cluster_and_double_crashes() {
        let cluster = spawn_cluster(ClusterConfig::seeded(3, 1)).unwrap();
        assert!(cluster.isolate(NodeId(3)).is_err());
        assert!(cluster.crash(NodeId(9)).await.is_err());
        cluster.crash(NodeId(1)).await.unwrap();
        assert_eq!(
            cluster.crash(NodeId(1)).await.unwrap_err().to_string(),
            "n1 is already down"
        );
        // Two of three still elect a leader.
        let (leader, _) = cluster.wait_for_leader(ms(1_000)).await.unwrap();
        assert_ne!(leader, NodeId(1));
        finish(cluster, "faults").await;
    }

    /// A single voter is its own majority (§5.2) and leads at its first timeout.
    #[tokio::test(start_paused = true)]
    async fn a_single_node_cluster_elects_itself() {
        let cluster = spawn_cluster(ClusterConfig::seeded(1, 5)).unwrap();
        let (leader, term) = cluster.wait_for_leader(ms(300)).await.unwrap();
        assert_eq!((leader, term), (NodeId(0), Term(1)));
        finish(cluster, "one node").await;
    }
}

mod real_clock {
    use super::*;

    /// The same runtime on worker threads and the real clock, where a crash can
    /// land while the victim is mid-step on another thread. The deadlines are
    /// liveness bounds about 30 times the expected election time, not timings.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_worker_threads_and_the_real_clock_a_crashed_leader_is_replaced_and_rejoins() {
        init_tracing();
        let cluster = spawn_cluster(ClusterConfig::seeded(3, 2024)).unwrap();
        let (old, old_term) = cluster.wait_for_leader(ms(10_000)).await.unwrap();
        cluster.crash(old).await.unwrap();
        let (_, new_term) = successor(&cluster, (old, old_term), ms(10_000), "real clock").await;
        cluster.restart(old).await.unwrap();
        cluster
            .wait_until(
                |s| {
                    s.get(old)
                        .is_some_and(|n| n.term >= new_term && n.role == Role::Follower)
                },
                ms(10_000),
            )
            .await
            .unwrap();
        // On the real clock the log may hold anything that happened; only
        // safety and a clean shutdown are asserted.
        finish(cluster, "real clock").await;
    }
}
