//! The one definition of every safety invariant, shared by the core's debug
//! assertions, the simulator, the model checker, the fuzzer and the tests.
//!
//! Two kinds:
//! - node-local ([`check_node`], [`check_outputs`]): true of one node after
//!   every step, whatever it was fed, forged messages included;
//! - cluster-wide ([`History`]): true of an honest cluster's whole past. They
//!   are about the past ("at most one leader *ever* in a term"), so [`History`]
//!   keeps the ghost facts they need: who became leader of which term, who
//!   voted for whom, the last term each node was seen in.

use crate::config::Config;
use crate::message::Message;
use crate::node::{Input, Node, Output, Timer};
use crate::types::{HardState, LogSummary, NodeId, Role, Term, Ticks};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

/// The safety properties this crate promises (`proofs.md` argues each one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// At most one node ever becomes leader in a given term (Figure 3).
    ElectionSafety,
    /// No node grants its vote to two candidates in the same term.
    OneVotePerTerm,
    /// A node's current term never decreases, across restarts too.
    TermsNeverGoBack,
    /// Whoever became leader in term T holds votes of a majority in term T.
    LeaderHasQuorum,
    /// No node stays leader after processing a well-formed message from
    /// another voter with a higher term (see [`higher_term_from_voter`]).
    StaleLeaderStepsDown,
    /// A leader's log is at least as up-to-date as each of its voters' (§5.4.1).
    VoteRestriction,
    /// A node's own state is consistent with its role.
    NodeState,
    /// The output contract of one step: a persist of the new hard state comes
    /// first exactly when the hard state changed, no persist otherwise, and
    /// messages go only to other voters.
    PersistBeforeSend,
    /// Pre-Vote (§9.6) changes no term and no vote: answering a PreVote,
    /// starting a pre-vote and counting grants leave the hard state as it
    /// was, except for the two steps a pre-vote leads to: the real election
    /// once a majority granted (the next term, a vote for itself), and a
    /// higher term a refusal carried.
    PreVoteChangesNothing,
    /// A node campaigning on a TimeoutNow (§3.10) does so from the term the
    /// TimeoutNow names into the next one, in which it has not voted: a
    /// transfer never makes its target vote twice in one term.
    TransferTargetVotesOnce,
    /// Each step does what its rule of Figure 2 (or of an enabled feature)
    /// says, given the state before, the input and the outputs: the role,
    /// term, vote, leader and transfer after it, the messages it sends and
    /// every field of them, and the timers it arms (for how long) or cancels
    /// (see [`check_transition`]). Some wrong rules break no other invariant
    /// and only cost liveness; this one sees them.
    TransitionRules,
    /// A node's log is the one it was set up with: this crate replicates no
    /// entries, so no step and no restore changes it. [`History`] is given
    /// each node's log by whoever set the cluster up, never by the node, so
    /// the vote restriction's oracle compares the logs the nodes really hold.
    LogNeverChanges,
    /// Leader lease (thesis §6.4.1): no two nodes hold a lease at the same
    /// instant of real time, and leases are held in the order of their
    /// terms. A matter of real time: checked by a simulator that knows it
    /// ([`LeaseHistory`]), not by the untimed model.
    OneLeaseHolder,
}

impl Invariant {
    /// Every invariant, in a fixed order.
    pub const ALL: [Self; 13] = [
        Self::ElectionSafety,
        Self::OneVotePerTerm,
        Self::TermsNeverGoBack,
        Self::LeaderHasQuorum,
        Self::StaleLeaderStepsDown,
        Self::VoteRestriction,
        Self::NodeState,
        Self::PersistBeforeSend,
        Self::PreVoteChangesNothing,
        Self::TransferTargetVotesOnce,
        Self::TransitionRules,
        Self::LogNeverChanges,
        Self::OneLeaseHolder,
    ];

    /// A short human name, as the model checker prints it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ElectionSafety => "election safety",
            Self::OneVotePerTerm => "one vote per term",
            Self::TermsNeverGoBack => "terms never go back",
            Self::LeaderHasQuorum => "leader has a quorum",
            Self::StaleLeaderStepsDown => "stale leaders step down",
            Self::VoteRestriction => "vote restriction",
            Self::NodeState => "node state consistent",
            Self::PersistBeforeSend => "persist before send",
            Self::PreVoteChangesNothing => "a pre-vote changes no term or vote",
            Self::TransferTargetVotesOnce => "a transfer target votes once per term",
            Self::TransitionRules => "each step follows its rule",
            Self::LogNeverChanges => "a node's log never changes",
            Self::OneLeaseHolder => "one lease holder at a time",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A broken invariant, with the term and nodes involved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{invariant} violated: {detail}")]
pub struct Violation {
    /// Which invariant.
    pub invariant: Invariant,
    /// What happened, naming terms and nodes.
    pub detail: String,
}

impl Violation {
    fn new(invariant: Invariant, detail: String) -> Self {
        Self { invariant, detail }
    }
}

/// Checks what must hold of node `config.id()` after any step.
pub fn check_node(config: &Config, node: &Node) -> Result<(), Violation> {
    let id = config.id();
    let broken = |what: &str| {
        Err(Violation::new(
            Invariant::NodeState,
            format!("{id} as {} in {}: {what}", node.role(), node.current_term()),
        ))
    };
    if let Some(voted_for) = node.voted_for() {
        if !config.is_voter(voted_for) {
            return broken("voted for a non-member");
        }
    }
    if let Some(leader) = node.leader_id() {
        if !config.is_voter(leader) {
            return broken("follows a non-member");
        }
    }
    let features = config.features();
    if node.in_lease() {
        // With the leader lease the guard outlives the term it was taken in,
        // and a restarted node takes it knowing no leader.
        let known_leader = node.leader_id().is_some() || config.lease_duration().is_some();
        if node.role() != Role::Follower || !known_leader {
            return broken("holds a lease without following a known leader");
        }
        // Restated rather than `Features::keeps_lease`, which the core uses.
        if !(features.pre_vote || features.lease_guarded_votes) {
            return broken("holds a lease with neither Pre-Vote nor lease-guarded votes");
        }
    }
    if node.lease_round().is_some() || node.round() > 0 {
        if node.role() != Role::Leader || config.lease_duration().is_none() {
            return broken("counts heartbeat rounds without leading under the leader lease");
        }
        if node.lease_round().is_some_and(|held| held > node.round()) {
            return broken("holds a lease for a heartbeat round it has not started");
        }
    }
    if !node.heard_from().is_empty() {
        if node.role() != Role::Leader || !features.check_quorum {
            return broken("counts heartbeat acknowledgements without leading under CheckQuorum");
        }
        if !node
            .heard_from()
            .keys()
            .all(|&p| p != id && config.is_voter(p))
        {
            return broken("counts an acknowledgement of itself or of a non-member");
        }
        let window = check_quorum_window_per_section_6_2(config);
        if node.heard_from().values().any(|&ticks| ticks > window) {
            return broken("counts a peer last heard before its CheckQuorum window");
        }
    }
    if let Some(target) = node.transfer_target() {
        if node.role() != Role::Leader || !features.leadership_transfer {
            return broken("transfers leadership without leading under leadership transfer");
        }
        if target == id || !config.is_voter(target) {
            return broken("transfers leadership to itself or to a non-member");
        }
    }
    match node.role() {
        Role::Follower => {
            if !node.votes_granted().is_empty() {
                return broken("a follower holds votes");
            }
            if node.leader_id() == Some(id) {
                return broken("a follower names itself leader");
            }
        }
        Role::PreCandidate => {
            if !features.pre_vote {
                return broken("a pre-candidate without Pre-Vote");
            }
            if !node.votes_granted().contains(&id) {
                return broken("a pre-candidate does not count its own pre-vote");
            }
            if !node.votes_granted().iter().all(|&v| config.is_voter(v)) {
                return broken("a pre-candidate counts a non-member's pre-vote");
            }
            if is_majority(config, node.votes_granted().len()) {
                return broken("a pre-candidate holds a quorum of pre-votes but did not campaign");
            }
            if node.leader_id().is_some() {
                return broken("a pre-candidate still follows a leader");
            }
        }
        Role::Candidate => {
            if node.voted_for() != Some(id) {
                return broken("a candidate did not vote for itself");
            }
            if !node.votes_granted().contains(&id) {
                return broken("a candidate does not count its own vote");
            }
            if !node.votes_granted().iter().all(|&v| config.is_voter(v)) {
                return broken("a candidate counts a non-member's vote");
            }
            if is_majority(config, node.votes_granted().len()) {
                return broken("a candidate holds a quorum but did not become leader");
            }
            if node.leader_id().is_some() {
                return broken("a candidate knows a leader of its own term");
            }
        }
        Role::Leader => {
            if node.voted_for() != Some(id) {
                return broken("a leader did not vote for itself");
            }
            if node.leader_id() != Some(id) {
                return broken("a leader does not name itself leader");
            }
            if node.current_term() == Term(0) {
                return broken("a leader of term 0, which no election starts");
            }
        }
    }
    Ok(())
}

/// Checks the output contract of one step of node `config.id()` that took its
/// hard state from `before` to `after`: if it changed, the first output is
/// `Persist(after)`; if not, nothing is persisted; there is never a second
/// persist; and messages go only to other voters.
///
/// Figure 2 keeps the term and vote "updated on stable storage before
/// responding to RPCs": a driver that executes outputs in order then never
/// lets out a message that depends on a term or vote a crash could erase.
/// `Node::step` persists exactly when the hard state changed, never
/// unconditionally, so "no persist otherwise" holds of it as well.
pub fn check_outputs(
    config: &Config,
    before: HardState,
    after: HardState,
    outputs: &[Output],
) -> Result<(), Violation> {
    let id = config.id();
    let broken = |detail: String| Err(Violation::new(Invariant::PersistBeforeSend, detail));
    let first_persist = match outputs.first() {
        Some(&Output::Persist(hard_state)) => Some(hard_state),
        _ => None,
    };
    let changed = before != after;
    if changed && first_persist != Some(after) {
        return broken(format!(
            "{id} went from {before:?} to {after:?} but its first output is {:?}",
            outputs.first()
        ));
    }
    if !changed && first_persist.is_some() {
        return broken(format!(
            "{id} persists {first_persist:?} with its hard state unchanged at {after:?}"
        ));
    }
    let persists = outputs
        .iter()
        .filter(|o| matches!(o, Output::Persist(_)))
        .count();
    if persists > usize::from(changed) {
        return broken(format!("{id} persists {persists} times in one step"));
    }
    for output in outputs {
        if let Output::Send { to, .. } = output {
            if *to == id || !config.is_voter(*to) {
                return broken(format!("{id} sends to {to}, not another voter"));
            }
        }
    }
    Ok(())
}

/// A vote someone cast: the ghost record behind "one vote per term".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Vote {
    term: Term,
    voter: NodeId,
    candidate: NodeId,
}

/// Ghost state for the cluster-wide invariants: facts about the past that no
/// node keeps (a crashed node forgets; the history does not).
///
/// Create it with each node's log, as the cluster was set up; feed it every
/// step with [`History::record_step`] and every restart with
/// [`History::record_restart`]. Ordered maps and sets only, so it hashes and
/// iterates deterministically inside the model checker.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct History {
    /// Who became leader of each term.
    leaders: BTreeMap<Term, NodeId>,
    /// Every vote ever cast, self-votes of candidates included.
    votes: BTreeSet<Vote>,
    /// The highest term each node was seen in.
    terms: BTreeMap<NodeId, Term>,
    /// Each node's log summary as the cluster was set up, for the vote
    /// restriction. Given, never read from the nodes: a node that lost or
    /// changed its log would otherwise be judged by the wrong log.
    logs: BTreeMap<NodeId, LogSummary>,
}

impl History {
    /// An empty history of a cluster whose nodes hold `logs`: the log
    /// summary each node was set up with (the model's bounds, a simulator's
    /// setup, a driver's storage). No entries are replicated, so no step or
    /// restart may change them ([`Invariant::LogNeverChanges`]).
    #[must_use]
    pub fn new(logs: impl IntoIterator<Item = (NodeId, LogSummary)>) -> Self {
        Self {
            leaders: BTreeMap::new(),
            votes: BTreeSet::new(),
            terms: BTreeMap::new(),
            logs: logs.into_iter().collect(),
        }
    }

    /// Who became leader of each term so far.
    #[must_use]
    pub fn leaders(&self) -> &BTreeMap<Term, NodeId> {
        &self.leaders
    }

    /// The log each node was set up with, as given to [`Self::new`].
    #[must_use]
    pub fn logs(&self) -> &BTreeMap<NodeId, LogSummary> {
        &self.logs
    }

