//! One node's driver: wait for the next input (a message or a timer), step
//! the core, execute its outputs in order. No election rule lives here.
//!
//! ```text
//! loop {
//!     input = a local request, or pacer.next_input(transport, &timers)  // message or deadline
//!     node.step(input)
//!     for output: persist | send via the transport | arm or cancel a timer
//! }
//! ```
//!
//! The driver owns its node's timers and storage and talks to peers only
//! through its [`Transport`]; its [`Pacer`] decides when it takes which
//! input. It reads no other node's clock or deadlines: it is the driver of
//! a node on its own machine, whatever carries its messages (the in-process
//! channels, or a network).

use crate::pacer::{Independent, Pacer, Wake};
use crate::sync::{Arc, Mutex, lock};
use crate::timeouts::TimeoutPicker;
use crate::timers::Timers;
use crate::transport::{Delivery, Transport};
use raft_election::storage::{Storage, StorageError};
use raft_election::{
    Config, HardState, Input, LogSummary, Message, Node, NodeId, Output, Term, Timer,
};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};
use tracing::field::{Empty, display};
use tracing::{Span, info_span};

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

    /// `hard_state` is durable now: the storage's save returned, after
    /// `took` (its fsync, for a file). Called before the step that asked for
    /// it is reported to [`Self::stepped`].
    fn saved(&mut self, config: &Config, hard_state: &HardState, took: Duration) {
        let _ = (config, hard_state, took);
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

    /// The node's leader lease now runs until `until` by this machine's
    /// clock, or it holds none (`None`). Called at the moment the driver
    /// learns it, before any later output of the step is executed (a
    /// revocation before the TimeoutNow that follows it).
    fn lease(&mut self, config: &Config, until: Option<Instant>) {
        let _ = (config, until);
    }
}

/// How many heartbeat rounds' start times a driver keeps. A lease is
/// measured from a round a majority acknowledged; an acknowledgement of a
/// round older than this many rounds ago extends nothing (it would give a
/// lease that ended long ago, with any sane timing).
pub const MAX_ROUNDS_KEPT: usize = 64;

/// A leader's lease by this machine's clock: when each recent heartbeat
/// round started, and the end of the lease the core reported.
#[derive(Debug, Default)]
struct LeaseClock {
    round_starts: VecDeque<(u64, Instant)>,
    until: Option<Instant>,
}

impl LeaseClock {
    /// Applies one lease output; returns the new end if it changed.
    fn apply(&mut self, output: &Output, now: Instant) -> Option<Option<Instant>> {
        match *output {
            Output::RoundStarted { round } => {
                if self.round_starts.len() == MAX_ROUNDS_KEPT {
                    self.round_starts.pop_front();
                }
                self.round_starts.push_back((round, now));
                None
            }
            Output::LeaseExtended { round, duration } => {
                // From the instant the round started, never from now: the
                // acknowledgements arrived later than the followers' guards began.
                let (_, started) = *self.round_starts.iter().find(|(r, _)| *r == round)?;
                let until = started + duration;
                (self.until < Some(until)).then(|| {
                    self.until = Some(until);
                    self.until
                })
            }
            Output::LeaseRevoked => {
                self.round_starts.clear();
                self.until.take().map(|_| None)
            }
            _ => None,
        }
    }
}

/// Observes nothing.
impl Observer for () {}

/// One node: its core state machine, storage, transport, pacer, timeout
/// source and observer. [`Self::run`] drives it until its transport closes.
#[derive(Debug)]
pub struct Driver<S, T, O, P = Independent> {
    config: Config,
    node: Node,
    storage: S,
    transport: T,
    pacer: P,
    observer: O,
    timeouts: TimeoutPicker,
    /// Inputs from the node's own side, stepped like any other.
    requests: Arc<Requests>,
    /// Every log line of a step is inside this span, whose fields say the
    /// node, its term and its role (kept current after each step).
    span: Span,
}

