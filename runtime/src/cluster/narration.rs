//! Narration: each step told in the paper's words, with `tracing`, for a
//! person learning Raft ("n1 timed out in t1 as follower, campaigns for t2").

use super::event_log::display_option;
use raft_election::{Input, Node, NodeId, Role, Timer};
use std::collections::BTreeSet;
use tracing::info;

/// Tells a person learning Raft what the step did, in the paper's words.
pub(crate) fn narrate(
    id: NodeId,
    before: &Node,
    input: &Input,
    from: Option<NodeId>,
    after: &Node,
) {
    let (old_term, term) = (before.current_term(), after.current_term());
    let (old_role, role) = (before.role(), after.role());
    let sender = display_option(from);
    let what = match input {
        Input::Receive { message, .. } => message.name(),
        Input::Start | Input::Timeout(_) => "message",
    };
    if *input == Input::Timeout(Timer::Election) && role == Role::Candidate {
        info!("{id} timed out in {old_term} as {old_role}, campaigns for {term}");
    }
    if role == Role::Leader && (old_role != Role::Leader || old_term != term) {
        // The votes are those the candidate held plus the one that just arrived.
        let mut votes = if old_term == term {
            before.votes_granted().clone()
        } else {
            BTreeSet::new()
        };
        votes.insert(id);
        votes.extend(from);
        let votes: Vec<String> = votes.iter().map(NodeId::to_string).collect();
        info!("{id} becomes leader of {term} (votes {})", votes.join(","));
    }
    if role == Role::Follower && old_role != Role::Follower {
        if term > old_term {
            info!("{id} steps down: saw {term} from {sender}");
        } else {
            info!("{id} steps down: {sender} leads {term}");
        }
    } else if role == Role::Follower && term > old_term {
        info!("{id} learns of {term} from {sender}'s {what}");
    }
    if let Some(candidate) = new_vote(id, before, after) {
        info!("{id} votes for {candidate} in {term}");
    }
    if let Some(leader) = new_leader(id, before, after) {
        info!("{id} follows {leader} in {term}");
    }
}

/// The candidate `id` granted its vote to in this step, if it did.
pub(crate) fn new_vote(id: NodeId, before: &Node, after: &Node) -> Option<NodeId> {
    let changed =
        after.voted_for() != before.voted_for() || after.current_term() != before.current_term();
    after.voted_for().filter(|&c| c != id && changed)
}

/// The leader `id` learned of in this step, if it did (not itself).
pub(crate) fn new_leader(id: NodeId, before: &Node, after: &Node) -> Option<NodeId> {
    let changed =
        after.leader_id() != before.leader_id() || after.current_term() != before.current_term();
    after.leader_id().filter(|&l| l != id && changed)
}
