//! The rules of the Raft thesis' election features, one node at a time:
//! Pre-Vote (§9.6), CheckQuorum (§6.2), lease-guarded votes (§4.2.3) and
//! leadership transfer (§3.10). Each test drives node `n0` of a 3-node
//! cluster through its public `step` and looks at its state and outputs, as
//! `core_rules.rs` does for Figure 2. The cluster-wide situations (a
//! disruptive follower rejoining, a minority leader, dueling candidates...)
//! are in `sim/tests/it/features.rs` and `runtime/tests/it/features.rs`.

use raft_election::{
    Config, Features, HardState, Input, LogSummary, Message, Node, NodeId, Output, Role, Term,
    Ticks, Timer, Timing,
};
use std::collections::BTreeMap;
use std::time::Duration;

const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);

fn features(pre_vote: bool, check_quorum: bool, lease: bool, transfer: bool) -> Features {
    Features::from_switches([pre_vote, check_quorum, lease, transfer])
}

const PRE_VOTE: Features = Features {
    pre_vote: true,
    check_quorum: false,
    lease_guarded_votes: false,
    leadership_transfer: false,
};

/// Node `n0` with `features`, its configuration and what it output last.
struct Subject {
    config: Config,
    node: Node,
    out: Vec<Output>,
}

impl Subject {
    fn with(features: Features, hard_state: HardState, log: LogSummary) -> Self {
        let config = Config::new(N0, [N0, N1, N2], Timing::default())
            .expect("valid config")
            .with_features(features);
        let mut subject = Self {
            config,
            node: Node::restore(hard_state, log),
            out: Vec::new(),
        };
        subject.step(Input::Start);
        subject
    }

    fn step(&mut self, input: Input) -> &[Output] {
        self.out.clear();
        self.node.step(&self.config, input, &mut self.out);
        &self.out
    }

    fn receive(&mut self, from: NodeId, message: Message) -> &[Output] {
        self.step(Input::Receive { from, message })
    }

    fn fire(&mut self, timer: Timer) -> &[Output] {
        self.step(Input::Timeout(timer))
    }

    /// A follower of `leader` in `term`, having just heard its heartbeat.
    fn follower_of(features: Features, leader: NodeId, term: u64) -> Self {
        let hard_state = HardState {
            current_term: Term(term),
            voted_for: None,
        };
        let mut subject = Self::with(features, hard_state, LogSummary::default());
        subject.receive(leader, heartbeat(term, leader));
        assert_eq!(subject.node.leader_id(), Some(leader));
        subject
    }

    /// The leader of `term`, elected with `n1`'s vote.
    fn leader(features: Features, term: u64) -> Self {
        let hard_state = HardState {
            current_term: Term(term - 1),
            voted_for: None,
        };
        let mut subject = Self::with(features, hard_state, LogSummary::default());
        subject.fire(Timer::Election);
        if subject.node.role() == Role::PreCandidate {
            subject.receive(N1, pre_vote_grant(term));
        }
        subject.receive(N1, vote_grant(term));
        assert_eq!(subject.node.role(), Role::Leader);
        assert_eq!(subject.node.current_term(), Term(term));
        subject
    }

    fn sends(&self) -> Vec<(NodeId, Message)> {
        self.out
            .iter()
            .filter_map(|o| match o {
                Output::Send { to, message } => Some((*to, *message)),
                _ => None,
            })
            .collect()
    }

    fn persists(&self) -> bool {
        self.out.iter().any(|o| matches!(o, Output::Persist(_)))
    }

    fn arms(&self, timer: Timer) -> Option<(Duration, Duration)> {
        self.out.iter().find_map(|o| match *o {
            Output::SetTimer {
                timer: t, min, max, ..
            } if t == timer => Some((min, max)),
            _ => None,
        })
    }

    fn cancels(&self, timer: Timer) -> bool {
        self.out.contains(&Output::CancelTimer(timer))
    }
}

fn heartbeat(term: u64, leader: NodeId) -> Message {
    Message::AppendEntries {
        term: Term(term),
        leader_id: leader,
        round: 0,
    }
}

