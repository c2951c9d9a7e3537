//! An exhaustive stateright model of the `raft-election` core.
//!
//! The model is a thin adapter: every node is a real [`raft_election::Node`]
//! and every transition is one call of [`Node::step`] whose outputs the model
//! executes (persist, send, arm or cancel a timer), exactly as the Tokio
//! runtime does. The model holds no vote, role or term rule of its own; the
//! safety properties are the ones of [`raft_election::invariants`], the same
//! definitions the simulator, the fuzzer and the tests use.
//!
//! ```text
//! model/  this crate: the stateright Model, `check` (src/main.rs)
//!   │       trace.rs: actions and states in words, paths as sequence diagrams
//!   ├──> timeline/  raft-election-timeline: the diagrams as SVG
//!   ▼
//! core/   raft-election: Node::step and the invariants it is checked against
//! ```
//!
//! Every interleaving of a two-node cluster, checked in a debug build:
//!
//! ```
//! use raft_election_model::{Bounds, ElectionModel};
//! use stateright::{Checker, Model};
//!
//! let checker = ElectionModel::new(Bounds::new(2))?.checker().spawn_dfs().join();
//! checker.assert_no_discovery("election safety");
//! assert!(checker.discovery("a leader is elected").is_some());
//! # Ok::<(), raft_election_model::ModelError>(())
//! ```
//!
//! # The world it explores
//!
//! From one initial state (every node started, logs as [`Bounds::logs`] says,
//! each node in the term of its last entry),
//! any of these may happen next, in any order:
//! - an in-flight message is delivered ([`Action::Deliver`]); on the default
//!   [`NetworkKind::Duplicating`] network delivery keeps it in flight, so any
//!   message may arrive any number of times, in any order, or never (a loss);
//! - on the [`NetworkKind::Lossy`] network a delivery consumes the message and
//!   [`Action::Drop`] loses one;
//! - any armed timer fires ([`Action::Fire`]): durations are ignored, so
//!   every timing is explored, spurious timeouts included;
//! - a node crashes and restarts from what it asked to persist
//!   ([`Action::Restart`]), at most [`Bounds::max_crashes`] times in all.
//!   Crash and restart are one step: while down a node does nothing, and what
//!   is sent to it meanwhile may be lost anyway, so a longer downtime adds no
//!   behaviour, only states;
//! - with leadership transfer on, a leader is asked to hand over to any
//!   other node ([`Action::Transfer`]), at most [`Bounds::max_transfers`]
//!   times in all.
//!
//! Every node runs the election features of [`Bounds::features`]; with all
//! of them off the model is exactly the Figure 2 model it always was.
//!
//! States whose terms exceed [`Bounds::max_term`] are outside the boundary,
//! and so are those where a node asks for such a term with a pre-vote.
//!
//! # Why the state space is finite and small
//!
//! - The network is a set, so a leader's re-armed heartbeats do not pile up
//!   as distinct copies; messages carry terms up to the bound, so the set is
//!   bounded. Each message is packed into one word ([`Network`]).
//! - Node ids and membership live in [`Config`], not in the state, so ids
//!   are mere names: every state is put in canonical form (the
//!   [`stateright::Representative`] of its symmetry class) as it is generated,
//!   so clusters equal up to a permutation of ids are explored once, by DFS
//!   and BFS alike. The form is exact, so state counts do not depend on the
//!   order or the number of threads of the search. Traces are printed with
//!   the ids the run started with ([`format_trace`] undoes the renaming).
//! - A step that changes nothing (a duplicate delivered again) and a crash
//!   that loses nothing lead nowhere new and are not generated.
//! - A response that can never again change its receiver is dropped (a
//!   loss): one of a term below the receiver's, a refusal, a vote already
//!   counted or one to a node no longer campaigning in that term. On the
//!   duplicating network every response ever sent would otherwise stay in
//!   flight and split states that behave alike (proofs.md, "Spent
//!   responses"; 1,558,824 states become 5,656 on 3 nodes, and 5 nodes with
//!   terms up to 2 are exhausted in 968,359).

#![forbid(unsafe_code)]

mod ghost;
mod liveness;
mod network;
pub mod portfolio;
pub mod replay;
mod symmetry;
mod trace;

pub use ghost::SharedHistory;
pub use liveness::{ELECTION_ROUNDS, ELECTS_A_LEADER, Election};
pub use network::Network;

pub use trace::{
    compact_state, describe_action, describe_state, format_trace, last_state_with_stable_ids,
    sequence_diagram,
};

use raft_election::Envelope;
use raft_election::invariants::{self, History, Invariant, Violation};
use raft_election::{
    Config, ConfigError, Features, HardState, Input, LogSummary, Message, Node, NodeId, Output,
    Role, Term, Timer, Timing,
};
use stateright::{Model, Property};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};

/// How the network may misbehave. Either kind reorders freely.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum NetworkKind {
    /// Delivery leaves a message in flight: any message may be delivered any
    /// number of times (duplication) or never (loss). No drop action is needed:
    /// a state with a message lost behaves like the same state with it never
    /// delivered, so dropping would only add states that reveal nothing new.
    Duplicating,
    /// Delivery consumes a message and any in-flight message may be dropped.
    /// Identical messages in flight merge (a set), so nothing is duplicated.
    Lossy,
}

impl fmt::Display for NetworkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Duplicating => "duplicating (reorder, duplicate, lose)",
            Self::Lossy => "lossy (reorder, lose, no duplicates)",
        })
    }
}

/// What survives a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Restarts {
    /// The node restarts from the hard state it asked to persist (Figure 2).
    Durable,
    /// The node forgets its term and vote, as stateright's own Raft example
    /// does: the demonstration of why Raft persists them.
    Volatile,
}

