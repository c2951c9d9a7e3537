//! Every reduction of the state space. Each makes the model explore fewer
//! states and must hide no behaviour of the nodes and no violation. Each has
//! a name ([`Reduction`]) and a switch that turns it off
//! ([`Bounds::reductions`](crate::Bounds::reductions); `check --no-reduction
//! NAME`), and is named in the doc of the code that does it, with what it
//! drops and where it is argued sound (proofs.md, "The model's reductions",
//! has one row per reduction):
//!
//! - *symmetry* ([`ElectionModel::canonical`]): a state and its renamings
//!   are explored once (proofs.md, "The model's reductions"; `symmetry.rs`);
//! - *self-loops* ([`ElectionModel::changes_nothing`]): a step back to its
//!   own state is not generated (argued there);
//! - *lossless crashes* ([`ElectionModel::crash_and_restart`]): no crash
//!   that loses nothing (argued there);
//! - *the pre-vote at the bound* ([`ElectionModel::node_within_boundary`]):
//!   a pre-candidate at [`Bounds::max_term`](crate::Bounds::max_term) is cut
//!   off with the election it would start (proofs.md, "The election
//!   features");
//! - *spent responses* ([`ElectionModel::drop_spent_responses`]): responses
//!   that can never again change their receiver (proofs.md, "Spent
//!   responses");
//! - *spent feature messages* and *outdone pre-votes*
//!   ([`ElectionModel::drop_spent`]): the election features' messages that
//!   can never again change anything (proofs.md, "The election features").
//!
//! - *one-step restarts* ([`ElectionModel::crash_and_restart`]): a crash and
//!   its restart are one step, with no down state between them.
//!
//! Two are part of the model itself and have no switch: identical messages
//! in flight are one ([`Network`] is a set), and the duplicating network
//! needs no drop action ([`NetworkKind::Duplicating`]).

use crate::actions::with_outputs;
use crate::{ClusterState, ElectionModel, Network, NetworkKind, Restarts, symmetry};
use raft_election::invariants::{self, History};
use raft_election::{Envelope, Features, Input, Message, Node, NodeId, Output, Role, Term};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// One reduction of the state space, by name: each can be turned off
/// ([`Reductions::without`]; `check --no-reduction NAME`), and each is on by
/// default. The doc line of each is what `check --help` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Reduction {
    /// A state and its renamings of node ids are explored once.
    Symmetry,
    /// Steps back to their own state are not generated (a duplicate delivered again, a transfer request that changes nothing).
    SelfLoops,
    /// No crash that loses nothing (a follower that knew no leader).
    LosslessCrashes,
    /// A pre-candidate at the max term is cut off with the election it would start.
    PreVoteAtBound,
    /// RequestVote and AppendEntries responses that can never again change their receiver are dropped.
    SpentResponses,
    /// A PreVoteResponse or TimeoutNow whose receiver's term passed it is dropped.
    SpentFeatureMessages,
    /// On the duplicating network, a PreVote outdone by a later one of the same sender is dropped.
    OutdonePreVotes,
    /// A crash and its restart are one step (no down state in between).
    OneStepRestarts,
}

impl Reduction {
    /// Every reduction, in the order of `check --help`.
    pub const ALL: [Self; 8] = [
        Self::Symmetry,
        Self::SelfLoops,
        Self::LosslessCrashes,
        Self::PreVoteAtBound,
        Self::SpentResponses,
        Self::SpentFeatureMessages,
        Self::OutdonePreVotes,
        Self::OneStepRestarts,
    ];

    /// The name on the command line (kebab-case).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Symmetry => "symmetry",
            Self::SelfLoops => "self-loops",
            Self::LosslessCrashes => "lossless-crashes",
            Self::PreVoteAtBound => "pre-vote-at-bound",
            Self::SpentResponses => "spent-responses",
            Self::SpentFeatureMessages => "spent-feature-messages",
            Self::OutdonePreVotes => "outdone-pre-votes",
            Self::OneStepRestarts => "one-step-restarts",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u8)
    }
}

impl fmt::Display for Reduction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The reductions that are on: all of them by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reductions(u16);

impl Reductions {
    /// Every reduction on: the default.
    pub const ALL: Self = Self((1 << Reduction::ALL.len()) - 1);
    /// Every reduction off: the full model.
    pub const NONE: Self = Self(0);

    /// Whether `reduction` is on.
    #[must_use]
    pub fn is_on(self, reduction: Reduction) -> bool {
        self.0 & reduction.bit() != 0
    }

    /// These reductions with `reduction` turned off.
    #[must_use]
    pub fn without(self, reduction: Reduction) -> Self {
        Self(self.0 & !reduction.bit())
    }