    /// This history with every node id renamed by `rename`, a permutation of
    /// the voters (for the model checker's symmetry reduction, alongside
    /// [`Node::map_ids`]).
    #[must_use]
    pub fn map_ids(&self, rename: impl Fn(NodeId) -> NodeId) -> Self {
        Self {
            leaders: self
                .leaders
                .iter()
                .map(|(&term, &leader)| (term, rename(leader)))
                .collect(),
            votes: self
                .votes
                .iter()
                .map(|vote| Vote {
                    term: vote.term,
                    voter: rename(vote.voter),
                    candidate: rename(vote.candidate),
                })
                .collect(),
            terms: self
                .terms
                .iter()
                .map(|(&id, &term)| (rename(id), term))
                .collect(),
            logs: self
                .logs
                .iter()
                .map(|(&id, &log)| (rename(id), log))
                .collect(),
        }
    }

    /// Whether [`Self::record_step`] would learn nothing from this step, so a
    /// caller may skip it: the node did not change and the input brought no
    /// higher term (a heartbeat and its acknowledgement, the steady state).
    /// Each check reads either a change of the node or a higher term, and
    /// recording an unchanged term, vote and log again changes nothing once
    /// the node's previous step or restart was recorded. A `Start` is a
    /// node's first step, with nothing recorded before it, so it is never
    /// inert.
    #[must_use]
    pub fn is_inert(before: &Node, input: &Input, after: &Node) -> bool {
        let higher_term = match input {
            Input::Start => return false,
            Input::Receive { message, .. } => message.term() > before.current_term(),
            Input::Timeout(_) | Input::TransferLeadership { .. } => false,
        };
        !higher_term && before == after
    }

    /// Every check of one step, in order: the node's own state, the outputs
    /// the step produced, the step's rule, then the cluster-wide history. The simulators call
    /// this after each `Node::step`; the model checks each part separately
    /// because it reports every broken invariant, not the first.
    ///
    /// An inert step ([`Self::is_inert`]: a heartbeat, a stale or duplicate
    /// message) skips the history, as the model and the runtime monitor do:
    /// it can break none of its checks.
    pub fn check_step(
        &mut self,
        config: &Config,
        before: &Node,
        input: &Input,
        after: &Node,
        outputs: &[Output],
    ) -> Result<(), Violation> {
        check_node(config, after)?;
        check_outputs(config, before.hard_state(), after.hard_state(), outputs)?;
        check_transition(config, before, input, after, outputs)?;
        if Self::is_inert(before, input, after) {
            return Ok(());
        }
        self.record_step(config, before, input, after)
    }

    /// Records node `config.id()` going from `before` to `after` on `input`,
    /// and checks every cluster-wide invariant that the step could break.
    pub fn record_step(
        &mut self,
        config: &Config,
        before: &Node,
        input: &Input,
        after: &Node,
    ) -> Result<(), Violation> {
        // Record everything the step did before reporting the first violation,
        // so later checks of the same run see the whole past, not a gap.
        let local = self.record_local_step(config, before, input, after);
        // Leaving another role for leader is the only way to win: a leader
        // never moves to another term as leader (a higher term makes it a
        // follower, and it cannot campaign), so no term change is looked for.
        let won = before.role() != Role::Leader && after.role() == Role::Leader;
        let leader = if won {
            self.record_leader(config, after)
        } else {
            Ok(())
        };
        local.and(leader)
    }

    /// The part of [`Self::record_step`] that one node guarantees on its own,
    /// whatever it is fed (forged messages included): its term never goes
    /// back, it votes at most once per term, and a leader steps down on a
    /// higher term. The leader checks need honest peers, so they stay out.
    pub fn record_local_step(
        &mut self,
        config: &Config,
        before: &Node,
        input: &Input,
        after: &Node,
    ) -> Result<(), Violation> {
        let id = config.id();
        let log = self.check_log(id, after);
        let term = self.record_term(id, after.current_term());
        let stale = self.check_stale_leader(config, before, input, after);
        let pre_vote = check_pre_vote(config, before, input, after);
        // Before the step's vote is recorded: it asks about earlier votes.
        let transfer = self.check_transfer_campaign(config, before, input, after);
        // A vote can only be new if the hard state changed; an unchanged one was
        // recorded by the step (or restart) that produced it. Skipping the
        // lookup keeps the fuzzer's hot path short.
        let vote = match after.voted_for() {
            Some(candidate) if after.hard_state() != before.hard_state() => {
                self.record_vote(after.current_term(), id, candidate)
            }
            _ => Ok(()),
        };
        log.and(term)
            .and(stale)
            .and(pre_vote)
            .and(transfer)
            .and(vote)
    }

    /// Records node `id` restarting as `node` (restored from storage).
    pub fn record_restart(&mut self, id: NodeId, node: &Node) -> Result<(), Violation> {
        let log = self.check_log(id, node);
        let term = self.record_term(id, node.current_term());
        let vote = match node.voted_for() {
            Some(candidate) => self.record_vote(node.current_term(), id, candidate),
            None => Ok(()),
        };
        log.and(term).and(vote)
    }

    /// [`Invariant::LogNeverChanges`]: `node` holds the log `id` was set up
    /// with. Reported, never learnt: the oracle keeps judging votes by the
    /// log the node should hold.
    fn check_log(&self, id: NodeId, node: &Node) -> Result<(), Violation> {
        match self.logs.get(&id) {
            Some(&log) if log == node.log() => Ok(()),
            Some(&log) => Err(Violation::new(
                Invariant::LogNeverChanges,
                format!(
                    "{id} holds {} instead of {log}, the log it was set up with: no entries \
                     are replicated, so a restore or a step changed it",
                    node.log()
                ),
            )),
            None => Err(Violation::new(
                Invariant::LogNeverChanges,
                format!(
                    "{id} holds {}, but the history was given no log for it",
                    node.log()
                ),
            )),
        }
    }

    fn record_term(&mut self, id: NodeId, term: Term) -> Result<(), Violation> {
        let seen = self.terms.entry(id).or_default();
        if term < *seen {
            return Err(Violation::new(
                Invariant::TermsNeverGoBack,
                format!("{id} went back from {seen} to {term}"),
            ));
        }
        *seen = term;
        Ok(())
    }

    fn record_vote(
        &mut self,
        term: Term,
        voter: NodeId,
        candidate: NodeId,
    ) -> Result<(), Violation> {
        let earlier = self
            .votes
            .range(
                Vote {
                    term,
                    voter,
                    candidate: NodeId(0),
                }..,
            )
            .take_while(|v| v.term == term && v.voter == voter)
            .find(|v| v.candidate != candidate);
        let result = match earlier {
            Some(earlier) => Err(Violation::new(
                Invariant::OneVotePerTerm,
                format!(
                    "{voter} voted for {} and for {candidate} in {term}",
                    earlier.candidate
                ),
            )),
            None => Ok(()),
        };
        // Kept even when it breaks the rule: the leader checks count it.
        self.votes.insert(Vote {
            term,
            voter,
            candidate,
        });
        result
    }

    /// Raft Figure 2, all servers: a higher term converts anyone to follower.
    fn check_stale_leader(
        &self,
        config: &Config,
        before: &Node,
        input: &Input,
        after: &Node,
    ) -> Result<(), Violation> {
        let Some((from, message)) = higher_term_from_voter(config, before, input) else {
            return Ok(());
        };
        if before.role() == Role::Leader && after.role() == Role::Leader {
            return Err(Violation::new(
                Invariant::StaleLeaderStepsDown,
                format!(
                    "{} led {} and stayed leader after {} from {from}",
                    config.id(),
                    before.current_term(),
                    message
                ),
            ));
        }
        Ok(())
    }

    /// [`Invariant::TransferTargetVotesOnce`]: a candidacy started by a
    /// TimeoutNow goes from the term it names to the next, a term in which
    /// this node cast no vote yet.
    fn check_transfer_campaign(
        &self,
        config: &Config,
        before: &Node,
        input: &Input,
        after: &Node,
    ) -> Result<(), Violation> {
        let Input::Receive {
            from,
            message: Message::TimeoutNow { term },
        } = *input
        else {
            return Ok(());
        };
        let campaigned = after.role() == Role::Candidate
            && (before.role() != Role::Candidate || after.current_term() != before.current_term());
        if !campaigned {
            return Ok(());
        }
        let id = config.id();
        let new_term = after.current_term();
        let broken = |what: String| {
            Err(Violation::new(
                Invariant::TransferTargetVotesOnce,
                format!(
                    "{id} in {} campaigned in {new_term} on {from}'s TimeoutNow({term}): {what}",
                    before.current_term()
                ),
            ))
        };
        if term != before.current_term() || before.current_term().next() != Some(new_term) {
            return broken("not from the TimeoutNow's term into the next".to_owned());
        }
        let earlier = self
            .votes
            .iter()
            .find(|v| v.term == new_term && v.voter == id && v.candidate != id);
        if let Some(earlier) = earlier {
            return broken(format!(
                "it had voted for {} in that term",
                earlier.candidate
            ));
        }
        Ok(())
    }

