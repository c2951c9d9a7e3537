//! What every run checks: one "always" property per modelled invariant of
//! [`raft_election::invariants`], the liveness property decided without
//! timers ([`SETTLES_ON_THE_LEADER`]; the one with timers is in
//! `liveness.rs`), and the reachability properties that show a green run is
//! not vacuous.

use crate::{ClusterState, ELECTS_A_LEADER, ElectionModel, NetworkKind};
use raft_election::invariants::Invariant;
use raft_election::{Envelope, Input, Message, Node, NodeId, Output, Role, Term};
use stateright::Property;
use std::collections::BTreeMap;

/// The reachability ("sometimes") properties of every run: each shows a
/// green run is not vacuous.
pub const REACHABILITY: [&str; 4] = [
    "a leader is elected",
    "a split vote happens",
    "a leader is replaced",
    "a stale leader steps down",
];

/// The liveness property the model decides (see
/// [`ElectionModel::settles_on_the_leader`]): an "always" property, checked on
/// the duplicating network, where nothing in flight is ever lost.
pub const SETTLES_ON_THE_LEADER: &str = "delivering every message settles on the leader";

/// The reachability property of each election feature, in
/// [`Features::NAMES`](raft_election::Features::NAMES) order: checked when that feature is on.
pub const FEATURE_REACHABILITY: [&str; 4] = [
    "a pre-vote fails, a later one wins",
    "a leader steps down by CheckQuorum",
    "a RequestVote meets a lease",
    "a leadership transfer completes",
];

/// Whether this model checks `invariant`: every one but the leader lease's.
/// The model has no clock, so no lease; the lease is checked over real time
/// by the timed simulator (`raft_election_sim::timed`, `lease-runs`).
#[must_use]
pub fn is_modelled(invariant: Invariant) -> bool {
    invariant != Invariant::OneLeaseHolder
}