fn pre_vote(term: u64, candidate: NodeId, log: LogSummary) -> Message {
    Message::PreVote {
        term: Term(term),
        candidate_id: candidate,
        last_log_index: log.last_log_index,
        last_log_term: log.last_log_term,
    }
}

fn pre_vote_grant(term: u64) -> Message {
    Message::PreVoteResponse {
        term: Term(term),
        vote_granted: true,
    }
}

fn vote_grant(term: u64) -> Message {
    Message::RequestVoteResponse {
        term: Term(term),
        vote_granted: true,
    }
}

fn request_vote(term: u64, candidate: NodeId, leadership_transfer: bool) -> Message {
    Message::RequestVote {
        term: Term(term),
        candidate_id: candidate,
        last_log_index: 0,
        last_log_term: Term(0),
        leadership_transfer,
    }
}

fn ack(term: u64, log: LogSummary) -> Message {
    Message::AppendEntriesResponse {
        term: Term(term),
        success: true,
        last_log_index: log.last_log_index,
        last_log_term: log.last_log_term,
        round: 0,
    }
}

fn log(last_log_index: u64, last_log_term: u64) -> LogSummary {
    LogSummary {
        last_log_index,
        last_log_term: Term(last_log_term),
    }
}

fn hard(term: u64, voted_for: Option<NodeId>) -> HardState {
    HardState {
        current_term: Term(term),
        voted_for,
    }
}

fn min_timeout() -> Duration {
    Timing::default().election_timeout_min
}

mod pre_vote {
    use super::*;

    /// §9.6: a node that times out first asks every voter whether it would
    /// vote for it in the next term; its term and vote stay as they were,
    /// so nothing is persisted, and it forgets the leader it no longer hears.
    #[test]
    fn an_election_timeout_starts_a_pre_vote_that_changes_no_term_or_vote() {
        let mut n0 = Subject::follower_of(PRE_VOTE, N1, 3);
        n0.fire(Timer::Lease);
        n0.fire(Timer::Election);
        assert_eq!(n0.node.role(), Role::PreCandidate);
        assert_eq!(n0.node.hard_state(), hard(3, None));
        assert_eq!(n0.node.leader_id(), None);
        assert!(!n0.persists(), "{:?}", n0.out);
        let asked = pre_vote(4, N0, LogSummary::default());
        assert_eq!(n0.sends(), vec![(N1, asked), (N2, asked)]);
        assert!(
            n0.arms(Timer::Election).is_some(),
            "a new round if this fails"
        );
    }

    /// A voter that has not heard a leader within the minimum election
    /// timeout grants a pre-vote for a later term to an up-to-date
    /// candidate, with the term it was asked about, and changes nothing.
    #[test]
    fn a_voter_without_a_lease_grants_a_later_term_and_changes_nothing() {
        let mut n0 = Subject::with(PRE_VOTE, hard(2, Some(N2)), LogSummary::default());
        let before = n0.node.clone();
        n0.receive(N1, pre_vote(3, N1, LogSummary::default()));
        assert_eq!(n0.sends(), vec![(N1, pre_vote_grant(3))]);
        assert_eq!(n0.node, before, "no term, vote or timer moves");
        assert!(n0.out.iter().all(|o| matches!(o, Output::Send { .. })));
    }

    /// §9.6: the voter refuses while it hears a leader. The refusal would tell
    /// the candidate nothing (the voter's term is below the one asked), so
    /// none is sent: silence, as etcd answers within its lease.
    #[test]
    fn a_voter_that_hears_its_leader_refuses_and_so_does_the_leader() {
        let mut n0 = Subject::follower_of(PRE_VOTE, N1, 2);
        assert!(n0.node.in_lease());
        n0.receive(N2, pre_vote(3, N2, LogSummary::default()));
        assert_eq!(n0.sends(), vec![]);
        // Once the minimum election timeout passed without the leader, it grants.
        n0.fire(Timer::Lease);
        assert!(!n0.node.in_lease());
        n0.receive(N2, pre_vote(3, N2, LogSummary::default()));
        assert_eq!(n0.sends(), vec![(N2, pre_vote_grant(3))]);

        let mut leader = Subject::leader(PRE_VOTE, 2);
        leader.receive(N2, pre_vote(3, N2, LogSummary::default()));
        assert_eq!(leader.sends(), vec![]);
        assert_eq!(leader.node.role(), Role::Leader);
    }