    fn record_leader(&mut self, config: &Config, leader: &Node) -> Result<(), Violation> {
        let id = config.id();
        let term = leader.current_term();
        if let Some(&other) = self.leaders.get(&term) {
            if other != id {
                return Err(Violation::new(
                    Invariant::ElectionSafety,
                    format!("{other} and {id} both became leader of {term}"),
                ));
            }
        }
        self.leaders.insert(term, id);
        // Distinct members only: the set of votes keys each voter once per
        // candidate and term, and a non-member's vote counts for nothing.
        let voters: Vec<NodeId> = self
            .votes
            .iter()
            .filter(|v| v.term == term && v.candidate == id && config.is_voter(v.voter))
            .map(|v| v.voter)
            .collect();
        if !is_majority(config, voters.len()) {
            return Err(Violation::new(
                Invariant::LeaderHasQuorum,
                format!(
                    "{id} became leader of {term} with votes of {voters:?} only, of {} voters",
                    config.voters().len()
                ),
            ));
        }
        // The logs the nodes were set up with, not the ones they report: a
        // node that lost its log must not be judged by its new one.
        // A missing log is a gap in the setup; taking it as empty would pass
        // the restriction without checking it.
        let unknown = |node: NodeId| {
            Violation::new(
                Invariant::VoteRestriction,
                format!("{id} leads {term}, but the history was given no log for {node}"),
            )
        };
        let leader_log = *self.logs.get(&id).ok_or_else(|| unknown(id))?;
        for voter in voters {
            let voter_log = *self.logs.get(&voter).ok_or_else(|| unknown(voter))?;
            if !up_to_date_per_section_5_4_1(leader_log, voter_log) {
                return Err(Violation::new(
                    Invariant::VoteRestriction,
                    format!(
                        "{id} with {leader_log} leads {term} on the vote of {voter} with {voter_log}"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The sender and message of `input` if it is a well-formed message from
/// another voter carrying a term above `before`'s that the node must adopt:
/// the case Figure 2's rule for all servers is about ("If RPC request or
/// response contains term T > currentTerm: set currentTerm = T, convert to
/// follower"). Anything else a node ignores: a message from a non-member or
/// from itself, and one that contradicts its own envelope (a RequestVote's or
/// PreVote's `candidateId`, or an AppendEntries' `leaderId`, that is not the
/// sender), which no server following the protocol sends.
///
/// A message of a term above the [`Term::CEILING`] is dropped too: no
/// correct server passes the ceiling.
///
/// The thesis' features exempt three messages whose term is not the sender's
/// own, or must not move the receiver's: a PreVote (it names the term its
/// sender would campaign in) and a granted PreVoteResponse (it echoes that
/// term), §9.6; and, with lease-guarded votes, a RequestVote without the
/// transfer flag reaching a leader or a follower in its lease, §4.2.3.
#[must_use]
pub fn higher_term_from_voter(
    config: &Config,
    before: &Node,
    input: &Input,
) -> Option<(NodeId, Message)> {
    let Input::Receive { from, message } = *input else {
        return None;
    };
    let in_lease = before.role() == Role::Leader || before.in_lease();
    let term_is_news = match message {
        Message::PreVote { .. }
        | Message::PreVoteResponse {
            vote_granted: true, ..
        } => false,
        Message::RequestVote {
            leadership_transfer: false,
            ..
        } => !(config.features().lease_guarded_votes && in_lease),
        _ => true,
    };
    (well_formed(config, from, &message)
        && term_is_news
        && message_term(&message) > before.current_term())
    .then_some((from, message))
}

/// Whether a node reads `message` from `from` at all: it comes from another
/// voter, names its sender where it names anyone, and its term is at most
/// the [`Term::CEILING`] (no correct server passes it). Anything else is
/// dropped before its term is read. Restated here rather than shared with
/// the core, like the §5.4.1 oracle.
fn well_formed(config: &Config, from: NodeId, message: &Message) -> bool {
    from != config.id()
        && config.is_voter(from)
        && names_sender(message, from)
        && message_term(message).0 <= Term::CEILING.0
}

/// [`Invariant::PreVoteChangesNothing`] for one step of `config.id()`.
fn check_pre_vote(
    config: &Config,
    before: &Node,
    input: &Input,
    after: &Node,
) -> Result<(), Violation> {
    let (was, now) = (before.hard_state(), after.hard_state());
    if was == now {
        return Ok(());
    }
    let id = config.id();
    let broken = |what: &str| {
        Err(Violation::new(
            Invariant::PreVoteChangesNothing,
            format!(
                "{id} {what}, and went from {} voted {:?} to {} voted {:?}",
                was.current_term, was.voted_for, now.current_term, now.voted_for
            ),
        ))
    };
    match *input {
        Input::Receive {
            message: Message::PreVote { .. },
            ..
        } => broken("answered a PreVote"),
        Input::Receive {
            message: Message::PreVoteResponse { term, vote_granted },
            ..
        } => {
            // The real election, after the last grant a majority needed.
            let won = vote_granted
                && before.role() == Role::PreCandidate
                && after.role() == Role::Candidate
                && was.current_term.next() == Some(now.current_term)
                && now.voted_for == Some(id);
            // A refusal from a voter ahead of us: Figure 2's higher-term rule.
            let adopted = !vote_granted
                && term > was.current_term
                && now.current_term == term
                && now.voted_for.is_none()
                && after.role() == Role::Follower;
            if won || adopted {
                Ok(())
            } else {
                broken("took a PreVoteResponse")
            }
        }
        Input::Timeout(Timer::Election) if after.role() == Role::PreCandidate => {
            broken("started a pre-vote")
        }
        _ => Ok(()),
    }
}

/// [`Invariant::TransitionRules`]: checks that one step of node
/// `config.id()` from `before` on `input`, producing `outputs` and leaving
/// `after`, did what its rule says. Each rule is restated from the paper (or
/// the thesis, for the features) rather than taken from the core, and names
/// itself when broken. It holds of any input, forged ones included: a rule
/// about a message applies only to a well-formed one from another voter.
///
/// The safety invariants say what must never happen; these say what each
/// step must do, so a rule that is wrong in a safe way (a candidate that
/// stays candidate after hearing the leader of its term, a node that keeps
/// its old vote in a new term) is caught on the step that breaks it. Every
/// decision of the features has its rule too (a transfer request, the
/// acknowledgement that decides it, its abandonment, a TimeoutNow
/// received), and every step's messages and timers are checked field by
/// field and length by length (`check_sent_fields`,
/// `check_timer_lengths`).
pub fn check_transition(
    config: &Config,
    before: &Node,
    input: &Input,
    after: &Node,
    outputs: &[Output],
) -> Result<(), Violation> {
    let step = Transition {
        config,
        before,
        input,
        after,
        outputs,
    };
    let (role, t0) = (before.role(), before.current_term());
    check_term_ceiling(&step)?;
    if let Some((from, message)) = higher_term_from_voter(config, before, input) {
        check_higher_term(&step, from, &message)?;
    }
    match *input {
        _ if t0 >= Term::CEILING && starts_election(&step) => check_no_election_at_ceiling(&step)?,
        Input::Receive { from, message } if well_formed(config, from, &message) => {
            check_message(&step, from, message)?;
        }
        Input::Timeout(Timer::Election)
            if role == Role::Follower && config.lease_duration().is_some() && before.in_lease() =>
        {
            check_election_timeout_in_lease(&step)?;
        }
        Input::Timeout(Timer::Election) if role != Role::Leader && t0.next().is_some() => {
            if config.features().pre_vote && !step.alone() {
                check_election_timeout_with_pre_vote(&step)?;
            } else {
                check_election_timeout(&step)?;
            }
        }
        Input::Start => check_start(&step)?,
        Input::Timeout(Timer::Heartbeat) if role == Role::Leader => {
            check_heartbeat_timeout(&step)?;
        }
        Input::TransferLeadership { to } => check_transfer_request(&step, to)?,
        _ => {}
    }
    if config.features().check_quorum {
        check_quorum_window_rules(config, before, input, after, outputs)
            .or_else(|rule| step.broken(rule))?;
    }
    if role != Role::Leader && after.role() == Role::Leader {
        check_new_leader(&step)?;
    }
    if role == Role::Leader && after.role() != Role::Leader {
        check_step_down(&step)?;
    }
    if role == Role::Leader {
        check_transfer_abandonment(&step)?;
    }
    check_heartbeat_rounds(&step)?;
    check_sent_fields(&step)?;
    check_timer_lengths(&step)
}

/// The term ceiling: no step takes a node's term past [`Term::CEILING`],
/// so no node persists a term its restart refuses. Compared here, not
/// through `Term::next`, which the core uses.
fn check_term_ceiling(step: &Transition) -> Result<(), Violation> {
    if step.t1().0 > Term::CEILING.0 && step.t1() != step.t0() {
        return step.broken("no step takes a term past the term ceiling");
    }
    Ok(())
}

/// Whether the step's input would start an election below the ceiling: an
/// election timeout, or a TimeoutNow of the node's term.
fn starts_election(step: &Transition) -> bool {
    match *step.input {
        Input::Timeout(Timer::Election) => true,
        Input::Receive {
            from,
            message: message @ Message::TimeoutNow { term },
        } => term == step.t0() && well_formed(step.config, from, &message),
        _ => false,
    }
}

/// At the term ceiling no election starts: an election timeout or a
/// TimeoutNow leaves the node as it was, at most re-arming its election
/// timer, and sends nothing.
fn check_no_election_at_ceiling(step: &Transition) -> Result<(), Violation> {
    let rearms_at_most = step.outputs.iter().all(|o| {
        matches!(
            o,
            Output::SetTimer {
                timer: Timer::Election,
                ..
            }
        )
    });
    if step.after != step.before || !rearms_at_most {
        return step.broken("at the term ceiling no election starts");
    }
    Ok(())
}

/// One step under [`check_transition`], with what its rules ask of it.
struct Transition<'a> {
    config: &'a Config,
    before: &'a Node,
    input: &'a Input,
    after: &'a Node,
    outputs: &'a [Output],
}

impl Transition<'_> {
    /// The node's term before the step.
    fn t0(&self) -> Term {
        self.before.current_term()
    }

    /// The node's term after the step.
    fn t1(&self) -> Term {
        self.after.current_term()
    }

    /// Whether the node is the cluster's only voter.
    fn alone(&self) -> bool {
        self.config.voters().len() == 1
    }

    /// The violation of `rule` by this step, with the state around it.
    fn broken(&self, rule: &str) -> Result<(), Violation> {
        let (before, after) = (self.before, self.after);
        Err(Violation::new(
            Invariant::TransitionRules,
            format!(
                "{} as {} in {} on {:?}: {rule} (after: {} in {}, voted {:?}, leader {:?})",
                self.config.id(),
                before.role(),
                self.t0(),
                self.input,
                after.role(),
                self.t1(),
                after.voted_for(),
                after.leader_id()
            ),
        ))
    }

    /// Whether the step sends `to` a message that is `wanted`.
    fn sends(&self, to: NodeId, wanted: impl Fn(&Message) -> bool) -> bool {
        self.outputs
            .iter()
            .any(|o| matches!(o, Output::Send { to: t, message } if *t == to && wanted(message)))
    }

    /// Whether the step sends every other voter a message that is `wanted`.
    fn to_every_peer(&self, wanted: impl Fn(&Message) -> bool) -> bool {
        let id = self.config.id();
        self.config
            .voters()
            .iter()
            .filter(|&&p| p != id)
            .all(|&p| self.sends(p, &wanted))
    }

    /// Whether the step arms `timer`, for any duration.
    fn arms(&self, timer: Timer) -> bool {
        self.outputs
            .iter()
            .any(|o| matches!(o, Output::SetTimer { timer: t, .. } if *t == timer))
    }

    /// Whether the step cancels `timer`.
    fn cancels(&self, timer: Timer) -> bool {
        self.outputs.contains(&Output::CancelTimer(timer))
    }

    /// Every message the step sends, with its receiver.
    fn sent(&self) -> impl Iterator<Item = (NodeId, &Message)> {
        self.outputs.iter().filter_map(|o| match o {
            Output::Send { to, message } => Some((*to, message)),
            _ => None,
        })
    }

    /// The sender and message of the input, if it is a well-formed message
    /// from another voter.
    fn received(&self) -> Option<(NodeId, Message)> {
        match *self.input {
            Input::Receive { from, message } if well_formed(self.config, from, &message) => {
                Some((from, message))
            }
            _ => None,
        }
    }

    /// The target's log if the input is the acknowledgement, by the target
    /// of the transfer in progress, of a heartbeat of the leader's term: the
    /// message whose log decides the transfer (§3.10).
    fn target_acknowledgement(&self) -> Option<LogSummary> {
        let target = self.before.transfer_target()?;
        if self.before.role() != Role::Leader {
            return None;
        }
        match self.received()? {
            (
                from,
                Message::AppendEntriesResponse {
                    term,
                    success: true,
                    last_log_index,
                    last_log_term,
                    ..
                },
            ) if from == target && term == self.t0() => Some(LogSummary {
                last_log_index,
                last_log_term,
            }),
            _ => None,
        }
    }
}

/// Figure 2, all servers: "If RPC request or response contains term T >
/// currentTerm: set currentTerm = T, convert to follower"; the new term
/// starts with no vote and no known leader, unless this very message is the
/// RequestVote granted or the AppendEntries of its leader. A deposed leader
/// stops its heartbeats and arms its election timer. Applies to the
/// `message` from `from` that [`higher_term_from_voter`] returned.
fn check_higher_term(step: &Transition, from: NodeId, message: &Message) -> Result<(), Violation> {
    let after = step.after;
    if step.t1() != message_term(message) {
        return step.broken("a higher term is adopted");
    }
    if after.role() != Role::Follower {
        return step.broken("a higher term converts to follower");
    }
    let vote_ok = match after.voted_for() {
        None => true,
        Some(c) => c == from && matches!(message, Message::RequestVote { .. }),
    };
    if !vote_ok {
        return step.broken("a new term starts without a vote (votedFor is of the old term)");
    }
    let leader_ok = match after.leader_id() {
        None => true,
        Some(l) => l == from && matches!(message, Message::AppendEntries { .. }),
    };
    if !leader_ok {
        return step.broken("a new term starts with no known leader");
    }
    let stops_beating = step.cancels(Timer::Heartbeat) && step.arms(Timer::Election);
    if step.before.role() == Role::Leader && !stops_beating {
        return step.broken("a deposed leader stops its heartbeats and arms its election timer");
    }
    Ok(())
}

/// The rules about a well-formed `message` from another voter `from`, picked
/// by the message and its term against the node's.
fn check_message(step: &Transition, from: NodeId, message: Message) -> Result<(), Violation> {
    let (before, t0) = (step.before, step.t0());
    let term = message_term(&message);
    let transfers = step.config.features().leadership_transfer;
    match message {
        Message::AppendEntries { .. } if term >= t0 => check_append_entries(step, from, term),
        Message::AppendEntries { .. } | Message::RequestVote { .. } if term < t0 => {
            check_request_of_an_older_term(step, from)
        }
        // Decided from the state before (a higher term that is no news),
        // not from whether the node kept its term.
        Message::RequestVote { .. }
            if term > t0 && higher_term_from_voter(step.config, before, step.input).is_none() =>
        {
            check_request_vote_under_lease(step)
        }
        Message::RequestVote {
            last_log_index,
            last_log_term,
            leadership_transfer,
            ..
        } => {
            let candidate_log = LogSummary {
                last_log_index,
                last_log_term,
            };
            check_request_vote(step, from, term, candidate_log, leadership_transfer)
        }
        Message::PreVote {
            last_log_index,
            last_log_term,
            ..
        } => {
            let candidate_log = LogSummary {
                last_log_index,
                last_log_term,
            };
            check_pre_vote_answer(step, from, term, candidate_log)
        }
        Message::RequestVoteResponse {
            vote_granted: true, ..
        } if term == t0 && before.role() == Role::Candidate => check_candidate_wins(step, from),
        Message::PreVoteResponse {
            vote_granted: true, ..
        } if before.role() == Role::PreCandidate && t0.next() == Some(term) => {
            check_pre_candidate_campaigns(step, from, term)
        }
        Message::TimeoutNow { .. }
            if term == t0
                && transfers
                && before.role() == Role::Follower
                && before.leader_id().is_none_or(|l| l == from)
                && t0.next().is_some() =>
        {
            check_timeout_now(step)
        }
        Message::TimeoutNow { .. } if term == t0 => check_timeout_now_not_from_leader(step),
        Message::AppendEntriesResponse {
            success: true,
            last_log_index,
            last_log_term,
            ..
        } if term == t0 && before.role() == Role::Leader => {
            let peer_log = LogSummary {
                last_log_index,
                last_log_term,
            };
            check_transfer_acknowledgement(step, from, peer_log)
        }
        _ => Ok(()),
    }
}

/// §5.2: "If the leader's term is at least as large as the candidate's
/// current term, then the candidate recognizes the leader as legitimate and
/// returns to follower state"; a follower resets its election timer and
/// answers, and with Pre-Vote or lease-guarded votes starts a lease
/// (§4.2.3, §9.6). A second leader of a leader's own term is forged and
/// ignored. Applies to an AppendEntries of a `term` at least the node's.
fn check_append_entries(step: &Transition, from: NodeId, term: Term) -> Result<(), Violation> {
    let (before, after, t0) = (step.before, step.after, step.t0());
    if before.role() == Role::Leader && term == t0 {
        return Ok(());
    }
    if after.role() != Role::Follower || step.t1() != term {
        return step.broken("AppendEntries of a term at least ours makes a follower of its term");
    }
    if after.leader_id() != Some(from) {
        if term == t0 && before.leader_id().is_some_and(|l| l != from) {
            return Ok(());
        }
        return step.broken("a follower follows the leader whose AppendEntries it accepts");
    }
    let acked = step.sends(
        from,
        |m| matches!(m, Message::AppendEntriesResponse { term: t, success: true, .. } if *t == term),
    );
    if !acked || !step.arms(Timer::Election) {
        return step
            .broken("the leader's AppendEntries resets the election timer and is acknowledged");
    }
    let features = step.config.features();
    let keeps_lease = features.pre_vote || features.lease_guarded_votes;
    if keeps_lease && !(after.in_lease() && step.arms(Timer::Lease)) {
        return step.broken("hearing the leader starts a lease (§4.2.3, §9.6)");
    }
    Ok(())
}

/// §5.1: a request (AppendEntries or RequestVote) of an older term is
/// rejected with our term, and changes nothing.
fn check_request_of_an_older_term(step: &Transition, from: NodeId) -> Result<(), Violation> {
    let t0 = step.t0();
    let refused = step.sends(from, |m| match *m {
        Message::AppendEntriesResponse { term, success, .. } => term == t0 && !success,
        Message::RequestVoteResponse { term, vote_granted } => term == t0 && !vote_granted,
        _ => false,
    });
    if !refused
        || step.after.hard_state() != step.before.hard_state()
        || step.after.role() != step.before.role()
    {
        return step
            .broken("a request of an older term is refused with our term and changes nothing");
    }
    Ok(())
}

/// §4.2.3: "If a server receives a RequestVote request within the minimum
/// election timeout of hearing from a current leader, it does not update
/// its term or grant its vote": a RequestVote of a higher term that is no
/// news (see [`higher_term_from_voter`]) is ignored, unanswered.
fn check_request_vote_under_lease(step: &Transition) -> Result<(), Violation> {
    if step.after.hard_state() != step.before.hard_state() || !step.outputs.is_empty() {
        return step.broken("a RequestVote under a lease is ignored: no term, no vote, no answer");
    }
    Ok(())
}

/// Figure 2, RequestVote receiver: grant if votedFor is null or candidateId
/// and the candidate's log is at least as up-to-date (§5.4.1); this crate
/// also refuses once a leader of the term is known. With the leader lease, a
/// node that heard a leader (or restarted) within the minimum election
/// timeout votes for no one but a transfer's candidate, in whatever term
/// (thesis §6.4.1). A granted vote is recorded and resets the election
/// timer; a refused one leaves the vote as it was. Applies to a RequestVote
/// from `from` of a `term` at least the node's, not under a lease.
fn check_request_vote(
    step: &Transition,
    from: NodeId,
    term: Term,
    candidate_log: LogSummary,
    leadership_transfer: bool,
) -> Result<(), Violation> {
    let (before, after) = (step.before, step.after);
    let (voted, leader) = if term > step.t0() {
        (None, None)
    } else {
        (before.voted_for(), before.leader_id())
    };
    let can_vote = voted == Some(from) || (voted.is_none() && leader.is_none());
    let guarded =
        step.config.lease_duration().is_some() && before.in_lease() && !leadership_transfer;
    let grant = can_vote && !guarded && up_to_date_per_section_5_4_1(candidate_log, after.log());
    let answered = step.sends(from, |m| {
        *m == Message::RequestVoteResponse {
            term: step.t1(),
            vote_granted: grant,
        }
    });
    if !answered {
        return step.broken("a RequestVote is answered, granted exactly when Figure 2 allows");
    }
    if grant && !(after.voted_for() == Some(from) && step.arms(Timer::Election)) {
        return step.broken("granting a vote records it and resets the election timer");
    }
    // A voter backs the candidate: a pre-candidate gives up its own
    // campaign (§9.6), and a candidate or leader voted for itself, so it
    // never grants.
    if grant && after.role() != Role::Follower {
        return step.broken("a node that grants its vote is a follower");
    }
    if !grant && after.voted_for() != voted {
        return step.broken("a refused RequestVote leaves the vote as it was");
    }
    Ok(())
}

/// §9.6: a voter agrees to a pre-vote only if the candidate's log is at
/// least as up-to-date as its own (§5.4.1) and it has not heard from a
/// leader within the minimum election timeout (it leads, or is in its
/// lease); for its own term, only if it could grant a real vote now (no
/// other vote, no leader). A grant carries the term it grants; a refusal
/// carries ours and is sent only if that is news to the candidate (at least
/// the term it asks about), since any other would change nothing. Applies to
/// a PreVote from `from` for `term`.
fn check_pre_vote_answer(
    step: &Transition,
    from: NodeId,
    term: Term,
    candidate_log: LogSummary,
) -> Result<(), Violation> {
    let (before, t0) = (step.before, step.t0());
    let heard_leader = before.role() == Role::Leader || before.in_lease();
    let could_vote = term > t0
        || (term == t0
            && before.voted_for().is_none_or(|v| v == from)
            && before.leader_id().is_none());
    let grant =
        could_vote && up_to_date_per_section_5_4_1(candidate_log, before.log()) && !heard_leader;
    let answer = if grant {
        Some(term)
    } else {
        (t0 >= term).then_some(t0)
    };
    let expected: Vec<Output> = answer
        .map(|term| Output::Send {
            to: from,
            message: Message::PreVoteResponse {
                term,
                vote_granted: grant,
            },
        })
        .into_iter()
        .collect();
    if step.outputs != expected.as_slice() {
        return step
            .broken("a PreVote is granted exactly when §9.6 allows, and refused only with news");
    }
    Ok(())
}

/// §5.2: a candidate wins once a majority of the cluster voted for it.
/// Applies to a vote granted by `from` in the candidate's term.
fn check_candidate_wins(step: &Transition, from: NodeId) -> Result<(), Violation> {
    let votes = voters_with(step.before.votes_granted(), from);
    if is_majority(step.config, votes) != (step.after.role() == Role::Leader) {
        return step.broken("a candidate becomes leader exactly when a majority voted for it");
    }
    Ok(())
}

/// §9.6: a pre-candidate campaigns once a majority would vote for it.
/// Applies to a pre-vote granted by `from` for the next `term`.
fn check_pre_candidate_campaigns(
    step: &Transition,
    from: NodeId,
    term: Term,
) -> Result<(), Violation> {
    let votes = voters_with(step.before.votes_granted(), from);
    let started = step.after.role() == Role::Candidate && step.t1() == term;
    if is_majority(step.config, votes) != started {
        return step
            .broken("a pre-candidate campaigns exactly when a majority granted its pre-vote");
    }
    if started && !campaigned(step, false) {
        return step.broken(
            "a pre-candidate with a majority of pre-votes starts an election: next term, own vote, RequestVote to all",
        );
    }
    Ok(())
}

/// §3.10: TimeoutNow from the leader of our term "has the same effect as
/// the target server's election timer firing", and more: the follower
/// campaigns at once in the next term, bypassing Pre-Vote (it becomes a
/// candidate, not a pre-candidate) and the lease (§4.2.3: even a follower
/// that heard its leader just now), and asks every peer with the transfer
/// flag, so their leases let the vote through. Applies to a TimeoutNow of
/// the node's term from its leader (or from the only leader it could
/// have, when it knows none yet), with transfers on.
fn check_timeout_now(step: &Transition) -> Result<(), Violation> {
    if !campaigned(step, true) {
        return step.broken(
            "TimeoutNow from the leader starts a campaign at once, with the transfer flag, bypassing Pre-Vote and the lease",
        );
    }
    Ok(())
}

/// Whether the step started an election (§5.2: "a follower increments its
/// current term and transitions to candidate state. It then votes for
/// itself and issues RequestVote RPCs in parallel to each of the other
/// servers"): the next term, a candidate counting its own vote alone (a
/// voter alone wins at once), a fresh election timer, its lease ended (the
/// lease timer cancelled, if it ran), and a RequestVote of that term to
/// every peer carrying the `transfer` flag; what else a RequestVote carries
/// is [`check_sent_fields`]'s.
fn campaigned(step: &Transition, transfer: bool) -> bool {
    let (id, before, after, alone) = (step.config.id(), step.before, step.after, step.alone());
    let next = step.t0().next();
    let asked = alone
        || step.to_every_peer(|m| {
            matches!(m, Message::RequestVote { term, leadership_transfer, .. }
                if Some(*term) == next && *leadership_transfer == transfer)
        });
    let role_ok = (after.role() == Role::Candidate
        && *after.votes_granted() == BTreeSet::from([id]))
        || (alone && after.role() == Role::Leader);
    let lease_ended = !before.in_lease() || step.cancels(Timer::Lease);
    role_ok
        && Some(step.t1()) == next
        && after.voted_for() == Some(id)
        && asked
        && step.arms(Timer::Election)
        && lease_ended
        && !step
            .sent()
            .any(|(_, m)| matches!(m, Message::PreVote { .. }))
}

/// §3.10: only a follower's leader asks it to campaign. Anyone else of our
/// term was not asked by its leader (a candidate or pre-candidate is
/// campaigning already, a leader has no leader), or transfers are off:
/// a TimeoutNow of our term changes nothing.
fn check_timeout_now_not_from_leader(step: &Transition) -> Result<(), Violation> {
    if step.after != step.before || !step.outputs.is_empty() {
        return step
            .broken("a TimeoutNow not from the leader of our term to a follower changes nothing");
    }
    Ok(())
}

/// Leader lease (thesis §6.4.1): a follower whose vote guard runs does not
/// campaign on an election timeout, since the leader it heard counts on it;
/// it waits again.
fn check_election_timeout_in_lease(step: &Transition) -> Result<(), Violation> {
    let waits = step.after == step.before && step.arms(Timer::Election);
    if !waits {
        return step.broken(
            "an election timeout within the lease's vote guard re-arms and changes nothing",
        );
    }
    Ok(())
}

/// §9.6: with Pre-Vote, an election timeout of a follower or candidate
/// (with peers) starts a pre-vote round for the next term, in its own term,
/// with a fresh election timer; a node that campaigns has given up on the
/// leader it heard, so its lease ends (its timer cancelled, if it ran).
fn check_election_timeout_with_pre_vote(step: &Transition) -> Result<(), Violation> {
    let next = step.t0().next();
    let asked =
        step.to_every_peer(|m| matches!(m, Message::PreVote { term, .. } if Some(*term) == next));
    let lease_ended = !step.before.in_lease() || step.cancels(Timer::Lease);
    if step.after.role() != Role::PreCandidate
        || step.t1() != step.t0()
        || !asked
        || !step.arms(Timer::Election)
        || !lease_ended
    {
        return step.broken("an election timeout starts a pre-vote round");
    }
    Ok(())
}

/// Figure 2, followers and candidates: "If election timeout elapses without
/// receiving AppendEntries RPC from current leader or granting vote to
/// candidate: convert to candidate", which increments its term, votes for
/// itself, resets its election timer and sends RequestVote to all others
/// (§5.2). A voter alone wins at once.
fn check_election_timeout(step: &Transition) -> Result<(), Violation> {
    if !campaigned(step, false) {
        return step.broken(
            "an election timeout starts an election: next term, own vote, RequestVote to all",
        );
    }
    Ok(())
}

/// A started (or restarted) node arms its role's timer, or a follower would
/// never campaign, and changes nothing else. With the leader lease a
/// follower also guards its vote for the minimum election timeout: it may
/// have heard a leader just before it went down, and has forgotten when
/// (thesis §6.4.1).
fn check_start(step: &Transition) -> Result<(), Violation> {
    let (before, after) = (step.before, step.after);
    let timer = if before.role() == Role::Leader {
        Timer::Heartbeat
    } else {
        Timer::Election
    };
    let guards = step.config.lease_duration().is_some() && before.role() == Role::Follower;
    let unchanged = if guards {
        after.in_lease()
            && step.arms(Timer::Lease)
            && after.hard_state() == before.hard_state()
            && after.role() == before.role()
            && after.leader_id() == before.leader_id()
    } else {
        after == before
    };
    if !step.arms(timer) || !unchanged {
        return step.broken("a start arms the role's timer and changes nothing else");
    }
    Ok(())
}

/// Figure 2, leaders: "send initial empty AppendEntries RPCs (heartbeat) to
/// each server; repeat during idle periods": a leader's heartbeat timer sends
/// AppendEntries of its term to all and re-arms.
fn check_heartbeat_timeout(step: &Transition) -> Result<(), Violation> {
    let (id, t0) = (step.config.id(), step.t0());
    let beat = step.to_every_peer(
        |m| matches!(m, Message::AppendEntries { term, leader_id, .. } if *term == t0 && *leader_id == id),
    );
    if step.after.role() != Role::Leader || !beat || !step.arms(Timer::Heartbeat) {
        return step.broken("a leader's heartbeat timer sends AppendEntries to all and re-arms");
    }
    Ok(())
}

/// §3.10, a transfer request: only a leader with transfers on takes one,
/// and only to another voter that is not its target already (asking again
/// does not extend the deadline). It then arms the transfer deadline for
/// "about an election timeout" (the minimum) and asks the target for its
/// log at once with an AppendEntries of its term and current round, whose
/// acknowledgement decides the transfer; it sends no TimeoutNow yet, and
/// nothing else changes. Any other request changes nothing.
fn check_transfer_request(step: &Transition, to: NodeId) -> Result<(), Violation> {
    let (config, before, after) = (step.config, step.before, step.after);
    let taken = config.features().leadership_transfer
        && before.role() == Role::Leader
        && to != config.id()
        && config.is_voter(to)
        && before.transfer_target() != Some(to);
    if !taken {
        if after != before || !step.outputs.is_empty() {
            return step.broken(
                "a transfer request changes nothing unless a leader with transfers on takes another voter as its new target",
            );
        }
        return Ok(());
    }
    let deadline = Output::SetTimer {
        timer: Timer::Transfer,
        min: config.timing().election_timeout_min,
        max: config.timing().election_timeout_min,
    };
    let probe = Output::Send {
        to,
        message: Message::AppendEntries {
            term: step.t0(),
            leader_id: config.id(),
            round: before.round(),
        },
    };
    let leads_on = after.role() == Role::Leader
        && after.hard_state() == before.hard_state()
        && after.round() == before.round()
        && after.lease_round() == before.lease_round()
        && after.heard_from() == before.heard_from();
    let outputs_ok = step.outputs.len() == 2
        && step.outputs.contains(&deadline)
        && step.outputs.contains(&probe);
    if after.transfer_target() != Some(to) || !leads_on || !outputs_ok {
        return step.broken(
            "a leader that takes a transfer target arms the transfer deadline (the minimum election timeout), asks the target for its log at once, and does nothing else",
        );
    }
    Ok(())
}

/// §3.10, the acknowledgement that decides a transfer: only the target's
/// is answered with TimeoutNow, and only if the log it reports is at least
/// as up to date as the leader's (§5.4.1, restated): the target could not
/// win the votes otherwise, and no log is replicated here to catch it up,
/// so a target that is behind refuses the transfer at once (the target and
/// its deadline dropped). With the leader lease, the leader gives its lease
/// up before the TimeoutNow leaves: a LeaseRevoked after any extension of
/// this step and before the TimeoutNow, none held after it. Applies to an
/// acknowledgement of the leader's term from `from`, reporting `peer_log`.
fn check_transfer_acknowledgement(
    step: &Transition,
    from: NodeId,
    peer_log: LogSummary,
) -> Result<(), Violation> {
    let (before, after) = (step.before, step.after);
    let position = |wanted: &dyn Fn(&Output) -> bool| step.outputs.iter().position(wanted);
    let timeout_now = position(&|o| {
        matches!(
            o,
            Output::Send {
                message: Message::TimeoutNow { .. },
                ..
            }
        )
    });
    if before.transfer_target() != Some(from) {
        if timeout_now.is_some() {
            return step
                .broken("only the transfer target's acknowledgement is answered with TimeoutNow");
        }
        return Ok(());
    }
    if !up_to_date_per_section_5_4_1(peer_log, before.log()) {
        if timeout_now.is_some()
            || after.transfer_target().is_some()
            || !step.cancels(Timer::Transfer)
        {
            return step.broken(
                "a target whose log is behind the leader's refuses the transfer: no TimeoutNow, the target and its deadline dropped",
            );
        }
        return Ok(());
    }
    let asked = step
        .sent()
        .filter(|(_, m)| matches!(m, Message::TimeoutNow { .. }))
        .eq([(from, &Message::TimeoutNow { term: step.t0() })]);
    if !asked || after.role() != Role::Leader {
        return step.broken(
            "a target whose log is at least as up to date as the leader's is sent one TimeoutNow of the leader's term",
        );
    }
    if step.config.lease_duration().is_some() {
        let revoked = position(&|o| *o == Output::LeaseRevoked);
        let extended = step
            .outputs
            .iter()
            .rposition(|o| matches!(o, Output::LeaseExtended { .. }));
        let must_revoke = before.lease_round().is_some() || extended.is_some();
        let in_order = revoked.is_some_and(|r| r < timeout_now.unwrap_or(0) && extended < Some(r));
        if after.lease_round().is_some() || (must_revoke && !in_order) {
            return step.broken(
                "with the leader lease, a leader gives its lease up (LeaseRevoked) before it sends TimeoutNow, and holds none after",
            );
        }
    }
    Ok(())
}

/// §3.10: "If the transfer does not complete after about an election
/// timeout, the prior leader aborts the transfer and resumes accepting
/// client requests": when its deadline fires, the leader drops the target
/// and goes on leading, asking no one, whether or not it sent a TimeoutNow
/// (the target may never have received it). Until then the transfer keeps
/// its target and its deadline, through every acknowledgement and every
/// TimeoutNow sent; only a new request (its own rule), a refusal (the
/// acknowledgement's rule) or the leader stepping down ends it early, and a
/// leader that steps down cancels the deadline. Applies to every step of a
/// leader.
fn check_transfer_abandonment(step: &Transition) -> Result<(), Violation> {
    let (before, after) = (step.before, step.after);
    let target = before.transfer_target();
    let leads_on = after.role() == Role::Leader && step.t1() == step.t0();
    if !leads_on {
        if target.is_some() && !step.cancels(Timer::Transfer) {
            return step
                .broken("a leader that steps down abandons its transfer and cancels its deadline");
        }
        return Ok(());
    }
    let refused = step
        .target_acknowledgement()
        .is_some_and(|log| !up_to_date_per_section_5_4_1(log, before.log()));
    match *step.input {
        Input::TransferLeadership { .. } => Ok(()),
        Input::Timeout(Timer::Transfer) => {
            if after.transfer_target().is_some()
                || after.hard_state() != before.hard_state()
                || !step.outputs.is_empty()
            {
                return step
                    .broken("a leader abandons a transfer that timed out and goes on leading");
            }
            Ok(())
        }
        _ if refused => Ok(()),
        _ => {
            let changed = step.arms(Timer::Transfer) || step.cancels(Timer::Transfer);
            if after.transfer_target() != target || changed {
                return step.broken(
                    "a transfer in progress keeps its target and its deadline until the deadline fires, it is refused or replaced, or the leader steps down",
                );
            }
            Ok(())
        }
    }
}

/// Leader lease (thesis §6.4.1; proofs.md, "Leader lease"): a leader counts
/// its heartbeat rounds from 1 in each leadership. Each broadcast of
/// heartbeats (its election, its heartbeat timer) starts the next round and
/// announces it with RoundStarted before the first of them, so the driver's
/// reading of its clock precedes every send of the round; no other step
/// starts or changes a round (a transfer's probe carries the current one).
/// Without the lease there are no rounds: no RoundStarted, round 0 (what
/// each AppendEntries carries is [`check_sent_fields`]'s).
fn check_heartbeat_rounds(step: &Transition) -> Result<(), Violation> {
    let (before, after) = (step.before, step.after);
    let leader = after.role() == Role::Leader;
    let elected = leader && before.role() != Role::Leader;
    let beat =
        leader && before.role() == Role::Leader && *step.input == Input::Timeout(Timer::Heartbeat);
    let expected = match (step.config.lease_duration(), elected, beat) {
        (Some(_), true, _) => Some(1),
        (Some(_), false, true) => Some(before.round().saturating_add(1)),
        _ => None,
    };
    let announced: Vec<u64> = step
        .outputs
        .iter()
        .filter_map(|o| match o {
            Output::RoundStarted { round } => Some(*round),
            _ => None,
        })
        .collect();
    let first_beat = step.outputs.iter().position(|o| {
        matches!(
            o,
            Output::Send {
                message: Message::AppendEntries { .. },
                ..
            }
        )
    });
    let announced_first = step
        .outputs
        .iter()
        .position(|o| matches!(o, Output::RoundStarted { .. }))
        .is_none_or(|at| first_beat.is_none_or(|beat| at < beat));
    let round_ok = match expected {
        Some(round) => after.round() == round,
        None => !leader || after.round() == before.round(),
    };
    if announced != expected.into_iter().collect::<Vec<_>>() || !round_ok || !announced_first {
        return step.broken(
            "with the leader lease each heartbeat broadcast starts the next round, announced before its first AppendEntries; nothing else starts one",
        );
    }
    Ok(())
}

/// Every field of every message a step sends, from the node after it: a
/// RequestVote (§5.2, §5.4.1) and a PreVote (§9.6) name the node, the term
/// it campaigns in (a PreVote the one after its own) and its own log, not
/// its term; a RequestVote carries the transfer flag exactly when it
/// answers a TimeoutNow (§3.10); an AppendEntries names the node as leader
/// of its term and carries its current heartbeat round; an acknowledgement
/// carries the node's term and log (the leader decides a transfer on it)
/// and echoes the round of the AppendEntries it answers; a RequestVote's
/// answer carries the node's term; a TimeoutNow goes from a leader, in its
/// term, to its transfer target and nowhere else. A PreVote's answer is
/// its own rule's ([`check_pre_vote_answer`]).
fn check_sent_fields(step: &Transition) -> Result<(), Violation> {
    for (to, message) in step.sent() {
        if let Err(rule) = message_fields_ok(step, to, message) {
            return step.broken(rule);
        }
    }
    Ok(())
}

/// [`check_sent_fields`] for one message sent `to`: the message its rule
/// makes of the node after the step, compared whole.
fn message_fields_ok(step: &Transition, to: NodeId, message: &Message) -> Result<(), &'static str> {
    let (id, after, t1) = (step.config.id(), step.after, step.t1());
    let LogSummary {
        last_log_index,
        last_log_term,
    } = after.log();
    let (expected, rule) = match *message {
        Message::RequestVote { .. } => (
            Some(Message::RequestVote {
                term: t1,
                candidate_id: id,
                last_log_index,
                last_log_term,
                leadership_transfer: matches!(
                    step.received(),
                    Some((_, Message::TimeoutNow { .. }))
                ),
            }),
            "a RequestVote carries the candidate's term, id and own log (§5.4.1), and the transfer flag exactly when it answers TimeoutNow",
        ),
        Message::PreVote { .. } => (
            t1.next().map(|term| Message::PreVote {
                term,
                candidate_id: id,
                last_log_index,
                last_log_term,
            }),
            "a PreVote carries the next term, the sender's id and its own log, not its term (§9.6)",
        ),
        Message::AppendEntries { .. } => (
            Some(Message::AppendEntries {
                term: t1,
                leader_id: id,
                round: after.round(),
            }),
            "an AppendEntries names its leader and carries its term and current round",
        ),
        Message::AppendEntriesResponse { success, .. } => (
            match *step.input {
                Input::Receive {
                    message: Message::AppendEntries { round, .. },
                    ..
                } => Some(Message::AppendEntriesResponse {
                    term: t1,
                    success,
                    last_log_index,
                    last_log_term,
                    round,
                }),
                _ => None,
            },
            "an acknowledgement carries the node's term and own log and echoes the heartbeat's round",
        ),
        Message::RequestVoteResponse { vote_granted, .. } => (
            Some(Message::RequestVoteResponse {
                term: t1,
                vote_granted,
            }),
            "a RequestVote's answer carries the voter's term",
        ),
        Message::TimeoutNow { .. } => (
            (step.before.role() == Role::Leader
                && after.role() == Role::Leader
                && step.before.transfer_target() == Some(to))
            .then_some(Message::TimeoutNow { term: t1 }),
            "a TimeoutNow goes from a leader, of its term, to its transfer target only",
        ),
        Message::PreVoteResponse { .. } => return Ok(()),
    };
    if expected != Some(*message) {
        return Err(rule);
    }
    Ok(())
}

/// The length of every timer a step arms, stated from [`Config`]: the
/// election timer for a duration drawn from the election timeout's range
/// (§5.2: randomized); the heartbeat and CheckQuorum timers for one
/// heartbeat interval; the transfer deadline for the minimum election
/// timeout (§3.10: "about an election timeout"); and the follower's vote
/// guard, [`Timer::Lease`], for the minimum election timeout by its own
/// clock (§4.2.3: "within the minimum election timeout of hearing from a
/// current leader"), never the leader's lease, which is shorter by the
/// drift bound: the leader's lease is safe only because every guard
/// outlasts it.
fn check_timer_lengths(step: &Transition) -> Result<(), Violation> {
    let timing = step.config.timing();
    let (min, max, beat) = (
        timing.election_timeout_min,
        timing.election_timeout_max,
        timing.heartbeat_interval,
    );
    for output in step.outputs {
        let &Output::SetTimer {
            timer,
            min: from,
            max: to,
        } = output
        else {
            continue;
        };
        let (stated, rule) = match timer {
            Timer::Election => (
                (min, max),
                "the election timer is drawn from the election timeout's range",
            ),
            Timer::Heartbeat => (
                (beat, beat),
                "the heartbeat timer runs one heartbeat interval",
            ),
            Timer::CheckQuorum => (
                (beat, beat),
                "the CheckQuorum tick runs one heartbeat interval",
            ),
            Timer::Transfer => (
                (min, min),
                "the transfer deadline runs the minimum election timeout",
            ),
            Timer::Lease => (
                (min, min),
                "the vote guard runs the minimum election timeout by its own clock, not the lease's shortened length",
            ),
        };
        if (from, to) != stated {
            return step.broken(rule);
        }
    }
    Ok(())
}

/// §5.2, Figure 2 leaders: "Upon election: send initial empty AppendEntries
/// RPCs (heartbeat) to each server"; a new leader arms its heartbeat timer
/// and no longer needs an election timer.
fn check_new_leader(step: &Transition) -> Result<(), Violation> {
    let (id, t1) = (step.config.id(), step.t1());
    let beat = step.to_every_peer(
        |m| matches!(m, Message::AppendEntries { term, leader_id, .. } if *term == t1 && *leader_id == id),
    );
    if !beat || !step.cancels(Timer::Election) || !step.arms(Timer::Heartbeat) {
        return step.broken(
            "a new leader sends heartbeats to all at once, arms its heartbeat timer and cancels its election timer",
        );
    }
    Ok(())
}

/// A leader that steps down, in a higher term or in its own (CheckQuorum,
/// §6.2), stops its heartbeats and arms its election timer: it must
/// campaign again some day.
fn check_step_down(step: &Transition) -> Result<(), Violation> {
    if !(step.cancels(Timer::Heartbeat) && step.arms(Timer::Election)) {
        return step
            .broken("a leader that steps down stops its heartbeats and arms its election timer");
    }
    Ok(())
}

/// CheckQuorum's sliding window (§6.2), restated step by step: which peers
/// a leader counts as heard, how long ago, and when it steps down.
fn check_quorum_window_rules(
    config: &Config,
    before: &Node,
    input: &Input,
    after: &Node,
    outputs: &[Output],
) -> Result<(), &'static str> {
    let leader_before = before.role() == Role::Leader;
    let leader_after = after.role() == Role::Leader;
    let same_term = before.current_term() == after.current_term();
    if !leader_before && leader_after {
        // A new leader heard its voters in this term, the last of them in
        // this very step: its window starts with them.
        let mut voters: BTreeSet<NodeId> = before.votes_granted().clone();
        if let Input::Receive { from, message } = *input {
            let granted = matches!(message, Message::RequestVoteResponse { term, vote_granted: true }
                if term == after.current_term());
            if granted && well_formed(config, from, &message) {
                voters.insert(from);
            }
        }
        let heard_now: BTreeMap<NodeId, Ticks> = voters
            .into_iter()
            .filter(|&p| p != config.id())
            .map(|p| (p, Ticks(0)))
            .collect();
        if *after.heard_from() != heard_now {
            return Err(
                "a new leader's CheckQuorum window holds the voters that elected it, heard now",
            );
        }
        if !arms_exactly(
            outputs,
            Timer::CheckQuorum,
            config.timing().heartbeat_interval,
        ) {
            return Err("a new leader arms its CheckQuorum tick for one heartbeat interval");
        }
        return Ok(());
    }
    if !leader_before || !same_term {
        return Ok(());
    }
    match *input {
        // A tick: every count grows by one, a peer not heard within the
        // latest window of ticks no longer counts, and a leader that has no
        // majority left steps down in its own term.
        Input::Timeout(Timer::CheckQuorum) => {
            let window = check_quorum_window_per_section_6_2(config);
            let aged: BTreeMap<NodeId, Ticks> = before
                .heard_from()
                .iter()
                .map(|(&p, &ticks)| (p, Ticks(ticks.0.saturating_add(1))))
                .filter(|&(_, ticks)| ticks <= window)
                .collect();
            let heard = is_majority(config, aged.len() + 1);
            if heard != leader_after || !same_term {
                return Err(
                    "CheckQuorum keeps a leader exactly when a majority was heard within the window",
                );
            }
            if leader_after && *after.heard_from() != aged {
                return Err(
                    "a CheckQuorum tick counts every peer one tick further and forgets those past the window",
                );
            }
            let tick = config.timing().heartbeat_interval;
            if leader_after && !arms_exactly(outputs, Timer::CheckQuorum, tick) {
                return Err(
                    "a leader that keeps a majority arms its next CheckQuorum tick for one heartbeat interval",
                );
            }
        }
        // An acknowledgement of a heartbeat of its term: that peer was heard now.
        Input::Receive {
            from,
            message:
                message @ Message::AppendEntriesResponse {
                    term,
                    success: true,
                    ..
                },
        } if term == before.current_term() && well_formed(config, from, &message) => {
            let mut heard = before.heard_from().clone();
            heard.insert(from, Ticks(0));
            if leader_after && *after.heard_from() != heard {
                return Err("an acknowledgement of its term counts its sender as heard now");
            }
        }
        // Nothing else tells a leader that a peer heard it.
        _ => {
            if leader_after && after.heard_from() != before.heard_from() {
                return Err("only a CheckQuorum tick or an acknowledgement changes who was heard");
            }
        }
    }
    Ok(())
}

/// Whether `outputs` arm `timer` for exactly `duration`.
fn arms_exactly(outputs: &[Output], timer: Timer, duration: Duration) -> bool {
    outputs.contains(&Output::SetTimer {
        timer,
        min: duration,
        max: duration,
    })
}

/// CheckQuorum's window in ticks, restated rather than the core's
/// `Config::check_quorum_window`: the fewest heartbeat intervals whose sum
/// is at least the minimum election timeout.
fn check_quorum_window_per_section_6_2(config: &Config) -> Ticks {
    let timing = config.timing();
    let (min, heartbeat) = (
        timing.election_timeout_min.as_nanos(),
        timing.heartbeat_interval.as_nanos(),
    );
    if heartbeat == 0 {
        return Ticks(u64::MAX);
    }
    let whole = min / heartbeat;
    let ticks = if whole * heartbeat < min {
        whole + 1
    } else {
        whole
    };
    Ticks(u64::try_from(ticks).unwrap_or(u64::MAX))
}

/// The term a message carries, restated rather than `Message::term`.
fn message_term(message: &Message) -> Term {
    match *message {
        Message::RequestVote { term, .. }
        | Message::RequestVoteResponse { term, .. }
        | Message::AppendEntries { term, .. }
        | Message::AppendEntriesResponse { term, .. }
        | Message::PreVote { term, .. }
        | Message::PreVoteResponse { term, .. }
        | Message::TimeoutNow { term } => term,
    }
}

/// Whether a message's own sender field, if it has one, is `from`.
fn names_sender(message: &Message, from: NodeId) -> bool {
    match *message {
        Message::RequestVote { candidate_id, .. } | Message::PreVote { candidate_id, .. } => {
            candidate_id == from
        }
        Message::AppendEntries { leader_id, .. } => leader_id == from,
        Message::RequestVoteResponse { .. }
        | Message::AppendEntriesResponse { .. }
        | Message::PreVoteResponse { .. }
        | Message::TimeoutNow { .. } => true,
    }
}

/// Whether `count` distinct voters are more than half of the cluster (§5.2:
/// "votes from a majority of the servers in the full cluster"). Computed
/// here from the voter set, independently of [`Config::quorum`], which the
/// core counts with: an oracle sharing the core's formula would bless a
/// wrong one.
fn is_majority(config: &Config, count: usize) -> bool {
    2 * count > config.voters().len()
}

/// How many distinct voters `votes` holds once `from` is counted too,
/// without building that set.
fn voters_with(votes: &BTreeSet<NodeId>, from: NodeId) -> usize {
    votes.len() + usize::from(!votes.contains(&from))
}

/// §5.4.1's rule restated from the paper's sentences, independently of
/// [`LogSummary::is_at_least_as_up_to_date_as`], which the core uses: an
/// oracle that shared the core's function would bless a bug inside it.
/// "If the logs have last entries with different terms, then the log with the
/// later term is more up-to-date. If the logs end with the same term, then
/// whichever log is longer is more up-to-date."
fn up_to_date_per_section_5_4_1(candidate: LogSummary, voter: LogSummary) -> bool {
    if candidate.last_log_term != voter.last_log_term {
        candidate.last_log_term > voter.last_log_term
    } else {
        candidate.last_log_index >= voter.last_log_index
    }
}

/// Nodes `n0` to `n{nodes - 1}`, each with an empty log: what a test's
/// [`History`] is set up with.
#[cfg(test)]
fn empty_logs(nodes: u8) -> impl Iterator<Item = (NodeId, LogSummary)> {
    (0..nodes).map(|id| (NodeId(id), LogSummary::default()))
}

#[cfg(test)]
mod map_ids_tests {
    use super::*;
    use crate::config::Timing;
    use crate::message::Message;
    use crate::node::Timer;

    /// n0 -> n2, n1 -> n0, n2 -> n1.
    fn rotate(id: NodeId) -> NodeId {
        NodeId((id.0 + 2) % 3)
    }

    /// Runs a 3-node election won by `candidate` with `voter`'s vote, recording
    /// every step in a fresh history.
    fn elect(candidate: NodeId, voter: NodeId) -> History {
        let configs = crate::config::Config::cluster(3, Timing::default()).unwrap();
        let config = |id: NodeId| &configs[usize::from(id.0)];
        let mut history = History::new(empty_logs(3));
        let mut nodes = [Node::new(), Node::new(), Node::new()];
        let mut step = |history: &mut History, id: NodeId, input: Input| {
            let node = &mut nodes[usize::from(id.0)];
            let before = node.clone();
            node.step(config(id), input, &mut Vec::new());
            history.record_step(config(id), &before, &input, node)
        };
        let campaign = Input::Timeout(Timer::Election);
        step(&mut history, candidate, campaign).unwrap();
        let request = Message::RequestVote {
            term: Term(1),
            candidate_id: candidate,
            last_log_index: 0,
            last_log_term: Term(0),
            leadership_transfer: false,
        };
        let receive = |from, message| Input::Receive { from, message };
        step(&mut history, voter, receive(candidate, request)).unwrap();
        let grant = Message::RequestVoteResponse {
            term: Term(1),
            vote_granted: true,
        };
        step(&mut history, candidate, receive(voter, grant)).unwrap();
        history
    }

    #[test]
    fn a_renamed_history_equals_the_history_of_the_renamed_run() {
        let original = elect(NodeId(0), NodeId(1));
        assert_eq!(original.leaders(), &BTreeMap::from([(Term(1), NodeId(0))]));
        let renamed = elect(rotate(NodeId(0)), rotate(NodeId(1)));
        assert_ne!(renamed, original);
        assert_eq!(original.map_ids(rotate), renamed);
    }
}

#[cfg(test)]
mod oracle_tests {
    use super::*;

    /// The oracle and the core's comparison agree on every pair of small logs,
    /// so a bug planted in either one makes the other disagree.
    #[test]
    fn the_vote_restriction_oracle_agrees_with_the_core_on_small_logs() {
        let logs: Vec<LogSummary> = (0..4)
            .flat_map(|index| {
                (0..4).map(move |term| LogSummary {
                    last_log_index: index,
                    last_log_term: Term(term),
                })
            })
            .collect();
        for &a in &logs {
            for &b in &logs {
                assert_eq!(
                    up_to_date_per_section_5_4_1(a, b),
                    a.is_at_least_as_up_to_date_as(b),
                    "{a} vs {b}"
                );
            }
        }
    }
}

#[cfg(test)]
mod output_tests {
    use super::*;
    use crate::config::Timing;
    use crate::message::Message;
    use crate::node::Timer;

    fn config() -> Config {
        Config::cluster(3, Timing::default()).unwrap().remove(0)
    }

    /// n0's first campaign: its hard state before and after, and its outputs.
    fn campaign() -> (HardState, HardState, Vec<Output>) {
        let mut node = Node::new();
        let before = node.hard_state();
        let mut out = Vec::new();
        node.step(&config(), Input::Timeout(Timer::Election), &mut out);
        (before, node.hard_state(), out)
    }

    fn request_vote() -> Output {
        Output::Send {
            to: NodeId(1),
            message: Message::RequestVote {
                term: Term(1),
                candidate_id: NodeId(0),
                last_log_index: 0,
                last_log_term: Term(0),
                leadership_transfer: false,
            },
        }
    }

    #[test]
    fn the_core_persists_its_new_term_and_vote_first_and_passes() {
        let (before, after, out) = campaign();
        assert_ne!(before, after);
        assert_eq!(out.first(), Some(&Output::Persist(after)));
        assert_eq!(check_outputs(&config(), before, after, &out), Ok(()));
    }

    #[test]
    fn a_term_change_without_a_persist_is_reported() {
        let (before, after, mut out) = campaign();
        out.retain(|o| !matches!(o, Output::Persist(_)));
        let violation = check_outputs(&config(), before, after, &out).unwrap_err();
        assert_eq!(violation.invariant, Invariant::PersistBeforeSend);
    }

    #[test]
    fn a_persist_of_a_stale_hard_state_is_reported() {
        let (before, after, mut out) = campaign();
        out[0] = Output::Persist(before);
        let violation = check_outputs(&config(), before, after, &out).unwrap_err();
        assert_eq!(violation.invariant, Invariant::PersistBeforeSend);
    }

    #[test]
    fn a_persist_after_a_send_is_reported() {
        let (before, after, _) = campaign();
        let out = [request_vote(), Output::Persist(after)];
        let violation = check_outputs(&config(), before, after, &out).unwrap_err();
        assert_eq!(violation.invariant, Invariant::PersistBeforeSend);
    }

    #[test]
    fn a_persist_with_an_unchanged_hard_state_is_reported() {
        let (_, after, _) = campaign();
        let out = [Output::Persist(after), request_vote()];
        let violation = check_outputs(&config(), after, after, &out).unwrap_err();
        assert_eq!(violation.invariant, Invariant::PersistBeforeSend);
    }

    #[test]
    fn a_second_persist_is_reported() {
        let (before, after, _) = campaign();
        let out = [Output::Persist(after), Output::Persist(after)];
        let violation = check_outputs(&config(), before, after, &out).unwrap_err();
        assert_eq!(violation.invariant, Invariant::PersistBeforeSend);
    }

    #[test]
    fn a_send_to_itself_or_a_non_member_breaks_the_output_contract() {
        let state = HardState::default();
        for to in [NodeId(0), NodeId(7)] {
            let out = [Output::Send {
                to,
                message: Message::AppendEntriesResponse {
                    term: Term(0),
                    success: false,
                    last_log_index: 0,
                    last_log_term: Term(0),
                    round: 0,
                },
            }];
            let violation = check_outputs(&config(), state, state, &out).unwrap_err();
            assert_eq!(violation.invariant, Invariant::PersistBeforeSend, "to {to}");
        }
    }
}

#[cfg(test)]
mod history_tests {
    use super::*;
    use crate::config::Timing;
    use crate::message::Message;
    use crate::node::Timer;

    /// A vote whose voter's log the history was not given cannot be checked
    /// against the vote restriction, so it is a violation, not an empty log.
    #[test]
    fn a_leader_elected_on_a_voter_whose_log_the_history_was_not_given_is_reported() {
        let config = Config::cluster(3, Timing::default()).unwrap().remove(0);
        let mut history = History::new([(NodeId(0), LogSummary::default())]);
        let mut node = Node::new();
        let step = |history: &mut History, node: &mut Node, input: Input| {
            let before = node.clone();
            node.step(&config, input, &mut Vec::new());
            history.record_step(&config, &before, &input, node)
        };
        step(&mut history, &mut node, Input::Timeout(Timer::Election)).unwrap();
        // n1's vote, of a node the history was given no log for.
        history.record_vote(Term(1), NodeId(1), NodeId(0)).unwrap();
        let grant = Input::Receive {
            from: NodeId(1),
            message: Message::RequestVoteResponse {
                term: Term(1),
                vote_granted: true,
            },
        };
        let violation = step(&mut history, &mut node, grant).unwrap_err();
        assert_eq!(node.role(), Role::Leader);
        assert_eq!(violation.invariant, Invariant::VoteRestriction);
    }

    const AHEAD: LogSummary = LogSummary {
        last_log_index: 1,
        last_log_term: Term(1),
    };

    #[test]
    fn a_node_restored_without_the_log_it_was_set_up_with_is_reported() {
        let mut history = History::new([(NodeId(1), AHEAD)]);
        let restored = Node::restore(HardState::default(), AHEAD);
        assert_eq!(history.record_restart(NodeId(1), &restored), Ok(()));
        let forgot = Node::restore(HardState::default(), LogSummary::default());
        let violation = history.record_restart(NodeId(1), &forgot).unwrap_err();
        assert_eq!(violation.invariant, Invariant::LogNeverChanges);
        assert_eq!(
            violation.detail,
            "n1 holds log(0@t0) instead of log(1@t1), the log it was set up with: no entries \
             are replicated, so a restore or a step changed it"
        );
    }

    #[test]
    fn a_step_that_changes_the_nodes_log_is_reported() {
        let config = Config::cluster(3, Timing::default()).unwrap().remove(0);
        let mut history = History::new([(NodeId(0), LogSummary::default())]);
        let before = Node::new();
        let after = Node::restore(HardState::default(), AHEAD);
        let violation = history
            .record_local_step(&config, &before, &Input::Start, &after)
            .unwrap_err();
        assert_eq!(violation.invariant, Invariant::LogNeverChanges);
    }

    #[test]
    fn a_node_of_which_the_history_knows_no_log_is_reported() {
        let history_without_n2 = || History::new([(NodeId(0), LogSummary::default())]);
        let violation = history_without_n2()
            .record_restart(NodeId(2), &Node::new())
            .unwrap_err();
        assert_eq!(violation.invariant, Invariant::LogNeverChanges);
        assert!(violation.detail.contains("no log for it"), "{violation}");
    }

    /// The oracle judges a vote by the log the voter was set up with: a
    /// voter that lost its log (and so voted for a candidate behind it) is
    /// not judged by the log it lost it for.
    #[test]
    fn a_vote_cast_by_a_node_that_lost_its_log_breaks_the_vote_restriction() {
        let configs = Config::cluster(3, Timing::default()).unwrap();
        let logs = [
            (NodeId(0), LogSummary::default()),
            (NodeId(1), AHEAD),
            (NodeId(2), AHEAD),
        ];
        let mut history = History::new(logs);
        let step = |history: &mut History, node: &mut Node, id: u8, input: Input| {
            let config = &configs[usize::from(id)];
            let before = node.clone();
            node.step(config, input, &mut Vec::new());
            history.record_step(config, &before, &input, node)
        };
        let mut candidate = Node::new();
        step(
            &mut history,
            &mut candidate,
            0,
            Input::Timeout(Timer::Election),
        )
        .unwrap();
        // n1 restarts with an empty log instead of its own.
        let mut voter = Node::restore(HardState::default(), LogSummary::default());
        let lost = history.record_restart(NodeId(1), &voter).unwrap_err();
        assert_eq!(lost.invariant, Invariant::LogNeverChanges);
        let request = Input::Receive {
            from: NodeId(0),
            message: Message::RequestVote {
                term: Term(1),
                candidate_id: NodeId(0),
                last_log_index: 0,
                last_log_term: Term(0),
                leadership_transfer: false,
            },
        };
        // Its empty log lets it grant the vote; its step still holds the wrong log.
        let voted = step(&mut history, &mut voter, 1, request).unwrap_err();
        assert_eq!(voted.invariant, Invariant::LogNeverChanges);
        assert_eq!(voter.voted_for(), Some(NodeId(0)));
        let grant = Input::Receive {
            from: NodeId(1),
            message: Message::RequestVoteResponse {
                term: Term(1),
                vote_granted: true,
            },
        };
        let violation = step(&mut history, &mut candidate, 0, grant).unwrap_err();
        assert_eq!(candidate.role(), Role::Leader);
        assert_eq!(violation.invariant, Invariant::VoteRestriction);
        assert!(
            violation.detail.contains("n1 with log(1@t1)"),
            "{violation}"
        );
    }
}

#[cfg(test)]
mod feature_tests {
    use super::*;
    use crate::config::{Features, Timing};
    use crate::node::Timer;

    fn config() -> Config {
        Config::cluster(3, Timing::default())
            .unwrap()
            .remove(0)
            .with_features(Features::ALL)
    }

    /// Node n0 restored at `term` without a vote, then fed `inputs`.
    fn node(term: u64, inputs: &[Input]) -> Node {
        let hard_state = HardState {
            current_term: Term(term),
            voted_for: None,
        };
        let mut node = Node::restore(hard_state, LogSummary::default());
        for &input in inputs {
            node.step(&config(), input, &mut Vec::new());
        }
        node
    }

    fn receive(from: u8, message: Message) -> Input {
        Input::Receive {
            from: NodeId(from),
            message,
        }
    }

    const TIMEOUT: Input = Input::Timeout(Timer::Election);

    #[test]
    fn a_pre_vote_that_moves_a_term_or_a_vote_is_reported() {
        let before = node(1, &[]);
        let moved = node(2, &[]);
        let pre_vote = receive(
            1,
            Message::PreVote {
                term: Term(2),
                candidate_id: NodeId(1),
                last_log_index: 0,
                last_log_term: Term(0),
            },
        );
        let violation = check_pre_vote(&config(), &before, &pre_vote, &moved).unwrap_err();
        assert_eq!(violation.invariant, Invariant::PreVoteChangesNothing);
        // Starting a pre-vote that raised the term.
        let pre_candidate_of_t2 = node(2, &[TIMEOUT]);
        assert_eq!(pre_candidate_of_t2.role(), Role::PreCandidate);
        let violation =
            check_pre_vote(&config(), &before, &TIMEOUT, &pre_candidate_of_t2).unwrap_err();
        assert_eq!(violation.invariant, Invariant::PreVoteChangesNothing);
        // A grant that raised the term without a won pre-vote behind it.
        let grant = receive(
            1,
            Message::PreVoteResponse {
                term: Term(2),
                vote_granted: true,
            },
        );
        let violation = check_pre_vote(&config(), &before, &grant, &moved).unwrap_err();
        assert_eq!(violation.invariant, Invariant::PreVoteChangesNothing);
    }

    #[test]
    fn the_two_steps_a_pre_vote_leads_to_pass() {
        // The last grant a majority needed: the real election, next term.
        let pre_candidate = node(1, &[TIMEOUT]);
        let grant = receive(
            1,
            Message::PreVoteResponse {
                term: Term(2),
                vote_granted: true,
            },
        );
        let mut candidate = pre_candidate.clone();
        candidate.step(&config(), grant, &mut Vec::new());
        assert_eq!(candidate.role(), Role::Candidate);
        assert_eq!(
            check_pre_vote(&config(), &pre_candidate, &grant, &candidate),
            Ok(())
        );
        // A refusal from a voter ahead: its term adopted.
        let refusal = receive(
            2,
            Message::PreVoteResponse {
                term: Term(5),
                vote_granted: false,
            },
        );
        let mut follower = pre_candidate.clone();
        follower.step(&config(), refusal, &mut Vec::new());
        assert_eq!(follower.current_term(), Term(5));
        assert_eq!(
            check_pre_vote(&config(), &pre_candidate, &refusal, &follower),
            Ok(())
        );
    }

    #[test]
    fn a_transfer_campaign_in_the_wrong_term_or_after_a_vote_is_reported() {
        let follower = node(1, &[]);
        let timeout_now = |term| receive(1, Message::TimeoutNow { term: Term(term) });
        let mut candidate = follower.clone();
        candidate.step(&config(), timeout_now(1), &mut Vec::new());
        assert_eq!(candidate.role(), Role::Candidate);
        let history = History::new(empty_logs(3));
        let ok = history.check_transfer_campaign(&config(), &follower, &timeout_now(1), &candidate);
        assert_eq!(ok, Ok(()));
        // Acting on a TimeoutNow of an older term.
        let violation = history
            .check_transfer_campaign(&config(), &follower, &timeout_now(0), &candidate)
            .unwrap_err();
        assert_eq!(violation.invariant, Invariant::TransferTargetVotesOnce);
        // Campaigning in a term it had already voted in, for another.
        let mut voted = History::new(empty_logs(3));
        voted.record_vote(Term(2), NodeId(0), NodeId(2)).unwrap();
        let violation = voted
            .check_transfer_campaign(&config(), &follower, &timeout_now(1), &candidate)
            .unwrap_err();
        assert_eq!(violation.invariant, Invariant::TransferTargetVotesOnce);
        assert!(
            violation.detail.contains("voted for n2"),
            "{}",
            violation.detail
        );
    }

    #[test]
    fn a_pre_candidate_is_consistent_only_with_pre_vote_on() {
        let config = config();
        assert_eq!(check_node(&config, &node(1, &[TIMEOUT])), Ok(()));
        // Without Pre-Vote a pre-candidate cannot exist.
        let figure_2 = config.clone().with_features(Features::NONE);
        let violation = check_node(&figure_2, &node(1, &[TIMEOUT])).unwrap_err();
        assert_eq!(violation.invariant, Invariant::NodeState);
    }
}

/// A lease one node holds: from when it got it until when it ends (or
/// ended), in real time since some origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HeldLease {
    term: Term,
    from: Duration,
    until: Duration,
}

/// Ghost record of leader leases over real time, for a simulator that knows
/// real time (each node only knows its own clock). Feed it every lease a
/// node gets or extends ([`Self::record_grant`]) and every end before its
/// time ([`Self::record_end`]: a revocation, a crash).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseHistory {
    /// Each node's latest lease.
    held: BTreeMap<NodeId, HeldLease>,
    /// The highest term any lease was held in.
    highest_term: Term,
}

impl LeaseHistory {
    /// An empty history.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// `holder`, leader of `term`, holds a lease from `now` until `until`
    /// (real time). Fails if another node's lease has not ended by `now`, or
    /// a lease of a higher term was held before.
    pub fn record_grant(
        &mut self,
        holder: NodeId,
        term: Term,
        now: Duration,
        until: Duration,
    ) -> Result<(), Violation> {
        if term < self.highest_term {
            return Err(Violation::new(
                Invariant::OneLeaseHolder,
                format!(
                    "{holder} got a lease in {term} at {now:?}, after a lease of {} was held",
                    self.highest_term
                ),
            ));
        }
        for (&other, lease) in &self.held {
            if other != holder && lease.until > now {
                return Err(Violation::new(
                    Invariant::OneLeaseHolder,
                    format!(
                        "{holder} got a lease in {term} at {now:?} while {other} holds one of {} from {:?} until {:?}",
                        lease.term, lease.from, lease.until
                    ),
                ));
            }
        }
        self.highest_term = term;
        let from = match self.held.get(&holder) {
            Some(lease) if lease.term == term && lease.until > now => lease.from,
            _ => now,
        };
        self.held.insert(holder, HeldLease { term, from, until });
        Ok(())
    }

