//! Durable term and vote (Raft Figure 2: `currentTerm` and `votedFor` are
//! "updated on stable storage before responding to RPCs").
//!
//! In-process tests crash and restart nodes of a runtime cluster on a paused
//! clock, with state in memory and in files. (A demo process killed with
//! SIGKILL is tested beside the binary, in the cli crate.)

use crate::support::{finish, ms, on_disk};

use raft_election::{HardState, Message, NodeId, Role, Term};
use raft_election_runtime::{
    ClusterConfig, ClusterHandle, Delivery, EventKind, Statuses, StorageKind, TimeoutSource,
    spawn_cluster,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::time::Duration;

const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);

fn state(term: u64, voted_for: Option<NodeId>) -> HardState {
    HardState {
        current_term: Term(term),
        voted_for,
    }
}

mod one_vote_per_term {
    use super::*;

    /// n1 votes for n0 in t1, is crashed right after the vote is saved, and
    /// restarts while n2, a second candidate of t1, is about to ask it.
    ///
    /// The partition {n0,n1} | {n2} keeps n2 at t0, so its first timeout
    /// (200 ms) makes it a candidate of the same t1; after the restart
    /// {n1,n2} | {n0} lets its request reach n1. Returns the cluster at
    /// 150 ms past the restart (before n2's and n1's next timeouts) and
    /// the moment of the restart.
    async fn vote_crash_restart_then_a_second_candidate_asks(
        storage: StorageKind,
    ) -> (ClusterHandle, Duration) {
        let schedule = BTreeMap::from([
            (N0, vec![ms(150)]),
            (N1, vec![ms(300)]),
            (N2, vec![ms(200)]),
        ]);
        let config = ClusterConfig {
            timeouts: TimeoutSource::Schedule(schedule),
            storage,
            ..ClusterConfig::default()
        };
        let cluster = spawn_cluster(config).unwrap();
        cluster
            .partition(&[BTreeSet::from([N0, N1]), BTreeSet::from([N2])])
            .unwrap();
        // The board shows a vote only once it is saved: the driver saves
        // every Persist before it reports the step.
        let voted = |s: &Statuses| {
            s.get(N1)
                .is_some_and(|n| n.term == Term(1) && n.voted_for == Some(N0))
        };
        cluster.wait_until(voted, ms(1_000)).await.unwrap();
        cluster.crash(N1).await.unwrap();
        assert_eq!(cluster.hard_state(N1).unwrap(), state(1, Some(N0)));
        cluster
            .partition(&[BTreeSet::from([N1, N2]), BTreeSet::from([N0])])
            .unwrap();
        let restarted_at = cluster.elapsed();
        cluster.restart(N1).await.unwrap();
        assert_eq!(cluster.started_from(N1), Some(state(1, Some(N0))));
        tokio::time::sleep(ms(150)).await;
        (cluster, restarted_at)
    }

