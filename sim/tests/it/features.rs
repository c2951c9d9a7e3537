//! The situations etcd-io/raft's tests are named after, for the thesis'
//! election features, on the deterministic simulator: nothing happens
//! unless a test says so (a timer fires only when fired, a message moves
//! only when delivered), so each situation is exact. Every step is checked
//! against every invariant by the simulator itself.
//!
//! The same situations on the real clock (how long things take) are in
//! `runtime/tests/it/features.rs`.

use raft_election::{Config, Features, LogSummary, Message, NodeId, Role, Term, Timer, Timing};
use raft_election_sim::Cluster;

const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);

/// Enough deliveries for any election in these small clusters to settle.
const SETTLE: usize = 1_000;

/// The default features: CheckQuorum, lease-guarded votes, leadership transfer.
fn defaults() -> Features {
    Features::default()
}

/// Every feature, Pre-Vote included.
const ALL: Features = Features::ALL;

fn cluster(features: Features) -> Cluster {
    cluster_with_logs(features, &[LogSummary::default(); 3])
}

fn cluster_with_logs(features: Features, logs: &[LogSummary]) -> Cluster {
    let nodes = u8::try_from(logs.len()).expect("small cluster");
    let configs = Config::cluster(nodes, Timing::default())
        .expect("valid config")
        .into_iter()
        .map(|config| config.with_features(features))
        .collect();
    Cluster::new(configs, logs)
}

/// `n0` leads `t1`, and both followers heard its heartbeat (they are in
/// its lease, if the features keep one).
fn n0_leads(features: Features) -> Cluster {
    let mut cluster = cluster(features);
    assert!(cluster.campaign(N0, SETTLE).unwrap());
    assert_eq!(cluster.leaders(), vec![(N0, Term(1))]);
    cluster
}

/// The leader sends a round of heartbeats and every message settles.
fn heartbeat(cluster: &mut Cluster, leader: NodeId) {
    assert!(cluster.fire(leader, Timer::Heartbeat).unwrap());
    cluster.stabilize(SETTLE).unwrap();
}

fn role_and_term(cluster: &Cluster, id: NodeId) -> (Role, Term) {
    (cluster.role(id).unwrap(), cluster.term(id).unwrap())
}

mod disruptive_follower {
    use super::*;

    /// etcd's TestDisruptiveFollower: a follower cut off from the cluster
    /// times out and raises its term; when it returns, its answer to the
    /// leader's next heartbeat carries that term and deposes a healthy
    /// leader (§5.1). Lease-guarded votes and CheckQuorum do not prevent it:
    /// the term arrives in a reply, not a vote request.
    #[test]
    fn without_pre_vote_a_returning_follower_deposes_the_leader() {
        let mut cluster = n0_leads(defaults());
        cluster.isolate(N2);
        for _ in 0..2 {
            assert!(cluster.fire(N2, Timer::Election).unwrap());
            cluster.stabilize(SETTLE).unwrap();
        }
        assert_eq!(role_and_term(&cluster, N2), (Role::Candidate, Term(3)));
        cluster.heal();
        heartbeat(&mut cluster, N0);
        assert_eq!(role_and_term(&cluster, N0), (Role::Follower, Term(3)));
        assert!(cluster.leaders().is_empty(), "an election must follow");
    }

    /// etcd's TestDisruptiveFollowerPreVote: with Pre-Vote the isolated
    /// follower asks, nobody answers, and its term stays. When it returns,
    /// the leader's heartbeat makes it a follower again: nothing changed.
    #[test]
    fn with_pre_vote_a_returning_follower_follows_the_leader_again() {
        let mut cluster = n0_leads(ALL);
        cluster.isolate(N2);
        for _ in 0..2 {
            assert!(cluster.fire(N2, Timer::Election).unwrap());
            cluster.stabilize(SETTLE).unwrap();
        }
        assert_eq!(role_and_term(&cluster, N2), (Role::PreCandidate, Term(1)));
        cluster.heal();
        heartbeat(&mut cluster, N0);
        assert_eq!(cluster.leaders(), vec![(N0, Term(1))]);
        assert_eq!(role_and_term(&cluster, N2), (Role::Follower, Term(1)));
        assert_eq!(cluster.node(N2).unwrap().leader_id(), Some(N0));
        assert_eq!(cluster.feature_counts().pre_votes_won, 1, "n0's own only");
    }