impl ElectionModel {
    /// Every reachability property this model checks: [`REACHABILITY`], then
    /// [`FEATURE_REACHABILITY`] of each feature that is on.
    #[must_use]
    pub fn reachability(&self) -> Vec<&'static str> {
        let features = self.bounds.features.switches();
        REACHABILITY
            .into_iter()
            .chain(
                FEATURE_REACHABILITY
                    .into_iter()
                    .zip(features)
                    .filter_map(|(name, on)| on.then_some(name)),
            )
            .collect()
    }

    /// Every property this model checks
    /// ([`Model::properties`](stateright::Model::properties)): one per
    /// modelled invariant, the two liveness properties, [`REACHABILITY`],
    /// then [`FEATURE_REACHABILITY`] of each feature that is on.
    pub(crate) fn every_property(&self) -> Vec<Property<Self>> {
        let mut properties: Vec<Property<Self>> = invariant_properties();
        properties.push(Property::always(SETTLES_ON_THE_LEADER, |m, s| {
            m.settles_on_the_leader(s)
        }));
        properties.push(Property::always(ELECTS_A_LEADER, |m, s| {
            m.elects_a_leader_once_settled(s)
        }));
        properties.extend([
            Property::sometimes(REACHABILITY[0], |_, s| leader_elected(s)),
            Property::sometimes(REACHABILITY[1], |_, s| split_vote(s)),
            Property::sometimes(REACHABILITY[2], |_, s| leader_replaced(s)),
            Property::sometimes(REACHABILITY[3], |_, s| stale_leader_stepped_down(s)),
        ]);
        let features: [Property<Self>; 4] = [
            Property::sometimes(FEATURE_REACHABILITY[0], |_, s: &ClusterState| {
                s.servers
                    .iter()
                    .any(|s| s.retried_pre_vote && s.node.role() == Role::Candidate)
            }),
            Property::sometimes(FEATURE_REACHABILITY[1], |_, s| {
                stepped_down_by_check_quorum(s)
            }),
            Property::sometimes(FEATURE_REACHABILITY[2], |m, s| {
                request_vote_meets_lease(m, s)
            }),
            Property::sometimes(FEATURE_REACHABILITY[3], |_, s| transfer_completed(s)),
        ];
        properties.extend(
            features
                .into_iter()
                .zip(self.bounds.features.switches())
                .filter_map(|(property, on)| on.then_some(property)),
        );
        properties
    }

    /// The liveness check: if a node leads the highest term of `state`, then
    /// delivering every message in flight, again and again, with no timer
    /// firing and no crash, ends in a state where every node of the highest
    /// term follows whoever leads it (the same leader, or the target of a
    /// transfer that completed meanwhile).
    /// The leader's first heartbeats are in flight from its election on (on
    /// the duplicating network nothing leaves), so a correct core always
    /// gets there; a rule that leaves a node of the term campaigning, or
    /// following no one, does not. Decided per state: when every node of the
    /// term already follows, nothing needs delivering.
    #[must_use]
    pub fn settles_on_the_leader(&self, state: &ClusterState) -> bool {
        if self.bounds.network != NetworkKind::Duplicating {
            return true;
        }
        let state = &*self.everyone_up(state);
        let nodes = || state.servers.iter().map(|s| &s.node);
        let Some((term, leader)) = leader_of_highest_term(nodes()) else {
            return true;
        };
        if all_follow(nodes(), term, leader) {
            return true;
        }
        // Each round delivers every message once; the bound only guards
        // against a core that never settles, which is itself a failure. Only
        // the nodes and the messages in flight decide what a delivery does,
        // so only they are copied: timers, storage and the history are not
        // read by `Node::step`, and every state on the way is one the search
        // reaches (and checks) anyway.
        let mut nodes: Vec<Node> = state.servers.iter().map(|s| s.node.clone()).collect();
        let mut network = state.network.clone();
        let mut outputs = Vec::new();
        let mut envelopes = Vec::new();
        let drops_spent = self.drops_spent();
        for _ in 0..MAX_SETTLING_ROUNDS {
            let mut changed = false;
            envelopes.clear();
            envelopes.extend(network.iter());
            for &envelope in &envelopes {
                // Only what is still in flight is delivered: a message this
                // round dropped as spent is lost, as in the model's steps.
                if !network.contains(&envelope) {
                    continue;
                }
                let to = usize::from(envelope.to.0);
                let mut node = nodes[to].clone();
                outputs.clear();
                let input = Input::Receive {
                    from: envelope.from,
                    message: envelope.message,
                };
                node.step(&self.configs[to], input, &mut outputs);
                let sends = outputs.iter().filter_map(|output| match *output {
                    Output::Send { to, message } => Some(Envelope {
                        from: envelope.to,
                        to,
                        message,
                    }),
                    _ => None,
                });
                let unchanged = node == nodes[to];
                if unchanged && sends.clone().all(|sent| network.contains(&sent)) {
                    continue;
                }
                // Something may change; a send dropped as spent at once
                // changes nothing, so the network is compared after. Where
                // nothing is dropped, sends only add.
                let network_before = drops_spent.then(|| network.clone());
                let in_flight = network.len();
                for sent in sends {
                    network.insert(&sent);
                }
                if !unchanged {
                    nodes[to] = node;
                    changed = true;
                }
                self.drop_spent(&mut network, |id| &nodes[usize::from(id.0)], None);
                changed |= match network_before {
                    Some(before) => network != before,
                    None => network.len() != in_flight,
                };
            }
            if !changed {
                // A transfer in flight may have moved leadership on to a later
                // term meanwhile: whoever leads the highest term at the end
                // must be followed by every node of it.
                return leader_of_highest_term(nodes.iter())
                    .is_none_or(|(term, leader)| all_follow(nodes.iter(), term, leader));
            }
        }
        false
    }
}

/// Rounds of delivering every message in flight before
/// [`ElectionModel::settles_on_the_leader`] gives up.
pub(crate) const MAX_SETTLING_ROUNDS: usize = 64;

/// The leader of the highest term any of `nodes` (in id order) is in, if
/// that term has one.
fn leader_of_highest_term<'a>(
    mut nodes: impl Iterator<Item = &'a Node> + Clone,
) -> Option<(Term, NodeId)> {
    let term = nodes.clone().map(Node::current_term).max()?;
    nodes
        .position(|node| node.current_term() == term && node.role() == Role::Leader)
        .map(|index| (term, NodeId(u8::try_from(index).unwrap_or(u8::MAX))))
}

/// Every one of `nodes` (in id order) in `term` is `leader` or follows it.
fn all_follow<'a>(nodes: impl Iterator<Item = &'a Node>, term: Term, leader: NodeId) -> bool {
    nodes.enumerate().all(|(index, node)| {
        node.current_term() != term
            || usize::from(leader.0) == index
            || (node.role() == Role::Follower && node.leader_id() == Some(leader))
    })
}

/// Invariant `I` of [`Invariant::ALL`] has not been broken so far.
fn holds<const I: usize>(_: &ElectionModel, state: &ClusterState) -> bool {
    !state.violations.contains(Invariant::ALL[I])
}

