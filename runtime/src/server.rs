//! One Raft server for an application to embed: the [`Driver`] of one node
//! on its own task, over any [`Transport`] and [`Storage`], paced as a node
//! on a machine of its own ([`crate::Independent`]), with a watch on who
//! leads.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use raft_election::storage::MemStorage;
//! use raft_election::{ClusterId, Config, NodeId, Timing};
//! use raft_election_runtime::{Server, TcpConfig, TcpTransport};
//! use std::collections::BTreeMap;
//!
//! // A cluster of one, so it elects itself; a real one lists its peers.
//! let config = Config::new(NodeId(1), [NodeId(1)], Timing::default())?;
//! let tcp = TcpConfig::new(ClusterId(1), "127.0.0.1:0".parse()?, BTreeMap::new());
//! let transport = TcpTransport::bind(&config, tcp).await?;
//! // A real node keeps its term and vote in a locked data directory
//! // (`DataDir::create(dir)?.state(cluster, id, true)?` the first time,
//! // `DataDir::lock(dir)?.state(cluster, id, false)?` ever after).
//! let server = Server::builder(config)
//!     .storage(MemStorage::new())
//!     .transport(transport)
//!     .spawn()?;
//! let mut leadership = server.leadership();
//! let now = *leadership.wait_for(|l| l.is_me).await?;
//! // Work only while leading, and stamp what you write with the term: a
//! // store that refuses writes of older terms fences off a deposed leader.
//! println!("leading {}: writes carry fencing token {}", now.term, now.term.0);
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! What `is_me` promises is exactly what Raft's election does: this node won
//! a majority of votes in `term`. Without CheckQuorum it may have been
//! deposed since, by a partition it cannot see: another node may lead a
//! later term at the same moment. Hence the fencing token (proofs.md,
//! question 5). With the leader lease on (`Config::with_leader_lease`),
//! `lease_until` and [`Leadership::has_lease`] say until when no other node
//! can lead, as long as clocks stay within the configured drift bound
//! (proofs.md, "Leader lease").

use crate::driver::{Driver, NodeError, Observer, Requests, RequestsFull};
use crate::record_log::{log_record, log_saved};
use crate::round_trips::RoundTrips;
use crate::sync::lock;
use crate::timeouts::{TimeoutPicker, TimeoutSource};
use crate::transport::{Delivery, Transport};
use raft_election::storage::{Storage, StorageError};
use raft_election::{
    Config, HardState, Input, Message, Node, NodeId, Record, RestoredStateError, Role, Term, Timer,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, trace};

/// Who leads, as this server knows it. `term` only grows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Leadership {
    /// This server's current term: a fencing token for whatever the leader
    /// of this term writes.
    pub term: Term,
    /// The leader of `term`, once known (from its heartbeat, or itself).
    pub leader: Option<NodeId>,
    /// Whether this server is that leader: it won `term`'s election and has
    /// seen no higher term since.
    pub is_me: bool,
    /// With the leader lease on (`Config::with_leader_lease`), when this
    /// leader's lease ends by this machine's clock: until then no other node
    /// can lead, as long as no clock ran faster than another by more than
    /// the configured drift bound (proofs.md, "Leader lease"). `None` when
    /// it holds no lease. The watch is not told when the time passes: ask
    /// [`Self::has_lease`].
    pub lease_until: Option<Instant>,
}

impl Leadership {
    /// Whether this server leads and its lease has not yet run out.
    #[must_use]
    pub fn has_lease(&self) -> bool {
        self.is_me && self.lease_until.is_some_and(|until| Instant::now() < until)
    }
}

/// What a server is doing, for operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerStatus {
    /// The server.
    pub id: NodeId,
    /// Follower, candidate or leader.
    pub role: Role,
    /// Current term.
    pub term: Term,
    /// The leader it knows for `term`.
    pub leader: Option<NodeId>,
    /// Whom it voted for in `term`.
    pub voted_for: Option<NodeId>,
    /// A follower: when it last accepted its leader's heartbeat. A leader:
    /// when it last sent a round of heartbeats.
    pub last_heartbeat: Option<Instant>,
    /// A leader: when each follower last answered its heartbeats in this
    /// term (empty in other roles).
    pub answered: BTreeMap<NodeId, Instant>,
    /// False once its node stopped (shut down or failed).
    pub running: bool,
}

impl ServerStatus {
    fn new(id: NodeId) -> Self {
        Self {
            id,
            role: Role::Follower,
            term: Term(0),
            leader: None,
            voted_for: None,
            last_heartbeat: None,
            answered: BTreeMap::new(),
            running: true,
        }
    }
}

