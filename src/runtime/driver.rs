//! One Tokio task per node: wait for the next input, step the core, execute
//! its outputs in order. No election rule lives here.
//!
//! The loop has quinn's and mini-redis's shape:
//!
//! ```text
//! loop {
//!     fire expired timers
//!     select! { biased; deadline => wake, near an election deadline => watch the clock,
//!               inbox => receive (a closed inbox: killed or shut down, return) }
//!     node.step(input); execute outputs (persist, send, set/cancel timer)
//! }
//! ```
//!
//! Shutdown closes every inbox, so the inbox is the only thing a node waits
//! on besides its one timer entry: no per-message registration elsewhere.

use super::config::TimeoutSource;
use super::events::Observer;
use super::network::{INBOX_CAPACITY, Network, Stamped};
use super::sync::Arc;
use crate::config::Config;
use crate::node::{Input, Node, Output, Timer};
use crate::sim::Envelope;
use crate::storage::{Storage, StorageError};
use crate::types::{HardState, LogSummary, NodeId};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

/// Why a node's task stopped on its own.
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

/// Picks election timeout durations for one node.
#[derive(Debug)]
pub(crate) enum TimeoutPicker {
    // Not `StdRng`: timeouts need no cryptographic strength, and a follower
    // draws one on every heartbeat. ChaCha's 300-byte state behind a box cost
    // 5% of the scale benchmark's CPU in cache misses; this is 32 bytes inline.
    Seeded(Xoshiro256PlusPlus),
    Schedule {
        timeouts: Vec<Duration>,
        next: usize,
    },
}

impl TimeoutPicker {
    /// The picker of node `id` in its `incarnation`-th run (0 at first start).
    pub(crate) fn new(source: &TimeoutSource, id: NodeId, incarnation: u32) -> Self {
        match source {
            TimeoutSource::Seeded(seed) => {
                // One stream per node and incarnation. The odd multipliers (from
                // SplitMix64) keep streams of nearby seeds and ids apart.
                let stream = u64::from(id.0).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    ^ u64::from(incarnation).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                Self::Seeded(Xoshiro256PlusPlus::seed_from_u64(seed ^ stream))
            }
            TimeoutSource::Schedule(schedule) => Self::Schedule {
                timeouts: schedule.get(&id).cloned().unwrap_or_default(),
                next: 0,
            },
        }
    }

    /// A duration in `min..=max`. Scheduled values are clamped into the range
    /// the core asked for; validation already refused any outside it.
    fn pick(&mut self, min: Duration, max: Duration) -> Duration {
        if min >= max {
            return min;
        }
        match self {
            Self::Seeded(rng) => rng.random_range(min..=max),
            Self::Schedule { timeouts, next } => {
                let index = (*next).min(timeouts.len().saturating_sub(1));
                *next = next.saturating_add(1);
                timeouts.get(index).copied().unwrap_or(min).clamp(min, max)
            }
        }
    }
}

/// The deadline of each armed timer. One slot per timer, so arming replaces
/// the old deadline and cancelling clears it: a stale expiry cannot fire.
#[derive(Clone, Copy, Debug, Default)]
struct Timers {
    election: Option<Instant>,
    heartbeat: Option<Instant>,
}

