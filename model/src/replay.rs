//! Trace validation, as etcd checks its runtime against its TLA+ spec: what
//! real nodes did (their starts, steps, durable saves and sends, in the
//! order they happened) is replayed through the model's transition relation.
//!
//! Every observed step must be one the model allows from where the model is
//! (a message in flight, a timer armed) and leave the node as the model's
//! step does; every send must be an output of a step the model took, made
//! once the sender's state is durable; a restarted node must come back with
//! what it asked to persist. The model checks the core; this checks the
//! driver around it (timers, persistence order, delivery).
//!
//! The events come from anywhere: the in-process runtime's `Observer`
//! (`model/tests/it/trace_validation.rs`) or the JSON logs of real node
//! processes (`cli/tests/it/node_trace_validation.rs`); this module knows only
//! the core's types. Nodes start as the model's do: empty logs, term 0,
//! no vote, ids `n0..`.

use crate::{Action, Bounds, ClusterState, ElectionModel, StartingLogs};
use raft_election::{Envelope, Features, HardState, Input, Node, NodeId, Record, Summary, Term};
use stateright::Model;
use std::collections::HashSet;
use std::fmt;

/// One thing a node did, as a trace records it: the node's [`Record`], and
/// for a step, where the trace has them, the whole node before and after
/// it (an in-process observer sees them; a log line carries the record's
/// summary only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// The node.
    pub node: NodeId,
    /// What it did.
    pub record: Record,
    /// The whole node before and after a step, if the trace has them.
    pub whole: Option<Box<(Node, Node)>>,
}

impl TraceEvent {
    /// `node` did `record`, and the trace says no more.
    #[must_use]
    pub fn new(node: NodeId, record: Record) -> Self {
        Self {
            node,
            record,
            whole: None,
        }
    }

    /// `node` stepped from `before` to `after` on `input`, seen whole.
    #[must_use]
    pub fn step(node: NodeId, before: &Node, input: Input, after: &Node) -> Self {
        Self {
            node,
            record: Record::stepped(before, input, after),
            whole: Some(Box::new((before.clone(), after.clone()))),
        }
    }
}

/// The first event the model does not allow, or a cluster it cannot model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The event's position in the trace.
    pub index: usize,
    /// The event; `None` if the cluster itself cannot be modelled.
    pub event: Option<Box<TraceEvent>>,
    /// Why it is refused.
    pub reason: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.event {
            Some(event) => write!(f, "event {} ({event:?}): {}", self.index, self.reason),
            None => write!(f, "the cluster: {}", self.reason),
        }
    }
}

impl std::error::Error for Refused {}

/// Replays `trace`, the events of a cluster of `nodes` nodes running
/// `features`, through the model; returns the number of steps validated, or
/// the first event the model does not allow.
///
/// # Errors
/// [`Refused`]: an event no model step explains (named, with the reason).
pub fn validate(nodes: u8, features: Features, trace: &[TraceEvent]) -> Result<usize, Refused> {
    let mut bounds = Bounds::with_logs(nodes, StartingLogs::Equal).with_features(features);
    // The trace decides how far it goes, not the model's bounds.
    // The highest term the model's network packs at the bottom of the
    // term space.
    bounds.max_term = Term(32_766);
    bounds.max_crashes = u8::MAX;
    bounds.max_transfers = u8::MAX;
    let model = ElectionModel::new(bounds)
        .map_err(|error| Refused {
            index: 0,
            event: None,
            reason: error.to_string(),
        })?
        .without_symmetry()
        // Every message a driver sent stays deliverable, spent responses too.
        .without_dropping_spent_responses();
    let mut replay = Replay::new(&model, nodes);
    for (index, event) in trace.iter().enumerate() {
        replay.event(event).map_err(|reason| Refused {
            index,
            event: Some(Box::new(event.clone())),
            reason,
        })?;
    }
    Ok(replay.steps)
}

/// The model's state as a trace is replayed, and what the trace said of
/// each node so far.
struct Replay<'a> {
    model: &'a ElectionModel,
    nodes: u8,
    state: ClusterState,
    started: Vec<bool>,
    /// Started (or restarted) and not stepped since: its start step is the
    /// one the model already took.
    awaiting_start: Vec<bool>,
    /// What each node's storage holds, by its saves.
    durable: Vec<HardState>,
    /// Every message a model step has sent: the model drops from its network
    /// messages that can no longer change anything, which a real network
    /// still delivers.
    ever_sent: HashSet<Envelope>,
    steps: usize,
}