    /// Figure 2's "votedFor … updated on stable storage before responding",
    /// with state in memory and in files. A node restarted from term 0 would
    /// grant n2's request, and two leaders of t1 would become possible: the
    /// model checker's `--volatile-restarts` shows that trace.
    #[tokio::test(start_paused = true)]
    async fn a_node_crashed_right_after_voting_never_votes_for_a_second_candidate_in_that_term() {
        let dir = tempfile::tempdir().unwrap();
        for storage in [
            StorageKind::Memory,
            StorageKind::Directory(dir.path().to_path_buf()),
        ] {
            let context = format!("{storage:?}");
            let (cluster, restarted_at) =
                vote_crash_restart_then_a_second_candidate_asks(storage).await;
            let events = cluster.events();
            let after_restart = || events.iter().filter(|e| e.at >= restarted_at);
            let asked = after_restart().any(|e| {
                e.node == N2
                    && matches!(
                        e.kind,
                        EventKind::Sent {
                            to: N1,
                            message: Message::RequestVote { term: Term(1), .. },
                            delivery: Delivery::Delivered,
                        }
                    )
            });
            assert!(asked, "{context}: n2 asked the restarted n1 for t1");
            let answers: Vec<bool> = after_restart()
                .filter(|e| e.node == N1)
                .filter_map(|e| match e.kind {
                    EventKind::Sent {
                        to: N2,
                        message:
                            Message::RequestVoteResponse {
                                term: Term(1),
                                vote_granted,
                            },
                        ..
                    } => Some(vote_granted),
                    _ => None,
                })
                .collect();
            assert_eq!(answers, [false], "{context}: n1 refused n2 in t1, once");
            let other_votes_in_t1: Vec<_> = events
                .iter()
                .filter(|e| e.node == N1 && e.term == Term(1))
                .filter(
                    |e| matches!(e.kind, EventKind::VoteGranted { candidate } if candidate != N0),
                )
                .collect();
            assert!(
                other_votes_in_t1.is_empty(),
                "{context}: {other_votes_in_t1:?}"
            );
            let n1 = *cluster.statuses().get(N1).unwrap();
            assert_eq!((n1.term, n1.voted_for), (Term(1), Some(N0)), "{context}");
            assert_eq!(
                cluster.leaders_by_term(),
                BTreeMap::from([(Term(1), N0)]),
                "{context}"
            );
            finish(cluster, &context).await;
        }
    }
}

mod restart_from_files {
    use super::*;

    fn on_files(dir: &Path, seed: u64) -> ClusterConfig {
        ClusterConfig {
            storage: StorageKind::Directory(dir.to_path_buf()),
            ..ClusterConfig::seeded(3, seed)
        }
    }

    /// A follower crashed after voting comes back from its file with the same
    /// term and vote; then the whole cluster is stopped and a new one over
    /// the same directory resumes every node from its file.
    #[tokio::test(start_paused = true)]
    async fn a_node_restarted_from_its_file_keeps_its_term_and_vote() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = spawn_cluster(on_files(dir.path(), 5)).unwrap();
        let (leader, term) = cluster.wait_for_leader(ms(1_000)).await.unwrap();
        let statuses = cluster.statuses();
        let voter = statuses
            .live()
            .iter()
            .find(|&(&id, s)| id != leader && s.voted_for == Some(leader))
            .map(|(&id, _)| id)
            .expect("a leader has at least one vote besides its own");
        cluster.crash(voter).await.unwrap();
        let saved = on_disk(dir.path(), voter);
        assert_eq!(saved, state(term.0, Some(leader)));
        assert_eq!(cluster.hard_state(voter).unwrap(), saved);

        cluster.restart(voter).await.unwrap();
        assert_eq!(cluster.started_from(voter), Some(saved));
        // Back on the board at once; following the leader once it has run.
        assert!(cluster.statuses().get(voter).is_some());
        let back = cluster
            .wait_until(
                |s| s.get(voter).is_some_and(|n| n.leader.is_some()),
                ms(100),
            )
            .await
            .unwrap();
        let back = back.get(voter).unwrap();
        assert_eq!(
            (back.role, back.term, back.voted_for, back.leader),
            (Role::Follower, term, Some(leader), Some(leader))
        );
        let starts: Vec<HardState> = cluster
            .events()
            .iter()
            .filter(|e| e.node == voter)
            .filter_map(|e| match e.kind {
                EventKind::Started { restored } => Some(restored),
                _ => None,
            })
            .collect();
        assert_eq!(starts, [HardState::default(), saved]);
        finish(cluster, "restart one node").await;

