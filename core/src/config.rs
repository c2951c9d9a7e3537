//! Per-node configuration: who the voters are, how long timers run, and
//! which of the Raft thesis' election features are on ([`Features`]).
//!
//! Kept apart from [`crate::node::Node`] on purpose: configuration is constant
//! for a node's life, so the model checker keeps it out of the hashed state,
//! and no field of the state stores the node's own identity (its id may still
//! appear as a value: its own vote, itself as leader, its own granted vote),
//! which lets symmetry reduction treat nodes as interchangeable.

use crate::types::{HardState, NodeId, Term, Ticks};
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

/// The bound on how fast one node's clock may run relative to another's, in
/// parts per million: over any interval, no node's clock advances more than
/// `1 + ppm / 1_000_000` times as much as any other node's. The leader lease
/// is shortened by this factor (thesis §6.4.1; `proofs.md`, "Leader lease").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockDrift(pub u32);

impl ClockDrift {
    /// 10%: quartz drifts about 0.01% and NTP slews at most 0.05%, so this
    /// covers a clock a thousand times worse than a healthy one, and costs
    /// the lease only a tenth of its length (136 ms of 150 by default).
    pub const DEFAULT: Self = Self(100_000);

    /// The largest bound accepted: one clock running twice as fast as another.
    pub const MAX: Self = Self(1_000_000);

    /// `duration` divided by `1 + drift`, rounded down: what a leader may count
    /// on its own clock while every other clock has counted at least `duration`.
    #[must_use]
    pub fn shorten(self, duration: Duration) -> Duration {
        let nanos = duration.as_nanos() * 1_000_000 / (1_000_000 + u128::from(self.0));
        // At most `duration`, which is a Duration already: the conversion holds.
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

impl Default for ClockDrift {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl std::fmt::Display for ClockDrift {
    /// As a percentage: `10%`, `0.5%`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let whole = self.0 / 10_000;
        let fraction = self.0 % 10_000;
        if fraction == 0 {
            write!(f, "{whole}%")
        } else {
            let digits = format!("{fraction:04}");
            write!(f, "{whole}.{}%", digits.trim_end_matches('0'))
        }
    }
}

/// A drift bound that is not a percentage between 0 and 100.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "clock drift '{0}': expected a percentage from 0% to 100% with at most four decimals, such as 10% or 0.5%"
)]
pub struct BadClockDrift(pub String);

impl std::str::FromStr for ClockDrift {
    type Err = BadClockDrift;

    /// Parses what [`Display`](std::fmt::Display) prints, the `%` optional.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadClockDrift(text.to_owned());
        let number = text.trim().trim_end_matches('%');
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() || fraction.len() > 4 || !fraction.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let whole: u32 = whole.parse().map_err(|_| bad())?;
        let fraction: u32 = format!("{fraction:0<4}").parse().map_err(|_| bad())?;
        let ppm = whole
            .checked_mul(10_000)
            .and_then(|w| w.checked_add(fraction))
            .filter(|&ppm| ppm <= Self::MAX.0)
            .ok_or_else(bad)?;
        Ok(Self(ppm))
    }
}