    /// Even a returning follower that could win the others' pre-votes is
    /// refused while they hear the leader (§9.6), and when its own campaign
    /// asks during the leader's heartbeats nobody grants it.
    #[test]
    fn a_pre_vote_during_a_live_leader_is_refused_by_every_voter() {
        let mut cluster = n0_leads(ALL);
        assert!(cluster.fire(N2, Timer::Election).unwrap());
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(role_and_term(&cluster, N2), (Role::PreCandidate, Term(1)));
        assert_eq!(cluster.leaders(), vec![(N0, Term(1))]);
        let grants = cluster
            .in_flight()
            .iter()
            .filter(|e| matches!(e.message, Message::PreVoteResponse { .. }))
            .count();
        assert_eq!(grants, 0);
    }
}

mod check_quorum {
    use super::*;

    /// CheckQuorum ticks in the default timing's window: 150 ms of 50 ms
    /// heartbeats.
    const WINDOW: usize = 3;

    /// etcd's TestLeaderStepdownWhenQuorumLost: a leader cut off from both
    /// followers hears no one for a whole window of CheckQuorum ticks and
    /// steps down at the next, while the majority elects a leader of its
    /// own. Its followers acknowledged its first heartbeats before the cut,
    /// so the window counts from then.
    #[test]
    fn a_leader_in_a_minority_steps_down_at_the_first_tick_past_its_window() {
        let mut cluster = n0_leads(defaults());
        cluster.isolate(N0);
        for _ in 0..WINDOW {
            assert!(cluster.fire(N0, Timer::CheckQuorum).unwrap());
            assert_eq!(role_and_term(&cluster, N0), (Role::Leader, Term(1)));
        }
        assert!(cluster.fire(N0, Timer::CheckQuorum).unwrap());
        assert_eq!(role_and_term(&cluster, N0), (Role::Follower, Term(1)));
        assert_eq!(cluster.node(N0).unwrap().leader_id(), None);
        assert_eq!(cluster.feature_counts().check_quorum_step_downs, 1);
        // The majority's lease on n0 runs out and it elects n1.
        assert!(cluster.fire(N2, Timer::Lease).unwrap());
        assert!(cluster.fire(N1, Timer::Lease).unwrap());
        assert!(cluster.campaign(N1, SETTLE).unwrap());
        assert_eq!(cluster.leaders(), vec![(N1, Term(2))]);
        cluster.heal();
        heartbeat(&mut cluster, N1);
        assert_eq!(cluster.node(N0).unwrap().leader_id(), Some(N1));
    }

    /// etcd's TestLeaderStepdownWhenQuorumActive: a leader that hears a
    /// majority within every window stays, ticking once per heartbeat as
    /// the runtime does.
    #[test]
    fn a_leader_that_hears_a_majority_within_every_window_stays() {
        let mut cluster = n0_leads(defaults());
        cluster.cut(N0, N2);
        for _ in 0..5 * WINDOW {
            heartbeat(&mut cluster, N0);
            assert!(cluster.fire(N0, Timer::CheckQuorum).unwrap());
            assert_eq!(cluster.leaders(), vec![(N0, Term(1))]);
        }
    }

    /// etcd's TestLeaderSupersedingWithCheckQuorum: a node that hears the
    /// leader ignores a RequestVote until its lease has passed; then the
    /// candidate can win.
    #[test]
    fn a_voter_ignores_a_candidate_until_its_lease_on_the_leader_passes() {
        let mut cluster = n0_leads(defaults());
        cluster.isolate(N0);
        assert!(cluster.fire(N2, Timer::Election).unwrap());
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(role_and_term(&cluster, N2), (Role::Candidate, Term(2)));
        assert_eq!(role_and_term(&cluster, N1), (Role::Follower, Term(1)));
        assert!(cluster.fire(N1, Timer::Lease).unwrap());
        assert!(cluster.campaign(N2, SETTLE).unwrap());
        assert_eq!(cluster.leaders(), vec![(N0, Term(1)), (N2, Term(3))]);
    }

