//! An in-process cluster: every node a Tokio task running the one
//! [`Driver`], bounded channels as its transport, and fault controls that
//! match the model checker's fault model (crash, restart, drop, duplicate,
//! delay, cut one way or both, partition, disconnect, heal).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use raft_election_runtime::{ClusterConfig, spawn_cluster};
//! use std::time::Duration;
//!
//! let cluster = spawn_cluster(ClusterConfig::seeded(3, 42))?;
//! let (leader, term) = cluster.wait_for_leader(Duration::from_secs(1)).await?;
//! cluster.crash(leader).await?;
//! let (successor, _) = cluster.wait_for_leader_after(term, Duration::from_secs(2)).await?;
//! assert_ne!(successor, leader);
//! cluster.check_safety()?;
//! cluster.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`config`]: [`ClusterConfig`] and its one validation.
//! - `links`: the link table and its faults ([`LinkFaults`], [`LinkTable`]).
//! - `network`: inboxes, message fates and each node's channel transport.
//! - [`pacing`]: how nodes sharing one process are paced as independent
//!   machines ([`Pacing`]), each node's pacer beside its transport; nothing
//!   else looks at another node's clock.
//! - `observer`: where drivers report; it feeds the event log
//!   (`event_log`), the status board (`status`), the safety monitor
//!   (`monitor`), per-node counts and the narration (`narration`).
//! - `storage`: [`StorageKind`] and the storage a crashed node restarts from.

pub mod config;
pub(crate) mod event_log;
pub(crate) mod links;
pub(crate) mod monitor;
mod narration;
mod network;
mod observer;
pub mod pacing;
pub(crate) mod status;
mod storage;

pub use config::{ClusterConfig, ClusterConfigError, Observation};
pub use event_log::{Event, EventKind, LinkChange, MAX_EVENTS};
pub use links::{FaultError, LinkFaults, LinkTable, MAX_LINK_DELAY};
pub use network::{INBOX_CAPACITY, MAX_DELAYED, NetworkStats};
pub use observer::{ByKind, MessageCounts};
pub use pacing::Pacing;
pub use status::{NodeStatus, Statuses};
pub use storage::StorageKind;

use crate::data_dir::{DataDir, DataDirError};
use crate::driver::{Driver, NodeError, Requests};
use crate::sync::{Arc, Mutex, lock};
use crate::timeouts::{TimeoutPicker, TimeoutSource};
use network::{ChannelTransport, Network};
use observer::{ClusterObserver, NodeObserver};
use pacing::ClusterPacer;
use raft_election::invariants::Violation;
use raft_election::storage::{Storage, StorageError};
use raft_election::{Config, HardState, Input, NodeId, RestoredStateError, Term, Timer};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use storage::SharedStorage;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};
use tracing::info;

