//! The seam between a node's driver and the network: a [`Transport`] sends a
//! message to a peer id and receives `(from, Message)`.
//!
//! The driver asks its transport for one thing at a time, [`Transport::next_input`]:
//! the next message, or one of the node's own deadlines passing. The provided
//! version races the two ([`race_deadline`]); the in-process cluster's
//! channels override it to pace nodes that share one process as independent
//! machines would run (see `cluster::pacing`). Either way the driver never
//! sees another node's clock or deadlines.
//!
//! The driver lends the transport its alarm for each wait: one Tokio timer
//! entry for the node's whole life. Making a new one per wait would register
//! and remove a timer for every message received.

use crate::timers::Timers;
use raft_election::{Message, NodeId};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use tokio::time::{Instant, Sleep};

/// What became of one message handed to a transport.
///
/// A send never waits for the receiver: every fate but `Delivered` is a loss,
/// which Raft tolerates (§5.1: "servers retry RPCs if they do not receive a
/// response in a timely manner"; here the next timeout or heartbeat is the retry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Delivery {
    /// Handed on: in the receiver's inbox, or queued for its connection.
    Delivered,
    /// A cut link, a partition or a disconnected node lost it.
    Cut,
    /// The receiver (or the sender) is down.
    Down,
    /// A full inbox or queue lost it.
    QueueFull,
    /// A lossy link lost it.
    Dropped,
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Delivered => "delivered",
            Self::Cut => "lost: link cut",
            Self::Down => "lost: node down",
            Self::QueueFull => "lost: queue full",
            Self::Dropped => "lost: dropped by the link",
        })
    }
}

/// What a node's driver wakes up for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// A message from a peer.
    Message {
        /// The sender, as the transport knows it.
        from: NodeId,
        /// The message.
        message: Message,
    },
    /// A deadline of the node's timers has passed.
    Deadline,
    /// The transport is closed for good: the node is shut down or crashed.
    Closed,
}

/// How a node's driver talks to its peers.
///
/// `send` must never wait: a slow or dead peer may not delay the node's
/// timers or its other peers. `recv` waits for the next message and must be
/// cancel-safe (a message is never lost because the wait was abandoned),
/// since [`Self::next_input`] races it against the node's deadlines.
pub trait Transport: Send {
    /// Hands `message` for `to` to the network and reports what became of it.
    fn send(&mut self, to: NodeId, message: Message) -> Delivery;

    /// The next message from a peer, or `None` once the transport is closed.
    fn recv(&mut self) -> impl Future<Output = Option<(NodeId, Message)>> + Send;

    /// The driver is about to step an input of the node's own side (a local
    /// request), due now: a transport that stamps messages with when the
    /// step sending them was due starts from now. Nothing by default.
    fn stepping_local_input(&mut self) {}

    /// The driver's one wait: the next message, or the earliest deadline of
    /// `timers` passing, using the driver's `alarm` for the deadline. A
    /// deadline that has passed goes first.
    fn next_input(
        &mut self,
        timers: &Timers,
        alarm: Pin<&mut Sleep>,
    ) -> impl Future<Output = Wake> + Send {
        race_deadline(self, timers.next_deadline(), alarm)
    }
}

/// [`Transport::next_input`] as independent machines have it: whichever
/// comes first, the next message or `deadline` (none: wait for a message),
/// with `alarm` set to the deadline.
pub async fn race_deadline<T: Transport + ?Sized>(
    transport: &mut T,
    deadline: Option<Instant>,
    mut alarm: Pin<&mut Sleep>,
) -> Wake {
    if let Some(at) = deadline {
        // Tokio moves an entry to a later deadline without touching its
        // timer wheel, so a heartbeat pushing the election back is cheap.
        if alarm.deadline() != at {
            alarm.as_mut().reset(at);
        }
    }
    // `biased`: a deadline already passed fires before a queued message, and
    // a fixed order keeps paused-clock runs reproducible.
    tokio::select! {
        biased;
        () = alarm, if deadline.is_some() => Wake::Deadline,
        received = transport.recv() => match received {
            Some((from, message)) => Wake::Message { from, message },
            None => Wake::Closed,
        },
    }
}
