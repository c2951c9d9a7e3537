//! Fault scenarios on the deterministic in-memory cluster (`raft_election_sim::Cluster`),
//! written the way raft-rs's harness reads: campaign, cut, isolate, heal.
//! Every step is checked against every invariant by the simulator itself; the
//! assertions here are about roles and terms. The nodes run Figure 2 alone
//! ([`Features::NONE`]); `features.rs` has the thesis' features.

use raft_election::{Config, Features, LogSummary, NodeId, Role, Term, Timer, Timing};
use raft_election_sim::Cluster;

const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);
const N3: NodeId = NodeId(3);

/// Enough deliveries for any election in these small clusters to settle.
const SETTLE: usize = 1_000;

fn cluster(nodes: u8) -> Cluster {
    cluster_with_logs(&vec![LogSummary::default(); usize::from(nodes)])
}

fn cluster_with_logs(logs: &[LogSummary]) -> Cluster {
    let nodes = u8::try_from(logs.len()).expect("small cluster");
    let configs = Config::cluster(nodes, Timing::default())
        .expect("valid config")
        .into_iter()
        .map(|config| config.with_features(Features::NONE))
        .collect();
    Cluster::new(configs, logs)
}

fn roles(cluster: &Cluster) -> Vec<Option<Role>> {
    cluster.ids().map(|id| cluster.role(id)).collect()
}

mod election {
    use super::*;

    /// §5.2: a follower that times out campaigns and wins with a majority.
    #[test]
    fn a_follower_that_times_out_is_elected_and_everyone_follows_it() {
        let mut cluster = cluster(3);
        assert!(cluster.campaign(N0, SETTLE).unwrap());
        assert_eq!(cluster.leaders(), vec![(N0, Term(1))]);
        for id in [N1, N2] {
            let node = cluster.node(id).unwrap();
            assert_eq!(node.role(), Role::Follower);
            assert_eq!(node.current_term(), Term(1));
            assert_eq!(node.leader_id(), Some(N0), "{id} learned the leader");
        }
    }

    /// The leader's heartbeats keep followers' election timers armed and
    /// the leader in place: nothing changes over many heartbeat rounds.
    #[test]
    fn heartbeats_keep_a_leader_in_place() {
        let mut cluster = cluster(3);
        cluster.campaign(N0, SETTLE).unwrap();
        for _ in 0..10 {
            assert!(cluster.fire(N0, Timer::Heartbeat).unwrap());
            cluster.stabilize(SETTLE).unwrap();
        }
        assert_eq!(cluster.leaders(), vec![(N0, Term(1))]);
        assert!(cluster.is_armed(N1, Timer::Election));
        assert!(!cluster.is_armed(N0, Timer::Election));
    }

    /// §5.2: when everyone campaigns at once, each votes for itself, no one
    /// reaches a majority, and the term ends without a leader. The next
    /// timeout (randomized, so rarely simultaneous) starts a term that wins.
    #[test]
    fn a_split_vote_elects_no_one_and_a_later_term_elects_exactly_one() {
        let mut cluster = cluster(3);
        for id in [N0, N1, N2] {
            assert!(cluster.fire(id, Timer::Election).unwrap());
        }
        cluster.stabilize(SETTLE).unwrap();
        assert!(cluster.leaders().is_empty(), "term 1 is split");
        assert_eq!(roles(&cluster), vec![Some(Role::Candidate); 3]);

        assert!(cluster.campaign(N1, SETTLE).unwrap());
        assert_eq!(cluster.leaders(), vec![(N1, Term(2))]);
        assert_eq!(cluster.history().leaders().len(), 1, "no leader of term 1");
    }

    /// A split in a 4-node cluster: two candidates get two votes each, and 3 are needed.
    #[test]
    fn two_candidates_with_two_votes_each_split_a_four_node_cluster() {
        let mut cluster = cluster(4);
        cluster.cut(N0, N3);
        cluster.cut(N1, N2);
        cluster.fire(N0, Timer::Election).unwrap();
        cluster.fire(N1, Timer::Election).unwrap();
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.role(N0), Some(Role::Candidate));
        assert_eq!(cluster.role(N1), Some(Role::Candidate));
        assert_eq!(cluster.node(N2).unwrap().voted_for(), Some(N0));
        assert_eq!(cluster.node(N3).unwrap().voted_for(), Some(N1));

        cluster.heal();
        cluster.campaign(N0, SETTLE).unwrap();
        assert_eq!(cluster.leaders(), vec![(N0, Term(2))]);
    }
}

mod crash {
    use super::*;

    /// §5.2: followers of a crashed leader time out and elect a new leader
    /// in a higher term.
    #[test]
    fn a_crashed_leader_is_replaced_in_a_higher_term() {
        let mut cluster = cluster(3);
        cluster.campaign(N0, SETTLE).unwrap();
        assert!(cluster.crash(N0));
        cluster.campaign(N1, SETTLE).unwrap();
        assert_eq!(cluster.leaders(), vec![(N1, Term(2))]);
        assert_eq!(cluster.node(N2).unwrap().leader_id(), Some(N1));
    }

