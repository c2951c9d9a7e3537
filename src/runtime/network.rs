//! The simulated network: bounded Tokio channels stand for RPCs, and a small
//! link table decides which messages may pass.
//!
//! Every send is a `try_send`: a driver never waits on a peer. A full inbox,
//! a partition or a dead receiver loses the message, which Raft tolerates
//! (§5.1: "servers retry RPCs if they do not receive a response in a timely
//! manner"; here the next timeout or heartbeat is the retry).

use super::events::Observer;
use super::sync::{Arc, AtomicU64, Mutex, Ordering, lock};
use crate::message::Message;
use crate::sim::Envelope;
use crate::types::{NodeId, Term};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Capacity of each node's inbox. In one round a node receives at most one
/// request and one response per peer (28 with 15 voters); 64 also absorbs the
/// burst a healed partition releases, and anything beyond is lost, as Raft allows.
pub const INBOX_CAPACITY: usize = 64;

/// What the network did with one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Delivery {
    /// Placed in the receiver's inbox.
    Delivered,
    /// Sender and receiver are on different sides of a partition.
    Partitioned,
    /// The receiver (or the sender) is killed.
    Down,
    /// The receiver's inbox was full; the message is lost.
    InboxFull,
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Delivered => "delivered",
            Self::Partitioned => "lost: partitioned",
            Self::Down => "lost: node down",
            Self::InboxFull => "lost: inbox full",
        })
    }
}

/// A fault control that does not apply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// The node is not a member of the cluster.
    #[error("{id} is not a member of this cluster")]
    UnknownNode {
        /// The node.
        id: NodeId,
    },
    /// Killing a node that is already down.
    #[error("{id} is already down")]
    AlreadyDown {
        /// The node.
        id: NodeId,
    },
    /// Restarting a node that is running.
    #[error("{id} is already running")]
    AlreadyUp {
        /// The node.
        id: NodeId,
    },
    /// A node listed in two partition groups.
    #[error("{id} is in two partition groups")]
    InTwoGroups {
        /// The node.
        id: NodeId,
    },
}

/// Which links carry messages: the partition table and the kill flags.
///
/// Shared by every driver (which asks [`Links::route`] on each send) and the
/// cluster handle (which changes it). One mutex keeps each change atomic: once
/// [`Links::kill`] or [`Links::partition`] returns, no later `route` call sees
/// the old table.
#[derive(Debug)]
pub struct Links {
    nodes: u8,
    state: Mutex<LinkState>,
}

#[derive(Debug, Default)]
struct LinkState {
    /// Side of each node while partitioned; `None` when healed. A node that no
    /// group lists is alone on its own side.
    sides: Option<BTreeMap<NodeId, usize>>,
    down: BTreeSet<NodeId>,
}

impl Links {
    /// Every link open, every node up, for a cluster `n0..n{nodes-1}`.
    #[must_use]
    pub fn new(nodes: u8) -> Self {
        Self {
            nodes,
            state: Mutex::new(LinkState::default()),
        }
    }

    fn check_member(&self, id: NodeId) -> Result<(), FaultError> {
        if id.0 < self.nodes {
            Ok(())
        } else {
            Err(FaultError::UnknownNode { id })
        }
    }

    /// What happens to a message from `from` to `to` right now.
    #[must_use]
    pub fn route(&self, from: NodeId, to: NodeId) -> Delivery {
        let state = lock(&self.state);
        if state.down.contains(&from) || state.down.contains(&to) {
            return Delivery::Down;
        }
        if let Some(sides) = &state.sides {
            let (a, b) = (sides.get(&from), sides.get(&to));
            if a.is_none() || a != b {
                return Delivery::Partitioned;
            }
        }
        Delivery::Delivered
    }

