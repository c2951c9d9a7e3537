//! Fuzz inputs and the harnesses that run them, shared by the cargo-fuzz
//! targets in `fuzz/` and the stable corpus replay in `tests/fuzz_corpus.rs`,
//! so the fuzzer and `cargo test` run the very same code.
//!
//! - [`run_schedule`] (target `election`): an arbitrary schedule of faults over
//!   an honest [`Cluster`] of 3 to 5 nodes running any combination of the
//!   election features. The simulator checks every node-local and
//!   cluster-wide invariant after every step.
//! - [`run_node`] (target `node`): one [`Node`] with any features fed
//!   arbitrary inputs, forged messages from anyone with any term included.
//!   Global safety cannot hold under forgery, so it checks what a single node
//!   guarantees on its own.
//!
//! Inputs decode with [`decode`], exactly as libfuzzer-sys does. Every loop is
//! bounded by [`MAX_SCHEDULE_STEPS`] or [`MAX_NODE_STIMULI`], whatever the input.

use crate::cluster::{Cluster, FeatureCounts};
use arbitrary::{Arbitrary, Unstructured};
use raft_election::Message;
use raft_election::invariants::{self, History, Invariant, Violation};
use raft_election::{ClockDrift, Config, Features, Timing};
use raft_election::{HardState, LogSummary, NodeId, Role, Term};
use raft_election::{Input, Node, Output};
use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};

/// Smallest cluster the `election` target builds: the smallest with a real quorum.
pub const MIN_CLUSTER: u8 = 3;
/// Largest cluster the fuzz targets build; 5 voters already allow two minorities.
pub const MAX_CLUSTER: u8 = 5;
/// Steps of a schedule beyond this are ignored: bugs need a handful of steps,
/// and a bound keeps every execution fast (a goal of tens of thousands per second).
pub const MAX_SCHEDULE_STEPS: usize = 64;
/// A duplicate is refused once this many messages are in flight: a few copies
/// reach every interleaving a bug needs, and a storm only slows the fuzzer.
pub const MAX_FUZZ_IN_FLIGHT: usize = 32;
/// [`Step::Stabilize`] delivers at most this many messages: enough for a whole
/// election among 5 nodes (16 messages), while a bounded macro-step keeps
/// the cost of one step small.
pub const MAX_STABILIZE_DELIVERIES: usize = 32;
/// Stimuli of a node script beyond this are ignored, for the same reason.
pub const MAX_NODE_STIMULI: usize = 64;
/// Forged senders are drawn from ids `0..FORGED_SENDERS`: members, the node
/// itself and non-members alike.
pub const FORGED_SENDERS: u8 = 8;

/// Decodes fuzz input `bytes` exactly as libfuzzer-sys's `fuzz_target!` does,
/// so a corpus file replays on stable as the fuzzer ran it.
pub fn decode<'a, T: Arbitrary<'a>>(bytes: &'a [u8]) -> arbitrary::Result<T> {
    T::arbitrary_take_rest(Unstructured::new(bytes))
}

/// The checked-in inputs of fuzz target `target` in `fuzz/<kind>/<target>/`
/// (`kind`: `corpus`, or `regressions` for kept crashes), sorted by file
/// name, each with its bytes; none if the directory is missing (a target
/// with no crash kept has no regressions directory). Hidden files are not
/// inputs. What every replay of a corpus on stable reads (the tests, the
/// harness benchmark).
///
/// # Panics
/// On a file or directory entry that cannot be read: a replay must not
/// skip an input silently.
#[must_use]
pub fn checked_in_inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.is_file())
        .filter(|path| {
            !path
                .file_name()
                .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."))
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, bytes)
        })
        .collect()
}

/// A log summary with a small index and term, so that ties, and both sides
/// of the §5.4.1 comparison, are common.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Arbitrary)]
pub struct SmallLog {
    /// Index of the last entry.
    #[arbitrary(with = |u: &mut Unstructured| u.int_in_range(0..=3))]
    pub index: u8,
    /// Term of the last entry.
    #[arbitrary(with = |u: &mut Unstructured| u.int_in_range(0..=3))]
    pub term: u8,
}

impl From<SmallLog> for LogSummary {
    fn from(log: SmallLog) -> Self {
        Self {
            last_log_index: u64::from(log.index),
            last_log_term: Term(u64::from(log.term)),
        }
    }
}

