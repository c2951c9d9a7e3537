//! The Tokio runtime: one task per node, bounded channels as RPCs, fault
//! controls and observation for tests and the demo.
//!
//! The runtime only executes what [`crate::Node::step`] asks: it persists,
//! sends, arms and cancels timers, and picks timer durations. Every vote, role
//! and term decision stays in the core.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use raft_election::runtime::{ClusterConfig, spawn_cluster};
//! use std::time::Duration;
//!
//! let cluster = spawn_cluster(ClusterConfig::seeded(3, 42))?;
//! let (leader, term) = cluster.wait_for_leader(Duration::from_secs(1)).await?;
//! println!("{leader} leads {term}");
//! cluster.check_safety()?;
//! cluster.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`config`]: [`ClusterConfig`], [`TimeoutSource`] and their validation.
//! - `driver`: the per-node task loop.
//! - [`network`]: inboxes, the partition table ([`Links`]) and message fates.
//! - [`events`]: the event log, the status board and the narration.
//! - [`storage`]: [`StorageKind`] (memory or a directory of files) and the
//!   storage a killed node restarts from.
//! - `sync`: the std/loom facade the shared pieces are built on.

pub mod config;
mod driver;
pub mod events;
pub mod network;
pub mod storage;
mod sync;

pub use config::{ClusterConfig, ClusterConfigError, Observation, TimeoutSource};
pub use driver::NodeError;
pub use events::{
    Event, EventKind, EventLog, MAX_EVENTS, NodeStatus, SafetyMonitor, StatusBoard, Statuses,
};
pub use network::{Delivery, FaultError, INBOX_CAPACITY, Links, NetworkStats};
pub use storage::StorageKind;

use crate::config::Config;
use crate::invariants::Violation;
use crate::storage::{Storage, StorageError};
use crate::types::{HardState, NodeId, Term};
use driver::{Driver, TimeoutPicker, Wiring};
use events::Observer;
use network::Network;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use storage::SharedStorage;
use sync::Arc;
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

/// Node tasks that panicked or failed, found at shutdown or when killed.
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

/// A running cluster: fault controls and observation.
///
/// Dropping it aborts every node task; [`Self::shutdown`] stops them cleanly
/// and reports any that panicked.
#[derive(Debug)]
pub struct ClusterHandle {
    config: ClusterConfig,
    configs: BTreeMap<NodeId, Config>,
    /// Each node's current task, kept until it is joined: a task that was
    /// aborted may still be finishing a step on another worker.
    tasks: BTreeMap<NodeId, JoinHandle<Result<(), NodeError>>>,
    storages: BTreeMap<NodeId, SharedStorage>,
    started_from: BTreeMap<NodeId, HardState>,
    incarnations: BTreeMap<NodeId, u32>,
    network: Arc<Network>,
    observer: Arc<Observer>,
    failures: Vec<NodeFailure>,
}

/// Starts a cluster of `config.nodes` nodes, one Tokio task each, each
/// restored from its storage ([`ClusterConfig::storage`]: empty memory, or
/// files a previous cluster may have left). Must be called inside a Tokio
/// runtime.
///
/// Every node's state is read before any task starts, so a corrupt file is
/// an error here and no node runs.
pub fn spawn_cluster(config: ClusterConfig) -> Result<ClusterHandle, SpawnError> {
    config.validate()?;
    tokio::runtime::Handle::try_current().map_err(|_| SpawnError::NoRuntime)?;
    let mut storages = BTreeMap::new();
    let mut restored = BTreeMap::new();
    for id in config.ids() {
        let storage_error = |source| SpawnError::Storage { node: id, source };
        let storage = SharedStorage::open(&config.storage, id).map_err(storage_error)?;
        restored.insert(id, storage.load().map_err(storage_error)?);
        storages.insert(id, storage);
    }
    let configs: BTreeMap<NodeId, Config> = Config::cluster(config.nodes, config.timing)
        .map_err(ClusterConfigError::Timing)?
        .into_iter()
        .map(|c| (c.id(), c))
        .collect();
    // `validate` refused zero nodes, so there is a first config.
    let any = configs.values().next().ok_or(ClusterConfigError::NoNodes)?;
    let observer = Arc::new(Observer::new(any, config.observation));
    let network = Arc::new(Network::new(config.nodes, Arc::clone(&observer)));
    let mut handle = ClusterHandle {
        storages,
        started_from: BTreeMap::new(),
        incarnations: BTreeMap::new(),
        tasks: BTreeMap::new(),
        configs,
        network,
        observer,
        failures: Vec::new(),
        config,
    };
    for (id, hard_state) in restored {
        handle.spawn_node(id, hard_state);
    }
    Ok(handle)
}

