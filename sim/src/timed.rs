//! The election core on a virtual clock: an ideal network with a fixed
//! one-way delay, timers with nanosecond resolution, and durations drawn by a
//! caller-supplied function (seeded by the caller, so every run replays).
//!
//! This is the "ideal implementation" the benchmarks compare the Tokio
//! runtime against, and the source of the split-vote rates quoted in
//! `proofs.md`: the same `Node::step`, with nothing between it and the
//! protocol's own timing. Invariants are checked after every step, as in
//! [`crate::cluster`].

use raft_election::Config;
use raft_election::Message;
use raft_election::invariants::{History, Violation};
use raft_election::{HardState, LogSummary, NodeId, Role, Term};
use raft_election::{Input, Node, Output, Timer};
use std::collections::BTreeMap;
use std::time::Duration;

/// Picks a timer duration in `min..=max`.
pub type PickDuration = Box<dyn FnMut(Duration, Duration) -> Duration>;

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
            history: History::new(),
            transitions: Vec::new(),
            scratch: Vec::new(),
        };
        for index in 0..count {
            let id = cluster.configs[index].id();
            cluster
                .step(id, Input::Start)
                .expect("starting a fresh node breaks nothing");
        }
        cluster
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

    /// Crashes `id` now: it stops; its pending timers will find no node.
    pub fn crash(&mut self, id: NodeId) {
        if let Some(slot) = self.nodes.get_mut(usize::from(id.0)) {
            *slot = None;
        }
    }

    /// Restarts a crashed `id` now from its persisted hard state.
    pub fn restart(&mut self, id: NodeId, log: LogSummary) -> Result<(), Violation> {
        let index = usize::from(id.0);
        if self.nodes.get(index).is_none_or(Option::is_some) {
            return Ok(());
        }
        let node = Node::restore(self.storage[index], log);
        self.history.record_restart(id, &node)?;
        self.nodes[index] = Some(node);
        self.step(id, Input::Start)
    }

    /// Asks `id` to hand its leadership to `to` now (§3.10); a node that does
    /// not lead, or is down, ignores it.
    pub fn transfer_leadership(&mut self, id: NodeId, to: NodeId) -> Result<(), Violation> {
        self.step(id, Input::TransferLeadership { to })
    }

    /// Runs events in time order until `done` holds after an event, or virtual
    /// time would pass `deadline`. Returns whether `done` held.
    pub fn run_until(
        &mut self,
        deadline: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<bool, Violation> {
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

    fn handle(&mut self, event: Event) -> Result<(), Violation> {
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
        self.queue.insert((self.now + after, self.sequence), event);
    }

    fn step(&mut self, id: NodeId, input: Input) -> Result<(), Violation> {
        let index = usize::from(id.0);
        let Some(node) = self.nodes.get_mut(index).and_then(Option::as_mut) else {
            return Ok(());
        };
        let config = &self.configs[index];
        let before = node.clone();
        self.scratch.clear();
        node.step(config, input, &mut self.scratch);
        self.history
            .check_step(config, &before, &input, node, &self.scratch)?;
        if node.role() != before.role() {
            if self.transitions.len() == MAX_TRANSITIONS {
                self.transitions.remove(0);
            }
            self.transitions.push(Transition {
                at: self.now,
                node: id,
                role: node.role(),
                term: node.current_term(),
            });
        }
        let outputs = std::mem::take(&mut self.scratch);
        for output in &outputs {
            match *output {
                Output::Persist(hard_state) => self.storage[index] = hard_state,
                Output::Send { to, message } => {
                    self.schedule(
                        self.delay,
                        Event::Deliver {
                            from: id,
                            to,
                            message,
                        },
                    );
                }
                Output::SetTimer { timer, min, max } => {
                    let generation = self.bump(id, timer);
                    let after = (self.pick)(min, max).clamp(min, max);
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
            }
        }
        self.scratch = outputs;
        Ok(())
    }

    fn bump(&mut self, id: NodeId, timer: Timer) -> u64 {
        let generation = self.generations.entry((id, timer)).or_default();
        *generation += 1;
        *generation
    }
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