    /// §5.4.1 applies to pre-votes too: a candidate whose log is behind is
    /// refused, however late the term it asks about.
    #[test]
    fn a_candidate_with_a_stale_log_is_refused_a_pre_vote() {
        let mut n0 = Subject::with(PRE_VOTE, hard(1, None), log(2, 1));
        n0.receive(N1, pre_vote(5, N1, log(1, 1)));
        assert_eq!(n0.sends(), vec![]);
        n0.receive(N1, pre_vote(5, N1, log(2, 1)));
        assert_eq!(n0.sends(), vec![(N1, pre_vote_grant(5))]);
    }

    /// A pre-vote for the voter's own term is granted only where a real vote
    /// could be: no vote cast (or cast for this candidate), no leader known.
    /// A refusal then carries the voter's term, which the candidate adopts.
    #[test]
    fn a_pre_vote_for_the_voters_own_term_is_granted_only_if_a_vote_could_be() {
        let mut free = Subject::with(PRE_VOTE, hard(4, None), LogSummary::default());
        free.receive(N1, pre_vote(4, N1, LogSummary::default()));
        assert_eq!(free.sends(), vec![(N1, pre_vote_grant(4))]);

        let mut voted = Subject::with(PRE_VOTE, hard(4, Some(N2)), LogSummary::default());
        voted.receive(N1, pre_vote(4, N1, LogSummary::default()));
        let refusal = Message::PreVoteResponse {
            term: Term(4),
            vote_granted: false,
        };
        assert_eq!(voted.sends(), vec![(N1, refusal)]);
    }

    /// A pre-vote from a candidate behind in terms is refused with the
    /// voter's term, so the candidate learns it (etcd's "the cluster may
    /// deadlock if we drop messages with a lower term").
    #[test]
    fn a_stale_pre_vote_is_refused_with_the_current_term() {
        let mut n0 = Subject::with(PRE_VOTE, hard(7, None), LogSummary::default());
        n0.receive(N1, pre_vote(3, N1, LogSummary::default()));
        let refusal = Message::PreVoteResponse {
            term: Term(7),
            vote_granted: false,
        };
        assert_eq!(n0.sends(), vec![(N1, refusal)]);
        assert_eq!(n0.node.current_term(), Term(7));
    }

    /// §9.6: "Only if the candidate believed it could get votes from a
    /// majority of the cluster would it increment its term and start a normal
    /// election." A grant counts only for the term asked about, and once.
    #[test]
    fn a_majority_of_grants_for_the_next_term_starts_the_real_election() {
        let mut n0 = Subject::with(PRE_VOTE, hard(3, None), LogSummary::default());
        n0.fire(Timer::Election);
        // Grants for other terms (a stale round, a forged one) count for nothing.
        for stale in [3, 5] {
            n0.receive(N1, pre_vote_grant(stale));
            assert_eq!(n0.node.role(), Role::PreCandidate, "grant for t{stale}");
            assert_eq!(n0.node.votes_granted().len(), 1);
        }
        n0.receive(N1, pre_vote_grant(4));
        assert_eq!(n0.node.role(), Role::Candidate);
        assert_eq!(n0.node.hard_state(), hard(4, Some(N0)));
        assert_eq!(n0.out.first(), Some(&Output::Persist(hard(4, Some(N0)))));
        let request = request_vote(4, N0, false);
        assert_eq!(n0.sends(), vec![(N1, request), (N2, request)]);
    }

    /// A grant echoes the term asked about, one above ours: it is no news of
    /// a higher term, and a follower that receives one stays as it was.
    #[test]
    fn a_grant_never_raises_a_term() {
        let mut n0 = Subject::with(PRE_VOTE, hard(3, Some(N1)), LogSummary::default());
        let before = n0.node.clone();
        n0.receive(N2, pre_vote_grant(9));
        assert_eq!(n0.node, before);
        assert!(n0.out.is_empty(), "{:?}", n0.out);
    }

