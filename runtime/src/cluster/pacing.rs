//! Pacing nodes that share one process as if each ran on its own machine.
//!
//! Every node of an in-process cluster is a task of one runtime. When the
//! process runs late, several nodes' deadlines pass together and each would
//! campaign at once, splitting votes that independent machines would not
//! split; and Tokio's millisecond timer fires two deadlines of the same
//! millisecond together. [`Pacing::Emulated`] restores the order independent
//! machines would see, with three devices that live here and nowhere else:
//!
//! - **sender stamps**: a message carries the instant its sender's step was
//!   due, and a receiver handles a message due before its own expired
//!   deadline first;
//! - **deferral**: a node whose election deadline passed lets a peer whose
//!   deadline passed earlier campaign first, for a bounded number of turns,
//!   reading the cluster's deadline table;
//! - **precise timers**: for the last [`PRECISE_WINDOW`] before an election
//!   deadline the node watches the clock instead of Tokio's timer.
//!
//! They decide only when an input is delivered, never a vote, role or term.
//! The driver never sees them: they are the in-process transport's way of
//! answering [`crate::Transport::next_input`].

use crate::sync::{AtomicU64, Ordering};
use crate::timers::Timers;
use crate::transport::Wake;
use raft_election::{Message, NodeId, Timer};
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::mpsc;
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
        /// Watch the clock for the last [`PRECISE_WINDOW`] before an election deadline.
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

/// How long before an election deadline a paced node stops relying on
/// Tokio's timer and watches the clock itself. Tokio rounds every deadline up
/// to the next millisecond, and the wait in the OS adds up to one more: two
/// followers whose deadlines fell inside the same millisecond fired together
/// and split the vote, though randomized timeouts exist to tell them apart
/// (§5.2).
pub const PRECISE_WINDOW: Duration = Duration::from_millis(2);

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

/// When to wake: the earliest deadline the node must wake for
/// ([`Timers::next_wake`]), the election deadline `early` before it is due
/// (unless that would be before the clock's origin). A deferrable timer (the
/// lease) wakes no one: the next turn delivers it before any input due after it.
fn wake_early(timers: &Timers, early: Duration) -> Option<Instant> {
    timers
        .armed()
        .filter(|(timer, _)| !timer.is_deferrable())
        .map(|(timer, at)| match timer {
            Timer::Election => at.checked_sub(early).unwrap_or(at),
            _ => at,
        })
        .min()
}

/// The next deadline to wake for, if the election deadline is less than
/// [`PRECISE_WINDOW`] after `now` and not yet reached.
fn approaching(timers: &Timers, now: Instant) -> Option<Instant> {
    let election = timers.deadline(Timer::Election)?;
    let close = election > now && election.duration_since(now) <= PRECISE_WINDOW;
    close.then(|| timers.next_wake()).flatten()
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
}

impl Paced {
    pub(crate) fn new(id: NodeId, precise: bool) -> Self {
        let now = Instant::now();
        Self {
            id,
            precise,
            clock: now,
            waiting: None,
            deferred: (now, 0),
            taken: 0,
        }
    }

    /// The stamp of a message sent now: when the step sending it was due.
    pub(crate) fn stamp(&self) -> Instant {
        self.clock
    }

    /// The node steps an input of its own side now (a local request), due
    /// now rather than at a stamp or a deadline.
    pub(crate) fn advance(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
    }

    fn message(&mut self, table: &DeadlineTable, stamped: Stamped) -> Wake {
        // Monotonic per node, whatever order its inputs were due in.
        self.clock = self.clock.max(table.instant(stamped.at()));
        let (from, message) = stamped.input();
        Wake::Message { from, message }
    }