    /// The reductions that are off, in [`Reduction::ALL`] order.
    pub fn off(self) -> impl Iterator<Item = Reduction> {
        Reduction::ALL.into_iter().filter(move |&r| !self.is_on(r))
    }
}

impl Default for Reductions {
    fn default() -> Self {
        Self::ALL
    }
}

/// "all", "none", or "all but" the ones that are off.
impl fmt::Display for Reductions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::ALL {
            return f.write_str("all");
        }
        if *self == Self::NONE {
            return f.write_str("none");
        }
        let off: Vec<&str> = self.off().map(Reduction::name).collect();
        write!(f, "all but {}", off.join(", "))
    }
}

impl ElectionModel {
    /// This model without symmetry reduction: every state keeps the ids it
    /// was reached with (for the Explorer, and to measure the reduction).
    #[must_use]
    pub fn without_symmetry(self) -> Self {
        self.without(Reduction::Symmetry)
    }

    /// This model with `reduction` turned off.
    #[must_use]
    pub fn without(mut self, reduction: Reduction) -> Self {
        self.bounds.reductions = self.bounds.reductions.without(reduction);
        self
    }

    /// Whether `reduction` is on.
    #[must_use]
    pub fn reduces(&self, reduction: Reduction) -> bool {
        self.bounds.reductions.is_on(reduction)
    }

    /// Whether states are put in canonical form (symmetry reduction).
    #[must_use]
    pub fn symmetry(&self) -> bool {
        self.reduces(Reduction::Symmetry)
    }

    /// Reduction, *symmetry*: `state` in canonical form if symmetry
    /// reduction is on. Node ids are only names (membership lives in each
    /// node's `Config`, not in the state), so the states that differ by a
    /// renaming of ids behave alike: each is replaced by the representative
    /// of its class (`symmetry.rs`, which argues it), and the others are
    /// never explored. Named in proofs.md, "The model's reductions"; off with
    /// [`Reduction::Symmetry`].
    pub(crate) fn canonical(&self, state: ClusterState) -> ClusterState {
        if self.symmetry() {
            symmetry::into_representative(state)
        } else {
            state
        }
    }

    /// Reduction, *self-loops*: whether node `id` going to `node` on `input`
    /// with `outputs` leaves `state` exactly as it is (see [`Self::deliver`]),
    /// in which case the delivery is not generated; nor is any other step
    /// whose successor equals its state (the last check of
    /// [`Self::next_state_with`], and a transfer request that would change
    /// only the budget); a transfer request to a node that does not lead,
    /// which changes nothing, is not even enabled. A step back to its own state reaches nothing new,
    /// and no property of the model is an "eventually", which a state left
    /// without successors could change. A self-loop that breaks an invariant
    /// or a rule of the step is still generated: this asks the same checks
    /// as [`Self::commit`]. Argued here; off with [`Reduction::SelfLoops`].
    pub(crate) fn changes_nothing(
        &self,
        state: &ClusterState,
        id: NodeId,
        input: &Input,
        node: &Node,
        outputs: &[Output],
    ) -> bool {
        let config = &self.configs[usize::from(id.0)];
        let server = &state.servers[usize::from(id.0)];
        // An inert step (`History::is_inert`) leaves the node as it was, so
        // the common case, an unchanged node and no higher term, compares
        // the nodes once, there.
        let inert = History::is_inert(&server.node, input, node);
        if !inert && *node != server.node {
            return false;
        }
        let in_effect = outputs.iter().all(|output| match *output {
            Output::Persist(hard_state) => {
                self.bounds.restarts == Restarts::Volatile || hard_state == server.storage
            }
            Output::Send { to, message } => state.network.contains(&Envelope {
                from: id,
                to,
                message,
            }),
            Output::SetTimer { timer, .. } => server.armed.is_armed(timer),
            Output::CancelTimer(timer) => !server.armed.is_armed(timer),
            // Never produced: the model runs no leader lease.
            Output::RoundStarted { .. } | Output::LeaseExtended { .. } | Output::LeaseRevoked => {
                false
            }
        });
        if !in_effect
            || invariants::check_node(config, node).is_err()
            || invariants::check_outputs(
                config,
                server.node.hard_state(),
                node.hard_state(),
                outputs,
            )
            .is_err()
            || invariants::check_transition(config, &server.node, input, node, outputs).is_err()
        {
            return false;
        }
        // The common case teaches the history nothing: no copy is needed.
        if inert {
            return true;
        }
        let mut history = History::clone(&state.history);
        history
            .record_step(config, &server.node, input, node)
            .is_ok()
            && history == *state.history
    }

