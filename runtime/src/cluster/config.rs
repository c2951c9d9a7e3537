//! How to build an in-process cluster: its size, its timing, where election
//! timeouts come from, where hard state is kept, what is recorded and how
//! nodes sharing one process are paced. [`ClusterConfig::validate`] is the
//! one check of all of it.

use super::pacing::Pacing;
use super::storage::StorageKind;
use crate::timeouts::TimeoutSource;
use raft_election::{ClusterId, Config, ConfigError, Features, NodeId, Timing};
use std::collections::BTreeMap;
use std::time::Duration;

/// How much a cluster records about itself. Either way every step is
/// checked against the invariants and the status board is kept, so waiting
/// for a leader and [`super::ClusterHandle::check_safety`] work alike.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Observation {
    /// Also keep the event log (every message and role change) and narrate
    /// with `tracing`: for tests, the demo and people reading along.
    #[default]
    Full,
    /// Only the status board and the safety monitor: no per-message record.
    /// For many clusters in one process, where the log would cost more than
    /// the protocol.
    Monitor,
}

/// Everything [`super::spawn_cluster`] needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// How many voters; ids are `n0..n{nodes-1}`.
    pub nodes: u8,
    /// The cluster's id, recorded in its state files
    /// ([`StorageKind::Directory`]): a directory of another cluster is refused.
    pub cluster_id: ClusterId,
    /// Election timeout range and heartbeat interval, as the core uses them.
    pub timing: Timing,
    /// The election features every node runs.
    pub features: Features,
    /// Where election timeouts come from.
    pub timeouts: TimeoutSource,
    /// Where each node's term and vote are kept across kills and restarts.
    pub storage: StorageKind,
    /// What the cluster records about itself.
    pub observation: Observation,
    /// How nodes that share this process are paced (see [`Pacing`]).
    pub pacing: Pacing,
}

impl Default for ClusterConfig {
    /// Three nodes of cluster 1, the paper's 150–300 ms timeouts, 50 ms heartbeats, the
    /// core's default features, seed 0, hard state in memory, full
    /// observation, emulated independent machines with precise timers.
    fn default() -> Self {
        Self {
            nodes: 3,
            cluster_id: ClusterId(1),
            timing: Timing::default(),
            features: Features::default(),
            timeouts: TimeoutSource::Seeded(0),
            storage: StorageKind::Memory,
            observation: Observation::Full,
            pacing: Pacing::default(),
        }
    }
}

impl ClusterConfig {
    /// A cluster of `nodes` with default timing and random timeouts from `seed`.
    #[must_use]
    pub fn seeded(nodes: u8, seed: u64) -> Self {
        Self {
            nodes,
            timeouts: TimeoutSource::Seeded(seed),
            ..Self::default()
        }
    }

    /// Node ids, ascending.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + use<> {
        (0..self.nodes).map(NodeId)
    }

    /// Checks everything a user can get wrong, once, and returns the core
    /// configuration of every node: a size and timing the core accepts, and
    /// a schedule that covers every node inside the timeout range.
    pub fn validate(&self) -> Result<Vec<Config>, ClusterConfigError> {
        let configs = Config::cluster(self.nodes, self.timing)?
            .into_iter()
            .map(|config| config.with_features(self.features))
            .collect();
        if let TimeoutSource::Schedule(schedule) = &self.timeouts {
            self.validate_schedule(schedule)?;
        }
        Ok(configs)
    }

    fn validate_schedule(
        &self,
        schedule: &BTreeMap<NodeId, Vec<Duration>>,
    ) -> Result<(), ClusterConfigError> {
        if let Some(&node) = schedule.keys().find(|id| id.0 >= self.nodes) {
            return Err(ClusterConfigError::ScheduleForUnknownNode {
                node,
                nodes: self.nodes,
            });
        }
        let (min, max) = (
            self.timing.election_timeout_min,
            self.timing.election_timeout_max,
        );
        for node in self.ids() {
            let timeouts = match schedule.get(&node) {
                None => return Err(ClusterConfigError::ScheduleMissingNode { node }),
                Some(timeouts) if timeouts.is_empty() => {
                    return Err(ClusterConfigError::ScheduleMissingNode { node });
                }
                Some(timeouts) => timeouts,
            };
            // Outside the range the core asked for, a schedule would test a
            // timing the real system never produces.
            if let Some((index, &timeout)) = timeouts
                .iter()
                .enumerate()
                .find(|&(_, t)| *t < min || *t > max)
            {
                return Err(ClusterConfigError::ScheduleOutOfRange {
                    node,
                    index,
                    timeout,
                    min,
                    max,
                });
            }
        }
        Ok(())
    }
}

