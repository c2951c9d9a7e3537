//! A deterministic in-memory cluster of core nodes: the harness shared by the
//! scenario tests, the fuzzer and anyone who wants to script a fault.
//!
//! Nothing happens unless the caller says so: deliver, drop or duplicate an
//! in-flight message, fire an armed timer, crash or restart a node, cut links.
//! There is no clock: which timer fires first is the caller's choice, which
//! is exactly what a test forcing a split vote, or a fuzzer, wants.
//!
//! After every step the cluster checks the node-local and cluster-wide
//! invariants of [`raft_election::invariants`] and returns the first violation.

use raft_election::invariants::{History, Violation};
use raft_election::{Config, Envelope, Message};
use raft_election::{HardState, LogSummary, NodeId, Role, Term};
use raft_election::{Input, Node, Output, Timer};
use std::collections::{BTreeSet, VecDeque};

/// At most this many messages are in flight; a send beyond it is lost, which
/// Raft tolerates. Keeps a fuzzer's duplicate storm from growing without bound.
pub const MAX_IN_FLIGHT: usize = 256;

/// One member of the simulated cluster.
#[derive(Clone, Debug)]
struct Member {
    config: Config,
    /// `None` while crashed.
    node: Option<Node>,
    /// What the node last asked to persist: all that survives a crash.
    storage: HardState,
    log: LogSummary,
    /// Which timers are armed, by [`Timer::index`]: no allocation per
    /// `SetTimer`, and the order of [`Timer::ALL`].
    armed: [bool; Timer::ALL.len()],
}

/// How often the thesis' features did what they are for, over a cluster's
/// life: for tests and fuzz corpora to show they were exercised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeatureCounts {
    /// Pre-votes started (a node became a pre-candidate).
    pub pre_votes: usize,
    /// Pre-votes won: a pre-candidate became a candidate.
    pub pre_votes_won: usize,
    /// Leaders that stepped down by CheckQuorum.
    pub check_quorum_step_downs: usize,
    /// Elections started by a TimeoutNow.
    pub transfer_campaigns: usize,
    /// Of those, elections won: leadership transferred.
    pub transfers_completed: usize,
}

/// An in-memory cluster driven step by step. Ids are `0..n`.
#[derive(Clone, Debug)]
pub struct Cluster {
    members: Vec<Member>,
    /// Oldest first; a queue, since [`Self::stabilize`] takes from the front.
    in_flight: VecDeque<Envelope>,
    /// Directed links that drop everything (`from`, `to`).
    cut: BTreeSet<(NodeId, NodeId)>,
    history: History,
    counts: FeatureCounts,
    /// `(node, term)` of every election started by a TimeoutNow.
    transfer_campaigns: BTreeSet<(NodeId, Term)>,
    scratch: Vec<Output>,
}

/// A history that has seen nothing of `members`, given the log each was set
/// up with.
fn history_of(members: &[Member]) -> History {
    History::new(
        members
            .iter()
            .map(|member| (member.config.id(), member.log)),
    )
}

impl Cluster {
    /// Starts every node of `configs` (ids must be `0..n`, in order) with `logs`.
    ///
    /// # Panics
    /// If the ids are not `0..n` or `logs` has another length: a harness bug.
    #[must_use]
    pub fn new(configs: Vec<Config>, logs: &[LogSummary]) -> Self {
        assert_eq!(configs.len(), logs.len(), "one log summary per node");
        let members = configs
            .into_iter()
            .zip(logs)
            .enumerate()
            .map(|(index, (config, &log))| {
                assert_eq!(
                    usize::from(config.id().0),
                    index,
                    "ids must be 0..n in order"
                );
                Member {
                    config,
                    node: Some(Node::restore(HardState::default(), log)),
                    storage: HardState::default(),
                    log,
                    armed: [false; Timer::ALL.len()],
                }
            })
            .collect::<Vec<_>>();
        let mut cluster = Self {
            history: history_of(&members),
            members,
            in_flight: VecDeque::new(),
            cut: BTreeSet::new(),
            counts: FeatureCounts::default(),
            transfer_campaigns: BTreeSet::new(),
            scratch: Vec::new(),
        };
        cluster.start_all();
        cluster
    }

    /// Puts this cluster back to the state [`Self::new`] would build with
    /// the same configurations and `logs`, keeping its allocations and its
    /// configurations: the fuzzer runs hundreds of thousands of short
    /// schedules, and building each cluster anew cost a tenth of a short one.
    ///
    /// # Panics
    /// If `logs` has another length than the cluster: a harness bug.
    pub(crate) fn reset(&mut self, logs: &[LogSummary]) {
        assert_eq!(self.members.len(), logs.len(), "one log summary per node");
        // Every field named, so a new one cannot be forgotten here.
        let Self {
            members,
            in_flight,
            cut,
            history,
            counts,
            transfer_campaigns,
            scratch,
        } = self;
        for (member, &log) in members.iter_mut().zip(logs) {
            let Member {
                config: _,
                node,
                storage,
                log: member_log,
                armed,
            } = member;
            *node = Some(Node::restore(HardState::default(), log));
            *storage = HardState::default();
            *member_log = log;
            *armed = [false; Timer::ALL.len()];
        }
        in_flight.clear();
        cut.clear();
        *history = history_of(members);
        *counts = FeatureCounts::default();
        transfer_campaigns.clear();
        scratch.clear();
        self.start_all();
    }