    /// Reductions, *one-step restarts* and *lossless crashes*: node `id` of
    /// `state` crashes, in `next`, a copy of `state`, and restarts at once
    /// ([`Self::crash`], then [`Self::come_back`]). While down a node does nothing, and what is sent
    /// to it meanwhile may be lost anyway, so a longer downtime adds no
    /// behaviour, only states. Off with [`Reduction::OneStepRestarts`], a
    /// crash ([`Action::Crash`](crate::Action::Crash), `stays_down`) leaves
    /// the node down ([`Server::down`](crate::Server::down)) until a later
    /// [`Action::Restart`](crate::Action::Restart) of its own.
    ///
    /// A crash that loses nothing (a follower that knew no leader) is not
    /// generated (`None`): it only spends the crash budget, and every
    /// behaviour after it is one of the uncrashed state's. Off with
    /// [`Reduction::LosslessCrashes`]. Both argued in proofs.md, "The
    /// model's reductions".
    pub(crate) fn crash_and_restart(
        &self,
        state: &ClusterState,
        next: &mut ClusterState,
        id: NodeId,
        stays_down: bool,
    ) -> Option<()> {
        let index = usize::from(id.0);
        if state.servers[index].down {
            self.come_back(next, id);
            return Some(());
        }
        self.crash(next, id);
        // Lossless: once restarted, the very state it crashed from, but for
        // the budget.
        let lossless = self.reduces(Reduction::LosslessCrashes);
        let loses_nothing = |restarted: &mut ClusterState| {
            restarted.crashes -= 1;
            let same = *restarted == *state;
            restarted.crashes += 1;
            same
        };
        if stays_down {
            if lossless {
                let mut restarted = next.clone();
                self.come_back(&mut restarted, id);
                if loses_nothing(&mut restarted) {
                    return None;
                }
            }
            next.servers[index].down = true;
        } else {
            self.come_back(next, id);
            if lossless && loses_nothing(next) {
                return None;
            }
        }
        Some(())
    }