/// One of a server's records as its application sees it
/// ([`ServerBuilder::on_record`]), with what the driver measured beside it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Noted<'a> {
    /// The record: a start, a step, a save or a send.
    pub record: &'a Record,
    /// A send's: what the transport did with the message.
    pub delivery: Option<Delivery>,
    /// A save's: how long the storage took to make it durable (the fsync,
    /// for a file).
    pub took: Option<Duration>,
    /// A step on a follower's answer to this leader's heartbeat: the
    /// heartbeat's round trip.
    pub round_trip: Option<Duration>,
}

/// The application's hook on every record ([`ServerBuilder::on_record`]).
struct RecordHook(Box<dyn FnMut(&Noted<'_>) + Send>);

impl std::fmt::Debug for RecordHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordHook")
    }
}

/// Why a server could not start, or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Its storage could not be read (missing, corrupt, another node's).
    #[error("cannot start {id}: {source}")]
    Storage {
        /// The server.
        id: NodeId,
        /// What the storage said.
        source: StorageError,
    },
    /// Its stored state does not fit the configuration.
    #[error("cannot start {id}: its stored state is refused: {source}")]
    Restored {
        /// The server.
        id: NodeId,
        /// What is wrong with it.
        source: RestoredStateError,
    },
    /// Spawned outside a Tokio runtime.
    #[error("a server must be spawned from inside a Tokio runtime")]
    NoRuntime,
    /// Its node stopped on an error (a storage failure: fail-stop). Shared:
    /// every wait for the server's end reports it.
    #[error(transparent)]
    Node(Arc<NodeError>),
    /// Its task panicked.
    #[error("{id}'s task panicked: {reason}")]
    Panicked {
        /// The server.
        id: NodeId,
        /// The panic message.
        reason: String,
    },
}

/// A builder's slot not filled yet.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unset;

/// Builds a [`Server`]: [`Server::builder`], then `storage`, `transport`,
/// and `spawn`.
#[derive(Debug)]
pub struct ServerBuilder<S, T> {
    config: Config,
    storage: S,
    transport: T,
    timeouts: Option<TimeoutSource>,
    hook: Option<RecordHook>,
}

impl<S, T> ServerBuilder<S, T> {
    /// Where the server keeps its term and vote. A process that may be
    /// restarted needs a file ([`crate::DataDir`]): memory forgets the vote.
    pub fn storage<S2: Storage + Send + 'static>(self, storage: S2) -> ServerBuilder<S2, T> {
        ServerBuilder {
            config: self.config,
            storage,
            transport: self.transport,
            timeouts: self.timeouts,
            hook: self.hook,
        }
    }

    /// How it reaches its peers ([`crate::TcpTransport`]).
    pub fn transport<T2: Transport + 'static>(self, transport: T2) -> ServerBuilder<S, T2> {
        ServerBuilder {
            config: self.config,
            storage: self.storage,
            transport,
            timeouts: self.timeouts,
            hook: self.hook,
        }
    }

    /// Where election timeouts come from; by default seeded at random, so
    /// no two servers or lives share a sequence.
    #[must_use]
    pub fn timeouts(mut self, source: TimeoutSource) -> Self {
        self.timeouts = Some(source);
        self
    }

    /// Hands every record of the node to `hook` as it happens (metrics, a
    /// health check), in the order the driver reports them. It runs on the
    /// node's own task between two steps, so it must be quick and never
    /// block: count, set a gauge, or `try_send` to a bounded channel.
    #[must_use]
    pub fn on_record(mut self, hook: impl FnMut(&Noted<'_>) + Send + 'static) -> Self {
        self.hook = Some(RecordHook(Box::new(hook)));
        self
    }
}