impl<'a> Replay<'a> {
    fn new(model: &'a ElectionModel, nodes: u8) -> Self {
        // The model starts every node (its Start step) in its initial state.
        let state: ClusterState = model.init_states().remove(0);
        let count = usize::from(nodes);
        Self {
            model,
            nodes,
            ever_sent: state.network.iter().collect(),
            state,
            started: vec![false; count],
            awaiting_start: vec![false; count],
            durable: vec![HardState::default(); count],
            steps: 0,
        }
    }

    /// Node `id`'s index, if the cluster has it.
    fn index(&self, id: NodeId) -> Result<usize, String> {
        let i = usize::from(id.0);
        if i < usize::from(self.nodes) {
            Ok(i)
        } else {
            Err(format!("{id} is no node of a cluster of {}", self.nodes))
        }
    }

    fn event(&mut self, event: &TraceEvent) -> Result<(), String> {
        let i = self.index(event.node)?;
        match &event.record {
            Record::Started(restored) => self.started(event.node, i, *restored),
            Record::Stepped { input, after, .. } => {
                self.stepped(event.node, i, *input, after, event.whole.as_deref())
            }
            Record::Saved(hard_state) => {
                self.durable[i] = *hard_state;
                Ok(())
            }
            Record::Sent { to, message } => {
                let envelope = Envelope {
                    from: event.node,
                    to: *to,
                    message: *message,
                };
                self.sent(i, &envelope)
            }
        }
    }

    fn started(&mut self, id: NodeId, i: usize, restored: HardState) -> Result<(), String> {
        let asked = self.state.servers[i].storage;
        if self.started[i] {
            // A crash and restart: the model restores what the node asked
            // to persist; the driver restored what was durable.
            if self.durable[i] != asked || restored != asked {
                return Err(format!(
                    "restarted with {restored:?}, durable {:?}, but its last persist asked for {asked:?}",
                    self.durable[i]
                ));
            }
            self.apply(Action::Restart(id));
        } else if restored != asked {
            return Err(format!(
                "started with {restored:?}, but a new node starts with {asked:?}"
            ));
        }
        self.started[i] = true;
        self.awaiting_start[i] = true;
        Ok(())
    }

    fn stepped(
        &mut self,
        id: NodeId,
        i: usize,
        input: Input,
        after: &Summary,
        whole: Option<&(Node, Node)>,
    ) -> Result<(), String> {
        if !self.started[i] {
            return Err(format!("{id} stepped before it started"));
        }
        let held = &self.state.servers[i].node;
        if whole.is_some_and(|(before, _)| before != held) {
            return Err(format!(
                "stepped from a node the model does not hold: {held:?}"
            ));
        }
        if let Some(action) = self.action(id, i, input)? {
            self.apply(action);
        }
        self.awaiting_start[i] = false;
        let held = &self.state.servers[i].node;
        if Summary::of(held) != *after || whole.is_some_and(|(_, whole)| whole != held) {
            return Err(format!("ended as {after:?}, the model's step as {held:?}"));
        }
        if let Some((invariant, detail)) = self.state.violations.iter().next() {
            return Err(format!("{invariant}: {detail}"));
        }
        self.steps += 1;
        Ok(())
    }

    /// The model's action for node `id` stepping on `input`, if it takes
    /// one: its start (or restart) is the one the model already took.
    fn action(&self, id: NodeId, i: usize, input: Input) -> Result<Option<Action>, String> {
        Ok(Some(match input {
            Input::Start if self.awaiting_start[i] => return Ok(None),
            Input::Start => return Err("a start without a restart".to_owned()),
            Input::Receive { from, message } => {
                let envelope = Envelope {
                    from,
                    to: id,
                    message,
                };
                if !self.ever_sent.contains(&envelope) {
                    return Err("received a message no node sent".to_owned());
                }
                Action::Deliver(envelope)
            }
            Input::Timeout(timer) => {
                if !self.state.servers[i].armed.is_armed(timer) {
                    return Err(format!("the {timer} timer fired, but it is not armed"));
                }
                Action::Fire(id, timer)
            }
            Input::TransferLeadership { to } => Action::Transfer(id, to),
        }))
    }

    fn sent(&self, i: usize, envelope: &Envelope) -> Result<(), String> {
        if !self.ever_sent.contains(envelope) {
            return Err("sent a message no step of the model sent".to_owned());
        }
        let current = self.state.servers[i].node.hard_state();
        if self.durable[i] != current {
            return Err(format!(
                "sent while its state {current:?} was not durable (durable: {:?})",
                self.durable[i]
            ));
        }
        Ok(())
    }

    fn apply(&mut self, action: Action) {
        if let Some(next) = self.model.next_state(&self.state, action) {
            self.state = next;
        }
        self.ever_sent.extend(self.state.network.iter());
    }
}