    /// `state` with every down node restarted (only without the
    /// one-step-restarts reduction): the liveness checks ask what follows
    /// from a state, and a down node may come back at any moment.
    pub(crate) fn everyone_up<'a>(&self, state: &'a ClusterState) -> Cow<'a, ClusterState> {
        if !state.servers.iter().any(|server| server.down) {
            return Cow::Borrowed(state);
        }
        let mut up = state.clone();
        for index in 0..up.servers.len() {
            if up.servers[index].down {
                self.come_back(&mut up, self.configs[index].id());
            }
        }
        Cow::Owned(up)
    }

    /// The bound on terms, where it cuts: whether `node` is within the
    /// boundary (see
    /// [`Model::within_boundary`](stateright::Model::within_boundary)): a
    /// state is if every node of it is. A node past
    /// [`Bounds::max_term`](crate::Bounds::max_term), or a pre-candidate at
    /// it (asking for the term past it, where an election beyond the bound
    /// would begin), is outside, and the checker drops such a state
    /// unexplored. proofs.md, "The election features". The pre-candidate
    /// is a reduction: off with [`Reduction::PreVoteAtBound`], its pre-vote
    /// round is explored, and only the candidacy past the bound is cut.
    pub(crate) fn node_within_boundary(&self, node: &Node) -> bool {
        let term = node.current_term();
        term < self.bounds.max_term
            || (term == self.bounds.max_term
                && (node.role() != Role::PreCandidate || !self.reduces(Reduction::PreVoteAtBound)))
    }

    /// This model keeping every response in flight, stale and spent ones
    /// included (to measure the reduction, and to show it hides nothing).
    #[must_use]
    pub fn without_dropping_spent_responses(self) -> Self {
        self.without(Reduction::SpentResponses)
    }

    /// Reduction, *spent responses*: after a step of node `id`, drops every
    /// response (RequestVoteResponse, AppendEntriesResponse) in flight that
    /// [`Self::is_spent_response`]: one that can never again change its
    /// receiver nor draw a reply. The network may lose any message, so this
    /// is a loss; and since no later step can act on it, the loss hides no
    /// behaviour. Only `id` changed, so only responses to `id` and the ones
    /// it just sent can have become spent. A response is dropped only if
    /// delivering it now indeed changes nothing and sends nothing: a core
    /// that broke the rule would keep it in flight, and the step that acts
    /// on it is explored and checked. proofs.md, "Spent responses", argues
    /// why nothing is missed; off with [`Reduction::SpentResponses`].
    pub(crate) fn drop_spent_responses(&self, state: &mut ClusterState, id: NodeId) {
        let spent = |envelope: &Envelope| {
            let receiver = &state.servers[usize::from(envelope.to.0)].node;
            (envelope.from == id || envelope.to == id)
                && self.is_spent_response(receiver, envelope)
                && self.ignores(receiver, envelope)
        };
        let spent: Vec<Envelope> = state.network.iter().filter(|e| spent(e)).collect();
        for envelope in &spent {
            state.network.remove(envelope);
            state.spent.insert(envelope);
        }
    }

    /// The guard of every reduction that drops a message as one its
    /// receiver ignores: after each step of node `id`, every message to
    /// `id` that such a reduction dropped on the way to `state`
    /// ([`ClusterState::spent`]) is probed again, and put back in flight if
    /// `id` would now act on it. A dropped message can matter only to its
    /// receiver, and the receiver changes only by its own steps, so this
    /// probes it whenever it could matter. For a correct core a spent
    /// message stays ignored (proofs.md, "Spent responses") and nothing is
    /// ever put back, so the state counts are those of the reduction
    /// alone. It follows the path by which a state was first reached: a
    /// state reached again by another path, with other drops, is not
    /// explored again (the ghost is not part of the state's identity).
    pub(crate) fn recall_spent(&self, state: &mut ClusterState, id: NodeId) {
        let receiver = &state.servers[usize::from(id.0)].node;
        let acted_on: Vec<Envelope> = state
            .spent
            .iter()
            .filter(|e| e.to == id && !self.ignores(receiver, e))
            .collect();
        for envelope in &acted_on {
            state.spent.remove(envelope);
            state.network.insert(envelope);
        }
    }

    /// Whether `envelope`, a response to `receiver`, can never change it nor
    /// draw anything from it again, as far as the rules of Figure 2 (and of
    /// each feature) go: terms only grow, and within a term:
    /// - a RequestVoteResponse of a term below the receiver's is ignored
    ///   (`reply_to_stale`), and so is one of its term unless it is a grant
    ///   that a candidate has not counted yet: a refusal is never counted, a
    ///   follower, pre-candidate or leader of the term ignores it (its
    ///   campaign of the term is over, won or given up), and none of them is
    ///   ever a candidate of that term again (campaigning raises the term,
    ///   a restart restores a follower); a counted grant stays
    ///   counted while the candidacy lasts (votes are a set, cleared only on
    ///   leaving the role);
    /// - an AppendEntriesResponse of a term below the receiver's is ignored,
    ///   and so is one of its term unless it is a success that a leader (or
    ///   a candidate, which may still become the leader of the term) acts on:
    ///   only CheckQuorum (which hears from the follower again) and
    ///   leadership transfer (which waits for the target's acknowledgement)
    ///   read one. Figure 2's leader ignores them (no log is replicated).
    fn is_spent_response(&self, receiver: &Node, envelope: &Envelope) -> bool {
        let current = receiver.current_term();
        match envelope.message {
            Message::RequestVoteResponse { term, vote_granted } => {
                term < current
                    || (term == current
                        && !(vote_granted
                            && receiver.role() == Role::Candidate
                            && !receiver.votes_granted().contains(&envelope.from)))
            }
            Message::AppendEntriesResponse { term, success, .. } => {
                let features = self.bounds.features;
                let acks_read = features.check_quorum || features.leadership_transfer;
                term < current
                    || (term == current
                        && !(success
                            && acks_read
                            && matches!(receiver.role(), Role::Leader | Role::Candidate)))
            }
            _ => false,
        }
    }

    /// Whether `receiver` delivered `envelope` stays as it is and sends or
    /// arms nothing.
    fn ignores(&self, receiver: &Node, envelope: &Envelope) -> bool {
        let mut node = receiver.clone();
        let input = Input::Receive {
            from: envelope.from,
            message: envelope.message,
        };
        with_outputs(|outputs| {
            node.step(&self.configs[usize::from(envelope.to.0)], input, outputs);
            outputs.is_empty()
        }) && node == *receiver
    }

    /// Whether [`Self::drop_spent`] can drop anything: only the election
    /// features send such messages, and each kind has its switch.
    pub(crate) fn drops_spent(&self) -> bool {
        self.bounds.features != Features::NONE
            && (self.reduces(Reduction::SpentFeatureMessages)
                || self.reduces(Reduction::OutdonePreVotes))
    }

    /// Reduction, *spent feature messages*: drops every message in flight
    /// that [`is_spent`] given each node's term (`term_of`): after every
    /// step, and on the way of [`Self::settles_on_the_leader`]. proofs.md,
    /// "The election features", argues it, and [`is_spent`] says why each
    /// such message is spent. Off with [`Reduction::SpentFeatureMessages`]
    /// (PreVoteResponse, TimeoutNow) and [`Reduction::OutdonePreVotes`].
    ///
    /// A PreVoteResponse or TimeoutNow is dropped only if its receiver,
    /// `node_of(to)`, ignores it now, and goes to `ghost` (the state's
    /// [`ClusterState::spent`]), where [`Self::recall_spent`] probes it
    /// again at every later step of the receiver. An outdone PreVote is
    /// not probed (it draws a reply by design): its drop waits until its
    /// receiver's term is above the later request's, after which the two
    /// draw the same response (see [`is_spent`]).
    pub(crate) fn drop_spent<'a>(
        &self,
        network: &mut Network,
        node_of: impl Fn(NodeId) -> &'a Node,
        mut ghost: Option<&mut Network>,
    ) {
        if self.drops_spent() {
            let outdone = self.bounds.network == NetworkKind::Duplicating
                && self.reduces(Reduction::OutdonePreVotes);
            let passed = outdone.then(|| passed_pre_votes(network, &node_of));
            let spent = self.reduces(Reduction::SpentFeatureMessages);
            network.retain(|envelope| {
                let receiver = node_of(envelope.to);
                let term = receiver.current_term();
                let drop = match envelope.message {
                    Message::PreVote { .. } => is_spent(envelope, term, passed.as_ref()),
                    _ => {
                        spent && is_spent(envelope, term, None) && self.ignores(receiver, envelope)
                    }
                };
                if drop && !matches!(envelope.message, Message::PreVote { .. }) {
                    if let Some(ghost) = ghost.as_deref_mut() {
                        ghost.insert(envelope);
                    }
                }
                !drop
            });
        }
    }
}