impl Timers {
    fn slot(&mut self, timer: Timer) -> &mut Option<Instant> {
        match timer {
            Timer::Election => &mut self.election,
            Timer::Heartbeat => &mut self.heartbeat,
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        [self.election, self.heartbeat].into_iter().flatten().min()
    }

    /// When the task should next sleep until: a heartbeat deadline itself (a
    /// heartbeat a millisecond late is harmless), an election deadline
    /// [`PRECISE_WINDOW`] early if `precise`, to approach it with
    /// [`watch_clock`] (else the deadline itself: sleeping to a point of the
    /// window again and again would spin).
    fn wake_at(&self, precise: bool) -> Option<Instant> {
        let early = if precise {
            PRECISE_WINDOW
        } else {
            Duration::ZERO
        };
        let election = self.election.map(|at| at.checked_sub(early).unwrap_or(at));
        [election, self.heartbeat].into_iter().flatten().min()
    }

    /// The next deadline, if the election deadline is less than
    /// [`PRECISE_WINDOW`] after `now` and not yet reached.
    fn approaching(&self, now: Instant) -> Option<Instant> {
        let election = self.election?;
        let close = election > now && election.duration_since(now) <= PRECISE_WINDOW;
        close.then(|| self.next_deadline()).flatten()
    }

    /// The timer that expired first by `now`, if any, and its deadline.
    fn first_expired(&self, now: Instant) -> Option<(Instant, Timer)> {
        [
            (Timer::Election, self.election),
            (Timer::Heartbeat, self.heartbeat),
        ]
        .into_iter()
        .filter_map(|(timer, deadline)| Some((deadline?, timer)))
        .filter(|&(deadline, _)| deadline <= now)
        .min()
    }

    /// Firing disarms a timer; re-arming puts it in the future (durations
    /// are positive), so each fires at most once per arming.
    fn disarm(&mut self, timer: Timer) {
        *self.slot(timer) = None;
    }
}

/// How long before an election deadline the driver stops relying on Tokio's
/// timer and watches the clock itself. Tokio rounds every deadline up to the
/// next millisecond, and the wait in the OS adds up to one more: two
/// followers whose deadlines fell inside the same millisecond fired together
/// and split the vote, though randomized timeouts exist to tell them apart
/// (§5.2). The window costs one busy core for at most this long per election
/// timeout, and nothing while heartbeats keep re-arming the timer.
const PRECISE_WINDOW: Duration = Duration::from_millis(2);

/// How many turns a node whose election deadline passed waits for nodes due
/// before it ([`Network::overdue_before`]) before campaigning anyway.
///
/// A heuristic of this process, not of Raft: it only delays a timeout, which
/// Raft tolerates, to give the order that independent machines would see.
/// It is bounded in turns, not in time: on a loaded runtime one turn can
/// take milliseconds, and a peer partitioned away is waited for in vain (up
/// to this bound) because its request will never come.
const MAX_DEFERRALS: u32 = 64;

/// Lets the other tasks run once and returns, so the caller can look at the
/// clock and its inbox again: a wait much finer than Tokio's millisecond
/// timer. A paused test clock does not move across a yield; then this sleeps
/// until `deadline`, so Tokio can advance the clock to it.
async fn watch_clock(deadline: Instant) {
    let before = Instant::now();
    tokio::task::yield_now().await;
    if Instant::now() == before {
        sleep_until(deadline).await;
    }
}

/// Takes `id` down like a killed node (unless it already is): nothing
/// reaches or leaves it, and the board no longer shows it.
fn take_down(network: &Network, observer: &Observer, id: NodeId) {
    if network.links().kill(id).is_ok() {
        network.close_inbox(id);
        observer.record_kill(id);
    }
}

/// Runs when a node's task ends, however it ends: returned, aborted by a
/// kill (its future dropped) or panicked. Its election deadline must stop
/// counting in its peers' [`Network::overdue_before`] (a kill clears it, but
/// a step finishing on another worker may publish it again), and a task that
/// panicked is taken down, fail-stop, like one whose storage failed.
struct ExitGuard {
    id: NodeId,
    network: Arc<Network>,
    observer: Arc<Observer>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.network.set_election_deadline(self.id, None);
        if std::thread::panicking() {
            take_down(&self.network, &self.observer, self.id);
        }
    }
}

/// Everything one node's task owns.
pub(crate) struct Driver<S> {
    config: Config,
    node: Node,
    storage: S,
    picker: TimeoutPicker,
    inbox: mpsc::Receiver<Stamped>,
    network: Arc<Network>,
    observer: Arc<Observer>,
    /// When the latest input was due; see [`Self::step`].
    clock: Instant,
    /// Approach election deadlines with [`watch_clock`].
    precise: bool,
}

/// The channels and shared pieces a driver is wired to.
pub(crate) struct Wiring {
    pub(crate) inbox: mpsc::Receiver<Stamped>,
    pub(crate) network: Arc<Network>,
    pub(crate) observer: Arc<Observer>,
}

