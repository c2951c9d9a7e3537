//! What one run explores: its [`Bounds`] (cluster size, terms, crashes,
//! network, restarts, logs, features), and the model built from them.

use crate::{ElectionModel, Network, Reductions};
use raft_election::{Config, ConfigError, Features, LogSummary, Term, Timing};
use std::fmt;

/// How the network may misbehave. Either kind reorders freely.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum NetworkKind {
    /// Delivery leaves a message in flight: any message may be delivered any
    /// number of times (duplication) or never (loss). No drop action is needed:
    /// a state with a message lost behaves like the same state with it never
    /// delivered, so dropping would only add states that reveal nothing new.
    Duplicating,
    /// Delivery consumes a message and any in-flight message may be dropped.
    /// Identical messages in flight merge (a set), so nothing is duplicated.
    Lossy,
}

impl fmt::Display for NetworkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Duplicating => "duplicating (reorder, duplicate, lose)",
            Self::Lossy => "lossy (reorder, lose, no duplicates)",
        })
    }
}

/// What survives a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Restarts {
    /// The node restarts from the hard state it asked to persist (Figure 2).
    Durable,
    /// The node forgets its term and vote, as stateright's own Raft example
    /// does: the demonstration of why Raft persists them.
    Volatile,
}

/// The log summaries a run starts with (see [`Bounds::with_logs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum StartingLogs {
    /// `n0` holds one entry (of term 0) more than the others: candidates other
    /// than `n0` cannot win its vote. The default.
    Ahead,
    /// Every log is empty: every vote is up to the terms alone.
    Equal,
    /// `n0` holds the longer log, two entries of term 0; `n1` a shorter but
    /// later one, one entry of term 1; any others are empty. A comparison of
    /// lengths only would let `n0` win `n1`'s vote; §5.4.1 compares last terms
    /// first and refuses it. With equal last terms (the other profiles) the
    /// two rules agree, so only this one can tell them apart.
    LongerOlder,
}

impl StartingLogs {
    /// Node `n{id}`'s log summary under this profile.
    fn log(self, id: u8) -> LogSummary {
        let log = |index, term| LogSummary {
            last_log_index: index,
            last_log_term: Term(term),
        };
        match (self, id) {
            (Self::Ahead, 0) => log(1, 0),
            (Self::LongerOlder, 0) => log(2, 0),
            (Self::LongerOlder, 1) => log(1, 1),
            _ => LogSummary::default(),
        }
    }
}

impl fmt::Display for StartingLogs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ahead => "n0 one entry ahead",
            Self::Equal => "all empty",
            Self::LongerOlder => "n0 longer, n1 of a later term",
        })
    }
}

/// Every bound of one model-checking run; all of them are printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Cluster size (ids `n0..n{nodes-1}`).
    pub nodes: u8,
    /// States in which some node's term exceeds this are not explored.
    pub max_term: Term,
    /// Crash-restarts allowed in one run, all nodes together.
    pub max_crashes: u8,
    /// How the network may misbehave.
    pub network: NetworkKind,
    /// What a restarted node remembers.
    pub restarts: Restarts,
    /// Each node's fixed log summary, in id order. A node starts in the term
    /// of its last entry, without a vote: its term is never below that term
    /// (an entry carries its leader's term, which a follower adopts before it
    /// appends, §5.1 and §5.3), and starting any higher only skips elections.
    pub logs: Vec<LogSummary>,
    /// Every node starts this many terms later than its last entry's term:
    /// 0, or, to run at the top of the term space, far enough that the
    /// last election the bounds allow is into [`Term::CEILING`]
    /// ([`Self::near_ceiling`]).
    pub term_offset: u64,
    /// The election features every node runs.
    pub features: Features,
    /// Leadership-transfer requests allowed in one run, all leaders together
    /// (only with [`Features::leadership_transfer`]).
    pub max_transfers: u8,
    /// The reductions of the state space that are on: all by default
    /// (`reductions.rs` names and argues each).
    pub reductions: Reductions,
}

impl Bounds {
    /// The default bounds for `nodes` nodes: terms up to 2, one crash, a
    /// duplicating network, durable restarts, and node `n0` one entry ahead
    /// of the others so the vote restriction (§5.4.1) refuses some votes.
    #[must_use]
    pub fn new(nodes: u8) -> Self {
        Self::with_logs(nodes, StartingLogs::Ahead)
    }