/// The log summaries a run starts with (see [`Bounds::with_logs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum StartingLogs {
    /// `n0` holds one entry (of term 0) more than the others: candidates other
    /// than `n0` cannot win its vote. The default.
    Ahead,
    /// Every log is empty: every vote is up to the terms alone.
    Equal,
    /// `n0` holds the longer log, two entries of term 0; `n1` a shorter but
    /// later one, one entry of term 1; any others are empty. A comparison of
    /// lengths only would let `n0` win `n1`'s vote; §5.4.1 compares last terms
    /// first and refuses it. With equal last terms (the other profiles) the
    /// two rules agree, so only this one can tell them apart.
    LongerOlder,
}

impl StartingLogs {
    /// Node `n{id}`'s log summary under this profile.
    fn log(self, id: u8) -> LogSummary {
        let log = |index, term| LogSummary {
            last_log_index: index,
            last_log_term: Term(term),
        };
        match (self, id) {
            (Self::Ahead, 0) => log(1, 0),
            (Self::LongerOlder, 0) => log(2, 0),
            (Self::LongerOlder, 1) => log(1, 1),
            _ => LogSummary::default(),
        }
    }
}

impl fmt::Display for StartingLogs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ahead => "n0 one entry ahead",
            Self::Equal => "all empty",
            Self::LongerOlder => "n0 longer, n1 of a later term",
        })
    }
}

/// Every bound of one model-checking run; all of them are printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Cluster size (ids `n0..n{nodes-1}`).
    pub nodes: u8,
    /// States in which some node's term exceeds this are not explored.
    pub max_term: Term,
    /// Crash-restarts allowed in one run, all nodes together.
    pub max_crashes: u8,
    /// How the network may misbehave.
    pub network: NetworkKind,
    /// What a restarted node remembers.
    pub restarts: Restarts,
    /// Each node's fixed log summary, in id order. A node starts in the term
    /// of its last entry, without a vote: its term is never below that term
    /// (an entry carries its leader's term, which a follower adopts before it
    /// appends, §5.1 and §5.3), and starting any higher only skips elections.
    pub logs: Vec<LogSummary>,
    /// The election features every node runs.
    pub features: Features,
    /// Leadership-transfer requests allowed in one run, all leaders together
    /// (only with [`Features::leadership_transfer`]).
    pub max_transfers: u8,
}

impl Bounds {
    /// The default bounds for `nodes` nodes: terms up to 2, one crash, a
    /// duplicating network, durable restarts, and node `n0` one entry ahead
    /// of the others so the vote restriction (§5.4.1) refuses some votes.
    #[must_use]
    pub fn new(nodes: u8) -> Self {
        Self::with_logs(nodes, StartingLogs::Ahead)
    }

    /// The default bounds, with the logs of `profile`.
    #[must_use]
    pub fn with_logs(nodes: u8, profile: StartingLogs) -> Self {
        let logs = (0..nodes).map(|id| profile.log(id)).collect();
        Self {
            nodes,
            max_term: Term(2),
            max_crashes: 1,
            network: NetworkKind::Duplicating,
            restarts: Restarts::Durable,
            logs,
            features: Features::NONE,
            max_transfers: 1,
        }
    }

    /// These bounds with every node running `features`.
    #[must_use]
    pub fn with_features(mut self, features: Features) -> Self {
        self.features = features;
        self
    }
}

/// The timers a node has armed, one bit per [`Timer`] (at its
/// [`Timer::index`]). Firing disarms; the node re-arms through
/// [`Output::SetTimer`] if it wants to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Armed(u8);

const _: () = assert!(Timer::ALL.len() <= u8::BITS as usize, "one bit per timer");

impl Armed {
    fn set(&mut self, timer: Timer, armed: bool) {
        let bit = 1 << timer.index();
        if armed {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
    }

    /// Whether `timer` is armed.
    #[must_use]
    pub fn is_armed(self, timer: Timer) -> bool {
        self.0 & (1 << timer.index()) != 0
    }

    /// The armed timers, in [`Timer::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Timer> {
        Timer::ALL
            .into_iter()
            .filter(move |&timer| self.is_armed(timer))
    }
}

/// One node as its driver sees it: the core's state, its stable storage and
/// its armed timers. Its id is its position in [`ClusterState::servers`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Server {
    /// The core's state.
    pub node: Node,
    /// The last hard state the node asked to persist: all a crash keeps.
    pub storage: HardState,
    /// Armed timers.
    pub armed: Armed,
    /// Ghost, with Pre-Vote: this node's campaign under way (as pre-candidate
    /// or candidate) began with a pre-vote round that failed (timed out), for
    /// the reachability property "a pre-vote fails, a later one wins". No
    /// node keeps this, and nothing else shows it: a failed round leaves no
    /// trace. Kept per node and only for the campaign, so it splits few
    /// states.
    pub retried_pre_vote: bool,
}

/// Broken invariants, each with the first detail reported.
///
/// Only *which* invariants are broken is part of the state: equality and
/// hashing ignore the details (kept for the trace, which replays them), so
/// paths that break the same invariant in differently worded ways do not
/// split the state space.
#[derive(Clone, Debug, Default)]
pub struct Violations(BTreeMap<Invariant, String>);

impl Violations {
    /// Records `violation` unless its invariant is already broken.
    pub fn record(&mut self, violation: Violation) {
        self.0
            .entry(violation.invariant)
            .or_insert(violation.detail);
    }

    /// Whether `invariant` has been broken.
    #[must_use]
    pub fn contains(&self, invariant: Invariant) -> bool {
        self.0.contains_key(&invariant)
    }

    /// Broken invariants with their first detail, in [`Invariant::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Invariant, &str)> {
        self.0
            .iter()
            .map(|(&invariant, detail)| (invariant, detail.as_str()))
    }
}

impl PartialEq for Violations {
    fn eq(&self, other: &Self) -> bool {
        self.0.keys().eq(other.0.keys())
    }
}

impl Eq for Violations {}

