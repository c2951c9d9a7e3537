//! The status board: the role, term and leader of every live node, which
//! tests and the demo await conditions on.

use crate::sync::{Mutex, lock};
use raft_election::{Config, Node, NodeId, Role, Term};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One live node as last reported by its driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// Follower, candidate or leader.
    pub role: Role,
    /// Current term.
    pub term: Term,
    /// The leader it knows for `term` (itself when leader).
    pub leader: Option<NodeId>,
    /// Whom it voted for in `term`.
    pub voted_for: Option<NodeId>,
    /// A leader's leadership transfer in progress: its target.
    pub transfer_target: Option<NodeId>,
}

impl NodeStatus {
    pub(crate) fn of(node: &Node) -> Self {
        Self {
            role: node.role(),
            term: node.current_term(),
            leader: node.leader_id(),
            voted_for: node.voted_for(),
            transfer_target: node.transfer_target(),
        }
    }
}

/// The status of every live node at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statuses {
    voters: u8,
    quorum: usize,
    live: BTreeMap<NodeId, NodeStatus>,
}

impl Statuses {
    /// The status of `id`, or `None` if it is down.
    #[must_use]
    pub fn get(&self, id: NodeId) -> Option<&NodeStatus> {
        self.live.get(&id)
    }

    /// Live nodes and their statuses, by id.
    #[must_use]
    pub fn live(&self) -> &BTreeMap<NodeId, NodeStatus> {
        &self.live
    }

    /// Live nodes that believe they lead, with their terms. More than one is
    /// possible across terms (a partitioned old leader), never within one.
    #[must_use]
    pub fn leaders(&self) -> Vec<(NodeId, Term)> {
        self.live
            .iter()
            .filter(|(_, s)| s.role == Role::Leader)
            .map(|(&id, s)| (id, s.term))
            .collect()
    }

    /// A leader that a majority of the cluster (itself included) follows in
    /// its term: the leader a client could actually use.
    #[must_use]
    pub fn acknowledged_leader(&self) -> Option<(NodeId, Term)> {
        let quorum = self.quorum;
        self.leaders().into_iter().find(|&(leader, term)| {
            let followers = self
                .live
                .values()
                .filter(|s| s.term == term && s.leader == Some(leader))
                .count();
            followers >= quorum
        })
    }

    /// The leader that every live node follows in its term: the cluster has
    /// settled, no node is still catching up on the election (a node that
    /// missed it would raise its term on the next heartbeat, which a count of
    /// elections must not mistake for a new one).
    #[must_use]
    pub fn leader_known_to_all(&self) -> Option<(NodeId, Term)> {
        let (leader, term) = self.acknowledged_leader()?;
        self.live
            .values()
            .all(|s| s.term == term && s.leader == Some(leader))
            .then_some((leader, term))
    }
}

impl fmt::Display for Statuses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for id in (0..self.voters).map(NodeId) {
            if id.0 > 0 {
                f.write_str(", ")?;
            }
            match self.live.get(&id) {
                None => write!(f, "{id} down")?,
                Some(s) => {
                    write!(f, "{id} {} {}", s.role, s.term)?;
                    if let (Role::Follower, Some(leader)) = (s.role, s.leader) {
                        write!(f, " (leader {leader})")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The latest status of every node, written by drivers and read by waiters.
///
/// A crashed node is off the board, and a late report from its task (one that
/// was mid-step when crashed) is ignored, so the board never shows a dead node.
#[derive(Debug)]
pub(crate) struct StatusBoard {
    voters: u8,
    quorum: usize,
    state: Mutex<BoardState>,
}

#[derive(Debug, Default)]
struct BoardState {
    live: BTreeMap<NodeId, NodeStatus>,
    down: BTreeSet<NodeId>,
}

impl StatusBoard {
    /// An empty board for the cluster `config` belongs to (any member's config).
    #[must_use]
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            voters: u8::try_from(config.voters().len()).unwrap_or(u8::MAX),
            quorum: config.quorum(),
            state: Mutex::new(BoardState::default()),
        }
    }

    /// Records `status` of `id` unless `id` is down; returns whether it changed.
    pub(crate) fn update(&self, id: NodeId, status: NodeStatus) -> bool {
        let mut state = lock(&self.state);
        if state.down.contains(&id) {
            return false;
        }
        state.live.insert(id, status) != Some(status)
    }

    /// Takes `id` off the board until [`Self::revive`].
    pub(crate) fn crash(&self, id: NodeId) {
        let mut state = lock(&self.state);
        state.live.remove(&id);
        state.down.insert(id);
    }

    /// Puts `id` back, with `status`.
    pub(crate) fn revive(&self, id: NodeId, status: NodeStatus) {
        let mut state = lock(&self.state);
        state.down.remove(&id);
        state.live.insert(id, status);
    }

    /// A consistent copy of the board.
    #[must_use]
    pub(crate) fn snapshot(&self) -> Statuses {
        Statuses {
            voters: self.voters,
            quorum: self.quorum,
            live: lock(&self.state).live.clone(),
        }
    }
}
