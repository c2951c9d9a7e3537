//! Per-node configuration: who the voters are and how long timers run.
//!
//! Kept apart from [`crate::node::Node`] on purpose: configuration is constant
//! for a node's life, so the model checker keeps it out of the hashed state,
//! and no field of the state stores the node's own identity (its id may still
//! appear as a value: its own vote, itself as leader, its own granted vote),
//! which lets symmetry reduction treat nodes as interchangeable.

use crate::types::{HardState, NodeId, Term};
use std::collections::BTreeSet;
use std::time::Duration;

/// The largest cluster this crate accepts. Raft clusters have 3, 5 or 7 voters;
/// the bound keeps quorum arithmetic, fuzz inputs and model states small.
pub const MAX_VOTERS: usize = 15;

/// The longest timer duration this crate accepts: far beyond any election
/// timeout in use, and a limit, so that every deadline a driver computes
/// (`now + duration`) is one its clock can represent.
pub const MAX_TIMER_DURATION: Duration = Duration::from_secs(3_600);

/// Election and heartbeat timing (Raft §5.2, §9.3 of the paper).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timing {
    /// Shortest election timeout a driver may pick.
    pub election_timeout_min: Duration,
    /// Longest election timeout a driver may pick.
    pub election_timeout_max: Duration,
    /// How often a leader sends heartbeats.
    pub heartbeat_interval: Duration,
}

impl Default for Timing {
    /// The paper's suggestion: timeouts drawn from 150–300 ms (§9.3), with a
    /// heartbeat well inside the minimum so a live leader is never suspected.
    fn default() -> Self {
        Self {
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(50),
        }
    }
}

impl Timing {
    /// Checks the relations Raft's timing requirement depends on (§5.6:
    /// broadcastTime ≪ electionTimeout ≪ MTBF).
    ///
    /// The election timeout range must be wide enough to randomize (§5.2),
    /// and the heartbeat must fit at least twice into the minimum election
    /// timeout, so one lost heartbeat does not start an election.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (what, duration) in [
            ("election timeout max", self.election_timeout_max),
            ("election timeout min", self.election_timeout_min),
            ("heartbeat interval", self.heartbeat_interval),
        ] {
            if duration > MAX_TIMER_DURATION {
                return Err(ConfigError::TooLong { what, duration });
            }
        }
        if self.election_timeout_min.is_zero() {
            return Err(ConfigError::ZeroElectionTimeout);
        }
        if self.election_timeout_min > self.election_timeout_max {
            return Err(ConfigError::EmptyElectionTimeoutRange {
                min: self.election_timeout_min,
                max: self.election_timeout_max,
            });
        }
        // §5.2: "Raft uses randomized election timeouts to ensure that split
        // votes are rare". A single value lets every follower of a dead leader
        // time out together, campaign together and split the vote, every term.
        if self.election_timeout_min == self.election_timeout_max {
            return Err(ConfigError::UnrandomizedElectionTimeout {
                timeout: self.election_timeout_min,
            });
        }
        // Checked: a huge interval must be refused, not overflow.
        let twice = self.heartbeat_interval.checked_mul(2);
        if self.heartbeat_interval.is_zero()
            || twice.is_none_or(|twice| twice > self.election_timeout_min)
        {
            return Err(ConfigError::HeartbeatTooSlow {
                heartbeat: self.heartbeat_interval,
                election_timeout_min: self.election_timeout_min,
            });
        }
        Ok(())
    }
}