impl Hash for Violations {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for invariant in self.0.keys() {
            invariant.hash(state);
        }
    }
}

/// One state of the whole cluster. Its `Debug` is the compact form the
/// Explorer shows ([`compact_state`]).
#[derive(Clone, Eq)]
pub struct ClusterState {
    /// Node `n{i}` is `servers[i]`.
    pub servers: Vec<Server>,
    /// Messages in flight.
    pub network: Network,
    /// Ghost facts about the past for the cluster-wide invariants, shared
    /// between a state and its successors until a step teaches it something.
    pub history: SharedHistory,
    /// The invariants the step into this state broke. Empty unless the core
    /// (or the model) has a bug.
    pub violations: Violations,
    /// Crash-restarts so far.
    pub crashes: u8,
    /// Leadership-transfer requests so far.
    pub transfers: u8,
}

/// Field by field, as derived, but the cheap ones first: the checker
/// compares every successor with its state, and the two differ more often
/// in what is in flight (one sorted vector) than in the nodes.
impl PartialEq for ClusterState {
    fn eq(&self, other: &Self) -> bool {
        // Destructured, so a new field cannot be left out.
        let Self {
            servers,
            network,
            history,
            violations,
            crashes,
            transfers,
        } = self;
        *crashes == other.crashes
            && *transfers == other.transfers
            && *network == other.network
            && *history == other.history
            && *violations == other.violations
            && *servers == other.servers
    }
}

/// Every field, in declaration order, as derived; written out beside the
/// hand-written equality so that the two cover the same fields.
impl Hash for ClusterState {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let Self {
            servers,
            network,
            history,
            violations,
            crashes,
            transfers,
        } = self;
        servers.hash(state);
        network.hash(state);
        history.hash(state);
        violations.hash(state);
        crashes.hash(state);
        transfers.hash(state);
    }
}

/// One thing that can happen next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The network hands this in-flight message to its receiver.
    Deliver(Envelope),
    /// The network loses this message (lossy network only).
    Drop(Envelope),
    /// An armed timer of a node fires.
    Fire(NodeId, Timer),
    /// A node crashes and restarts from its stable storage.
    Restart(NodeId),
    /// The first node is asked to hand its leadership to the second (§3.10).
    Transfer(NodeId, NodeId),
}

/// Bounds that describe no cluster.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The core refuses the cluster configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Messages of this cluster would not pack into the model's network.
    #[error("{nodes} nodes with terms or log numbers up to {largest} exceed the model's limits")]
    TooLarge {
        /// Cluster size.
        nodes: u8,
        /// The largest term or log number.
        largest: u64,
    },
    /// A node would start in a term above [`Bounds::max_term`] (the term of
    /// its last log entry), outside the boundary before any step.
    #[error("a log ending in {log_term} starts its node beyond the max term {max_term}")]
    LogBeyondMaxTerm {
        /// The last log term.
        log_term: Term,
        /// The bound.
        max_term: Term,
    },
    /// One log summary per node is needed.
    #[error("{nodes} nodes need {nodes} log summaries, got {logs}")]
    LogCount {
        /// Cluster size.
        nodes: u8,
        /// Log summaries given.
        logs: usize,
    },
}

/// The stateright model: the cluster's constants and bounds. Nothing here is
/// hashed into the state.
#[derive(Clone, Debug)]
pub struct ElectionModel {
    bounds: Bounds,
    /// `configs[i]` is the configuration of node `n{i}`.
    configs: Vec<Config>,
    /// Whether every state is put in canonical form (symmetry reduction).
    symmetry: bool,
    /// Whether responses that can no longer change their receiver are
    /// dropped ([`ElectionModel::drop_spent_responses`]).
    drop_spent_responses: bool,
}

/// The reachability ("sometimes") properties of every run: each shows a
/// green run is not vacuous.
pub const REACHABILITY: [&str; 4] = [
    "a leader is elected",
    "a split vote happens",
    "a leader is replaced",
    "a stale leader steps down",
];

/// The liveness property the model decides (see
/// [`ElectionModel::settles_on_the_leader`]): an "always" property, checked on
/// the duplicating network, where nothing in flight is ever lost.
pub const SETTLES_ON_THE_LEADER: &str = "delivering every message settles on the leader";

/// The reachability property of each election feature, in
/// [`Features::NAMES`] order: checked when that feature is on.
pub const FEATURE_REACHABILITY: [&str; 4] = [
    "a pre-vote fails, a later one wins",
    "a leader steps down by CheckQuorum",
    "a RequestVote meets a lease",
    "a leadership transfer completes",
];

impl ElectionModel {
    /// A model of a cluster within `bounds`.
    pub fn new(bounds: Bounds) -> Result<Self, ModelError> {
        if bounds.logs.len() != usize::from(bounds.nodes) {
            return Err(ModelError::LogCount {
                nodes: bounds.nodes,
                logs: bounds.logs.len(),
            });
        }
        let largest = bounds
            .logs
            .iter()
            .flat_map(|log| [log.last_log_index, log.last_log_term.0])
            .chain([bounds.max_term.0])
            .max()
            .unwrap_or_default();
        if !Network::fits(bounds.nodes, largest) {
            return Err(ModelError::TooLarge {
                nodes: bounds.nodes,
                largest,
            });
        }
        if let Some(log) = bounds
            .logs
            .iter()
            .find(|log| log.last_log_term > bounds.max_term)
        {
            return Err(ModelError::LogBeyondMaxTerm {
                log_term: log.last_log_term,
                max_term: bounds.max_term,
            });
        }
        let configs = Config::cluster(bounds.nodes, Timing::default())?
            .into_iter()
            .map(|config| config.with_features(bounds.features))
            .collect();
        Ok(Self {
            bounds,
            configs,
            symmetry: true,
            drop_spent_responses: true,
        })
    }

