//! What an in-process cluster records about itself. Each node's driver
//! reports to a [`NodeObserver`] (the driver's [`Observer`]), which feeds the
//! cluster's shared [`ClusterObserver`]:
//! - the [`EventLog`] (every role change, vote and message, bounded),
//! - the [`StatusBoard`] (role, term and leader of each live node), waking
//!   whoever awaits a condition on it,
//! - the [`SafetyMonitor`] (the cluster-wide invariants, first violation kept),
//! - per-node [`MessageCounts`],
//! - the narration.
//!
//! With [`Observation::Monitor`] only the board, the monitor and the counts
//! run: no event log, no narration. Everything here describes a change the
//! core already made; nothing decides anything.

use super::config::Observation;
use super::event_log::{Event, EventKind, EventLog, display_option};
use super::monitor::SafetyMonitor;
use super::narration::narrate;
use super::status::{NodeStatus, StatusBoard};
use crate::driver::Observer;
use crate::round_trips::RoundTrips;
use crate::sync::{Arc, AtomicU64, Mutex, Ordering, lock};
use crate::transport::Delivery;
use raft_election::invariants::Violation;
use raft_election::{Change, Config, Input, Message, Node, NodeId, Summary, Term, Timer};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, error, info, trace};

/// Messages of each kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ByKind {
    /// RequestVote.
    pub request_vote: u64,
    /// RequestVoteResponse.
    pub request_vote_response: u64,
    /// AppendEntries (heartbeats).
    pub append_entries: u64,
    /// AppendEntriesResponse.
    pub append_entries_response: u64,
    /// PreVote.
    pub pre_vote: u64,
    /// PreVoteResponse.
    pub pre_vote_response: u64,
    /// TimeoutNow.
    pub timeout_now: u64,
}

impl ByKind {
    /// All kinds together.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.request_vote
            + self.request_vote_response
            + self.append_entries
            + self.append_entries_response
            + self.pre_vote
            + self.pre_vote_response
            + self.timeout_now
    }
}

/// How many message kinds [`ByKind`] counts.
const KINDS: usize = 7;

/// What one node has sent and received since the cluster started, across
/// restarts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageCounts {
    /// Handed to the network, whatever became of them.
    pub sent: ByKind,
    /// Stepped by the node.
    pub received: ByKind,
}

/// Lock-free counters behind [`MessageCounts`], readable while nodes run.
#[derive(Debug, Default)]
struct Counts {
    sent: [AtomicU64; KINDS],
    received: [AtomicU64; KINDS],
}

fn kind_index(message: &Message) -> usize {
    match message {
        Message::RequestVote { .. } => 0,
        Message::RequestVoteResponse { .. } => 1,
        Message::AppendEntries { .. } => 2,
        Message::AppendEntriesResponse { .. } => 3,
        Message::PreVote { .. } => 4,
        Message::PreVoteResponse { .. } => 5,
        Message::TimeoutNow { .. } => 6,
    }
}

fn read(counters: &[AtomicU64; KINDS]) -> ByKind {
    // Statistics: no other memory depends on them.
    let at = |i: usize| counters[i].load(Ordering::Relaxed);
    ByKind {
        request_vote: at(0),
        request_vote_response: at(1),
        append_entries: at(2),
        append_entries_response: at(3),
        pre_vote: at(4),
        pre_vote_response: at(5),
        timeout_now: at(6),
    }
}

/// Where every driver of one cluster reports; see the module documentation.
#[derive(Debug)]
pub(crate) struct ClusterObserver {
    start: Instant,
    observation: Observation,
    log: EventLog,
    board: StatusBoard,
    monitor: SafetyMonitor,
    counts: Vec<Counts>,
    /// Each node's latest term, kept while it is down, so a fault recorded
    /// at a crashed node carries the term it last had.
    terms: Vec<AtomicU64>,
    /// Bumped after every board change; waiters subscribe to it.
    changes: watch::Sender<u64>,
    /// When each leader last sent AppendEntries to each peer, and the round
    /// trips its answers made (full observation only).
    heartbeats: Mutex<Heartbeats>,
}