/// The election features of the Raft thesis (Ongaro, 2014) beyond Figure 2,
/// each a switch of the core. Every combination is safe (the model checker
/// explores all sixteen); they differ in what they protect against.
///
/// `Features::default()` turns on CheckQuorum, lease-guarded votes and
/// leadership transfer, and leaves Pre-Vote off (docs/features.md has the
/// reasons, docs/benchmarks.md the measurements); [`Features::NONE`] is
/// the paper's Figure 2 alone and [`Features::ALL`] turns Pre-Vote on too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Features {
    /// Pre-Vote (§9.6): a node that times out first asks whether a majority
    /// would vote for it in the next term, and raises its term only if so. A
    /// voter says yes only if the candidate's log is at least as up to date
    /// and it has not heard from a leader within the minimum election
    /// timeout. A node cut off from the cluster therefore never raises its
    /// term, and cannot depose a healthy leader when it returns.
    pub pre_vote: bool,
    /// CheckQuorum (§6.2): a leader that has not heard from a majority
    /// (itself included) within the minimum election timeout, counted in
    /// whole heartbeat intervals, steps down, so a leader cut off in a
    /// minority stops believing it leads, about one election timeout after
    /// it last heard a majority.
    pub check_quorum: bool,
    /// Lease-guarded votes (§4.2.3): a node that heard from a current leader
    /// within the minimum election timeout (or is the leader) ignores a
    /// RequestVote of a higher term (no term change, no vote) unless it
    /// carries the leadership-transfer flag.
    pub lease_guarded_votes: bool,
    /// Leadership transfer (§3.10): a leader asked to hand over
    /// ([`crate::Input::TransferLeadership`]) sends TimeoutNow to an
    /// up-to-date target, which campaigns at once, bypassing Pre-Vote and
    /// the lease; the transfer is abandoned after an election timeout.
    pub leadership_transfer: bool,
}

impl Default for Features {
    /// CheckQuorum, lease-guarded votes and leadership transfer; no Pre-Vote.
    ///
    /// The three that are on change nothing of an election among nodes that
    /// hear each other: a leader is still elected when the first follower
    /// times out, with the same votes, and the measured failover time is the
    /// same. What they add only shows under faults: a leader cut off in a
    /// minority steps down, a node that cannot hear the leader cannot bump
    /// the others' term with its votes, and an operator can hand leadership
    /// over. Pre-Vote changes what simultaneous timeouts do (three nodes that
    /// time out at once no longer split the vote of the next term the way
    /// Figure 2 makes them), so it is asked for by name.
    fn default() -> Self {
        Self {
            pre_vote: false,
            check_quorum: true,
            lease_guarded_votes: true,
            leadership_transfer: true,
        }
    }
}

impl Features {
    /// Figure 2 only: every switch off.
    pub const NONE: Self = Self {
        pre_vote: false,
        check_quorum: false,
        lease_guarded_votes: false,
        leadership_transfer: false,
    };

    /// Every switch on.
    pub const ALL: Self = Self {
        pre_vote: true,
        check_quorum: true,
        lease_guarded_votes: true,
        leadership_transfer: true,
    };

    /// The switches' names, in the order of [`Self::switches`].
    pub const NAMES: [&'static str; 4] = [
        "pre-vote",
        "check-quorum",
        "lease-guarded-votes",
        "leadership-transfer",
    ];

    /// The four switches, in the order of [`Self::NAMES`].
    #[must_use]
    pub fn switches(self) -> [bool; 4] {
        [
            self.pre_vote,
            self.check_quorum,
            self.lease_guarded_votes,
            self.leadership_transfer,
        ]
    }

    /// The features whose [`Self::switches`] are `switches`.
    #[must_use]
    pub fn from_switches(switches: [bool; 4]) -> Self {
        let [
            pre_vote,
            check_quorum,
            lease_guarded_votes,
            leadership_transfer,
        ] = switches;
        Self {
            pre_vote,
            check_quorum,
            lease_guarded_votes,
            leadership_transfer,
        }
    }

    /// Every combination of the switches, [`Self::NONE`] first and
    /// [`Self::ALL`] last.
    pub fn combinations() -> impl Iterator<Item = Self> {
        (0..16_u8).map(|bits| Self::from_switches([0, 1, 2, 3].map(|bit| bits & (1 << bit) != 0)))
    }

    /// Whether a follower keeps a lease on the leader it hears (the
    /// [`crate::Timer::Lease`] timer): Pre-Vote and lease-guarded votes both
    /// ask whether a leader was heard within the minimum election timeout.
    #[must_use]
    pub fn keeps_lease(self) -> bool {
        self.pre_vote || self.lease_guarded_votes
    }
}

