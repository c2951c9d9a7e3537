//! Symmetry reduction: ids are only names, so two cluster states that differ
//! by a permutation of ids behave alike and only one needs exploring.
//!
//! The representative sorts nodes by a key that mentions no id (term, role,
//! log, whether the vote, the known leader and a transfer target are the
//! node itself or another, how many votes or acknowledgements it counts, its
//! lease, timers, storage, a digest of its messages in flight), then renames
//! every id in the state to match the new positions with the core's
//! `map_ids`. Nodes with equal keys are ordered by trying each arrangement of
//! them and keeping the one whose renamed state hashes lowest, so the result
//! does not depend on which member of the symmetry class came in.

use crate::{ClusterState, Server};
use raft_election::NodeId;
use stateright::Representative;
use std::hash::{DefaultHasher, Hash, Hasher};

/// How an optional id relates to the node holding it, without naming it.
fn relation(holder: NodeId, id: Option<NodeId>) -> u8 {
    match id {
        None => 0,
        Some(id) if id == holder => 1,
        Some(_) => 2,
    }
}

/// The id-free part of a node's state, by which nodes are ordered.
type Key = (
    raft_election::Term,
    raft_election::Role,
    (raft_election::Term, u64),
    [u8; 4],
    (usize, usize, bool, bool),
    crate::Armed,
    raft_election::Term,
    u64,
);

fn key(state: &ClusterState, index: usize, signature: u64) -> Key {
    let holder = id_at(index);
    let server: &Server = &state.servers[index];
    let node = &server.node;
    let log = node.log();
    (
        node.current_term(),
        node.role(),
        (log.last_log_term, log.last_log_index),
        [
            relation(holder, node.voted_for()),
            relation(holder, node.leader_id()),
            relation(holder, server.storage.voted_for),
            relation(holder, node.transfer_target()),
        ],
        (
            node.votes_granted().len(),
            node.heard_from().len(),
            node.in_lease(),
            server.retried_pre_vote,
        ),
        server.armed,
        server.storage.current_term,
        signature,
    )
}

fn id_at(index: usize) -> NodeId {
    NodeId(u8::try_from(index).expect("a cluster has at most 255 nodes"))
}

/// `state` with node `order[i]` moved to position `i` and every id renamed.
pub(crate) fn permuted(state: &ClusterState, order: &[usize]) -> ClusterState {
    // `order[new] == old`; `renamed[old] == new`.
    let mut renamed = vec![NodeId(0); order.len()];
    for (new, &old) in order.iter().enumerate() {
        renamed[old] = id_at(new);
    }
    let rename = |id: NodeId| renamed[usize::from(id.0)];
    ClusterState {
        servers: order
            .iter()
            .map(|&old| {
                let server = &state.servers[old];
                let mut storage = server.storage;
                storage.voted_for = storage.voted_for.map(rename);
                Server {
                    node: server.node.map_ids(rename),
                    storage,
                    armed: server.armed,
                    retried_pre_vote: server.retried_pre_vote,
                    down: server.down,
                }
            })
            .collect(),
        network: state.network.map_ids(rename),
        history: state.history.renamed(&renamed),
        violations: state.violations.clone(),
        crashes: state.crashes,
        transfers: state.transfers,
        spent: state.spent.map_ids(rename),
    }
}

fn fingerprint(state: &ClusterState) -> u64 {
    let mut hasher = DefaultHasher::new();
    state.hash(&mut hasher);
    hasher.finish()
}

/// Every order of `order` that only rearranges runs of equal keys.
fn tie_breaks(order: &[usize], keys: &[Key]) -> Vec<Vec<usize>> {
    let mut orders = vec![order.to_vec()];
    let mut start = 0;
    while start < order.len() {
        let end = (start..order.len())
            .find(|&i| keys[order[i]] != keys[order[start]])
            .unwrap_or(order.len());
        if end - start > 1 {
            orders = orders
                .into_iter()
                .flat_map(|o| permutations_of_range(&o, start, end))
                .collect();
        }
        start = end;
    }
    orders
}