    /// etcd's TestFreeStuckCandidateWithCheckQuorum: a candidate isolated
    /// with a higher term cannot win while the others hold their lease, and
    /// is freed when it returns: its reply to the leader's heartbeat carries
    /// its term, the leader steps down, and the next election completes.
    #[test]
    fn a_stuck_higher_term_candidate_is_freed_when_it_returns() {
        let mut cluster = n0_leads(defaults());
        cluster.isolate(N2);
        for _ in 0..2 {
            assert!(cluster.fire(N2, Timer::Election).unwrap());
            cluster.stabilize(SETTLE).unwrap();
        }
        assert_eq!(role_and_term(&cluster, N2), (Role::Candidate, Term(3)));
        cluster.heal();
        heartbeat(&mut cluster, N0);
        assert_eq!(role_and_term(&cluster, N0), (Role::Follower, Term(3)));
        // n1 still holds its lease on n0's heartbeat; n0 no longer leads,
        // holds none, and grants n2's next campaign.
        assert!(cluster.campaign(N2, SETTLE).unwrap());
        assert_eq!(cluster.leaders(), vec![(N2, Term(4))]);
    }
}

mod pre_vote_with_check_quorum {
    use super::*;

    /// etcd's TestPreVoteWithCheckQuorum (issue 9586): the leader is cut
    /// off while both followers still trust it. The first to time out asks,
    /// and the other, within its lease, refuses; the second to time out
    /// asks the first, which gave up its lease when it campaigned, and is
    /// granted. Had a pre-candidate kept its lease, each would refuse the
    /// other forever.
    #[test]
    fn two_followers_of_a_lost_leader_still_elect_one_of_them() {
        let mut cluster = n0_leads(ALL);
        cluster.isolate(N0);
        assert!(cluster.fire(N2, Timer::Election).unwrap());
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(role_and_term(&cluster, N2), (Role::PreCandidate, Term(1)));
        assert_eq!(role_and_term(&cluster, N1), (Role::Follower, Term(1)));
        assert!(cluster.fire(N1, Timer::Election).unwrap());
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(role_and_term(&cluster, N1), (Role::Leader, Term(2)));
        assert_eq!(role_and_term(&cluster, N2), (Role::Follower, Term(2)));
    }

    /// etcd's TestPreVoteWithSplitVote: Pre-Vote does not stop a split vote
    /// from being resolved. Both followers of a lost leader campaign at
    /// once, grant each other's pre-votes, and split term 2; the next to
    /// time out asks again, is granted, and wins term 3.
    #[test]
    fn a_split_vote_after_pre_votes_is_resolved_by_the_next_timeout() {
        let mut cluster = n0_leads(ALL);
        cluster.isolate(N0);
        assert!(cluster.fire(N1, Timer::Election).unwrap());
        assert!(cluster.fire(N2, Timer::Election).unwrap());
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(role_and_term(&cluster, N1), (Role::Candidate, Term(2)));
        assert_eq!(role_and_term(&cluster, N2), (Role::Candidate, Term(2)));
        assert!(cluster.campaign(N1, SETTLE).unwrap());
        assert_eq!(role_and_term(&cluster, N1), (Role::Leader, Term(3)));
        assert_eq!(role_and_term(&cluster, N2), (Role::Follower, Term(3)));
    }

