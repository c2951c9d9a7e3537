//! The ghost history as a state holds it: shared, and hashed once.

use ahash::AHashMap;
use raft_election::NodeId;
use raft_election::invariants::History;
use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// A [`History`] shared between a state and its successors until a step
/// teaches it something (most steps do not, and copying it was a tenth of
/// the checker's time), with a digest of it taken when it was made.
///
/// The checker hashes every state it generates, several per state it
/// explores, while a history changes in few steps: hashing the digest
/// instead of the maps and sets was a twentieth of the checker's time.
/// Equality still compares the histories themselves, so a step that changes
/// nothing is recognised exactly; only the checker's 64-bit fingerprint of
/// a state depends on the digest, which adds one more 64-bit hash to the
/// chance of a fingerprint collision that the checker already takes.
#[derive(Clone, Debug)]
pub struct SharedHistory {
    history: Arc<History>,
    digest: u64,
}

impl SharedHistory {
    /// Changes the history through `change`, on a copy, and takes its
    /// digest again. Most steps that are not inert still teach the history
    /// nothing new (a term it has seen, a vote it has recorded): then the
    /// history stays as it was, still shared, and the copy, still equal to
    /// it, is kept as the next copy of it (the checker steps a state's
    /// successors one after another, and copying and dropping the copies
    /// was a twelfth of its time).
    pub(crate) fn update<R>(&mut self, change: impl FnOnce(&mut History) -> R) -> R {
        let spare = SPARE
            .take()
            .filter(|(of, _)| Arc::ptr_eq(of, &self.history));
        let mut copy = match spare {
            Some((_, copy)) => copy,
            None => History::clone(&self.history),
        };
        let result = change(&mut copy);
        if copy == *self.history {
            SPARE.set(Some((Arc::clone(&self.history), copy)));
        } else {
            self.digest = digest(&copy);
            self.history = Arc::new(copy);
        }
        result
    }

    /// This history with node `n{i}` renamed `renamed[i]` (see
    /// [`History::map_ids`]). A state is put in canonical form by renaming
    /// its nodes, and few histories meet few renamings: each pair is renamed
    /// once per checker thread and then shared.
    pub(crate) fn renamed(&self, renamed: &[NodeId]) -> Self {
        // Four bits per id (`Network::fits` allows 16 nodes).
        let renaming = renamed
            .iter()
            .rev()
            .fold(0_u64, |key, id| key << 4 | u64::from(id.0 & 0xf));
        let key = (self.clone(), renaming);
        if let Some(shared) = RENAMED.with_borrow(|memo| memo.get(&key).cloned()) {
            return shared;
        }
        let shared = Self::from(self.map_ids(|id| renamed[usize::from(id.0)]));
        RENAMED.with_borrow_mut(|memo| {
            if memo.len() >= RENAMED_CAPACITY {
                memo.clear();
            }
            memo.insert(key, shared.clone());
        });
        shared
    }
}

/// Most renamed histories [`RENAMED`] keeps per checker thread before it
/// starts over: a bound on its memory.
const RENAMED_CAPACITY: usize = 1 << 16;

thread_local! {
    /// A copy of a shared history, equal to it, for its next update.
    static SPARE: std::cell::Cell<Option<(Arc<History>, History)>> =
        const { std::cell::Cell::new(None) };

    /// Each history renamed by each renaming (ids packed four bits each),
    /// per thread so the checker's threads never wait for each other.
    static RENAMED: RefCell<AHashMap<(SharedHistory, u64), SharedHistory>> =
        RefCell::new(AHashMap::new());
}

/// The digest of `history`: the hash the checker fingerprints states with
/// (stateright's, ahash), keyed alike in every process so that a run is
/// repeatable.
fn digest(history: &History) -> u64 {
    ahash::RandomState::with_seeds(1, 2, 3, 4).hash_one(history)
}

impl From<History> for SharedHistory {
    fn from(history: History) -> Self {
        Self {
            digest: digest(&history),
            history: Arc::new(history),
        }
    }
}

impl Deref for SharedHistory {
    type Target = History;

    fn deref(&self) -> &History {
        &self.history
    }
}

impl PartialEq for SharedHistory {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest
            && (Arc::ptr_eq(&self.history, &other.history) || self.history == other.history)
    }
}

impl Eq for SharedHistory {}

impl Hash for SharedHistory {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.digest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_election::{LogSummary, NodeId};

    /// The logs of `nodes` nodes, `n0`'s one entry ahead: renaming `n0`
    /// changes a history.
    fn n0_ahead(nodes: u8) -> impl Iterator<Item = (NodeId, LogSummary)> {
        (0..nodes).map(|id| {
            let log = LogSummary {
                last_log_index: u64::from(id == 0),
                ..LogSummary::default()
            };
            (NodeId(id), log)
        })
    }

    #[test]
    fn an_update_takes_the_digest_again_and_equal_histories_are_equal() {
        let logs = [(NodeId(0), LogSummary::default())];
        let mut shared = SharedHistory::from(History::new(logs));
        let copy = shared.clone();
        assert_eq!(shared, copy);
        shared.update(|history| *history = history.map_ids(|_| NodeId(1)));
        assert_ne!(shared, copy);
        assert_ne!(shared.digest, copy.digest);
        let rebuilt = SharedHistory::from(History::new([(NodeId(1), LogSummary::default())]));
        assert_eq!(shared, rebuilt);
        assert_eq!(shared.digest, rebuilt.digest);
    }

    #[test]
    fn an_update_that_teaches_nothing_keeps_the_history_shared_and_its_copy_serves_the_next() {
        let shared = SharedHistory::from(History::new(n0_ahead(2)));
        let mut unchanged = shared.clone();
        unchanged.update(|_| ());
        assert!(Arc::ptr_eq(&unchanged.history, &shared.history));
        // The next update of the same history starts from the spare copy.
        let swap = |id: NodeId| NodeId(1 - id.0);
        let mut changed = shared.clone();
        changed.update(|history| *history = history.map_ids(swap));
        assert!(!Arc::ptr_eq(&changed.history, &shared.history));
        assert_eq!(changed, SharedHistory::from(shared.map_ids(swap)));
        assert_eq!(*shared, History::new(n0_ahead(2)));
    }

    #[test]
    fn a_renamed_history_is_the_history_renamed_whether_remembered_or_not() {
        let shared = SharedHistory::from(History::new(n0_ahead(3)));
        let swap = [NodeId(1), NodeId(0), NodeId(2)];
        let renamed = |id: NodeId| swap[usize::from(id.0)];
        for _ in 0..2 {
            let expected = SharedHistory::from(shared.map_ids(renamed));
            assert_eq!(shared.renamed(&swap), expected);
            assert_eq!(shared.renamed(&swap).digest, expected.digest);
            assert_ne!(shared.renamed(&swap), shared);
        }
        // The identity and the swap are different renamings.
        let identity = [NodeId(0), NodeId(1), NodeId(2)];
        assert_eq!(shared.renamed(&identity), shared);
    }
}