/// For each (sender, receiver), the highest term of a PreVote in flight
/// that the receiver's term (`node_of`) has passed: any older request of the
/// pair is outdone by it.
fn passed_pre_votes<'a>(
    network: &Network,
    node_of: impl Fn(NodeId) -> &'a Node,
) -> BTreeMap<(NodeId, NodeId), Term> {
    let mut passed: BTreeMap<(NodeId, NodeId), Term> = BTreeMap::new();
    for envelope in network.iter() {
        if let Message::PreVote { term, .. } = envelope.message {
            if node_of(envelope.to).current_term() > term {
                let highest = passed.entry((envelope.from, envelope.to)).or_insert(term);
                *highest = (*highest).max(term);
            }
        }
    }
    passed
}

/// Whether `envelope` can never do anything its receiver (or, for a
/// request, the answer to it) would notice that another message in flight
/// cannot, in which case the model drops it: a loss, which the network allows
/// anyway, and one that leads to no state the kept messages could not.
/// Figure 2's messages are kept as they always were. Terms only grow, so:
/// - a PreVoteResponse changes its receiver only while the receiver's term is
///   below the one it carries (a grant counts one term below it, a refusal is
///   adopted below it), and a TimeoutNow only while the receiver has not
///   passed its term;
/// - on the duplicating network, where nothing leaves, a PreVote is
///   outdone by a later one of the same sender to the same receiver once the
///   receiver's term is above the later one's. An older request's grant is
///   spent (its sender asked for a later term since, so it is past the
///   older one's round), and a refusal tells its sender something only if it
///   carries a term above the sender's, which is at least the later term
///   less one. A receiver above the later term refuses both requests with
///   the very same response, and always will: its term only grows. A
///   receiver exactly in the later term could grant the later request and
///   refuse the older one with its term, which the sender would adopt; and
///   a receiver below it may still get there. So the older request is kept
///   until its receiver has passed the later term (the argument once said
///   the later request always draws the same refusal, false in exactly that
///   term). Any later request will do, not only the latest: the drop then
///   depends only on what is in flight and on terms, which never leave or
///   go back, so a request dropped once would be dropped in every later
///   state too, and the reduced states are exactly the full model's with
///   such requests taken out (`reductions_equality.rs`). Waiting for the
///   latest broke that: a request dropped under one latest came back into
///   the comparison under the next, and the model explored more states
///   with the reduction than without it.
fn is_spent(
    envelope: &Envelope,
    receiver: Term,
    passed_pre_votes: Option<&BTreeMap<(NodeId, NodeId), Term>>,
) -> bool {
    match envelope.message {
        Message::PreVoteResponse { term, .. } => receiver >= term,
        Message::TimeoutNow { term } => receiver > term,
        Message::PreVote { term, .. } => passed_pre_votes
            .and_then(|passed| passed.get(&(envelope.from, envelope.to)))
            .is_some_and(|&later| later > term),
        _ => false,
    }
}