    /// This model keeping every response in flight, stale and spent ones
    /// included (to measure the reduction, and to show it hides nothing).
    #[must_use]
    pub fn without_dropping_spent_responses(mut self) -> Self {
        self.drop_spent_responses = false;
        self
    }

    /// This model without symmetry reduction: every state keeps the ids it
    /// was reached with (for the Explorer, and to measure the reduction).
    #[must_use]
    pub fn without_symmetry(mut self) -> Self {
        self.symmetry = false;
        self
    }

    /// Whether states are put in canonical form (symmetry reduction).
    #[must_use]
    pub fn symmetry(&self) -> bool {
        self.symmetry
    }

    /// `state` in canonical form if symmetry reduction is on.
    fn canonical(&self, state: ClusterState) -> ClusterState {
        if self.symmetry {
            symmetry::into_representative(state)
        } else {
            state
        }
    }

    /// The bounds this model explores.
    #[must_use]
    pub fn bounds(&self) -> &Bounds {
        &self.bounds
    }

    /// Every reachability property this model checks: [`REACHABILITY`], then
    /// [`FEATURE_REACHABILITY`] of each feature that is on.
    #[must_use]
    pub fn reachability(&self) -> Vec<&'static str> {
        let features = self.bounds.features.switches();
        REACHABILITY
            .into_iter()
            .chain(
                FEATURE_REACHABILITY
                    .into_iter()
                    .zip(features)
                    .filter_map(|(name, on)| on.then_some(name)),
            )
            .collect()
    }

    /// Feeds `input` to node `id` and executes its outputs, recording every
    /// invariant the step breaks.
    fn step(&self, state: &mut ClusterState, id: NodeId, input: Input) {
        let config = &self.configs[usize::from(id.0)];
        let mut after = state.servers[usize::from(id.0)].node.clone();
        with_outputs(|outputs| {
            // `commit` runs every check of the step; `step` would run them
            // twice in a debug build.
            after.step_without_assertions(config, input, outputs);
            self.commit(state, id, input, after, outputs);
        });
    }

    /// Installs `after`, what node `id` became on `input`, with `outputs`,
    /// the outputs of that step: checks the step, records it in the history
    /// and executes the outputs.
    fn commit(
        &self,
        state: &mut ClusterState,
        id: NodeId,
        input: Input,
        after: Node,
        outputs: &[Output],
    ) {
        let config = &self.configs[usize::from(id.0)];
        let server = &mut state.servers[usize::from(id.0)];
        let before = std::mem::replace(&mut server.node, after);
        let checks = [
            invariants::check_node(config, &server.node),
            invariants::check_outputs(
                config,
                before.hard_state(),
                server.node.hard_state(),
                outputs,
            ),
            invariants::check_transition(config, &before, &input, &server.node, outputs),
            // An inert step (a heartbeat, a duplicate) teaches the history
            // nothing and can break none of its checks (`History::is_inert`),
            // so the shared history is neither copied nor read.
            if History::is_inert(&before, &input, &server.node) {
                Ok(())
            } else {
                state
                    .history
                    .update(|history| history.record_step(config, &before, &input, &server.node))
            },
        ];
        for violation in checks.into_iter().filter_map(Result::err) {
            state.violations.record(violation);
        }
        server.retried_pre_vote =
            retried_pre_vote(server.retried_pre_vote, &before, &input, &server.node);
        for &output in outputs {
            match output {
                Output::Persist(hard_state) => {
                    if self.bounds.restarts == Restarts::Durable {
                        server.storage = hard_state;
                    }
                }
                Output::Send { to, message } => {
                    state.network.insert(&Envelope {
                        from: id,
                        to,
                        message,
                    });
                }
                Output::SetTimer { timer, .. } => server.armed.set(timer, true),
                Output::CancelTimer(timer) => server.armed.set(timer, false),
                // The model runs no leader lease (it has no clock).
                Output::RoundStarted { .. }
                | Output::LeaseExtended { .. }
                | Output::LeaseRevoked => {}
            }
        }
        // A volatile restart sends a term back, and a stale response could
        // matter again: only durable restarts keep terms monotonic.
        if self.drop_spent_responses && self.bounds.restarts == Restarts::Durable {
            self.drop_spent_responses(state, id);
        }
        let servers = &state.servers;
        self.drop_spent(&mut state.network, |id| {
            servers[usize::from(id.0)].node.current_term()
        });
    }

    /// After a step of node `id`, drops every response (RequestVoteResponse,
    /// AppendEntriesResponse) in flight that [`Self::is_spent_response`]:
    /// one that can never again change its receiver nor draw a reply. The
    /// network may lose any message, so this is a loss; and since no later
    /// step can act on it, the loss hides no behaviour. Only `id` changed, so
    /// only responses to `id` and the ones it just sent can have become
    /// spent. A response is dropped only if delivering it now indeed changes
    /// nothing and sends nothing: a core that broke the rule would keep it in
    /// flight, and the step that acts on it is explored and checked.
    /// proofs.md, "Spent responses", argues why nothing is missed.
    fn drop_spent_responses(&self, state: &mut ClusterState, id: NodeId) {
        let spent = |envelope: &Envelope| {
            let receiver = &state.servers[usize::from(envelope.to.0)].node;
            (envelope.from == id || envelope.to == id)
                && self.is_spent_response(receiver, envelope)
                && self.ignores(receiver, envelope)
        };
        let spent: Vec<Envelope> = state.network.iter().filter(|e| spent(e)).collect();
        for envelope in &spent {
            state.network.remove(envelope);
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
    /// features send such messages.
    fn drops_spent(&self) -> bool {
        self.bounds.features != Features::NONE
    }

    /// Drops every message in flight that [`is_spent`] given each node's
    /// term (`term_of`).
    fn drop_spent(&self, network: &mut Network, term_of: impl Fn(NodeId) -> Term) {
        if self.drops_spent() {
            let latest = latest_pre_votes(network);
            let duplicating = self.bounds.network == NetworkKind::Duplicating;
            network.retain(|envelope| {
                !is_spent(
                    envelope,
                    term_of(envelope.to),
                    duplicating.then_some(&latest),
                )
            });
        }
    }

    /// What delivering `envelope` makes of its receiver (the node after the
    /// step; the step's outputs go to `outputs`), or `None` if it would leave `state`
    /// exactly as it is: the receiver unchanged, each of its outputs already
    /// in effect (the reply already in flight, the timer already armed) and
    /// the history unchanged.
    ///
    /// On a duplicating network most deliveries are such repeats; finding out
    /// on a clone of one node is much cheaper than stepping a clone of the
    /// whole state and comparing, and a delivery that does change something
    /// is committed from the same step.
    fn deliver(
        &self,
        state: &ClusterState,
        envelope: &Envelope,
        outputs: &mut Vec<Output>,
    ) -> Option<Node> {
        let id = envelope.to;
        let config = &self.configs[usize::from(id.0)];
        let server = &state.servers[usize::from(id.0)];
        let input = Input::Receive {
            from: envelope.from,
            message: envelope.message,
        };
        let mut node = server.node.clone();
        // Checked by `changes_nothing` or by `commit`, whichever follows.
        node.step_without_assertions(config, input, outputs);
        if self.bounds.network == NetworkKind::Duplicating
            && self.changes_nothing(state, id, &input, &node, outputs)
        {
            return None;
        }
        Some(node)
    }

    /// Whether node `id` going to `node` on `input` with `outputs` leaves
    /// `state` exactly as it is (see [`Self::deliver`]).
    fn changes_nothing(
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

    /// The liveness check: if a node leads the highest term of `state`, then
    /// delivering every message in flight, again and again, with no timer
    /// firing and no crash, ends in a state where every node of the highest
    /// term follows whoever leads it (the same leader, or the target of a
    /// transfer that completed meanwhile).
    /// The leader's first heartbeats are in flight from its election on (on
    /// the duplicating network nothing leaves), so a correct core always
    /// gets there; a rule that leaves a node of the term campaigning, or
    /// following no one, does not. Decided per state: when every node of the
    /// term already follows, nothing needs delivering.
    #[must_use]
    pub fn settles_on_the_leader(&self, state: &ClusterState) -> bool {
        if self.bounds.network != NetworkKind::Duplicating {
            return true;
        }
        let nodes = || state.servers.iter().map(|s| &s.node);
        let Some((term, leader)) = leader_of_highest_term(nodes()) else {
            return true;
        };
        if all_follow(nodes(), term, leader) {
            return true;
        }
        // Each round delivers every message once; the bound only guards
        // against a core that never settles, which is itself a failure. Only
        // the nodes and the messages in flight decide what a delivery does,
        // so only they are copied: timers, storage and the history are not
        // read by `Node::step`, and every state on the way is one the search
        // reaches (and checks) anyway.
        let mut nodes: Vec<Node> = state.servers.iter().map(|s| s.node.clone()).collect();
        let mut network = state.network.clone();
        let mut outputs = Vec::new();
        let mut envelopes = Vec::new();
        let drops_spent = self.drops_spent();
        for _ in 0..MAX_SETTLING_ROUNDS {
            let mut changed = false;
            envelopes.clear();
            envelopes.extend(network.iter());
            for &envelope in &envelopes {
                let to = usize::from(envelope.to.0);
                let mut node = nodes[to].clone();
                outputs.clear();
                let input = Input::Receive {
                    from: envelope.from,
                    message: envelope.message,
                };
                node.step(&self.configs[to], input, &mut outputs);
                let sends = outputs.iter().filter_map(|output| match *output {
                    Output::Send { to, message } => Some(Envelope {
                        from: envelope.to,
                        to,
                        message,
                    }),
                    _ => None,
                });
                let unchanged = node == nodes[to];
                if unchanged && sends.clone().all(|sent| network.contains(&sent)) {
                    continue;
                }
                // Something may change; a send dropped as spent at once
                // changes nothing, so the network is compared after. Where
                // nothing is dropped, sends only add.
                let network_before = drops_spent.then(|| network.clone());
                let in_flight = network.len();
                for sent in sends {
                    network.insert(&sent);
                }
                if !unchanged {
                    nodes[to] = node;
                    changed = true;
                }
                self.drop_spent(&mut network, |id| nodes[usize::from(id.0)].current_term());
                changed |= match network_before {
                    Some(before) => network != before,
                    None => network.len() != in_flight,
                };
            }
            if !changed {
                // A transfer in flight may have moved leadership on to a later
                // term meanwhile: whoever leads the highest term at the end
                // must be followed by every node of it.
                return leader_of_highest_term(nodes.iter())
                    .is_none_or(|(term, leader)| all_follow(nodes.iter(), term, leader));
            }
        }
        false
    }

    /// [`Model::next_state`], with `outputs` an empty buffer for the step.
    fn next_state_with(
        &self,
        state: &ClusterState,
        action: Action,
        outputs: &mut Vec<Output>,
    ) -> Option<ClusterState> {
        // A delivery or a timer changes one node: it is stepped first, on a
        // copy of that node alone, and if it leaves the boundary the whole
        // state does, so no copy of the state is made and `None` is
        // returned: the checker drops a state beyond the boundary unexplored
        // and unchecked anyway (2.3 of the 8 successors of a state on 3
        // nodes with terms up to 2).
        let stepped = match action {
            Action::Deliver(envelope) => Some(self.deliver(state, &envelope, outputs)?),
            Action::Fire(id, timer) => {
                let mut node = state.servers[usize::from(id.0)].node.clone();
                // Checked by `commit`.
                node.step_without_assertions(
                    &self.configs[usize::from(id.0)],
                    Input::Timeout(timer),
                    outputs,
                );
                Some(node)
            }
            _ => None,
        };
        if stepped
            .as_ref()
            .is_some_and(|node| !self.node_within_boundary(node))
        {
            return None;
        }
        let mut next = state.clone();
        // Violations belong to the step that commits them: a state records what
        // the step into it broke, so a trace ends where the damage was done.
        next.violations = Violations::default();
        match action {
            Action::Deliver(envelope) => {
                if self.bounds.network == NetworkKind::Lossy {
                    next.network.remove(&envelope);
                }
                let input = Input::Receive {
                    from: envelope.from,
                    message: envelope.message,
                };
                if let Some(after) = stepped {
                    self.commit(&mut next, envelope.to, input, after, outputs);
                }
            }
            Action::Drop(envelope) => {
                next.network.remove(&envelope);
            }
            Action::Fire(id, timer) => {
                next.servers[usize::from(id.0)].armed.set(timer, false);
                if let Some(after) = stepped {
                    self.commit(&mut next, id, Input::Timeout(timer), after, outputs);
                }
            }
            Action::Transfer(id, to) => {
                self.step(&mut next, id, Input::TransferLeadership { to });
                // A request that changes nothing (the transfer to this target
                // is already under way) only spends the budget.
                if next == *state {
                    return None;
                }
                next.transfers += 1;
            }
            Action::Restart(id) => {
                self.restart(&mut next, id);
                // A crash that loses nothing (a follower that knew no leader)
                // only spends the crash budget: every behaviour after it is
                // one of the uncrashed state's, so it need not be explored.
                next.crashes = state.crashes;
                if next == *state {
                    return None;
                }
                next.crashes += 1;
            }
        }
        // A step that changes nothing (a duplicate delivered again, a heartbeat
        // re-sent) leads back here: skip it before it is canonicalized and hashed.
        if next == *state {
            return None;
        }
        // A state beyond the boundary is dropped by the checker unexplored
        // (and the boundary ignores ids): putting it in canonical form first
        // would be wasted, and was 3.6M of 12.4M canonicalizations on 3 nodes.
        if !self.within_boundary(&next) {
            return Some(next);
        }
        Some(self.canonical(next))
    }

    /// Whether `node` is within the boundary (see [`Model::within_boundary`]):
    /// a state is if every node of it is.
    fn node_within_boundary(&self, node: &Node) -> bool {
        let term = node.current_term();
        term < self.bounds.max_term
            || (term == self.bounds.max_term && node.role() != Role::PreCandidate)
    }

    /// Node `id` crashes (losing its volatile state and timers) and restarts
    /// from storage: what it persisted, or nothing with volatile restarts.
    fn restart(&self, state: &mut ClusterState, id: NodeId) {
        state.crashes += 1;
        let server = &mut state.servers[usize::from(id.0)];
        if self.bounds.restarts == Restarts::Volatile {
            server.storage = HardState::default();
        }
        // The log summary is fixed for this crate (no entries are replicated),
        // so the restarted node keeps the one it had.
        server.node = Node::restore(server.storage, server.node.log());
        server.armed = Armed::default();
        server.retried_pre_vote = false;
        let node = &server.node;
        if let Err(violation) = state
            .history
            .update(|history| history.record_restart(id, node))
        {
            state.violations.record(violation);
        }
        self.step(state, id, Input::Start);
    }
}

impl Model for ElectionModel {
    type State = ClusterState;
    type Action = Action;

    fn init_states(&self) -> Vec<ClusterState> {
        let mut state = ClusterState {
            servers: self
                .bounds
                .logs
                .iter()
                .map(|&log| {
                    // Started as if restored from storage holding the term of
                    // its last entry (see `Bounds::logs`).
                    let storage = HardState {
                        current_term: log.last_log_term,
                        voted_for: None,
                    };
                    Server {
                        node: Node::restore(storage, log),
                        storage,
                        armed: Armed::default(),
                        retried_pre_vote: false,
                    }
                })
                .collect(),
            network: Network::default(),
            // Each node's log from the bounds, never from the nodes: a node
            // that loses or changes its log is caught
            // (`Invariant::LogNeverChanges`), and the vote restriction judges
            // its votes by the log it should hold.
            history: History::new((0..).map(NodeId).zip(self.bounds.logs.iter().copied())).into(),
            violations: Violations::default(),
            crashes: 0,
            transfers: 0,
        };
        for config in &self.configs {
            self.step(&mut state, config.id(), Input::Start);
        }
        vec![self.canonical(state)]
    }

    fn actions(&self, state: &ClusterState, actions: &mut Vec<Action>) {
        for envelope in state.network.iter() {
            actions.push(Action::Deliver(envelope));
            if self.bounds.network == NetworkKind::Lossy {
                actions.push(Action::Drop(envelope));
            }
        }
        for (config, server) in self.configs.iter().zip(&state.servers) {
            actions.extend(
                server
                    .armed
                    .iter()
                    .map(|timer| Action::Fire(config.id(), timer)),
            );
        }
        if state.crashes < self.bounds.max_crashes {
            actions.extend(self.configs.iter().map(|c| Action::Restart(c.id())));
        }
        // A request reaching a node that does not lead changes nothing: only
        // leaders are asked.
        if self.bounds.features.leadership_transfer && state.transfers < self.bounds.max_transfers {
            for (config, server) in self.configs.iter().zip(&state.servers) {
                if server.node.role() == Role::Leader {
                    let leader = config.id();
                    actions.extend(config.peers().map(|to| Action::Transfer(leader, to)));
                }
            }
        }
    }

    fn next_state(&self, state: &ClusterState, action: Action) -> Option<ClusterState> {
        with_outputs(|outputs| self.next_state_with(state, action, outputs))
    }

    /// No node is in a term above the bound, nor asks for one: a pre-vote
    /// for the term after the bound is where an election beyond it would
    /// begin, so it is cut off there, as the election itself would be.
    fn within_boundary(&self, state: &ClusterState) -> bool {
        state
            .servers
            .iter()
            .all(|server| self.node_within_boundary(&server.node))
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut properties: Vec<Property<Self>> = invariant_properties();
        properties.push(Property::always(SETTLES_ON_THE_LEADER, |m, s| {
            m.settles_on_the_leader(s)
        }));
        properties.push(Property::always(ELECTS_A_LEADER, |m, s| {
            m.elects_a_leader_once_settled(s)
        }));
        properties.extend([
            Property::sometimes(REACHABILITY[0], |_, s| leader_elected(s)),
            Property::sometimes(REACHABILITY[1], |_, s| split_vote(s)),
            Property::sometimes(REACHABILITY[2], |_, s| leader_replaced(s)),
            Property::sometimes(REACHABILITY[3], |_, s| stale_leader_stepped_down(s)),
        ]);
        let features: [Property<Self>; 4] = [
            Property::sometimes(FEATURE_REACHABILITY[0], |_, s: &ClusterState| {
                s.servers
                    .iter()
                    .any(|s| s.retried_pre_vote && s.node.role() == Role::Candidate)
            }),
            Property::sometimes(FEATURE_REACHABILITY[1], |_, s| {
                stepped_down_by_check_quorum(s)
            }),
            Property::sometimes(FEATURE_REACHABILITY[2], |m, s| {
                request_vote_meets_lease(m, s)
            }),
            Property::sometimes(FEATURE_REACHABILITY[3], |_, s| transfer_completed(s)),
        ];
        properties.extend(
            features
                .into_iter()
                .zip(self.bounds.features.switches())
                .filter_map(|(property, on)| on.then_some(property)),
        );
        properties
    }

    fn format_action(&self, action: &Action) -> String {
        describe_action(action)
    }

    fn format_step(&self, last_state: &ClusterState, action: Action) -> Option<String> {
        self.next_state(last_state, action)
            .map(|next| compact_state(&next, Some(self.bounds.max_crashes)))
    }

    fn as_svg(&self, path: stateright::Path<ClusterState, Action>) -> Option<String> {
        let steps = path.clone().into_actions().len();
        let title = format!("{steps} steps of the model");
        Some(sequence_diagram(self, &path, &title).to_svg())
    }
}

/// Runs `f` with an empty buffer for a step's outputs, one of a few this
/// thread reuses: a probe of a delivery that changes nothing (most of them)
/// then allocates nothing. Steps nest (a commit probes responses for
/// spentness), so the pool holds one buffer per level, at most three.
fn with_outputs<R>(f: impl FnOnce(&mut Vec<Output>) -> R) -> R {
    thread_local! {
        static BUFFERS: RefCell<Vec<Vec<Output>>> = const { RefCell::new(Vec::new()) };
    }
    let mut buffer = BUFFERS.with_borrow_mut(Vec::pop).unwrap_or_default();
    buffer.clear();
    let result = f(&mut buffer);
    BUFFERS.with_borrow_mut(|buffers| buffers.push(buffer));
    result
}

/// Rounds of delivering every message in flight before
/// [`ElectionModel::settles_on_the_leader`] gives up.
const MAX_SETTLING_ROUNDS: usize = 64;

/// The leader of the highest term any of `nodes` (in id order) is in, if
/// that term has one.
fn leader_of_highest_term<'a>(
    mut nodes: impl Iterator<Item = &'a Node> + Clone,
) -> Option<(Term, NodeId)> {
    let term = nodes.clone().map(Node::current_term).max()?;
    nodes
        .position(|node| node.current_term() == term && node.role() == Role::Leader)
        .map(|index| (term, NodeId(u8::try_from(index).unwrap_or(u8::MAX))))
}

/// Every one of `nodes` (in id order) in `term` is `leader` or follows it.
fn all_follow<'a>(nodes: impl Iterator<Item = &'a Node>, term: Term, leader: NodeId) -> bool {
    nodes.enumerate().all(|(index, node)| {
        node.current_term() != term
            || usize::from(leader.0) == index
            || (node.role() == Role::Follower && node.leader_id() == Some(leader))
    })
}

