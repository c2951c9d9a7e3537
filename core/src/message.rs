//! The four RPC messages of Raft Figure 2, reduced to what election needs.
//!
//! Field names follow the paper so `proofs.md` can quote it word for word.
//! AppendEntries carries no entries: here it is only the leader's heartbeat.

use crate::types::{NodeId, Term};
use std::fmt;

/// One message between two nodes. The sender is carried beside it (see
/// [`crate::node::Input::Receive`]), as a transport would report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Message {
    /// Invoked by candidates to gather votes (Raft §5.2).
    RequestVote {
        /// Candidate's term.
        term: Term,
        /// Candidate requesting the vote.
        candidate_id: NodeId,
        /// Index of the candidate's last log entry (§5.4).
        last_log_index: u64,
        /// Term of the candidate's last log entry (§5.4).
        last_log_term: Term,
    },
    /// The answer to [`Message::RequestVote`].
    RequestVoteResponse {
        /// The voter's current term, for the candidate to update itself.
        term: Term,
        /// True means the candidate received the vote.
        vote_granted: bool,
    },
    /// Invoked by the leader; with no entries it is a heartbeat (Raft §5.2).
    AppendEntries {
        /// Leader's term.
        term: Term,
        /// So followers know who leads.
        leader_id: NodeId,
    },
    /// The answer to [`Message::AppendEntries`].
    AppendEntriesResponse {
        /// The follower's current term, for the leader to update itself.
        term: Term,
        /// True if the follower accepted the sender as leader of `term`.
        success: bool,
    },
}

/// One message on the wire: who sent it, to whom, and what. What every
/// driver, simulator and the model hold in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Envelope {
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// The message.
    pub message: Message,
}

impl Message {
    /// The RPC's name in the paper: `"RequestVote"`, `"AppendEntries"`, ...
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::RequestVote { .. } => "RequestVote",
            Self::RequestVoteResponse { .. } => "RequestVoteResponse",
            Self::AppendEntries { .. } => "AppendEntries",
            Self::AppendEntriesResponse { .. } => "AppendEntriesResponse",
        }
    }

    /// The term every Raft message carries; the first thing a receiver looks at.
    #[must_use]
    pub fn term(&self) -> Term {
        match *self {
            Self::RequestVote { term, .. }
            | Self::RequestVoteResponse { term, .. }
            | Self::AppendEntries { term, .. }
            | Self::AppendEntriesResponse { term, .. } => term,
        }
    }
}

impl Message {
    /// This message with every node id it names renamed by `rename` (for the
    /// model checker's symmetry reduction; see [`crate::Node::map_ids`]).
    #[must_use]
    pub fn map_ids(self, rename: impl Fn(NodeId) -> NodeId) -> Self {
        match self {
            Self::RequestVote {
                term,
                candidate_id,
                last_log_index,
                last_log_term,
            } => Self::RequestVote {
                term,
                candidate_id: rename(candidate_id),
                last_log_index,
                last_log_term,
            },
            Self::AppendEntries { term, leader_id } => Self::AppendEntries {
                term,
                leader_id: rename(leader_id),
            },
            Self::RequestVoteResponse { .. } | Self::AppendEntriesResponse { .. } => self,
        }
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::RequestVote {
                term,
                candidate_id,
                last_log_index,
                last_log_term,
            } => write!(
                f,
                "RequestVote({term}, candidate {candidate_id}, log {last_log_index}@{last_log_term})"
            ),
            Self::RequestVoteResponse { term, vote_granted } => {
                let verdict = if vote_granted { "granted" } else { "rejected" };
                write!(f, "RequestVoteResponse({term}, {verdict})")
            }
            Self::AppendEntries { term, leader_id } => {
                write!(f, "AppendEntries({term}, leader {leader_id})")
            }
            Self::AppendEntriesResponse { term, success } => {
                write!(f, "AppendEntriesResponse({term}, success={success})")
            }
        }
    }
}