impl<S: Storage + Send + 'static, T: Transport + 'static> ServerBuilder<S, T> {
    /// Reads the stored state, checks it against the configuration and
    /// starts the server's task. Must be called inside a Tokio runtime.
    pub fn spawn(self) -> Result<Server, ServerError> {
        let id = self.config.id();
        let transfers = self.config.features().leadership_transfer;
        tokio::runtime::Handle::try_current().map_err(|_| ServerError::NoRuntime)?;
        let restored = self
            .storage
            .load()
            .map_err(|source| ServerError::Storage { id, source })?;
        self.config
            .check_restored(&restored)
            .map_err(|source| ServerError::Restored { id, source })?;
        let source = self
            .timeouts
            .unwrap_or_else(|| TimeoutSource::Seeded(rand::random()));
        let status = Arc::new(Mutex::new(ServerStatus::new(id)));
        let round_trips = Arc::new(Mutex::new(RoundTrips::default()));
        let (leadership, watching) = watch::channel(Leadership {
            term: restored.current_term,
            ..Leadership::default()
        });
        let leadership = Arc::new(leadership);
        let stop = CancellationToken::new();
        let observer = ServerObserver {
            status: Arc::clone(&status),
            round_trips: Arc::clone(&round_trips),
            leadership: Arc::clone(&leadership),
            heartbeats_sent: BTreeMap::new(),
            lease_until: None,
            hook: self.hook,
        };
        let transport = Stoppable {
            inner: self.transport,
            stop: stop.clone(),
        };
        let timeouts = TimeoutPicker::new(&source, id, 0);
        let driver = Driver::new(
            self.config,
            restored,
            self.storage,
            transport,
            observer,
            timeouts,
        );
        let requests = driver.requests();
        let stopping = Stopping {
            status: Arc::clone(&status),
            leadership,
        };
        let task = tokio::spawn(async move {
            let result = driver.run().await;
            // Dropped here when the driver returns, or while the task
            // unwinds from a panic: either way it leads nothing any more.
            drop(stopping);
            result
        });
        Ok(Server {
            id,
            transfers,
            watching,
            reader: StatusReader {
                status,
                round_trips,
            },
            requests,
            stop,
            task: Some(task),
            ended: None,
        })
    }
}

/// What a stopped server must no longer claim, cleared when this is
/// dropped: when its task returns, and also when the task panics (Tokio
/// drops a panicked task's future), so a watcher never keeps reading
/// `is_me: true` from a server that is gone.
#[derive(Debug)]
struct Stopping {
    status: Arc<Mutex<ServerStatus>>,
    leadership: Arc<watch::Sender<Leadership>>,
}

impl Drop for Stopping {
    fn drop(&mut self) {
        lock(&self.status).running = false;
        self.leadership.send_modify(|l| {
            l.is_me = false;
            l.leader = None;
            l.lease_until = None;
        });
    }
}

/// How a server's task ended, kept for every later wait.
#[derive(Clone, Debug)]
enum Ended {
    Stopped,
    Failed(Arc<NodeError>),
    Panicked(String),
}

impl Ended {
    fn new(joined: Result<Result<(), NodeError>, tokio::task::JoinError>) -> Self {
        match joined {
            Ok(Ok(())) => Self::Stopped,
            Ok(Err(e)) => Self::Failed(Arc::new(e)),
            Err(e) => Self::Panicked(e.to_string()),
        }
    }

    fn result(&self, id: NodeId) -> Result<(), ServerError> {
        match self {
            Self::Stopped => Ok(()),
            Self::Failed(e) => Err(ServerError::Node(Arc::clone(e))),
            Self::Panicked(reason) => Err(ServerError::Panicked {
                id,
                reason: reason.clone(),
            }),
        }
    }
}

/// A running server; see the module documentation. Dropping it stops the
/// server without waiting; [`Self::shutdown`] waits.
#[derive(Debug)]
pub struct Server {
    id: NodeId,
    /// Whether its configuration runs leadership transfer.
    transfers: bool,
    watching: watch::Receiver<Leadership>,
    reader: StatusReader,
    requests: Arc<Requests>,
    stop: CancellationToken,
    /// The task, until it has been waited for.
    task: Option<JoinHandle<Result<(), NodeError>>>,
    /// How it ended, once waited for.
    ended: Option<Ended>,
}

impl Server {
    /// A builder for the server `config.id()` of `config`'s cluster.
    #[must_use]
    pub fn builder(config: Config) -> ServerBuilder<Unset, Unset> {
        ServerBuilder {
            config,
            storage: Unset,
            transport: Unset,
            timeouts: None,
            hook: None,
        }
    }

    /// Its id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Who leads, updated on every change. Once the server stops, it says
    /// `is_me: false` and then reports the channel closed.
    #[must_use]
    pub fn leadership(&self) -> watch::Receiver<Leadership> {
        self.watching.clone()
    }

    /// What it is doing now.
    #[must_use]
    pub fn status(&self) -> ServerStatus {
        self.reader.status()
    }

    /// Its heartbeats' round trips so far (as leader).
    #[must_use]
    pub fn round_trips(&self) -> RoundTrips {
        self.reader.round_trips()
    }

    /// A handle that reads its status and round trips from anywhere (a log
    /// formatter, a status endpoint), for as long as it is kept.
    #[must_use]
    pub fn status_reader(&self) -> StatusReader {
        self.reader.clone()
    }