/// Why a cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The configuration is invalid.
    #[error("invalid cluster configuration: {0}")]
    Config(#[from] ClusterConfigError),
    /// Called outside a Tokio runtime.
    #[error("spawn_cluster must be called from inside a Tokio runtime")]
    NoRuntime,
    /// A node's storage could not be opened or read (a corrupt state file,
    /// for one). No node starts: starting this one from term 0 could let it
    /// vote twice in a term (Figure 2).
    #[error("cannot start {node}: {source}")]
    Storage {
        /// The node.
        node: NodeId,
        /// What its storage reported.
        source: StorageError,
    },
    /// A node's stored state does not fit the configuration (a vote for a
    /// non-member, a term above the ceiling).
    #[error("cannot start {node}: its stored state is refused: {source}")]
    Restored {
        /// The node.
        node: NodeId,
        /// What is wrong with it.
        source: RestoredStateError,
    },
    /// The cluster's data directory could not be read to tell whether it
    /// holds a cluster already.
    #[error("cannot start the cluster: {0}")]
    Directory(StorageError),
    /// The data directory could not be locked (another process uses it).
    #[error("cannot start the cluster: {0}")]
    DataDir(#[from] DataDirError),
}

/// A node's stored state could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The node is not a member, or (for a restart) it is running.
    #[error(transparent)]
    Fault(#[from] FaultError),
    /// Its storage could not be read (a corrupt state file, for one). A
    /// restart leaves the node down: starting it from term 0 could let it
    /// vote twice in a term (Figure 2).
    #[error("cannot read the stored state of {node}: {source}")]
    Storage {
        /// The node.
        node: NodeId,
        /// What its storage reported.
        source: StorageError,
    },
    /// Its stored state does not fit the configuration; it stays down.
    #[error("the stored state of {node} is refused: {source}")]
    Restored {
        /// The node.
        node: NodeId,
        /// What is wrong with it.
        source: RestoredStateError,
    },
}

/// A leadership transfer that could not be asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// The cluster runs without leadership transfer: a leader would ignore it.
    #[error("leadership transfer is not among this cluster's features ({features})")]
    Disabled {
        /// The features the cluster runs.
        features: raft_election::Features,
    },
    /// The target is not a member.
    #[error("{id} is not a member of this cluster")]
    UnknownNode {
        /// The node.
        id: NodeId,
    },
    /// No live node leads right now.
    #[error("no live node leads: {statuses}")]
    NoLeader {
        /// The board when we looked.
        statuses: Statuses,
    },
    /// The target already leads.
    #[error("{id} already leads")]
    AlreadyLeads {
        /// The node.
        id: NodeId,
    },
    /// The leader's queue of local requests is full.
    #[error("{id} cannot take another request now")]
    Busy {
        /// The leader.
        id: NodeId,
    },
}

/// A condition was not met in time.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The deadline passed.
    #[error("not reached within {waited:?}; nodes: {statuses}")]
    Timeout {
        /// How long we waited.
        waited: Duration,
        /// The board when we gave up.
        statuses: Statuses,
    },
}

/// A node task that ended badly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFailure {
    /// The node.
    pub node: NodeId,
    /// What happened (a panic message or a storage error).
    pub reason: String,
}

/// Node tasks that panicked or failed, found at shutdown.
#[derive(Debug, thiserror::Error)]
#[error("{} node task(s) failed: {}", failures.len(), describe(failures))]
pub struct ShutdownError {
    /// Every failure, in the order found.
    pub failures: Vec<NodeFailure>,
}

fn describe(failures: &[NodeFailure]) -> String {
    let parts: Vec<String> = failures
        .iter()
        .map(|f| format!("{}: {}", f.node, f.reason))
        .collect();
    parts.join("; ")
}

/// Each node's current task and how often it was started.
#[derive(Debug, Default)]
struct Lives {
    /// Kept until joined: a task that was aborted may still be finishing a
    /// step on another worker.
    tasks: BTreeMap<NodeId, JoinHandle<Result<(), NodeError>>>,
    incarnations: BTreeMap<NodeId, u32>,
}

/// A running cluster: fault controls and observation.
///
/// Every control takes `&self`, so a task injecting faults can run beside
/// one that waits for a leader. Crashes and restarts are serialized with
/// each other. Dropping the handle aborts every node task without waiting
/// ([`Self::shutdown`] and [`Self::crash_all`] wait); a directory stays
/// locked until the last task that could still write to it is gone.
#[derive(Debug)]
pub struct ClusterHandle {
    config: ClusterConfig,
    configs: BTreeMap<NodeId, Config>,
    storages: BTreeMap<NodeId, SharedStorage>,
    /// Held across the awaits of a crash or restart, so each is atomic with
    /// respect to the others.
    lives: tokio::sync::Mutex<Lives>,
    started_from: Mutex<BTreeMap<NodeId, HardState>>,
    /// Each node's request queue (see [`Driver::requests`]), by id.
    requests: Mutex<Vec<Option<Arc<Requests>>>>,
    failures: Mutex<Vec<NodeFailure>>,
    network: Arc<Network>,
    observer: Arc<ClusterObserver>,
}

