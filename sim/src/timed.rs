//! The election core on a virtual clock: an ideal network with a fixed
//! one-way delay, timers with nanosecond resolution, and durations drawn by a
//! caller-supplied function (seeded by the caller, so every run replays).
//!
//! For the leader lease it can also be far from ideal: each node's clock may
//! run at its own rate ([`TimedCluster::with_clock_rates`]), every message
//! may take its own delay ([`TimedCluster::with_delays`]), links can be cut
//! and healed, nodes crash and restart. Virtual time is then real time, and
//! each node's timers run on its own clock. Every lease a node gets is
//! watched by [`crate::lease_watch`] after every event: no two nodes hold
//! one at the same instant, none begins before an earlier one ran out, and
//! every leadership a majority acknowledged in time holds one
//! ([`TimedError`]; `crate::lease_runs` drives it, and
//! [`TimedCluster::with_adversarial_clocks`] sets the worst clocks).
//!
//! This is the "ideal implementation" the benchmarks compare the Tokio
//! runtime against, and the source of the split-vote rates quoted in
//! `proofs.md`: the same `Node::step`, with nothing between it and the
//! protocol's own timing. Invariants are checked after every step, as in
//! [`crate::cluster`].

use crate::lease_watch::{LeaseStats, LeaseWatch, Stepped};
use raft_election::Config;
use raft_election::Message;
use raft_election::invariants::{History, Violation};
use raft_election::{HardState, LogSummary, NodeId, Role, Term};
use raft_election::{Input, Node, Output, Timer};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Picks a timer duration in `min..=max`.
pub type PickDuration = Box<dyn FnMut(Duration, Duration) -> Duration>;

/// Picks the one-way delay of the next message.
pub type PickDelay = Box<dyn FnMut() -> Duration>;

/// Added to the order of every event but a deferrable timer's, so that of
/// events due at one instant those timers come first.
const FIRST_OF_AN_INSTANT: u64 = 1 << 62;

pub(crate) use crate::lease_watch::LeaseReading;

/// What a timed run found wrong: a broken invariant of the core, or a
/// lease check of [`crate::lease_watch`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimedError {
    /// A safety invariant or a transition rule of the core broke.
    #[error(transparent)]
    Violation(#[from] Violation),
    /// A leader a majority acknowledged in time holds no lease.
    #[error(
        "{leader}, leader of {term}, holds no lease at {at:?} though a majority acknowledged its round {round}, started at {started:?}, within the lease's length"
    )]
    LeaseNotHeld {
        /// The leader.
        leader: NodeId,
        /// Its term.
        term: Term,
        /// The round a majority acknowledged.
        round: u64,
        /// When that round started, in real time.
        started: Duration,
        /// When the majority's acknowledgement arrived.
        at: Duration,
    },
    /// A lease began before an earlier term's lease, not revoked, ran out.
    #[error(
        "{holder} got a lease in {term} at {at:?}, before the lease {earlier} held in {earlier_term} ran out at {earlier_until:?} (its holder did not revoke it)"
    )]
    LeaseBeforeAnEarlierEnds {
        /// The new holder.
        holder: NodeId,
        /// Its term.
        term: Term,
        /// When it got the lease.
        at: Duration,
        /// The earlier holder.
        earlier: NodeId,
        /// The earlier lease's term.
        earlier_term: Term,
        /// The earlier lease's natural end.
        earlier_until: Duration,
    },
}

/// What can happen at an instant of virtual time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Deliver {
        from: NodeId,
        to: NodeId,
        message: Message,
    },
    /// Fires only if `generation` is still the timer's current one, so a
    /// re-armed or cancelled timer never fires late.
    Fire {
        node: NodeId,
        timer: Timer,
        generation: u64,
    },
}

/// A role change, as observed after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// Virtual time since the start.
    pub at: Duration,
    /// Which node.
    pub node: NodeId,
    /// Its new role.
    pub role: Role,
    /// Its term after the step.
    pub term: Term,
}

/// A cluster of core nodes on a virtual clock.
pub struct TimedCluster {
    configs: Vec<Config>,
    nodes: Vec<Option<Node>>,
    storage: Vec<HardState>,
    /// Current generation of each (node, timer); bumping it disarms.
    generations: BTreeMap<(NodeId, Timer), u64>,
    queue: BTreeMap<(Duration, u64), Event>,
    sequence: u64,
    now: Duration,
    delay: Duration,
    pick: PickDuration,
    history: History,
    transitions: Vec<Transition>,
    scratch: Vec<Output>,
    /// Each node's clock rate: how much its clock advances per unit of real
    /// time. 1.0 for all unless set.
    clock_rates: Vec<f64>,
    /// Per-message delays, if not the fixed `delay`.
    delays: Option<PickDelay>,
    /// Links cut one way: (from, to).
    cut: BTreeSet<(NodeId, NodeId)>,
    leases: LeaseWatch,
    /// With the adversary's clocks: the rate of every node but the leader.
    adversarial_rate: Option<f64>,
    /// Times a node became leader so far.
    leaderships: u64,
}

