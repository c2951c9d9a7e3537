//! Stable storage for the [`HardState`] (Raft Figure 2: `currentTerm` and
//! `votedFor` are "updated on stable storage before responding to RPCs").
//!
//! Two implementations of one trait: [`MemStorage`] for tests and the
//! simulator, [`FileStorage`] for a process that must survive `kill -9`.
//! A driver calls [`Storage::save`] for every `Output::Persist` before it
//! executes the outputs after it.

use crate::types::{HardState, NodeId, Term};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Where a node keeps its hard state.
pub trait Storage {
    /// The last saved hard state, or the initial one if nothing was ever saved.
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
    /// The file exists but is not a valid hard-state file. Refusing to start
    /// is the only safe answer: starting from term 0 with no vote could let
    /// this node vote twice in a term it already voted in.
    #[error(
        "{path} is corrupt ({reason}); refusing to start from an empty state, which could \
         vote twice in one term. Restore the file or, if this node's vote is known to be \
         lost anyway, remove the node from the cluster"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
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

/// The first line of every hard-state file, naming format and version.
const MAGIC: &str = "raft-election hard-state v1";

/// Hard state in one small text file, replaced atomically.
///
/// Saving writes a temporary file, fsyncs it, renames it over the old one and
/// fsyncs the directory, so after a crash the file holds either the old or
/// the new state, never a mix. A checksum line catches torn or edited files.
#[derive(Debug)]
pub struct FileStorage {
    path: PathBuf,
}

impl FileStorage {
    /// Storage for node `id` in `dir` (created if missing).
    pub fn open(dir: &Path, id: NodeId) -> Result<Self, StorageError> {
        fs::create_dir_all(dir).map_err(|source| StorageError::Io {
            action: "create directory",
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            path: dir.join(format!("node-{}.state", id.0)),
        })
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
}

impl Storage for FileStorage {
    fn load(&self) -> Result<HardState, StorageError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            // Never saved: a node that has never voted starts at term 0.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HardState::default()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(StorageError::Corrupt {
                    path: self.path.clone(),
                    reason: "not UTF-8 text".into(),
                });
            }
            Err(e) => return Err(self.io("read", &self.path)(e)),
        };
        decode(&text).map_err(|reason| StorageError::Corrupt {
            path: self.path.clone(),
            reason,
        })
    }

    fn save(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        let tmp = self.path.with_extension("state.tmp");
        let mut file = File::create(&tmp).map_err(self.io("create", &tmp))?;
        file.write_all(encode(hard_state).as_bytes())
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

fn body(hard_state: &HardState) -> String {
    let voted_for = hard_state
        .voted_for
        .map_or_else(|| "none".to_string(), |id| id.0.to_string());
    format!(
        "{MAGIC}\ncurrent_term {}\nvoted_for {voted_for}\n",
        hard_state.current_term.0
    )
}

fn encode(hard_state: &HardState) -> String {
    let body = body(hard_state);
    let checksum = crc32fast::hash(body.as_bytes());
    format!("{body}crc32 {checksum:08x}\n")
}

fn decode(text: &str) -> Result<HardState, String> {
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(format!("first line is not {MAGIC:?}"));
    }
    let field = |line: Option<&str>, name: &str| -> Result<String, String> {
        line.and_then(|l| l.strip_prefix(name))
            .and_then(|v| v.strip_prefix(' '))
            .map(str::to_string)
            .ok_or_else(|| format!("missing `{name}` line"))
    };
    let term = field(lines.next(), "current_term")?;
    let voted_for = field(lines.next(), "voted_for")?;
    let crc = field(lines.next(), "crc32")?;
    if lines.next().is_some() {
        return Err("unexpected lines after the checksum".into());
    }
    let current_term = term
        .parse::<u64>()
        .map(Term)
        .map_err(|e| format!("current_term {term:?}: {e}"))?;
    let voted_for = match voted_for.as_str() {
        "none" => None,
        id => Some(NodeId(
            id.parse::<u8>()
                .map_err(|e| format!("voted_for {id:?}: {e}"))?,
        )),
    };
    let hard_state = HardState {
        current_term,
        voted_for,
    };
    let expected = format!("{:08x}", crc32fast::hash(body(&hard_state).as_bytes()));
    if crc != expected {
        return Err(format!(
            "checksum {crc} does not match the contents ({expected})"
        ));
    }
    Ok(hard_state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(term: u64, voted_for: Option<u8>) -> HardState {
        HardState {
            current_term: Term(term),
            voted_for: voted_for.map(NodeId),
        }
    }

    #[test]
    fn a_saved_state_is_loaded_back_from_a_new_handle() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = FileStorage::open(dir.path(), NodeId(2)).unwrap();
        assert_eq!(storage.load().unwrap(), HardState::default(), "never saved");
        for hard_state in [
            state(1, Some(2)),
            state(7, None),
            state(u64::MAX, Some(255)),
        ] {
            storage.save(&hard_state).unwrap();
            let reopened = FileStorage::open(dir.path(), NodeId(2)).unwrap();
            assert_eq!(reopened.load().unwrap(), hard_state);
        }
    }

    #[test]
    fn a_corrupt_or_truncated_file_is_refused_with_a_readable_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = FileStorage::open(dir.path(), NodeId(0)).unwrap();
        storage.save(&state(5, Some(1))).unwrap();
        let good = fs::read_to_string(storage.path()).unwrap();
        let flipped = good.replace("current_term 5", "current_term 4");
        let truncated = &good[..good.len() / 2];
        for (what, bad) in [
            ("a changed term", flipped.as_str()),
            ("a truncated file", truncated),
            ("an empty file", ""),
            ("garbage", "hello\n"),
        ] {
            fs::write(storage.path(), bad).unwrap();
            let err = storage.load().unwrap_err();
            assert!(matches!(err, StorageError::Corrupt { .. }), "{what}: {err}");
            let message = err.to_string();
            assert!(
                message.contains("corrupt") && message.contains("refusing"),
                "{message}"
            );
        }
        fs::write(storage.path(), [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(storage.load(), Err(StorageError::Corrupt { .. })));
    }

    #[test]
    fn memory_storage_keeps_the_last_saved_state() {
        let mut storage = MemStorage::new();
        storage.save(&state(3, Some(1))).unwrap();
        assert_eq!(storage.load().unwrap(), state(3, Some(1)));
    }
}