    /// etcd's TestNodeWithSmallerTermCanCompleteElection: a node that fell
    /// behind in terms while cut off, and the only other node left, still
    /// elect a leader once the leader is lost. The node ahead refuses the
    /// late node's pre-vote with its term, which the late node adopts; then
    /// the node ahead asks, and the late node grants.
    #[test]
    fn a_node_behind_in_terms_and_one_ahead_still_complete_an_election() {
        let mut cluster = n0_leads(ALL);
        // n0 hands over to n1 while n2 is cut off: n0 and n1 reach term 2,
        // n2 stays in term 1.
        cluster.isolate(N2);
        assert!(cluster.transfer_leadership(N0, N1).unwrap());
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.leaders(), vec![(N1, Term(2))]);
        assert_eq!(cluster.term(N2), Some(Term(1)));
        // n2 returns just as n1, the leader, is lost.
        cluster.heal();
        cluster.isolate(N1);
        assert!(cluster.fire(N2, Timer::Election).unwrap());
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(role_and_term(&cluster, N2), (Role::Follower, Term(2)));
        // n0's lease on n1 runs out; it asks, n2 grants, n0 wins.
        assert!(cluster.fire(N0, Timer::Lease).unwrap());
        assert!(cluster.campaign(N0, SETTLE).unwrap());
        assert_eq!(role_and_term(&cluster, N0), (Role::Leader, Term(3)));
        assert_eq!(role_and_term(&cluster, N2), (Role::Follower, Term(3)));
    }
}

mod dueling_candidates {
    use super::*;

    /// etcd's TestDuelingCandidates: n0 and n2 cannot hear each other and
    /// both campaign; n1 votes for n0, which wins; n2's campaign fails. When
    /// the link returns, n2's next campaign (a higher term) deposes n0.
    #[test]
    fn without_pre_vote_the_loser_of_a_duel_deposes_the_winner_after_the_heal() {
        let mut cluster = cluster(Features::NONE);
        cluster.cut(N0, N2);
        assert!(cluster.fire(N0, Timer::Election).unwrap());
        assert!(cluster.fire(N2, Timer::Election).unwrap());
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.leaders(), vec![(N0, Term(1))]);
        assert_eq!(role_and_term(&cluster, N2), (Role::Candidate, Term(1)));
        cluster.heal();
        assert!(cluster.campaign(N2, SETTLE).unwrap());
        assert_eq!(cluster.leaders(), vec![(N2, Term(2))]);
        assert_eq!(role_and_term(&cluster, N0), (Role::Follower, Term(2)));
    }

    /// etcd's TestDuelingPreCandidates: with Pre-Vote, n2's ask is refused
    /// by n1, which already voted in the term n2 asks about; the refusal
    /// tells n2 that term, which it adopts as a follower instead of raising
    /// its own past it. After the heal, n0's heartbeat names the leader, and
    /// n0 leads on.
    #[test]
    fn with_pre_vote_the_loser_of_a_duel_follows_the_winner_after_the_heal() {
        let mut cluster = cluster(ALL);
        cluster.cut(N0, N2);
        assert!(cluster.fire(N0, Timer::Election).unwrap());
        cluster.stabilize(SETTLE).unwrap();
        assert!(cluster.fire(N2, Timer::Election).unwrap());
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.leaders(), vec![(N0, Term(1))]);
        assert_eq!(role_and_term(&cluster, N2), (Role::Follower, Term(1)));
        assert_eq!(cluster.node(N2).unwrap().leader_id(), None);
        cluster.heal();
        heartbeat(&mut cluster, N0);
        assert_eq!(cluster.leaders(), vec![(N0, Term(1))]);
        assert_eq!(role_and_term(&cluster, N2), (Role::Follower, Term(1)));
    }
}

mod late_request_vote {
    use super::*;

