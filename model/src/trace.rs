//! Human-readable actions, states and counterexample traces, and their
//! pictures: a path as a message sequence diagram (the Explorer's SVG and
//! `check --trace-svg`).

use crate::symmetry::canonical_order;
use crate::{Action, ClusterState, ElectionModel};
use raft_election::Envelope;
use raft_election::{NodeId, Role, Timer};
use raft_election_timeline::{Axis, Event, EventKind, Fate, Fault, MessageClass, Note, Timeline};
use stateright::{Model, Path};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write};

/// One action as a sentence: who did what, which message from whom to whom.
#[must_use]
pub fn describe_action(action: &Action) -> String {
    match action {
        Action::Deliver(envelope) => format!(
            "{} receives from {}: {}",
            envelope.to, envelope.from, envelope.message
        ),
        Action::Drop(envelope) => format!(
            "the network loses {} -> {}: {}",
            envelope.from, envelope.to, envelope.message
        ),
        Action::Fire(id, timer) => format!("{id}'s {timer} timer fires"),
        Action::Restart(id) => format!("{id} crashes and restarts from its stable storage"),
        Action::Crash(id) => format!("{id} crashes and stays down"),
        Action::Transfer(id, to) => format!("{id} is asked to hand its leadership to {to}"),
    }
}

/// Every node on one line each: role, term, vote, known leader, storage,
/// then the number of messages in flight.
#[must_use]
pub fn describe_state(state: &ClusterState) -> String {
    let mut text = String::new();
    for (index, server) in state.servers.iter().enumerate() {
        let node = &server.node;
        let id = NodeId(u8::try_from(index).unwrap_or(u8::MAX));
        let name = |id: Option<NodeId>| id.map_or_else(|| "-".to_owned(), |id| id.to_string());
        let _ = write!(
            text,
            "      {id}: {:<9} {} voted {} leader {} {}; stored {} voted {}",
            node.role().to_string(),
            node.current_term(),
            name(node.voted_for()),
            name(node.leader_id()),
            node.log(),
            server.storage.current_term,
            name(server.storage.voted_for),
        );
        if matches!(node.role(), Role::PreCandidate | Role::Candidate) {
            let votes: Vec<String> = node.votes_granted().iter().map(|v| v.to_string()).collect();
            let _ = write!(text, "; votes {{{}}}", votes.join(", "));
        }
        if node.in_lease() {
            text.push_str("; in lease");
        }
        if server.down {
            text.push_str("; DOWN");
        }
        if let Some(target) = node.transfer_target() {
            let _ = write!(text, "; transferring to {target}");
        }
        text.push('\n');
    }
    let _ = writeln!(
        text,
        "      {} messages in flight, {} crashes",
        state.network.len(),
        state.crashes
    );
    text
}

/// `action` with every node id renamed by `rename`.
fn rename_action(action: Action, rename: impl Fn(NodeId) -> NodeId) -> Action {
    let envelope = |e: Envelope| Envelope {
        from: rename(e.from),
        to: rename(e.to),
        message: e.message.map_ids(&rename),
    };
    match action {
        Action::Deliver(e) => Action::Deliver(envelope(e)),
        Action::Drop(e) => Action::Drop(envelope(e)),
        Action::Fire(id, timer) => Action::Fire(rename(id), timer),
        Action::Restart(id) => Action::Restart(rename(id)),
        Action::Crash(id) => Action::Crash(rename(id)),
        Action::Transfer(id, to) => Action::Transfer(rename(id), rename(to)),
    }
}

/// The steps of `path` with the ids the run started with.
///
/// With symmetry reduction every state of `path` is in canonical form, so a
/// node's id may change from one step to the next. This replays the actions
/// on the uncanonicalized states, renaming each action back, so that `n1` is
/// the same node throughout the trace.
fn with_stable_ids(
    model: &ElectionModel,
    path: &Path<ClusterState, Action>,
) -> Vec<(ClusterState, Option<Action>)> {
    let steps = path.clone().into_vec();
    if !model.symmetry() {
        return steps;
    }
    let raw = model.clone().without_symmetry();
    let Some(mut state) = raw.init_states().pop() else {
        return steps;
    };
    let mut stable = Vec::with_capacity(steps.len());
    for (_, action) in steps {
        // Canonical id `c` is the node `order[c]` of the stable state.
        let order = canonical_order(&state);
        let action = action.map(|a| rename_action(a, |c| NodeId(order_id(&order, c))));
        let next = action.and_then(|a| raw.next_state(&state, a));
        stable.push((state.clone(), action));
        match next {
            Some(next) => state = next,
            None => break,
        }
    }
    stable
}