/// Starts a cluster of `config.nodes` nodes, one Tokio task each, each
/// restored from its storage ([`ClusterConfig::storage`]: empty memory, or
/// files a previous cluster may have left). Must be called inside a Tokio
/// runtime.
///
/// Every node's state is read and checked against the configuration before
/// any task starts, so a corrupt or foreign file is an error here and no
/// node runs. A directory is locked for the cluster's life.
pub fn spawn_cluster(config: ClusterConfig) -> Result<ClusterHandle, SpawnError> {
    let configs = config.validate()?;
    tokio::runtime::Handle::try_current().map_err(|_| SpawnError::NoRuntime)?;
    let data_dir = match &config.storage {
        StorageKind::Memory => None,
        StorageKind::Directory(dir) => Some(std::sync::Arc::new(DataDir::create(dir)?)),
    };
    let new_cluster = match &config.storage {
        StorageKind::Memory => true,
        StorageKind::Directory(dir) => {
            SharedStorage::is_new_cluster(dir, config.ids()).map_err(SpawnError::Directory)?
        }
    };
    let mut storages = BTreeMap::new();
    let mut restored = BTreeMap::new();
    for node in &configs {
        let id = node.id();
        let storage_error = |source| SpawnError::Storage { node: id, source };
        let lock = data_dir.clone();
        let storage =
            SharedStorage::open(&config.storage, config.cluster_id, id, new_cluster, lock)
                .map_err(storage_error)?;
        let hard_state = storage.load().map_err(storage_error)?;
        node.check_restored(&hard_state)
            .map_err(|source| SpawnError::Restored { node: id, source })?;
        restored.insert(id, hard_state);
        storages.insert(id, storage);
    }
    // `validate` refused zero nodes, so there is a first config.
    let observer = Arc::new(ClusterObserver::new(&configs[0], config.observation));
    let fault_seed = match config.timeouts {
        TimeoutSource::Seeded(seed) => seed,
        TimeoutSource::Schedule(_) => 0,
    };
    let network = Arc::new(Network::new(config.nodes, fault_seed));
    let mut lives = Lives::default();
    let mut handle = ClusterHandle {
        storages,
        started_from: Mutex::new(BTreeMap::new()),
        requests: Mutex::new(vec![None; usize::from(config.nodes)]),
        lives: tokio::sync::Mutex::new(Lives::default()),
        configs: configs.into_iter().map(|c| (c.id(), c)).collect(),
        network,
        observer,
        failures: Mutex::new(Vec::new()),
        config,
    };
    for (id, hard_state) in restored {
        handle.spawn_node(&mut lives, id, hard_state);
    }
    *handle.lives.get_mut() = lives;
    Ok(handle)
}

/// Takes a node down like a crashed one when its task stops on its own: on
/// a storage failure (returned) or a panic (this guard dropped while
/// panicking). An aborted task, crashed by the controls, was taken down by
/// them already.
struct FailStop {
    id: NodeId,
    network: Arc<Network>,
    observer: Arc<ClusterObserver>,
}

impl FailStop {
    fn take_down(&self) {
        if self.network.links().mark_down(self.id).is_ok() {
            self.network.close_inbox(self.id);
            self.observer.record_crash(self.id);
        }
    }
}

impl Drop for FailStop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.take_down();
        }
    }
}

