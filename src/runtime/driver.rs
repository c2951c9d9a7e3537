//! One Tokio task per node: wait for the next input, step the core, execute
//! its outputs in order. No election rule lives here.
//!
//! The loop has quinn's and mini-redis's shape:
//!
//! ```text
//! loop {
//!     select! { biased; shutdown => return, deadline => fire timers, inbox => receive }
//!     node.step(input); execute outputs (persist, send, set/cancel timer)
//! }
//! ```

use super::config::TimeoutSource;
use super::events::Observer;
use super::network::Network;
use super::sync::Arc;
use crate::config::Config;
use crate::node::{Input, Node, Output, Timer};
use crate::sim::Envelope;
use crate::storage::{Storage, StorageError};
use crate::types::{HardState, LogSummary, NodeId};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
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
    // Boxed: the generator state is ten times the size of the other variant.
    Seeded(Box<StdRng>),
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
                Self::Seeded(Box::new(StdRng::seed_from_u64(seed ^ stream)))
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

    /// Disarms and returns the timer that expired first by `now`, if any.
    fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        let timer = [
            (Timer::Election, self.election),
            (Timer::Heartbeat, self.heartbeat),
        ]
        .into_iter()
        .filter_map(|(timer, deadline)| Some((deadline?, timer)))
        .filter(|&(deadline, _)| deadline <= now)
        .min()
        .map(|(_, timer)| timer)?;
        *self.slot(timer) = None;
        Some(timer)
    }
}

/// Everything one node's task owns.
pub(crate) struct Driver<S> {
    config: Config,
    node: Node,
    storage: S,
    picker: TimeoutPicker,
    inbox: mpsc::Receiver<Envelope>,
    shutdown: watch::Receiver<bool>,
    network: Arc<Network>,
    observer: Arc<Observer>,
}

/// The channels and shared pieces a driver is wired to.
pub(crate) struct Wiring {
    pub(crate) inbox: mpsc::Receiver<Envelope>,
    pub(crate) shutdown: watch::Receiver<bool>,
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
    ) -> Self {
        Self {
            config,
            node: Node::restore(restored, LogSummary::default()),
            storage,
            picker,
            inbox: wiring.inbox,
            shutdown: wiring.shutdown,
            network: wiring.network,
            observer: wiring.observer,
        }
    }

    /// Runs the node from its restored state until shutdown or a storage
    /// failure. A node that failed is taken down like a killed one, so no
    /// one waits on it or sends to it as if it were alive.
    pub(crate) async fn run(mut self) -> Result<(), NodeError> {
        let result = self.serve().await;
        if let Err(e) = &result {
            let id = self.config.id();
            tracing::error!("{e}");
            if self.network.links().kill(id).is_ok() {
                self.network.close_inbox(id);
                self.observer.record_kill(id);
            }
        }
        result
    }

    async fn serve(&mut self) -> Result<(), NodeError> {
        let id = self.config.id();
        self.observer.record_start(id, &self.node);
        let mut timers = Timers::default();
        let mut outputs = Vec::new();
        self.step(Input::Start, &mut timers, &mut outputs)?;
        loop {
            let deadline = timers.next_deadline();
            // `biased`: a fixed order makes paused-clock runs reproducible, and
            // an expired timer goes before a waiting message, as it would on a
            // network with any delay: two nodes whose timers expire together
            // both campaign, the split vote of §5.2.
            tokio::select! {
                biased;
                _ = self.shutdown.changed() => return Ok(()),
                () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    let now = Instant::now();
                    // Each timer fires at most once per wake: firing disarms it and
                    // re-arming puts it in the future (durations are positive).
                    for _ in 0..2 {
                        let Some(timer) = timers.take_expired(now) else { break };
                        self.step(Input::Timeout(timer), &mut timers, &mut outputs)?;
                    }
                }
                received = self.inbox.recv() => {
                    // `None` means the network dropped our inbox: we were killed.
                    let Some(Envelope { from, message, .. }) = received else { return Ok(()) };
                    self.step(Input::Receive { from, message }, &mut timers, &mut outputs)?;
                }
            }
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
                    self.network.send(id, term, to, message);
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
        let configs = Config::cluster(3, crate::Timing::default()).unwrap();
        let observer = Arc::new(Observer::new(&configs[0]));
        let network = Arc::new(Network::new(3, Arc::clone(&observer)));
        let (_shutdown, shutdown_rx) = watch::channel(false);
        let wiring = Wiring {
            inbox: network.open_inbox(NodeId(0)),
            shutdown: shutdown_rx,
            network: Arc::clone(&network),
            observer: Arc::clone(&observer),
        };
        let picker = TimeoutPicker::new(&TimeoutSource::Seeded(1), NodeId(0), 0);
        let restored = BrokenDisk.load().unwrap();
        let driver = Driver::new(configs[0].clone(), BrokenDisk, restored, picker, wiring);
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

    #[test]
    fn a_replaced_or_cancelled_timer_never_expires() {
        let start = Instant::now();
        let mut timers = Timers::default();
        *timers.slot(Timer::Election) = Some(start + ms(100));
        // Re-armed later (a heartbeat arrived): the first deadline is gone.
        *timers.slot(Timer::Election) = Some(start + ms(300));
        assert_eq!(timers.take_expired(start + ms(200)), None);
        assert_eq!(timers.take_expired(start + ms(300)), Some(Timer::Election));
        // Firing disarms it.
        assert_eq!(timers.take_expired(start + ms(400)), None);
        *timers.slot(Timer::Heartbeat) = Some(start + ms(50));
        *timers.slot(Timer::Heartbeat) = None;
        assert_eq!(timers.take_expired(start + ms(400)), None);
        assert_eq!(timers.next_deadline(), None);
    }
}