    /// Makes it campaign now, as if its election timer fired (a leader
    /// ignores it). With the leader lease on, a node that heard a leader
    /// within the minimum election timeout waits a new election timeout
    /// instead, so as not to depose a leader that holds its lease; use
    /// [`Self::transfer_leadership`] on the leader to move leadership at once.
    pub fn campaign(&self) -> Result<(), RequestsFull> {
        self.requests.send(Input::Timeout(Timer::Election))
    }

    /// Asks this server, if it leads, to hand its leadership to `to`
    /// (thesis §3.10): it sends `to` TimeoutNow once `to`'s log is known to
    /// be as up to date as its own, and `to` campaigns at once. The core
    /// ignores the request unless this server leads and its configuration
    /// runs leadership transfer; a transfer that does not complete within
    /// the minimum election timeout is abandoned.
    pub fn transfer_leadership(&self, to: NodeId) -> Result<(), RequestsFull> {
        self.requests.send(Input::TransferLeadership { to })
    }

    /// Before a planned stop: if this server leads, hands its leadership to
    /// the follower that answered its heartbeats last (the likeliest to be
    /// up and reachable) and waits until it no longer leads, or `within`
    /// passes. Returns the follower asked, if any. The stop that follows
    /// then costs the cluster a few message delays instead of an election
    /// timeout.
    pub async fn hand_over(&self, within: Duration) -> Option<NodeId> {
        let status = self.status();
        if !self.transfers || status.role != Role::Leader {
            return None;
        }
        let (&target, _) = status.answered.iter().max_by_key(|&(_, &at)| at)?;
        self.transfer_leadership(target).ok()?;
        let mut watching = self.watching.clone();
        let deposed = watching.wait_for(|leadership| !leadership.is_me);
        // Either way the caller stops next; a closed watch means stopped.
        let _ = tokio::time::timeout(within, deposed).await;
        Some(target)
    }

    /// Waits until the server stops by itself: a storage failure (the
    /// error) or its transport closing. Can be called again, and followed
    /// by [`Self::shutdown`]: each reports the same end.
    pub async fn stopped(&mut self) -> Result<(), ServerError> {
        let result = self.join().await;
        self.stop.cancel();
        result
    }

