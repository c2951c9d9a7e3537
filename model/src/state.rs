//! One state of the cluster: each node as its driver sees it ([`Server`]),
//! the messages in flight, the ghost history and what the step into it broke.
//! Equality and hashing are written out, the cheap fields compared first.

use crate::{Network, SharedHistory};
use raft_election::invariants::{Invariant, Violation};
use raft_election::{HardState, Node, Timer};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

/// The timers a node has armed, one bit per [`Timer`] (at its
/// [`Timer::index`]). Firing disarms; the node re-arms through
/// [`Output::SetTimer`](raft_election::Output::SetTimer) if it wants to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Armed(u8);

const _: () = assert!(Timer::ALL.len() <= u8::BITS as usize, "one bit per timer");

impl Armed {
    pub(crate) fn set(&mut self, timer: Timer, armed: bool) {
        let bit = 1 << timer.index();
        if armed {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
    }

    /// Whether `timer` is armed.
    #[must_use]
    pub fn is_armed(self, timer: Timer) -> bool {
        self.0 & (1 << timer.index()) != 0
    }

    /// The armed timers, in [`Timer::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Timer> {
        Timer::ALL
            .into_iter()
            .filter(move |&timer| self.is_armed(timer))
    }
}

/// One node as its driver sees it: the core's state, its stable storage and
/// its armed timers. Its id is its position in [`ClusterState::servers`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Server {
    /// The core's state.
    pub node: Node,
    /// The last hard state the node asked to persist: all a crash keeps.
    pub storage: HardState,
    /// Armed timers.
    pub armed: Armed,
    /// Ghost, with Pre-Vote: this node's campaign under way (as pre-candidate
    /// or candidate) began with a pre-vote round that failed (timed out), for
    /// the reachability property "a pre-vote fails, a later one wins". No
    /// node keeps this, and nothing else shows it: a failed round leaves no
    /// trace. Kept per node and only for the campaign, so it splits few
    /// states.
    pub retried_pre_vote: bool,
    /// Crashed and not restarted yet: it receives nothing and no timer of
    /// it fires. Always false with the one-step-restarts reduction on
    /// (the default), where a crash and its restart are one step.
    pub down: bool,
}

/// Broken invariants, each with the first detail reported.
///
/// Only *which* invariants are broken is part of the state: equality and
/// hashing ignore the details (kept for the trace, which replays them), so
/// paths that break the same invariant in differently worded ways do not
/// split the state space.
#[derive(Clone, Debug, Default)]
pub struct Violations(BTreeMap<Invariant, String>);

impl Violations {
    /// Records `violation` unless its invariant is already broken.
    pub fn record(&mut self, violation: Violation) {
        self.0
            .entry(violation.invariant)
            .or_insert(violation.detail);
    }

    /// Whether `invariant` has been broken.
    #[must_use]
    pub fn contains(&self, invariant: Invariant) -> bool {
        self.0.contains_key(&invariant)
    }

    /// Broken invariants with their first detail, in [`Invariant::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Invariant, &str)> {
        self.0
            .iter()
            .map(|(&invariant, detail)| (invariant, detail.as_str()))
    }
}

impl PartialEq for Violations {
    fn eq(&self, other: &Self) -> bool {
        self.0.keys().eq(other.0.keys())
    }
}

impl Eq for Violations {}

impl Hash for Violations {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for invariant in self.0.keys() {
            invariant.hash(state);
        }
    }
}

/// One state of the whole cluster. Its `Debug` is the compact form the
/// Explorer shows ([`compact_state`](crate::compact_state)).
#[derive(Clone, Eq)]
pub struct ClusterState {
    /// Node `n{i}` is `servers[i]`.
    pub servers: Vec<Server>,
    /// Messages in flight.
    pub network: Network,
    /// Ghost facts about the past for the cluster-wide invariants, shared
    /// between a state and its successors until a step teaches it something.
    pub history: SharedHistory,
    /// The invariants the step into this state broke. Empty unless the core
    /// (or the model) has a bug.
    pub violations: Violations,
    /// Crash-restarts so far.
    pub crashes: u8,
    /// Leadership-transfer requests so far.
    pub transfers: u8,
    /// Ghost, outside the state's identity (equality and hashing ignore
    /// it): the messages a reduction dropped on the way here as ones their
    /// receiver ignores. Each is probed again whenever its receiver steps,
    /// and put back in flight if the receiver would now act on it
    /// (`ElectionModel::recall_spent`): a core that ignores a message when
    /// it is dropped but acts on it later is still caught.
    pub spent: Network,
}

/// Field by field, as derived, but the cheap ones first: the checker
/// compares every successor with its state, and the two differ more often
/// in what is in flight (one sorted vector) than in the nodes.
impl PartialEq for ClusterState {
    fn eq(&self, other: &Self) -> bool {
        // Destructured, so a new field cannot be left out.
        let Self {
            servers,
            network,
            history,
            violations,
            crashes,
            transfers,
            spent: _,
        } = self;
        *crashes == other.crashes
            && *transfers == other.transfers
            && *network == other.network
            && *history == other.history
            && *violations == other.violations
            && *servers == other.servers
    }
}

/// Every field, in declaration order, as derived; written out beside the
/// hand-written equality so that the two cover the same fields.
impl Hash for ClusterState {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let Self {
            servers,
            network,
            history,
            violations,
            crashes,
            transfers,
            spent: _,
        } = self;
        servers.hash(state);
        network.hash(state);
        history.hash(state);
        violations.hash(state);
        crashes.hash(state);
        transfers.hash(state);
    }
}
