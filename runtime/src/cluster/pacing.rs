//! Pacing nodes that share one process as if each ran on its own machine.
//!
//! Every node of an in-process cluster is a task of one runtime. When the
//! process runs late, several nodes' deadlines pass together and each would
//! campaign at once, splitting votes that independent machines would not
//! split; and Tokio's millisecond timer fires two deadlines of the same
//! millisecond together. [`Pacing::Emulated`] restores the order independent
//! machines would see, with two devices that live here and nowhere else:
//!
//! - **sender stamps**: a message carries the instant its sender's step was
//!   due, and a receiver handles a message due before its own expired
//!   deadline first;
//! - **deferral**: a node whose election deadline passed lets a peer whose
//!   deadline passed earlier campaign first, for a bounded number of turns,
//!   reading the cluster's deadline table;
//!
//! and with the precise timers every pacer has ([`crate::pacer`]): for the
//! last [`crate::PRECISE_WINDOW`] before an election deadline the node watches the
//! clock instead of Tokio's timer.
//!
//! They decide only when an input is delivered, never a vote, role or term.
//! The driver never sees them: they are the way each node's pacer
//! ([`crate::Pacer`]) answers its driver, beside the channel transport.

use super::network::ChannelTransport;
use crate::pacer::{Independent, Pacer, Wake, Wakes, Woken, wait};
use crate::sync::{Arc, AtomicU64, Ordering};
use crate::timers::Timers;
use raft_election::{Message, NodeId, Timer};
use std::pin::{Pin, pin};
use std::time::Duration;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::time::{Instant, Sleep};

/// How the nodes of an in-process cluster are paced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pacing {
    /// As on separate machines with no help: each node races its inbox
    /// against its own deadlines on Tokio's millisecond timer. When the
    /// process runs late, deadlines that passed together fire together.
    Plain,
    /// Emulate independent machines (see the module documentation): sender
    /// stamps and deferral, and with `precise_timers` a clock watched for the
    /// last 2 ms before each election deadline: a busy core for that long per
    /// election timeout, nothing while heartbeats keep re-arming the timer.
    /// Precise timers are for a few clusters (tests, the demo, the failover
    /// benchmark); when thousands share a process their initial elections
    /// would spin together.
    Emulated {
        /// Watch the clock for the last [`crate::PRECISE_WINDOW`] before an election deadline.
        precise_timers: bool,
    },
}

impl Default for Pacing {
    /// Emulated independent machines, with precise timers.
    fn default() -> Self {
        Self::Emulated {
            precise_timers: true,
        }
    }
}

/// A message in an inbox, with the instant its sender's step was due (plus
/// its link's delay), in nanoseconds since the cluster started: under
/// [`Pacing::Emulated`] a receiver orders it against its own deadlines by
/// this, not by when this process got round to running either.
///
/// Small on purpose: Tokio keeps two blocks of 32 slots per inbox, so every
/// byte here is 64 bytes per node: no `Instant`, no receiver id, and packed
/// (41 bytes instead of 48). Fields are read by value, never borrowed.
#[derive(Clone, Copy, Debug)]
#[repr(C, packed)]
pub(crate) struct Stamped {
    pub(crate) at: u64,
    pub(crate) from: NodeId,
    pub(crate) message: Message,
}

impl Stamped {
    /// The sender and the message, copied out of the packed fields.
    pub(crate) fn input(self) -> (NodeId, Message) {
        (self.from, self.message)
    }

    /// The stamp, copied out of the packed field.
    pub(crate) fn at(self) -> u64 {
        self.at
    }
}

/// How many turns a node whose election deadline passed waits for nodes due
/// before it ([`DeadlineTable::overdue_before`]) before campaigning anyway.
///
/// A heuristic of this process, not of Raft: it only delays a timeout, which
/// Raft tolerates. It is bounded in turns, not in time: on a loaded runtime
/// one turn can take milliseconds, and a peer partitioned away is waited for
/// in vain (up to this bound) because its request will never come.
const MAX_DEFERRALS: u32 = 64;

/// How many inputs (queued messages, passed deadlines) a node takes without
/// yielding. Neither `try_recv` nor a deadline already passed spends any of
/// Tokio's cooperative budget, so this bound is what keeps a refilling inbox,
/// or a heartbeat shorter than a step, from holding the worker.
const MAX_TAKEN_WITHOUT_YIELD: usize = 64;

/// An election timer that is not armed.
const NO_DEADLINE: u64 = u64::MAX;

/// Each node's armed election deadline, for [`Pacing::Emulated`]'s deferral:
/// the one place a node may look at another's clock, because here they
/// share one.
#[derive(Debug)]
pub(crate) struct DeadlineTable {
    /// Nanoseconds after `epoch`, [`NO_DEADLINE`] when unarmed.
    deadlines: Vec<AtomicU64>,
    epoch: Instant,
}