/// The last state of `path` with the ids the run started with (as
/// [`format_trace`] prints it), for explaining what happens after it.
#[must_use]
pub fn last_state_with_stable_ids(
    model: &ElectionModel,
    path: &Path<ClusterState, Action>,
) -> Option<ClusterState> {
    with_stable_ids(model, path).pop().map(|(state, _)| state)
}

fn order_id(order: &[usize], canonical: NodeId) -> u8 {
    u8::try_from(order[usize::from(canonical.0)]).expect("a cluster has at most 255 nodes")
}

/// A numbered trace from the initial state to the last state of `path`,
/// naming each invariant on the step that broke it.
#[must_use]
pub fn format_trace(model: &ElectionModel, path: &Path<ClusterState, Action>) -> String {
    let mut text = String::new();
    let steps = with_stable_ids(model, path);
    let Some((initial, _)) = steps.first() else {
        return text;
    };
    let _ = write!(text, "   0. initial state\n{}", describe_state(initial));
    for (number, window) in steps.windows(2).enumerate() {
        let (before, action) = &window[0];
        let (after, _) = &window[1];
        if let Some(action) = action {
            let _ = write!(
                text,
                "{:>4}. {}\n{}",
                number + 1,
                describe_action(action),
                describe_state(after)
            );
        }
        for (invariant, detail) in after.violations.iter() {
            if !before.violations.contains(invariant) {
                let _ = writeln!(text, "      >>> VIOLATED {invariant}: {detail}");
            }
        }
    }
    text
}

/// `id` as `n0`, or `-` for nobody.
fn name(id: Option<NodeId>) -> String {
    id.map_or_else(|| "-".to_owned(), |id| id.to_string())
}

/// The state as the Explorer shows it: one line per node (`n0 leader t2
/// voted n0 log 1@t0 ...`), the leaders so far, the messages in flight
/// (each through its `Display`), crashes (and, given the bound, how many
/// are left) and any broken invariant.
#[must_use]
pub fn compact_state(state: &ClusterState, max_crashes: Option<u8>) -> String {
    let mut text = String::new();
    for (index, server) in state.servers.iter().enumerate() {
        let node = &server.node;
        let id = NodeId(u8::try_from(index).unwrap_or(u8::MAX));
        let log = node.log();
        let _ = write!(
            text,
            "{id} {:<9} {} voted {} log {}@{}",
            node.role().to_string(),
            node.current_term(),
            name(node.voted_for()),
            log.last_log_index,
            log.last_log_term
        );
        match node.role() {
            Role::Follower => {
                if let Some(leader) = node.leader_id() {
                    let _ = write!(text, " follows {leader}");
                }
            }
            role @ (Role::PreCandidate | Role::Candidate) => {
                let votes: Vec<String> =
                    node.votes_granted().iter().map(|v| v.to_string()).collect();
                let kind = if role == Role::PreCandidate {
                    "pre-votes"
                } else {
                    "votes"
                };
                let _ = write!(text, " {kind} {{{}}}", votes.join(","));
            }
            Role::Leader => {}
        }
        let timers: Vec<String> = server.armed.iter().map(|timer| timer.to_string()).collect();
        if !timers.is_empty() {
            let _ = write!(text, " timer {}", timers.join("+"));
        }
        if server.storage != node.hard_state() {
            let _ = write!(
                text,
                " (stored {} voted {})",
                server.storage.current_term,
                name(server.storage.voted_for)
            );
        }
        text.push('\n');
    }
    let leaders: Vec<String> = state
        .history
        .leaders()
        .iter()
        .map(|(term, leader)| format!("{term} {leader}"))
        .collect();
    if !leaders.is_empty() {
        let _ = writeln!(text, "leaders so far: {}", leaders.join(", "));
    }
    let _ = writeln!(text, "in flight: {}", state.network.len());
    for envelope in state.network.iter() {
        let _ = writeln!(
            text,
            "  {} -> {} {}",
            envelope.from, envelope.to, envelope.message
        );
    }
    let _ = match max_crashes {
        Some(max) => writeln!(
            text,
            "crashes: {} so far, {} left",
            state.crashes,
            max.saturating_sub(state.crashes)
        ),
        None => writeln!(text, "crashes: {} so far", state.crashes),
    };
    for (invariant, detail) in state.violations.iter() {
        let _ = writeln!(text, "VIOLATED {invariant}: {detail}");
    }
    text
}

/// The Explorer prints a state with `{:#?}`: the compact form, not a dump of
/// every field.
impl fmt::Debug for ClusterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&compact_state(self, None))
    }
}