impl std::fmt::Display for Features {
    /// The names of the switches that are on, comma-separated, or `none`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on: Vec<&str> = Self::NAMES
            .iter()
            .zip(self.switches())
            .filter_map(|(name, on)| on.then_some(*name))
            .collect();
        if on.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&on.join(","))
        }
    }
}

/// A feature list that names no feature.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown election feature '{0}': expected a comma-separated list of pre-vote, \
     check-quorum, lease-guarded-votes and leadership-transfer, or all, or none"
)]
pub struct UnknownFeature(pub String);

impl std::str::FromStr for Features {
    type Err = UnknownFeature;

    /// Parses what [`Display`](std::fmt::Display) prints: `none`, `all`, or a
    /// comma-separated list of switch names (order and repeats do not matter).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "none" | "" => return Ok(Self::NONE),
            "all" => return Ok(Self::ALL),
            _ => {}
        }
        let mut switches = [false; 4];
        for name in text.split(',').map(str::trim) {
            let index = Self::NAMES
                .iter()
                .position(|known| *known == name)
                .ok_or_else(|| UnknownFeature(name.to_owned()))?;
            switches[index] = true;
        }
        Ok(Self::from_switches(switches))
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
    /// A leader lease without lease-guarded votes: followers would vote for
    /// another candidate while the leader counts on them not to.
    #[error(
        "the leader lease needs lease-guarded votes: without them a follower votes for a new \
         leader at once, while the old one still holds its lease"
    )]
    LeaseWithoutGuardedVotes,
    /// A drift bound beyond [`ClockDrift::MAX`].
    #[error("a clock drift bound of {0} is more than the supported maximum of 100%")]
    DriftTooLarge(ClockDrift),
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
    /// The term is above the [`Term::CEILING`], which no node ever passes:
    /// its messages would be refused by every peer. Only an edited file (or
    /// a build without the ceiling) gets here.
    #[error(
        "its term is {term}, above the term ceiling {ceiling}: no node ever holds such a term",
        ceiling = Term::CEILING
    )]
    AboveCeiling {
        /// The recorded term.
        term: Term,
    },
}

