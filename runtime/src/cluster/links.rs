//! Which links of an in-process cluster carry messages, and how badly: the
//! fault model of the model checker and the fuzzer (loss, duplication,
//! reordering by delay, cuts in one or both directions, partitions, crashed
//! nodes), as a table the fault controls change and every send consults.

use crate::sync::{Mutex, lock};
use crate::transport::Delivery;
use raft_election::NodeId;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

/// The longest delay a link may add to a message: far beyond any election
/// timeout, and a limit, so a typo cannot park messages for a year.
pub const MAX_LINK_DELAY: Duration = Duration::from_secs(60);

/// The faults of one directed link, `from` to `to`. The default is a
/// faultless link.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFaults {
    /// Every message is lost: a one-way cut.
    pub cut: bool,
    /// Probability, in `0..=1`, that a message is lost.
    pub drop: f64,
    /// Probability, in `0..=1`, that a message is delivered twice.
    pub duplicate: f64,
    /// Each copy is delayed by a duration drawn uniformly from `min..=max`,
    /// so messages overtake one another: a reordering link.
    pub delay: Option<(Duration, Duration)>,
}

impl LinkFaults {
    /// A link that loses everything: a one-way cut.
    #[must_use]
    pub fn cut() -> Self {
        Self {
            cut: true,
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<(), FaultError> {
        for (what, probability) in [("drop", self.drop), ("duplicate", self.duplicate)] {
            if !(0.0..=1.0).contains(&probability) {
                return Err(FaultError::BadProbability { what, probability });
            }
        }
        if let Some((min, max)) = self.delay {
            if min > max || max > MAX_LINK_DELAY {
                return Err(FaultError::BadDelay { min, max });
            }
        }
        Ok(())
    }

    fn is_faultless(&self) -> bool {
        *self == Self::default()
    }
}

impl fmt::Display for LinkFaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cut {
            return f.write_str("cut");
        }
        let mut parts = Vec::new();
        if self.drop > 0.0 {
            parts.push(format!("drop {:.0}%", self.drop * 100.0));
        }
        if self.duplicate > 0.0 {
            parts.push(format!("duplicate {:.0}%", self.duplicate * 100.0));
        }
        if let Some((min, max)) = self.delay {
            parts.push(format!("delay {min:?}..={max:?}"));
        }
        if parts.is_empty() {
            f.write_str("open")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// A fault control that does not apply.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FaultError {
    /// The node is not a member of the cluster.
    #[error("{id} is not a member of this cluster")]
    UnknownNode {
        /// The node.
        id: NodeId,
    },
    /// Crashing a node that is already down.
    #[error("{id} is already down")]
    AlreadyDown {
        /// The node.
        id: NodeId,
    },
    /// Restarting a node that is running.
    #[error("{id} is already running")]
    AlreadyUp {
        /// The node.
        id: NodeId,
    },
    /// A node whose queue of local requests is full.
    #[error("{id} cannot take another request now")]
    Busy {
        /// The node.
        id: NodeId,
    },
    /// A node listed in two partition groups.
    #[error("{id} is in two partition groups")]
    InTwoGroups {
        /// The node.
        id: NodeId,
    },
    /// A link from a node to itself.
    #[error("a link needs two different nodes, not {id} and {id}")]
    SelfLink {
        /// The node.
        id: NodeId,
    },
    /// A probability outside `0..=1`.
    #[error("the {what} probability must be between 0 and 1, not {probability}")]
    BadProbability {
        /// Which probability.
        what: &'static str,
        /// The value given.
        probability: f64,
    },
    /// A delay range that is empty or longer than [`MAX_LINK_DELAY`].
    #[error(
        "a link delay must be a range min..=max of at most {MAX_LINK_DELAY:?}, not {min:?}..={max:?}"
    )]
    BadDelay {
        /// Requested minimum.
        min: Duration,
        /// Requested maximum.
        max: Duration,
    },
}

/// A snapshot of the link table, for tests and people to read.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkTable {
    nodes: u8,
    /// Crashed nodes: nothing reaches or leaves them.
    pub down: BTreeSet<NodeId>,
    /// Disconnected nodes: running, but cut off from everyone.
    pub disconnected: BTreeSet<NodeId>,
    /// The partition, if any: messages pass only inside a group.
    pub partition: Option<Vec<BTreeSet<NodeId>>>,
    /// Directed links with faults; every other link is faultless.
    pub faults: BTreeMap<(NodeId, NodeId), LinkFaults>,
}

