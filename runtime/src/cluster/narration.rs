//! Narration: each step told in the paper's words, with `tracing`, for a
//! person learning Raft ("n1 timed out in t1 as follower, campaigns for t2").

use super::event_log::display_option;
use raft_election::{Change, Input, Message, Node, NodeId, Role, Timer};
use std::collections::BTreeSet;
use tracing::info;

/// Tells a person learning Raft what the step did, in the paper's words.
pub(crate) fn narrate(
    id: NodeId,
    before: &Node,
    input: &Input,
    from: Option<NodeId>,
    after: &Node,
    change: &Change,
) {
    let (old_term, term) = (before.current_term(), after.current_term());
    let (old_role, role) = (before.role(), after.role());
    let sender = display_option(from);
    let what = match input {
        Input::Receive { message, .. } => message.name(),
        Input::Start | Input::Timeout(_) | Input::TransferLeadership { .. } => "message",
    };
    let on_timeout_now = matches!(
        input,
        Input::Receive {
            message: Message::TimeoutNow { .. },
            ..
        }
    );
    if *input == Input::Timeout(Timer::Election) && role == Role::Candidate {
        info!("{id} timed out in {old_term} as {old_role}, campaigns for {term}");
    }
    if *input == Input::Timeout(Timer::Election) && role == Role::PreCandidate {
        info!("{id} timed out in {old_term} as {old_role}, asks for pre-votes");
    }
    if old_role == Role::PreCandidate && role == Role::Candidate {
        info!("{id} won its pre-vote, campaigns for {term}");
    }
    if on_timeout_now && role == Role::Candidate && old_role != Role::Candidate {
        info!("{id} campaigns for {term} at once: {sender} hands over its leadership");
    }
    if let Input::TransferLeadership { to } = input {
        if after.transfer_target() == Some(*to) && before.transfer_target() != Some(*to) {
            info!("{id} hands its leadership to {to}: first asks for its log");
        }
    }
    if role == Role::Leader
        && before.transfer_target().is_some()
        && after.transfer_target().is_none()
    {
        let target = display_option(before.transfer_target());
        if *input == Input::Timeout(Timer::Transfer) {
            info!("{id} abandons the transfer to {target}: not done within an election timeout");
        } else {
            info!("{id} refuses the transfer to {target}: its log is behind");
        }
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
        } else if *input == Input::Timeout(Timer::CheckQuorum) {
            info!(
                "{id} steps down: no majority heard within the minimum election timeout (CheckQuorum)"
            );
        } else if after.leader_id().is_none() {
            info!("{id} gives up its pre-vote: it votes for {sender} in {term}");
        } else {
            info!("{id} steps down: {sender} leads {term}");
        }
    } else if role == Role::Follower && term > old_term {
        info!("{id} learns of {term} from {sender}'s {what}");
    }
    if let Some(candidate) = change.vote.filter(|&c| c != id) {
        info!("{id} votes for {candidate} in {term}");
    }
    if let Some(leader) = change.leader.filter(|&l| l != id) {
        info!("{id} follows {leader} in {term}");
    }
}
