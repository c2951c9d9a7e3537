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
//! (`model/tests/trace_validation.rs`) or the JSON logs of real node
//! processes (`cli/tests/node_trace_validation.rs`); this module knows only
//! the core's types. Nodes start as the model's do: empty logs, term 0,
//! no vote, ids `n0..`.

use crate::{Action, Bounds, ClusterState, ElectionModel, StartingLogs};
use raft_election::{Envelope, Features, HardState, Input, Message, Node, NodeId, Role, Term};
use stateright::Model;
use std::collections::HashSet;
use std::fmt;

/// What a trace says of a node after a step: all of it, or what a log line
/// carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// The whole node (an in-process observer sees it).
    Node(Box<Node>),
    /// Its term, vote, role and known leader (what a log line says).
    Summary {
        /// The node's term.
        current_term: Term,
        /// Its vote in that term.
        voted_for: Option<NodeId>,
        /// Its role.
        role: Role,
        /// The leader it knows.
        leader_id: Option<NodeId>,
    },
}

impl Observed {
    /// Whether `node` is what was observed.
    #[must_use]
    pub fn matches(&self, node: &Node) -> bool {
        match self {
            Self::Node(observed) => **observed == *node,
            Self::Summary {
                current_term,
                voted_for,
                role,
                leader_id,
            } => {
                node.current_term() == *current_term
                    && node.voted_for() == *voted_for
                    && node.role() == *role
                    && node.leader_id() == *leader_id
            }
        }
    }
}

/// One thing a node did, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    /// The node started (or restarted) from this hard state, before its
    /// first step.
    Started(NodeId, HardState),
    /// The node stepped on the input; `before`, if recorded, is the node it
    /// stepped from.
    Stepped {
        /// The node.
        id: NodeId,
        /// The node before the step, if the trace has it.
        before: Option<Box<Node>>,
        /// The input.
        input: Input,
        /// The node after it.
        after: Observed,
    },
    /// A hard state of the node became durable.
    Saved(NodeId, HardState),
    /// The first node handed a message for the second to its transport.
    Sent(NodeId, NodeId, Message),
}

/// The first event the model does not allow, or a cluster it cannot model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The event's position in the trace.
    pub index: usize,
    /// The event; `None` if the cluster itself cannot be modelled.
    pub event: Option<TraceEvent>,
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
    bounds.max_term = Term(u64::from(u16::MAX) - 1);
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
    // The model starts every node (its Start step) in its initial state.
    let mut state: ClusterState = model.init_states().remove(0);
    let count = usize::from(nodes);
    let mut started = vec![false; count];
    let mut awaiting_start = vec![false; count];
    let mut durable = vec![HardState::default(); count];
    // Every message a model step has sent: the model drops from its network
    // messages that can no longer change anything, which a real network
    // still delivers.
    let mut ever_sent: HashSet<Envelope> = state.network.iter().collect();
    let mut steps = 0;
    for (index, event) in trace.iter().enumerate() {
        let at = |reason: String| {
            Err(Refused {
                index,
                event: Some(event.clone()),
                reason,
            })
        };
        let node = |id: NodeId| usize::from(id.0);
        match event {
            TraceEvent::Started(id, restored) => {
                let i = node(*id);
                if i >= count {
                    return at(format!("{id} is no node of a cluster of {nodes}"));
                }
                if started[i] {
                    // A crash and restart: the model restores what the node
                    // asked to persist; the driver restored what was durable.
                    let asked = state.servers[i].storage;
                    if durable[i] != asked || *restored != asked {
                        return at(format!(
                            "restarted with {restored:?}, durable {:?}, but its last persist asked for {asked:?}",
                            durable[i]
                        ));
                    }
                    state = model
                        .next_state(&state, Action::Restart(*id))
                        .unwrap_or(state);
                    ever_sent.extend(state.network.iter());
                } else if *restored != state.servers[i].storage {
                    return at(format!(
                        "started with {restored:?}, but a new node starts with {:?}",
                        state.servers[i].storage
                    ));
                }
                started[i] = true;
                awaiting_start[i] = true;
            }
            TraceEvent::Stepped {
                id,
                before,
                input,
                after,
            } => {
                let i = node(*id);
                if i >= count || !started[i] {
                    return at(format!("{id} stepped before it started"));
                }
                if before
                    .as_ref()
                    .is_some_and(|b| **b != state.servers[i].node)
                {
                    return at(format!(
                        "stepped from a node the model does not hold: {:?}",
                        state.servers[i].node
                    ));
                }
                let action = match *input {
                    // The model's start (or restart) already took this step.
                    Input::Start if awaiting_start[i] => None,
                    Input::Start => return at("a start without a restart".to_owned()),
                    Input::Receive { from, message } => {
                        let envelope = Envelope {
                            from,
                            to: *id,
                            message,
                        };
                        if !ever_sent.contains(&envelope) {
                            return at("received a message no node sent".to_owned());
                        }
                        Some(Action::Deliver(envelope))
                    }
                    Input::Timeout(timer) => {
                        if !state.servers[i].armed.is_armed(timer) {
                            return at(format!("the {timer} timer fired, but it is not armed"));
                        }
                        Some(Action::Fire(*id, timer))
                    }
                    Input::TransferLeadership { to } => Some(Action::Transfer(*id, to)),
                };
                awaiting_start[i] = false;
                if let Some(action) = action {
                    state = model.next_state(&state, action).unwrap_or(state);
                    ever_sent.extend(state.network.iter());
                }
                if !after.matches(&state.servers[i].node) {
                    return at(format!(
                        "ended as {after:?}, the model's step as {:?}",
                        state.servers[i].node
                    ));
                }
                if let Some((invariant, detail)) = state.violations.iter().next() {
                    return at(format!("{invariant}: {detail}"));
                }
                steps += 1;
            }
            TraceEvent::Saved(id, hard_state) => {
                let i = node(*id);
                if i >= count {
                    return at(format!("{id} is no node of a cluster of {nodes}"));
                }
                durable[i] = *hard_state;
            }
            TraceEvent::Sent(from, to, message) => {
                let i = node(*from);
                if i >= count {
                    return at(format!("{from} is no node of a cluster of {nodes}"));
                }
                let envelope = Envelope {
                    from: *from,
                    to: *to,
                    message: *message,
                };
                if !ever_sent.contains(&envelope) {
                    return at("sent a message no step of the model sent".to_owned());
                }
                let current = state.servers[i].node.hard_state();
                if durable[i] != current {
                    return at(format!(
                        "sent while its state {current:?} was not durable (durable: {:?})",
                        durable[i]
                    ));
                }
            }
        }
    }
    Ok(steps)
}