/// Invariant `I` of [`Invariant::ALL`] has not been broken so far.
fn holds<const I: usize>(_: &ElectionModel, state: &ClusterState) -> bool {
    !state.violations.contains(Invariant::ALL[I])
}

/// Whether this model checks `invariant`: every one but the leader lease's.
/// The model has no clock, so no lease; the lease is checked over real time
/// by the timed simulator (`raft_election_sim::timed`, `lease-runs`).
#[must_use]
pub fn is_modelled(invariant: Invariant) -> bool {
    invariant != Invariant::OneLeaseHolder
}

/// One "always" property per modelled invariant, named as the invariant.
fn invariant_properties() -> Vec<Property<ElectionModel>> {
    // The lease invariant is last in `Invariant::ALL`, so the indexes match.
    let conditions: [fn(&ElectionModel, &ClusterState) -> bool; Invariant::ALL.len() - 1] = [
        holds::<0>,
        holds::<1>,
        holds::<2>,
        holds::<3>,
        holds::<4>,
        holds::<5>,
        holds::<6>,
        holds::<7>,
        holds::<8>,
        holds::<9>,
        holds::<10>,
        holds::<11>,
    ];
    Invariant::ALL
        .iter()
        .filter(|&&invariant| is_modelled(invariant))
        .zip(conditions)
        .map(|(invariant, condition)| Property::always(invariant.name(), condition))
        .collect()
}