    /// Splits the cluster into `groups`: messages pass only inside a group.
    /// A node no group lists is cut off from everyone.
    pub fn partition(&self, groups: &[BTreeSet<NodeId>]) -> Result<(), FaultError> {
        let mut sides = BTreeMap::new();
        for (side, group) in groups.iter().enumerate() {
            for &id in group {
                self.check_member(id)?;
                if sides.insert(id, side).is_some() {
                    return Err(FaultError::InTwoGroups { id });
                }
            }
        }
        lock(&self.state).sides = Some(sides);
        Ok(())
    }

    /// Reopens every link (kill flags stay).
    pub fn heal(&self) {
        lock(&self.state).sides = None;
    }

    /// Marks `id` down: from now on nothing reaches it or leaves it.
    pub fn kill(&self, id: NodeId) -> Result<(), FaultError> {
        self.check_member(id)?;
        if lock(&self.state).down.insert(id) {
            Ok(())
        } else {
            Err(FaultError::AlreadyDown { id })
        }
    }

    /// Marks `id` up again.
    pub fn revive(&self, id: NodeId) -> Result<(), FaultError> {
        self.check_member(id)?;
        if lock(&self.state).down.remove(&id) {
            Ok(())
        } else {
            Err(FaultError::AlreadyUp { id })
        }
    }

    /// Whether `id` is up.
    #[must_use]
    pub fn is_up(&self, id: NodeId) -> bool {
        id.0 < self.nodes && !lock(&self.state).down.contains(&id)
    }
}

/// How many messages met each fate since the cluster started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Placed in an inbox.
    pub delivered: u64,
    /// Lost to a partition.
    pub partitioned: u64,
    /// Lost because sender or receiver was down.
    pub down: u64,
    /// Lost to a full inbox.
    pub inbox_full: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    partitioned: AtomicU64,
    down: AtomicU64,
    inbox_full: AtomicU64,
}

impl Counters {
    fn count(&self, delivery: Delivery) {
        let counter = match delivery {
            Delivery::Delivered => &self.delivered,
            Delivery::Partitioned => &self.partitioned,
            Delivery::Down => &self.down,
            Delivery::InboxFull => &self.inbox_full,
        };
        // A statistic: no other memory depends on it.
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> NetworkStats {
        NetworkStats {
            delivered: self.delivered.load(Ordering::Relaxed),
            partitioned: self.partitioned.load(Ordering::Relaxed),
            down: self.down.load(Ordering::Relaxed),
            inbox_full: self.inbox_full.load(Ordering::Relaxed),
        }
    }
}

/// A message in an inbox, with the instant its sender's step was due: a
/// receiver orders it against its own timer deadlines by this, not by when
/// this process got round to running either.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stamped {
    pub(crate) at: Instant,
    pub(crate) envelope: Envelope,
}

/// The inboxes of every node plus the link table.
#[derive(Debug)]
pub(crate) struct Network {
    links: Links,
    /// The sending side of each node's inbox, by id; `None` while it is down.
    /// A vector, not a map: every send looks here, and indexing touches one
    /// cache line where a tree walk touched several.
    inboxes: Mutex<Vec<Option<mpsc::Sender<Stamped>>>>,
    counters: Counters,
    observer: Arc<Observer>,
    /// Each node's armed election deadline, in nanoseconds after `epoch`
    /// ([`NO_DEADLINE`] when unarmed): see [`Self::overdue_before`].
    deadlines: Vec<AtomicU64>,
    epoch: Instant,
}

/// An election timer that is not armed.
const NO_DEADLINE: u64 = u64::MAX;

