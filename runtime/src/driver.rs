//! One node's driver: wait for the next input (a message or a timer), step
//! the core, execute its outputs in order. No election rule lives here.
//!
//! ```text
//! loop {
//!     input = a local request, or transport.next_input(&timers)  // a message, or a deadline passed
//!     node.step(input)
//!     for output: persist | send via the transport | arm or cancel a timer
//! }
//! ```
//!
//! The driver owns its node's timers and storage and talks to peers only
//! through its [`Transport`]. It reads no other node's clock or deadlines:
//! it is the driver of a node on its own machine, whatever carries its
//! messages (the in-process channels, or a network).

use crate::sync::{Arc, Mutex, lock};
use crate::timeouts::TimeoutPicker;
use crate::transport::{Delivery, Transport, Wake};
use raft_election::storage::{Storage, StorageError};
use raft_election::{
    Config, HardState, Input, LogSummary, Message, Node, NodeId, Output, Term, Timer,
};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};

/// How many local requests may wait for a driver. A request is a rare
/// event (an operator's or a test's); a full queue is refused, not awaited.
pub const MAX_PENDING_REQUESTS: usize = 16;

/// Inputs from a node's own side (an operator, an application, a test) for
/// its driver to step, such as `Input::Timeout(Timer::Election)` to make it
/// campaign now. A small queue and a wake-up rather than a channel: every
/// node of a many-cluster process has one, and an idle one must cost next
/// to nothing (an empty `VecDeque` allocates nothing).
#[derive(Debug, Default)]
pub struct Requests {
    queue: Mutex<VecDeque<Input>>,
    ready: Notify,
}

/// A request refused because [`MAX_PENDING_REQUESTS`] are already waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{MAX_PENDING_REQUESTS} requests are already waiting")]
pub struct RequestsFull;

impl Requests {
    /// Queues `input` for the driver, without waiting.
    pub fn send(&self, input: Input) -> Result<(), RequestsFull> {
        let mut queue = lock(&self.queue);
        if queue.len() >= MAX_PENDING_REQUESTS {
            return Err(RequestsFull);
        }
        queue.push_back(input);
        drop(queue);
        self.ready.notify_one();
        Ok(())
    }

    /// The next request, waiting for one if none is queued.
    async fn next(&self) -> Input {
        // Each turn either returns or waits for a notification.
        loop {
            // Registered before the queue is read, so a request queued in
            // between still wakes this wait.
            let notified = self.ready.notified();
            if let Some(input) = lock(&self.queue).pop_front() {
                return input;
            }
            notified.await;
        }
    }
}

/// Why a node's driver stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Its storage failed. A node that cannot persist must stop (fail-stop):
    /// going on would send votes or terms it may forget (Figure 2).
    #[error("{id} stopped: {source}")]
    Storage {
        /// The node.
        id: NodeId,
        /// What the storage reported.
        source: StorageError,
    },
}

/// The deadline of each armed timer. One slot per timer ([`Timer::index`]),
/// so arming replaces the old deadline and cancelling clears it: a stale
/// expiry cannot fire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timers {
    deadlines: [Option<Instant>; Timer::ALL.len()],
}

impl Timers {
    /// Arms `timer` to expire at `deadline`, or disarms it (`None`).
    pub(crate) fn arm(&mut self, timer: Timer, deadline: Option<Instant>) {
        self.deadlines[timer.index()] = deadline;
    }

    /// When `timer` is due, if it is armed.
    #[must_use]
    pub fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    /// Every armed timer with its deadline, in [`Timer::ALL`] order.
    pub fn armed(&self) -> impl Iterator<Item = (Timer, Instant)> + '_ {
        Timer::ALL
            .into_iter()
            .filter_map(|timer| Some((timer, self.deadline(timer)?)))
    }

    /// The earliest deadline of any armed timer.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        self.armed().map(|(_, deadline)| deadline).min()
    }

    /// The earliest deadline a node must wake for: that of any armed timer
    /// but a deferrable one ([`Timer::is_deferrable`]), which a transport
    /// may deliver just before the node's next input instead.
    #[must_use]
    pub fn next_wake(&self) -> Option<Instant> {
        self.armed()
            .filter(|(timer, _)| !timer.is_deferrable())
            .map(|(_, deadline)| deadline)
            .min()
    }

    /// The timer that expired first by `now`, if any, and its deadline.
    #[must_use]
    pub fn first_expired(&self, now: Instant) -> Option<(Instant, Timer)> {
        self.armed()
            .map(|(timer, deadline)| (deadline, timer))
            .filter(|&(deadline, _)| deadline <= now)
            .min()
    }

    /// Takes the timer that expired first by `now`: firing disarms it, and
    /// re-arming puts it in the future (durations are positive), so each
    /// arming fires at most once.
    fn fire(&mut self, now: Instant) -> Option<Timer> {
        let (_, timer) = self.first_expired(now)?;
        self.arm(timer, None);
        Some(timer)
    }
}