/// The input of the `election` target: a cluster and a fault schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Cluster size, in `MIN_CLUSTER..=MAX_CLUSTER`.
    pub nodes: u8,
    /// The election features every node runs.
    pub features: Features,
    /// Per-node log summaries (the first `nodes` are used); `None` gives every
    /// node an empty log.
    pub logs: Option<[SmallLog; MAX_CLUSTER as usize]>,
    /// What happens, in order; at most [`MAX_SCHEDULE_STEPS`] are run.
    pub steps: Vec<Step>,
}

impl Schedule {
    /// The fields before the steps, as `#[derive(Arbitrary)]` reads them.
    fn arbitrary_head(
        u: &mut Unstructured<'_>,
    ) -> arbitrary::Result<(u8, Features, Option<[SmallLog; MAX_CLUSTER as usize]>)> {
        Ok((
            u.int_in_range(MIN_CLUSTER..=MAX_CLUSTER)?,
            u.arbitrary()?,
            u.arbitrary()?,
        ))
    }
}

/// Decodes as `#[derive(Arbitrary)]` would, but for the steps a fuzz input
/// ends with, which stop at [`MAX_SCHEDULE_STEPS`]: the steps past it are
/// never run, and decoding them cost instrumented code per byte.
impl<'a> Arbitrary<'a> for Schedule {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let (nodes, features, logs) = Self::arbitrary_head(u)?;
        Ok(Self {
            nodes,
            features,
            logs,
            steps: u.arbitrary()?,
        })
    }

    fn arbitrary_take_rest(mut u: Unstructured<'a>) -> arbitrary::Result<Self> {
        let (nodes, features, logs) = Self::arbitrary_head(&mut u)?;
        // As `Vec::arbitrary_take_rest` reads a sequence: a flag before each
        // element says whether one follows (a test pins the equivalence).
        let mut steps = Vec::new();
        while steps.len() < MAX_SCHEDULE_STEPS && u.arbitrary::<bool>().unwrap_or(false) {
            steps.push(u.arbitrary()?);
        }
        Ok(Self {
            nodes,
            features,
            logs,
            steps,
        })
    }
}

/// One event of a [`Schedule`]. Choices are taken modulo what exists, so
/// every byte string means something and most steps do something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Arbitrary)]
pub enum Step {
    /// Deliver in-flight message `index % in_flight` (any order: this reorders).
    Deliver(u8),
    /// Lose in-flight message `index % in_flight`.
    Drop(u8),
    /// Copy in-flight message `index % in_flight`, unless
    /// [`MAX_FUZZ_IN_FLIGHT`] messages are in flight already.
    Duplicate(u8),
    /// Fire an armed timer of node `node % nodes`, if it is up: the
    /// `timer % armed`-th of its armed timers, in [`Timer::ALL`](raft_election::Timer::ALL) order.
    Fire(u8, u8),
    /// Deliver in-flight messages oldest first until none is left, at most
    /// [`MAX_STABILIZE_DELIVERIES`] of them.
    Stabilize,
    /// Crash node `id % nodes`: its volatile state and timers are gone.
    Crash(u8),
    /// Restart node `id % nodes` from its storage, crashing it first if it is up.
    Restart(u8),
    /// Cut both directions between nodes `a % nodes` and `b % nodes`.
    Cut(u8, u8),
    /// Cut node `id % nodes` off from every other node.
    Isolate(u8),
    /// Restore every link.
    Heal,
    /// Ask node `id % nodes` to hand its leadership to node `to % nodes`
    /// (ignored unless it leads, with leadership transfer on).
    Transfer(u8, u8),
}

/// What a schedule did, so tests can tell a corpus that exercises elections
/// from one that never gets past the first timer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScheduleOutcome {
    /// Steps run.
    pub steps: usize,
    /// Terms that got a leader.
    pub leaders: usize,
    /// Restarts from storage.
    pub restarts: usize,
    /// The highest term any live node reached.
    pub max_term: Term,
    /// The features the cluster ran.
    pub features: Features,
    /// What those features did.
    pub feature_counts: FeatureCounts,
}

/// A schedule that broke an invariant: which step, and what broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleFailure {
    /// Zero-based position of the step in the schedule.
    pub position: usize,
    /// The step.
    pub step: Step,
    /// The broken invariant, naming the term and the nodes.
    pub violation: Violation,
}

