//! The runtime's storage: [`crate::storage::Storage`] in a cell the cluster
//! handle shares with the node's task.
//!
//! The driver is generic over [`crate::storage::Storage`], so a file-backed
//! node ([`crate::storage::FileStorage`]) plugs in the same way; the cluster
//! handle uses this in-memory cell because it must read a killed node's hard
//! state back to restart it.

use super::sync::{Arc, Mutex, lock};
use crate::storage::{Storage, StorageError};
use crate::types::HardState;

/// Hard state in memory, shared by clones: it outlives a killed task (the
/// handle keeps a clone) but not the process.
#[derive(Clone, Debug, Default)]
pub struct SharedMemStorage {
    cell: Arc<Mutex<HardState>>,
}

impl SharedMemStorage {
    /// Empty storage: term 0, no vote.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// What is saved right now.
    #[must_use]
    pub fn get(&self) -> HardState {
        *lock(&self.cell)
    }
}

impl Storage for SharedMemStorage {
    fn load(&self) -> Result<HardState, StorageError> {
        Ok(self.get())
    }

    fn save(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        *lock(&self.cell) = *hard_state;
        Ok(())
    }
}
