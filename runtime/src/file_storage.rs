//! The hard state in one small file per node ([`FileStorage`]): atomic
//! replace, fsync, a checksum, the owning cluster and node recorded. A
//! corrupt, missing or foreign file is refused ([`FileStorageError`]), never
//! reset to term 0.

use raft_election::storage::{Storage, StorageError};
use raft_election::{ClusterId, HardState, NodeId, Term};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What a refused file should say to the operator: starting from term 0
/// instead could let this node vote twice in a term it already voted in.
const NOT_FROM_TERM_0: &str =
    "refusing to start from an empty state, which could vote twice in one term";

/// Why [`FileStorage`] refused its file. It reaches the driver boxed in
/// [`StorageError::Refused`] (downcast it to tell which); what the operating
/// system refused is [`StorageError::Io`].
#[derive(Debug, thiserror::Error)]
pub enum FileStorageError {
    /// The file exists but is not a valid hard-state file. Refusing to start
    /// is the only safe answer: starting from term 0 with no vote could let
    /// this node vote twice in a term it already voted in.
    #[error(
        "{path} is corrupt ({reason}); {NOT_FROM_TERM_0}. Restore the file or, if this \
         node's vote is known to be lost anyway, remove the node from the cluster"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// There is no state file: this node has either never been initialized
    /// or lost its file, and the two cannot be told apart. Only the operator
    /// can say it is new ([`FileStorage::create`], the node's `--init`).
    #[error(
        "{path} does not exist: has this node voted before? {NOT_FROM_TERM_0}. If this is a \
         new node that has never run, initialize it (--init)"
    )]
    Missing {
        /// The file that should be there.
        path: PathBuf,
    },
    /// Initialization was asked for, but the node already has a state file.
    #[error(
        "{path} already exists: this node has run before, and starting it again from term 0 \
         could let it vote twice in one term. Start it without --init to resume from the file"
    )]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The file is whole but belongs to another node or another cluster
    /// (a copied directory, a wrong `--id`): its vote is not this node's.
    #[error(
        "{path} belongs to node {file_node} of {file_cluster}, but this is node {node} of \
         {cluster}: refusing another node's vote. Check --id, --cluster-id and --data-dir"
    )]
    WrongOwner {
        /// The file.
        path: PathBuf,
        /// The cluster it records.
        file_cluster: ClusterId,
        /// The node it records.
        file_node: NodeId,
        /// The cluster opening it.
        cluster: ClusterId,
        /// The node opening it.
        node: NodeId,
    },
    /// A version 1 file, written before files recorded their owner.
    #[error(
        "{path} is a version 1 hard-state file, which does not record its cluster and node, \
         so it cannot be checked as this node's; refusing it. Only the in-process demo wrote \
         version 1 files: give it a new --data-dir"
    )]
    Version1 {
        /// The file.
        path: PathBuf,
    },
}

impl From<FileStorageError> for StorageError {
    fn from(error: FileStorageError) -> Self {
        Self::Refused(Box::new(error))
    }
}

impl FileStorageError {
    /// The refusal `error` carries, if it is a file's.
    #[cfg(test)]
    pub(crate) fn of(error: &StorageError) -> Option<&Self> {
        match error {
            StorageError::Refused(refusal) => refusal.downcast_ref(),
            StorageError::Io { .. } => None,
        }
    }
}

/// The first line of every hard-state file, naming format and version.
const MAGIC: &str = "raft-election hard-state v2";
/// The first line of the format before owners were recorded.
const MAGIC_V1: &str = "raft-election hard-state v1";

/// Hard state in one small text file, replaced atomically, recording whose
/// it is (cluster and node).
///
/// Saving writes a temporary file, fsyncs it, renames it over the old one and
/// fsyncs the directory, so after a crash the file holds either the old or
/// the new state, never a mix. A checksum line catches torn or edited files;
/// every load checks the owner.
///
/// ```text
/// raft-election hard-state v2
/// cluster_id 1
/// node_id 2
/// current_term 5
/// voted_for 3
/// crc32 1c291ca3
/// ```
#[derive(Debug)]
pub struct FileStorage {
    path: PathBuf,
    cluster: ClusterId,
    id: NodeId,
}

