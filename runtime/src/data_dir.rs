//! A node's data directory: locked by one process at a time, holding the
//! node's state file ([`FileStorage`]).
//!
//! Two processes over one directory would each believe their own vote: the
//! second could vote again in a term the first voted in. So the directory is
//! locked with an OS file lock (`flock` on Unix) for as long as the lock
//! value lives, which for a node process is its whole life; the kernel drops
//! the lock when the process dies, `kill -9` included, so nothing is left to
//! clean up.

use crate::file_storage::{FileStorage, create_dir_durably};
use raft_election::storage::{Storage, StorageError};
use raft_election::{ClusterId, HardState, NodeId};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside a data directory.
pub const LOCK_FILE: &str = "LOCK";

/// Why a data directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
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
    /// The directory does not exist, and creating it was not asked for: a
    /// mistyped path must not become a new, empty node.
    #[error(
        "data directory {path} does not exist: is the path right? A node that has run before \
         needs its own directory; a new node creates it with --init"
    )]
    Missing {
        /// The directory.
        path: PathBuf,
    },
    /// Another process holds the lock.
    #[error(
        "{path} is in use by another process{}: two processes over one data directory could \
         each cast a vote in the same term. Stop the other one first",
        holder.as_ref().map_or_else(String::new, |pid| format!(" (pid {pid})"))
    )]
    InUse {
        /// The data directory.
        path: PathBuf,
        /// The process id the holder wrote into the lock file, if readable.
        holder: Option<String>,
    },
    /// The state file was refused.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A locked data directory. The lock is released when this is dropped (or
/// the process ends).
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// Held open: closing it would release the lock.
    _lock: File,
}

impl DataDir {
    /// Locks the existing directory `path` for this process, or fails at
    /// once: [`DataDirError::Missing`] if there is no such directory,
    /// [`DataDirError::InUse`] if another process holds it.
    pub fn lock(path: &Path) -> Result<Self, DataDirError> {
        if !path.is_dir() {
            return Err(DataDirError::Missing {
                path: path.to_path_buf(),
            });
        }
        Self::lock_existing(path)
    }

    /// Creates `path` if missing (durably: each new directory's parent is
    /// synced) and locks it, as [`Self::lock`]. For a new node only: an
    /// existing node that finds its directory gone must not start afresh.
    pub fn create(path: &Path) -> Result<Self, DataDirError> {
        create_dir_durably(path).map_err(|source| DataDirError::Io {
            action: "create directory",
            path: path.to_path_buf(),
            source,
        })?;
        Self::lock_existing(path)
    }

    fn lock_existing(path: &Path) -> Result<Self, DataDirError> {
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| DataDirError::Io {
                action,
                path,
                source,
            }
        };
        let lock_path = path.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io("open", &lock_path))?;
        // Through the trait: newer std has an inherent `File::try_lock` that
        // the workspace's minimum Rust version lacks.
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let holder = file
                    .read_to_string(&mut holder)
                    .ok()
                    .map(|_| holder.trim().to_owned())
                    .filter(|pid| !pid.is_empty());
                return Err(DataDirError::InUse {
                    path: path.to_path_buf(),
                    holder,
                });
            }
            Err(fs4::TryLockError::Error(e)) => return Err(io("lock", &lock_path)(e)),
        }
        // Who holds it, for the next process's message. Best effort: the
        // lock, not this text, is what excludes.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(Self {
            path: path.to_path_buf(),
            _lock: file,
        })
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state file of node `id` of `cluster` here: created at term 0 if
    /// `init` (refused if it exists), else the existing one, which must be
    /// whole and this node's. Returns the storage and what it holds.
    pub fn state(
        self,
        cluster: ClusterId,
        id: NodeId,
        init: bool,
    ) -> Result<(DirStorage, HardState), DataDirError> {
        let file = if init {
            FileStorage::create(&self.path, cluster, id)?
        } else {
            FileStorage::open(&self.path, cluster, id)
        };
        let hard_state = file.load()?;
        Ok((DirStorage { file, _dir: self }, hard_state))
    }
}

/// A node's state file in its locked data directory: the lock lives as long
/// as the storage does.
#[derive(Debug)]
pub struct DirStorage {
    file: FileStorage,
    _dir: DataDir,
}

impl DirStorage {
    /// The state file.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

impl Storage for DirStorage {
    fn load(&self) -> Result<HardState, StorageError> {
        self.file.load()
    }

    fn save(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        let file = &mut self.file;
        off_the_worker(|| file.save(hard_state))
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
pub(crate) fn off_the_worker<T>(write: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(write)
        }
        _ => write(),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::FileStorageError;
    use raft_election::Term;

    #[test]
    fn a_second_lock_on_a_locked_directory_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDir::lock(dir.path()).unwrap();
        let err = DataDir::lock(dir.path()).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, DataDirError::InUse { .. }), "{message}");
        let pid = std::process::id();
        assert!(
            message.starts_with(&format!(
                "{} is in use by another process (pid {pid})",
                dir.path().display()
            )),
            "{message}"
        );
        drop(first);
        DataDir::lock(dir.path()).expect("free again");
    }

    #[test]
    fn a_missing_directory_is_refused_and_left_missing_unless_it_is_created() {
        let root = tempfile::tempdir().unwrap();
        let mistyped = root.path().join("nodes").join("n1");
        let err = DataDir::lock(&mistyped).unwrap_err();
        assert!(matches!(err, DataDirError::Missing { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!(
                "data directory {} does not exist",
                mistyped.display()
            )),
            "{message}"
        );
        assert!(!root.path().join("nodes").exists(), "nothing was created");
        let dir = DataDir::create(&mistyped).unwrap();
        assert!(mistyped.join(LOCK_FILE).is_file());
        drop(dir);
        DataDir::lock(&mistyped).expect("there now");
    }

    /// The state file's refusal in `err`, if that is what it is.
    fn refusal(err: &DataDirError) -> Option<&FileStorageError> {
        match err {
            DataDirError::Storage(storage) => FileStorageError::of(storage),
            _ => None,
        }
    }

    #[test]
    fn init_creates_term_0_and_a_restart_without_init_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = ClusterId(3);
        let missing = DataDir::lock(dir.path())
            .unwrap()
            .state(cluster, NodeId(1), false)
            .unwrap_err();
        assert!(
            matches!(refusal(&missing), Some(FileStorageError::Missing { .. })),
            "{missing}"
        );
        let (mut storage, restored) = DataDir::lock(dir.path())
            .unwrap()
            .state(cluster, NodeId(1), true)
            .unwrap();
        assert_eq!(restored, HardState::default());
        let voted = HardState {
            current_term: Term(4),
            voted_for: Some(NodeId(2)),
        };
        storage.save(&voted).unwrap();
        drop(storage);
        let again = DataDir::lock(dir.path())
            .unwrap()
            .state(cluster, NodeId(1), true)
            .unwrap_err();
        assert!(
            matches!(
                refusal(&again),
                Some(FileStorageError::AlreadyExists { .. })
            ),
            "{again}"
        );
        let (_, restored) = DataDir::lock(dir.path())
            .unwrap()
            .state(cluster, NodeId(1), false)
            .unwrap();
        assert_eq!(restored, voted);
    }
}
