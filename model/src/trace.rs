//! Human-readable actions, states and counterexample traces.

use crate::symmetry::canonical_order;
use crate::{Action, ClusterState, ElectionModel};
use raft_election::Envelope;
use raft_election::{NodeId, Role};
use stateright::{Model, Path};
use std::fmt::Write;

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