    /// `holder`'s lease, if any, ends at `now` (revoked, or the node crashed).
    pub fn record_end(&mut self, holder: NodeId, now: Duration) {
        if let Some(lease) = self.held.get_mut(&holder) {
            lease.until = lease.until.min(now);
        }
    }

    /// Whether `holder` holds a lease at `now`.
    #[must_use]
    pub fn holds(&self, holder: NodeId, now: Duration) -> bool {
        self.held
            .get(&holder)
            .is_some_and(|lease| lease.from <= now && now < lease.until)
    }
}

#[cfg(test)]
mod transition_tests {
    use super::*;
    use crate::config::{Features, Timing};
    use crate::node::Timer;

    fn configs(count: u8) -> Vec<Config> {
        Config::cluster(count, Timing::default()).unwrap()
    }

    fn restored(term: u64, voted_for: Option<u8>) -> Node {
        let hard_state = HardState {
            current_term: Term(term),
            voted_for: voted_for.map(NodeId),
        };
        Node::restore(hard_state, LogSummary::default())
    }

    /// Node n0's config in a 3-node cluster with `features`.
    fn config_with(features: Features) -> Config {
        configs(3).remove(0).with_features(features)
    }

    /// A RequestVote of `term` from candidate `from`, with an empty log.
    fn request_vote(from: u8, term: u64) -> Input {
        Input::Receive {
            from: NodeId(from),
            message: Message::RequestVote {
                term: Term(term),
                candidate_id: NodeId(from),
                last_log_index: 0,
                last_log_term: Term(0),
                leadership_transfer: false,
            },
        }
    }

