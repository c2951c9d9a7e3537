//! The small vocabulary every other module speaks: node ids, terms, roles,
//! the persisted hard state and the log summary used by the vote restriction.

use std::fmt;

/// Identifies one voting member of the cluster.
///
/// A `u8` because a Raft cluster has a handful of voters (3 or 5 in practice);
/// the width is a limit, not an accident (TigerBeetle: "put a limit on everything").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NodeId(pub u8);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// Names one cluster. Every node of a cluster is configured with the same id;
/// a state file records it and a peer's handshake carries it, so a node or a
/// file of another cluster is refused rather than mixed in (two clusters'
/// votes in one count could elect two leaders of a term).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ClusterId(pub u64);

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cluster {}", self.0)
    }
}

/// A Raft term: a logical clock that only moves forward (Raft §5.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Term(pub u64);

impl Term {
    /// The term ceiling: the last term a node ever holds, 2^53 − 1.
    ///
    /// A message of a term above it is dropped unread, a node at it starts
    /// no election ([`Self::next`]), and a state file above it is refused
    /// ([`crate::Config::check_restored`]). So no node adopts, reaches or
    /// persists a term its own restart would refuse, and the ceiling itself
    /// is a state like any other: the leader of the ceiling's term goes on
    /// leading, and only after it no election can follow (`proofs.md`,
    /// "The term ceiling"). At one election every 150 ms, the shortest
    /// default election timeout, a cluster reaches it in 42 million years;
    /// only a forged message can bring it there. 2^53 − 1 is also the
    /// largest integer every JSON reader (JavaScript, jq) holds exactly, so
    /// every term in a log line or a status reads back as written.
    pub const CEILING: Self = Self((1 << 53) - 1);

    /// The term a new election starts, or `None` at (or above) the
    /// [`Self::CEILING`]: no election starts there.
    ///
    /// This is the only way a node grows its own term.
    #[must_use]
    pub fn next(self) -> Option<Self> {
        (self < Self::CEILING).then(|| Self(self.0 + 1))
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

/// A number of a leader's CheckQuorum ticks, one per heartbeat interval
/// ([`crate::Timer::CheckQuorum`]): how many have passed since it last heard
/// a peer, or how many the CheckQuorum window lasts (thesis §6.2). Counting
/// ticks, not reading a clock, keeps the core clock-free; a count is bounded
/// by the window, so a leader's state stays finite for the model checker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticks(pub u64);

impl fmt::Display for Ticks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ticks", self.0)
    }
}

/// The three roles of Raft §5.1 (Figure 4), and the pre-candidate of the
/// thesis' Pre-Vote phase (§9.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum Role {
    /// Passive: answers leaders and candidates, campaigns when its election timer fires.
    #[default]
    Follower,
    /// With [`crate::config::Features::pre_vote`]: asking whether it could win
    /// the next term, before raising its own. Its term and vote are those it
    /// had as a follower.
    PreCandidate,
    /// Campaigning for leadership of its current term.
    Candidate,
    /// Won a majority of votes in its current term; sends heartbeats.
    Leader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Follower => "follower",
            Self::PreCandidate => "pre-candidate",
            Self::Candidate => "candidate",
            Self::Leader => "leader",
        })
    }
}

/// The state Raft Figure 2 keeps "on stable storage before responding to RPCs".
///
/// Losing either field after a crash re-opens double voting: a restarted node
/// that forgot `voted_for` can vote twice in one term, and two leaders follow
/// (the model checker's `--volatile-restarts` shows the trace).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HardState {
    /// Latest term this node has seen.
    pub current_term: Term,
    /// Candidate that received this node's vote in `current_term`, if any.
    pub voted_for: Option<NodeId>,
}

/// The two numbers of a log that the election restriction compares (Raft §5.4.1).
///
/// This crate replicates no log; a node is built with a fixed summary so the
/// up-to-date check is real and the model checker can exercise it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct LogSummary {
    /// Index of the last entry (0 for an empty log).
    pub last_log_index: u64,
    /// Term of the last entry (0 for an empty log).
    pub last_log_term: Term,
}

impl LogSummary {
    /// Whether a log ending in `self` is at least as up-to-date as one ending in `other`.
    ///
    /// Raft §5.4.1: "If the logs have last entries with different terms, then the
    /// log with the later term is more up-to-date. If the logs end with the same
    /// term, then whichever log is longer is more up-to-date."
    #[must_use]
    pub fn is_at_least_as_up_to_date_as(self, other: Self) -> bool {
        (self.last_log_term, self.last_log_index) >= (other.last_log_term, other.last_log_index)
    }
}

impl fmt::Display for LogSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "log({}@{})", self.last_log_index, self.last_log_term)
    }
}
