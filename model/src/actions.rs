//! What can happen next ([`Action`]) and what it makes of a state: the
//! initial state, the actions enabled in a state, and the step of one node
//! through [`Node::step`] whose outputs the model executes, as the runtime
//! does.

use crate::{
    Armed, ClusterState, ElectionModel, Network, NetworkKind, Reduction, Restarts, Server,
    Violations,
};
use raft_election::invariants::{self, History};
use raft_election::{Envelope, HardState, Input, Node, NodeId, Output, Role, Timer};
use stateright::Model;
use std::cell::RefCell;

/// One thing that can happen next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The network hands this in-flight message to its receiver.
    Deliver(Envelope),
    /// The network loses this message (lossy network only).
    Drop(Envelope),
    /// An armed timer of a node fires.
    Fire(NodeId, Timer),
    /// A node crashes and restarts from its stable storage at once, or,
    /// without the one-step-restarts reduction, a down node restarts.
    Restart(NodeId),
    /// A node crashes and stays down until its [`Action::Restart`] (only
    /// without the one-step-restarts reduction).
    Crash(NodeId),
    /// The first node is asked to hand its leadership to the second (§3.10).
    Transfer(NodeId, NodeId),
}

impl ElectionModel {
    /// The one initial state ([`Model::init_states`]): every node started,
    /// with the logs of [`Bounds::logs`](crate::Bounds::logs), in canonical
    /// form.
    pub(crate) fn initial_state(&self) -> ClusterState {
        let mut state = ClusterState {
            servers: self
                .bounds
                .logs
                .iter()
                .map(|&log| {
                    // Started as if restored from storage holding the term of
                    // its last entry (see `Bounds::logs`), moved by the offset.
                    let storage = HardState {
                        current_term: self.bounds.first_term(log),
                        voted_for: None,
                    };
                    Server {
                        node: Node::restore(storage, log),
                        storage,
                        armed: Armed::default(),
                        retried_pre_vote: false,
                        down: false,
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
            spent: Network::default(),
        };
        for config in &self.configs {
            self.step(&mut state, config.id(), Input::Start);
        }
        self.canonical(state)
    }

    /// Every action enabled in `state`, pushed to `actions`
    /// ([`Model::actions`]).
    pub(crate) fn enabled_actions(&self, state: &ClusterState, actions: &mut Vec<Action>) {
        for envelope in state.network.iter() {
            // A down node receives nothing: what reaches it is lost, which
            // the lossy network's drop already is.
            if !state.servers[usize::from(envelope.to.0)].down {
                actions.push(Action::Deliver(envelope));
            }
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
        let crashes_left = state.crashes < self.bounds.max_crashes;
        let one_step = self.reduces(Reduction::OneStepRestarts);
        for (config, server) in self.configs.iter().zip(&state.servers) {
            if server.down {
                actions.push(Action::Restart(config.id()));
            } else if crashes_left {
                let id = config.id();
                actions.push(if one_step {
                    Action::Restart(id)
                } else {
                    Action::Crash(id)
                });
            }
        }
        // A request reaching a node that does not lead changes nothing: only
        // leaders are asked (a self-loop, see `changes_nothing`).
        if self.bounds.features.leadership_transfer && state.transfers < self.bounds.max_transfers {
            let self_loops = !self.reduces(Reduction::SelfLoops);
            for (config, server) in self.configs.iter().zip(&state.servers) {
                if !server.down && (self_loops || server.node.role() == Role::Leader) {
                    let leader = config.id();
                    actions.extend(config.peers().map(|to| Action::Transfer(leader, to)));
                }
            }
        }
    }

    /// The state `action` leads to from `state`, if it is generated
    /// ([`Model::next_state`]).
    pub(crate) fn successor(&self, state: &ClusterState, action: Action) -> Option<ClusterState> {
        with_outputs(|outputs| self.next_state_with(state, action, outputs))
    }

    /// [`Self::successor`], with `outputs` an empty buffer for the step.
    fn next_state_with(
        &self,
        state: &ClusterState,
        action: Action,
        outputs: &mut Vec<Output>,
    ) -> Option<ClusterState> {
        let stepped = self.step_alone(state, action, outputs)?;
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
                if next == *state && self.reduces(Reduction::SelfLoops) {
                    return None;
                }
                next.transfers += 1;
            }
            Action::Restart(id) => self.crash_and_restart(state, &mut next, id, false)?,
            Action::Crash(id) => self.crash_and_restart(state, &mut next, id, true)?,
        }
        // A step that changes nothing (a duplicate delivered again, a heartbeat
        // re-sent) leads back here: skip it before it is canonicalized and hashed.
        if next == *state && self.reduces(Reduction::SelfLoops) {
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

    /// The node a delivery or a timer changes, stepped on a copy of that
    /// node alone (its outputs go to `outputs`): `Some(None)` for the other
    /// actions, and `None` for a delivery that is a self-loop, not generated.
    /// If the node leaves the boundary the whole state does, so no copy of
    /// the state is made: the checker drops a state beyond the boundary
    /// unexplored and unchecked anyway (2.3 of the 8 successors of a state on
    /// 3 nodes with terms up to 2).
    fn step_alone(
        &self,
        state: &ClusterState,
        action: Action,
        outputs: &mut Vec<Output>,
    ) -> Option<Option<Node>> {
        Some(match action {
            Action::Deliver(envelope) if self.reduces(Reduction::SelfLoops) => {
                Some(self.deliver(state, &envelope, outputs)?)
            }
            Action::Deliver(envelope) => Some(self.received(state, &envelope, outputs)),
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
        })
    }

    /// Feeds `input` to node `id` and executes its outputs, recording every
    /// invariant the step breaks.
    pub(crate) fn step(&self, state: &mut ClusterState, id: NodeId, input: Input) {
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
    pub(crate) fn commit(
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
        self.recall_spent(state, id);
        // A volatile restart sends a term back, and a stale response could
        // matter again: only durable restarts keep terms monotonic.
        if self.reduces(Reduction::SpentResponses) && self.bounds.restarts == Restarts::Durable {
            self.drop_spent_responses(state, id);
        }
        let servers = &state.servers;
        self.drop_spent(
            &mut state.network,
            |id| &servers[usize::from(id.0)].node,
            Some(&mut state.spent),
        );
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
    pub(crate) fn deliver(
        &self,
        state: &ClusterState,
        envelope: &Envelope,
        outputs: &mut Vec<Output>,
    ) -> Option<Node> {
        let node = self.received(state, envelope, outputs);
        let input = Input::Receive {
            from: envelope.from,
            message: envelope.message,
        };
        if self.bounds.network == NetworkKind::Duplicating
            && self.changes_nothing(state, envelope.to, &input, &node, outputs)
        {
            return None;
        }
        Some(node)
    }

    /// What delivering `envelope` makes of its receiver, whether or not it
    /// changes anything (the step's outputs go to `outputs`).
    fn received(
        &self,
        state: &ClusterState,
        envelope: &Envelope,
        outputs: &mut Vec<Output>,
    ) -> Node {
        let id = envelope.to;
        let input = Input::Receive {
            from: envelope.from,
            message: envelope.message,
        };
        let mut node = state.servers[usize::from(id.0)].node.clone();
        // Checked by `changes_nothing` or by `commit`, whichever follows.
        node.step_without_assertions(&self.configs[usize::from(id.0)], input, outputs);
        node
    }

    /// Node `id` crashes: its volatile state and timers are lost, and what
    /// it will restart as is its stable storage (nothing with volatile
    /// restarts).
    pub(crate) fn crash(&self, state: &mut ClusterState, id: NodeId) {
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
    }

    /// Node `id`, crashed, starts again from what [`Self::crash`] left.
    pub(crate) fn come_back(&self, state: &mut ClusterState, id: NodeId) {
        let server = &mut state.servers[usize::from(id.0)];
        server.down = false;
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

/// Runs `f` with an empty buffer for a step's outputs, one of a few this
/// thread reuses: a probe of a delivery that changes nothing (most of them)
/// then allocates nothing. Steps nest (a commit probes responses for
/// spentness), so the pool holds one buffer per level, at most three.
/// Inlined: its callers sit in other modules, so in other codegen units,
/// where a call on every step is measurably slower.
#[inline]
pub(crate) fn with_outputs<R>(f: impl FnOnce(&mut Vec<Output>) -> R) -> R {
    thread_local! {
        static BUFFERS: RefCell<Vec<Vec<Output>>> = const { RefCell::new(Vec::new()) };
    }
    let mut buffer = BUFFERS.with_borrow_mut(Vec::pop).unwrap_or_default();
    buffer.clear();
    let result = f(&mut buffer);
    BUFFERS.with_borrow_mut(|buffers| buffers.push(buffer));
    result
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