    /// The default bounds, with the logs of `profile`.
    #[must_use]
    pub fn with_logs(nodes: u8, profile: StartingLogs) -> Self {
        let logs = (0..nodes).map(|id| profile.log(id)).collect();
        Self {
            nodes,
            max_term: Term(2),
            max_crashes: 1,
            network: NetworkKind::Duplicating,
            restarts: Restarts::Durable,
            logs,
            term_offset: 0,
            features: Features::NONE,
            max_transfers: 1,
            reductions: Reductions::ALL,
        }
    }

    /// These bounds moved to the top of the term space: every node starts
    /// `elections` terms below [`Term::CEILING`] (plus its last entry's
    /// term), so the last election possible is into the ceiling, and terms
    /// are bounded one past it, which no correct node reaches: a core that
    /// passes the ceiling is caught on the step that does.
    #[must_use]
    pub fn near_ceiling(mut self, elections: u64) -> Self {
        self.term_offset = Term::CEILING.0 - elections;
        self.max_term = Term(Term::CEILING.0 + 1);
        self
    }

    /// The term node `n{id}` starts in: its last entry's, plus
    /// [`Self::term_offset`].
    #[must_use]
    pub fn first_term(&self, log: LogSummary) -> Term {
        Term(log.last_log_term.0.saturating_add(self.term_offset))
    }

    /// These bounds with every node running `features`.
    #[must_use]
    pub fn with_features(mut self, features: Features) -> Self {
        self.features = features;
        self
    }
}

/// Bounds that describe no cluster.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The core refuses the cluster configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Messages of this cluster would not pack into the model's network.
    #[error("{nodes} nodes with log indices up to {largest} exceed the model's limits")]
    TooLarge {
        /// Cluster size.
        nodes: u8,
        /// The largest log index.
        largest: u64,
    },
    /// Terms that would not pack into the model's network
    /// ([`Network::holds_terms`]).
    #[error(
        "terms from {first} to {last} are outside the model's windows of the term space (below \
         t32768, or the 32768 terms up to one past the ceiling)"
    )]
    Terms {
        /// The lowest term.
        first: Term,
        /// The highest.
        last: Term,
    },
    /// A node would start in a term above [`Bounds::max_term`] (the term of
    /// its last log entry, plus [`Bounds::term_offset`]), outside the
    /// boundary before any step.
    #[error("a log ending in {log_term} starts its node beyond the max term {max_term}")]
    LogBeyondMaxTerm {
        /// The last log term.
        log_term: Term,
        /// The bound.
        max_term: Term,
    },
    /// One log summary per node is needed.
    #[error("{nodes} nodes need {nodes} log summaries, got {logs}")]
    LogCount {
        /// Cluster size.
        nodes: u8,
        /// Log summaries given.
        logs: usize,
    },
}

impl ElectionModel {
    /// A model of a cluster within `bounds`.
    pub fn new(bounds: Bounds) -> Result<Self, ModelError> {
        if bounds.logs.len() != usize::from(bounds.nodes) {
            return Err(ModelError::LogCount {
                nodes: bounds.nodes,
                logs: bounds.logs.len(),
            });
        }
        let largest = bounds
            .logs
            .iter()
            .map(|log| log.last_log_index)
            .max()
            .unwrap_or_default();
        if !Network::fits(bounds.nodes, largest) {
            return Err(ModelError::TooLarge {
                nodes: bounds.nodes,
                largest,
            });
        }
        if let Some(log) = bounds
            .logs
            .iter()
            .find(|&&log| bounds.first_term(log) > bounds.max_term)
        {
            return Err(ModelError::LogBeyondMaxTerm {
                log_term: log.last_log_term,
                max_term: bounds.max_term,
            });
        }
        check_terms(&bounds)?;
        let configs = Config::cluster(bounds.nodes, Timing::default())?
            .into_iter()
            .map(|config| config.with_features(bounds.features))
            .collect();
        Ok(Self { bounds, configs })
    }

    /// The bounds this model explores.
    #[must_use]
    pub fn bounds(&self) -> &Bounds {
        &self.bounds
    }
}

/// Every term the model may meet packs into its network: each log's last
/// term, and every term a node can hold, from the first any node starts in
/// to the bound.
fn check_terms(bounds: &Bounds) -> Result<(), ModelError> {
    let refused = |first, last| Err(ModelError::Terms { first, last });
    for log in &bounds.logs {
        if !Network::holds_terms(log.last_log_term, log.last_log_term) {
            return refused(log.last_log_term, log.last_log_term);
        }
    }
    let first = bounds
        .logs
        .iter()
        .map(|&log| bounds.first_term(log))
        .min()
        .unwrap_or_default();
    if !Network::holds_terms(first, bounds.max_term) {
        return refused(first, bounds.max_term);
    }
    Ok(())
}
