//! Observation: what the cluster did, for tests to await and people to read.
//!
//! Drivers report every step to the (crate-private) `Observer`, which
//! - appends [`Event`]s to a bounded [`EventLog`],
//! - updates the [`StatusBoard`] (role, term, leader of each live node) and
//!   wakes whoever awaits a condition on it,
//! - feeds the step to the one cluster-wide invariant checker,
//!   [`crate::invariants::History`], and keeps the first violation,
//! - narrates the step with `tracing` ("n1 timed out in t1, campaigns for t2").
//!
//! With [`crate::runtime::Observation::Monitor`] only the board and the
//! invariant checker run: no event log, no narration.
//!
//! Everything here describes a change the core already made by comparing the
//! node before and after the step; nothing decides anything.

use super::config::Observation;
use super::network::Delivery;
use super::sync::{AtomicU64, Mutex, Ordering, lock};
use crate::config::Config;
use crate::invariants::{History, Violation};
use crate::message::Message;
use crate::node::{Input, Node, Timer};
use crate::types::{HardState, NodeId, Role, Term};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, error, info, trace};

/// The event log keeps the most recent this many events and counts the rest.
/// A three-node cluster at the default 50 ms heartbeat logs about 80 events a
/// second (two heartbeats and two acknowledgements), so this is over ten
/// minutes of history in a few megabytes.
pub const MAX_EVENTS: usize = 65_536;

/// Something that happened at one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Time since the cluster started (virtual time under a paused Tokio clock).
    pub at: Duration,
    /// The node it happened at.
    pub node: NodeId,
    /// The node's current term after the event; for [`EventKind::ElectionTimeout`],
    /// the term in which the timer fired.
    pub term: Term,
    /// What happened.
    pub kind: EventKind,
}

/// The kinds of [`Event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The node's task started from this stored hard state.
    Started {
        /// What storage held.
        restored: HardState,
    },
    /// The node's election timer fired.
    ElectionTimeout,
    /// The node adopted a higher term.
    TermChanged {
        /// The term it left.
        from: Term,
    },
    /// The node changed role.
    RoleChanged {
        /// Old role.
        from: Role,
        /// New role.
        to: Role,
    },
    /// The node granted its vote to another candidate in `term`.
    VoteGranted {
        /// Who got the vote.
        candidate: NodeId,
    },
    /// The node learned who leads its term (a follower accepting a heartbeat).
    LeaderLearned {
        /// The leader.
        leader: NodeId,
    },
    /// The node sent a message, and the network did this with it.
    Sent {
        /// Receiver.
        to: NodeId,
        /// The message.
        message: Message,
        /// Delivered or lost, and why.
        delivery: Delivery,
    },
    /// The node was killed by the fault controls.
    Killed,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (at, node, term) = (self.at.as_millis(), self.node, self.term);
        write!(f, "{at:>6} ms {node} {term}: ")?;
        match self.kind {
            EventKind::Started { restored } => write!(
                f,
                "started from storage ({}, voted for {})",
                restored.current_term,
                display_option(restored.voted_for)
            ),
            EventKind::ElectionTimeout => f.write_str("election timeout"),
            EventKind::TermChanged { from } => write!(f, "term {from} -> {term}"),
            EventKind::RoleChanged { from, to } => write!(f, "{from} -> {to}"),
            EventKind::VoteGranted { candidate } => write!(f, "votes for {candidate}"),
            EventKind::LeaderLearned { leader } => write!(f, "follows {leader}"),
            EventKind::Sent {
                to,
                message,
                delivery,
            } => write!(f, "-> {to} {message} ({delivery})"),
            EventKind::Killed => f.write_str("killed"),
        }
    }
}

fn display_option(id: Option<NodeId>) -> String {
    id.map_or_else(|| "nobody".to_owned(), |id| id.to_string())
}

/// A bounded log of events, oldest first.
#[derive(Debug)]
pub struct EventLog {
    events: Mutex<VecDeque<Event>>,
    evicted: AtomicU64,
}

impl Default for EventLog {
    fn default() -> Self {
        Self {
            events: Mutex::new(VecDeque::new()),
            evicted: AtomicU64::new(0),
        }
    }
}

