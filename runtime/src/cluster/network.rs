//! The in-process network: bounded Tokio channels stand for RPCs, the link
//! table ([`super::links`]) decides which messages pass, and each node's
//! [`ChannelTransport`] is its [`Transport`].
//!
//! Every send is a `try_send`: a driver never waits on a peer. A full inbox,
//! a cut link or a crashed receiver loses the message, which Raft tolerates.

use super::links::{Links, Route};
use super::pacing::{DeadlineTable, Stamped};
use crate::sync::{Arc, AtomicU64, Mutex, Ordering, bump, lock};
use crate::transport::{Delivery, Transport};
use raft_election::{Envelope, Message, NodeId};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Capacity of each node's inbox. In one round a node receives at most one
/// request and one response per peer (28 with 15 voters); 64 also absorbs the
/// burst a healed partition releases, and anything beyond is lost, as Raft allows.
pub const INBOX_CAPACITY: usize = 64;

/// At most this many delayed messages wait in a cluster at once; a send that
/// would delay one more is lost (`QueueFull`). A limit on the tasks a
/// delaying link can leave behind.
pub const MAX_DELAYED: usize = 4_096;

/// How many messages met each fate since the cluster started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Placed in an inbox (each copy of a duplicate counts).
    pub delivered: u64,
    /// Lost to a cut link, a partition or a disconnected node.
    pub cut: u64,
    /// Lost because sender or receiver was down.
    pub down: u64,
    /// Lost to a full inbox, or to the bound on delayed messages.
    pub queue_full: u64,
    /// Lost by a lossy link.
    pub dropped: u64,
    /// Extra copies made by duplicating links.
    pub duplicated: u64,
    /// Copies held back by delaying links.
    pub delayed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    cut: AtomicU64,
    down: AtomicU64,
    queue_full: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    delayed: AtomicU64,
}

impl Counters {
    fn count(&self, delivery: Delivery) {
        let counter = match delivery {
            Delivery::Delivered => &self.delivered,
            Delivery::Cut => &self.cut,
            Delivery::Down => &self.down,
            Delivery::QueueFull => &self.queue_full,
            Delivery::Dropped => &self.dropped,
        };
        bump(counter);
    }

    fn snapshot(&self) -> NetworkStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        NetworkStats {
            delivered: read(&self.delivered),
            cut: read(&self.cut),
            down: read(&self.down),
            queue_full: read(&self.queue_full),
            dropped: read(&self.dropped),
            duplicated: read(&self.duplicated),
            delayed: read(&self.delayed),
        }
    }
}

/// The inboxes of every node, the link table and the pacing's deadline table
/// (whose epoch the stamps count from).
#[derive(Debug)]
pub(crate) struct Network {
    links: Links,
    /// The sending side of each node's inbox, by id; `None` while it is down.
    /// A vector, not a map: every send looks here, and indexing touches one
    /// cache line where a tree walk touched several.
    inboxes: Mutex<Vec<Option<mpsc::Sender<Stamped>>>>,
    counters: Counters,
    /// Copies a delaying link holds, each a task that delivers it after its
    /// delay; aborted on shutdown and `crash_all`, so none outlives its
    /// cluster.
    delayed: Mutex<JoinSet<()>>,
    deadlines: Arc<DeadlineTable>,
}

impl Network {
    pub(crate) fn new(nodes: u8, seed: u64) -> Self {
        Self {
            links: Links::new(nodes, seed),
            inboxes: Mutex::new((0..nodes).map(|_| None).collect()),
            counters: Counters::default(),
            delayed: Mutex::new(JoinSet::new()),
            deadlines: Arc::new(DeadlineTable::new(nodes)),
        }
    }

    pub(crate) fn links(&self) -> &Links {
        &self.links
    }

    /// A fresh bounded inbox for `id`, replacing any earlier one (a restart).
    fn open_inbox(&self, id: NodeId) -> mpsc::Receiver<Stamped> {
        let (sender, receiver) = mpsc::channel(INBOX_CAPACITY);
        let mut inboxes = lock(&self.inboxes);
        let slot = inboxes.get_mut(usize::from(id.0));
        debug_assert!(slot.is_some(), "{id} is not a member");
        if let Some(slot) = slot {
            *slot = Some(sender);
        }
        receiver
    }