    /// A RequestVote of a later term arriving after the election is decided
    /// (a candidate that lost, timed out and tried again) is ignored by a
    /// follower that hears the leader: no term change, no vote (§4.2.3).
    #[test]
    fn a_late_request_vote_of_a_higher_term_changes_nothing_under_the_lease() {
        let mut cluster = n0_leads(defaults());
        cluster.cut(N1, N2);
        cluster.cut(N1, N0);
        assert!(cluster.fire(N1, Timer::Election).unwrap());
        let late: Vec<usize> = (0..cluster.in_flight().len()).collect();
        assert!(!late.is_empty());
        cluster.heal();
        cluster.stabilize(SETTLE).unwrap();
        // Nothing got through: the cut ate them. Campaign again, linked.
        assert!(cluster.fire(N1, Timer::Election).unwrap());
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.leaders(), vec![(N0, Term(1))]);
        assert_eq!(role_and_term(&cluster, N2), (Role::Follower, Term(1)));
        assert_eq!(cluster.node(N2).unwrap().voted_for(), Some(N0));
    }

    /// Without the lease, Figure 2: the same request makes the follower
    /// adopt the term and vote, and the leader steps down.
    #[test]
    fn without_the_lease_the_late_request_vote_replaces_the_leader() {
        let mut cluster = n0_leads(Features::NONE);
        assert!(cluster.campaign(N1, SETTLE).unwrap());
        assert_eq!(cluster.leaders(), vec![(N1, Term(2))]);
        assert_eq!(role_and_term(&cluster, N0), (Role::Follower, Term(2)));
    }
}

mod transfer {
    use super::*;