impl EventLog {
    /// Appends `event`, evicting the oldest one beyond [`MAX_EVENTS`].
    pub fn push(&self, event: Event) {
        let mut events = lock(&self.events);
        if events.len() >= MAX_EVENTS {
            events.pop_front();
            // A statistic: read only for reporting.
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        events.push_back(event);
    }

    /// A copy of the retained events, oldest first.
    #[must_use]
    pub fn snapshot(&self) -> Vec<Event> {
        lock(&self.events).iter().copied().collect()
    }

    /// How many old events were evicted to respect [`MAX_EVENTS`].
    #[must_use]
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }
}

/// One live node as last reported by its driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// Follower, candidate or leader.
    pub role: Role,
    /// Current term.
    pub term: Term,
    /// The leader it knows for `term` (itself when leader).
    pub leader: Option<NodeId>,
    /// Whom it voted for in `term`.
    pub voted_for: Option<NodeId>,
}

impl NodeStatus {
    fn of(node: &Node) -> Self {
        Self {
            role: node.role(),
            term: node.current_term(),
            leader: node.leader_id(),
            voted_for: node.voted_for(),
        }
    }
}

/// The status of every live node at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statuses {
    voters: u8,
    quorum: usize,
    live: BTreeMap<NodeId, NodeStatus>,
}

impl Statuses {
    /// The status of `id`, or `None` if it is down.
    #[must_use]
    pub fn get(&self, id: NodeId) -> Option<&NodeStatus> {
        self.live.get(&id)
    }

    /// Live nodes and their statuses, by id.
    #[must_use]
    pub fn live(&self) -> &BTreeMap<NodeId, NodeStatus> {
        &self.live
    }

    /// Live nodes that believe they lead, with their terms. More than one is
    /// possible across terms (a partitioned old leader), never within one.
    #[must_use]
    pub fn leaders(&self) -> Vec<(NodeId, Term)> {
        self.live
            .iter()
            .filter(|(_, s)| s.role == Role::Leader)
            .map(|(&id, s)| (id, s.term))
            .collect()
    }

    /// A leader that a majority of the cluster (itself included) follows in
    /// its term: the leader a client could actually use.
    #[must_use]
    pub fn acknowledged_leader(&self) -> Option<(NodeId, Term)> {
        let quorum = self.quorum;
        self.leaders().into_iter().find(|&(leader, term)| {
            let followers = self
                .live
                .values()
                .filter(|s| s.term == term && s.leader == Some(leader))
                .count();
            followers >= quorum
        })
    }

    /// The leader that every live node follows in its term: the cluster has
    /// settled, no node is still catching up on the election (a node that
    /// missed it would raise its term on the next heartbeat, which a count of
    /// elections must not mistake for a new one).
    #[must_use]
    pub fn leader_known_to_all(&self) -> Option<(NodeId, Term)> {
        let (leader, term) = self.acknowledged_leader()?;
        self.live
            .values()
            .all(|s| s.term == term && s.leader == Some(leader))
            .then_some((leader, term))
    }
}