impl<S, T, O> Driver<S, T, O> {
    /// A driver for node `config.id()`, restored from `restored`, which its
    /// caller loaded from `storage`, paced as a node on a machine of its own
    /// ([`Independent`], with precise timers). Loading before the driver
    /// exists lets a corrupt file fail the caller, with its reason, rather
    /// than a task nobody is waiting on.
    pub fn new(
        config: Config,
        restored: HardState,
        storage: S,
        transport: T,
        observer: O,
        timeouts: TimeoutPicker,
    ) -> Self {
        let node = Node::restore(restored, LogSummary::default());
        let span = info_span!("node", node = %config.id(), term = Empty, role = Empty);
        record_state(&span, &node);
        Self {
            config,
            node,
            span,
            storage,
            transport,
            pacer: Independent::default(),
            observer,
            timeouts,
            requests: Arc::default(),
        }
    }
}

impl<S, T, O, P> Driver<S, T, O, P> {
    /// The same driver, waiting for its inputs as `pacer` says.
    pub fn paced_by<Q>(self, pacer: Q) -> Driver<S, T, O, Q> {
        Driver {
            config: self.config,
            node: self.node,
            storage: self.storage,
            transport: self.transport,
            pacer,
            observer: self.observer,
            timeouts: self.timeouts,
            requests: self.requests,
            span: self.span,
        }
    }
}

impl<S, T, O, P> Driver<S, T, O, P>
where
    S: Storage + Send,
    T: Transport,
    O: Observer,
    P: Pacer<T>,
{
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
        self.span
            .in_scope(|| self.observer.started(&self.config, &self.node));
        let mut timers = Timers::default();
        let mut outputs = Vec::new();
        let mut lease = LeaseClock::default();
        // The node's one timer entry, lent to the pacer for each wait.
        let alarm = sleep_until(Instant::now());
        tokio::pin!(alarm);
        self.step(Input::Start, &mut timers, &mut lease, &mut outputs)?;
        loop {
            let wake = tokio::select! {
                // `biased`: a fixed order keeps paused-clock runs reproducible.
                biased;
                input = self.requests.next() => {
                    if let Input::Timeout(timer) = input {
                        timers.arm(timer, None);
                    }
                    self.pacer.stepping_local_input(&mut self.transport);
                    self.step(input, &mut timers, &mut lease, &mut outputs)?;
                    continue;
                }
                wake = self.pacer.next_input(&mut self.transport, &timers, alarm.as_mut()) => wake,
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
            self.step(input, &mut timers, &mut lease, &mut outputs)?;
        }
    }

    /// Steps the core once and executes its outputs in order.
    fn step(
        &mut self,
        input: Input,
        timers: &mut Timers,
        lease: &mut LeaseClock,
        outputs: &mut Vec<Output>,
    ) -> Result<(), NodeError> {
        let id = self.config.id();
        let before = self.node.clone();
        outputs.clear();
        self.node.step(&self.config, input, outputs);
        if (self.node.current_term(), self.node.role()) != (before.current_term(), before.role()) {
            record_state(&self.span, &self.node);
        }
        // A clone of the handle, so the guard does not borrow `self`.
        let span = self.span.clone();
        let _in_span = span.enter();
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
                Output::Persist(hard_state) => {
                    let began = Instant::now();
                    if let Err(source) = self.storage.save(&hard_state) {
                        // Logged here, inside the node's span: the line says
                        // whose state could not be saved, in which term.
                        let error = NodeError::Storage { id, source };
                        tracing::error!("{error}");
                        return Err(error);
                    }
                    self.observer
                        .saved(&self.config, &hard_state, began.elapsed());
                }
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
                Output::RoundStarted { .. }
                | Output::LeaseExtended { .. }
                | Output::LeaseRevoked => {
                    if let Some(until) = lease.apply(&output, Instant::now()) {
                        self.observer.lease(&self.config, until);
                    }
                }
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

/// Puts `node`'s term and role in its driver's span.
fn record_state(span: &Span, node: &Node) {
    span.record("term", node.current_term().0);
    span.record("role", display(node.role()));
}