    /// The node's next input, in the order independent machines would see.
    pub(crate) async fn next_input(
        &mut self,
        inbox: &mut mpsc::Receiver<Stamped>,
        table: &DeadlineTable,
        timers: &Timers,
        mut alarm: Pin<&mut Sleep>,
    ) -> Wake {
        table.set(self.id, timers.deadline(Timer::Election));
        // Every turn hands on an input or waits; deferrals are bounded.
        loop {
            if self.taken >= MAX_TAKEN_WITHOUT_YIELD {
                self.taken = 0;
                tokio::task::yield_now().await;
            }
            let now = Instant::now();
            if let Some((due, timer)) = timers.first_expired(now) {
                // When this process runs late, several nodes' deadlines pass
                // together: let those due earlier campaign first, so their
                // requests are in our inbox (a bounded number of turns).
                if self.deferred.0 != due {
                    self.deferred = (due, 0);
                }
                if timer == Timer::Election
                    && self.deferred.1 < MAX_DEFERRALS
                    && table.overdue_before(self.id, due)
                {
                    self.deferred.1 += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                if self.waiting.is_none() {
                    self.waiting = match inbox.try_recv() {
                        Ok(stamped) => {
                            self.taken += 1;
                            Some(stamped)
                        }
                        Err(mpsc::error::TryRecvError::Empty) => None,
                        Err(mpsc::error::TryRecvError::Disconnected) => return Wake::Closed,
                    };
                }
                // Inputs in the order they were due: a message sent before the
                // deadline (a vote request of a node that timed out first)
                // goes first; one sent at or after it, after the timer, as on
                // a network with any delay: two nodes whose timers expire
                // together both campaign, the split vote of §5.2. Only the
                // inbox's head is compared: the inbox is in arrival order,
                // which for each sender is the order its steps were due.
                let due_nanos = table.nanos(due);
                // Counted like a message taken: a deadline that is always
                // past (a heartbeat shorter than a step) must not hold the
                // worker either.
                self.taken += 1;
                return match self.waiting.take_if(|w| w.at() < due_nanos) {
                    Some(stamped) => self.message(table, stamped),
                    None => {
                        self.clock = self.clock.max(due);
                        Wake::Deadline
                    }
                };
            }
            if let Some(stamped) = self.waiting.take() {
                return self.message(table, stamped);
            }
            // A message already queued needs no `select!`: polling the sleep
            // and the inbox again per message was a tenth of the scale
            // benchmark's CPU. Timers were checked above, so order holds.
            match inbox.try_recv() {
                Ok(stamped) => {
                    self.taken += 1;
                    return self.message(table, stamped);
                }
                Err(mpsc::error::TryRecvError::Empty) => {}
                Err(mpsc::error::TryRecvError::Disconnected) => return Wake::Closed,
            }
            self.taken = 0;
            if let Some(wake) = self.wait(inbox, timers, now, alarm.as_mut()).await {
                return wake;
            }
        }
    }

    /// Sleeps until a deadline comes close or passes, or a message arrives
    /// (kept in `waiting`, to be ordered against the timers at the next turn).
    /// Within [`PRECISE_WINDOW`] of an election deadline it only lets the
    /// other tasks run once, so the caller looks at the clock again: a wait
    /// much finer than Tokio's millisecond timer.
    async fn wait(
        &mut self,
        inbox: &mut mpsc::Receiver<Stamped>,
        timers: &Timers,
        now: Instant,
        mut alarm: Pin<&mut Sleep>,
    ) -> Option<Wake> {
        let approaching = approaching(timers, now).filter(|_| self.precise);
        if approaching.is_some() {
            tokio::task::yield_now().await;
            if Instant::now() != now {
                return None;
            }
            // A paused test clock does not move across a yield: sleep to the
            // deadline instead, so Tokio can advance the clock to it.
        }
        // Without precision a node sleeps to the deadline itself: waking inside
        // the window with nothing to watch the clock would spin.
        let early = if self.precise {
            PRECISE_WINDOW
        } else {
            Duration::ZERO
        };
        let wake = approaching.or_else(|| wake_early(timers, early));
        // Only an earlier wake moves the entry. A later one (a heartbeat
        // pushed the election deadline back) waits for the entry to fire
        // and is set then: one wake per timeout instead of a timer-wheel
        // update per heartbeat.
        if let Some(at) = wake.filter(|&at| alarm.is_elapsed() || at < alarm.deadline()) {
            alarm.as_mut().reset(at);
        }
        // `biased`: a fixed order makes paused-clock runs reproducible.
        tokio::select! {
            biased;
            () = alarm, if wake.is_some() => {}
            received = inbox.recv() => {
                // `None`: the network closed our inbox; we crashed or shut down.
                let Some(stamped) = received else { return Some(Wake::Closed) };
                // Not handed on here: Tokio fires a sleep only at the next
                // millisecond tick after its deadline, so a message sent
                // after an election deadline can arrive before the sleep
                // fires. The next turn orders it against the timer.
                self.waiting = Some(stamped);
            }
        }
        None
    }
}

// Under `--cfg loom` the atomics are loom's, usable only inside `loom::model`.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn timers_with_election(at: Instant) -> Timers {
        let mut timers = Timers::default();
        timers.arm(Timer::Election, Some(at));
        timers
    }

    #[test]
    fn an_election_deadline_is_approached_early_only_with_precise_timers() {
        let start = Instant::now();
        let deadline = start + ms(200);
        let timers = timers_with_election(deadline);
        assert_eq!(wake_early(&timers, Duration::ZERO), Some(deadline));
        assert_eq!(
            wake_early(&timers, PRECISE_WINDOW),
            Some(deadline - PRECISE_WINDOW)
        );
        assert_eq!(approaching(&timers, start + ms(199)), Some(deadline));
        assert_eq!(approaching(&timers, start + ms(100)), None);
        assert_eq!(approaching(&timers, deadline), None, "due, not approaching");
    }

    #[test]
    fn a_lease_deadline_wakes_no_one() {
        let start = Instant::now();
        let mut timers = timers_with_election(start + ms(200));
        timers.arm(Timer::Lease, Some(start + ms(150)));
        timers.arm(Timer::CheckQuorum, Some(start + ms(180)));
        assert_eq!(wake_early(&timers, Duration::ZERO), Some(start + ms(180)));
        timers.arm(Timer::CheckQuorum, None);
        assert_eq!(wake_early(&timers, Duration::ZERO), Some(start + ms(200)));
    }

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