/// Some node has become leader.
fn leader_elected(state: &ClusterState) -> bool {
    !state.history.leaders().is_empty()
}

/// A split vote (§5.2: "votes could be split so that no candidate obtains a
/// majority"): a term that ended without a leader (every node has moved past
/// it) in which two different nodes campaigned, and a later term that elected
/// a leader. A lone candidate whose timer fires again before any vote arrives
/// also leaves a leaderless term behind, but it is no split.
///
/// Who campaigned is read from the network rather than recorded: a candidate
/// votes for itself and asks every other voter in the same step (§5.2), and on
/// the duplicating network a message never leaves the set, so its `RequestVote`s
/// are exactly the campaigns so far. On the lossy network some may be gone, so
/// a split is seen only while both requests are still in flight: missed
/// sometimes, never claimed falsely. A ghost record would split states equal
/// in everything else and change the pinned state counts.
fn split_vote(state: &ClusterState) -> bool {
    let leaders = state.history.leaders();
    let Some((&last_led, _)) = leaders.last_key_value() else {
        return false;
    };
    let lowest = state
        .servers
        .iter()
        .map(|s| s.node.current_term())
        .min()
        .unwrap_or_default();
    let mut first_candidate: BTreeMap<Term, NodeId> = BTreeMap::new();
    state.network.iter().any(|envelope| {
        let Message::RequestVote {
            term, candidate_id, ..
        } = envelope.message
        else {
            return false;
        };
        let ended_leaderless = term < lowest && term < last_led && !leaders.contains_key(&term);
        ended_leaderless
            && envelope.from == candidate_id
            && *first_candidate.entry(term).or_insert(candidate_id) != candidate_id
    })
}