impl DeadlineTable {
    pub(crate) fn new(nodes: u8) -> Self {
        Self {
            deadlines: (0..nodes).map(|_| AtomicU64::new(NO_DEADLINE)).collect(),
            epoch: Instant::now(),
        }
    }

    /// `at` in nanoseconds since the cluster started: the unit of message
    /// stamps and of this table.
    pub(crate) fn nanos(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(nanos).unwrap_or(NO_DEADLINE - 1)
    }

    /// The instant `nanos` after the cluster started.
    pub(crate) fn instant(&self, nanos: u64) -> Instant {
        self.epoch + Duration::from_nanos(nanos)
    }

    /// Publishes `id`'s election deadline (`None`: not armed).
    pub(crate) fn set(&self, id: NodeId, deadline: Option<Instant>) {
        if let Some(slot) = self.deadlines.get(usize::from(id.0)) {
            let nanos = deadline.map_or(NO_DEADLINE, |at| self.nanos(at));
            // Only a hint for ordering timers; no other memory depends on it.
            slot.store(nanos, Ordering::Relaxed);
        }
    }

    /// Whether another node's election deadline came strictly before `due`,
    /// a deadline of `id`'s that has passed, and that node has not fired yet
    /// (firing disarms it): the node due first must campaign first, as it
    /// would on its own machine. Equal deadlines are no order: both campaign
    /// (§5.2). Strict order also means no two nodes can wait for each other.
    pub(crate) fn overdue_before(&self, id: NodeId, due: Instant) -> bool {
        let due = self.nanos(due);
        self.deadlines.iter().enumerate().any(|(index, slot)| {
            let other = slot.load(Ordering::Relaxed);
            index != usize::from(id.0) && other < due
        })
    }
}

/// The pacer of one node of an in-process cluster, as the cluster's
/// [`Pacing`] says.
#[derive(Debug)]
pub(crate) enum ClusterPacer {
    /// [`Pacing::Plain`]: a node on a machine of its own, on Tokio's timer.
    Plain(Independent),
    /// [`Pacing::Emulated`].
    Emulated(Paced),
}

impl ClusterPacer {
    /// The pacer of node `id`, whose fresh `transport` it stamps.
    pub(crate) fn new(pacing: Pacing, id: NodeId, transport: &mut ChannelTransport) -> Self {
        match pacing {
            Pacing::Plain => Self::Plain(Independent {
                precise_timers: false,
            }),
            Pacing::Emulated { precise_timers } => {
                let table = Arc::clone(transport.deadlines());
                let paced = Paced::new(id, precise_timers, table);
                transport.stamp_sends(paced.clock);
                Self::Emulated(paced)
            }
        }
    }
}

impl Pacer<ChannelTransport> for ClusterPacer {
    async fn next_input(
        &mut self,
        transport: &mut ChannelTransport,
        timers: &Timers,
        alarm: Pin<&mut Sleep>,
    ) -> Wake {
        match self {
            Self::Plain(plain) => plain.next_input(transport, timers, alarm).await,
            Self::Emulated(paced) => {
                let wake = paced.next_input(transport, timers, alarm).await;
                // Its clock moves only as it hands on an input, just before
                // returning: a cancelled wait leaves the stamp right.
                transport.stamp_sends(paced.clock);
                wake
            }
        }
    }

    fn stepping_local_input(&mut self, transport: &mut ChannelTransport) {
        if let Self::Emulated(paced) = self {
            // Due now, rather than at a stamp or a deadline.
            paced.clock = paced.clock.max(Instant::now());
            transport.stamp_sends(paced.clock);
        }
    }
}

/// One node's side of [`Pacing::Emulated`]: what it took from its inbox and
/// has not handed on, and when its latest input was due.
#[derive(Debug)]
pub(crate) struct Paced {
    id: NodeId,
    precise: bool,
    /// When the latest input was due: the stamp of the node's next sends.
    clock: Instant,
    /// A message taken from the inbox to compare with an expired timer.
    waiting: Option<Stamped>,
    /// The deadline being deferred for nodes due earlier, and how often.
    deferred: (Instant, u32),
    /// Messages taken without a `select!` since the task last yielded.
    taken: usize,
    /// The cluster's deadline table, where this node publishes its own.
    table: Arc<DeadlineTable>,
}

impl Paced {
    fn new(id: NodeId, precise: bool, table: Arc<DeadlineTable>) -> Self {
        let now = Instant::now();
        Self {
            id,
            precise,
            clock: now,
            waiting: None,
            deferred: (now, 0),
            taken: 0,
            table,
        }
    }

    fn message(&mut self, stamped: Stamped) -> Wake {
        // Monotonic per node, whatever order its inputs were due in.
        self.clock = self.clock.max(self.table.instant(stamped.at()));
        let (from, message) = stamped.input();
        Wake::Message { from, message }
    }