    /// Stops the server between two steps (a leader sends no more
    /// heartbeats, a state file is never left half written) and waits.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        self.stop.cancel();
        self.join().await
    }

    /// Waits for the task once; later calls read how it ended.
    async fn join(&mut self) -> Result<(), ServerError> {
        if let Some(task) = &mut self.task {
            // Cancelled mid-wait, the task stays to be waited for again.
            let joined = task.await;
            self.task = None;
            self.ended = Some(Ended::new(joined));
        }
        self.ended
            .as_ref()
            .map_or(Ok(()), |ended| ended.result(self.id))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Reads a server's status and round trips ([`Server::status_reader`]).
#[derive(Clone, Debug)]
pub struct StatusReader {
    status: Arc<Mutex<ServerStatus>>,
    round_trips: Arc<Mutex<RoundTrips>>,
}

impl StatusReader {
    /// What the server is doing now.
    #[must_use]
    pub fn status(&self) -> ServerStatus {
        lock(&self.status).clone()
    }

    /// Its heartbeats' round trips so far.
    #[must_use]
    pub fn round_trips(&self) -> RoundTrips {
        lock(&self.round_trips).clone()
    }
}

/// A transport the server can close: its `recv` then reports it closed,
/// which ends any wait of the driver's pacer, and the driver returns.
#[derive(Debug)]
struct Stoppable<T> {
    inner: T,
    stop: CancellationToken,
}

impl<T: Transport> Transport for Stoppable<T> {
    fn send(&mut self, to: NodeId, message: Message) -> Delivery {
        self.inner.send(to, message)
    }

    async fn recv(&mut self) -> Option<(NodeId, Message)> {
        tokio::select! {
            biased;
            () = self.stop.cancelled() => None,
            received = self.inner.recv() => received,
        }
    }
}

/// Keeps the status, the leadership watch and the round trips, and logs
/// each of the node's [`Record`]s as one line ([`crate::record_log`]), from
/// which a timeline can be drawn and a replay run.
#[derive(Debug)]
struct ServerObserver {
    status: Arc<Mutex<ServerStatus>>,
    round_trips: Arc<Mutex<RoundTrips>>,
    leadership: Arc<watch::Sender<Leadership>>,
    /// When the leader last sent AppendEntries to each peer.
    heartbeats_sent: BTreeMap<NodeId, Instant>,
    /// The end of this node's leader lease, as its driver last reported it.
    lease_until: Option<Instant>,
    /// The application's, if it asked for the records.
    hook: Option<RecordHook>,
}

impl ServerObserver {
    fn publish(&self, node: &Node) {
        {
            let mut status = lock(&self.status);
            // Answers count for the leadership of one term only.
            if node.role() != Role::Leader || status.term != node.current_term() {
                status.answered.clear();
            }
            status.role = node.role();
            status.term = node.current_term();
            status.leader = node.leader_id();
            status.voted_for = node.voted_for();
        }
        let now = Leadership {
            term: node.current_term(),
            leader: node.leader_id(),
            is_me: node.role() == Role::Leader,
            lease_until: self.lease_until,
        };
        self.leadership.send_if_modified(|l| {
            let changed = *l != now;
            *l = now;
            changed
        });
    }

    /// Round trip of a heartbeat answered by `from`, if one is pending.
    fn answered(&mut self, from: NodeId, leading: bool) -> Option<Duration> {
        let round_trip = self
            .heartbeats_sent
            .remove(&from)
            .map(|sent| sent.elapsed());
        if let Some(round_trip) = round_trip {
            lock(&self.round_trips).record(round_trip);
        }
        if leading {
            lock(&self.status).answered.insert(from, Instant::now());
        }
        round_trip
    }

    /// The heartbeat bookkeeping of a received message: round trips, the
    /// followers that answered, when the leader was last heard. Returns the
    /// round trip of the heartbeat it answers, if it is an answer.
    fn received(&mut self, from: NodeId, message: &Message, after: &Node) -> Option<Duration> {
        if matches!(message, Message::AppendEntries { .. }) && after.leader_id() == Some(from) {
            lock(&self.status).last_heartbeat = Some(Instant::now());
        }
        if let Message::AppendEntriesResponse { term, success, .. } = *message {
            let leading = success && after.role() == Role::Leader && term == after.current_term();
            return self.answered(from, leading);
        }
        None
    }

    /// Logs `record` and hands it to the application's hook.
    fn note(&mut self, noted: Noted<'_>) {
        match (noted.record, noted.took) {
            (Record::Saved(hard_state), Some(took)) => log_saved(*hard_state, took),
            _ => log_record(noted.record, noted.delivery),
        }
        if let Some(RecordHook(hook)) = &mut self.hook {
            hook(&noted);
        }
    }
}

impl<'a> Noted<'a> {
    /// `record`, with nothing measured beside it.
    fn of(record: &'a Record) -> Self {
        Self {
            record,
            delivery: None,
            took: None,
            round_trip: None,
        }
    }
}

impl Observer for ServerObserver {
    fn started(&mut self, _config: &Config, node: &Node) {
        // Published before the line, which reads the status for its prefix.
        self.publish(node);
        self.note(Noted::of(&Record::Started(node.hard_state())));
    }

    fn saved(&mut self, _config: &Config, hard_state: &HardState, took: Duration) {
        self.note(Noted {
            took: Some(took),
            ..Noted::of(&Record::Saved(*hard_state))
        });
    }

    fn stepped(&mut self, _config: &Config, before: &Node, input: &Input, after: &Node) {
        let round_trip = match input {
            Input::Receive { from, message } => self.received(*from, message, after),
            _ => None,
        };
        let record = Record::stepped(before, *input, after);
        if let Record::Stepped { change, .. } = &record {
            if !change.is_empty() {
                self.publish(after);
            }
        }
        self.note(Noted {
            round_trip,
            ..Noted::of(&record)
        });
    }

    fn sent(
        &mut self,
        _config: &Config,
        _term: Term,
        to: NodeId,
        message: &Message,
        delivery: Delivery,
    ) {
        if matches!(message, Message::AppendEntries { .. }) {
            let now = Instant::now();
            // Answers come back long before the next round (a heartbeat
            // interval apart); a lost answer's entry is replaced by the next send.
            self.heartbeats_sent.insert(to, now);
            lock(&self.status).last_heartbeat = Some(now);
        }
        let message = *message;
        self.note(Noted {
            delivery: Some(delivery),
            ..Noted::of(&Record::Sent { to, message })
        });
    }

    fn lease(&mut self, _config: &Config, until: Option<Instant>) {
        self.lease_until = until;
        self.leadership.send_if_modified(|l| {
            let changed = l.lease_until != until;
            l.lease_until = until;
            changed
        });
        match until {
            Some(until) => trace!(
                "holds the leader lease for {:?}",
                until.saturating_duration_since(Instant::now())
            ),
            None => debug!("holds no leader lease"),
        }
    }
}
