//! Where the runtime keeps each node's hard state ([`StorageKind`]), and the
//! handle on it that the cluster and the node's task share.
//!
//! Saving and loading are the core's ([`MemStorage`], [`FileStorage`]); this
//! module only chooses one per node and shares it.

use crate::sync::{Arc, Mutex, lock};
use raft_election::storage::{FileStorage, MemStorage, Storage, StorageError};
use raft_election::{HardState, NodeId};
use std::path::PathBuf;

/// Where a cluster keeps its nodes' hard state (Figure 2's `currentTerm` and
/// `votedFor`, "updated on stable storage before responding to RPCs").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StorageKind {
    /// In memory ([`MemStorage`]): survives
    /// [`crash`](super::ClusterHandle::crash) and
    /// [`restart`](super::ClusterHandle::restart), not the process. Every
    /// new cluster starts at term 0.
    #[default]
    Memory,
    /// One file per node in this directory, `node-<id>.state`
    /// ([`FileStorage`]: atomic replace, fsync, checksum). Survives the
    /// process, `kill -9` included: a later cluster over the same directory
    /// resumes every node from its file. The directory is created if missing.
    Directory(PathBuf),
}

/// One node's stable storage, shared by the cluster handle and the node's
/// current task.
///
/// The task saves to it, but a crash aborts the task and drops what it owns;
/// the handle keeps a clone to read a crashed node's state back and restart
/// it. [`MemStorage`] alone cannot serve: it is a plain value, and a value
/// moved into an aborted task is gone with it. This cell adds only the
/// sharing; saving and loading stay with [`MemStorage`] and [`FileStorage`].
#[derive(Clone, Debug)]
pub(crate) struct SharedStorage {
    cell: Arc<Mutex<Backend>>,
}

#[derive(Debug)]
enum Backend {
    Memory(MemStorage),
    File(FileStorage),
}

impl SharedStorage {
    /// The storage of node `id` of a cluster configured with `kind`. Opening
    /// reads nothing yet; [`Storage::load`] does.
    pub(crate) fn open(kind: &StorageKind, id: NodeId) -> Result<Self, StorageError> {
        let backend = match kind {
            StorageKind::Memory => Backend::Memory(MemStorage::new()),
            StorageKind::Directory(dir) => Backend::File(FileStorage::open(dir, id)?),
        };
        Ok(Self {
            cell: Arc::new(Mutex::new(backend)),
        })
    }
}

impl Storage for SharedStorage {
    fn load(&self) -> Result<HardState, StorageError> {
        match &*lock(&self.cell) {
            Backend::Memory(memory) => memory.load(),
            Backend::File(file) => file.load(),
        }
    }

    fn save(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        match &mut *lock(&self.cell) {
            Backend::Memory(memory) => memory.save(hard_state),
            Backend::File(file) => off_the_worker(|| file.save(hard_state)),
        }
    }
}

/// Runs a blocking file write (an fsync takes milliseconds) without stalling
/// the other tasks of this worker thread: on a multi-thread runtime,
/// `block_in_place` hands them to another worker meanwhile. Elsewhere (a
/// current-thread runtime, no runtime) it just runs the write.
///
/// Not `spawn_blocking`: awaiting the write would add an await point where a
/// crash could abort the task with the write still in flight, to land after
/// the restart had loaded the older state. Inside one poll, the write is
/// over before an abort can take effect: a crash lands between writes.
fn off_the_worker<T>(write: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(write)
        }
        _ => write(),
    }
}

// Under `--cfg loom` the shared types are loom's, usable only inside `loom::model`.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use raft_election::Term;

    fn state(term: u64, voted_for: u8) -> HardState {
        HardState {
            current_term: Term(term),
            voted_for: Some(NodeId(voted_for)),
        }
    }

    #[test]
    fn a_clone_sees_what_another_clone_saved_in_memory_and_in_a_file() {
        let dir = tempfile::tempdir().unwrap();
        for kind in [
            StorageKind::Memory,
            StorageKind::Directory(dir.path().to_path_buf()),
        ] {
            let handle = SharedStorage::open(&kind, NodeId(1)).unwrap();
            let mut task = handle.clone();
            assert_eq!(handle.load().unwrap(), HardState::default(), "{kind:?}");
            task.save(&state(4, 2)).unwrap();
            drop(task);
            assert_eq!(handle.load().unwrap(), state(4, 2), "{kind:?}");
        }
        // The file outlives every handle on it.
        let reopened = FileStorage::open(dir.path(), NodeId(1)).unwrap();
        assert_eq!(reopened.load().unwrap(), state(4, 2));
    }

    /// `block_in_place` panics on a current-thread runtime, which the paused
    /// clock tests use; a file save must work from a task on either flavor.
    #[test]
    fn a_file_saves_from_a_task_on_either_runtime_flavor() {
        let dir = tempfile::tempdir().unwrap();
        let runtimes = [
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .build()
                .unwrap(),
        ];
        for (term, runtime) in (1..).zip(runtimes) {
            let kind = StorageKind::Directory(dir.path().to_path_buf());
            let handle = SharedStorage::open(&kind, NodeId(1)).unwrap();
            let mut task = handle.clone();
            runtime
                .block_on(runtime.spawn(async move { task.save(&state(term, 2)) }))
                .unwrap()
                .unwrap();
            assert_eq!(handle.load().unwrap(), state(term, 2));
        }
    }
}