impl fmt::Display for ScheduleFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            position,
            step,
            violation,
        } = self;
        write!(f, "step {position} ({step:?}): {violation}")
    }
}

impl std::error::Error for ScheduleFailure {}

/// Clusters built so far on this thread, one per size and set of features
/// (3 sizes times 16 sets: a bounded cache), each reset in place for the
/// next schedule: validating the timing and cloning each node's voter set
/// took a tenth of a short execution, and the cluster's queues keep their
/// capacity.
struct ClusterCache {
    clusters: Vec<Option<Cluster>>,
}

impl ClusterCache {
    const FEATURE_SETS: usize = 16;

    /// The slot of a cluster of `nodes` (clamped) running `features`.
    fn slot(nodes: u8, features: Features) -> usize {
        // Every field named, so a new feature cannot share a slot.
        let Features {
            pre_vote,
            check_quorum,
            lease_guarded_votes,
            leadership_transfer,
        } = features;
        let bits = usize::from(pre_vote)
            | usize::from(check_quorum) << 1
            | usize::from(lease_guarded_votes) << 2
            | usize::from(leadership_transfer) << 3;
        usize::from(nodes - MIN_CLUSTER) * Self::FEATURE_SETS + bits
    }

    /// A fresh cluster of `nodes` running `features` with `logs`: one
    /// built earlier, reset, or a new one.
    fn fresh(&mut self, nodes: u8, features: Features, logs: &[LogSummary]) -> &mut Cluster {
        let slot = &mut self.clusters[Self::slot(nodes, features)];
        match slot {
            Some(cluster) => cluster.reset(logs),
            None => {
                let configs = Config::cluster(nodes, Timing::default())
                    .expect("the default timing is valid")
                    .into_iter()
                    .map(|config| config.with_features(features))
                    .collect();
                *slot = Some(Cluster::new(configs, logs));
            }
        }
        slot.as_mut().expect("filled just above")
    }
}

thread_local! {
    static CLUSTERS: RefCell<ClusterCache> = RefCell::new(ClusterCache {
        clusters: (0..usize::from(MAX_CLUSTER - MIN_CLUSTER + 1) * ClusterCache::FEATURE_SETS)
            .map(|_| None)
            .collect(),
    });
}

/// Runs `schedule` over a fresh cluster; the first broken invariant is an `Err`.
pub fn run_schedule(schedule: &Schedule) -> Result<ScheduleOutcome, ScheduleFailure> {
    let nodes = schedule.nodes.clamp(MIN_CLUSTER, MAX_CLUSTER);
    let mut logs = [LogSummary::default(); MAX_CLUSTER as usize];
    if let Some(small) = schedule.logs {
        for (log, small) in logs.iter_mut().zip(small) {
            *log = small.into();
        }
    }
    let logs = &logs[..usize::from(nodes)];
    CLUSTERS.with_borrow_mut(|clusters| {
        let cluster = clusters.fresh(nodes, schedule.features, logs);
        run_steps(cluster, nodes, schedule)
    })
}

/// Runs the steps of `schedule` (at most [`MAX_SCHEDULE_STEPS`]) on `cluster`.
fn run_steps(
    cluster: &mut Cluster,
    nodes: u8,
    schedule: &Schedule,
) -> Result<ScheduleOutcome, ScheduleFailure> {
    let mut outcome = ScheduleOutcome {
        features: schedule.features,
        ..ScheduleOutcome::default()
    };
    for (position, &step) in schedule.steps.iter().take(MAX_SCHEDULE_STEPS).enumerate() {
        let restarted = apply(cluster, nodes, step).map_err(|violation| ScheduleFailure {
            position,
            step,
            violation,
        })?;
        outcome.steps += 1;
        outcome.restarts += usize::from(restarted);
    }
    outcome.leaders = cluster.history().leaders().len();
    outcome.feature_counts = cluster.feature_counts();
    outcome.max_term = cluster
        .ids()
        .filter_map(|id| cluster.term(id))
        .max()
        .unwrap_or_default();
    Ok(outcome)
}

/// Runs `schedule` and panics with the violation if it breaks an invariant:
/// the body of the `election` fuzz target.
pub fn election(schedule: &Schedule) {
    if let Err(failure) = run_schedule(schedule) {
        panic!("{failure}");
    }
}