    /// The first pitfall of §9.6: a pre-candidate that hears the leader of
    /// its own term was wrong to think it gone, and follows it again.
    #[test]
    fn a_pre_candidate_that_hears_a_heartbeat_of_its_term_follows_that_leader() {
        let mut n0 = Subject::follower_of(PRE_VOTE, N1, 2);
        n0.fire(Timer::Election);
        assert_eq!(n0.node.role(), Role::PreCandidate);
        n0.receive(N1, heartbeat(2, N1));
        assert_eq!(n0.node.role(), Role::Follower);
        assert_eq!(n0.node.leader_id(), Some(N1));
        assert!(n0.node.votes_granted().is_empty());
        assert!(n0.node.in_lease());
        assert_eq!(n0.sends(), vec![(N1, ack(2, LogSummary::default()))]);
    }

    /// The second pitfall: a refusal carries the voter's term; a higher one
    /// makes the pre-candidate a follower of that term (Figure 2), a grant's
    /// term never does (see above).
    #[test]
    fn a_refusal_from_a_higher_term_makes_the_pre_candidate_a_follower_of_it() {
        let mut n0 = Subject::with(PRE_VOTE, hard(2, None), LogSummary::default());
        n0.fire(Timer::Election);
        let refusal = Message::PreVoteResponse {
            term: Term(6),
            vote_granted: false,
        };
        n0.receive(N2, refusal);
        assert_eq!(n0.node.role(), Role::Follower);
        assert_eq!(n0.node.hard_state(), hard(6, None));
        assert_eq!(n0.out.first(), Some(&Output::Persist(hard(6, None))));
    }

    /// etcd issue 9586: two pre-candidates that both still trusted a dead
    /// leader refused each other forever. A pre-candidate has given up on
    /// its leader and holds no lease, so it grants another's pre-vote.
    #[test]
    fn a_pre_candidate_grants_another_pre_candidates_pre_vote() {
        let mut n0 = Subject::follower_of(PRE_VOTE, N1, 2);
        assert!(n0.node.in_lease());
        // Its election timer fired before its lease did: campaigning ends the lease.
        n0.fire(Timer::Election);
        assert!(!n0.node.in_lease());
        assert!(n0.cancels(Timer::Lease));
        n0.receive(N2, pre_vote(3, N2, LogSummary::default()));
        assert_eq!(n0.sends(), vec![(N2, pre_vote_grant(3))]);
    }

    /// A pre-candidate asked for a real vote of its term, and granting it,
    /// backs that candidate and gives up its own pre-vote.
    #[test]
    fn a_pre_candidate_that_votes_for_a_candidate_gives_up_its_pre_vote() {
        let mut n0 = Subject::with(PRE_VOTE, hard(2, None), LogSummary::default());
        n0.fire(Timer::Election);
        n0.receive(N1, request_vote(2, N1, false));
        assert_eq!(n0.node.role(), Role::Follower);
        assert_eq!(n0.node.hard_state(), hard(2, Some(N1)));
        assert!(n0.node.votes_granted().is_empty());
    }

    /// A candidate whose election timed out asks again before raising its
    /// term once more: cut off right after winning a pre-vote, it stops
    /// raising its term.
    #[test]
    fn a_candidate_that_times_out_asks_for_pre_votes_again_in_its_term() {
        let mut n0 = Subject::with(PRE_VOTE, hard(2, None), LogSummary::default());
        n0.fire(Timer::Election);
        n0.receive(N1, pre_vote_grant(3));
        assert_eq!(n0.node.role(), Role::Candidate);
        n0.fire(Timer::Election);
        assert_eq!(n0.node.role(), Role::PreCandidate);
        assert_eq!(n0.node.hard_state(), hard(3, Some(N0)));
        // A late vote of the candidacy it gave up no longer counts.
        n0.receive(N1, vote_grant(3));
        assert_eq!(n0.node.role(), Role::PreCandidate);
    }