impl ClusterHandle {
    fn spawn_node(&self, lives: &mut Lives, id: NodeId, restored: HardState) {
        // Callers pass members only (checked by the link table).
        let (Some(config), Some(storage)) = (
            self.configs.get(&id).cloned(),
            self.storages.get(&id).cloned(),
        ) else {
            return;
        };
        let incarnation = lives.incarnations.entry(id).or_insert(0);
        let timeouts = TimeoutPicker::new(&self.config.timeouts, id, *incarnation);
        *incarnation = incarnation.saturating_add(1);
        lock(&self.started_from).insert(id, restored);
        let node = raft_election::Node::restore(restored, raft_election::LogSummary::default());
        self.observer.record_revive(id, &node);
        let mut transport = ChannelTransport::open(Arc::clone(&self.network), id);
        let pacer = ClusterPacer::new(self.config.pacing, id, &mut transport);
        let observer = NodeObserver(Arc::clone(&self.observer));
        let driver =
            Driver::new(config, restored, storage, transport, observer, timeouts).paced_by(pacer);
        if let Some(slot) = lock(&self.requests).get_mut(usize::from(id.0)) {
            *slot = Some(driver.requests());
        }
        let fail_stop = FailStop {
            id,
            network: Arc::clone(&self.network),
            observer: Arc::clone(&self.observer),
        };
        let task = tokio::spawn(async move {
            let result = driver.run().await;
            if result.is_err() {
                fail_stop.take_down();
            }
            result
        });
        let old = lives.tasks.insert(id, task);
        // `restart` joins the previous task first; nothing else spawns twice.
        debug_assert!(old.is_none(), "{id} had a task still running");
    }

