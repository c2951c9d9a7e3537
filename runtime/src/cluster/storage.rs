//! Where the runtime keeps each node's hard state ([`StorageKind`]), and the
//! handle on it that the cluster and the node's task share.
//!
//! Saving and loading are [`MemStorage`]'s and [`FileStorage`]'s; this
//! module only chooses one per node and shares it.

use crate::data_dir::{DataDir, off_the_worker};
use crate::file_storage::FileStorage;
use crate::sync::{Arc, Mutex, lock};
use raft_election::storage::{MemStorage, Storage, StorageError};
use raft_election::{ClusterId, HardState, NodeId};
use std::path::{Path, PathBuf};

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
    /// ([`FileStorage`]: atomic replace, fsync, checksum, the cluster and
    /// node recorded). Survives the process, `kill -9` included: a later
    /// cluster over the same directory resumes every node from its file.
    ///
    /// The directory is the whole cluster's and is locked while the cluster
    /// runs ([`crate::DataDir`]). It is created if missing, and a directory
    /// with no state file of any node is a new cluster: every node starts
    /// from a new file at term 0. Once one file exists, every node's must:
    /// a missing one is refused ([`crate::FileStorageError::Missing`]), never
    /// recreated at term 0.
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
    /// The cluster's directory lock, held by every clone: it is released
    /// only when no task that could still write a file is left, however
    /// the cluster ended (a dropped handle aborts tasks without waiting).
    _lock: Option<std::sync::Arc<DataDir>>,
}

#[derive(Debug)]
enum Backend {
    Memory(MemStorage),
    File(FileStorage),
}

impl SharedStorage {
    /// The storage of node `id` of `cluster`, kept as `kind` says. With a
    /// directory, `new_cluster` creates its file at term 0 (refused if it
    /// exists); otherwise the file must exist. Opening reads nothing yet;
    /// [`Storage::load`] does.
    pub(crate) fn open(
        kind: &StorageKind,
        cluster: ClusterId,
        id: NodeId,
        new_cluster: bool,
        lock: Option<std::sync::Arc<DataDir>>,
    ) -> Result<Self, StorageError> {
        let backend = match kind {
            StorageKind::Memory => Backend::Memory(MemStorage::new()),
            StorageKind::Directory(dir) if new_cluster => {
                Backend::File(FileStorage::create(dir, cluster, id)?)
            }
            StorageKind::Directory(dir) => Backend::File(FileStorage::open(dir, cluster, id)),
        };
        Ok(Self {
            cell: Arc::new(Mutex::new(backend)),
            _lock: lock,
        })
    }

    /// Whether `dir` holds the state file of none of `ids`: a new cluster.
    pub(crate) fn is_new_cluster(
        dir: &Path,
        ids: impl IntoIterator<Item = NodeId>,
    ) -> Result<bool, StorageError> {
        for id in ids {
            let path = FileStorage::path_in(dir, id);
            let exists = path.try_exists().map_err(|source| StorageError::Io {
                action: "look for",
                path: path.clone(),
                source,
            })?;
            if exists {
                return Ok(false);
            }
        }
        Ok(true)
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

// Under `--cfg loom` the shared types are loom's, usable only inside `loom::model`.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use raft_election::Term;

    const CLUSTER: ClusterId = ClusterId(1);

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
            let handle = SharedStorage::open(&kind, CLUSTER, NodeId(1), true, None).unwrap();
            let mut task = handle.clone();
            assert_eq!(handle.load().unwrap(), HardState::default(), "{kind:?}");
            task.save(&state(4, 2)).unwrap();
            drop(task);
            assert_eq!(handle.load().unwrap(), state(4, 2), "{kind:?}");
        }
        // The file outlives every handle on it.
        let reopened = FileStorage::open(dir.path(), CLUSTER, NodeId(1));
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
            let handle = SharedStorage::open(&kind, CLUSTER, NodeId(1), term == 1, None).unwrap();
            let mut task = handle.clone();
            runtime
                .block_on(runtime.spawn(async move { task.save(&state(term, 2)) }))
                .unwrap()
                .unwrap();
            assert_eq!(handle.load().unwrap(), state(term, 2));
        }
    }
}