    /// A single voter needs no one's leave: it campaigns and wins at once.
    #[test]
    fn a_single_node_cluster_with_pre_vote_elects_itself_on_its_first_timeout() {
        let config = Config::new(N0, [N0], Timing::default())
            .unwrap()
            .with_features(Features::ALL);
        let mut node = Node::new();
        let mut out = Vec::new();
        node.step(&config, Input::Timeout(Timer::Election), &mut out);
        assert_eq!(node.role(), Role::Leader);
        assert_eq!(node.current_term(), Term(1));
    }
}

mod check_quorum {
    use super::*;

    const CHECK_QUORUM: Features = Features {
        pre_vote: false,
        check_quorum: true,
        lease_guarded_votes: false,
        leadership_transfer: false,
    };

    /// Ticks of the default timing's window: 150 ms of 50 ms heartbeats.
    const WINDOW: usize = 3;

    /// §6.2: a new leader ticks once per heartbeat interval, and its window
    /// starts with the voter that elected it, heard now.
    #[test]
    fn a_new_leader_ticks_every_heartbeat_and_counts_its_voter_as_heard_now() {
        let leader = Subject::leader(CHECK_QUORUM, 1);
        let tick = Timing::default().heartbeat_interval;
        assert_eq!(leader.arms(Timer::CheckQuorum), Some((tick, tick)));
        assert_eq!(
            leader.node.heard_from(),
            &BTreeMap::from([(N1, Ticks(0))]),
            "its voter"
        );
        let plain = Subject::leader(Features::NONE, 1);
        assert_eq!(plain.arms(Timer::CheckQuorum), None);
        assert!(plain.node.heard_from().is_empty());
    }

    /// A leader that hears no one after its election stays for a whole
    /// window of ticks, then steps down at the next: a follower of its own
    /// term that knows no leader, heartbeats stopped, an election timer
    /// armed. Its term and vote stay as they were.
    #[test]
    fn a_leader_that_hears_no_one_steps_down_at_the_first_tick_past_its_window() {
        let mut leader = Subject::leader(CHECK_QUORUM, 2);
        for tick in 1..=WINDOW {
            leader.fire(Timer::CheckQuorum);
            assert_eq!(leader.node.role(), Role::Leader, "tick {tick}");
            let ticks = u64::try_from(tick).unwrap();
            assert_eq!(leader.node.heard_from().get(&N1), Some(&Ticks(ticks)));
            assert!(leader.arms(Timer::CheckQuorum).is_some());
        }
        leader.fire(Timer::CheckQuorum);
        assert_eq!(leader.node.role(), Role::Follower);
        assert_eq!(leader.node.hard_state(), hard(2, Some(N0)));
        assert_eq!(leader.node.leader_id(), None);
        assert!(leader.node.heard_from().is_empty());
        assert!(leader.cancels(Timer::Heartbeat));
        assert!(leader.arms(Timer::Election).is_some());
        assert!(!leader.persists());
    }

    /// The window slides: an acknowledgement counts from the tick interval
    /// it arrived in, whenever that was, and a peer counts once however
    /// often it answers.
    #[test]
    fn an_acknowledgement_keeps_the_leader_for_one_window_from_when_it_arrived() {
        let mut leader = Subject::leader(CHECK_QUORUM, 2);
        leader.fire(Timer::CheckQuorum);
        leader.fire(Timer::CheckQuorum);
        leader.receive(N2, ack(2, LogSummary::default()));
        leader.receive(N2, ack(2, LogSummary::default()));
        let heard = BTreeMap::from([(N1, Ticks(2)), (N2, Ticks(0))]);
        assert_eq!(leader.node.heard_from(), &heard, "a peer counts once");
        for tick in 1..=WINDOW {
            leader.fire(Timer::CheckQuorum);
            assert_eq!(leader.node.role(), Role::Leader, "tick {tick}");
        }
        assert!(
            !leader.node.heard_from().contains_key(&N1),
            "past its window"
        );
        leader.fire(Timer::CheckQuorum);
        assert_eq!(leader.node.role(), Role::Follower);
    }