/// A [`ClusterConfig`] that cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClusterConfigError {
    /// The size or timing breaks one of the core's rules.
    #[error(transparent)]
    Node(#[from] ConfigError),
    /// A schedule entry for a node the cluster does not have.
    #[error("the timeout schedule names {node}, but the cluster has only {nodes} nodes")]
    ScheduleForUnknownNode {
        /// The unknown node.
        node: NodeId,
        /// Cluster size.
        nodes: u8,
    },
    /// A node without scheduled timeouts.
    #[error("the timeout schedule has no timeouts for {node}")]
    ScheduleMissingNode {
        /// The node left out.
        node: NodeId,
    },
    /// A scheduled timeout outside the election timeout range.
    #[error(
        "scheduled timeout #{index} of {node} is {timeout:?}, outside the election \
         timeout range {min:?}..={max:?}"
    )]
    ScheduleOutOfRange {
        /// The node.
        node: NodeId,
        /// Position in its list.
        index: usize,
        /// The offending value.
        timeout: Duration,
        /// Range minimum.
        min: Duration,
        /// Range maximum.
        max: Duration,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ms;
    use raft_election::config::MAX_VOTERS;

    /// Validates the default cluster with `entries`, each a node and its
    /// timeouts in milliseconds, as its timeout schedule.
    fn validate_with_schedule(entries: &[(u8, &[u64])]) -> Result<Vec<Config>, ClusterConfigError> {
        let schedule = entries
            .iter()
            .map(|&(id, list)| (NodeId(id), list.iter().copied().map(ms).collect()))
            .collect();
        let config = ClusterConfig {
            timeouts: TimeoutSource::Schedule(schedule),
            ..ClusterConfig::default()
        };
        config.validate()
    }

    #[test]
    fn the_default_config_is_three_nodes_with_the_papers_timing_and_is_valid() {
        let config = ClusterConfig::default();
        assert_eq!(config.nodes, 3);
        assert_eq!(config.timing.election_timeout_min, ms(150));
        assert_eq!(config.timing.election_timeout_max, ms(300));
        assert_eq!(config.timing.heartbeat_interval, ms(50));
        assert_eq!(config.validate().map(|nodes| nodes.len()), Ok(3));
    }

    #[test]
    fn a_cluster_of_zero_nodes_is_refused() {
        let err = ClusterConfig::seeded(0, 1).validate().unwrap_err();
        assert_eq!(err, ClusterConfigError::Node(ConfigError::NoVoters));
        assert_eq!(err.to_string(), "a cluster needs at least one voter");
    }

    #[test]
    fn a_cluster_larger_than_the_maximum_is_refused() {
        let too_many = u8::try_from(MAX_VOTERS + 1).unwrap();
        let err = ClusterConfig::seeded(too_many, 1).validate().unwrap_err();
        let count = MAX_VOTERS + 1;
        assert_eq!(
            err,
            ClusterConfigError::Node(ConfigError::TooManyVoters { count })
        );
        let largest = u8::try_from(MAX_VOTERS).unwrap();
        let nodes = ClusterConfig::seeded(largest, 1)
            .validate()
            .map(|n| n.len());
        assert_eq!(nodes, Ok(MAX_VOTERS));
    }

    #[test]
    fn timing_the_core_refuses_is_refused_with_the_cores_reason() {
        let mut config = ClusterConfig::default();
        config.timing.heartbeat_interval = ms(100);
        let err = config.validate().unwrap_err();
        assert!(
            matches!(
                err,
                ClusterConfigError::Node(ConfigError::HeartbeatTooSlow { .. })
            ),
            "{err}"
        );
        assert!(err.to_string().starts_with("heartbeat interval"));
    }

    #[test]
    fn a_schedule_covering_every_node_inside_the_range_is_accepted() {
        let validated = validate_with_schedule(&[(0, &[150, 300]), (1, &[200]), (2, &[299])]);
        assert!(validated.is_ok());
    }

    #[test]
    fn a_schedule_that_leaves_out_a_node_is_refused() {
        let validated = validate_with_schedule(&[(0, &[150]), (2, &[200])]);
        assert_eq!(
            validated,
            Err(ClusterConfigError::ScheduleMissingNode { node: NodeId(1) })
        );
    }

    #[test]
    fn a_schedule_with_an_empty_list_is_refused() {
        let validated = validate_with_schedule(&[(0, &[150]), (1, &[]), (2, &[200])]);
        assert_eq!(
            validated,
            Err(ClusterConfigError::ScheduleMissingNode { node: NodeId(1) })
        );
    }

    #[test]
    fn a_schedule_naming_a_node_outside_the_cluster_is_refused() {
        let validated =
            validate_with_schedule(&[(0, &[150]), (1, &[150]), (2, &[150]), (3, &[150])]);
        assert_eq!(
            validated,
            Err(ClusterConfigError::ScheduleForUnknownNode {
                node: NodeId(3),
                nodes: 3
            })
        );
    }

    #[test]
    fn a_scheduled_timeout_outside_the_election_range_is_refused() {
        for outside in [149, 301] {
            let validated =
                validate_with_schedule(&[(0, &[150]), (1, &[200, outside]), (2, &[150])]);
            assert_eq!(
                validated,
                Err(ClusterConfigError::ScheduleOutOfRange {
                    node: NodeId(1),
                    index: 1,
                    timeout: ms(outside),
                    min: ms(150),
                    max: ms(300),
                }),
                "{outside} ms"
            );
        }
    }
}