        // A new cluster (a new process, as far as storage can tell).
        let before: BTreeMap<NodeId, HardState> = [N0, N1, N2]
            .into_iter()
            .map(|id| (id, on_disk(dir.path(), id)))
            .collect();
        assert!(
            before.values().all(|s| s.current_term >= term),
            "{before:?}"
        );
        let cluster = spawn_cluster(on_files(dir.path(), 6)).unwrap();
        for (&id, &stored) in &before {
            assert_eq!(cluster.started_from(id), Some(stored), "{id}");
        }
        let (_, new_term) = cluster.wait_for_leader(ms(1_000)).await.unwrap();
        assert!(new_term > term, "terms go on from the files: {new_term}");
        finish(cluster, "a new cluster over the same files").await;
        for (&id, &stored) in &before {
            assert!(on_disk(dir.path(), id).current_term >= stored.current_term);
        }
    }
}

mod corrupt_files {
    use super::*;

    /// Figure 2's promise rests on the file; a node that cannot read it must
    /// not start from t0, where it could vote again in a term it voted in.
    const REFUSAL: &str =
        "refusing to start from an empty state, which could vote twice in one term";

    /// Files left by a cluster that elected a leader and stopped.
    async fn files_of_a_finished_cluster(dir: &Path) {
        let config = ClusterConfig {
            storage: StorageKind::Directory(dir.to_path_buf()),
            ..ClusterConfig::seeded(3, 9)
        };
        let cluster = spawn_cluster(config).unwrap();
        cluster.wait_for_leader(ms(1_000)).await.unwrap();
        finish(cluster, "writing the files").await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_corrupt_state_file_is_refused_at_spawn_with_a_readable_message() {
        let dir = tempfile::tempdir().unwrap();
        files_of_a_finished_cluster(dir.path()).await;
        let path = dir.path().join("node-1.state");
        let good = fs::read_to_string(&path).unwrap();
        let term_line = good
            .lines()
            .find(|line| line.starts_with("current_term "))
            .unwrap()
            .to_owned();
        // An edited term with the old checksum: a torn or tampered file.
        let bad = good.replace(&term_line, "current_term 0");
        assert_ne!(bad, good);
        fs::write(&path, &bad).unwrap();

        let config = ClusterConfig {
            storage: StorageKind::Directory(dir.path().to_path_buf()),
            ..ClusterConfig::seeded(3, 9)
        };
        let message = spawn_cluster(config).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!(
                "cannot start n1: {} is corrupt (checksum ",
                path.display()
            )),
            "{message}"
        );
        assert!(message.contains("does not match the contents"), "{message}");
        assert!(message.contains(REFUSAL), "{message}");
        assert_eq!(fs::read_to_string(&path).unwrap(), bad, "left as found");
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_whose_file_was_truncated_while_it_was_down_is_not_restarted() {
        let dir = tempfile::tempdir().unwrap();
        let config = ClusterConfig {
            storage: StorageKind::Directory(dir.path().to_path_buf()),
            ..ClusterConfig::seeded(3, 4)
        };
        let cluster = spawn_cluster(config).unwrap();
        let (leader, term) = cluster.wait_for_leader(ms(1_000)).await.unwrap();
        let follower = [N0, N1, N2].into_iter().find(|&id| id != leader).unwrap();
        cluster.crash(follower).await.unwrap();
        let path = dir.path().join(format!("node-{}.state", follower.0));
        let good = fs::read_to_string(&path).unwrap();
        let truncated = &good[..good.len() / 2];
        fs::write(&path, truncated).unwrap();

        let message = cluster.restart(follower).await.unwrap_err().to_string();
        let expected = format!(
            "cannot read the stored state of {follower}: {} is corrupt (missing `",
            path.display()
        );
        assert!(message.starts_with(&expected), "{message}");
        assert!(message.contains(REFUSAL), "{message}");
        assert_eq!(cluster.statuses().get(follower), None, "it stays down");
        assert_eq!(fs::read_to_string(&path).unwrap(), truncated);
        // The other two are a majority and keep their leader.
        tokio::time::sleep(ms(1_000)).await;
        assert_eq!(
            cluster.statuses().acknowledged_leader(),
            Some((leader, term))
        );
        finish(cluster, "truncated file").await;
    }
}