    /// etcd's TestLeaderStepdownWhenQuorumActive, tick by tick: a leader
    /// that hears one peer (with itself, a majority of three) once every
    /// window of ticks stays for as long as that goes on.
    #[test]
    fn a_leader_that_hears_a_majority_within_every_window_never_steps_down() {
        let mut leader = Subject::leader(CHECK_QUORUM, 2);
        for tick in 1..=1_000 {
            leader.fire(Timer::CheckQuorum);
            assert_eq!(leader.node.role(), Role::Leader, "tick {tick}");
            if tick % WINDOW == 0 {
                // Alternating peers: the one that went silent drops out.
                let peer = if tick % (2 * WINDOW) == 0 { N1 } else { N2 };
                leader.receive(peer, ack(2, LogSummary::default()));
            }
            assert!(leader.node.heard_from().len() <= 2);
        }
    }

    /// A leader deposed by a higher term cancels its round.
    #[test]
    fn a_leader_that_sees_a_higher_term_cancels_its_round() {
        let mut leader = Subject::leader(CHECK_QUORUM, 2);
        leader.receive(N1, heartbeat(3, N1));
        assert_eq!(leader.node.role(), Role::Follower);
        assert!(leader.cancels(Timer::CheckQuorum));
        // A late expiry is stale and ignored.
        let before = leader.node.clone();
        leader.fire(Timer::CheckQuorum);
        assert_eq!(leader.node, before);
    }
}

mod lease {
    use super::*;

    const LEASE: Features = Features {
        pre_vote: false,
        check_quorum: false,
        lease_guarded_votes: true,
        leadership_transfer: false,
    };

    /// A heartbeat starts a lease of exactly the minimum election timeout.
    #[test]
    fn a_heartbeat_starts_a_lease_of_the_minimum_election_timeout() {
        let follower = Subject::follower_of(LEASE, N1, 1);
        assert!(follower.node.in_lease());
        assert_eq!(
            follower.arms(Timer::Lease),
            Some((min_timeout(), min_timeout()))
        );
        let plain = Subject::follower_of(Features::NONE, N1, 1);
        assert!(!plain.node.in_lease());
        assert_eq!(plain.arms(Timer::Lease), None);
    }

    /// §4.2.3: "If a server receives a RequestVote request within the minimum
    /// election timeout of hearing from a current leader, it does not update
    /// its term or grant its vote."
    #[test]
    fn a_follower_in_its_lease_ignores_a_request_vote_of_a_higher_term() {
        let mut follower = Subject::follower_of(LEASE, N1, 2);
        let before = follower.node.clone();
        follower.receive(N2, request_vote(5, N2, false));
        assert_eq!(follower.node, before);
        assert!(follower.out.is_empty(), "{:?}", follower.out);
        // After the lease, Figure 2 again: adopt the term, grant the vote.
        follower.fire(Timer::Lease);
        follower.receive(N2, request_vote(5, N2, false));
        assert_eq!(follower.node.hard_state(), hard(5, Some(N2)));
    }

    /// A leader is its own current leader: it ignores them too.
    #[test]
    fn a_leader_ignores_a_request_vote_of_a_higher_term() {
        let mut leader = Subject::leader(LEASE, 2);
        leader.receive(N2, request_vote(3, N2, false));
        assert_eq!(leader.node.role(), Role::Leader);
        assert_eq!(leader.node.current_term(), Term(2));
        assert!(leader.out.is_empty());
    }

    /// A RequestVote the leader asked for (a transfer) gets through.
    #[test]
    fn a_request_vote_with_the_transfer_flag_is_heard_within_the_lease() {
        let mut follower = Subject::follower_of(LEASE, N1, 2);
        follower.receive(N2, request_vote(3, N2, true));
        assert_eq!(follower.node.hard_state(), hard(3, Some(N2)));
        assert!(
            !follower.node.in_lease(),
            "a new term ends the old leader's lease"
        );
        assert!(follower.cancels(Timer::Lease));
    }