    /// n0 elected leader of term 1 by its own vote and n1's, each step
    /// following its rule.
    fn elected_leader(config: &Config) -> Node {
        let (candidate, _) = core_step(config, &Node::new(), Input::Timeout(Timer::Election));
        let grant = Input::Receive {
            from: NodeId(1),
            message: Message::RequestVoteResponse {
                term: Term(1),
                vote_granted: true,
            },
        };
        let (leader, _) = core_step(config, &candidate, grant);
        assert_eq!(leader.role(), Role::Leader);
        leader
    }

    /// A follower of t1 that voted for `voted_for` and whose election timer
    /// fired with Pre-Vote on: a pre-candidate.
    fn pre_candidate(config: &Config, voted_for: Option<u8>) -> Node {
        let mut node = restored(1, voted_for);
        node.step(config, Input::Timeout(Timer::Election), &mut Vec::new());
        assert_eq!(node.role(), Role::PreCandidate);
        node
    }

    /// The core's own step from `before` on `input`, which must follow its rule.
    fn core_step(config: &Config, before: &Node, input: Input) -> (Node, Vec<Output>) {
        let mut after = before.clone();
        let mut outputs = Vec::new();
        after.step(config, input, &mut outputs);
        assert_eq!(
            check_transition(config, before, &input, &after, &outputs),
            Ok(())
        );
        (after, outputs)
    }