/// Applies one step; returns whether a node restarted.
fn apply(cluster: &mut Cluster, nodes: u8, step: Step) -> Result<bool, Violation> {
    let node = |choice: u8| NodeId(choice % nodes);
    let message = |cluster: &Cluster, choice: u8| match cluster.in_flight().len() {
        0 => None,
        len => Some(usize::from(choice) % len),
    };
    match step {
        Step::Deliver(choice) => {
            if let Some(index) = message(cluster, choice) {
                cluster.deliver(index)?;
            }
        }
        Step::Drop(choice) => {
            if let Some(index) = message(cluster, choice) {
                cluster.drop(index);
            }
        }
        Step::Duplicate(choice) => {
            if let Some(index) = message(cluster, choice) {
                if cluster.in_flight().len() < MAX_FUZZ_IN_FLIGHT {
                    cluster.duplicate(index);
                }
            }
        }
        Step::Fire(choice, timer) => {
            let id = node(choice);
            let armed = cluster.armed(id).count();
            // None armed: `nth(0)` of nothing, and nothing fires.
            let chosen = cluster.armed(id).nth(usize::from(timer) % armed.max(1));
            if let Some(chosen) = chosen {
                cluster.fire(id, chosen)?;
            }
        }
        Step::Stabilize => {
            cluster.stabilize(MAX_STABILIZE_DELIVERIES)?;
        }
        Step::Crash(choice) => {
            cluster.crash(node(choice));
        }
        Step::Restart(choice) => {
            cluster.crash(node(choice));
            return cluster.restart(node(choice));
        }
        Step::Cut(a, b) => cluster.cut(node(a), node(b)),
        Step::Isolate(choice) => cluster.isolate(node(choice)),
        Step::Heal => cluster.heal(),
        Step::Transfer(id, to) => {
            cluster.transfer_leadership(node(id), node(to))?;
        }
    }
    Ok(false)
}

/// The input of the `node` target: one node of a cluster and what it is fed.
#[derive(Clone, Debug, Arbitrary)]
pub struct NodeScript {
    /// Cluster size, in `1..=MAX_CLUSTER`.
    #[arbitrary(with = |u: &mut Unstructured| u.int_in_range(1..=MAX_CLUSTER))]
    pub voters: u8,
    /// The node's id is `id % voters`; its top bit turns the leader lease
    /// on where the features allow it (lease-guarded votes), so the corpus
    /// kept from before the lease decodes as it did. Its next bit starts
    /// the node near the term ceiling ([`NodeScript::first_term`]): half of
    /// all scripts run there, half from term 0.
    pub id: u8,
    /// The election features the node runs.
    pub features: Features,
    /// The node's log summary.
    pub log: SmallLog,
    /// What the node is fed, in order; at most [`MAX_NODE_STIMULI`] are run.
    pub stimuli: Vec<Stimulus>,
}

impl NodeScript {
    /// The term the node first starts in: 0, or with bit `0x40` of
    /// [`Self::id`] set the [`Term::CEILING`] or one of the three terms
    /// below it, so that elections, adopted terms and forged ones meet the
    /// ceiling as often as term 0.
    #[must_use]
    pub fn first_term(&self) -> Term {
        if self.id & 0x40 == 0 {
            return Term(0);
        }
        Term(Term::CEILING.0 - u64::from(self.id & 0x03))
    }
}

/// One thing that happens to the node of a [`NodeScript`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Arbitrary)]
pub enum Stimulus {
    /// Any input at all: a message from any sender (itself and non-members
    /// too) with any term up to `u64::MAX`, or any timer, armed or not.
    Raw(Input),
    /// A message from sender `from % FORGED_SENDERS` whose term is the node's
    /// current term moved by `offset`: equal and adjacent terms, where the
    /// interesting comparisons happen, that raw terms would rarely hit.
    Near {
        /// Sender, modulo [`FORGED_SENDERS`].
        from: u8,
        /// The message; its own term is replaced.
        message: Message,
        /// Distance from the node's current term (saturating).
        offset: i8,
    },
    /// Crash, then restart from what the node last persisted.
    Restart,
}

/// A node script that broke a guarantee: which stimulus, and what broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFailure {
    /// How many stimuli ran before this one (0 also for the boot's `Start`).
    pub position: usize,
    /// The input the node was fed (after resolving a [`Stimulus::Near`] term);
    /// `None` for a restart.
    pub input: Option<Input>,
    /// The broken guarantee, naming the term and the node.
    pub violation: Violation,
}