impl<S: Storage + Send + 'static> Driver<S> {
    /// A driver for node `config.id()`, restored from `restored`, which its
    /// caller loaded from `storage`. Loading before the task exists lets a
    /// corrupt file fail the spawn or restart call itself, with its reason,
    /// rather than a task nobody is waiting on.
    pub(crate) fn new(
        config: Config,
        storage: S,
        restored: HardState,
        picker: TimeoutPicker,
        wiring: Wiring,
        precise: bool,
    ) -> Self {
        Self {
            config,
            node: Node::restore(restored, LogSummary::default()),
            storage,
            picker,
            inbox: wiring.inbox,
            clock: Instant::now(),
            precise,
            network: wiring.network,
            observer: wiring.observer,
        }
    }

    /// Runs the node from its restored state until shutdown or a storage
    /// failure. A node that failed is taken down like a killed one, so no
    /// one waits on it or sends to it as if it were alive.
    pub(crate) async fn run(mut self) -> Result<(), NodeError> {
        let id = self.config.id();
        let _exit = ExitGuard {
            id,
            network: Arc::clone(&self.network),
            observer: Arc::clone(&self.observer),
        };
        let result = self.serve().await;
        if let Err(e) = &result {
            tracing::error!("{e}");
            take_down(&self.network, &self.observer, id);
        }
        result
    }

    async fn serve(&mut self) -> Result<(), NodeError> {
        let id = self.config.id();
        self.observer.record_start(id, &self.node);
        let mut timers = Timers::default();
        let mut outputs = Vec::new();
        self.step(Input::Start, Instant::now(), &mut timers, &mut outputs)?;
        // One timer entry for the node's whole life: making one anew on every
        // turn registered and removed a timer for every message received.
        let sleep = sleep_until(Instant::now());
        tokio::pin!(sleep);
        let mut sleeping_until = None;
        // A message taken from the inbox to compare with an expired timer.
        let mut waiting: Option<Stamped> = None;
        // The deadline being deferred for nodes due earlier, and how often.
        let mut deferred = (Instant::now(), 0_u32);
        // Messages taken without a `select!` since the task last yielded.
        // `try_recv` spends none of Tokio's cooperative budget, so this bound
        // is what keeps a refilling inbox from holding the worker.
        let mut taken = 0;
        loop {
            if taken >= INBOX_CAPACITY {
                taken = 0;
                tokio::task::yield_now().await;
            }
            let now = Instant::now();
            if let Some((due, timer)) = timers.first_expired(now) {
                // When this process runs late, several nodes' deadlines pass
                // together: let those due earlier campaign first, so their
                // requests are in our inbox (a bounded number of turns).
                if deferred.0 != due {
                    deferred = (due, 0);
                }
                if timer == Timer::Election
                    && deferred.1 < MAX_DEFERRALS
                    && self.network.overdue_before(id, due)
                {
                    deferred.1 += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                if waiting.is_none() {
                    waiting = match self.inbox.try_recv() {
                        Ok(stamped) => {
                            taken += 1;
                            Some(stamped)
                        }
                        Err(mpsc::error::TryRecvError::Empty) => None,
                        Err(mpsc::error::TryRecvError::Disconnected) => return Ok(()),
                    };
                }
                // Inputs in the order they were due: a message sent before the
                // deadline (a vote request of a node that timed out first)
                // goes first; one sent at or after it, after the timer, as on
                // a network with any delay: two nodes whose timers expire
                // together both campaign, the split vote of §5.2. Only the
                // inbox's head is compared: the inbox is in arrival order,
                // which for each sender is the order its steps were due.
                match waiting.take_if(|w| w.at < due) {
                    Some(stamped) => self.receive(stamped, &mut timers, &mut outputs)?,
                    None => {
                        timers.disarm(timer);
                        self.step(Input::Timeout(timer), due, &mut timers, &mut outputs)?;
                    }
                }
                continue;
            }
            if let Some(stamped) = waiting.take() {
                self.receive(stamped, &mut timers, &mut outputs)?;
                continue;
            }
            // A message already queued needs no `select!`: polling the sleep
            // and the inbox again per message was a tenth of the scale
            // benchmark's CPU. Timers were checked above, so order holds.
            match self.inbox.try_recv() {
                Ok(stamped) => {
                    taken += 1;
                    self.receive(stamped, &mut timers, &mut outputs)?;
                    continue;
                }
                Err(mpsc::error::TryRecvError::Empty) => {}
                Err(mpsc::error::TryRecvError::Disconnected) => return Ok(()),
            }
            taken = 0;
            let approaching = timers.approaching(now).filter(|_| self.precise);
            let wake = if approaching.is_some() {
                None
            } else {
                timers.wake_at(self.precise)
            };
            // Only an earlier wake moves the entry. A later one (a heartbeat
            // pushed the election deadline back) waits for the entry to fire
            // and is set then: one wake per timeout instead of a timer-wheel
            // update per heartbeat.
            if let Some(at) = wake.filter(|&at| sleeping_until.is_none_or(|old| at < old)) {
                sleep.as_mut().reset(at);
                sleeping_until = Some(at);
            }
            // `biased`: a fixed order makes paused-clock runs reproducible.
            tokio::select! {
                biased;
                () = &mut sleep, if sleeping_until.is_some() => sleeping_until = None,
                // Before the inbox, so a deadline reached while a message waits
                // is compared with it at the top of the loop.
                () = watch_clock(approaching.unwrap_or(now)), if approaching.is_some() => {}
                received = self.inbox.recv() => {
                    // `None`: the network closed our inbox; we were killed or shut down.
                    let Some(stamped) = received else { return Ok(()) };
                    // Not stepped here: Tokio fires a sleep only at the next
                    // millisecond tick after its deadline, so a message sent
                    // after an election deadline can arrive before the sleep
                    // fires. The top of the loop orders it against the timer.
                    waiting = Some(stamped);
                }
            }
        }
    }

    fn receive(
        &mut self,
        stamped: Stamped,
        timers: &mut Timers,
        outputs: &mut Vec<Output>,
    ) -> Result<(), NodeError> {
        let Envelope { from, message, .. } = stamped.envelope;
        let input = Input::Receive { from, message };
        self.step(input, stamped.at, timers, outputs)
    }

    /// Steps the core once and executes its outputs in order. `at` is when
    /// the input was due (a timer's deadline, a message's sending); the
    /// node's messages carry it, so a receiver can order them against its
    /// own deadlines however late this process runs.
    fn step(
        &mut self,
        input: Input,
        at: Instant,
        timers: &mut Timers,
        outputs: &mut Vec<Output>,
    ) -> Result<(), NodeError> {
        let id = self.config.id();
        // Monotonic per node, whatever order its inputs were due in.
        self.clock = self.clock.max(at);
        let before = self.node.clone();
        outputs.clear();
        self.node.step(&self.config, input, outputs);
        let mut observed = false;
        for output in outputs.drain(..) {
            // The core puts its one Persist first. Report the step once the new
            // state is durable and before anything of it leaves the node.
            if !observed && !matches!(output, Output::Persist(_)) {
                self.observer
                    .record_step(&self.config, &before, &input, &self.node);
                observed = true;
            }
            match output {
                Output::Persist(hard_state) => self
                    .storage
                    .save(&hard_state)
                    .map_err(|source| NodeError::Storage { id, source })?,
                Output::Send { to, message } => {
                    let term = self.node.current_term();
                    self.network.send(id, term, to, message, self.clock);
                }
                Output::SetTimer { timer, min, max } => {
                    let after = self.picker_for(timer, min, max);
                    *timers.slot(timer) = Some(Instant::now() + after);
                }
                Output::CancelTimer(timer) => *timers.slot(timer) = None,
            }
        }
        if !observed {
            self.observer
                .record_step(&self.config, &before, &input, &self.node);
        }
        self.network.set_election_deadline(id, timers.election);
        Ok(())
    }

    /// Election timeouts come from the configured source; the heartbeat's
    /// range is a single point.
    fn picker_for(&mut self, timer: Timer, min: Duration, max: Duration) -> Duration {
        match timer {
            Timer::Election => self.picker.pick(min, max),
            Timer::Heartbeat => min,
        }
    }
}

