//! An exhaustive stateright model of the `raft-election` core.
//!
//! The model is a thin adapter: every node is a real [`raft_election::Node`]
//! and every transition is one call of
//! [`Node::step`](raft_election::Node::step) whose outputs the model
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
//! # Modules
//!
//! - `lib.rs`: [`ElectionModel`] and its [`Model`] impl, which glues the
//!   others together;
//! - `bounds.rs`: what one run explores ([`Bounds`]), and the model built
//!   from it;
//! - `state.rs`: one state of the cluster ([`ClusterState`], [`Server`]);
//! - `actions.rs`: what can happen next ([`Action`]) and what it makes of a
//!   state;
//! - `reductions.rs`: every reduction of the state space, each with what it
//!   drops and where it is argued sound; `reductions_equality.rs` (tests)
//!   shows they hide no state;
//! - `properties.rs`: the invariants, the liveness property without timers
//!   and the reachability properties;
//! - `liveness.rs`: the liveness property with timers ([`ELECTS_A_LEADER`]);
//! - `network.rs`: the messages in flight, one word each ([`Network`]);
//! - `ghost.rs`: the ghost history as a state holds it ([`SharedHistory`]);
//! - `symmetry.rs`: the canonical form of a state;
//! - `trace.rs`: actions, states and paths in words and pictures;
//! - [`portfolio`]: the configurations `check` runs by default;
//! - [`replay`]: trace validation, real nodes' steps replayed through the
//!   model;
//! - `main.rs`: the `check` binary.
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
//!   Crash and restart are one step (a reduction, `one-step-restarts`):
//!   while down a node does nothing, and what is sent to it meanwhile may be
//!   lost anyway, so a longer downtime adds no behaviour, only states;
//!   without it, [`Action::Crash`] leaves the node down until its restart;
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
//!
//! `reductions.rs` names each reduction where it is done, with what it drops
//! and where it is argued sound.

#![forbid(unsafe_code)]

mod actions;
mod bounds;
mod ghost;
mod liveness;
mod network;
pub mod portfolio;
mod properties;
mod reductions;
#[cfg(test)]
mod reductions_equality;
pub mod replay;
mod state;
mod symmetry;
mod trace;

pub use actions::Action;
pub use bounds::{Bounds, ModelError, NetworkKind, Restarts, StartingLogs};
pub use ghost::SharedHistory;
pub use liveness::{ELECTION_ROUNDS, ELECTS_A_LEADER, Election};
pub use network::Network;
pub use properties::{FEATURE_REACHABILITY, REACHABILITY, SETTLES_ON_THE_LEADER, is_modelled};
pub use reductions::{Reduction, Reductions};
pub use state::{Armed, ClusterState, Server, Violations};

pub use trace::{
    compact_state, describe_action, describe_state, format_trace, last_state_with_stable_ids,
    sequence_diagram,
};

use raft_election::Config;
use stateright::{Model, Property};

/// The stateright model: the cluster's constants and bounds. Nothing here is
/// hashed into the state.
#[derive(Clone, Debug)]
pub struct ElectionModel {
    bounds: Bounds,
    /// `configs[i]` is the configuration of node `n{i}`.
    configs: Vec<Config>,
}

impl Model for ElectionModel {
    type State = ClusterState;
    type Action = Action;

    fn init_states(&self) -> Vec<ClusterState> {
        vec![self.initial_state()]
    }

    fn actions(&self, state: &ClusterState, actions: &mut Vec<Action>) {
        self.enabled_actions(state, actions);
    }

    fn next_state(&self, state: &ClusterState, action: Action) -> Option<ClusterState> {
        self.successor(state, action)
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
        self.every_property()
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