    /// Figure 2: votedFor is persisted before the vote is sent, so a voter
    /// that crashes right after voting still refuses a second candidate of
    /// the same term after it restarts.
    #[test]
    fn a_voter_restarted_after_voting_refuses_a_second_candidate_of_that_term() {
        let mut cluster = cluster(3);
        cluster.fire(N0, Timer::Election).unwrap();
        cluster.fire(N2, Timer::Election).unwrap();
        // In flight: n0's and n2's RequestVote for term 1 to each peer.
        let to_n1_from = |cluster: &Cluster, from: NodeId| {
            cluster
                .in_flight()
                .iter()
                .position(|e| e.from == from && e.to == N1)
                .expect("request in flight")
        };
        let first = to_n1_from(&cluster, N0);
        cluster.deliver(first).unwrap();
        assert_eq!(cluster.node(N1).unwrap().voted_for(), Some(N0));

        assert!(cluster.crash(N1));
        assert!(cluster.restart(N1).unwrap());
        assert_eq!(
            cluster.node(N1).unwrap().voted_for(),
            Some(N0),
            "the vote survived"
        );

        let second = to_n1_from(&cluster, N2);
        cluster.deliver(second).unwrap();
        assert_eq!(cluster.node(N1).unwrap().voted_for(), Some(N0));
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.leaders(), vec![(N0, Term(1))]);
    }

    /// With a majority down no one can be elected, however often timers fire;
    /// once one node returns there is a majority again.
    #[test]
    fn no_leader_without_a_live_majority_and_one_as_soon_as_it_returns() {
        let mut cluster = cluster(3);
        cluster.crash(N1);
        cluster.crash(N2);
        for _ in 0..5 {
            cluster.campaign(N0, SETTLE).unwrap();
        }
        assert!(cluster.leaders().is_empty());
        assert_eq!(cluster.term(N0), Some(Term(5)));

        cluster.restart(N1).unwrap();
        cluster.campaign(N0, SETTLE).unwrap();
        assert_eq!(cluster.leaders(), vec![(N0, Term(6))]);
    }
}

mod partition {
    use super::*;

    /// §5.1: a leader cut off from the majority keeps its role (it cannot
    /// know), the majority elects another, and the old leader steps down as
    /// soon as a message shows it the higher term.
    #[test]
    fn an_isolated_leader_is_replaced_and_steps_down_on_heal() {
        let mut cluster = cluster(3);
        cluster.campaign(N0, SETTLE).unwrap();
        cluster.isolate(N0);

        cluster.fire(N0, Timer::Heartbeat).unwrap();
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.role(N0), Some(Role::Leader), "it cannot know yet");

        cluster.campaign(N1, SETTLE).unwrap();
        assert_eq!(cluster.leaders(), vec![(N0, Term(1)), (N1, Term(2))]);

        cluster.heal();
        // Its next heartbeat is answered with term 2.
        cluster.fire(N0, Timer::Heartbeat).unwrap();
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.role(N0), Some(Role::Follower));
        assert_eq!(cluster.term(N0), Some(Term(2)));

        cluster.fire(N1, Timer::Heartbeat).unwrap();
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.node(N0).unwrap().leader_id(), Some(N1));
        assert_eq!(cluster.leaders(), vec![(N1, Term(2))]);
    }

    /// Without PreVote (thesis §9.6), a follower cut off from the leader
    /// keeps raising its term; when it returns, its higher term deposes the
    /// healthy leader. Safety holds; a new election follows. This is the
    /// disruption PreVote and CheckQuorum exist to avoid.
    #[test]
    fn a_returning_partitioned_follower_with_a_higher_term_deposes_the_leader() {
        let mut cluster = cluster(3);
        cluster.campaign(N0, SETTLE).unwrap();
        cluster.isolate(N2);
        for _ in 0..3 {
            cluster.campaign(N2, SETTLE).unwrap();
        }
        assert_eq!(cluster.term(N2), Some(Term(4)));
        cluster.heal();
        cluster.fire(N0, Timer::Heartbeat).unwrap();
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.role(N0), Some(Role::Follower), "deposed by term 4");
        // n1 still thinks it is term 1: its first campaign (term 2) is refused
        // with term 4, and only its next one can win.
        cluster.campaign(N1, SETTLE).unwrap();
        assert!(cluster.leaders().is_empty());
        assert_eq!(cluster.term(N1), Some(Term(4)));
        cluster.campaign(N1, SETTLE).unwrap();
        assert_eq!(cluster.leaders(), vec![(N1, Term(5))]);
    }
}

mod vote_restriction {
    use super::*;

    /// §5.4.1: a candidate whose log is behind a majority's cannot win.
    #[test]
    fn a_candidate_with_a_stale_log_cannot_win() {
        let ahead = LogSummary {
            last_log_index: 4,
            last_log_term: Term(2),
        };
        let behind = LogSummary {
            last_log_index: 9,
            last_log_term: Term(1),
        };
        let mut cluster = cluster_with_logs(&[behind, ahead, ahead]);
        cluster.campaign(N0, SETTLE).unwrap();
        assert!(cluster.leaders().is_empty());
        assert_eq!(cluster.role(N0), Some(Role::Candidate));

        cluster.campaign(N1, SETTLE).unwrap();
        assert_eq!(cluster.leaders(), vec![(N1, Term(2))]);
    }
}

mod messages {
    use super::*;

    /// Duplicated and reordered deliveries change nothing about the outcome.
    #[test]
    fn duplicated_votes_elect_no_one_twice() {
        let mut cluster = cluster(3);
        cluster.fire(N0, Timer::Election).unwrap();
        for index in 0..cluster.in_flight().len() {
            assert!(cluster.duplicate(index));
        }
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.leaders(), vec![(N0, Term(1))]);
    }
}