    #[test]
    fn a_majority_is_more_than_half_of_the_voters_whatever_the_core_computes() {
        let majorities: Vec<(usize, usize)> = (1..=7)
            .map(|n| {
                let config = &configs(n)[0];
                let smallest = (0..=usize::from(n)).find(|&c| is_majority(config, c));
                (usize::from(n), smallest.unwrap())
            })
            .collect();
        assert_eq!(
            majorities,
            [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)]
        );
    }

    #[test]
    fn the_cores_own_steps_follow_their_rules() {
        let config = &configs(3)[0];
        let mut node = Node::new();
        let inputs = [
            Input::Start,
            Input::Timeout(Timer::Election),
            Input::Receive {
                from: NodeId(1),
                message: Message::RequestVoteResponse {
                    term: Term(1),
                    vote_granted: true,
                },
            },
            Input::Timeout(Timer::Heartbeat),
            Input::Receive {
                from: NodeId(2),
                message: Message::AppendEntries {
                    term: Term(2),
                    round: 0,
                    leader_id: NodeId(2),
                },
            },
        ];
        for input in inputs {
            let before = node.clone();
            let mut out = Vec::new();
            node.step(config, input, &mut out);
            assert_eq!(
                check_transition(config, &before, &input, &node, &out),
                Ok(())
            );
        }
        assert_eq!(
            (node.role(), node.leader_id()),
            (Role::Follower, Some(NodeId(2)))
        );
    }