/// `path` as a message sequence diagram: a column per node, a row per step,
/// each delivered message an arrow from the step that sent it to the step
/// that delivered it, each action written beside its row, a broken
/// invariant in red. Ids are the ones the run started with.
#[must_use]
pub fn sequence_diagram(
    model: &ElectionModel,
    path: &Path<ClusterState, Action>,
    title: &str,
) -> Timeline {
    let steps = with_stable_ids(model, path);
    let nodes = (0..model.bounds().nodes).map(NodeId).collect();
    let mut timeline = Timeline::new(title, nodes, Axis::Steps);
    let Some((initial, _)) = steps.first() else {
        return timeline;
    };
    let mut events = Vec::new();
    let state_of = |server: &crate::Server| (server.node.role(), server.node.current_term());
    for (index, server) in initial.servers.iter().enumerate() {
        let (role, term) = state_of(server);
        let node = NodeId(u8::try_from(index).unwrap_or(u8::MAX));
        events.push(Event {
            at: 0.0,
            node,
            kind: EventKind::State { role, term },
        });
    }
    timeline.notes.push(Note {
        at: 0.0,
        text: "initial state".to_owned(),
        alarm: false,
    });
    // The step at which each message in flight was (last) sent.
    let mut sent_at: BTreeMap<Envelope, f64> = initial
        .network
        .iter()
        .map(|envelope| (envelope, 0.0))
        .collect();
    let mut delivered: BTreeSet<Envelope> = BTreeSet::new();
    let sent = |envelope: &Envelope, at: f64, fate: Fate| Event {
        at,
        node: envelope.from,
        kind: EventKind::Sent {
            to: envelope.to,
            message: envelope.message.to_string(),
            class: MessageClass::of(&envelope.message),
            fate,
        },
    };
    for (number, window) in steps.windows(2).enumerate() {
        let ((before, action), (after, _)) = (&window[0], &window[1]);
        let Some(action) = action else {
            continue;
        };
        let at = (number + 1) as f64;
        let mut note = describe_action(action);
        let mut alarm = false;
        for (invariant, detail) in after.violations.iter() {
            if !before.violations.contains(invariant) {
                let _ = write!(note, "; VIOLATED {invariant}: {detail}");
                alarm = true;
            }
        }
        timeline.notes.push(Note {
            at,
            text: note,
            alarm,
        });
        match *action {
            Action::Deliver(envelope) => {
                let from = sent_at.get(&envelope).copied().unwrap_or(at - 1.0);
                events.push(sent(&envelope, from, Fate::Delivered { at }));
                delivered.insert(envelope);
            }
            Action::Drop(envelope) => {
                let from = sent_at.get(&envelope).copied().unwrap_or(at - 1.0);
                let reason = "the network lost it".to_owned();
                events.push(sent(&envelope, from, Fate::Lost { at, reason }));
            }
            Action::Fire(node, Timer::Election) => events.push(Event {
                at,
                node,
                kind: EventKind::ElectionTimeout,
            }),
            // Other timers change only a role, drawn below; a transfer
            // request is in the step's note.
            Action::Fire(_, _) | Action::Transfer(_, _) => {}
            Action::Restart(node) | Action::Crash(node) => {
                let faults: &[Fault] = match action {
                    Action::Crash(_) => &[Fault::Crash],
                    _ if before.servers[usize::from(node.0)].down => &[Fault::Restart],
                    _ => &[Fault::Crash, Fault::Restart],
                };
                for &fault in faults {
                    events.push(Event {
                        at,
                        node,
                        kind: EventKind::Fault(fault),
                    });
                }
            }
        }
        for (index, (old, new)) in before.servers.iter().zip(&after.servers).enumerate() {
            let node = NodeId(u8::try_from(index).unwrap_or(u8::MAX));
            if state_of(old) != state_of(new)
                || matches!(*action, Action::Restart(n) | Action::Crash(n) if n == node)
            {
                let (role, term) = state_of(new);
                events.push(Event {
                    at,
                    node,
                    kind: EventKind::State { role, term },
                });
            }
        }
        for envelope in after.network.iter() {
            if !before.network.contains(&envelope) {
                sent_at.insert(envelope, at);
                delivered.remove(&envelope);
            }
        }
    }
    if let Some((last, _)) = steps.last() {
        for envelope in last.network.iter().filter(|e| !delivered.contains(e)) {
            let from = sent_at.get(&envelope).copied().unwrap_or(0.0);
            events.push(sent(&envelope, from, Fate::InFlight));
        }
    }
    timeline.events = events;
    timeline
}