// Under `--cfg loom` the shared types are loom's, usable only inside `loom::model`.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn a_schedule_is_used_in_order_then_repeats_its_last_value() {
        let schedule = BTreeMap::from([(NodeId(1), vec![ms(150), ms(220)])]);
        let mut picker = TimeoutPicker::new(&TimeoutSource::Schedule(schedule), NodeId(1), 0);
        let picked: Vec<Duration> = (0..4).map(|_| picker.pick(ms(150), ms(300))).collect();
        assert_eq!(picked, [ms(150), ms(220), ms(220), ms(220)]);
    }

    #[test]
    fn seeded_timeouts_stay_in_range_and_replay_for_the_same_seed() {
        let source = TimeoutSource::Seeded(7);
        let run = |id| {
            let mut picker = TimeoutPicker::new(&source, NodeId(id), 0);
            (0..100)
                .map(|_| picker.pick(ms(150), ms(300)))
                .collect::<Vec<_>>()
        };
        let (first, again, other) = (run(0), run(0), run(1));
        assert_eq!(first, again);
        assert_ne!(first, other, "nodes must not share a stream");
        assert!(first.iter().all(|d| (ms(150)..=ms(300)).contains(d)));
    }

    /// Node n0 of a 3-node cluster on `storage`, wired to a network and an
    /// observer that the test keeps to look at afterwards.
    fn node_zero_of_three<S: Storage + Send + 'static>(
        storage: S,
    ) -> (Driver<S>, Arc<Network>, Arc<Observer>) {
        let configs = Config::cluster(3, crate::Timing::default()).unwrap();
        let observer = Arc::new(Observer::new(
            &configs[0],
            crate::runtime::Observation::Full,
        ));
        let network = Arc::new(Network::new(3, Arc::clone(&observer)));
        let wiring = Wiring {
            inbox: network.open_inbox(NodeId(0)),
            network: Arc::clone(&network),
            observer: Arc::clone(&observer),
        };
        let picker = TimeoutPicker::new(&TimeoutSource::Seeded(1), NodeId(0), 0);
        let restored = storage.load().unwrap();
        let driver = Driver::new(configs[0].clone(), storage, restored, picker, wiring, true);
        (driver, network, observer)
    }

    /// Storage that loads fine and fails on the first save.
    struct BrokenDisk;

    impl Storage for BrokenDisk {
        fn load(&self) -> Result<crate::types::HardState, StorageError> {
            Ok(crate::types::HardState::default())
        }

        fn save(&mut self, _: &crate::types::HardState) -> Result<(), StorageError> {
            Err(StorageError::Io {
                action: "write",
                path: "/broken".into(),
                source: std::io::Error::other("disk on fire"),
            })
        }
    }

    /// Figure 2 persists before answering; a node that cannot persist stops
    /// (at its first campaign, which must save the new term and self-vote)
    /// and is taken down, so it neither answers nor shows as alive.
    #[tokio::test(start_paused = true)]
    async fn a_node_whose_storage_fails_stops_before_sending_and_is_taken_down() {
        let (driver, network, observer) = node_zero_of_three(BrokenDisk);
        let err = driver.run().await.unwrap_err();
        assert!(err.to_string().contains("disk on fire"), "{err}");
        assert!(!network.links().is_up(NodeId(0)));
        assert_eq!(observer.board().snapshot().get(NodeId(0)), None);
        assert_eq!(
            network.stats(),
            super::super::NetworkStats::default(),
            "nothing sent"
        );
    }

    /// Storage that panics on the first save: a bug, not an I/O error.
    struct PanickingDisk;

    impl Storage for PanickingDisk {
        fn load(&self) -> Result<crate::types::HardState, StorageError> {
            Ok(crate::types::HardState::default())
        }

        fn save(&mut self, _: &crate::types::HardState) -> Result<(), StorageError> {
            panic!("bug in the disk layer");
        }
    }

    /// However a task ends, its peers must stop waiting for its election
    /// deadline; a panicked task is taken down, fail-stop, like a failed one.
    #[tokio::test(start_paused = true)]
    async fn a_node_whose_task_panics_is_taken_down_and_its_deadline_cleared() {
        let (driver, network, observer) = node_zero_of_three(PanickingDisk);
        let far = Instant::now() + ms(3_600_000);
        // Published while the task runs: n1 would wait for n0's deadline.
        let task = tokio::spawn(driver.run());
        tokio::task::yield_now().await;
        assert!(network.overdue_before(NodeId(1), far));
        let joined = task.await.unwrap_err();
        assert!(joined.is_panic());
        assert!(!network.overdue_before(NodeId(1), far), "deadline cleared");
        assert!(!network.links().is_up(NodeId(0)));
        assert_eq!(observer.board().snapshot().get(NodeId(0)), None);
    }

    #[test]
    fn an_election_deadline_is_approached_early_only_with_precise_timers() {
        let start = Instant::now();
        let deadline = start + ms(200);
        let mut timers = Timers::default();
        *timers.slot(Timer::Election) = Some(deadline);
        // Without precision a node sleeps to the deadline itself: waking inside
        // the window with nothing to watch the clock would spin.
        assert_eq!(timers.wake_at(false), Some(deadline));
        assert_eq!(timers.wake_at(true), Some(deadline - PRECISE_WINDOW));
        assert_eq!(timers.approaching(start + ms(199)), Some(deadline));
        assert_eq!(timers.approaching(start + ms(100)), None);
        assert_eq!(timers.approaching(deadline), None, "due, not approaching");
    }

    #[test]
    fn a_replaced_or_cancelled_timer_never_expires() {
        let start = Instant::now();
        let mut timers = Timers::default();
        *timers.slot(Timer::Election) = Some(start + ms(100));
        // Re-armed later (a heartbeat arrived): the first deadline is gone.
        *timers.slot(Timer::Election) = Some(start + ms(300));
        assert_eq!(timers.first_expired(start + ms(200)), None);
        let due = start + ms(300);
        assert_eq!(timers.first_expired(due), Some((due, Timer::Election)));
        // Firing disarms it.
        timers.disarm(Timer::Election);
        assert_eq!(timers.first_expired(start + ms(400)), None);
        *timers.slot(Timer::Heartbeat) = Some(start + ms(50));
        *timers.slot(Timer::Heartbeat) = None;
        assert_eq!(timers.first_expired(start + ms(400)), None);
        assert_eq!(timers.next_deadline(), None);
    }
}