impl Network {
    pub(crate) fn new(nodes: u8, observer: Arc<Observer>) -> Self {
        Self {
            links: Links::new(nodes),
            inboxes: Mutex::new((0..nodes).map(|_| None).collect()),
            counters: Counters::default(),
            observer,
            deadlines: (0..nodes).map(|_| AtomicU64::new(NO_DEADLINE)).collect(),
            epoch: Instant::now(),
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(nanos).unwrap_or(NO_DEADLINE - 1)
    }

    /// Publishes `id`'s election deadline (`None`: not armed).
    pub(crate) fn set_election_deadline(&self, id: NodeId, deadline: Option<Instant>) {
        if let Some(slot) = self.deadlines.get(usize::from(id.0)) {
            let nanos = deadline.map_or(NO_DEADLINE, |at| self.nanos(at));
            // Only a hint for ordering timers; no other memory depends on it.
            slot.store(nanos, Ordering::Relaxed);
        }
    }

    /// Whether another node's election deadline came strictly before `due`,
    /// a deadline of `id`'s that has passed, and that node has not fired yet
    /// (firing disarms it). The nodes of a cluster share this process: when
    /// it runs late, their deadlines pass together, and the node due first
    /// must campaign first, as it would on its own machine. Equal deadlines
    /// are no order: both campaign (§5.2). Strict order also means no two
    /// nodes can wait for each other.
    pub(crate) fn overdue_before(&self, id: NodeId, due: Instant) -> bool {
        let due = self.nanos(due);
        self.deadlines.iter().enumerate().any(|(index, slot)| {
            let other = slot.load(Ordering::Relaxed);
            index != usize::from(id.0) && other < due
        })
    }

    pub(crate) fn links(&self) -> &Links {
        &self.links
    }

    /// A fresh bounded inbox for `id`, replacing any earlier one (a restart).
    pub(crate) fn open_inbox(&self, id: NodeId) -> mpsc::Receiver<Stamped> {
        let (sender, receiver) = mpsc::channel(INBOX_CAPACITY);
        let mut inboxes = lock(&self.inboxes);
        let slot = inboxes.get_mut(usize::from(id.0));
        debug_assert!(slot.is_some(), "{id} is not a member");
        if let Some(slot) = slot {
            *slot = Some(sender);
        }
        receiver
    }

    /// Drops the sending side of `id`'s inbox, so it is closed for good.
    pub(crate) fn close_inbox(&self, id: NodeId) {
        if let Some(slot) = lock(&self.inboxes).get_mut(usize::from(id.0)) {
            *slot = None;
        }
        // A node that is gone will not fire: nobody waits for it.
        self.set_election_deadline(id, None);
    }

    /// Sends without waiting and reports (and records) what happened.
    /// `term` is the sender's current term, for the event log; `at` is when
    /// the sender's step was due ([`Stamped`]).
    pub(crate) fn send(
        &self,
        from: NodeId,
        term: Term,
        to: NodeId,
        message: Message,
        at: Instant,
    ) -> Delivery {
        let mut delivery = self.links.route(from, to);
        if delivery == Delivery::Delivered {
            let envelope = Envelope { from, to, message };
            let stamped = Stamped { at, envelope };
            delivery = match lock(&self.inboxes)
                .get(usize::from(to.0))
                .and_then(Option::as_ref)
                .map(|s| s.try_send(stamped))
            {
                Some(Ok(())) => Delivery::Delivered,
                Some(Err(mpsc::error::TrySendError::Full(_))) => Delivery::InboxFull,
                Some(Err(mpsc::error::TrySendError::Closed(_))) | None => Delivery::Down,
            };
        }
        self.counters.count(delivery);
        self.observer.record_send(from, term, to, message, delivery);
        delivery
    }

    pub(crate) fn stats(&self) -> NetworkStats {
        self.counters.snapshot()
    }
}

// Under `--cfg loom` these types are loom's, usable only inside `loom::model`;
// checks of these types under loom must run inside `loom::model` instead.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn set(ids: &[u8]) -> BTreeSet<NodeId> {
        ids.iter().copied().map(NodeId).collect()
    }

    #[test]
    fn a_partition_passes_messages_inside_a_group_only() {
        let links = Links::new(5);
        links.partition(&[set(&[0, 1]), set(&[2, 3])]).unwrap();
        assert_eq!(links.route(NodeId(0), NodeId(1)), Delivery::Delivered);
        assert_eq!(links.route(NodeId(2), NodeId(3)), Delivery::Delivered);
        assert_eq!(links.route(NodeId(1), NodeId(2)), Delivery::Partitioned);
        // n4 is in no group: alone.
        assert_eq!(links.route(NodeId(4), NodeId(0)), Delivery::Partitioned);
        assert_eq!(links.route(NodeId(0), NodeId(4)), Delivery::Partitioned);
        links.heal();
        assert_eq!(links.route(NodeId(1), NodeId(2)), Delivery::Delivered);
    }

    #[test]
    fn a_killed_node_neither_sends_nor_receives_until_revived() {
        let links = Links::new(3);
        links.kill(NodeId(1)).unwrap();
        assert_eq!(links.route(NodeId(0), NodeId(1)), Delivery::Down);
        assert_eq!(links.route(NodeId(1), NodeId(2)), Delivery::Down);
        assert_eq!(
            links.kill(NodeId(1)),
            Err(FaultError::AlreadyDown { id: NodeId(1) })
        );
        links.revive(NodeId(1)).unwrap();
        assert_eq!(links.route(NodeId(0), NodeId(1)), Delivery::Delivered);
    }

    fn heartbeat() -> Message {
        Message::AppendEntries {
            term: Term(1),
            leader_id: NodeId(0),
        }
    }

    #[test]
    fn a_full_inbox_loses_the_message_instead_of_blocking_the_sender() {
        let config = crate::Config::cluster(2, crate::Timing::default()).unwrap();
        let network = Network::new(
            2,
            Arc::new(Observer::new(&config[0], crate::runtime::Observation::Full)),
        );
        let mut inbox = network.open_inbox(NodeId(1));
        let fates: Vec<Delivery> = (0..=INBOX_CAPACITY)
            .map(|_| network.send(NodeId(0), Term(1), NodeId(1), heartbeat(), Instant::now()))
            .collect();
        assert!(
            fates[..INBOX_CAPACITY]
                .iter()
                .all(|&d| d == Delivery::Delivered)
        );
        assert_eq!(fates[INBOX_CAPACITY], Delivery::InboxFull);
        let stats = network.stats();
        assert_eq!((stats.delivered, stats.inbox_full), (64, 1));
        // Draining one message makes room again.
        assert!(inbox.try_recv().is_ok());
        assert_eq!(
            network.send(NodeId(0), Term(1), NodeId(1), heartbeat(), Instant::now()),
            Delivery::Delivered
        );
    }

    #[test]
    fn a_closed_inbox_reports_the_receiver_down() {
        let config = crate::Config::cluster(2, crate::Timing::default()).unwrap();
        let network = Network::new(
            2,
            Arc::new(Observer::new(&config[0], crate::runtime::Observation::Full)),
        );
        let inbox = network.open_inbox(NodeId(1));
        drop(inbox);
        assert_eq!(
            network.send(NodeId(0), Term(1), NodeId(1), heartbeat(), Instant::now()),
            Delivery::Down
        );
        let _inbox = network.open_inbox(NodeId(1));
        network.close_inbox(NodeId(1));
        assert_eq!(
            network.send(NodeId(0), Term(1), NodeId(1), heartbeat(), Instant::now()),
            Delivery::Down
        );
        assert_eq!(network.stats().down, 2);
    }

    #[test]
    fn fault_controls_refuse_unknown_nodes_and_nodes_in_two_groups() {
        let links = Links::new(3);
        assert_eq!(
            links.kill(NodeId(3)),
            Err(FaultError::UnknownNode { id: NodeId(3) })
        );
        assert_eq!(
            links.partition(&[set(&[0, 1]), set(&[1, 2])]),
            Err(FaultError::InTwoGroups { id: NodeId(1) })
        );
        assert_eq!(
            links.partition(&[set(&[0, 7])]),
            Err(FaultError::UnknownNode { id: NodeId(7) })
        );
    }
}
