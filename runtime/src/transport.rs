//! The seam between a node's driver and the network: a [`Transport`] sends a
//! message to a peer id and receives `(from, Message)`, and does nothing
//! else. When the driver takes its next input, a message or a deadline of
//! its own, is its [`crate::Pacer`]'s business.

use raft_election::{Message, NodeId};
use std::fmt;
use std::future::Future;

/// What became of one message handed to a transport.
///
/// A send never waits for the receiver: every fate but `Delivered` is a loss,
/// which Raft tolerates (§5.1: "servers retry RPCs if they do not receive a
/// response in a timely manner"; here the next timeout or heartbeat is the retry).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
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

/// How a node's driver talks to its peers.
///
/// `send` must never wait: a slow or dead peer may not delay the node's
/// timers or its other peers. `recv` waits for the next message and must be
/// cancel-safe (a message is never lost because the wait was abandoned),
/// since the driver's [`crate::Pacer`] races it against the node's deadlines.
pub trait Transport: Send {
    /// Hands `message` for `to` to the network and reports what became of it.
    fn send(&mut self, to: NodeId, message: Message) -> Delivery;

    /// The next message from a peer, or `None` once the transport is closed.
    fn recv(&mut self) -> impl Future<Output = Option<(NodeId, Message)>> + Send;
}