impl LinkTable {
    /// Whether a message from `from` to `to` can get through at all (a
    /// lossy link can; a cut, a partition, a disconnected or crashed end cannot).
    #[must_use]
    pub fn is_open(&self, from: NodeId, to: NodeId) -> bool {
        let apart = self
            .partition
            .as_ref()
            .is_some_and(|groups| !groups.iter().any(|g| g.contains(&from) && g.contains(&to)));
        let cut = self.faults.get(&(from, to)).is_some_and(|f| f.cut);
        let off = |id| self.down.contains(&id) || self.disconnected.contains(&id);
        from != to && !apart && !cut && !off(from) && !off(to)
    }
}

impl fmt::Display for LinkTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = |set: &BTreeSet<NodeId>| {
            let ids: Vec<String> = set.iter().map(NodeId::to_string).collect();
            format!("{{{}}}", ids.join(","))
        };
        let mut parts = Vec::new();
        if !self.down.is_empty() {
            parts.push(format!("down {}", ids(&self.down)));
        }
        if !self.disconnected.is_empty() {
            parts.push(format!("disconnected {}", ids(&self.disconnected)));
        }
        if let Some(groups) = &self.partition {
            let sides: Vec<String> = groups.iter().map(ids).collect();
            parts.push(format!("partition {}", sides.join(" | ")));
        }
        for ((from, to), faults) in &self.faults {
            parts.push(format!("{from}->{to} {faults}"));
        }
        if parts.is_empty() {
            write!(f, "{} nodes, every link open", self.nodes)
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

/// Where a message goes: lost, or delivered once or twice, each copy after
/// its delay (zero: at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Lost(Delivery),
    Deliver {
        delay: Duration,
        duplicate: Option<Duration>,
    },
}

/// The link table, shared by every sender and the fault controls. One mutex
/// keeps each change atomic: once a control returns, no later
/// [`Links::route`] sees the old table.
#[derive(Debug)]
pub(crate) struct Links {
    nodes: u8,
    state: Mutex<LinkState>,
}

#[derive(Debug)]
struct LinkState {
    down: BTreeSet<NodeId>,
    disconnected: BTreeSet<NodeId>,
    /// Side of each node while partitioned. A node no group lists is alone.
    sides: Option<BTreeMap<NodeId, usize>>,
    groups: Vec<BTreeSet<NodeId>>,
    faults: BTreeMap<(NodeId, NodeId), LinkFaults>,
    /// Drawn only on links with faults, so a faultless cluster replays
    /// whatever its sends interleave.
    rng: Xoshiro256PlusPlus,
}

impl Links {
    /// Every link open and faultless, every node up; probabilistic faults
    /// draw from a generator seeded with `seed`.
    pub(crate) fn new(nodes: u8, seed: u64) -> Self {
        Self {
            nodes,
            state: Mutex::new(LinkState {
                down: BTreeSet::new(),
                disconnected: BTreeSet::new(),
                sides: None,
                groups: Vec::new(),
                faults: BTreeMap::new(),
                rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            }),
        }
    }

    fn check_member(&self, id: NodeId) -> Result<(), FaultError> {
        if id.0 < self.nodes {
            Ok(())
        } else {
            Err(FaultError::UnknownNode { id })
        }
    }

    fn check_link(&self, from: NodeId, to: NodeId) -> Result<(), FaultError> {
        self.check_member(from)?;
        self.check_member(to)?;
        if from == to {
            return Err(FaultError::SelfLink { id: from });
        }
        Ok(())
    }

    /// What happens to a message from `from` to `to` right now.
    pub(crate) fn route(&self, from: NodeId, to: NodeId) -> Route {
        let mut state = lock(&self.state);
        if state.down.contains(&from) || state.down.contains(&to) {
            return Route::Lost(Delivery::Down);
        }
        if state.disconnected.contains(&from) || state.disconnected.contains(&to) {
            return Route::Lost(Delivery::Cut);
        }
        if let Some(sides) = &state.sides {
            let (a, b) = (sides.get(&from), sides.get(&to));
            if a.is_none() || a != b {
                return Route::Lost(Delivery::Cut);
            }
        }
        let Some(&faults) = state.faults.get(&(from, to)) else {
            return Route::Deliver {
                delay: Duration::ZERO,
                duplicate: None,
            };
        };
        if faults.cut {
            return Route::Lost(Delivery::Cut);
        }
        let rng = &mut state.rng;
        if faults.drop > 0.0 && rng.random_bool(faults.drop) {
            return Route::Lost(Delivery::Dropped);
        }
        let copied = faults.duplicate > 0.0 && rng.random_bool(faults.duplicate);
        let mut delay = || match faults.delay {
            Some((min, max)) if min < max => rng.random_range(min..=max),
            Some((min, _)) => min,
            None => Duration::ZERO,
        };
        Route::Deliver {
            delay: delay(),
            duplicate: copied.then(delay),
        }
    }