/// What a driver reports as it runs: every step, and every send with its
/// fate. Reporting decides nothing; the default methods ignore everything.
pub trait Observer: Send {
    /// The node starts from `node`, restored from storage.
    fn started(&mut self, config: &Config, node: &Node) {
        let _ = (config, node);
    }

    /// The node went from `before` to `after` on `input`. Called once the new
    /// hard state is durable and before any message of the step is sent.
    fn stepped(&mut self, config: &Config, before: &Node, input: &Input, after: &Node) {
        let _ = (config, before, input, after);
    }

    /// The node, in `term`, handed `message` for `to` to its transport,
    /// which did `delivery` with it.
    fn sent(
        &mut self,
        config: &Config,
        term: Term,
        to: NodeId,
        message: &Message,
        delivery: Delivery,
    ) {
        let _ = (config, term, to, message, delivery);
    }
}

/// Observes nothing.
impl Observer for () {}

/// One node: its core state machine, storage, transport, timeout source and
/// observer. [`Self::run`] drives it until its transport closes.
#[derive(Debug)]
pub struct Driver<S, T, O> {
    config: Config,
    node: Node,
    storage: S,
    transport: T,
    observer: O,
    timeouts: TimeoutPicker,
    /// Inputs from the node's own side, stepped like any other.
    requests: Arc<Requests>,
}

