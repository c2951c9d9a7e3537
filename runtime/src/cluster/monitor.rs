//! The safety monitor: the cluster-wide invariants of
//! [`raft_election::invariants`], checked on every step every driver reports.

use crate::sync::{Mutex, lock};
use raft_election::invariants::{History, Violation};
use raft_election::{Config, Input, LogSummary, Node, NodeId, Term};
use std::collections::BTreeMap;

/// The invariant checker and the first violation it found.
#[derive(Debug)]
struct Checker {
    history: History,
    violation: Option<Violation>,
}

/// The cluster-wide invariants of [`raft_election::invariants`], checked on every
/// step the drivers report, from every task at once.
///
/// One lock covers check and record, so two reports that only together
/// break an invariant (two votes of one node in one term, two leaders of one
/// term) are caught in every interleaving; the loom tests check exactly that.
#[derive(Debug)]
pub(crate) struct SafetyMonitor {
    checker: Mutex<Checker>,
}

impl SafetyMonitor {
    /// A monitor of the cluster `config` belongs to that has seen nothing.
    /// Every node of the in-process cluster holds an empty log (its storage
    /// keeps none), so that is the log the history is given for each.
    #[must_use]
    pub(crate) fn new(config: &Config) -> Self {
        let logs = config
            .voters()
            .iter()
            .map(|&id| (id, LogSummary::default()));
        Self {
            checker: Mutex::new(Checker {
                history: History::new(logs),
                violation: None,
            }),
        }
    }

    /// Checks and records one step of `config.id()`; keeps the first violation.
    pub(crate) fn record_step(
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
    pub(crate) fn record_restart(&self, id: NodeId, node: &Node) -> Result<(), Violation> {
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
    pub(crate) fn violation(&self) -> Option<Violation> {
        lock(&self.checker).violation.clone()
    }

    /// Who became leader of which term so far.
    #[must_use]
    pub(crate) fn leaders_by_term(&self) -> BTreeMap<Term, NodeId> {
        lock(&self.checker).history.leaders().clone()
    }
}