    /// Drops the sending side of `id`'s inbox, so it is closed for good: its
    /// driver's transport reports it closed once it is drained.
    pub(crate) fn close_inbox(&self, id: NodeId) {
        if let Some(slot) = lock(&self.inboxes).get_mut(usize::from(id.0)) {
            *slot = None;
        }
        // A node that is gone will not fire: nobody waits for it.
        self.deadlines.set(id, None);
    }

    /// Routes one message through the link table and reports its fate (the
    /// first copy's, for a duplicated one). `at` is when the sender's step
    /// was due ([`Stamped`]).
    /// An associated function, not a method: a delayed copy needs the `Arc`
    /// (loom's `Arc` cannot be a receiver).
    fn send(this: &Arc<Self>, from: NodeId, to: NodeId, message: Message, at: Instant) -> Delivery {
        let envelope = Envelope { from, to, message };
        let at = this.deadlines.nanos(at);
        match this.links.route(from, to) {
            Route::Lost(delivery) => {
                this.counters.count(delivery);
                delivery
            }
            Route::Deliver { delay, duplicate } => {
                let first = Self::deliver_after(this, delay, envelope, at);
                if let Some(delay) = duplicate {
                    bump(&this.counters.duplicated);
                    Self::deliver_after(this, delay, envelope, at);
                }
                first
            }
        }
    }

    /// Places `envelope` in its receiver's inbox now, or after `delay`.
    fn deliver_after(this: &Arc<Self>, delay: Duration, envelope: Envelope, at: u64) -> Delivery {
        let delay_nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        let stamped = Stamped {
            at: at.saturating_add(delay_nanos),
            from: envelope.from,
            message: envelope.message,
        };
        let to = envelope.to;
        if delay.is_zero() {
            return this.deliver(to, stamped);
        }
        let mut delayed = lock(&this.delayed);
        // Forget the copies already delivered, then keep to the bound.
        while delayed.try_join_next().is_some() {}
        if delayed.len() >= MAX_DELAYED {
            this.counters.count(Delivery::QueueFull);
            return Delivery::QueueFull;
        }
        bump(&this.counters.delayed);
        let network = Arc::clone(this);
        delayed.spawn(async move {
            tokio::time::sleep(delay).await;
            network.deliver(to, stamped);
        });
        Delivery::Delivered
    }

    fn deliver(&self, to: NodeId, stamped: Stamped) -> Delivery {
        let delivery = match lock(&self.inboxes)
            .get(usize::from(to.0))
            .and_then(Option::as_ref)
            .map(|s| s.try_send(stamped))
        {
            Some(Ok(())) => Delivery::Delivered,
            Some(Err(mpsc::error::TrySendError::Full(_))) => Delivery::QueueFull,
            Some(Err(mpsc::error::TrySendError::Closed(_))) | None => Delivery::Down,
        };
        self.counters.count(delivery);
        delivery
    }

    /// Drops every copy a delaying link still holds.
    pub(crate) fn abort_delayed(&self) {
        lock(&self.delayed).abort_all();
    }

    pub(crate) fn stats(&self) -> NetworkStats {
        self.counters.snapshot()
    }
}

/// One node's end of the in-process network: its inbox, and the instant its
/// messages are stamped with. Its pacer ([`super::pacing::ClusterPacer`])
/// reads the stamps and sets that instant.
#[derive(Debug)]
pub(crate) struct ChannelTransport {
    id: NodeId,
    network: Arc<Network>,
    inbox: mpsc::Receiver<Stamped>,
    /// When the step sending the next messages was due, as the pacer says;
    /// `None` ([`super::Pacing::Plain`]): when they are sent.
    due: Option<Instant>,
}

impl ChannelTransport {
    /// Opens a fresh inbox for `id` (replacing a crashed incarnation's).
    pub(crate) fn open(network: Arc<Network>, id: NodeId) -> Self {
        let inbox = network.open_inbox(id);
        Self {
            id,
            network,
            inbox,
            due: None,
        }
    }

    /// The cluster's deadline table, for the node's pacer.
    pub(super) fn deadlines(&self) -> &Arc<DeadlineTable> {
        &self.network.deadlines
    }