    /// Feeds every node its `Start`, as a process starting would.
    fn start_all(&mut self) {
        for index in 0..self.members.len() {
            let id = self.members[index].config.id();
            self.step(id, Input::Start)
                .expect("starting a fresh node breaks nothing");
        }
    }

    /// Node ids, ascending.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().map(|m| m.config.id())
    }

    /// The node, or `None` if it is crashed or not a member.
    #[must_use]
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.member(id)?.node.as_ref()
    }

    /// The role of `id`, or `None` while crashed.
    #[must_use]
    pub fn role(&self, id: NodeId) -> Option<Role> {
        self.node(id).map(Node::role)
    }

    /// The current term of `id`, or `None` while crashed.
    #[must_use]
    pub fn term(&self, id: NodeId) -> Option<Term> {
        self.node(id).map(Node::current_term)
    }

    /// Live nodes that are leaders right now, with their terms.
    #[must_use]
    pub fn leaders(&self) -> Vec<(NodeId, Term)> {
        self.ids()
            .filter_map(|id| {
                let node = self.node(id)?;
                (node.role() == Role::Leader).then_some((id, node.current_term()))
            })
            .collect()
    }

    /// Messages sent and not yet delivered or dropped.
    #[must_use]
    pub fn in_flight(&self) -> &VecDeque<Envelope> {
        &self.in_flight
    }

    /// The timers `id` has armed, in [`Timer::ALL`] order (none while crashed).
    pub fn armed(&self, id: NodeId) -> impl Iterator<Item = Timer> + '_ {
        let armed = self.member(id).map(|m| m.armed).unwrap_or_default();
        Timer::ALL.into_iter().filter(move |t| armed[t.index()])
    }

    /// Whether `id` has `timer` armed (false while crashed).
    #[must_use]
    pub fn is_armed(&self, id: NodeId, timer: Timer) -> bool {
        self.member(id).is_some_and(|m| m.armed[timer.index()])
    }

    /// The ghost history the cluster-wide invariants are checked against.
    #[must_use]
    pub fn history(&self) -> &History {
        &self.history
    }

    /// What the thesis' features did so far.
    #[must_use]
    pub fn feature_counts(&self) -> FeatureCounts {
        self.counts
    }

    /// What `id` has on stable storage.
    #[must_use]
    pub fn storage(&self, id: NodeId) -> Option<HardState> {
        self.member(id).map(|m| m.storage)
    }

    /// Delivers in-flight message `index` (in [`Self::in_flight`] order). A
    /// message to a crashed node or across a cut link is lost instead.
    /// Returns `Ok(false)` if there is no such message.
    pub fn deliver(&mut self, index: usize) -> Result<bool, Violation> {
        let Some(envelope) = self.in_flight.remove(index) else {
            return Ok(false);
        };
        if self.cut.contains(&(envelope.from, envelope.to)) || self.node(envelope.to).is_none() {
            return Ok(true);
        }
        let input = Input::Receive {
            from: envelope.from,
            message: envelope.message,
        };
        self.step(envelope.to, input)?;
        Ok(true)
    }

    /// Loses in-flight message `index`. Returns false if there is none.
    pub fn drop(&mut self, index: usize) -> bool {
        self.in_flight.remove(index).is_some()
    }

    /// Duplicates in-flight message `index`, unless the network is full.
    pub fn duplicate(&mut self, index: usize) -> bool {
        match self.in_flight.get(index) {
            Some(&envelope) if self.in_flight.len() < MAX_IN_FLIGHT => {
                self.in_flight.push_back(envelope);
                true
            }
            _ => false,
        }
    }

    /// Fires `timer` of `id` if it is armed (firing disarms it, as a real timer).
    /// Returns `Ok(false)` if it was not armed or the node is down.
    pub fn fire(&mut self, id: NodeId, timer: Timer) -> Result<bool, Violation> {
        let Some(member) = self.member_mut(id) else {
            return Ok(false);
        };
        if member.node.is_none() || !member.armed[timer.index()] {
            return Ok(false);
        }
        member.armed[timer.index()] = false;
        self.step(id, Input::Timeout(timer))?;
        Ok(true)
    }

    /// Asks `id` to hand its leadership to `to` (§3.10), as its operator
    /// would; a node that does not lead ignores it. Returns `Ok(false)` if
    /// `id` is down.
    pub fn transfer_leadership(&mut self, id: NodeId, to: NodeId) -> Result<bool, Violation> {
        if self.node(id).is_none() {
            return Ok(false);
        }
        self.step(id, Input::TransferLeadership { to })?;
        Ok(true)
    }

    /// Crashes `id`: its volatile state and timers are gone, storage stays.
    /// Returns false if it was already down.
    pub fn crash(&mut self, id: NodeId) -> bool {
        let Some(member) = self.member_mut(id) else {
            return false;
        };
        member.armed = [false; Timer::ALL.len()];
        member.node.take().is_some()
    }

    /// Restarts a crashed `id` from its storage. Returns `Ok(false)` if it was up.
    pub fn restart(&mut self, id: NodeId) -> Result<bool, Violation> {
        let Some(member) = self.member_mut(id) else {
            return Ok(false);
        };
        if member.node.is_some() {
            return Ok(false);
        }
        let node = Node::restore(member.storage, member.log);
        self.history.record_restart(id, &node)?;
        if let Some(member) = self.member_mut(id) {
            member.node = Some(node);
        }
        self.step(id, Input::Start)?;
        Ok(true)
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut(&mut self, a: NodeId, b: NodeId) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    /// Cuts `id` off from every other node (raft-rs's `isolate`).
    pub fn isolate(&mut self, id: NodeId) {
        let others: Vec<NodeId> = self.ids().filter(|&other| other != id).collect();
        for other in others {
            self.cut(id, other);
        }
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Delivers in-flight messages oldest first until none is left, at most
    /// `max_deliveries` of them. Returns how many were delivered.
    ///
    /// Heartbeats re-arm timers but send nothing by themselves, so a cluster
    /// with no timer firing always goes quiet; the bound guards against a bug.
    pub fn stabilize(&mut self, max_deliveries: usize) -> Result<usize, Violation> {
        let mut delivered = 0;
        while !self.in_flight.is_empty() && delivered < max_deliveries {
            self.deliver(0)?;
            delivered += 1;
        }
        Ok(delivered)
    }

    /// Fires `id`'s election timer and delivers everything that follows:
    /// raft-rs's `campaign`. Returns false if the timer was not armed.
    pub fn campaign(&mut self, id: NodeId, max_deliveries: usize) -> Result<bool, Violation> {
        let fired = self.fire(id, Timer::Election)?;
        self.stabilize(max_deliveries)?;
        Ok(fired)
    }

    /// Feeds `input` to `id` and executes its outputs, checking every invariant.
    fn step(&mut self, id: NodeId, input: Input) -> Result<(), Violation> {
        let index = usize::from(id.0);
        let Some(member) = self.members.get_mut(index) else {
            return Ok(());
        };
        let Some(node) = member.node.as_mut() else {
            return Ok(());
        };
        let before = node.clone();
        self.scratch.clear();
        // Every check runs just below, on this one copy of the state before.
        node.step_without_assertions(&member.config, input, &mut self.scratch);
        self.history
            .check_step(&member.config, &before, &input, node, &self.scratch)?;
        count_features(
            &mut self.counts,
            &mut self.transfer_campaigns,
            id,
            &before,
            &input,
            node,
        );
        for output in self.scratch.drain(..) {
            match output {
                // Executed first, as the contract promises; nothing below can fail.
                Output::Persist(hard_state) => member.storage = hard_state,
                Output::Send { to, message } => {
                    if self.in_flight.len() < MAX_IN_FLIGHT {
                        self.in_flight.push_back(Envelope {
                            from: id,
                            to,
                            message,
                        });
                    }
                }
                Output::SetTimer { timer, .. } => member.armed[timer.index()] = true,
                Output::CancelTimer(timer) => member.armed[timer.index()] = false,
                // No clock here: a lease is a matter of time, checked by
                // `timed` on its virtual clocks.
                Output::RoundStarted { .. }
                | Output::LeaseExtended { .. }
                | Output::LeaseRevoked => {}
            }
        }
        Ok(())
    }

    fn member(&self, id: NodeId) -> Option<&Member> {
        self.members.get(usize::from(id.0))
    }

    fn member_mut(&mut self, id: NodeId) -> Option<&mut Member> {
        self.members.get_mut(usize::from(id.0))
    }
}

/// Counts what one step of `id` did with the thesis' features.
fn count_features(
    counts: &mut FeatureCounts,
    transfer_campaigns: &mut BTreeSet<(NodeId, Term)>,
    id: NodeId,
    before: &Node,
    input: &Input,
    after: &Node,
) {
    let (was, now) = (before.role(), after.role());
    if now == Role::PreCandidate
        && (was != Role::PreCandidate || *input == Input::Timeout(Timer::Election))
    {
        counts.pre_votes += 1;
    }
    if was == Role::PreCandidate && matches!(now, Role::Candidate | Role::Leader) {
        counts.pre_votes_won += 1;
    }
    if *input == Input::Timeout(Timer::CheckQuorum) && was == Role::Leader && now == Role::Follower
    {
        counts.check_quorum_step_downs += 1;
    }
    let on_timeout_now = matches!(
        input,
        Input::Receive {
            message: Message::TimeoutNow { .. },
            ..
        }
    );
    if on_timeout_now && now == Role::Candidate && was != Role::Candidate {
        counts.transfer_campaigns += 1;
        transfer_campaigns.insert((id, after.current_term()));
    }
    if was != Role::Leader
        && now == Role::Leader
        && transfer_campaigns.contains(&(id, after.current_term()))
    {
        counts.transfers_completed += 1;
    }
}