/// A configuration that cannot run a correct election.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No voters at all.
    #[error("a cluster needs at least one voter")]
    NoVoters,
    /// More voters than [`MAX_VOTERS`].
    #[error("{count} voters is more than the supported maximum of {MAX_VOTERS}")]
    TooManyVoters {
        /// How many were asked for.
        count: usize,
    },
    /// The node's own id is not among the voters.
    #[error("node {id} is not one of the voters")]
    NotAVoter {
        /// The node's id.
        id: NodeId,
    },
    /// A duration beyond [`MAX_TIMER_DURATION`].
    #[error(
        "the {what} of {duration:?} is longer than the supported maximum of {MAX_TIMER_DURATION:?}"
    )]
    TooLong {
        /// Which duration.
        what: &'static str,
        /// The value given.
        duration: Duration,
    },
    /// The minimum election timeout is zero.
    #[error("the minimum election timeout must be positive")]
    ZeroElectionTimeout,
    /// min > max.
    #[error("election timeout range is empty: min {min:?} > max {max:?}")]
    EmptyElectionTimeoutRange {
        /// Requested minimum.
        min: Duration,
        /// Requested maximum.
        max: Duration,
    },
    /// min == max: no room to randomize the election timeout (§5.2).
    #[error(
        "election timeout min and max are both {timeout:?}: the range must be wider than one \
         value, or followers time out together and split the vote (§5.2)"
    )]
    UnrandomizedElectionTimeout {
        /// The single timeout requested.
        timeout: Duration,
    },
    /// The heartbeat does not fit twice into the minimum election timeout.
    #[error(
        "heartbeat interval {heartbeat:?} must be positive and at most half the minimum \
         election timeout ({election_timeout_min:?}), or followers time out under a live leader"
    )]
    HeartbeatTooSlow {
        /// Requested heartbeat interval.
        heartbeat: Duration,
        /// Requested minimum election timeout.
        election_timeout_min: Duration,
    },
}

/// A stored hard state that this configuration's node cannot start from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoredStateError {
    /// The vote went to a node that is not a voter of this cluster: the file
    /// belongs to another membership, or was edited.
    #[error("it records a vote for {voted_for} in {term}, which is not a voter of this cluster")]
    VoteForNonMember {
        /// The recorded vote.
        voted_for: NodeId,
        /// The recorded term.
        term: Term,
    },
    /// The term is the last one: this node could never start an election
    /// (`Term::next` has nothing left), and its messages would drag every
    /// peer there too. Only a forged message or an edited file gets here.
    #[error("its term is {term}, the last one: this node could never campaign again")]
    TermExhausted {
        /// The recorded term.
        term: Term,
    },
}

/// Everything constant about one node: its id, the voters, its timing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    id: NodeId,
    voters: BTreeSet<NodeId>,
    timing: Timing,
}

impl Config {
    /// Builds and validates the configuration of node `id` in a cluster of `voters`.
    pub fn new(
        id: NodeId,
        voters: impl IntoIterator<Item = NodeId>,
        timing: Timing,
    ) -> Result<Self, ConfigError> {
        let voters: BTreeSet<NodeId> = voters.into_iter().collect();
        if voters.is_empty() {
            return Err(ConfigError::NoVoters);
        }
        if voters.len() > MAX_VOTERS {
            return Err(ConfigError::TooManyVoters {
                count: voters.len(),
            });
        }
        if !voters.contains(&id) {
            return Err(ConfigError::NotAVoter { id });
        }
        timing.validate()?;
        Ok(Self { id, voters, timing })
    }

    /// The configurations of every node of a cluster with ids `0..count`.
    pub fn cluster(count: u8, timing: Timing) -> Result<Vec<Self>, ConfigError> {
        // No node would call `new`, so its check would never run.
        if count == 0 {
            return Err(ConfigError::NoVoters);
        }
        let ids = || (0..count).map(NodeId);
        ids().map(|id| Self::new(id, ids(), timing)).collect()
    }

    /// This node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// All voters, this node included.
    #[must_use]
    pub fn voters(&self) -> &BTreeSet<NodeId> {
        &self.voters
    }