impl fmt::Display for Statuses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for id in (0..self.voters).map(NodeId) {
            if id.0 > 0 {
                f.write_str(", ")?;
            }
            match self.live.get(&id) {
                None => write!(f, "{id} down")?,
                Some(s) => {
                    write!(f, "{id} {} {}", s.role, s.term)?;
                    if let (Role::Follower, Some(leader)) = (s.role, s.leader) {
                        write!(f, " (leader {leader})")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The latest status of every node, written by drivers and read by waiters.
///
/// A killed node is off the board, and a late report from its task (one that
/// was mid-step when killed) is ignored, so the board never shows a dead node.
#[derive(Debug)]
pub struct StatusBoard {
    voters: u8,
    quorum: usize,
    state: Mutex<BoardState>,
}

#[derive(Debug, Default)]
struct BoardState {
    live: BTreeMap<NodeId, NodeStatus>,
    down: BTreeSet<NodeId>,
}

impl StatusBoard {
    /// An empty board for the cluster `config` belongs to (any member's config).
    #[must_use]
    pub fn new(config: &Config) -> Self {
        Self {
            voters: u8::try_from(config.voters().len()).unwrap_or(u8::MAX),
            quorum: config.quorum(),
            state: Mutex::new(BoardState::default()),
        }
    }

    /// Records `status` of `id` unless `id` is down; returns whether it changed.
    pub fn update(&self, id: NodeId, status: NodeStatus) -> bool {
        let mut state = lock(&self.state);
        if state.down.contains(&id) {
            return false;
        }
        state.live.insert(id, status) != Some(status)
    }

    /// Takes `id` off the board until [`Self::revive`].
    pub fn kill(&self, id: NodeId) {
        let mut state = lock(&self.state);
        state.live.remove(&id);
        state.down.insert(id);
    }

    /// Puts `id` back, with `status`.
    pub fn revive(&self, id: NodeId, status: NodeStatus) {
        let mut state = lock(&self.state);
        state.down.remove(&id);
        state.live.insert(id, status);
    }

    /// A consistent copy of the board.
    #[must_use]
    pub fn snapshot(&self) -> Statuses {
        Statuses {
            voters: self.voters,
            quorum: self.quorum,
            live: lock(&self.state).live.clone(),
        }
    }
}

/// The invariant checker and the first violation it found.
#[derive(Debug, Default)]
struct Checker {
    history: History,
    violation: Option<Violation>,
}

/// The cluster-wide invariants of [`crate::invariants`], checked on every
/// step the drivers report, from every task at once.
///
/// One lock covers check and record, so two reports that only together
/// break an invariant (two votes of one node in one term, two leaders of one
/// term) are caught in every interleaving; the loom tests check exactly that.
#[derive(Debug, Default)]
pub struct SafetyMonitor {
    checker: Mutex<Checker>,
}

impl SafetyMonitor {
    /// A monitor that has seen nothing.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks and records one step of `config.id()`; keeps the first violation.
    pub fn record_step(
        &self,
        config: &Config,
        before: &Node,
        input: &Input,
        after: &Node,
    ) -> Result<(), Violation> {
        // Most steps are heartbeats that change nothing: no lock for those.
        if History::is_inert(before, input, after) {
            return Ok(());
        }
        let mut checker = lock(&self.checker);
        let result = checker.history.record_step(config, before, input, after);
        Self::keep_first(&mut checker, &result);
        result
    }

    /// Checks and records node `id` (re)starting as `node`.
    pub fn record_restart(&self, id: NodeId, node: &Node) -> Result<(), Violation> {
        let mut checker = lock(&self.checker);
        let result = checker.history.record_restart(id, node);
        Self::keep_first(&mut checker, &result);
        result
    }

    fn keep_first(checker: &mut Checker, result: &Result<(), Violation>) {
        if let Err(violation) = result {
            checker.violation.get_or_insert_with(|| violation.clone());
        }
    }

    /// The first violation seen, if any.
    #[must_use]
    pub fn violation(&self) -> Option<Violation> {
        lock(&self.checker).violation.clone()
    }

    /// Who became leader of which term so far.
    #[must_use]
    pub fn leaders_by_term(&self) -> BTreeMap<Term, NodeId> {
        lock(&self.checker).history.leaders().clone()
    }
}

/// Where every driver reports; see the module documentation.
#[derive(Debug)]
pub(crate) struct Observer {
    start: Instant,
    /// With [`Observation::Monitor`] the log stays empty and nothing is narrated.
    observation: Observation,
    log: EventLog,
    board: StatusBoard,
    monitor: SafetyMonitor,
    /// Bumped after every board change; waiters subscribe to it.
    changes: watch::Sender<u64>,
}

impl Observer {
    pub(crate) fn new(config: &Config, observation: Observation) -> Self {
        Self {
            start: Instant::now(),
            observation,
            log: EventLog::default(),
            board: StatusBoard::new(config),
            monitor: SafetyMonitor::new(),
            changes: watch::Sender::new(0),
        }
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

    fn check(result: Result<(), Violation>) {
        if let Err(violation) = result {
            error!("invariant broken: {violation}");
        }
    }

    /// A node's task started from storage as `node`.
    pub(crate) fn record_start(&self, id: NodeId, node: &Node) {
        let restored = node.hard_state();
        info!(
            "{id} starts as follower in {} (voted for {})",
            restored.current_term,
            display_option(restored.voted_for)
        );
        Self::check(self.monitor.record_restart(id, node));
        self.push(id, restored.current_term, EventKind::Started { restored });
        self.board.revive(id, NodeStatus::of(node));
        self.notify();
    }

    /// A node was killed.
    pub(crate) fn record_kill(&self, id: NodeId) {
        let term = self.board.snapshot().get(id).map(|s| s.term);
        self.board.kill(id);
        self.push(id, term.unwrap_or_default(), EventKind::Killed);
        self.notify();
    }

    /// One step of `config.id()` from `before` to `after` on `input`.
    pub(crate) fn record_step(&self, config: &Config, before: &Node, input: &Input, after: &Node) {
        let id = config.id();
        Self::check(self.monitor.record_step(config, before, input, after));
        let from = match *input {
            Input::Receive { from, .. } => Some(from),
            Input::Start | Input::Timeout(_) => None,
        };
        let (term, old_term) = (after.current_term(), before.current_term());
        if *input == Input::Timeout(Timer::Election) {
            self.push(id, old_term, EventKind::ElectionTimeout);
        }
        if term != old_term {
            self.push(id, term, EventKind::TermChanged { from: old_term });
        }
        if after.role() != before.role() {
            let (old, new) = (before.role(), after.role());
            self.push(id, term, EventKind::RoleChanged { from: old, to: new });
        }
        if let Some(candidate) = new_vote(id, before, after) {
            self.push(id, term, EventKind::VoteGranted { candidate });
        }
        if let Some(leader) = new_leader(id, before, after) {
            self.push(id, term, EventKind::LeaderLearned { leader });
        }
        if self.full() {
            narrate(id, before, input, from, after);
        }
        // The board already holds `before`'s status: skip the lock if unchanged.
        let status = NodeStatus::of(after);
        if status != NodeStatus::of(before) && self.board.update(id, status) {
            self.notify();
        }
    }

    /// One message handed to the network, and its fate.
    pub(crate) fn record_send(
        &self,
        from: NodeId,
        term: Term,
        to: NodeId,
        message: Message,
        delivery: Delivery,
    ) {
        if !self.full() {
            return;
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

/// Tells a person learning Raft what the step did, in the paper's words.
fn narrate(id: NodeId, before: &Node, input: &Input, from: Option<NodeId>, after: &Node) {
    let (old_term, term) = (before.current_term(), after.current_term());
    let (old_role, role) = (before.role(), after.role());
    let sender = display_option(from);
    let what = match input {
        Input::Receive { message, .. } => message_name(message),
        Input::Start | Input::Timeout(_) => "message",
    };
    if *input == Input::Timeout(Timer::Election) && role == Role::Candidate {
        info!("{id} timed out in {old_term} as {old_role}, campaigns for {term}");
    }
    if role == Role::Leader && (old_role != Role::Leader || old_term != term) {
        // The votes are those the candidate held plus the one that just arrived.
        let mut votes = if old_term == term {
            before.votes_granted().clone()
        } else {
            BTreeSet::new()
        };
        votes.insert(id);
        votes.extend(from);
        let votes: Vec<String> = votes.iter().map(NodeId::to_string).collect();
        info!("{id} becomes leader of {term} (votes {})", votes.join(","));
    }
    if role == Role::Follower && old_role != Role::Follower {
        if term > old_term {
            info!("{id} steps down: saw {term} from {sender}");
        } else {
            info!("{id} steps down: {sender} leads {term}");
        }
    } else if role == Role::Follower && term > old_term {
        info!("{id} learns of {term} from {sender}'s {what}");
    }
    if let Some(candidate) = new_vote(id, before, after) {
        info!("{id} votes for {candidate} in {term}");
    }
    if let Some(leader) = new_leader(id, before, after) {
        info!("{id} follows {leader} in {term}");
    }
}

fn message_name(message: &Message) -> &'static str {
    match message {
        Message::RequestVote { .. } => "RequestVote",
        Message::RequestVoteResponse { .. } => "RequestVoteResponse",
        Message::AppendEntries { .. } => "AppendEntries",
        Message::AppendEntriesResponse { .. } => "AppendEntriesResponse",
    }
}

/// The candidate `id` granted its vote to in this step, if it did.
fn new_vote(id: NodeId, before: &Node, after: &Node) -> Option<NodeId> {
    let changed =
        after.voted_for() != before.voted_for() || after.current_term() != before.current_term();
    after.voted_for().filter(|&c| c != id && changed)
}

/// The leader `id` learned of in this step, if it did (not itself).
fn new_leader(id: NodeId, before: &Node, after: &Node) -> Option<NodeId> {
    let changed =
        after.leader_id() != before.leader_id() || after.current_term() != before.current_term();
    after.leader_id().filter(|&l| l != id && changed)
}