impl fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            position,
            input,
            violation,
        } = self;
        match input {
            Some(input) => write!(f, "stimulus {position} ({input:?}): {violation}"),
            None => write!(f, "stimulus {position} (restart): {violation}"),
        }
    }
}

impl std::error::Error for NodeFailure {}

/// What a node script did, for tests that check the corpus reaches each role.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeOutcome {
    /// Stimuli run.
    pub stimuli: usize,
    /// Whether the node was ever leader.
    pub led: bool,
    /// Whether the node ever granted a vote to another node.
    pub voted_for_another: bool,
    /// The highest term the node reached.
    pub max_term: Term,
    /// Whether the node was ever a pre-candidate.
    pub pre_candidate: bool,
    /// Whether the node ever campaigned on a TimeoutNow.
    pub transfer_campaign: bool,
    /// Whether the node ever held a leader lease.
    pub leased: bool,
}

/// Runs `script` against a fresh node; the first broken guarantee is an `Err`.
pub fn run_node(script: &NodeScript) -> Result<NodeOutcome, NodeFailure> {
    let voters = script.voters.clamp(1, MAX_CLUSTER);
    let id = NodeId(script.id % voters);
    let mut config = Config::new(id, (0..voters).map(NodeId), Timing::default())
        .expect("ids 0..voters with the default timing are valid")
        .with_features(script.features);
    if script.id & 0x80 != 0 && script.features.lease_guarded_votes {
        config = config
            .with_leader_lease(ClockDrift::DEFAULT)
            .expect("the features guard votes");
    }
    let first = HardState {
        current_term: script.first_term(),
        voted_for: None,
    };
    let mut harness = NodeHarness::new(config, first, script.log.into());
    let mut outcome = NodeOutcome::default();
    harness
        .step(Input::Start)
        .map_err(|violation| NodeFailure {
            position: 0,
            input: Some(Input::Start),
            violation,
        })?;
    for (position, &stimulus) in script.stimuli.iter().take(MAX_NODE_STIMULI).enumerate() {
        let input = harness.resolve(stimulus);
        let result = match input {
            Some(input) => harness.step(input),
            None => harness.restart(),
        };
        result.map_err(|violation| NodeFailure {
            position,
            input,
            violation,
        })?;
        let node = &harness.node;
        outcome.stimuli += 1;
        outcome.led |= node.role() == Role::Leader;
        outcome.pre_candidate |= node.role() == Role::PreCandidate;
        outcome.transfer_campaign |= node.role() == Role::Candidate
            && matches!(
                input,
                Some(Input::Receive {
                    message: Message::TimeoutNow { .. },
                    ..
                })
            );
        outcome.voted_for_another |= node.voted_for().is_some_and(|v| v != id);
        outcome.leased |= node.lease_round().is_some();
        outcome.max_term = outcome.max_term.max(node.current_term());
    }
    Ok(outcome)
}

/// Runs `script` and panics if the node breaks a guarantee: the body of the
/// `node` fuzz target.
pub fn node(script: &NodeScript) {
    if let Err(failure) = run_node(script) {
        panic!("{failure}");
    }
}

/// One node, its storage, and the ghost history of what it did.
struct NodeHarness {
    config: Config,
    node: Node,
    log: LogSummary,
    /// What the node last asked to persist: all that survives a restart.
    storage: HardState,
    history: History,
    outputs: Vec<Output>,
}

impl NodeHarness {
    fn new(config: Config, first: HardState, log: LogSummary) -> Self {
        Self {
            history: History::new([(config.id(), log)]),
            config,
            node: Node::restore(first, log),
            log,
            storage: first,
            outputs: Vec::new(),
        }
    }

    /// The input a stimulus stands for, or `None` for a restart.
    fn resolve(&self, stimulus: Stimulus) -> Option<Input> {
        match stimulus {
            Stimulus::Raw(input) => Some(input),
            Stimulus::Near {
                from,
                message,
                offset,
            } => {
                let term = Term(
                    self.node
                        .current_term()
                        .0
                        .saturating_add_signed(i64::from(offset)),
                );
                Some(Input::Receive {
                    from: NodeId(from % FORGED_SENDERS),
                    message: with_term(message, term),
                })
            }
            Stimulus::Restart => None,
        }
    }