/// At most this many role changes are kept; older ones are dropped. A limit,
/// so a long run cannot grow memory without bound.
pub const MAX_TRANSITIONS: usize = 4_096;

impl TimedCluster {
    /// Starts every node of `configs` (ids `0..n`, in order) at time zero.
    ///
    /// # Panics
    /// If the ids are not `0..n`: a harness bug.
    #[must_use]
    pub fn new(configs: Vec<Config>, delay: Duration, pick: PickDuration) -> Self {
        for (index, config) in configs.iter().enumerate() {
            assert_eq!(
                usize::from(config.id().0),
                index,
                "ids must be 0..n in order"
            );
        }
        let count = configs.len();
        // Every node starts with an empty log (`Node::new`) and keeps it.
        let history = History::new(
            configs
                .iter()
                .map(|config| (config.id(), LogSummary::default())),
        );
        let mut cluster = Self {
            configs,
            nodes: vec![Some(Node::new()); count],
            storage: vec![HardState::default(); count],
            generations: BTreeMap::new(),
            queue: BTreeMap::new(),
            sequence: 0,
            now: Duration::ZERO,
            delay,
            pick,
            history,
            transitions: Vec::new(),
            scratch: Vec::new(),
            clock_rates: vec![1.0; count],
            delays: None,
            cut: BTreeSet::new(),
            leases: LeaseWatch::new(count),
            adversarial_rate: None,
            leaderships: 0,
        };
        for index in 0..count {
            let id = cluster.configs[index].id();
            cluster
                .step(id, Input::Start)
                .expect("starting a fresh node breaks nothing");
        }
        cluster
    }

    /// Each node's clock runs at its own rate from now on: `rates[i]` is how
    /// much node `i`'s clock advances per unit of real time, so its timers
    /// last their duration divided by it. Timers already armed keep their
    /// deadlines. Rates must be positive and finite.
    ///
    /// # Panics
    /// If there is not one rate per node, or a rate is not positive: a
    /// harness bug.
    #[must_use]
    pub fn with_clock_rates(mut self, rates: Vec<f64>) -> Self {
        assert_eq!(rates.len(), self.configs.len(), "one clock rate per node");
        assert!(
            rates.iter().all(|r| r.is_finite() && *r > 0.0),
            "clock rates must be positive: {rates:?}"
        );
        self.clock_rates = rates;
        self
    }

    /// Node `id`'s clock runs at `rate` from now on (see
    /// [`Self::with_clock_rates`]); timers already armed keep their deadlines.
    ///
    /// # Panics
    /// If `rate` is not positive: a harness bug.
    pub fn set_clock_rate(&mut self, id: NodeId, rate: f64) {
        assert!(rate.is_finite() && rate > 0.0, "clock rate {rate}");
        if let Some(slot) = self.clock_rates.get_mut(usize::from(id.0)) {
            *slot = rate;
        }
    }

    /// Every message sent from now on takes the delay `pick` draws.
    #[must_use]
    pub fn with_delays(mut self, pick: PickDelay) -> Self {
        self.delays = Some(pick);
        self
    }

    /// Reads the lease outputs as `reading` says (planted bugs in tests).
    pub(crate) fn with_lease_reading(mut self, reading: LeaseReading) -> Self {
        self.leases = self.leases.with_reading(reading);
        self
    }

    /// The adversary's clocks for the leader lease: from each election on,
    /// the new leader's clock runs at rate 1 and every other node's at
    /// `fast`, the worst case for the leader's lease against the vote
    /// guards of its followers (`fast` at most `1 +` the drift bound).
    ///
    /// # Panics
    /// If `fast` is not positive: a harness bug.
    #[must_use]
    pub fn with_adversarial_clocks(mut self, fast: f64) -> Self {
        assert!(fast.is_finite() && fast > 0.0, "clock rate {fast}");
        self.adversarial_rate = Some(fast);
        self
    }