    /// Stamps the next messages sent as due at `due`.
    pub(super) fn stamp_sends(&mut self, due: Instant) {
        self.due = Some(due);
    }

    /// The inbox's head with its stamp, without waiting.
    pub(super) fn try_recv(&mut self) -> Result<Stamped, mpsc::error::TryRecvError> {
        self.inbox.try_recv()
    }

    /// The next message with its stamp, or `None` once the inbox is closed
    /// and drained. Cancel-safe, as the channel's `recv` is.
    pub(super) async fn recv_stamped(&mut self) -> Option<Stamped> {
        self.inbox.recv().await
    }
}

impl Transport for ChannelTransport {
    fn send(&mut self, to: NodeId, message: Message) -> Delivery {
        let at = self.due.unwrap_or_else(Instant::now);
        Network::send(&self.network, self.id, to, message, at)
    }

    async fn recv(&mut self) -> Option<(NodeId, Message)> {
        let stamped = self.recv_stamped().await?;
        Some(stamped.input())
    }
}

// Under `--cfg loom` these types are loom's, usable only inside `loom::model`.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::cluster::links::LinkFaults;
    use raft_election::Term;

    fn heartbeat() -> Message {
        Message::AppendEntries {
            term: Term(1),
            leader_id: NodeId(0),
            round: 0,
        }
    }

    fn network() -> Arc<Network> {
        Arc::new(Network::new(2, 0))
    }

    #[tokio::test]
    async fn a_full_inbox_loses_the_message_instead_of_blocking_the_sender() {
        let network = network();
        let mut receiver = ChannelTransport::open(Arc::clone(&network), NodeId(1));
        let mut sender = ChannelTransport::open(Arc::clone(&network), NodeId(0));
        let fates: Vec<Delivery> = (0..=INBOX_CAPACITY)
            .map(|_| sender.send(NodeId(1), heartbeat()))
            .collect();
        assert!(
            fates[..INBOX_CAPACITY]
                .iter()
                .all(|&d| d == Delivery::Delivered)
        );
        assert_eq!(fates[INBOX_CAPACITY], Delivery::QueueFull);
        let stats = network.stats();
        assert_eq!((stats.delivered, stats.queue_full), (64, 1));
        // Taking one message makes room again.
        assert_eq!(receiver.recv().await, Some((NodeId(0), heartbeat())));
        assert_eq!(sender.send(NodeId(1), heartbeat()), Delivery::Delivered);
    }

    #[tokio::test]
    async fn a_closed_inbox_reports_the_receiver_down() {
        let network = network();
        let mut sender = ChannelTransport::open(Arc::clone(&network), NodeId(0));
        let receiver = ChannelTransport::open(Arc::clone(&network), NodeId(1));
        drop(receiver);
        assert_eq!(sender.send(NodeId(1), heartbeat()), Delivery::Down);
        let mut receiver = ChannelTransport::open(Arc::clone(&network), NodeId(1));
        network.close_inbox(NodeId(1));
        assert_eq!(sender.send(NodeId(1), heartbeat()), Delivery::Down);
        assert_eq!(network.stats().down, 2);
        assert_eq!(receiver.recv().await, None, "closed for good");
    }

    #[tokio::test(start_paused = true)]
    async fn a_delayed_duplicate_arrives_twice_and_later() {
        let network = network();
        let faults = LinkFaults {
            duplicate: 1.0,
            delay: Some((Duration::from_millis(10), Duration::from_millis(20))),
            ..LinkFaults::default()
        };
        network.links().set(NodeId(0), NodeId(1), faults).unwrap();
        let mut sender = ChannelTransport::open(Arc::clone(&network), NodeId(0));
        let mut receiver = ChannelTransport::open(Arc::clone(&network), NodeId(1));
        let start = Instant::now();
        assert_eq!(sender.send(NodeId(1), heartbeat()), Delivery::Delivered);
        for _ in 0..2 {
            assert_eq!(receiver.recv().await, Some((NodeId(0), heartbeat())));
            assert!(start.elapsed() >= Duration::from_millis(10));
        }
        let stats = network.stats();
        assert_eq!(
            (stats.delivered, stats.duplicated, stats.delayed),
            (2, 1, 2)
        );
    }
}