impl<S, T, O> Driver<S, T, O>
where
    S: Storage + Send,
    T: Transport,
    O: Observer,
{
    /// A driver for node `config.id()`, restored from `restored`, which its
    /// caller loaded from `storage`. Loading before the driver exists lets a
    /// corrupt file fail the caller, with its reason, rather than a task
    /// nobody is waiting on.
    pub fn new(
        config: Config,
        restored: HardState,
        storage: S,
        transport: T,
        observer: O,
        timeouts: TimeoutPicker,
    ) -> Self {
        Self {
            config,
            node: Node::restore(restored, LogSummary::default()),
            storage,
            transport,
            observer,
            timeouts,
            requests: Arc::default(),
        }
    }

    /// Where to send this driver local requests ([`Requests`]). The core
    /// treats them as any input (a leader ignores an election timeout); a
    /// requested timeout disarms that timer, as if it had fired.
    #[must_use]
    pub fn requests(&self) -> Arc<Requests> {
        Arc::clone(&self.requests)
    }

    /// Runs the node until its transport closes (`Ok`) or its storage fails.
    ///
    /// The loop has no other bound: it lasts the node's life, and every turn
    /// waits for a message or a deadline.
    pub async fn run(mut self) -> Result<(), NodeError> {
        self.observer.started(&self.config, &self.node);
        let mut timers = Timers::default();
        let mut outputs = Vec::new();
        // The node's one timer entry, lent to the transport for each wait.
        let alarm = sleep_until(Instant::now());
        tokio::pin!(alarm);
        self.step(Input::Start, &mut timers, &mut outputs)?;
        loop {
            let wake = tokio::select! {
                // `biased`: a fixed order keeps paused-clock runs reproducible.
                biased;
                input = self.requests.next() => {
                    if let Input::Timeout(timer) = input {
                        timers.arm(timer, None);
                    }
                    self.step(input, &mut timers, &mut outputs)?;
                    continue;
                }
                wake = self.transport.next_input(&timers, alarm.as_mut()) => wake,
            };
            let input = match wake {
                Wake::Message { from, message } => Input::Receive { from, message },
                Wake::Deadline => match timers.fire(Instant::now()) {
                    Some(timer) => Input::Timeout(timer),
                    // Woken early: wait again.
                    None => continue,
                },
                Wake::Closed => return Ok(()),
            };
            self.step(input, &mut timers, &mut outputs)?;
        }
    }

    /// Steps the core once and executes its outputs in order.
    fn step(
        &mut self,
        input: Input,
        timers: &mut Timers,
        outputs: &mut Vec<Output>,
    ) -> Result<(), NodeError> {
        let id = self.config.id();
        let before = self.node.clone();
        outputs.clear();
        self.node.step(&self.config, input, outputs);
        let mut observed = false;
        for output in outputs.drain(..) {
            // The core puts its one Persist first. Report the step once the new
            // state is durable and before anything of it leaves the node.
            if !observed && !matches!(output, Output::Persist(_)) {
                self.observer
                    .stepped(&self.config, &before, &input, &self.node);
                observed = true;
            }
            match output {
                Output::Persist(hard_state) => self
                    .storage
                    .save(&hard_state)
                    .map_err(|source| NodeError::Storage { id, source })?,
                Output::Send { to, message } => {
                    let delivery = self.transport.send(to, message);
                    let term = self.node.current_term();
                    self.observer
                        .sent(&self.config, term, to, &message, delivery);
                }
                Output::SetTimer { timer, min, max } => {
                    let after = self.duration(timer, min, max);
                    timers.arm(timer, Some(Instant::now() + after));
                }
                Output::CancelTimer(timer) => timers.arm(timer, None),
            }
        }
        if !observed {
            self.observer
                .stepped(&self.config, &before, &input, &self.node);
        }
        Ok(())
    }

    /// Election timeouts come from the timeout source; every other timer's
    /// range is a single point (the heartbeat interval, or the minimum
    /// election timeout). `Timing` validation bounds all of them, so adding
    /// any to the clock cannot overflow.
    fn duration(&mut self, timer: Timer, min: Duration, max: Duration) -> Duration {
        match timer {
            Timer::Election => self.timeouts.pick(min, max),
            Timer::Heartbeat | Timer::Lease | Timer::CheckQuorum | Timer::Transfer => min,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn a_replaced_or_cancelled_timer_never_expires() {
        let start = Instant::now();
        let mut timers = Timers::default();
        timers.arm(Timer::Election, Some(start + ms(100)));
        // Re-armed later (a heartbeat arrived): the first deadline is gone.
        timers.arm(Timer::Election, Some(start + ms(300)));
        assert_eq!(timers.first_expired(start + ms(200)), None);
        let due = start + ms(300);
        assert_eq!(timers.first_expired(due), Some((due, Timer::Election)));
        // Firing disarms it.
        assert_eq!(timers.fire(due), Some(Timer::Election));
        assert_eq!(timers.fire(start + ms(400)), None);
        timers.arm(Timer::Heartbeat, Some(start + ms(50)));
        timers.arm(Timer::Heartbeat, None);
        assert_eq!(timers.first_expired(start + ms(400)), None);
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn the_earliest_of_two_expired_timers_fires_first() {
        let start = Instant::now();
        let mut timers = Timers::default();
        timers.arm(Timer::Election, Some(start + ms(20)));
        timers.arm(Timer::Heartbeat, Some(start + ms(10)));
        assert_eq!(timers.next_deadline(), Some(start + ms(10)));
        assert_eq!(timers.fire(start + ms(30)), Some(Timer::Heartbeat));
        assert_eq!(timers.fire(start + ms(30)), Some(Timer::Election));
        assert_eq!(timers.deadline(Timer::Election), None);
    }

    #[test]
    fn a_lease_is_never_waited_for_but_fires_first_once_expired() {
        let start = Instant::now();
        let mut timers = Timers::default();
        timers.arm(Timer::Lease, Some(start + ms(150)));
        timers.arm(Timer::Election, Some(start + ms(200)));
        assert_eq!(timers.next_deadline(), Some(start + ms(150)));
        assert_eq!(timers.next_wake(), Some(start + ms(200)));
        let later = start + ms(210);
        assert_eq!(timers.fire(later), Some(Timer::Lease));
        assert_eq!(timers.fire(later), Some(Timer::Election));
        assert_eq!(timers.next_wake(), None);
    }
}