    /// etcd's TestLeaderTransferToUpToDateNode: the target campaigns at once
    /// and wins the next term; the old leader follows it.
    #[test]
    fn a_transfer_to_an_up_to_date_node_completes() {
        let mut cluster = n0_leads(defaults());
        assert!(cluster.transfer_leadership(N0, N1).unwrap());
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.leaders(), vec![(N1, Term(2))]);
        assert_eq!(role_and_term(&cluster, N0), (Role::Follower, Term(2)));
        assert_eq!(cluster.feature_counts().transfers_completed, 1);
        // etcd's TestLeaderTransferBack: and back again.
        assert!(cluster.transfer_leadership(N1, N0).unwrap());
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.leaders(), vec![(N0, Term(3))]);
    }

    /// Pre-Vote and the lease are bypassed: the target asks no pre-votes,
    /// and the third node, though it hears the old leader, grants.
    #[test]
    fn a_transfer_bypasses_pre_vote_and_the_lease() {
        let mut cluster = n0_leads(ALL);
        let pre_votes = cluster.feature_counts().pre_votes;
        assert!(cluster.node(N2).unwrap().in_lease());
        assert!(cluster.transfer_leadership(N0, N1).unwrap());
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.leaders(), vec![(N1, Term(2))]);
        assert_eq!(cluster.feature_counts().pre_votes, pre_votes);
        assert_eq!(cluster.node(N2).unwrap().voted_for(), Some(N1));
    }

    /// etcd's TestLeaderTransferToSlowFollower: a target whose answer is
    /// late gets TimeoutNow when the answer comes, within the deadline.
    #[test]
    fn a_slow_target_gets_timeout_now_when_it_answers() {
        let mut cluster = n0_leads(defaults());
        assert!(cluster.transfer_leadership(N0, N2).unwrap());
        // The leader's request for n2's log is in flight; a heartbeat round
        // to n1 goes and comes back first.
        let to_n2 = |c: &Cluster| c.in_flight().iter().position(|e| e.to == N2).unwrap();
        let request = to_n2(&cluster);
        assert!(cluster.fire(N0, Timer::Heartbeat).unwrap());
        assert_eq!(cluster.leaders(), vec![(N0, Term(1))]);
        cluster.deliver(request).unwrap();
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.leaders(), vec![(N2, Term(2))]);
    }

    /// etcd's TestLeaderTransferTimeout, and a transfer to a dead node: no
    /// answer comes; the transfer is abandoned after an election timeout and
    /// the leader goes on leading in its term.
    #[test]
    fn a_transfer_to_a_dead_node_is_abandoned_after_an_election_timeout() {
        let mut cluster = n0_leads(defaults());
        assert!(cluster.crash(N2));
        assert!(cluster.transfer_leadership(N0, N2).unwrap());
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.node(N0).unwrap().transfer_target(), Some(N2));
        assert!(cluster.fire(N0, Timer::Transfer).unwrap());
        assert_eq!(cluster.node(N0).unwrap().transfer_target(), None);
        assert_eq!(cluster.leaders(), vec![(N0, Term(1))]);
        // It comes back later: nothing is pending for it any more.
        assert!(cluster.restart(N2).unwrap());
        heartbeat(&mut cluster, N0);
        assert_eq!(cluster.leaders(), vec![(N0, Term(1))]);
        assert_eq!(cluster.feature_counts().transfer_campaigns, 0);
    }

    /// §3.10 step 2 with log summaries: a target whose log is behind the
    /// leader's is refused when its answer shows it, at once, and no one
    /// campaigns.
    #[test]
    fn a_transfer_to_a_node_with_a_stale_log_is_refused() {
        let logs = [
            LogSummary {
                last_log_index: 2,
                last_log_term: Term(0),
            },
            LogSummary {
                last_log_index: 2,
                last_log_term: Term(0),
            },
            LogSummary {
                last_log_index: 1,
                last_log_term: Term(0),
            },
        ];
        let mut cluster = cluster_with_logs(defaults(), &logs);
        assert!(cluster.campaign(N0, SETTLE).unwrap());
        assert!(cluster.transfer_leadership(N0, N2).unwrap());
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.node(N0).unwrap().transfer_target(), None);
        assert!(!cluster.is_armed(N0, Timer::Transfer));
        assert_eq!(cluster.leaders(), vec![(N0, Term(1))]);
        assert_eq!(cluster.feature_counts().transfer_campaigns, 0);
        // To the up-to-date n1 it goes through.
        assert!(cluster.transfer_leadership(N0, N1).unwrap());
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.leaders(), vec![(N1, Term(2))]);
    }

    /// etcd's TestLeaderTransferReceiveHigherTermVote: a higher-term
    /// candidate interrupts a transfer in progress; the leader steps down
    /// and the transfer ends with its leadership.
    #[test]
    fn a_higher_term_vote_during_a_transfer_ends_it() {
        let mut cluster = n0_leads(Features::from_switches([false, true, false, true]));
        cluster.crash(N2);
        assert!(cluster.transfer_leadership(N0, N2).unwrap());
        assert!(cluster.campaign(N1, SETTLE).unwrap());
        assert_eq!(cluster.leaders(), vec![(N1, Term(2))]);
        assert_eq!(cluster.node(N0).unwrap().transfer_target(), None);
        assert!(!cluster.is_armed(N0, Timer::Transfer));
    }

    /// etcd's TestLeaderTransferToSelf and TestTransferNonMember: nothing
    /// happens. etcd's ...SecondTransferToSameNode: the second request does
    /// not extend the first's deadline; ...ToAnotherNode: it replaces it.
    #[test]
    fn transfers_to_itself_a_non_member_or_twice_behave_as_etcds() {
        let mut cluster = n0_leads(defaults());
        for to in [N0, NodeId(9)] {
            cluster.transfer_leadership(N0, to).unwrap();
            assert!(cluster.in_flight().is_empty(), "to {to}");
            assert_eq!(cluster.node(N0).unwrap().transfer_target(), None);
        }
        cluster.crash(N2);
        cluster.transfer_leadership(N0, N2).unwrap();
        cluster.stabilize(SETTLE).unwrap();
        cluster.transfer_leadership(N0, N2).unwrap();
        assert!(
            cluster.in_flight().is_empty(),
            "the same target: no new request"
        );
        cluster.transfer_leadership(N0, N1).unwrap();
        cluster.stabilize(SETTLE).unwrap();
        assert_eq!(cluster.leaders(), vec![(N1, Term(2))]);
    }

    /// A follower that is not the leader's target and a candidate ignore a
    /// TimeoutNow; only followers of the leader that sent it act.
    #[test]
    fn a_transfer_asked_of_a_node_that_does_not_lead_does_nothing() {
        let mut cluster = n0_leads(defaults());
        assert!(cluster.transfer_leadership(N1, N2).unwrap());
        assert!(cluster.in_flight().is_empty());
        assert_eq!(cluster.leaders(), vec![(N0, Term(1))]);
    }
}