/// One "always" property per modelled invariant, named as the invariant.
fn invariant_properties() -> Vec<Property<ElectionModel>> {
    // The lease invariant is last in `Invariant::ALL`, so the indexes match.
    let conditions: [fn(&ElectionModel, &ClusterState) -> bool; Invariant::ALL.len() - 1] = [
        holds::<0>,
        holds::<1>,
        holds::<2>,
        holds::<3>,
        holds::<4>,
        holds::<5>,
        holds::<6>,
        holds::<7>,
        holds::<8>,
        holds::<9>,
        holds::<10>,
        holds::<11>,
    ];
    Invariant::ALL
        .iter()
        .filter(|&&invariant| is_modelled(invariant))
        .zip(conditions)
        .map(|(invariant, condition)| Property::always(invariant.name(), condition))
        .collect()
}

/// Some node has become leader.
fn leader_elected(state: &ClusterState) -> bool {
    !state.history.leaders().is_empty()
}

/// A split vote (§5.2: "votes could be split so that no candidate obtains a
/// majority"): a term that ended without a leader (every node has moved past
/// it) in which two different nodes campaigned, and a later term that elected
/// a leader. A lone candidate whose timer fires again before any vote arrives
/// also leaves a leaderless term behind, but it is no split.
///
/// Who campaigned is read from the network rather than recorded: a candidate
/// votes for itself and asks every other voter in the same step (§5.2), and on
/// the duplicating network a message never leaves the set, so its `RequestVote`s
/// are exactly the campaigns so far. On the lossy network some may be gone, so
/// a split is seen only while both requests are still in flight: missed
/// sometimes, never claimed falsely. A ghost record would split states equal
/// in everything else and change the pinned state counts.
fn split_vote(state: &ClusterState) -> bool {
    let leaders = state.history.leaders();
    let Some((&last_led, _)) = leaders.last_key_value() else {
        return false;
    };
    let lowest = state
        .servers
        .iter()
        .map(|s| s.node.current_term())
        .min()
        .unwrap_or_default();
    let mut first_candidate: BTreeMap<Term, NodeId> = BTreeMap::new();
    state.network.iter().any(|envelope| {
        let Message::RequestVote {
            term, candidate_id, ..
        } = envelope.message
        else {
            return false;
        };
        let ended_leaderless = term < lowest && term < last_led && !leaders.contains_key(&term);
        ended_leaderless
            && envelope.from == candidate_id
            && *first_candidate.entry(term).or_insert(candidate_id) != candidate_id
    })
}

/// A node that led a term has moved on to a later one without ever crashing.
/// A leader's election timeout is ignored, so only a message with a higher
/// term can have moved it (Figure 2: it converts to follower). Read from the
/// state rather than recorded, so no ghost bit splits otherwise equal states.
fn stale_leader_stepped_down(state: &ClusterState) -> bool {
    state.crashes == 0
        && state
            .history
            .leaders()
            .iter()
            .any(|(&term, leader)| state.servers[usize::from(leader.0)].node.current_term() > term)
}

/// Two different nodes led two different terms.
fn leader_replaced(state: &ClusterState) -> bool {
    let mut leaders = state.history.leaders().values();
    leaders
        .next()
        .is_some_and(|&first| leaders.any(|&other| other != first))
}

/// A node that led its current term is a follower in it, and no node ever
/// crashed (a restart also makes a leader a follower of its term): only
/// CheckQuorum steps a leader down without a higher term.
fn stepped_down_by_check_quorum(state: &ClusterState) -> bool {
    state.crashes == 0
        && state.history.leaders().iter().any(|(&term, leader)| {
            let node = &state.servers[usize::from(leader.0)].node;
            node.current_term() == term && node.role() == Role::Follower
        })
}

/// A RequestVote of a higher term, without the transfer flag, is in flight to
/// a node that would ignore it under its lease (§4.2.3): a leader, or a
/// follower in its lease. Delivering it changes nothing, so the checker never
/// records the delivery as a step; this is the state in which it happens.
fn request_vote_meets_lease(model: &ElectionModel, state: &ClusterState) -> bool {
    model.bounds.features.lease_guarded_votes
        && state.network.iter().any(|envelope| {
            let Message::RequestVote {
                term,
                leadership_transfer: false,
                ..
            } = envelope.message
            else {
                return false;
            };
            let node = &state.servers[usize::from(envelope.to.0)].node;
            term > node.current_term() && (node.role() == Role::Leader || node.in_lease())
        })
}

/// A node leads a term it campaigned for on a TimeoutNow: its RequestVote
/// of that term carries the transfer flag (only such a campaign sets it).
/// Read from the network, so on the lossy network a transfer whose requests
/// were all delivered is missed, never claimed falsely.
fn transfer_completed(state: &ClusterState) -> bool {
    let leaders = state.history.leaders();
    state.network.iter().any(|envelope| {
        let Message::RequestVote {
            term,
            candidate_id,
            leadership_transfer: true,
            ..
        } = envelope.message
        else {
            return false;
        };
        leaders.get(&term) == Some(&candidate_id)
    })
}