/// Everything constant about one node: its id, the voters, its timing and
/// its election features.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    id: NodeId,
    voters: BTreeSet<NodeId>,
    /// `voters` as one bit per possible id: [`Self::is_voter`] runs on
    /// every message and every check of one, and a bit test is the cheapest
    /// answer. Derived from `voters` in [`Self::new`], never changed after.
    voter_bits: [u64; 4],
    timing: Timing,
    features: Features,
    leader_lease: Option<ClockDrift>,
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
        let mut voter_bits = [0; 4];
        for voter in &voters {
            let bit = usize::from(voter.0);
            voter_bits[bit / 64] |= 1 << (bit % 64);
        }
        Ok(Self {
            id,
            voters,
            voter_bits,
            timing,
            features: Features::default(),
            leader_lease: None,
        })
    }

    /// This configuration with `features` instead of the default ones. Every
    /// node of a cluster should run the same features; a mixed cluster (a
    /// rolling upgrade) is still safe, since no feature changes a rule that
    /// safety rests on.
    ///
    /// A leader lease set before ([`Self::with_leader_lease`]) stays on: the
    /// features and the lease give the same configuration in either order.
    ///
    /// # Panics
    ///
    /// If a leader lease is set and `features` turn lease-guarded votes off:
    /// the lease needs them, and dropping it here would go unnoticed. It is
    /// the combination [`Self::with_leader_lease`] refuses with
    /// [`ConfigError::LeaseWithoutGuardedVotes`] when the features come
    /// first, so set features that come from input before the lease and
    /// that error reports it.
    #[must_use]
    pub fn with_features(mut self, features: Features) -> Self {
        assert!(
            self.leader_lease.is_none() || features.lease_guarded_votes,
            "{}",
            ConfigError::LeaseWithoutGuardedVotes
        );
        self.features = features;
        self
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
        let bit = usize::from(id.0);
        self.voter_bits[bit / 64] & (1 << (bit % 64)) != 0
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
    /// storage: a vote for a voter, a term at most the [`Term::CEILING`],
    /// the last one a node ever holds (and so persists). A driver calls
    /// it before [`crate::Node::restore`], so a file from another membership
    /// is refused with its reason instead of running.
    pub fn check_restored(&self, hard_state: &HardState) -> Result<(), RestoredStateError> {
        let term = hard_state.current_term;
        if let Some(voted_for) = hard_state.voted_for.filter(|&v| !self.is_voter(v)) {
            return Err(RestoredStateError::VoteForNonMember { voted_for, term });
        }
        if term > Term::CEILING {
            return Err(RestoredStateError::AboveCeiling { term });
        }
        Ok(())
    }

    /// How many CheckQuorum ticks (one per heartbeat interval) a leader
    /// looks back over: the fewest that cover the minimum election timeout,
    /// ceil(min / heartbeat). At a tick, a peer counts as heard while at
    /// most this many ticks have passed since it was last heard: heard
    /// within the last window × heartbeat, at least the minimum election
    /// timeout. A leader that heard a majority within it never steps down
    /// (thesis §6.2; `proofs.md`, "CheckQuorum").
    pub(crate) fn check_quorum_window(&self) -> Ticks {
        let min = self.timing.election_timeout_min.as_nanos();
        // Never zero in a validated timing; `max` keeps the division total.
        let heartbeat = self.timing.heartbeat_interval.as_nanos().max(1);
        // At most MAX_TIMER_DURATION in nanoseconds, far below u64::MAX.
        Ticks(u64::try_from(min.div_ceil(heartbeat)).unwrap_or(u64::MAX))
    }

    /// How far back a leader with CheckQuorum looks for a majority: its
    /// window of ticks times the heartbeat interval, at least the minimum
    /// election timeout and less than that plus one heartbeat. `None`
    /// without CheckQuorum.
    #[must_use]
    pub fn check_quorum_span(&self) -> Option<Duration> {
        self.features.check_quorum.then(|| {
            let ticks = u32::try_from(self.check_quorum_window().0).unwrap_or(u32::MAX);
            self.timing.heartbeat_interval.saturating_mul(ticks)
        })
    }

    /// Which election features are on.
    #[must_use]
    pub fn features(&self) -> Features {
        self.features
    }

    /// This configuration with the leader lease on (thesis §6.4.1), safe
    /// while no clock runs more than `max_clock_drift` faster than another.
    /// It needs lease-guarded votes, which the lease relies on: refused with
    /// [`ConfigError::LeaseWithoutGuardedVotes`] if the features have them
    /// off. [`Self::with_features`] keeps the lease, and refuses to turn
    /// them off under it, so the two give the same configuration in either
    /// order.
    pub fn with_leader_lease(mut self, max_clock_drift: ClockDrift) -> Result<Self, ConfigError> {
        if max_clock_drift > ClockDrift::MAX {
            return Err(ConfigError::DriftTooLarge(max_clock_drift));
        }
        if !self.features.lease_guarded_votes {
            return Err(ConfigError::LeaseWithoutGuardedVotes);
        }
        self.leader_lease = Some(max_clock_drift);
        Ok(self)
    }

    /// The drift bound of the leader lease, if it is on.
    #[must_use]
    pub fn leader_lease(&self) -> Option<ClockDrift> {
        self.leader_lease
    }

    /// How long, by the leader's clock, a lease lasts from the start of the
    /// heartbeat round a majority acknowledged: the minimum election timeout
    /// shortened by the drift bound. `None` without the lease.
    #[must_use]
    pub fn lease_duration(&self) -> Option<Duration> {
        self.leader_lease
            .map(|drift| drift.shorten(self.timing.election_timeout_min))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default timing with election timeouts from `min` to `max` ms.
    fn election_timeouts(min: u64, max: u64) -> Timing {
        Timing {
            election_timeout_min: Duration::from_millis(min),
            election_timeout_max: Duration::from_millis(max),
            ..Timing::default()
        }
    }

    #[test]
    fn a_heartbeat_of_exactly_half_the_minimum_election_timeout_is_accepted() {
        let timing = Timing {
            election_timeout_min: Duration::from_millis(150),
            election_timeout_max: Duration::from_millis(300),
            heartbeat_interval: Duration::from_millis(75),
        };
        assert_eq!(timing.validate(), Ok(()));
        let config = Config::new(NodeId(0), [NodeId(0), NodeId(1)], timing).unwrap();
        assert_eq!(config.timing(), &timing);
    }

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
        assert!(matches!(
            election_timeouts(300, 150).validate(),
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
        assert_eq!(
            election_timeouts(200, 200).validate(),
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
    fn is_voter_answers_for_every_id_exactly_as_the_voter_set() {
        let voters = [0, 1, 63, 64, 127, 128, 200, 255].map(NodeId);
        let config = Config::new(NodeId(255), voters, Timing::default()).unwrap();
        for id in (0..=u8::MAX).map(NodeId) {
            assert_eq!(config.is_voter(id), config.voters().contains(&id), "{id}");
        }
        assert_eq!(
            (0..=u8::MAX)
                .filter(|&i| config.is_voter(NodeId(i)))
                .count(),
            8
        );
    }

    #[test]
    fn a_node_outside_the_voters_is_refused() {
        let err = Config::new(NodeId(9), [NodeId(0), NodeId(1)], Timing::default()).unwrap_err();
        assert_eq!(err, ConfigError::NotAVoter { id: NodeId(9) });
    }

    #[test]
    fn a_restored_vote_for_a_non_member_or_a_term_above_the_ceiling_is_refused() {
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
        let ceiling = Term::CEILING.0;
        let err = config
            .check_restored(&state(ceiling + 1, None))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "its term is t{}, above the term ceiling t{ceiling}: no node ever holds such a term",
                ceiling + 1
            )
        );
        assert!(config.check_restored(&state(u64::MAX, None)).is_err());
        // A node persists terms up to the ceiling: its restart takes them.
        assert_eq!(config.check_restored(&state(ceiling, Some(1))), Ok(()));
        assert_eq!(config.check_restored(&state(ceiling - 1, Some(1))), Ok(()));
    }

    #[test]
    fn features_print_and_parse_back_for_every_combination() {
        let all: Vec<Features> = Features::combinations().collect();
        assert_eq!(all.len(), 16);
        assert_eq!(all.first(), Some(&Features::NONE));
        assert_eq!(all.last(), Some(&Features::ALL));
        for features in all {
            let text = features.to_string();
            assert_eq!(text.parse::<Features>(), Ok(features), "{text}");
        }
        assert_eq!("all".parse::<Features>(), Ok(Features::ALL));
        assert_eq!(
            "check-quorum, pre-vote"
                .parse::<Features>()
                .map(|f| f.switches()),
            Ok([true, true, false, false])
        );
        let err = "pre-vote,prevote".parse::<Features>().unwrap_err();
        assert_eq!(err, UnknownFeature("prevote".to_owned()));
        assert!(err.to_string().contains("pre-vote, check-quorum"), "{err}");
    }

    #[test]
    fn the_default_features_are_all_but_pre_vote() {
        let config = Config::new(NodeId(0), [NodeId(0)], Timing::default()).unwrap();
        assert_eq!(
            config.features().to_string(),
            "check-quorum,lease-guarded-votes,leadership-transfer"
        );
        let config = config.with_features(Features::ALL);
        assert_eq!(config.features(), Features::ALL);
    }

    #[test]
    fn too_many_voters_are_refused() {
        let ids = (0..16).map(NodeId);
        let err = Config::new(NodeId(0), ids, Timing::default()).unwrap_err();
        assert_eq!(err, ConfigError::TooManyVoters { count: 16 });
    }
}