impl ClusterHandle {
    fn spawn_node(&mut self, id: NodeId, restored: HardState) {
        // Callers pass members only (checked by `Links`); anything else is ignored.
        let (Some(config), Some(storage)) = (
            self.configs.get(&id).cloned(),
            self.storages.get(&id).cloned(),
        ) else {
            return;
        };
        let incarnation = self.incarnations.entry(id).or_insert(0);
        let picker = TimeoutPicker::new(&self.config.timeouts, id, *incarnation);
        *incarnation = incarnation.saturating_add(1);
        let wiring = Wiring {
            inbox: self.network.open_inbox(id),
            network: Arc::clone(&self.network),
            observer: Arc::clone(&self.observer),
        };
        self.started_from.insert(id, restored);
        let precise = self.config.precise_timers;
        let driver = Driver::new(config, storage, restored, picker, wiring, precise);
        let old = self.tasks.insert(id, tokio::spawn(driver.run()));
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

    /// Message counts by fate.
    #[must_use]
    pub fn network_stats(&self) -> NetworkStats {
        self.network.stats()
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
        self.started_from.get(&id).copied()
    }

    /// The first cluster-wide invariant broken so far, over every step of
    /// every node since the start (election safety among them), as checked
    /// by [`crate::invariants::History`].
    pub fn check_safety(&self) -> Result<(), Violation> {
        self.observer.violation().map_or(Ok(()), Err)
    }

    /// Who became leader of each term so far (at most one per term, or
    /// [`Self::check_safety`] reports it).
    #[must_use]
    pub fn leaders_by_term(&self) -> BTreeMap<Term, NodeId> {
        self.observer.leaders_by_term()
    }

    /// Waits until `condition` holds on the status board, at most `timeout`.
    ///
    /// Wakes on every board change, never polls; returns the statuses that
    /// satisfied the condition.
    pub async fn wait_until(
        &self,
        mut condition: impl FnMut(&Statuses) -> bool,
        timeout: Duration,
    ) -> Result<Statuses, WaitError> {
        let deadline = Instant::now() + timeout;
        // Subscribe before reading, so a change between the read and the wait
        // still wakes us.
        let mut changes = self.observer.subscribe();
        // Bounded by the deadline: every iteration waits for a change or gives up.
        loop {
            let statuses = self.statuses();
            if condition(&statuses) {
                return Ok(statuses);
            }
            match timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives in `self`; it cannot be gone, but if it were,
                // nothing would change any more.
                Ok(Err(_)) | Err(_) => {
                    return Err(WaitError::Timeout {
                        waited: timeout,
                        statuses: self.statuses(),
                    });
                }
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

    /// Kills `id`: nothing reaches or leaves it any more, its inbox is
    /// closed and its task aborted (and awaited, so it is gone on return).
    /// Its storage survives for [`Self::restart`].
    ///
    /// If this future is dropped before it finishes, the node is down but its
    /// task may still be ending; [`Self::restart`] waits for it.
    pub async fn kill(&mut self, id: NodeId) -> Result<(), FaultError> {
        self.network.links().kill(id)?;
        info!("kill {id}: its task is aborted and its channel closed");
        self.network.close_inbox(id);
        self.observer.record_kill(id);
        self.join(id).await;
        Ok(())
    }

    /// Aborts `id`'s task if it has one and waits until it is gone. The
    /// handle leaves the map only once joined, with no await in between, so
    /// a cancelled wait leaves it for the next caller.
    async fn join(&mut self, id: NodeId) {
        let Some(task) = self.tasks.get_mut(&id) else {
            return;
        };
        task.abort();
        let joined = task.await;
        self.tasks.remove(&id);
        self.collect(id, joined);
    }

    /// Restarts a killed `id` from what it saved (Figure 2's persistent state);
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
    pub async fn restart(&mut self, id: NodeId) -> Result<(), RestoreError> {
        if self.network.links().is_up(id) {
            return Err(FaultError::AlreadyUp { id }.into());
        }
        self.join(id).await;
        let restored = self.hard_state(id)?;
        self.network.links().revive(id)?;
        info!("restart {id} from its storage");
        self.spawn_node(id, restored);
        Ok(())
    }

    /// Splits the cluster: messages pass only inside a group; a node no group
    /// lists is cut off from everyone. Replaces any earlier partition.
    pub fn partition(&self, groups: &[BTreeSet<NodeId>]) -> Result<(), FaultError> {
        self.network.links().partition(groups)?;
        let sides: Vec<String> = groups
            .iter()
            .map(|g| {
                let ids: Vec<String> = g.iter().map(NodeId::to_string).collect();
                format!("{{{}}}", ids.join(","))
            })
            .collect();
        info!("partition: {}", sides.join(" | "));
        Ok(())
    }

    /// Cuts `id` off from every other node.
    pub fn isolate(&self, id: NodeId) -> Result<(), FaultError> {
        let rest: BTreeSet<NodeId> = self.config.ids().filter(|&other| other != id).collect();
        self.partition(&[BTreeSet::from([id]), rest])
    }

    /// Reopens every link (killed nodes stay down).
    pub fn heal(&self) {
        self.network.links().heal();
        info!("heal: every link is open again");
    }

    fn collect(
        &mut self,
        id: NodeId,
        joined: Result<Result<(), NodeError>, tokio::task::JoinError>,
    ) {
        let reason = match joined {
            Ok(Ok(())) => return,
            Err(e) if e.is_cancelled() => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => match e.try_into_panic() {
                Ok(payload) => panic_message(payload.as_ref()),
                Err(e) => e.to_string(),
            },
        };
        self.failures.push(NodeFailure { node: id, reason });
    }

    /// Stops every node task and waits for each to end. Fails if any task
    /// panicked or stopped on an error, now or earlier. If this future is
    /// dropped midway, the tasks not yet joined still end (their inboxes are
    /// closed) but their failures go unreported.
    pub async fn shutdown(mut self) -> Result<(), ShutdownError> {
        // A closed inbox ends a node's task once it has drained it.
        for id in self.config.ids() {
            self.network.close_inbox(id);
        }
        let tasks = std::mem::take(&mut self.tasks);
        for (id, task) in tasks {
            let joined = task.await;
            self.collect(id, joined);
        }
        if self.failures.is_empty() {
            Ok(())
        } else {
            Err(ShutdownError {
                failures: std::mem::take(&mut self.failures),
            })
        }
    }
}

impl Drop for ClusterHandle {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.abort();
        }
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
