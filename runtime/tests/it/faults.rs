//! The in-process cluster's fault controls, one test per control, each
//! ending in the safety monitor's verdict over the whole run: one-way cuts,
//! lossy, duplicating and delaying links, disconnect and connect, the link
//! table, `fire`, per-node message counts, controls used beside a waiting
//! task, waits of any duration, and `crash_all` followed at once by a new
//! cluster over the same directory.
//!
//! Paused clock except where a test says otherwise, so timings are exact.

use crate::support::{finish, ms, on_disk, successor};

use raft_election::{Features, HardState, NodeId, Role, Term, Timer, Timing};
use raft_election_runtime::{
    ClusterConfig, ClusterHandle, Delivery, EventKind, LinkFaults, Observation, Statuses,
    StorageKind, spawn_cluster,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

mod links {
    use super::*;

    /// Figure 2 alone: the leader's messages to one follower are lost, the
    /// follower's to the leader are not: it stops hearing heartbeats,
    /// campaigns in a higher term, and its RequestVote deposes the leader
    /// (§5.1), whose vote answers are lost; the third node elects it.
    #[tokio::test(start_paused = true)]
    async fn a_one_way_cut_from_the_leader_lets_the_deaf_follower_take_over() {
        for seed in 0..10 {
            let context = format!("seed {seed}");
            let config = ClusterConfig {
                features: Features::NONE,
                ..ClusterConfig::seeded(3, seed)
            };
            let cluster = spawn_cluster(config).unwrap();
            let (old, term) = cluster.wait_for_leader(ms(1_000)).await.unwrap();
            let deaf = NodeId((old.0 + 1) % 3);
            cluster.cut_one_way(old, deaf).unwrap();
            let table = cluster.links();
            assert!(
                !table.is_open(old, deaf) && table.is_open(deaf, old),
                "{table}"
            );
            let (new, _) = successor(&cluster, (old, term), ms(2_000), &context).await;
            assert_eq!(new, deaf, "{context}: only the deaf follower times out");
            let statuses = cluster
                .wait_until(
                    |s| s.get(old).is_some_and(|n| n.leader == Some(deaf)),
                    ms(500),
                )
                .await
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_eq!(statuses.get(old).unwrap().role, Role::Follower);
            finish(cluster, &context).await;
        }
    }

    /// The same cut with the default features: the leader and the third
    /// node hear each other, so both ignore the deaf follower's RequestVotes
    /// under their lease (§4.2.3), and CheckQuorum keeps the leader, which
    /// still hears a majority. The deaf follower's terms climb alone; the
    /// leader of the majority stays for ten seconds.
    #[tokio::test(start_paused = true)]
    async fn with_lease_guarded_votes_a_deaf_follower_cannot_depose_the_leader() {
        for seed in 0..10 {
            let context = format!("seed {seed}");
            let cluster = spawn_cluster(ClusterConfig::seeded(3, seed)).unwrap();
            let (old, term) = cluster.wait_for_leader(ms(1_000)).await.unwrap();
            let deaf = NodeId((old.0 + 1) % 3);
            cluster.cut_one_way(old, deaf).unwrap();
            tokio::time::sleep(ms(10_000)).await;
            let statuses = cluster.statuses();
            assert_eq!(
                statuses.acknowledged_leader(),
                Some((old, term)),
                "{context}: {statuses}"
            );
            let climbed = statuses.get(deaf).unwrap().term;
            assert!(climbed > term, "{context}: the deaf follower campaigns");
            assert_eq!(cluster.leaders_by_term().len(), 1, "{context}");
            finish(cluster, &context).await;
        }
    }

    /// Every message delivered twice and each copy delayed 1 to 40 ms, so
    /// copies overtake one another, through crashes, restarts and a
    /// partition: the monitor sees every step, and a leader is still
    /// elected after each fault.
    #[tokio::test(start_paused = true)]
    async fn a_duplicating_delaying_network_keeps_every_invariant_through_crashes() {
        for seed in 0..20 {
            let context = format!("seed {seed}");
            let cluster = spawn_cluster(ClusterConfig::seeded(5, seed)).unwrap();
            let faults = LinkFaults {
                duplicate: 1.0,
                delay: Some((ms(1), ms(40))),
                ..LinkFaults::default()
            };
            cluster.set_all_links(faults).unwrap();
            let (first, t1) = cluster.wait_for_leader(ms(3_000)).await.unwrap();
            cluster.crash(first).await.unwrap();
            let (second, t2) = successor(&cluster, (first, t1), ms(3_000), &context).await;
            cluster.restart(first).await.unwrap();
            cluster.isolate(second).unwrap();
            let (_, t3) = successor(&cluster, (second, t2), ms(3_000), &context).await;
            cluster.heal();
            cluster.set_all_links(faults).unwrap();
            cluster
                .wait_until(|s| s.leaders().iter().all(|&(_, t)| t >= t3), ms(3_000))
                .await
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            // Every message that got through was copied, and both copies delayed.
            let stats = cluster.network_stats();
            assert!(stats.duplicated > 20, "{context}: {stats:?}");
            assert_eq!(stats.delayed, 2 * stats.duplicated, "{context}: {stats:?}");
            finish(cluster, &context).await;
        }
    }

    /// A third of all messages lost: elections take longer but happen, the
    /// share lost is a third (within four standard deviations of the
    /// binomial), and every loss is counted as the link's.
    #[tokio::test(start_paused = true)]
    async fn a_lossy_network_still_elects_and_counts_what_it_dropped() {
        for seed in 0..10 {
            let context = format!("seed {seed}");
            let cluster = spawn_cluster(ClusterConfig::seeded(3, seed)).unwrap();
            let lossy = LinkFaults {
                drop: 0.33,
                ..LinkFaults::default()
            };
            cluster.set_all_links(lossy).unwrap();
            cluster
                .wait_for_leader(ms(10_000))
                .await
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            tokio::time::sleep(ms(10_000)).await;
            let stats = cluster.network_stats();
            let sent = (stats.dropped + stats.delivered) as f64;
            let share = stats.dropped as f64 / sent;
            let spread = 4.0 * (0.33 * 0.67 / sent).sqrt();
            assert!(sent > 300.0, "{context}: {stats:?}");
            assert!(
                (share - 0.33).abs() < spread,
                "{context}: {share:.3} of {stats:?}"
            );
            let lost = cluster
                .events()
                .iter()
                .filter(|e| {
                    matches!(
                        e.kind,
                        EventKind::Sent {
                            delivery: Delivery::Dropped,
                            ..
                        }
                    )
                })
                .count() as u64;
            assert_eq!(lost, stats.dropped, "{context}: every drop is in the log");
            finish(cluster, &context).await;
        }
    }

    /// A disconnected leader is replaced while it still believes it leads;
    /// connected again, it hears the new term and steps down. Without
    /// CheckQuorum, which would have it step down on its own about as soon
    /// as the others elect a successor (`features.rs`, `check_quorum`).
    #[tokio::test(start_paused = true)]
    async fn a_disconnected_leader_is_replaced_and_steps_down_once_connected() {
        let config = ClusterConfig {
            features: Features {
                check_quorum: false,
                ..Features::default()
            },
            ..ClusterConfig::seeded(3, 11)
        };
        let cluster = spawn_cluster(config).unwrap();
        let (old, term) = cluster.wait_for_leader(ms(1_000)).await.unwrap();
        cluster.disconnect(old).unwrap();
        assert_eq!(cluster.links().disconnected, BTreeSet::from([old]));
        let (new, new_term) = successor(&cluster, (old, term), ms(2_000), "disconnect").await;
        let stale = cluster.statuses().get(old).copied().unwrap();
        assert_eq!((stale.role, stale.term), (Role::Leader, term));
        cluster.connect(old).unwrap();
        cluster
            .wait_until(
                |s| {
                    s.get(old)
                        .is_some_and(|n| n.term == new_term && n.leader == Some(new))
                },
                ms(500),
            )
            .await
            .unwrap();
        finish(cluster, "disconnect").await;
    }

    /// The link table shows each control in place, and heal clears them all
    /// but crashes.
    #[tokio::test(start_paused = true)]
    async fn the_link_table_shows_every_control_and_heal_clears_all_but_crashes() {
        let cluster = spawn_cluster(ClusterConfig::seeded(5, 1)).unwrap();
        let n = NodeId;
        cluster.crash(n(4)).await.unwrap();
        cluster.disconnect(n(3)).unwrap();
        cluster
            .partition(&[BTreeSet::from([n(0), n(1)]), BTreeSet::from([n(2), n(3)])])
            .unwrap();
        cluster.cut_one_way(n(0), n(1)).unwrap();
        let lossy = LinkFaults {
            drop: 0.5,
            ..LinkFaults::default()
        };
        cluster.set_link(n(1), n(0), lossy).unwrap();
        let table = cluster.links();
        assert_eq!(
            table.to_string(),
            "down {n4}; disconnected {n3}; partition {n0,n1} | {n2,n3}; n0->n1 cut; n1->n0 drop 50%"
        );
        assert!(!table.is_open(n(0), n(1)) && table.is_open(n(1), n(0)));
        assert!(!table.is_open(n(1), n(2)) && !table.is_open(n(2), n(3)));
        cluster.heal();
        let healed = cluster.links();
        assert_eq!(healed.to_string(), "down {n4}");
        assert!(healed.is_open(n(0), n(1)) && !healed.is_open(n(0), n(4)));
        finish(cluster, "link table").await;
    }

    #[tokio::test(start_paused = true)]
    async fn impossible_faults_are_refused_with_a_reason_and_change_nothing() {
        let cluster = spawn_cluster(ClusterConfig::seeded(3, 1)).unwrap();
        let bad = LinkFaults {
            duplicate: -0.1,
            ..LinkFaults::default()
        };
        let err = cluster.set_all_links(bad).unwrap_err().to_string();
        assert_eq!(
            err,
            "the duplicate probability must be between 0 and 1, not -0.1"
        );
        let forever = LinkFaults {
            delay: Some((ms(0), Duration::MAX)),
            ..LinkFaults::default()
        };
        assert!(cluster.set_link(NodeId(0), NodeId(1), forever).is_err());
        assert!(cluster.cut(NodeId(0), NodeId(9)).is_err());
        assert!(cluster.disconnect(NodeId(3)).is_err());
        assert_eq!(cluster.links().to_string(), "3 nodes, every link open");
        cluster.wait_for_leader(ms(1_000)).await.unwrap();
        finish(cluster, "refused faults").await;
    }
}

mod controls {
    use super::*;

    /// `fire` makes a follower campaign now, not when its timer says. Under
    /// Figure 2 alone it wins at once; with the default lease-guarded votes
    /// the others would ignore it while they hear the leader (a hand-over is
    /// `transfer_leadership`'s job).
    #[tokio::test(start_paused = true)]
    async fn firing_a_followers_election_timer_makes_it_campaign_and_win_at_once() {
        let config = ClusterConfig {
            features: Features::NONE,
            ..ClusterConfig::seeded(3, 4)
        };
        let cluster = spawn_cluster(config).unwrap();
        let (leader, term) = cluster.wait_for_leader(ms(1_000)).await.unwrap();
        let follower = NodeId((leader.0 + 1) % 3);
        let fired_at = cluster.elapsed();
        cluster.fire(follower, Timer::Election).unwrap();
        let (new, new_term) = cluster
            .wait_for_leader_after(term, ms(1_000))
            .await
            .unwrap();
        assert_eq!((new, new_term), (follower, Term(term.0 + 1)));
        // In far less than the minimum election timeout: nobody timed out.
        assert!(cluster.elapsed() - fired_at < ms(10));
        assert!(cluster.fire(NodeId(7), Timer::Election).is_err());
        cluster.crash(leader).await.unwrap();
        assert!(
            cluster.fire(leader, Timer::Election).is_err(),
            "a crashed node"
        );
        finish(cluster, "fire").await;
    }

    /// Fault controls take `&self`: one task crashes the leader while
    /// another waits for its successor, on the same handle.
    #[tokio::test(start_paused = true)]
    async fn a_fault_injecting_task_runs_beside_a_task_waiting_for_a_leader() {
        let cluster = spawn_cluster(ClusterConfig::seeded(3, 8)).unwrap();
        let (leader, term) = cluster.wait_for_leader(ms(1_000)).await.unwrap();
        let waiter = cluster.wait_for_leader_after(term, ms(2_000));
        let injector = async {
            tokio::time::sleep(ms(20)).await;
            cluster.crash(leader).await.unwrap();
        };
        let ((new, _), ()) = tokio::join!(async { waiter.await.unwrap() }, injector);
        assert_ne!(new, leader);
        finish(cluster, "beside a waiter").await;
    }

    /// Counts by message kind, read while the nodes run. Between two
    /// heartbeat rounds every message of the last round has been handled
    /// (delivery is instant here), so what one side sent the other received.
    #[tokio::test(start_paused = true)]
    async fn per_node_message_counts_by_kind_are_readable_while_running() {
        let cluster = spawn_cluster(ClusterConfig::seeded(3, 2)).unwrap();
        let (leader, _) = cluster
            .wait_for_leader_known_to_all(ms(1_000))
            .await
            .unwrap();
        tokio::time::sleep(ms(25)).await;
        let before = cluster.message_counts(leader).unwrap();
        tokio::time::sleep(ms(1_000)).await;
        let after = cluster.message_counts(leader).unwrap();
        // Two followers, a heartbeat each every 50 ms.
        let heartbeats = after.sent.append_entries - before.sent.append_entries;
        assert_eq!(heartbeats, 2 * 20, "{before:?} -> {after:?}");
        let followers: Vec<_> = (0..3)
            .map(NodeId)
            .filter(|&id| id != leader)
            .map(|id| cluster.message_counts(id).unwrap())
            .collect();
        let received: u64 = followers.iter().map(|c| c.received.append_entries).sum();
        let acknowledged: u64 = followers
            .iter()
            .map(|c| c.sent.append_entries_response)
            .sum();
        assert_eq!(received, after.sent.append_entries);
        assert_eq!(acknowledged, after.received.append_entries_response);
        assert!(after.received.request_vote_response >= 1, "it won a vote");
        assert_eq!(cluster.message_counts(NodeId(3)), None);
        finish(cluster, "counts").await;
    }

    /// Any duration is a valid wait: one too long for the clock waits
    /// without a deadline instead of panicking on an `Instant` overflow.
    #[tokio::test(start_paused = true)]
    async fn a_wait_of_any_duration_neither_panics_nor_gives_up_early() {
        let cluster = spawn_cluster(ClusterConfig::seeded(3, 6)).unwrap();
        let (leader, term) = cluster.wait_for_leader(Duration::MAX).await.unwrap();
        cluster.crash(leader).await.unwrap();
        successor(&cluster, (leader, term), Duration::MAX, "any duration").await;
        finish(cluster, "any duration").await;
    }

    /// Timing that no clock could add is refused at spawn, with its name.
    #[tokio::test(start_paused = true)]
    async fn a_timeout_too_long_for_any_clock_is_refused_at_spawn() {
        let config = ClusterConfig {
            timing: Timing {
                election_timeout_max: Duration::MAX,
                ..Timing::default()
            },
            ..ClusterConfig::default()
        };
        let err = spawn_cluster(config).unwrap_err().to_string();
        assert!(err.contains("election timeout max"), "{err}");
    }
}

mod crash_all {
    use super::*;

    /// Every vote one life cast, read from its event log: grants to others
    /// and each candidate's vote for itself, as (term, voter) -> candidate.
    fn votes(cluster: &ClusterHandle) -> Vec<((Term, NodeId), NodeId)> {
        cluster
            .events()
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::VoteGranted { candidate } => Some(((e.term, e.node), candidate)),
                EventKind::RoleChanged {
                    to: Role::Candidate,
                    ..
                } => Some(((e.term, e.node), e.node)),
                EventKind::Started { restored } => restored
                    .voted_for
                    .map(|v| ((restored.current_term, e.node), v)),
                _ => None,
            })
            .collect()
    }

    /// 150 lives of a cluster over one directory, on worker threads and the
    /// real clock, each crashed with `crash_all` at a varying moment after
    /// its first campaign and followed at once by the next. If a late write of a
    /// crashed life landed after the next life loaded its files, a node
    /// would start from an older vote and could vote twice in one term:
    /// every vote of every life is collected, and no node may have two
    /// candidates in one term. Each life also starts from exactly what the
    /// files held when `crash_all` returned.
    #[test]
    fn crash_all_then_a_new_cluster_over_the_same_directory_never_votes_twice_in_150_lives() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ids = [NodeId(0), NodeId(1), NodeId(2)];
        let timing = Timing {
            election_timeout_min: ms(10),
            election_timeout_max: ms(20),
            heartbeat_interval: ms(3),
        };
        let mut cast: BTreeMap<(Term, NodeId), NodeId> = BTreeMap::new();
        let mut files: BTreeMap<NodeId, HardState> =
            ids.iter().map(|&id| (id, HardState::default())).collect();
        let mut elected = 0;
        for life in 0..150u64 {
            let config = ClusterConfig {
                timing,
                storage: StorageKind::Directory(dir.path().to_path_buf()),
                observation: Observation::Full,
                ..ClusterConfig::seeded(3, life)
            };
            runtime.block_on(async {
                let cluster = spawn_cluster(config).unwrap();
                for &id in &ids {
                    assert_eq!(
                        cluster.started_from(id),
                        Some(files[&id]),
                        "life {life}, {id}"
                    );
                }
                // Every life campaigns at least once (however loaded the
                // machine), then is crashed 0 to 14 ms later: mid-election,
                // or with a leader, or with its votes still being written.
                // Per node: a campaign may reach only the highest stored
                // term, when the node that stored it is not the candidate.
                let stored: BTreeMap<NodeId, Term> =
                    files.iter().map(|(&id, s)| (id, s.current_term)).collect();
                let campaigned = |s: &Statuses| {
                    s.live()
                        .iter()
                        .any(|(id, n)| stored.get(id).is_some_and(|&t| n.term > t))
                };
                if let Err(e) = cluster.wait_until(campaigned, ms(30_000)).await {
                    panic!("life {life}: no node campaigned: {e}");
                }
                tokio::time::sleep(ms(life * 7 % 15)).await;
                cluster.crash_all().await;
                for &id in &ids {
                    files.insert(id, on_disk(dir.path(), id));
                }
                // Nothing may write once crash_all has returned.
                tokio::time::sleep(ms(5)).await;
                for &id in &ids {
                    let later = on_disk(dir.path(), id);
                    assert_eq!(
                        later, files[&id],
                        "life {life}: {id} written after crash_all"
                    );
                }
                elected += cluster.leaders_by_term().len();
                for (key, candidate) in votes(&cluster) {
                    let earlier = *cast.entry(key).or_insert(candidate);
                    assert_eq!(
                        earlier, candidate,
                        "life {life}: {} voted for {earlier} and {candidate} in {}",
                        key.1, key.0
                    );
                }
                if let Err(violation) = cluster.check_safety() {
                    panic!("life {life}: {violation}");
                }
                cluster.shutdown().await.unwrap();
            });
        }
        // Each life adds at least the self-vote of a campaign in a new term.
        assert!(cast.len() >= 150, "only {} votes in 150 lives", cast.len());
        assert!(elected > 0, "no life elected a leader");
    }
}