    /// Without the switch, Figure 2: a higher term is always adopted.
    #[test]
    fn without_the_switch_a_higher_term_request_vote_is_adopted() {
        let mut follower = Subject::follower_of(PRE_VOTE, N1, 2);
        assert!(follower.node.in_lease(), "Pre-Vote keeps the lease too");
        follower.receive(N2, request_vote(3, N2, false));
        assert_eq!(follower.node.hard_state(), hard(3, Some(N2)));
    }
}

mod transfer {
    use super::*;

    const TRANSFER: Features = Features {
        pre_vote: false,
        check_quorum: false,
        lease_guarded_votes: false,
        leadership_transfer: true,
    };

    /// §3.10: the leader asks the target for its log at once, and gives the
    /// transfer one (minimum) election timeout.
    #[test]
    fn a_transfer_asks_the_target_for_its_log_and_arms_a_deadline() {
        let mut leader = Subject::leader(TRANSFER, 1);
        leader.step(Input::TransferLeadership { to: N2 });
        assert_eq!(leader.node.transfer_target(), Some(N2));
        assert_eq!(leader.sends(), vec![(N2, heartbeat(1, N0))]);
        assert_eq!(
            leader.arms(Timer::Transfer),
            Some((min_timeout(), min_timeout()))
        );
    }

    /// An up-to-date target gets TimeoutNow; other followers' acks do not
    /// trigger it.
    #[test]
    fn an_up_to_date_target_gets_timeout_now() {
        let mut leader = Subject::leader(TRANSFER, 1);
        leader.step(Input::TransferLeadership { to: N2 });
        leader.receive(N1, ack(1, LogSummary::default()));
        assert_eq!(leader.sends(), vec![]);
        leader.receive(N2, ack(1, LogSummary::default()));
        let timeout_now = Message::TimeoutNow { term: Term(1) };
        assert_eq!(leader.sends(), vec![(N2, timeout_now)]);
        assert_eq!(leader.node.role(), Role::Leader, "it leads until deposed");
        // Without the leader lease there is no lease to give up.
        assert!(!leader.out.contains(&Output::LeaseRevoked));
    }

    /// §3.10 step 2: with no log replicated, a target that is behind never
    /// catches up, so the transfer is refused at once.
    #[test]
    fn a_target_whose_log_is_behind_is_refused() {
        let mut leader = Subject::with(TRANSFER, hard(0, None), log(3, 0));
        leader.fire(Timer::Election);
        leader.receive(N1, vote_grant(1));
        leader.step(Input::TransferLeadership { to: N2 });
        leader.receive(N2, ack(1, log(2, 0)));
        assert_eq!(leader.sends(), vec![]);
        assert_eq!(leader.node.transfer_target(), None);
        assert!(leader.cancels(Timer::Transfer));
        assert_eq!(leader.node.role(), Role::Leader);
    }

    /// A transfer that did not complete within its election timeout is
    /// abandoned; the leader goes on leading.
    #[test]
    fn a_transfer_not_done_within_an_election_timeout_is_abandoned() {
        let mut leader = Subject::leader(TRANSFER, 1);
        leader.step(Input::TransferLeadership { to: N2 });
        leader.fire(Timer::Transfer);
        assert_eq!(leader.node.transfer_target(), None);
        assert_eq!(leader.node.role(), Role::Leader);
        // A later acknowledgement of the target sends nothing.
        leader.receive(N2, ack(1, LogSummary::default()));
        assert_eq!(leader.sends(), vec![]);
    }

    /// To itself, to a non-member, or again to the target in progress: no
    /// effect (the deadline is not extended). To another: replaces it.
    #[test]
    fn requests_to_itself_a_non_member_or_the_same_target_change_nothing() {
        let mut leader = Subject::leader(TRANSFER, 1);
        for to in [N0, NodeId(7)] {
            let before = leader.node.clone();
            leader.step(Input::TransferLeadership { to });
            assert_eq!(leader.node, before, "to {to}");
            assert!(leader.out.is_empty());
        }
        leader.step(Input::TransferLeadership { to: N1 });
        leader.step(Input::TransferLeadership { to: N1 });
        assert!(
            leader.out.is_empty(),
            "the same target again: {:?}",
            leader.out
        );
        leader.step(Input::TransferLeadership { to: N2 });
        assert_eq!(leader.node.transfer_target(), Some(N2));
        assert!(leader.arms(Timer::Transfer).is_some());
    }