impl FileStorage {
    /// The state file of node `id` in `dir`: `dir/node-<id>.state`.
    #[must_use]
    pub fn path_in(dir: &Path, id: NodeId) -> PathBuf {
        dir.join(format!("node-{}.state", id.0))
    }

    /// The existing state file of node `id` of `cluster` in `dir`. Reads
    /// nothing yet: [`Storage::load`] checks that the file is there, whole
    /// and this node's.
    #[must_use]
    pub fn open(dir: &Path, cluster: ClusterId, id: NodeId) -> Self {
        Self {
            path: Self::path_in(dir, id),
            cluster,
            id,
        }
    }

    /// Initializes node `id` of `cluster` in `dir` (created if missing): a
    /// state file at term 0 with no vote, for a node that has never run.
    /// Refuses ([`FileStorageError::AlreadyExists`]) if the node has a file.
    pub fn create(dir: &Path, cluster: ClusterId, id: NodeId) -> Result<Self, StorageError> {
        create_dir_durably(dir).map_err(|source| StorageError::Io {
            action: "create directory",
            path: dir.to_path_buf(),
            source,
        })?;
        let mut storage = Self::open(dir, cluster, id);
        if storage
            .path
            .try_exists()
            .map_err(storage.io("look for", &storage.path))?
        {
            return Err(FileStorageError::AlreadyExists { path: storage.path }.into());
        }
        storage.save(&HardState::default())?;
        Ok(storage)
    }

    /// The file this storage reads and writes.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StorageError {
        let path = path.to_path_buf();
        move |source| StorageError::Io {
            action,
            path,
            source,
        }
    }

    fn owner(&self) -> Owner {
        Owner {
            cluster: self.cluster,
            node: self.id,
        }
    }
}

impl Storage for FileStorage {
    fn load(&self) -> Result<HardState, StorageError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(FileStorageError::Missing {
                    path: self.path.clone(),
                }
                .into());
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(FileStorageError::Corrupt {
                    path: self.path.clone(),
                    reason: "not UTF-8 text".into(),
                }
                .into());
            }
            Err(e) => return Err(self.io("read", &self.path)(e)),
        };
        let path = || self.path.clone();
        if text.lines().next() == Some(MAGIC_V1) {
            return Err(FileStorageError::Version1 { path: path() }.into());
        }
        let (owner, hard_state) = decode(&text).map_err(|reason| FileStorageError::Corrupt {
            path: path(),
            reason,
        })?;
        if owner != self.owner() {
            return Err(FileStorageError::WrongOwner {
                path: path(),
                file_cluster: owner.cluster,
                file_node: owner.node,
                cluster: self.cluster,
                node: self.id,
            }
            .into());
        }
        Ok(hard_state)
    }

    fn save(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        let tmp = self.path.with_extension("state.tmp");
        let mut file = File::create(&tmp).map_err(self.io("create", &tmp))?;
        file.write_all(encode(self.owner(), hard_state).as_bytes())
            .map_err(self.io("write", &tmp))?;
        file.sync_all().map_err(self.io("fsync", &tmp))?;
        drop(file);
        fs::rename(&tmp, &self.path).map_err(self.io("rename", &self.path))?;
        // The rename is durable only once the directory entry is.
        let dir = self.path.parent().unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(self.io("fsync directory", dir))?;
        Ok(())
    }
}