/// A node that led a term has moved on to a later one without ever crashing.
/// A leader's election timeout is ignored, so only a message with a higher
/// term can have moved it (Figure 2: it converts to follower). Read from the
/// state rather than recorded, so no ghost bit splits otherwise equal states.
fn stale_leader_stepped_down(state: &ClusterState) -> bool {
    state.crashes == 0
        && state
            .history
            .leaders()
            .iter()
            .any(|(&term, leader)| state.servers[usize::from(leader.0)].node.current_term() > term)
}

/// Two different nodes led two different terms.
fn leader_replaced(state: &ClusterState) -> bool {
    let mut leaders = state.history.leaders().values();
    leaders
        .next()
        .is_some_and(|&first| leaders.any(|&other| other != first))
}

/// A node's [`Server::retried_pre_vote`] after one step from `before` to
/// `after`: set when a pre-candidate's round times out into another (the
/// round failed), kept while that campaign goes on (further rounds, then
/// the candidacy a won round starts), cleared when it ends.
fn retried_pre_vote(retried: bool, before: &Node, input: &Input, after: &Node) -> bool {
    let was = before.role();
    match after.role() {
        Role::PreCandidate if was == Role::PreCandidate => {
            retried || *input == Input::Timeout(Timer::Election)
        }
        Role::Candidate if matches!(was, Role::PreCandidate | Role::Candidate) => retried,
        _ => false,
    }
}