    /// Without the switch, a leader ignores requests and followers ignore
    /// TimeoutNow.
    #[test]
    fn without_the_switch_nothing_transfers() {
        let mut leader = Subject::leader(Features::NONE, 1);
        leader.step(Input::TransferLeadership { to: N1 });
        assert_eq!(leader.node.transfer_target(), None);
        assert!(leader.out.is_empty());
        let mut follower = Subject::follower_of(Features::NONE, N1, 1);
        follower.receive(N1, Message::TimeoutNow { term: Term(1) });
        assert_eq!(follower.node.role(), Role::Follower);
    }

    /// "This request has the same effect as the target server's election
    /// timer firing": the target campaigns at once in the next term, with
    /// the transfer flag, bypassing Pre-Vote and the lease.
    #[test]
    fn timeout_now_makes_a_follower_campaign_at_once_bypassing_pre_vote() {
        let all = features(true, true, true, true);
        let mut follower = Subject::follower_of(all, N1, 4);
        assert!(follower.node.in_lease());
        follower.receive(N1, Message::TimeoutNow { term: Term(4) });
        assert_eq!(follower.node.role(), Role::Candidate);
        assert_eq!(follower.node.hard_state(), hard(5, Some(N0)));
        let request = request_vote(5, N0, true);
        assert_eq!(follower.sends(), vec![(N1, request), (N2, request)]);
    }

    /// Only the leader of the term asks: a TimeoutNow from another node, of
    /// an older term, or to a candidate, changes nothing; one of a newer term
    /// is adopted like any message, and its request ignored.
    #[test]
    fn timeout_now_from_anyone_but_the_leader_of_the_term_starts_nothing() {
        let mut follower = Subject::follower_of(TRANSFER, N1, 4);
        let before = follower.node.clone();
        follower.receive(N2, Message::TimeoutNow { term: Term(4) });
        assert_eq!(follower.node, before, "from a node that does not lead");
        follower.receive(N1, Message::TimeoutNow { term: Term(3) });
        assert_eq!(follower.node, before, "of an older term");
        follower.receive(N1, Message::TimeoutNow { term: Term(6) });
        assert_eq!(follower.node.role(), Role::Follower);
        assert_eq!(follower.node.hard_state(), hard(6, None));

        let mut candidate = Subject::with(TRANSFER, hard(2, None), LogSummary::default());
        candidate.fire(Timer::Election);
        candidate.receive(N1, Message::TimeoutNow { term: Term(3) });
        assert_eq!(candidate.node.current_term(), Term(3));
        assert_eq!(candidate.node.role(), Role::Candidate);
    }

    /// The old leader receiving its target's RequestVote steps down, votes for
    /// it (its log is up to date), and drops the transfer.
    #[test]
    fn the_old_leader_votes_for_its_target_and_ends_the_transfer() {
        let all = features(false, true, true, true);
        let mut leader = Subject::leader(all, 1);
        leader.step(Input::TransferLeadership { to: N2 });
        leader.receive(N2, request_vote(2, N2, true));
        assert_eq!(leader.node.role(), Role::Follower);
        assert_eq!(leader.node.hard_state(), hard(2, Some(N2)));
        assert_eq!(leader.node.transfer_target(), None);
        assert!(leader.cancels(Timer::Transfer));
        assert!(leader.cancels(Timer::CheckQuorum));
    }
}

/// The lease guards against higher terms only: a RequestVote of the
/// leader's own term is refused with an answer, as Figure 2 has it.
#[test]
fn under_lease_guarded_votes_a_leader_answers_a_request_vote_of_its_own_term() {
    let mut subject = Subject::leader(features(false, false, true, false), 1);
    subject.receive(N2, request_vote(1, N2, false));
    assert_eq!(
        subject.sends(),
        [(
            N2,
            Message::RequestVoteResponse {
                term: Term(1),
                vote_granted: false
            }
        )]
    );
}