    #[test]
    fn a_candidate_that_stays_candidate_after_the_leader_of_its_term_is_caught() {
        let config = &configs(3)[0];
        let mut candidate = Node::new();
        candidate.step(config, Input::Timeout(Timer::Election), &mut Vec::new());
        let input = Input::Receive {
            from: NodeId(1),
            message: Message::AppendEntries {
                term: Term(1),
                round: 0,
                leader_id: NodeId(1),
            },
        };
        // The wrong rule: acknowledge, and go on campaigning.
        let outputs = [Output::Send {
            to: NodeId(1),
            message: Message::AppendEntriesResponse {
                term: Term(1),
                round: 0,
                success: true,
                last_log_index: 0,
                last_log_term: Term(0),
            },
        }];
        let violation =
            check_transition(config, &candidate, &input, &candidate, &outputs).unwrap_err();
        assert_eq!(violation.invariant, Invariant::TransitionRules);
        assert!(violation.detail.contains("makes a follower"), "{violation}");
        // No other invariant sees it.
        assert_eq!(check_node(config, &candidate), Ok(()));
        let mut history = History::new(empty_logs(3));
        assert_eq!(
            history.record_step(config, &candidate, &input, &candidate),
            Ok(())
        );
    }

    #[test]
    fn a_leader_that_adopts_the_term_of_a_request_vote_under_its_lease_is_caught() {
        let config = &config_with(Features {
            lease_guarded_votes: true,
            ..Features::NONE
        });
        let leader = elected_leader(config);
        assert_eq!(leader.role(), Role::Leader);
        let request = request_vote(2, 2);
        // The core ignores it (§4.2.3).
        let (ignored, _) = core_step(config, &leader, request);
        assert_eq!(ignored, leader);
        // The wrong rule: adopt the term (and refuse the vote).
        let deposed = restored(2, None);
        let outputs = [
            Output::Persist(deposed.hard_state()),
            Output::Send {
                to: NodeId(2),
                message: Message::RequestVoteResponse {
                    term: Term(2),
                    vote_granted: false,
                },
            },
        ];
        let violation =
            check_transition(config, &leader, &request, &deposed, &outputs).unwrap_err();
        assert!(violation.detail.contains("under a lease"), "{violation}");
    }