/// Heartbeats awaiting an answer, by (leader, follower), and the round trips
/// of those answered.
#[derive(Debug, Default)]
struct Heartbeats {
    sent: BTreeMap<(NodeId, NodeId), Instant>,
    round_trips: RoundTrips,
}

impl ClusterObserver {
    /// An observer of the cluster `config` belongs to (any member's config).
    pub(crate) fn new(config: &Config, observation: Observation) -> Self {
        Self {
            start: Instant::now(),
            observation,
            log: EventLog::default(),
            board: StatusBoard::new(config),
            monitor: SafetyMonitor::new(config),
            counts: config.voters().iter().map(|_| Counts::default()).collect(),
            terms: config.voters().iter().map(|_| AtomicU64::new(0)).collect(),
            changes: watch::Sender::new(0),
            heartbeats: Mutex::new(Heartbeats::default()),
        }
    }

    /// Heartbeat round trips so far: a leader's AppendEntries sent, its
    /// answer stepped.
    pub(crate) fn round_trips(&self) -> RoundTrips {
        lock(&self.heartbeats).round_trips.clone()
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    pub(crate) fn log(&self) -> &EventLog {
        &self.log
    }

    pub(crate) fn board(&self) -> &StatusBoard {
        &self.board
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub(crate) fn violation(&self) -> Option<Violation> {
        self.monitor.violation()
    }

    pub(crate) fn leaders_by_term(&self) -> BTreeMap<Term, NodeId> {
        self.monitor.leaders_by_term()
    }

    /// What `id` has sent and received, or `None` if it is no member.
    pub(crate) fn message_counts(&self, id: NodeId) -> Option<MessageCounts> {
        let counts = self.counts.get(usize::from(id.0))?;
        Some(MessageCounts {
            sent: read(&counts.sent),
            received: read(&counts.received),
        })
    }

    fn count(&self, id: NodeId, message: &Message, sent: bool) {
        if let Some(counts) = self.counts.get(usize::from(id.0)) {
            let side = if sent { &counts.sent } else { &counts.received };
            side[kind_index(message)].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn notify(&self) {
        self.changes
            .send_modify(|version| *version = version.wrapping_add(1));
    }

    fn full(&self) -> bool {
        self.observation == Observation::Full
    }

    fn push(&self, node: NodeId, term: Term, kind: EventKind) {
        if !self.full() {
            return;
        }
        self.log.push(Event {
            at: self.elapsed(),
            node,
            term,
            kind,
        });
    }

    fn set_term(&self, id: NodeId, term: Term) {
        if let Some(slot) = self.terms.get(usize::from(id.0)) {
            // Read only to label events; nothing else depends on it.
            slot.store(term.0, Ordering::Relaxed);
        }
    }

    fn last_term(&self, id: NodeId) -> Term {
        self.terms
            .get(usize::from(id.0))
            .map_or(Term(0), |slot| Term(slot.load(Ordering::Relaxed)))
    }

    /// A fault the cluster's controls injected at `id`, for the event log.
    pub(crate) fn record_fault(&self, id: NodeId, kind: EventKind) {
        self.push(id, self.last_term(id), kind);
    }

    fn check(result: Result<(), Violation>) {
        if let Err(violation) = result {
            error!("invariant broken: {violation}");
        }
    }

    /// A node's task started from storage as `node`.
    fn record_start(&self, id: NodeId, node: &Node) {
        let restored = node.hard_state();
        info!(
            "{id} starts as follower in {} (voted for {})",
            restored.current_term,
            display_option(restored.voted_for)
        );
        Self::check(self.monitor.record_restart(id, node));
        self.set_term(id, restored.current_term);
        self.push(id, restored.current_term, EventKind::Started { restored });
        // `revive` put it on the board when its task was spawned; a task that
        // was crashed before it ran does not put it back.
        if self.board.update(id, NodeStatus::of(node)) {
            self.notify();
        }
    }

    /// A node's task is about to be spawned from `node`: it is live from now
    /// on, until a crash. Done by the cluster, not the task, so that a crash
    /// right after a restart can never be undone by the task starting late.
    pub(crate) fn record_revive(&self, id: NodeId, node: &Node) {
        self.board.revive(id, NodeStatus::of(node));
        self.notify();
    }

    /// A node crashed (by the fault controls, or on a failure): from now on
    /// the board ignores any late report of its task.
    pub(crate) fn record_crash(&self, id: NodeId) {
        self.board.crash(id);
        self.push(id, self.last_term(id), EventKind::Crashed);
        self.notify();
    }

    /// One step of `config.id()` from `before` to `after` on `input`.
    fn record_step(&self, config: &Config, before: &Node, input: &Input, after: &Node) {
        let id = config.id();
        Self::check(self.monitor.record_step(config, before, input, after));
        let from = match input {
            Input::Receive { from, message } => {
                self.count(id, message, false);
                if self.full() && matches!(message, Message::AppendEntriesResponse { .. }) {
                    let mut heartbeats = lock(&self.heartbeats);
                    if let Some(sent) = heartbeats.sent.remove(&(id, *from)) {
                        heartbeats.round_trips.record(sent.elapsed());
                    }
                }
                Some(*from)
            }
            Input::Start | Input::Timeout(_) | Input::TransferLeadership { .. } => None,
        };
        let (term, old_term) = (after.current_term(), before.current_term());
        if let (Some(from), Input::Receive { message, .. }) = (from, input) {
            let message = *message;
            self.push(id, term, EventKind::Received { from, message });
        }
        if *input == Input::Timeout(Timer::Election) {
            self.push(id, old_term, EventKind::ElectionTimeout);
        }
        let change = Change::between(&Summary::of(before), &Summary::of(after));
        if let Some(from) = change.term_from {
            self.set_term(id, term);
            self.push(id, term, EventKind::TermChanged { from });
        }
        if let Some(from) = change.role_from {
            let to = after.role();
            self.push(id, term, EventKind::RoleChanged { from, to });
        }
        // A candidate's vote for itself and a winner's own leadership are
        // its role change, already recorded.
        if let Some(candidate) = change.vote.filter(|&c| c != id) {
            self.push(id, term, EventKind::VoteGranted { candidate });
        }
        if let Some(leader) = change.leader.filter(|&l| l != id) {
            self.push(id, term, EventKind::LeaderLearned { leader });
        }
        if self.full() {
            narrate(id, before, input, from, after, &change);
        }
        // The board already holds `before`'s status: skip the lock if unchanged.
        let status = NodeStatus::of(after);
        if status != NodeStatus::of(before) && self.board.update(id, status) {
            self.notify();
        }
    }

    /// One message handed to the network, and its fate.
    fn record_send(
        &self,
        from: NodeId,
        term: Term,
        to: NodeId,
        message: Message,
        delivery: Delivery,
    ) {
        self.count(from, &message, true);
        if !self.full() {
            return;
        }
        if matches!(message, Message::AppendEntries { .. }) {
            lock(&self.heartbeats)
                .sent
                .insert((from, to), Instant::now());
        }
        let is_heartbeat = matches!(
            message,
            Message::AppendEntries { .. } | Message::AppendEntriesResponse { .. }
        );
        match (delivery, is_heartbeat) {
            (Delivery::Delivered, true) => trace!("{from} -> {to}: {message}"),
            (Delivery::Delivered, false) => debug!("{from} -> {to}: {message}"),
            (lost, _) => debug!("{from} -> {to}: {message} ({lost})"),
        }
        self.push(
            from,
            term,
            EventKind::Sent {
                to,
                message,
                delivery,
            },
        );
    }
}

/// One node's reports, forwarded to its cluster's [`ClusterObserver`].
#[derive(Debug)]
pub(crate) struct NodeObserver(pub(crate) Arc<ClusterObserver>);

impl Observer for NodeObserver {
    fn started(&mut self, config: &Config, node: &Node) {
        self.0.record_start(config.id(), node);
    }

    fn stepped(&mut self, config: &Config, before: &Node, input: &Input, after: &Node) {
        self.0.record_step(config, before, input, after);
    }

    fn sent(
        &mut self,
        config: &Config,
        term: Term,
        to: NodeId,
        message: &Message,
        delivery: Delivery,
    ) {
        self.0
            .record_send(config.id(), term, to, *message, delivery);
    }
}