    /// The other voters: whom this node sends RequestVote and heartbeats to.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.iter().copied().filter(move |&v| v != self.id)
    }

    /// Whether `id` is a voter of this cluster.
    #[must_use]
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    /// Votes needed to win: a strict majority of the voters (Raft §5.2).
    #[must_use]
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// Election and heartbeat timing.
    #[must_use]
    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// Checks that this node can start from `hard_state`, read back from
    /// storage: a vote for a voter, a term with a successor. A driver calls
    /// it before [`crate::Node::restore`], so a file from another membership
    /// is refused with its reason instead of running.
    pub fn check_restored(&self, hard_state: &HardState) -> Result<(), RestoredStateError> {
        let term = hard_state.current_term;
        if let Some(voted_for) = hard_state.voted_for.filter(|&v| !self.is_voter(v)) {
            return Err(RestoredStateError::VoteForNonMember { voted_for, term });
        }
        if term.next().is_none() {
            return Err(RestoredStateError::TermExhausted { term });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_is_a_strict_majority() {
        for (count, quorum) in [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (7, 4)] {
            let configs = Config::cluster(count, Timing::default()).unwrap();
            assert_eq!(configs[0].quorum(), quorum, "{count} voters");
        }
    }

    #[test]
    fn a_heartbeat_slower_than_half_the_election_timeout_is_refused() {
        let timing = Timing {
            heartbeat_interval: Duration::from_millis(100),
            ..Timing::default()
        };
        let err = Config::new(NodeId(0), [NodeId(0)], timing).unwrap_err();
        assert!(matches!(err, ConfigError::HeartbeatTooSlow { .. }), "{err}");
    }

    #[test]
    fn an_inverted_election_timeout_range_is_refused() {
        let timing = Timing {
            election_timeout_min: Duration::from_millis(300),
            election_timeout_max: Duration::from_millis(150),
            ..Timing::default()
        };
        assert!(matches!(
            timing.validate(),
            Err(ConfigError::EmptyElectionTimeoutRange { .. })
        ));
    }

    #[test]
    fn a_duration_no_clock_could_add_is_refused_with_its_name() {
        let timing = Timing {
            heartbeat_interval: Duration::MAX,
            ..Timing::default()
        };
        let err = timing.validate().unwrap_err();
        assert!(matches!(
            err,
            ConfigError::TooLong {
                what: "heartbeat interval",
                ..
            }
        ));
        let timing = Timing {
            election_timeout_max: Duration::MAX,
            ..Timing::default()
        };
        let err = timing.validate().unwrap_err().to_string();
        assert!(err.starts_with("the election timeout max of"), "{err}");
        let longest = Timing {
            election_timeout_max: MAX_TIMER_DURATION,
            ..Timing::default()
        };
        assert_eq!(longest.validate(), Ok(()));
    }

    #[test]
    fn a_single_election_timeout_value_is_refused_because_it_cannot_randomize() {
        let timing = Timing {
            election_timeout_min: Duration::from_millis(200),
            election_timeout_max: Duration::from_millis(200),
            ..Timing::default()
        };
        assert_eq!(
            timing.validate(),
            Err(ConfigError::UnrandomizedElectionTimeout {
                timeout: Duration::from_millis(200)
            })
        );
    }

    #[test]
    fn a_cluster_of_no_nodes_is_refused() {
        assert_eq!(
            Config::cluster(0, Timing::default()),
            Err(ConfigError::NoVoters)
        );
    }

    #[test]
    fn a_node_outside_the_voters_is_refused() {
        let err = Config::new(NodeId(9), [NodeId(0), NodeId(1)], Timing::default()).unwrap_err();
        assert_eq!(err, ConfigError::NotAVoter { id: NodeId(9) });
    }

    #[test]
    fn a_restored_vote_for_a_non_member_or_the_last_term_is_refused() {
        let config = Config::new(NodeId(1), [NodeId(1), NodeId(2)], Timing::default()).unwrap();
        let state = |term, voted_for: Option<u8>| HardState {
            current_term: Term(term),
            voted_for: voted_for.map(NodeId),
        };
        assert_eq!(config.check_restored(&state(4, Some(2))), Ok(()));
        assert_eq!(config.check_restored(&state(0, None)), Ok(()));
        assert_eq!(
            config.check_restored(&state(4, Some(7))),
            Err(RestoredStateError::VoteForNonMember {
                voted_for: NodeId(7),
                term: Term(4)
            })
        );
        let err = config.check_restored(&state(u64::MAX, None)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "its term is t{}, the last one: this node could never campaign again",
                u64::MAX
            )
        );
        assert_eq!(config.check_restored(&state(u64::MAX - 1, Some(1))), Ok(()));
    }

    #[test]
    fn too_many_voters_are_refused() {
        let ids = (0..16).map(NodeId);
        let err = Config::new(NodeId(0), ids, Timing::default()).unwrap_err();
        assert_eq!(err, ConfigError::TooManyVoters { count: 16 });
    }
}
