//! The event log: every step's visible changes and every message with its
//! fate, bounded, for tests to inspect and people to read.

use crate::sync::{AtomicU64, Mutex, Ordering, lock};
use crate::transport::Delivery;
use raft_election::{HardState, Message, NodeId, Role, Term};
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

/// The event log keeps the most recent this many events and counts the rest.
/// A three-node cluster at the default 50 ms heartbeat logs about 160 events
/// a second (two heartbeats and two acknowledgements, each sent and
/// received), so this is over six minutes of history in a few megabytes.
pub const MAX_EVENTS: usize = 65_536;

/// Something that happened at one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Time since the cluster started (virtual time under a paused Tokio clock).
    pub at: Duration,
    /// The node it happened at.
    pub node: NodeId,
    /// The node's current term after the event; for [`EventKind::ElectionTimeout`],
    /// the term in which the timer fired; for a fault at a crashed node, the
    /// last term it had.
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
    /// The node stepped a message from `from` (the other end of a
    /// [`EventKind::Sent`] that was delivered; twice for a duplicate).
    Received {
        /// The sender.
        from: NodeId,
        /// The message.
        message: Message,
    },
    /// The node was crashed by the fault controls, or stopped on a failure.
    Crashed,
    /// The fault controls partitioned the cluster: this node is in group
    /// `group` (0 for the first group given), or in none (`None`), cut off
    /// from everyone. Recorded at every node.
    Partitioned {
        /// Its group.
        group: Option<u8>,
    },
    /// The fault controls changed the link from this node to `to`.
    LinkChanged {
        /// The other end.
        to: NodeId,
        /// What the link is now.
        change: LinkChange,
    },
    /// The fault controls cut this running node off from everyone.
    Disconnected,
    /// The fault controls connected this node again.
    Connected,
    /// The fault controls opened every link again. Recorded at every node.
    Healed,
}

/// What the fault controls made of one directed link (see
/// [`crate::LinkFaults`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkChange {
    /// It loses everything: a one-way cut.
    Cut,
    /// It loses, duplicates or delays some messages.
    Faulty,
    /// It is faultless again.
    Faultless,
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
            EventKind::Received { from, message } => write!(f, "<- {from} {message}"),
            EventKind::Crashed => f.write_str("crashed"),
            EventKind::Partitioned { group: Some(group) } => {
                write!(f, "partitioned into group {group}")
            }
            EventKind::Partitioned { group: None } => f.write_str("partitioned from everyone"),
            EventKind::LinkChanged { to, change } => {
                let what = match change {
                    LinkChange::Cut => "cut",
                    LinkChange::Faulty => "faulty",
                    LinkChange::Faultless => "faultless",
                };
                write!(f, "link to {to} {what}")
            }
            EventKind::Disconnected => f.write_str("disconnected"),
            EventKind::Connected => f.write_str("connected"),
            EventKind::Healed => f.write_str("every link healed"),
        }
    }
}

pub(crate) fn display_option(id: Option<NodeId>) -> String {
    id.map_or_else(|| "nobody".to_owned(), |id| id.to_string())
}

/// A bounded log of events, oldest first.
#[derive(Debug)]
pub(crate) struct EventLog {
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
    pub(crate) fn push(&self, event: Event) {
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
    pub(crate) fn snapshot(&self) -> Vec<Event> {
        lock(&self.events).iter().copied().collect()
    }

    /// How many old events were evicted to respect [`MAX_EVENTS`].
    #[must_use]
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }
}