    /// Feeds `input` to the node, executes its persists, and checks every
    /// single-node guarantee.
    fn step(&mut self, input: Input) -> Result<(), Violation> {
        let before = self.node.clone();
        self.outputs.clear();
        // Every check runs just below, on this one copy of the state before.
        self.node
            .step_without_assertions(&self.config, input, &mut self.outputs);
        invariants::check_node(&self.config, &self.node)?;
        invariants::check_outputs(
            &self.config,
            before.hard_state(),
            self.node.hard_state(),
            &self.outputs,
        )?;
        invariants::check_transition(&self.config, &before, &input, &self.node, &self.outputs)?;
        // Terms never go back, one vote per term (across restarts too: the
        // history outlives the node), and a leader steps down on a higher term.
        self.history
            .record_local_step(&self.config, &before, &input, &self.node)?;
        check_higher_term_converts(&self.config, &before, &input, &self.node)?;
        for output in &self.outputs {
            if let Output::Persist(hard_state) = output {
                self.storage = *hard_state;
            }
        }
        check_persisted(&self.config, &self.node, self.storage)
    }

    /// Crashes the node and restarts it from storage, as a driver would.
    fn restart(&mut self) -> Result<(), Violation> {
        self.node = Node::restore(self.storage, self.log);
        self.history.record_restart(self.config.id(), &self.node)?;
        self.step(Input::Start)
    }
}

/// `message` with its term replaced by `term`.
fn with_term(mut message: Message, term: Term) -> Message {
    match &mut message {
        Message::RequestVote { term: old, .. }
        | Message::RequestVoteResponse { term: old, .. }
        | Message::AppendEntries { term: old, .. }
        | Message::AppendEntriesResponse { term: old, .. }
        | Message::PreVote { term: old, .. }
        | Message::PreVoteResponse { term: old, .. }
        | Message::TimeoutNow { term: old } => *old = term,
    }
    message
}

/// Figure 2, all servers: "If RPC request or response contains term T >
/// currentTerm: set currentTerm = T, convert to follower". The history checks
/// that a leader steps down; this checks the whole rule, for every role. Only
/// well-formed messages from another voter are held to it
/// ([`invariants::higher_term_from_voter`]): the core drops the rest whole.
fn check_higher_term_converts(
    config: &Config,
    before: &Node,
    input: &Input,
    after: &Node,
) -> Result<(), Violation> {
    let Some((from, message)) = invariants::higher_term_from_voter(config, before, input) else {
        return Ok(());
    };
    let term = message.term();
    if after.role() != Role::Follower || after.current_term() != term {
        return Err(Violation {
            invariant: Invariant::StaleLeaderStepsDown,
            detail: format!(
                "{} as {} in {} got {message} from {from} and is {} in {}, not a follower of {term}",
                config.id(),
                before.role(),
                before.current_term(),
                after.role(),
                after.current_term()
            ),
        });
    }
    Ok(())
}

