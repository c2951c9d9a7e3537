//! The RPC messages of Raft Figure 2, reduced to what election needs, and
//! those of the thesis' election features: PreVote (§9.6) and TimeoutNow
//! (§3.10).
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
        /// Set by a candidate campaigning on its leader's TimeoutNow: voters
        /// grant it even within the lease of the leader they hear (§4.2.3,
        /// §3.10), since that leader asked for it.
        leadership_transfer: bool,
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
        /// Not in Figure 2: the leader's heartbeat round in `term`, counted
        /// from 1 with the leader lease on (0 otherwise), echoed by the
        /// response so the leader knows which round an acknowledgement
        /// answers. The lease is measured from the start of the round a
        /// majority acknowledged (thesis §6.4.1), never from when the
        /// acknowledgements arrive.
        round: u64,
    },
    /// The answer to [`Message::AppendEntries`].
    AppendEntriesResponse {
        /// The follower's current term, for the leader to update itself.
        term: Term,
        /// True if the follower accepted the sender as leader of `term`.
        success: bool,
        /// Index of the follower's last log entry. Not in Figure 2: a
        /// replicating leader knows how far each log goes from its replies
        /// (`matchIndex`); with no log replicated, the reply says it, so a
        /// leader transfers leadership only to an up-to-date node (§3.10).
        last_log_index: u64,
        /// Term of the follower's last log entry (see `last_log_index`).
        last_log_term: Term,
        /// The `round` of the AppendEntries this answers.
        round: u64,
    },
    /// Pre-Vote (thesis §9.6): "would you vote for me in `term`?", sent
    /// before the sender raises its own term. Answering changes nothing.
    PreVote {
        /// The term the sender would campaign in: its current term plus one.
        term: Term,
        /// The would-be candidate.
        candidate_id: NodeId,
        /// Index of its last log entry (§5.4).
        last_log_index: u64,
        /// Term of its last log entry (§5.4).
        last_log_term: Term,
    },
    /// The answer to [`Message::PreVote`].
    PreVoteResponse {
        /// A grant carries the term it was asked about; a refusal, the
        /// voter's current term, so a would-be candidate behind in terms
        /// learns the cluster's.
        term: Term,
        /// True means the voter would grant its vote in `term`.
        vote_granted: bool,
    },
    /// Leadership transfer (thesis §3.10): the leader of `term` asks its
    /// receiver to start an election at once, as if its election timer had
    /// fired.
    TimeoutNow {
        /// The leader's term.
        term: Term,
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
    /// The RPC's name in the paper or the thesis: `"RequestVote"`,
    /// `"AppendEntries"`, `"PreVote"`, ...
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::RequestVote { .. } => "RequestVote",
            Self::RequestVoteResponse { .. } => "RequestVoteResponse",
            Self::AppendEntries { .. } => "AppendEntries",
            Self::AppendEntriesResponse { .. } => "AppendEntriesResponse",
            Self::PreVote { .. } => "PreVote",
            Self::PreVoteResponse { .. } => "PreVoteResponse",
            Self::TimeoutNow { .. } => "TimeoutNow",
        }
    }

    /// The term every Raft message carries; the first thing a receiver looks at.
    #[must_use]
    pub fn term(&self) -> Term {
        match *self {
            Self::RequestVote { term, .. }
            | Self::RequestVoteResponse { term, .. }
            | Self::AppendEntries { term, .. }
            | Self::AppendEntriesResponse { term, .. }
            | Self::PreVote { term, .. }
            | Self::PreVoteResponse { term, .. }
            | Self::TimeoutNow { term } => term,
        }
    }

    /// Whether this is a heartbeat (an AppendEntries, which carries no
    /// entries here) or its answer: the steady traffic of a healthy
    /// cluster, which logs and pictures keep apart from the election's.
    #[must_use]
    pub fn is_heartbeat(&self) -> bool {
        matches!(
            self,
            Self::AppendEntries { .. } | Self::AppendEntriesResponse { .. }
        )
    }

    /// Whether this is a request that names its sender (a RequestVote's or a
    /// PreVote's `candidateId`, an AppendEntries' `leaderId`) and the name is
    /// `from`, or a message that names no one. A message that names someone
    /// other than its sender comes from no server following the protocol.
    #[must_use]
    pub fn names_sender(&self, from: NodeId) -> bool {
        match *self {
            Self::RequestVote { candidate_id, .. } | Self::PreVote { candidate_id, .. } => {
                candidate_id == from
            }
            Self::AppendEntries { leader_id, .. } => leader_id == from,
            Self::RequestVoteResponse { .. }
            | Self::AppendEntriesResponse { .. }
            | Self::PreVoteResponse { .. }
            | Self::TimeoutNow { .. } => true,
        }
    }
}

impl Message {
    /// This message with every node id it names renamed by `rename` (for the
    /// model checker's symmetry reduction; see [`crate::Node::map_ids`]).
    #[must_use]
    pub fn map_ids(mut self, rename: impl Fn(NodeId) -> NodeId) -> Self {
        match &mut self {
            Self::RequestVote { candidate_id, .. } | Self::PreVote { candidate_id, .. } => {
                *candidate_id = rename(*candidate_id);
            }
            Self::AppendEntries { leader_id, .. } => *leader_id = rename(*leader_id),
            Self::RequestVoteResponse { .. }
            | Self::AppendEntriesResponse { .. }
            | Self::PreVoteResponse { .. }
            | Self::TimeoutNow { .. } => {}
        }
        self
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
                leadership_transfer,
            } => {
                let transfer = if leadership_transfer {
                    ", leadership transfer"
                } else {
                    ""
                };
                write!(
                    f,
                    "RequestVote({term}, candidate {candidate_id}, log {last_log_index}@{last_log_term}{transfer})"
                )
            }
            Self::RequestVoteResponse { term, vote_granted } => {
                write!(f, "RequestVoteResponse({term}, {})", verdict(vote_granted))
            }
            Self::AppendEntries {
                term,
                leader_id,
                round,
            } => {
                write!(f, "AppendEntries({term}, leader {leader_id}")?;
                close_with_round(f, round)
            }
            Self::AppendEntriesResponse {
                term,
                success,
                last_log_index,
                last_log_term,
                round,
            } => {
                write!(
                    f,
                    "AppendEntriesResponse({term}, success={success}, log {last_log_index}@{last_log_term}"
                )?;
                close_with_round(f, round)
            }
            Self::PreVote {
                term,
                candidate_id,
                last_log_index,
                last_log_term,
            } => write!(
                f,
                "PreVote({term}, candidate {candidate_id}, log {last_log_index}@{last_log_term})"
            ),
            Self::PreVoteResponse { term, vote_granted } => {
                write!(f, "PreVoteResponse({term}, {})", verdict(vote_granted))
            }
            Self::TimeoutNow { term } => write!(f, "TimeoutNow({term})"),
        }
    }
}

/// Closes a heartbeat or its answer. Rounds are counted only with the
/// leader lease, so a round is shown only then.
fn close_with_round(f: &mut fmt::Formatter<'_>, round: u64) -> fmt::Result {
    if round > 0 {
        write!(f, ", round {round}")?;
    }
    f.write_str(")")
}

/// A vote answer's outcome, in words.
fn verdict(vote_granted: bool) -> &'static str {
    if vote_granted { "granted" } else { "rejected" }
}