    #[test]
    fn a_pre_candidate_that_grants_a_vote_and_keeps_campaigning_is_caught() {
        let config = &config_with(Features {
            pre_vote: true,
            ..Features::NONE
        });
        let before = pre_candidate(config, None);
        let request = request_vote(1, 1);
        // The core grants and gives up its own campaign.
        let (follower, outputs) = core_step(config, &before, request);
        assert_eq!(follower.role(), Role::Follower);
        // The wrong rule: the same outputs, still a pre-candidate.
        let after = pre_candidate(config, Some(1));
        let violation = check_transition(config, &before, &request, &after, &outputs).unwrap_err();
        assert!(violation.detail.contains("is a follower"), "{violation}");
    }

    #[test]
    fn a_pre_vote_answered_other_than_section_9_6_says_is_caught() {
        let config = &configs(3)[0];
        let pre_vote = |term| Input::Receive {
            from: NodeId(1),
            message: Message::PreVote {
                term: Term(term),
                candidate_id: NodeId(1),
                last_log_index: 0,
                last_log_term: Term(0),
            },
        };
        let answer = |term, vote_granted| {
            [Output::Send {
                to: NodeId(1),
                message: Message::PreVoteResponse {
                    term: Term(term),
                    vote_granted,
                },
            }]
        };
        // A follower of t1 that voted for n2 and knows no leader.
        let voted = restored(1, Some(2));
        for (term, outputs) in [(2, answer(2, true)), (1, answer(1, false))] {
            let (_, core) = core_step(config, &voted, pre_vote(term));
            assert_eq!(core, outputs, "the core's answer to PreVote(t{term})");
        }
        // Wrong: granting a pre-vote for our term after voting for another,
        // refusing one for the next term, or no answer to one it grants.
        let wrong: [(u64, &[Output]); 3] =
            [(1, &answer(1, true)), (2, &answer(1, false)), (2, &[])];
        for (term, outputs) in wrong {
            let violation =
                check_transition(config, &voted, &pre_vote(term), &voted, outputs).unwrap_err();
            assert!(violation.detail.contains("§9.6"), "{violation}");
        }
    }

    #[test]
    fn a_pre_candidate_that_campaigns_on_a_timeout_now_is_caught() {
        let config = &config_with(Features {
            pre_vote: true,
            leadership_transfer: true,
            ..Features::NONE
        });
        let pre_candidate = pre_candidate(config, None);
        let timeout_now = Input::Receive {
            from: NodeId(1),
            message: Message::TimeoutNow { term: Term(1) },
        };
        // The core ignores it: only a follower is a transfer's target.
        let (ignored, _) = core_step(config, &pre_candidate, timeout_now);
        assert_eq!(ignored, pre_candidate);
        // The wrong rule: it campaigns, as a follower asked by its leader would.
        let (campaigning, outputs) = core_step(config, &restored(1, None), timeout_now);
        assert_eq!(campaigning.role(), Role::Candidate);
        let violation =
            check_transition(config, &pre_candidate, &timeout_now, &campaigning, &outputs)
                .unwrap_err();
        assert!(violation.detail.contains("changes nothing"), "{violation}");
    }

    #[test]
    fn a_leader_that_keeps_a_transfer_that_timed_out_is_caught() {
        let config = &config_with(Features {
            leadership_transfer: true,
            ..Features::NONE
        });
        let leader = elected_leader(config);
        let (transferring, _) =
            core_step(config, &leader, Input::TransferLeadership { to: NodeId(2) });
        assert_eq!(transferring.transfer_target(), Some(NodeId(2)));
        let timeout = Input::Timeout(Timer::Transfer);
        // The core abandons it (§3.10).
        let (abandoned, _) = core_step(config, &transferring, timeout);
        assert_eq!(abandoned.transfer_target(), None);
        // The wrong rule: the timeout changes nothing.
        let violation =
            check_transition(config, &transferring, &timeout, &transferring, &[]).unwrap_err();
        assert!(
            violation.detail.contains("abandons a transfer"),
            "{violation}"
        );
    }

    #[test]
    fn a_node_that_keeps_its_old_vote_in_a_higher_term_is_caught() {
        let config = &configs(3)[0];
        let before = restored(1, Some(1));
        let input = Input::Receive {
            from: NodeId(2),
            message: Message::AppendEntriesResponse {
                term: Term(2),
                round: 0,
                success: false,
                last_log_index: 0,
                last_log_term: Term(0),
            },
        };
        // The wrong rule: the term is adopted, the vote for n1 kept.
        let after = restored(2, Some(1));
        let outputs = [Output::Persist(after.hard_state())];
        let violation = check_transition(config, &before, &input, &after, &outputs).unwrap_err();
        assert!(violation.detail.contains("without a vote"), "{violation}");
        assert_eq!(check_node(config, &after), Ok(()));
        assert_eq!(
            check_outputs(config, before.hard_state(), after.hard_state(), &outputs),
            Ok(())
        );
    }

    #[test]
    fn a_candidate_that_ignores_its_majority_is_caught() {
        let config = &configs(5)[0];
        let mut candidate = Node::new();
        candidate.step(config, Input::Timeout(Timer::Election), &mut Vec::new());
        for from in [1, 2] {
            let input = Input::Receive {
                from: NodeId(from),
                message: Message::RequestVoteResponse {
                    term: Term(1),
                    vote_granted: true,
                },
            };
            let mut out = Vec::new();
            let before = candidate.clone();
            candidate.step(config, input, &mut out);
            assert_eq!(
                check_transition(config, &before, &input, &candidate, &out),
                Ok(())
            );
            // With the third vote, staying candidate breaks the rule.
            if from == 2 {
                assert_eq!(candidate.role(), Role::Leader);
                let stayed = check_transition(config, &before, &input, &before, &[]);
                assert!(stayed.is_err());
            }
        }
    }
}