mod lifecycle {
    use super::*;

    /// Crashes and restarts of one node raced from two tasks on worker
    /// threads: whatever the interleaving, the link table and the status
    /// board agree at the end on whether the node is up (a crash landing
    /// between a restart's revival and its spawn left it down in the table
    /// but alive on the board).
    #[test]
    fn racing_crashes_and_restarts_leave_the_link_table_and_the_board_agreeing() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let cluster = std::sync::Arc::new(spawn_cluster(ClusterConfig::seeded(3, 9)).unwrap());
            let id = NodeId(1);
            for round in 0..300 {
                let _ = cluster.crash(id).await;
                let (a, b) = (cluster.clone(), cluster.clone());
                let restart = tokio::spawn(async move { a.restart(id).await.is_ok() });
                let crash = tokio::spawn(async move { b.crash(id).await.is_ok() });
                let (restarted, crashed) = (restart.await.unwrap(), crash.await.unwrap());
                let down = cluster.links().down.contains(&id);
                let on_board = cluster.statuses().get(id).is_some();
                assert_eq!(
                    down, !on_board,
                    "round {round}: restarted {restarted}, crashed {crashed}, down in the \
                     table {down}, on the board {on_board}"
                );
            }
            let cluster = std::sync::Arc::into_inner(cluster).expect("the only handle");
            finish(cluster, "racing crashes and restarts").await;
        });
    }

    /// Dropping a handle aborts its tasks without waiting; its directory
    /// stays locked until they are gone, so a new cluster over it is
    /// refused until then, never run beside a task that may still write.
    #[tokio::test(start_paused = true)]
    async fn a_dropped_cluster_keeps_its_directory_locked_until_its_tasks_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let config = || ClusterConfig {
            storage: StorageKind::Directory(dir.path().to_path_buf()),
            ..ClusterConfig::seeded(3, 2)
        };
        let cluster = spawn_cluster(config()).unwrap();
        cluster.wait_for_leader(ms(1_000)).await.unwrap();
        drop(cluster);
        let err = spawn_cluster(config()).unwrap_err().to_string();
        assert!(err.contains("in use"), "{err}");
        // The aborted tasks end at their next poll.
        tokio::task::yield_now().await;
        let cluster = spawn_cluster(config()).unwrap();
        cluster.wait_for_leader(ms(1_000)).await.unwrap();
        finish(cluster, "after a dropped cluster").await;
    }

    /// A heartbeat shorter than a step makes a leader's deadline always past;
    /// a paced node must still let the other tasks of its worker run (a
    /// passed deadline spends no cooperative budget), or its one worker
    /// never gets back to the timers and the board. The cluster runs on a
    /// thread of its own, so a held worker shows here as no answer in 60 s
    /// rather than a hung test.
    #[test]
    fn a_heartbeat_shorter_than_a_step_does_not_hold_the_worker() {
        let config = ClusterConfig {
            timing: Timing {
                election_timeout_min: Duration::from_micros(200),
                election_timeout_max: Duration::from_micros(400),
                heartbeat_interval: Duration::from_nanos(100),
            },
            ..ClusterConfig::seeded(3, 1)
        };
        let (done, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let cluster = spawn_cluster(config).unwrap();
                let elected = cluster.wait_for_leader(Duration::from_secs(20)).await;
                cluster.crash_all().await;
                let _ = done.send(elected.map(|_| ()).map_err(|e| e.to_string()));
            });
        });
        match answer.recv_timeout(Duration::from_secs(60)) {
            Ok(elected) => elected.unwrap(),
            Err(_) => panic!("no answer from the cluster's thread in 60 s: a node held its worker"),
        }
    }

    /// Copies a delaying link holds die with their cluster: after shutdown
    /// no task of it is left on the runtime, though the delays were far
    /// longer than the run.
    #[tokio::test(start_paused = true)]
    async fn copies_held_by_a_delaying_link_do_not_outlive_their_cluster() {
        let cluster = spawn_cluster(ClusterConfig::seeded(3, 5)).unwrap();
        cluster.wait_for_leader(ms(1_000)).await.unwrap();
        let slow = LinkFaults {
            delay: Some((Duration::from_secs(30), Duration::from_secs(40))),
            ..LinkFaults::default()
        };
        cluster.set_all_links(slow).unwrap();
        tokio::time::sleep(ms(500)).await;
        assert!(cluster.network_stats().delayed > 10);
        let metrics = tokio::runtime::Handle::current().metrics();
        assert!(metrics.num_alive_tasks() > 10, "the copies are tasks");
        finish(cluster, "delayed copies").await;
        tokio::task::yield_now().await;
        assert_eq!(metrics.num_alive_tasks(), 0, "a copy outlived its cluster");
    }
}