/// Every arrangement of `order[start..end]`, the rest fixed (Heap's algorithm
/// would do too; runs are at most a cluster long).
fn permutations_of_range(order: &[usize], start: usize, end: usize) -> Vec<Vec<usize>> {
    if end - start <= 1 {
        return vec![order.to_vec()];
    }
    let mut all = Vec::new();
    for pick in start..end {
        let mut next = order.to_vec();
        next.swap(start, pick);
        all.extend(permutations_of_range(&next, start + 1, end));
    }
    all
}

/// An order of the nodes that puts `state` in canonical form: node
/// `order[i]` goes to position `i` (see [`permuted`]).
pub(crate) fn canonical_order(state: &ClusterState) -> Vec<usize> {
    // The digest of a node's messages is the key's last part, so it only
    // decides between nodes equal in every other part: without such a tie
    // the order is the same without it, and the network is not read.
    let mut keys: Vec<Key> = (0..state.servers.len()).map(|i| key(state, i, 0)).collect();
    let mut order: Vec<usize> = (0..state.servers.len()).collect();
    order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
    if order.windows(2).all(|pair| keys[pair[0]] != keys[pair[1]]) {
        return order;
    }
    let signatures = state.network.signatures(state.servers.len());
    for (key, signature) in keys.iter_mut().zip(signatures) {
        key.7 = signature;
    }
    order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
    // Equal keys are rare (measured: 8k of 12.4M states on 3 nodes).
    if order.windows(2).all(|pair| keys[pair[0]] != keys[pair[1]]) {
        return order;
    }
    let mut candidates = tie_breaks(&order, &keys);
    if candidates.len() == 1 {
        return candidates.pop().expect("one order");
    }
    candidates
        .into_iter()
        .min_by_key(|order| fingerprint(&permuted(state, order)))
        .expect("at least one order")
}

/// Whether the nodes of `state` are in strictly increasing order of their
/// keys without the digest of their messages: then [`canonical_order`] is
/// the identity. Decided without an allocation: two states in three are
/// already in canonical form.
fn is_sorted_without_ties(state: &ClusterState) -> bool {
    (0..state.servers.len())
        .map(|index| key(state, index, 0))
        .is_sorted_by(|a, b| a < b)
}

/// `state` in canonical form, taken by value: most states are already in
/// it (two in three on 3 nodes) and are returned without a copy.
pub(crate) fn into_representative(state: ClusterState) -> ClusterState {
    if is_sorted_without_ties(&state) {
        return state;
    }
    let order = canonical_order(&state);
    if order.iter().enumerate().all(|(new, &old)| new == old) {
        return state;
    }
    permuted(&state, &order)
}

impl Representative for ClusterState {
    fn representative(&self) -> Self {
        into_representative(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bounds, ElectionModel};
    use stateright::Model;

    /// Every state up to `depth` steps from the start (a breadth-first walk).
    fn reachable(model: &ElectionModel, depth: usize) -> Vec<ClusterState> {
        let mut frontier = model.init_states();
        let mut all = frontier.clone();
        for _ in 0..depth {
            frontier = frontier.iter().flat_map(|s| model.next_states(s)).collect();
            all.extend(frontier.iter().cloned());
        }
        all
    }

    #[test]
    fn every_renaming_of_a_state_has_the_same_representative() {
        let mut bounds = Bounds::new(3);
        bounds.logs = vec![Default::default(); 3];
        let model = ElectionModel::new(bounds).unwrap();
        let orders = permutations_of_range(&[0, 1, 2], 0, 3);
        assert_eq!(orders.len(), 6);
        let states = reachable(&model, 5);
        assert!(states.len() > 1_000, "{} states", states.len());
        for state in states {
            let representative = state.representative();
            for order in &orders {
                let renamed = permuted(&state, order);
                assert_eq!(renamed.representative(), representative, "{order:?}");
            }
        }
    }

    #[test]
    fn a_renamed_state_is_renamed_back_by_the_inverse_order() {
        let model = ElectionModel::new(Bounds::new(3)).unwrap();
        let state = reachable(&model, 3).pop().unwrap();
        // [2, 0, 1] moves n2 to n0, n0 to n1, n1 to n2; [1, 2, 0] undoes it.
        assert_eq!(permuted(&permuted(&state, &[2, 0, 1]), &[1, 2, 0]), state);
        assert_ne!(permuted(&state, &[2, 0, 1]), state);
    }
}
