//! Human-readable actions, states and counterexample traces.

use crate::{Action, ClusterState, ElectionModel};
use raft_election::{NodeId, Role, Timer};
use stateright::Path;
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
        Action::Timeout(id, Timer::Election) => format!("{id}'s election timer fires"),
        Action::Timeout(id, Timer::Heartbeat) => format!("{id}'s heartbeat timer fires"),
        Action::Restart(id) => format!("{id} crashes and restarts from its stable storage"),
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
        if node.role() == Role::Candidate {
            let votes: Vec<String> = node.votes_granted().iter().map(|v| v.to_string()).collect();
            let _ = write!(text, "; votes {{{}}}", votes.join(", "));
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

/// A numbered trace from the initial state to the last state of `path`.
#[must_use]
pub fn format_trace(_model: &ElectionModel, path: &Path<ClusterState, Action>) -> String {
    let mut text = String::new();
    let steps = path.clone().into_vec();
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
        // Name each invariant on the step that first broke it.
        for (invariant, detail) in after.violations.iter() {
            if !before.violations.contains(invariant) {
                let _ = writeln!(text, "      >>> VIOLATED {invariant}: {detail}");
            }
        }
    }
    text
}
