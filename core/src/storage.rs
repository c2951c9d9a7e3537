//! Stable storage for the [`HardState`] (Raft Figure 2: `currentTerm` and
//! `votedFor` are "updated on stable storage before responding to RPCs").
//!
//! The [`Storage`] trait, its error and [`MemStorage`], for tests and the
//! simulator. The core does no I/O: the runtime's `FileStorage` keeps the
//! state of a process that must survive `kill -9`. A driver calls
//! [`Storage::save`] for every `Output::Persist` before it executes the
//! outputs after it.

use crate::types::HardState;
use std::io;
use std::path::PathBuf;

/// Where a node keeps its hard state.
pub trait Storage {
    /// The last saved hard state. Storage that is new by construction
    /// ([`MemStorage`]) starts at term 0; storage that may have lost its
    /// state (a file that was never created) refuses
    /// ([`StorageError::Refused`]), never returns a silent term 0.
    fn load(&self) -> Result<HardState, StorageError>;
    /// Makes `hard_state` durable; returns only once it would survive a crash.
    fn save(&mut self, hard_state: &HardState) -> Result<(), StorageError>;
}

/// Why the hard state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The operating system refused.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The storage holds no state this node may use: corrupt, missing,
    /// another node's. Refusing to start is the only safe answer: starting
    /// from term 0 with no vote could let this node vote twice in a term it
    /// already voted in. The storage's own error says which, where and why.
    #[error(transparent)]
    Refused(Box<dyn std::error::Error + Send + Sync>),
}

/// Hard state kept in memory: survives a simulated crash (the value is kept
/// by whoever owns the storage), not a process crash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemStorage {
    hard_state: HardState,
}

impl MemStorage {
    /// Empty storage: term 0, no vote.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl Storage for MemStorage {
    fn load(&self) -> Result<HardState, StorageError> {
        Ok(self.hard_state)
    }

    fn save(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        self.hard_state = *hard_state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{NodeId, Term};

    #[test]
    fn memory_storage_keeps_the_last_saved_state() {
        let mut storage = MemStorage::new();
        let voted = HardState {
            current_term: Term(3),
            voted_for: Some(NodeId(1)),
        };
        storage.save(&voted).unwrap();
        assert_eq!(storage.load().unwrap(), voted);
    }
}
