//! The default portfolio's configurations for the features' decisions on
//! unequal logs over two terms reach what they are there for: in the
//! transfer's, an acknowledgement of the target reaches its leader with a
//! log behind the leader's (a refusal) and with one strictly ahead (a
//! TimeoutNow to a better log); in Pre-Vote's, a PreVote of the second
//! term, whose sender's term is not its log's, reaches a voter that only
//! the logs decide, both ways. Each is read from one reachable state: the
//! message in flight and its receiver, before the delivery.

use super::model::every_state;
use raft_election::{Envelope, LogSummary, Message, Node, Role, Term};
use raft_election_model::portfolio::{Entry, portfolio};
use raft_election_model::{ClusterState, ElectionModel};
use stateright::Model;

/// The portfolio's configuration whose label starts with `label`.
fn configuration(label: &str) -> Entry {
    portfolio()
        .into_iter()
        .find(|entry| entry.name.starts_with(label))
        .unwrap_or_else(|| panic!("no configuration {label}"))
}

/// §5.4.1, restated: whether `a` is at least as up to date as `b`.
fn at_least_as_up_to_date(a: LogSummary, b: LogSummary) -> bool {
    (a.last_log_term, a.last_log_index) >= (b.last_log_term, b.last_log_index)
}

/// Every message in flight of every reachable state of `entry`, with its
/// receiver as it is in that state.
fn deliveries(entry: Entry) -> Vec<(Envelope, Node)> {
    let model = ElectionModel::new(entry.bounds).expect("valid bounds");
    every_state(&model)
        .into_iter()
        .filter(|state| model.within_boundary(state))
        .flat_map(|state: ClusterState| {
            let servers = state.servers;
            state
                .network
                .iter()
                .map(|envelope| (envelope, servers[usize::from(envelope.to.0)].node.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_transfer_configuration_decides_on_a_target_behind_and_on_one_ahead() {
    let (mut behind, mut ahead) = (false, false);
    for (envelope, leader) in deliveries(configuration("leadership-transfer, 3n")) {
        let Message::AppendEntriesResponse {
            term,
            success: true,
            last_log_index,
            last_log_term,
            ..
        } = envelope.message
        else {
            continue;
        };
        let from_target = leader.role() == Role::Leader
            && leader.current_term() == term
            && leader.transfer_target() == Some(envelope.from);
        if !from_target {
            continue;
        }
        let target = LogSummary {
            last_log_index,
            last_log_term,
        };
        behind |= !at_least_as_up_to_date(target, leader.log());
        ahead |= target != leader.log() && at_least_as_up_to_date(target, leader.log());
    }
    assert!(behind, "no target behind its leader acknowledged");
    assert!(ahead, "no target ahead of its leader acknowledged");
}

#[test]
fn the_pre_vote_configuration_asks_for_the_second_term_where_the_logs_decide() {
    let (mut refused, mut granted) = (false, false);
    for (envelope, voter) in deliveries(configuration("pre-vote, 3n")) {
        let Message::PreVote {
            term,
            last_log_index,
            last_log_term,
            ..
        } = envelope.message
        else {
            continue;
        };
        // The sender is in t1 and its log ends in t0; the voter neither
        // leads, nor heard a leader, nor voted in t2.
        let free = term == Term(2)
            && last_log_term < Term(1)
            && voter.role() != Role::Leader
            && !voter.in_lease()
            && voter.current_term() < term;
        if !free {
            continue;
        }
        let candidate = LogSummary {
            last_log_index,
            last_log_term,
        };
        let up_to_date = at_least_as_up_to_date(candidate, voter.log());
        refused |= !up_to_date;
        granted |= up_to_date && candidate != voter.log();
    }
    assert!(refused, "no PreVote of t2 met a voter whose log is ahead");
    assert!(granted, "no PreVote of t2 from a log ahead met a voter");
}