    /// Splits the cluster into `groups`: messages pass only inside a group.
    /// A node no group lists is cut off from everyone.
    pub(crate) fn partition(&self, groups: &[BTreeSet<NodeId>]) -> Result<(), FaultError> {
        let mut sides = BTreeMap::new();
        for (side, group) in groups.iter().enumerate() {
            for &id in group {
                self.check_member(id)?;
                if sides.insert(id, side).is_some() {
                    return Err(FaultError::InTwoGroups { id });
                }
            }
        }
        let mut state = lock(&self.state);
        state.sides = Some(sides);
        state.groups = groups.to_vec();
        Ok(())
    }

    /// Sets the faults of the directed link `from` to `to`.
    pub(crate) fn set(
        &self,
        from: NodeId,
        to: NodeId,
        faults: LinkFaults,
    ) -> Result<(), FaultError> {
        self.check_link(from, to)?;
        faults.validate()?;
        let mut state = lock(&self.state);
        if faults.is_faultless() {
            state.faults.remove(&(from, to));
        } else {
            state.faults.insert((from, to), faults);
        }
        Ok(())
    }

    /// Sets the faults of every directed link between two different nodes.
    pub(crate) fn set_all(&self, faults: LinkFaults) -> Result<(), FaultError> {
        faults.validate()?;
        let ids = (0..self.nodes).map(NodeId);
        let pairs = ids.clone().flat_map(|a| ids.clone().map(move |b| (a, b)));
        let mut state = lock(&self.state);
        state.faults.clear();
        if !faults.is_faultless() {
            state
                .faults
                .extend(pairs.filter(|(a, b)| a != b).map(|pair| (pair, faults)));
        }
        Ok(())
    }

    /// Cuts `id` off from everyone, or reconnects it, leaving the rest of
    /// the table as it is.
    pub(crate) fn set_connected(&self, id: NodeId, connected: bool) -> Result<(), FaultError> {
        self.check_member(id)?;
        let mut state = lock(&self.state);
        if connected {
            state.disconnected.remove(&id);
        } else {
            state.disconnected.insert(id);
        }
        Ok(())
    }

    /// Every link open and faultless again, every node connected (crashed
    /// nodes stay down).
    pub(crate) fn heal(&self) {
        let mut state = lock(&self.state);
        state.sides = None;
        state.groups.clear();
        state.faults.clear();
        state.disconnected.clear();
    }

    /// Marks `id` down: from now on nothing reaches it or leaves it.
    pub(crate) fn mark_down(&self, id: NodeId) -> Result<(), FaultError> {
        self.check_member(id)?;
        if lock(&self.state).down.insert(id) {
            Ok(())
        } else {
            Err(FaultError::AlreadyDown { id })
        }
    }

    /// Marks `id` up again.
    pub(crate) fn mark_up(&self, id: NodeId) -> Result<(), FaultError> {
        self.check_member(id)?;
        if lock(&self.state).down.remove(&id) {
            Ok(())
        } else {
            Err(FaultError::AlreadyUp { id })
        }
    }

    /// Whether `id` is a member and up.
    pub(crate) fn is_up(&self, id: NodeId) -> bool {
        id.0 < self.nodes && !lock(&self.state).down.contains(&id)
    }

    /// A copy of the table.
    pub(crate) fn table(&self) -> LinkTable {
        let state = lock(&self.state);
        LinkTable {
            nodes: self.nodes,
            down: state.down.clone(),
            disconnected: state.disconnected.clone(),
            partition: state.sides.is_some().then(|| state.groups.clone()),
            faults: state.faults.clone(),
        }
    }
}