    /// Cuts the link from `from` to `to`: messages sent on it from now on are
    /// dropped (those already in flight still arrive).
    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        self.cut.insert((from, to));
    }

    /// Cuts every link to and from `id`.
    pub fn isolate(&mut self, id: NodeId) {
        for config in &self.configs {
            let other = config.id();
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Whether `id` holds a leader lease now, by real time.
    #[must_use]
    pub fn holds_lease(&self, id: NodeId) -> bool {
        self.leases.holds(id, self.now)
    }

    /// What the lease checks saw so far.
    #[must_use]
    pub fn lease_stats(&self) -> LeaseStats {
        self.leases.stats()
    }

    /// How many times a node became leader so far.
    #[must_use]
    pub fn leaderships(&self) -> u64 {
        self.leaderships
    }

    /// How many times a node got or extended a leader lease so far.
    #[must_use]
    pub fn lease_grants(&self) -> u64 {
        self.leases.stats().grants
    }

    /// Virtual time since the start.
    #[must_use]
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The node, or `None` while crashed.
    #[must_use]
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(usize::from(id.0))?.as_ref()
    }

    /// Live leaders right now.
    #[must_use]
    pub fn leaders(&self) -> Vec<(NodeId, Term)> {
        self.nodes
            .iter()
            .zip(&self.configs)
            .filter_map(|(node, config)| {
                let node = node.as_ref()?;
                (node.role() == Role::Leader).then_some((config.id(), node.current_term()))
            })
            .collect()
    }

    /// Role changes so far (the most recent [`MAX_TRANSITIONS`]).
    #[must_use]
    pub fn transitions(&self) -> &[Transition] {
        &self.transitions
    }

    /// Crashes `id` now: it stops; its pending timers will never fire, even
    /// after a restart, and its lease ends.
    pub fn crash(&mut self, id: NodeId) {
        let index = usize::from(id.0);
        if let Some(slot) = self.nodes.get_mut(index) {
            *slot = None;
            for timer in Timer::ALL {
                self.bump(id, timer);
            }
            self.leases.crash(id, self.now);
        }
    }

    /// Restarts a crashed `id` now from its persisted hard state and the
    /// empty log every node of this cluster holds.
    pub fn restart(&mut self, id: NodeId) -> Result<(), TimedError> {
        let index = usize::from(id.0);
        if self.nodes.get(index).is_none_or(Option::is_some) {
            return Ok(());
        }
        let node = Node::restore(self.storage[index], LogSummary::default());
        self.history.record_restart(id, &node)?;
        self.nodes[index] = Some(node);
        self.step(id, Input::Start)
    }

    /// Asks `id` to hand its leadership to `to` now (§3.10); a node that does
    /// not lead, or is down, ignores it.
    pub fn transfer_leadership(&mut self, id: NodeId, to: NodeId) -> Result<(), TimedError> {
        self.step(id, Input::TransferLeadership { to })
    }

    /// Runs events in time order until `done` holds after an event, or virtual
    /// time would pass `deadline`. Returns whether `done` held.
    pub fn run_until(
        &mut self,
        deadline: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<bool, TimedError> {
        while let Some(entry) = self.queue.first_entry() {
            let (at, _) = *entry.key();
            if at > deadline {
                break;
            }
            let event = entry.remove();
            self.now = at;
            self.handle(event)?;
            if done(self) {
                return Ok(true);
            }
        }
        self.now = self.now.max(deadline);
        Ok(done(self))
    }

    fn handle(&mut self, event: Event) -> Result<(), TimedError> {
        match event {
            Event::Deliver { from, to, message } => self.step(to, Input::Receive { from, message }),
            Event::Fire {
                node,
                timer,
                generation,
            } => {
                if self.generations.get(&(node, timer)) == Some(&generation) {
                    self.step(node, Input::Timeout(timer))?;
                }
                Ok(())
            }
        }
    }

    fn schedule(&mut self, after: Duration, event: Event) {
        self.sequence += 1;
        // Of events due at one instant a deferrable timer's comes first, as
        // a driver delivers it just before the node's next input.
        let order = match event {
            Event::Fire { timer, .. } if timer.is_deferrable() => self.sequence,
            _ => self.sequence + FIRST_OF_AN_INSTANT,
        };
        self.queue.insert((self.now + after, order), event);
    }

    fn step(&mut self, id: NodeId, input: Input) -> Result<(), TimedError> {
        let index = usize::from(id.0);
        let Some(node) = self.nodes.get_mut(index).and_then(Option::as_mut) else {
            return Ok(());
        };
        let config = &self.configs[index];
        let before = node.clone();
        self.scratch.clear();
        // Every check runs just below, on this one copy of the state before.
        node.step_without_assertions(config, input, &mut self.scratch);
        self.history
            .check_step(config, &before, &input, node, &self.scratch)?;
        let (role, term) = (node.role(), node.current_term());
        if role != before.role() {
            if role == Role::Leader {
                self.leaderships += 1;
                self.adversary_slows(index);
            }
            if self.transitions.len() == MAX_TRANSITIONS {
                self.transitions.remove(0);
            }
            self.transitions.push(Transition {
                at: self.now,
                node: id,
                role,
                term,
            });
        }
        let outputs = std::mem::take(&mut self.scratch);
        self.execute(id, &outputs);
        let rate = self.clock_rates[index];
        let result = match &self.nodes[index] {
            Some(after) => self.leases.step(&Stepped {
                config: &self.configs[index],
                before: before.role(),
                input: &input,
                after,
                outputs: &outputs,
                now: self.now,
                real: &|local| real_at(rate, local),
            }),
            None => Ok(()),
        };
        self.scratch = outputs;
        result
    }

    /// What node `id`'s driver does with the outputs of its step: persist,
    /// send (unless the link is cut), arm and cancel timers on its clock.
    fn execute(&mut self, id: NodeId, outputs: &[Output]) {
        let index = usize::from(id.0);
        for output in outputs {
            match *output {
                Output::Persist(hard_state) => self.storage[index] = hard_state,
                Output::Send { to, message } => {
                    if self.cut.contains(&(id, to)) {
                        continue;
                    }
                    let delay = self.delays.as_mut().map_or(self.delay, |pick| pick());
                    self.schedule(
                        delay,
                        Event::Deliver {
                            from: id,
                            to,
                            message,
                        },
                    );
                }
                Output::SetTimer { timer, min, max } => {
                    let generation = self.bump(id, timer);
                    let local = (self.pick)(min, max).clamp(min, max);
                    let after = real_at(self.clock_rates[index], local);
                    let fire = Event::Fire {
                        node: id,
                        timer,
                        generation,
                    };
                    self.schedule(after, fire);
                }
                Output::CancelTimer(timer) => {
                    self.bump(id, timer);
                }
                // Read by the lease watch, after the step.
                Output::RoundStarted { .. }
                | Output::LeaseExtended { .. }
                | Output::LeaseRevoked => {}
            }
        }
    }

    /// With the adversary's clocks, node `index` just became leader: its
    /// clock runs slowest from now on, every other one fastest.
    fn adversary_slows(&mut self, index: usize) {
        if let Some(fast) = self.adversarial_rate {
            for (other, rate) in self.clock_rates.iter_mut().enumerate() {
                *rate = if other == index { 1.0 } else { fast };
            }
        }
    }

    fn bump(&mut self, id: NodeId, timer: Timer) -> u64 {
        let generation = self.generations.entry((id, timer)).or_default();
        *generation += 1;
        *generation
    }
}

/// The real duration of `local` on a clock running at `rate`, rounded up.
fn real_at(rate: f64, local: Duration) -> Duration {
    if rate == 1.0 {
        return local;
    }
    Duration::from_secs_f64(local.as_secs_f64() / rate) + Duration::from_nanos(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_election::Timing;

    /// A deterministic "random" pick: cycles through the range in steps.
    fn stepping_pick() -> PickDuration {
        let mut k = 0u32;
        Box::new(move |min, max| {
            k = (k + 7) % 11;
            min + (max - min) * k / 10
        })
    }

    #[test]
    fn a_leader_is_elected_and_replaced_after_it_crashes() {
        let configs = Config::cluster(3, Timing::default()).unwrap();
        let mut cluster = TimedCluster::new(configs, Duration::from_micros(100), stepping_pick());
        let elected = cluster
            .run_until(Duration::from_secs(1), |c| !c.leaders().is_empty())
            .unwrap();
        assert!(elected);
        let (first, term) = cluster.leaders()[0];
        assert!(cluster.now() >= Timing::default().election_timeout_min);

        cluster.crash(first);
        let deadline = cluster.now() + Duration::from_secs(2);
        let replaced = cluster
            .run_until(deadline, |c| c.leaders().iter().any(|&(_, t)| t > term))
            .unwrap();
        assert!(replaced, "no new leader by {deadline:?}");
        assert_ne!(cluster.leaders()[0].0, first);
    }

    #[test]
    fn identical_timeouts_split_the_vote_until_they_differ() {
        let configs = Config::cluster(3, Timing::default()).unwrap();
        // Every timer draws the minimum: all three campaign at the same instant.
        let pick: PickDuration = Box::new(|min, _| min);
        let mut cluster = TimedCluster::new(configs, Duration::from_micros(100), pick);
        let elected = cluster
            .run_until(Duration::from_secs(2), |c| !c.leaders().is_empty())
            .unwrap();
        assert!(!elected, "perfectly synchronized timeouts split every term");
        let candidates = cluster
            .transitions()
            .iter()
            .filter(|t| t.role == Role::Candidate && t.term == Term(1))
            .count();
        assert_eq!(candidates, 3, "all three campaigned in term 1");
    }
}