/// After a step's persists are executed, storage holds exactly the node's
/// hard state: nothing the node acts on can be lost in a crash (Figure 2:
/// "updated on stable storage before responding to RPCs").
fn check_persisted(config: &Config, node: &Node, storage: HardState) -> Result<(), Violation> {
    // What a node persists its own restart must accept (the term ceiling).
    if let Err(refused) = config.check_restored(&storage) {
        return Err(Violation {
            invariant: Invariant::PersistBeforeSend,
            detail: format!(
                "{} persisted a state its restart refuses: {refused}",
                config.id()
            ),
        });
    }
    let hard_state = node.hard_state();
    if storage != hard_state {
        return Err(Violation {
            invariant: Invariant::PersistBeforeSend,
            detail: format!(
                "{} holds {} voted {:?} but storage has {} voted {:?}",
                config.id(),
                hard_state.current_term,
                hard_state.voted_for,
                storage.current_term,
                storage.voted_for
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_election::Timer;

    /// Builds a schedule of a 3-node cluster with empty logs.
    fn three_nodes(steps: Vec<Step>) -> Schedule {
        Schedule {
            nodes: 3,
            features: Features::NONE,
            logs: None,
            steps,
        }
    }

    #[test]
    fn the_longest_schedule_fits_in_the_fuzzers_max_len_for_election() {
        // `.ci/fuzz` runs `election` with -max_len=512: longer inputs would
        // only add bytes the decoder never reads. All ones is the longest
        // encoding: logs present, and every step the last variant, which
        // takes two bytes of fields, as many as any step.
        const MAX_LEN: usize = 512;
        let schedule: Schedule = decode(&[0xff; MAX_LEN]).unwrap();
        assert!(schedule.logs.is_some());
        assert_eq!(schedule.steps.len(), MAX_SCHEDULE_STEPS);
        assert!(
            schedule
                .steps
                .iter()
                .all(|step| matches!(step, Step::Transfer(..)))
        );
    }

    #[test]
    fn one_timer_and_a_full_delivery_elect_a_leader() {
        let outcome = run_schedule(&three_nodes(vec![Step::Fire(0, 0), Step::Stabilize])).unwrap();
        assert_eq!(outcome.leaders, 1);
        assert_eq!(outcome.max_term, Term(1));
    }

    #[test]
    fn a_voter_restarted_between_two_campaigns_keeps_its_vote() {
        // n0 and n1 campaign in term 1; n2 votes for n0, restarts, then hears n1.
        // Had n2 forgotten its vote, it would elect n1 as well, and the checks
        // after every step would turn this run into an error.
        let steps = vec![
            Step::Fire(0, 0), // n0's election timer (every node has one armed)
            Step::Fire(1, 0), // n1's
            Step::Deliver(1), // n0's RequestVote to n2: n2 votes for n0
            Step::Restart(2),
            Step::Stabilize, // n1's RequestVote reaches n2 after the restart
        ];
        let outcome = run_schedule(&three_nodes(steps)).unwrap();
        assert_eq!(outcome.restarts, 1);
        assert_eq!(outcome.leaders, 1);
    }

    #[test]
    fn schedules_longer_than_the_bound_are_cut() {
        let outcome = run_schedule(&three_nodes(vec![Step::Heal; MAX_SCHEDULE_STEPS + 5])).unwrap();
        assert_eq!(outcome.steps, MAX_SCHEDULE_STEPS);
    }

    /// The schedule `#[derive(Arbitrary)]` decodes, with every step.
    #[derive(Debug, Arbitrary)]
    struct DerivedSchedule {
        #[arbitrary(with = |u: &mut Unstructured| u.int_in_range(MIN_CLUSTER..=MAX_CLUSTER))]
        nodes: u8,
        features: Features,
        logs: Option<[SmallLog; MAX_CLUSTER as usize]>,
        steps: Vec<Step>,
    }

    #[test]
    fn a_schedule_decodes_as_derived_up_to_the_step_bound() {
        // Pseudo-random inputs of every length up to 1,000 bytes (a fixed
        // LCG: the same inputs on every run), long ones well past the bound.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut longest = 0;
        for len in 0..1_000 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    // Odd bytes mostly: a sequence goes on while its flag byte is odd.
                    state.to_le_bytes()[4] | u8::from(state >> 56 != 0)
                })
                .collect();
            let derived: DerivedSchedule = decode(&bytes).unwrap();
            let capped: Schedule = decode(&bytes).unwrap();
            assert_eq!(
                (capped.nodes, capped.features, capped.logs),
                (derived.nodes, derived.features, derived.logs),
                "input of {len} bytes"
            );
            let bound = derived.steps.len().min(MAX_SCHEDULE_STEPS);
            assert_eq!(capped.steps, derived.steps[..bound], "input of {len} bytes");
            longest = longest.max(derived.steps.len());
        }
        assert!(
            longest > 2 * MAX_SCHEDULE_STEPS,
            "no input went past the bound"
        );
    }

    #[test]
    fn a_reused_cluster_runs_a_schedule_as_a_new_one_would() {
        let schedule = |steps| Schedule {
            nodes: 5,
            features: Features::ALL,
            logs: Some([SmallLog { index: 1, term: 1 }; MAX_CLUSTER as usize]),
            steps,
        };
        let elect = schedule(vec![Step::Fire(0, 0), Step::Stabilize, Step::Fire(0, 1)]);
        let messy = schedule(vec![
            Step::Fire(1, 0),
            Step::Cut(1, 2),
            Step::Duplicate(0),
            Step::Crash(3),
            Step::Stabilize,
        ]);
        let first = run_schedule(&elect).unwrap();
        run_schedule(&messy).unwrap();
        // Left cut, crashed and with messages in flight, then reset.
        assert_eq!(run_schedule(&elect).unwrap(), first);
        assert_eq!(first.leaders, 1);
    }

    #[test]
    fn the_empty_input_decodes_to_a_schedule_that_runs() {
        let schedule: Schedule = decode(&[]).unwrap();
        assert_eq!(schedule.nodes, MIN_CLUSTER);
        assert!(run_schedule(&schedule).is_ok());
    }

    #[test]
    fn a_node_adopts_a_near_term_and_grants_one_vote_in_it() {
        let request = |candidate_id| Message::RequestVote {
            term: Term(0),
            candidate_id,
            last_log_index: 0,
            last_log_term: Term(0),
            leadership_transfer: false,
        };
        let script = NodeScript {
            voters: 3,
            id: 0,
            features: Features::NONE,
            log: SmallLog::default(),
            stimuli: vec![
                Stimulus::Near {
                    from: 1,
                    message: request(NodeId(1)),
                    offset: 1,
                },
                Stimulus::Near {
                    from: 2,
                    message: request(NodeId(2)),
                    offset: 0,
                },
                Stimulus::Restart,
                Stimulus::Near {
                    from: 2,
                    message: request(NodeId(2)),
                    offset: 0,
                },
            ],
        };
        let outcome = run_node(&script).unwrap();
        assert!(outcome.voted_for_another);
        assert_eq!(outcome.max_term, Term(1));
    }

    #[test]
    fn a_node_started_below_the_ceiling_campaigns_into_it_and_no_further() {
        let script = NodeScript {
            voters: 3,
            id: 0x40 | 0x01,
            features: Features::NONE,
            log: SmallLog::default(),
            stimuli: vec![
                Stimulus::Raw(Input::Timeout(Timer::Election)),
                Stimulus::Raw(Input::Timeout(Timer::Election)),
                Stimulus::Restart,
                Stimulus::Near {
                    from: 0,
                    message: Message::AppendEntries {
                        term: Term(0),
                        leader_id: NodeId(0),
                        round: 0,
                    },
                    offset: 1,
                },
                Stimulus::Raw(Input::Timeout(Timer::Election)),
            ],
        };
        assert_eq!(script.first_term(), Term(Term::CEILING.0 - 1));
        let outcome = run_node(&script).unwrap();
        assert_eq!(outcome.max_term, Term::CEILING);
    }

    #[test]
    fn a_forged_maximal_term_neither_panics_nor_wraps() {
        let script = NodeScript {
            voters: 3,
            id: 1,
            features: Features::NONE,
            log: SmallLog::default(),
            stimuli: vec![
                Stimulus::Raw(Input::Receive {
                    from: NodeId(0),
                    message: Message::AppendEntries {
                        term: Term(u64::MAX),
                        leader_id: NodeId(0),
                        round: 0,
                    },
                }),
                Stimulus::Raw(Input::Timeout(Timer::Election)),
                Stimulus::Restart,
                Stimulus::Raw(Input::Timeout(Timer::Election)),
            ],
        };
        // Dropped: the node campaigns from where it was (twice, across
        // the restart), far from the last term.
        let outcome = run_node(&script).unwrap();
        assert_eq!(outcome.max_term, Term(2));
        assert!(!outcome.led);
    }

    #[test]
    fn a_higher_term_on_a_message_naming_another_sender_moves_nothing() {
        let forged = |message| {
            Stimulus::Raw(Input::Receive {
                from: NodeId(0),
                message,
            })
        };
        let script = NodeScript {
            voters: 3,
            id: 1,
            features: Features::NONE,
            log: SmallLog::default(),
            stimuli: vec![
                forged(Message::AppendEntries {
                    term: Term(7),
                    leader_id: NodeId(2),
                    round: 0,
                }),
                forged(Message::RequestVote {
                    term: Term(9),
                    candidate_id: NodeId(2),
                    last_log_index: 0,
                    last_log_term: Term(0),
                    leadership_transfer: false,
                }),
            ],
        };
        let outcome = run_node(&script).unwrap();
        assert_eq!(outcome.max_term, Term(0));
    }

    #[test]
    fn persisting_less_than_the_node_holds_is_reported() {
        let config = Config::cluster(3, Timing::default()).unwrap().remove(0);
        let mut node = Node::new();
        let mut out = Vec::new();
        node.step(&config, Input::Timeout(Timer::Election), &mut out);
        let violation = check_persisted(&config, &node, HardState::default()).unwrap_err();
        assert_eq!(violation.invariant, Invariant::PersistBeforeSend);
    }
}