/// Creates `dir` and any missing parent, each made durable by an fsync of
/// the directory that holds it: a new directory's entry, like a renamed
/// file's, survives a power loss only once its parent is synced, and a
/// state file in a directory that vanished would be as lost as the file.
pub(crate) fn create_dir_durably(dir: &Path) -> io::Result<()> {
    // The missing directories, innermost first.
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(path) = at.filter(|p| !p.as_os_str().is_empty()) {
        if path.try_exists()? {
            break;
        }
        missing.push(path);
        at = path.parent();
    }
    fs::create_dir_all(dir)?;
    for created in missing.iter().rev() {
        let parent = created
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Whose state a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Owner {
    cluster: ClusterId,
    node: NodeId,
}

fn body(owner: Owner, hard_state: &HardState) -> String {
    let voted_for = hard_state
        .voted_for
        .map_or_else(|| "none".to_string(), |id| id.0.to_string());
    format!(
        "{MAGIC}\ncluster_id {}\nnode_id {}\ncurrent_term {}\nvoted_for {voted_for}\n",
        owner.cluster.0, owner.node.0, hard_state.current_term.0
    )
}

fn encode(owner: Owner, hard_state: &HardState) -> String {
    let body = body(owner, hard_state);
    let checksum = crc32fast::hash(body.as_bytes());
    format!("{body}crc32 {checksum:08x}\n")
}

fn decode(text: &str) -> Result<(Owner, HardState), String> {
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(format!("first line is not {MAGIC:?}"));
    }
    let mut field = |name: &str| -> Result<String, String> {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|v| v.strip_prefix(' '))
            .map(str::to_string)
            .ok_or_else(|| format!("missing `{name}` line"))
    };
    let cluster = field("cluster_id")?;
    let node = field("node_id")?;
    let term = field("current_term")?;
    let voted_for = field("voted_for")?;
    let crc = field("crc32")?;
    if lines.next().is_some() {
        return Err("unexpected lines after the checksum".into());
    }
    let number = |name: &str, value: &str| {
        value
            .parse::<u64>()
            .map_err(|e| format!("{name} {value:?}: {e}"))
    };
    let id = |name: &str, value: &str| {
        value
            .parse::<u8>()
            .map(NodeId)
            .map_err(|e| format!("{name} {value:?}: {e}"))
    };
    let owner = Owner {
        cluster: ClusterId(number("cluster_id", &cluster)?),
        node: id("node_id", &node)?,
    };
    let hard_state = HardState {
        current_term: Term(number("current_term", &term)?),
        voted_for: match voted_for.as_str() {
            "none" => None,
            voter => Some(id("voted_for", voter)?),
        },
    };
    let expected = format!(
        "{:08x}",
        crc32fast::hash(body(owner, &hard_state).as_bytes())
    );
    if crc != expected {
        return Err(format!(
            "checksum {crc} does not match the contents ({expected})"
        ));
    }
    Ok((owner, hard_state))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: ClusterId = ClusterId(7);

    #[test]
    fn a_state_file_can_be_created_in_directories_that_do_not_exist_yet() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a").join("b");
        let mut storage = FileStorage::create(&dir, CLUSTER, NodeId(1)).unwrap();
        storage.save(&state(2, Some(1))).unwrap();
        assert_eq!(storage.load().unwrap(), state(2, Some(1)));
        // Creating what exists is no error.
        create_dir_durably(&dir).unwrap();
    }

    fn state(term: u64, voted_for: Option<u8>) -> HardState {
        HardState {
            current_term: Term(term),
            voted_for: voted_for.map(NodeId),
        }
    }

    #[test]
    fn a_saved_state_is_loaded_back_from_a_new_handle() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = FileStorage::create(dir.path(), CLUSTER, NodeId(2)).unwrap();
        assert_eq!(storage.load().unwrap(), HardState::default(), "created");
        for hard_state in [
            state(1, Some(2)),
            state(7, None),
            state(u64::MAX, Some(255)),
        ] {
            storage.save(&hard_state).unwrap();
            let reopened = FileStorage::open(dir.path(), CLUSTER, NodeId(2));
            assert_eq!(reopened.load().unwrap(), hard_state);
        }
    }

    #[test]
    fn a_missing_file_is_an_error_and_init_refuses_an_existing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = FileStorage::path_in(dir.path(), NodeId(1));
        let err = FileStorage::open(dir.path(), CLUSTER, NodeId(1))
            .load()
            .unwrap_err();
        assert!(
            matches!(
                FileStorageError::of(&err),
                Some(FileStorageError::Missing { .. })
            ),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with(&format!(
                "{} does not exist: has this node voted before?",
                path.display()
            )),
            "{message}"
        );
        assert!(message.contains("--init"), "{message}");
        let mut storage = FileStorage::create(dir.path(), CLUSTER, NodeId(1)).unwrap();
        storage.save(&state(3, Some(1))).unwrap();
        let err = FileStorage::create(dir.path(), CLUSTER, NodeId(1)).unwrap_err();
        assert!(
            matches!(
                FileStorageError::of(&err),
                Some(FileStorageError::AlreadyExists { .. })
            ),
            "{err}"
        );
        assert_eq!(storage.load().unwrap(), state(3, Some(1)), "left as it was");
    }

    #[test]
    fn a_file_of_another_node_or_cluster_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        FileStorage::create(dir.path(), CLUSTER, NodeId(1)).unwrap();
        let path = FileStorage::path_in(dir.path(), NodeId(1));
        // Copied over another node's file: same name, another owner.
        fs::copy(&path, FileStorage::path_in(dir.path(), NodeId(2))).unwrap();
        let err = FileStorage::open(dir.path(), CLUSTER, NodeId(2))
            .load()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("belongs to node n1 of cluster 7, but this is node n2 of cluster 7"),
            "{err}"
        );
        let err = FileStorage::open(dir.path(), ClusterId(8), NodeId(1))
            .load()
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "{} belongs to node n1 of cluster 7, but this is node n1 of cluster 8",
                path.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn a_version_1_file_is_refused_because_its_owner_cannot_be_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = FileStorage::path_in(dir.path(), NodeId(0));
        let body = format!("{MAGIC_V1}\ncurrent_term 3\nvoted_for 1\n");
        let v1 = format!("{body}crc32 {:08x}\n", crc32fast::hash(body.as_bytes()));
        fs::write(&path, v1).unwrap();
        let err = FileStorage::open(dir.path(), CLUSTER, NodeId(0))
            .load()
            .unwrap_err();
        assert!(
            matches!(
                FileStorageError::of(&err),
                Some(FileStorageError::Version1 { .. })
            ),
            "{err}"
        );
        assert!(err.to_string().contains("version 1"), "{err}");
    }

    #[test]
    fn a_corrupt_or_truncated_file_is_refused_with_a_readable_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = FileStorage::create(dir.path(), CLUSTER, NodeId(0)).unwrap();
        storage.save(&state(5, Some(1))).unwrap();
        let good = fs::read_to_string(storage.path()).unwrap();
        let flipped = good.replace("current_term 5", "current_term 4");
        let other_owner = good.replace("node_id 0", "node_id 1");
        let truncated = &good[..good.len() / 2];
        for (what, bad) in [
            ("a changed term", flipped.as_str()),
            ("a changed owner", other_owner.as_str()),
            ("a truncated file", truncated),
            ("an empty file", ""),
            ("garbage", "hello\n"),
        ] {
            assert_ne!(bad, good, "{what}");
            fs::write(storage.path(), bad).unwrap();
            let err = storage.load().unwrap_err();
            assert!(
                matches!(
                    FileStorageError::of(&err),
                    Some(FileStorageError::Corrupt { .. })
                ),
                "{what}: {err}"
            );
            let message = err.to_string();
            assert!(
                message.contains("corrupt") && message.contains("refusing"),
                "{message}"
            );
        }
        fs::write(storage.path(), [0xff, 0xfe, 0x00]).unwrap();
        let err = storage.load().unwrap_err();
        assert!(
            matches!(
                FileStorageError::of(&err),
                Some(FileStorageError::Corrupt { .. })
            ),
            "{err}"
        );
    }
}