// Under `--cfg loom` the mutex is loom's, usable only inside `loom::model`.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn set(ids: &[u8]) -> BTreeSet<NodeId> {
        ids.iter().copied().map(NodeId).collect()
    }

    fn fate(links: &Links, from: u8, to: u8) -> Option<Delivery> {
        match links.route(NodeId(from), NodeId(to)) {
            Route::Lost(delivery) => Some(delivery),
            Route::Deliver { .. } => None,
        }
    }

    #[test]
    fn a_partition_passes_messages_inside_a_group_only() {
        let links = Links::new(5, 0);
        links.partition(&[set(&[0, 1]), set(&[2, 3])]).unwrap();
        assert_eq!(fate(&links, 0, 1), None);
        assert_eq!(fate(&links, 2, 3), None);
        assert_eq!(fate(&links, 1, 2), Some(Delivery::Cut));
        // n4 is in no group: alone.
        assert_eq!(fate(&links, 4, 0), Some(Delivery::Cut));
        assert_eq!(fate(&links, 0, 4), Some(Delivery::Cut));
        let table = links.table();
        assert!(table.is_open(NodeId(0), NodeId(1)) && !table.is_open(NodeId(1), NodeId(2)));
        links.heal();
        assert_eq!(fate(&links, 1, 2), None);
    }

    #[test]
    fn a_one_way_cut_loses_one_direction_only() {
        let links = Links::new(3, 0);
        links.set(NodeId(0), NodeId(1), LinkFaults::cut()).unwrap();
        assert_eq!(fate(&links, 0, 1), Some(Delivery::Cut));
        assert_eq!(fate(&links, 1, 0), None);
        let table = links.table();
        assert!(!table.is_open(NodeId(0), NodeId(1)));
        assert!(table.is_open(NodeId(1), NodeId(0)));
        assert_eq!(table.to_string(), "n0->n1 cut");
    }

    #[test]
    fn a_disconnected_node_is_cut_off_until_connected_and_a_crashed_one_is_down() {
        let links = Links::new(3, 0);
        links.set_connected(NodeId(2), false).unwrap();
        assert_eq!(fate(&links, 0, 2), Some(Delivery::Cut));
        assert_eq!(fate(&links, 2, 1), Some(Delivery::Cut));
        links.set_connected(NodeId(2), true).unwrap();
        assert_eq!(fate(&links, 0, 2), None);
        links.mark_down(NodeId(1)).unwrap();
        assert_eq!(fate(&links, 0, 1), Some(Delivery::Down));
        assert_eq!(
            links.mark_down(NodeId(1)),
            Err(FaultError::AlreadyDown { id: NodeId(1) })
        );
        links.mark_up(NodeId(1)).unwrap();
        assert_eq!(fate(&links, 0, 1), None);
    }

    #[test]
    fn a_lossy_link_drops_about_its_share_and_a_duplicating_one_copies_everything() {
        let links = Links::new(2, 7);
        let lossy = LinkFaults {
            drop: 0.25,
            ..LinkFaults::default()
        };
        links.set(NodeId(0), NodeId(1), lossy).unwrap();
        let dropped = (0..4_000)
            .filter(|_| fate(&links, 0, 1) == Some(Delivery::Dropped))
            .count();
        assert!((800..1_200).contains(&dropped), "{dropped} of 4000 dropped");
        let copying = LinkFaults {
            duplicate: 1.0,
            delay: Some((Duration::from_millis(1), Duration::from_millis(9))),
            ..LinkFaults::default()
        };
        links.set(NodeId(0), NodeId(1), copying).unwrap();
        for _ in 0..100 {
            let Route::Deliver { delay, duplicate } = links.route(NodeId(0), NodeId(1)) else {
                panic!("a faultless-but-copying link lost a message");
            };
            let second = duplicate.expect("every message duplicated");
            for d in [delay, second] {
                assert!((Duration::from_millis(1)..=Duration::from_millis(9)).contains(&d));
            }
        }
    }

    #[test]
    fn impossible_faults_and_unknown_nodes_are_refused_with_a_reason() {
        let links = Links::new(3, 0);
        let bad = LinkFaults {
            drop: 1.5,
            ..LinkFaults::default()
        };
        let err = links.set(NodeId(0), NodeId(1), bad).unwrap_err();
        assert!(err.to_string().contains("between 0 and 1"), "{err}");
        let slow = LinkFaults {
            delay: Some((Duration::ZERO, Duration::MAX)),
            ..LinkFaults::default()
        };
        assert!(matches!(
            links.set_all(slow),
            Err(FaultError::BadDelay { .. })
        ));
        assert_eq!(
            links.set(NodeId(1), NodeId(1), LinkFaults::cut()),
            Err(FaultError::SelfLink { id: NodeId(1) })
        );
        assert_eq!(
            links.mark_down(NodeId(3)),
            Err(FaultError::UnknownNode { id: NodeId(3) })
        );
        assert_eq!(
            links.partition(&[set(&[0, 1]), set(&[1, 2])]),
            Err(FaultError::InTwoGroups { id: NodeId(1) })
        );
        assert_eq!(
            links.partition(&[set(&[0, 7])]),
            Err(FaultError::UnknownNode { id: NodeId(7) })
        );
        assert_eq!(links.table().to_string(), "3 nodes, every link open");
    }
}