    /// The node's next input, in the order independent machines would see.
    ///
    /// An async block, not an async fn, which would keep a second copy of
    /// its arguments: every node holds this future while it waits.
    fn next_input<'a>(
        &'a mut self,
        transport: &'a mut ChannelTransport,
        timers: &'a Timers,
        mut alarm: Pin<&'a mut Sleep>,
    ) -> impl Future<Output = Wake> + 'a {
        self.table.set(self.id, timers.deadline(Timer::Election));
        async move {
            // Every turn hands on an input or waits; deferrals are bounded.
            loop {
                if self.taken >= MAX_TAKEN_WITHOUT_YIELD {
                    self.taken = 0;
                    tokio::task::yield_now().await;
                }
                if let Some((due, timer)) = timers.first_expired(Instant::now()) {
                    if self.defers(due, timer) {
                        tokio::task::yield_now().await;
                        continue;
                    }
                    return self.after_deadline(transport, due);
                }
                if let Some(stamped) = self.waiting.take() {
                    return self.message(stamped);
                }
                // A message already queued needs no `select!`: polling the sleep
                // and the inbox again per message was a tenth of the scale
                // benchmark's CPU. Timers were checked above, so order holds.
                match transport.try_recv() {
                    Ok(stamped) => {
                        self.taken += 1;
                        return self.message(stamped);
                    }
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => return Wake::Closed,
                }
                self.taken = 0;
                let recv = pin!(transport.recv_stamped());
                let woken = wait(
                    recv,
                    timers,
                    Wakes::Undeferrable,
                    self.precise,
                    alarm.as_mut(),
                );
                match woken.await {
                    // Not handed on here: Tokio fires a sleep only at the next
                    // millisecond tick after its deadline, so a message sent
                    // after an election deadline can arrive before the sleep
                    // fires. The next turn orders it against the timers.
                    Woken::Received(Some(stamped)) => self.waiting = Some(stamped),
                    // The network closed our inbox: we crashed or shut down.
                    Woken::Received(None) => return Wake::Closed,
                    Woken::Clock => {}
                }
            }
        }
    }

    /// Whether to wait, this turn, for a peer whose election deadline came
    /// before `due`, a deadline of `timer` that has passed. When this
    /// process runs late, several nodes' deadlines pass together: let those
    /// due earlier campaign first, so their requests are in our inbox (a
    /// bounded number of turns).
    fn defers(&mut self, due: Instant, timer: Timer) -> bool {
        if self.deferred.0 != due {
            self.deferred = (due, 0);
        }
        let defers = timer == Timer::Election
            && self.deferred.1 < MAX_DEFERRALS
            && self.table.overdue_before(self.id, due);
        if defers {
            self.deferred.1 += 1;
        }
        defers
    }

    /// The input due first now that `due`, a deadline, has passed: the
    /// inbox's head if it was due before, else the deadline.
    fn after_deadline(&mut self, transport: &mut ChannelTransport, due: Instant) -> Wake {
        if self.waiting.is_none() {
            self.waiting = match transport.try_recv() {
                Ok(stamped) => {
                    self.taken += 1;
                    Some(stamped)
                }
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => return Wake::Closed,
            };
        }
        // Inputs in the order they were due: a message sent before the
        // deadline (a vote request of a node that timed out first) goes
        // first; one sent at or after it, after the timer, as on a network
        // with any delay: two nodes whose timers expire together both
        // campaign, the split vote of §5.2. Only the inbox's head is
        // compared: the inbox is in arrival order, which for each sender is
        // the order its steps were due.
        let due_nanos = self.table.nanos(due);
        // Counted like a message taken: a deadline that is always past (a
        // heartbeat shorter than a step) must not hold the worker either.
        self.taken += 1;
        match self.waiting.take_if(|w| w.at() < due_nanos) {
            Some(stamped) => self.message(stamped),
            None => {
                self.clock = self.clock.max(due);
                Wake::Deadline
            }
        }
    }
}

impl Drop for Paced {
    /// However the node's task ends (returned, crashed, panicked), its
    /// election deadline must stop holding back its peers' deferral.
    fn drop(&mut self) {
        self.table.set(self.id, None);
    }
}

// Under `--cfg loom` the atomics are loom's, usable only inside `loom::model`.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::testing::ms;

    #[test]
    fn a_node_defers_only_to_a_strictly_earlier_unfired_deadline_of_another() {
        let start = Instant::now();
        let table = DeadlineTable::new(3);
        table.set(NodeId(0), Some(start + ms(100)));
        assert!(table.overdue_before(NodeId(1), start + ms(101)));
        // Equal deadlines are no order: both campaign.
        assert!(!table.overdue_before(NodeId(1), start + ms(100)));
        // A node's own deadline never counts.
        assert!(!table.overdue_before(NodeId(0), start + ms(101)));
        // A fired (disarmed) timer no longer holds anyone back.
        table.set(NodeId(0), None);
        assert!(!table.overdue_before(NodeId(1), start + ms(101)));
    }
}