/// A node that led its current term is a follower in it, and no node ever
/// crashed (a restart also makes a leader a follower of its term): only
/// CheckQuorum steps a leader down without a higher term.
fn stepped_down_by_check_quorum(state: &ClusterState) -> bool {
    state.crashes == 0
        && state.history.leaders().iter().any(|(&term, leader)| {
            let node = &state.servers[usize::from(leader.0)].node;
            node.current_term() == term && node.role() == Role::Follower
        })
}

/// A RequestVote of a higher term, without the transfer flag, is in flight to
/// a node that would ignore it under its lease (§4.2.3): a leader, or a
/// follower in its lease. Delivering it changes nothing, so the checker never
/// records the delivery as a step; this is the state in which it happens.
fn request_vote_meets_lease(model: &ElectionModel, state: &ClusterState) -> bool {
    model.bounds.features.lease_guarded_votes
        && state.network.iter().any(|envelope| {
            let Message::RequestVote {
                term,
                leadership_transfer: false,
                ..
            } = envelope.message
            else {
                return false;
            };
            let node = &state.servers[usize::from(envelope.to.0)].node;
            term > node.current_term() && (node.role() == Role::Leader || node.in_lease())
        })
}

/// A node leads a term it campaigned for on a TimeoutNow: its RequestVote
/// of that term carries the transfer flag (only such a campaign sets it).
/// Read from the network, so on the lossy network a transfer whose requests
/// were all delivered is missed, never claimed falsely.
fn transfer_completed(state: &ClusterState) -> bool {
    let leaders = state.history.leaders();
    state.network.iter().any(|envelope| {
        let Message::RequestVote {
            term,
            candidate_id,
            leadership_transfer: true,
            ..
        } = envelope.message
        else {
            return false;
        };
        leaders.get(&term) == Some(&candidate_id)
    })
}

/// The latest term each node asked each other node about with a PreVote,
/// by (sender, receiver).
fn latest_pre_votes(network: &Network) -> BTreeMap<(NodeId, NodeId), Term> {
    let mut latest = BTreeMap::new();
    for envelope in network.iter() {
        if let Message::PreVote { term, .. } = envelope.message {
            let entry = latest.entry((envelope.from, envelope.to)).or_insert(term);
            *entry = (*entry).max(term);
        }
    }
    latest
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
///   outdone by a later one of the same sender to the same receiver. An older
///   request can be granted only while its sender is one term below it, which
///   it no longer is (it asked for a later term since), and refused
///   informatively only by a receiver whose term is at least the one asked and
///   above the sender's: then the later request draws the very same refusal.
fn is_spent(
    envelope: &Envelope,
    receiver: Term,
    latest_pre_votes: Option<&BTreeMap<(NodeId, NodeId), Term>>,
) -> bool {
    match envelope.message {
        Message::PreVoteResponse { term, .. } => receiver >= term,
        Message::TimeoutNow { term } => receiver > term,
        Message::PreVote { term, .. } => latest_pre_votes
            .and_then(|latest| latest.get(&(envelope.from, envelope.to)))
            .is_some_and(|&latest| latest > term),
        _ => false,
    }
}