    /// The configuration the cluster was started with.
    #[must_use]
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// Time since the cluster started (virtual under a paused clock).
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.observer.elapsed()
    }

    /// Role, term and leader of every live node right now.
    #[must_use]
    pub fn statuses(&self) -> Statuses {
        self.observer.board().snapshot()
    }

    /// The retained events, oldest first (see [`MAX_EVENTS`]).
    #[must_use]
    pub fn events(&self) -> Vec<Event> {
        self.observer.log().snapshot()
    }

    /// How many events were evicted from the bounded log.
    #[must_use]
    pub fn events_evicted(&self) -> u64 {
        self.observer.log().evicted()
    }

    /// Round trips of the leaders' heartbeats so far (AppendEntries sent,
    /// its answer stepped by the leader), with [`Observation::Full`].
    #[must_use]
    pub fn round_trips(&self) -> crate::round_trips::RoundTrips {
        self.observer.round_trips()
    }

    /// Message counts by fate.
    #[must_use]
    pub fn network_stats(&self) -> NetworkStats {
        self.network.stats()
    }

    /// What `id` has sent and received so far, by message kind, across its
    /// restarts; `None` if it is not a member.
    #[must_use]
    pub fn message_counts(&self, id: NodeId) -> Option<MessageCounts> {
        self.observer.message_counts(id)
    }

    /// The link table right now: crashed and disconnected nodes, the
    /// partition and every faulty link.
    #[must_use]
    pub fn links(&self) -> LinkTable {
        self.network.links().table()
    }

    /// What `id` has on stable storage right now (read from its file with
    /// [`StorageKind::Directory`]). The read runs on the calling thread and
    /// waits for a save in progress: a small file, but a blocking call.
    pub fn hard_state(&self, id: NodeId) -> Result<HardState, RestoreError> {
        let storage = self
            .storages
            .get(&id)
            .ok_or(FaultError::UnknownNode { id })?;
        storage
            .load()
            .map_err(|source| RestoreError::Storage { node: id, source })
    }

    /// The hard state the latest incarnation of `id` started from: what its
    /// storage held at spawn or at its last restart.
    #[must_use]
    pub fn started_from(&self, id: NodeId) -> Option<HardState> {
        lock(&self.started_from).get(&id).copied()
    }

    /// The first cluster-wide invariant broken so far, over every step of
    /// every node since the start (election safety among them), as checked
    /// by [`raft_election::invariants::History`].
    pub fn check_safety(&self) -> Result<(), Violation> {
        self.observer.violation().map_or(Ok(()), Err)
    }

    /// Who became leader of each term so far (at most one per term, or
    /// [`Self::check_safety`] reports it).
    #[must_use]
    pub fn leaders_by_term(&self) -> BTreeMap<Term, NodeId> {
        self.observer.leaders_by_term()
    }

    /// Waits until `condition` holds on the status board, at most `timeout`
    /// (any duration: one too long to add to the clock waits forever).
    ///
    /// Wakes on every board change, never polls; returns the statuses that
    /// satisfied the condition.
    pub async fn wait_until(
        &self,
        mut condition: impl FnMut(&Statuses) -> bool,
        timeout: Duration,
    ) -> Result<Statuses, WaitError> {
        // Beyond a century is forever: Tokio's own deadline arithmetic
        // needs room above any deadline it is given.
        let forever = timeout > Duration::from_secs(100 * 365 * 24 * 3_600);
        let deadline = (!forever)
            .then(|| Instant::now().checked_add(timeout))
            .flatten();
        // Subscribe before reading, so a change between the read and the wait
        // still wakes us.
        let mut changes = self.observer.subscribe();
        // Bounded by the deadline: every iteration waits for a change or gives up.
        loop {
            let statuses = self.statuses();
            if condition(&statuses) {
                return Ok(statuses);
            }
            let changed = match deadline {
                Some(deadline) => timeout_at(deadline, changes.changed()).await,
                None => Ok(changes.changed().await),
            };
            // The sender lives in `self`; it cannot be gone, but if it were,
            // nothing would change any more.
            if !matches!(changed, Ok(Ok(()))) {
                return Err(WaitError::Timeout {
                    waited: timeout,
                    statuses: self.statuses(),
                });
            }
        }
    }

    /// Waits until a leader is acknowledged by a majority of the cluster in
    /// its term ([`Statuses::acknowledged_leader`]).
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<(NodeId, Term), WaitError> {
        self.wait_for(Statuses::acknowledged_leader, timeout).await
    }

    /// Waits until every live node follows the same leader in its term
    /// ([`Statuses::leader_known_to_all`]).
    pub async fn wait_for_leader_known_to_all(
        &self,
        timeout: Duration,
    ) -> Result<(NodeId, Term), WaitError> {
        self.wait_for(Statuses::leader_known_to_all, timeout).await
    }

    /// Waits for an acknowledged leader of a term after `term`.
    pub async fn wait_for_leader_after(
        &self,
        term: Term,
        timeout: Duration,
    ) -> Result<(NodeId, Term), WaitError> {
        let newer = |s: &Statuses| s.acknowledged_leader().filter(|&(_, t)| t > term);
        self.wait_for(newer, timeout).await
    }

    /// Waits until `leader` finds a leader on the board, and returns it.
    async fn wait_for(
        &self,
        leader: impl Fn(&Statuses) -> Option<(NodeId, Term)>,
        timeout: Duration,
    ) -> Result<(NodeId, Term), WaitError> {
        let statuses = self.wait_until(|s| leader(s).is_some(), timeout).await?;
        leader(&statuses).ok_or(WaitError::Timeout {
            waited: timeout,
            statuses,
        })
    }

    /// Crashes `id`: nothing is sent to it or by it any more (copies a
    /// delaying link already holds may still arrive, as on a real network),
    /// its inbox is closed and its task aborted and awaited, so on return it
    /// can write nothing more. Its storage survives for [`Self::restart`].
    ///
    /// If this future is dropped before it finishes, the node is down but its
    /// task may still be ending; [`Self::restart`] waits for it.
    pub async fn crash(&self, id: NodeId) -> Result<(), FaultError> {
        // Taken first: a restart between marking the node down and joining
        // its task would revive it on the board and open it a new inbox.
        let mut lives = self.lives.lock().await;
        self.network.links().mark_down(id)?;
        info!(node = %id, "crash {id}: its task is aborted and its channel closed");
        self.network.close_inbox(id);
        self.observer.record_crash(id);
        self.join(&mut lives, id).await;
        Ok(())
    }

    /// Crashes every running node and waits until none can write any more:
    /// a new cluster over the same directories may start at once.
    pub async fn crash_all(&self) {
        // Taken first, as in `crash`.
        let mut lives = self.lives.lock().await;
        let ids: Vec<NodeId> = self.configs.keys().copied().collect();
        let crashed: Vec<NodeId> = ids
            .into_iter()
            .filter(|&id| self.network.links().mark_down(id).is_ok())
            .collect();
        info!("crash every node");
        for &id in &crashed {
            self.network.close_inbox(id);
            self.observer.record_crash(id);
        }
        self.network.abort_delayed();
        // Abort all first, so the tasks end together, then wait for each.
        for task in lives.tasks.values() {
            task.abort();
        }
        for id in self.configs.keys().copied() {
            self.join(&mut lives, id).await;
        }
    }

    /// Aborts `id`'s task if it has one and waits until it is gone. The
    /// handle leaves the map only once joined, with no await in between, so
    /// a cancelled wait leaves it for the next caller.
    async fn join(&self, lives: &mut Lives, id: NodeId) {
        let Some(task) = lives.tasks.get_mut(&id) else {
            return;
        };
        task.abort();
        let joined = task.await;
        lives.tasks.remove(&id);
        self.collect(id, joined);
    }

    /// Restarts a crashed `id` from what it saved (Figure 2's persistent state);
    /// everything volatile starts over.
    ///
    /// The previous task is joined first: a task aborted in the middle of a
    /// step (on another worker) could otherwise save its state after this
    /// restart loaded the older one, or send as the revived node, and the node
    /// could vote twice in a term. A crash is atomic with respect to the
    /// restart.
    ///
    /// If its storage cannot be read (a corrupt file), `id` stays down and
    /// the error says why: starting it from term 0 instead could let it vote
    /// twice in a term it already voted in.
    pub async fn restart(&self, id: NodeId) -> Result<(), RestoreError> {
        let mut lives = self.lives.lock().await;
        if self.network.links().is_up(id) {
            return Err(FaultError::AlreadyUp { id }.into());
        }
        self.join(&mut lives, id).await;
        let restored = self.hard_state(id)?;
        if let Some(config) = self.configs.get(&id) {
            config
                .check_restored(&restored)
                .map_err(|source| RestoreError::Restored { node: id, source })?;
        }
        self.network.links().mark_up(id)?;
        info!(node = %id, "restart {id} from its storage");
        self.spawn_node(&mut lives, id, restored);
        Ok(())
    }

    /// Fires `timer` of `id` now, as if it had expired: an election timeout
    /// makes a follower or candidate campaign at once (a leader ignores it).
    /// The same verb as the simulator's and the model's.
    pub fn fire(&self, id: NodeId, timer: Timer) -> Result<(), FaultError> {
        if !self.network.links().is_up(id) {
            return Err(if self.configs.contains_key(&id) {
                FaultError::AlreadyDown { id }
            } else {
                FaultError::UnknownNode { id }
            });
        }
        let requests = lock(&self.requests);
        let queue = requests.get(usize::from(id.0)).and_then(Option::as_ref);
        queue
            .ok_or(FaultError::AlreadyDown { id })?
            .send(Input::Timeout(timer))
            .map_err(|_| FaultError::Busy { id })?;
        info!(node = %id, "fire {id}'s {timer:?} timer");
        Ok(())
    }

    /// Asks the current leader to hand its leadership to `to` (thesis §3.10),
    /// as a local input through its driver's [`Driver::requests`], and
    /// returns the leader asked. The leader is the live node the status board
    /// shows leading the highest term.
    ///
    /// The transfer itself is the core's: the leader asks `to` for its log,
    /// sends it TimeoutNow if that log is up to date (and refuses the
    /// transfer if not), and abandons it after an election timeout (a dead
    /// target, a lost message). Watch the board for the outcome, with
    /// [`Self::wait_for_leader_after`] for one. A target that is down is
    /// asked all the same: the transfer is then abandoned, as the thesis says.
    pub fn transfer_leadership(&self, to: NodeId) -> Result<NodeId, TransferError> {
        let features = self.config.features;
        if !features.leadership_transfer {
            return Err(TransferError::Disabled { features });
        }
        if !self.configs.contains_key(&to) {
            return Err(TransferError::UnknownNode { id: to });
        }
        let statuses = self.statuses();
        let Some((leader, _)) = statuses.leaders().into_iter().max_by_key(|&(_, term)| term) else {
            return Err(TransferError::NoLeader { statuses });
        };
        if leader == to {
            return Err(TransferError::AlreadyLeads { id: to });
        }
        let requests = lock(&self.requests);
        let queue = requests.get(usize::from(leader.0)).and_then(Option::as_ref);
        queue
            .ok_or(TransferError::Busy { id: leader })?
            .send(Input::TransferLeadership { to })
            .map_err(|_| TransferError::Busy { id: leader })?;
        info!("ask {leader} to hand its leadership to {to}");
        Ok(leader)
    }

    /// Stops `id` gracefully, as an operator would before maintenance: if it
    /// leads and the cluster runs leadership transfer, it first hands its
    /// leadership to a live node that follows it (the lowest id), and stops
    /// once that node leads, or after the longest election timeout (the
    /// transfer is abandoned after the shortest); then it is crashed (its
    /// storage stays, [`Self::restart`] brings it back). Returns the node
    /// that took over, if one did before `id` stopped.
    ///
    /// Without a transfer the others would wait out an election timeout
    /// before electing anyone; with one they elect the target within a few
    /// message delays.
    pub async fn stop(&self, id: NodeId) -> Result<Option<NodeId>, FaultError> {
        if !self.network.links().is_up(id) {
            return Err(if self.configs.contains_key(&id) {
                FaultError::AlreadyDown { id }
            } else {
                FaultError::UnknownNode { id }
            });
        }
        let statuses = self.statuses();
        let leading = statuses
            .get(id)
            .filter(|status| status.role == raft_election::Role::Leader)
            .map(|status| status.term);
        let target = leading.and_then(|term| {
            statuses
                .live()
                .iter()
                .find(|&(&other, s)| other != id && s.term == term && s.leader == Some(id))
                .map(|(&other, _)| other)
        });
        let mut successor = None;
        if let (Some(term), Some(target)) = (leading, target) {
            if self.transfer_leadership(target).is_ok() {
                let took_over = |s: &Statuses| {
                    s.acknowledged_leader()
                        .filter(|&(leader, newer)| leader != id && newer > term)
                };
                let wait = self.config.timing.election_timeout_max;
                successor = self
                    .wait_for(took_over, wait)
                    .await
                    .ok()
                    .map(|(leader, _)| leader);
            }
        }
        info!(
            "stop {id} (handed over to {})",
            event_log::display_option(successor)
        );
        self.crash(id).await?;
        Ok(successor)
    }

    /// Splits the cluster: messages pass only inside a group; a node no group
    /// lists is cut off from everyone. Replaces any earlier partition.
    pub fn partition(&self, groups: &[BTreeSet<NodeId>]) -> Result<(), FaultError> {
        self.network.links().partition(groups)?;
        info!("partition: {}", self.links());
        for id in self.config.ids() {
            // `validate` bounds the cluster to 15 voters, so at most 15 groups hold one.
            let group = groups
                .iter()
                .position(|g| g.contains(&id))
                .and_then(|g| u8::try_from(g).ok());
            self.observer
                .record_fault(id, EventKind::Partitioned { group });
        }
        Ok(())
    }

    /// Cuts `id` off from every other node, as a partition.
    pub fn isolate(&self, id: NodeId) -> Result<(), FaultError> {
        let rest: BTreeSet<NodeId> = self.config.ids().filter(|&other| other != id).collect();
        self.partition(&[BTreeSet::from([id]), rest])
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut(&self, a: NodeId, b: NodeId) -> Result<(), FaultError> {
        self.cut_one_way(a, b)?;
        self.cut_one_way(b, a)
    }

    /// Cuts the direction `from` to `to` only: `to` hears nothing from
    /// `from`, while `from` still hears `to`.
    pub fn cut_one_way(&self, from: NodeId, to: NodeId) -> Result<(), FaultError> {
        self.set_link(from, to, LinkFaults::cut())
    }

    /// Sets the faults of the directed link `from` to `to` (a default
    /// [`LinkFaults`] makes it faultless again).
    pub fn set_link(&self, from: NodeId, to: NodeId, faults: LinkFaults) -> Result<(), FaultError> {
        self.network.links().set(from, to, faults)?;
        info!("link {from}->{to}: {faults}");
        self.record_link(from, to, faults);
        Ok(())
    }

    /// Sets the faults of every directed link.
    pub fn set_all_links(&self, faults: LinkFaults) -> Result<(), FaultError> {
        self.network.links().set_all(faults)?;
        info!("every link: {faults}");
        for from in self.config.ids() {
            for to in self.config.ids().filter(|&to| to != from) {
                self.record_link(from, to, faults);
            }
        }
        Ok(())
    }

    fn record_link(&self, from: NodeId, to: NodeId, faults: LinkFaults) {
        let change = if faults.cut {
            LinkChange::Cut
        } else if faults == LinkFaults::default() {
            LinkChange::Faultless
        } else {
            LinkChange::Faulty
        };
        self.observer
            .record_fault(from, EventKind::LinkChanged { to, change });
    }

    /// Cuts a running `id` off from everyone until [`Self::connect`].
    pub fn disconnect(&self, id: NodeId) -> Result<(), FaultError> {
        self.network.links().set_connected(id, false)?;
        info!(node = %id, "disconnect {id}");
        self.observer.record_fault(id, EventKind::Disconnected);
        Ok(())
    }

    /// Reconnects `id` after [`Self::disconnect`].
    pub fn connect(&self, id: NodeId) -> Result<(), FaultError> {
        self.network.links().set_connected(id, true)?;
        info!(node = %id, "connect {id}");
        self.observer.record_fault(id, EventKind::Connected);
        Ok(())
    }

    /// Every link open and faultless again, every node connected (crashed
    /// nodes stay down).
    pub fn heal(&self) {
        self.network.links().heal();
        info!("heal: every link is open again");
        for id in self.config.ids() {
            self.observer.record_fault(id, EventKind::Healed);
        }
    }

    fn collect(&self, id: NodeId, joined: Result<Result<(), NodeError>, tokio::task::JoinError>) {
        let reason = match joined {
            Ok(Ok(())) => return,
            Err(e) if e.is_cancelled() => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => match e.try_into_panic() {
                Ok(payload) => panic_message(payload.as_ref()),
                Err(e) => e.to_string(),
            },
        };
        lock(&self.failures).push(NodeFailure { node: id, reason });
    }

    /// Stops every node task and waits for each to end. Fails if any task
    /// panicked or stopped on an error, now or earlier. If this future is
    /// dropped midway, the tasks not yet joined still end (their inboxes are
    /// closed) but their failures go unreported. Every node stops at once,
    /// so no leadership is handed over: to stop one node gracefully, see
    /// [`Self::stop`].
    pub async fn shutdown(self) -> Result<(), ShutdownError> {
        // A closed inbox ends a node's task once it has drained it.
        for id in self.config.ids() {
            self.network.close_inbox(id);
        }
        let tasks = std::mem::take(&mut self.lives.lock().await.tasks);
        for (id, task) in tasks {
            let joined = task.await;
            self.collect(id, joined);
        }
        let failures = std::mem::take(&mut *lock(&self.failures));
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ShutdownError { failures })
        }
    }
}

impl Drop for ClusterHandle {
    fn drop(&mut self) {
        for task in self.lives.get_mut().tasks.values() {
            task.abort();
        }
        self.network.abort_delayed();
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        format!("panicked: {message}")
    } else if let Some(message) = payload.downcast_ref::<String>() {
        format!("panicked: {message}")
    } else {
        "panicked".to_owned()
    }
}
