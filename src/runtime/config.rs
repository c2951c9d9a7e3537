//! How to build a cluster: its size, its timing, where election timeouts
//! come from and where hard state is kept.

use super::storage::StorageKind;
use crate::config::{ConfigError, MAX_VOTERS, Timing};
use crate::types::NodeId;
use std::collections::BTreeMap;
use std::time::Duration;

/// Where a node's election timeouts come from. The core only states the
/// allowed range (`SetTimer { min, max }`); this decides the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeoutSource {
    /// Uniformly random in the core's range, from one Xoshiro256++ generator
    /// per node and incarnation, seeded from this value, the node's id and how
    /// often it was restarted: the same seed replays the same run, and a
    /// restarted node does not repeat the timeouts of its previous life.
    Seeded(u64),
    /// A fixed sequence of election timeouts per node, used in order; once a
    /// node's list runs out its last value repeats. A restarted node starts
    /// its list over. This is how a test forces a split vote (§5.2).
    Schedule(BTreeMap<NodeId, Vec<Duration>>),
}

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
    /// Election timeout range and heartbeat interval, as the core uses them.
    pub timing: Timing,
    /// Where election timeouts come from.
    pub timeouts: TimeoutSource,
    /// Where each node's term and vote are kept across kills and restarts.
    pub storage: StorageKind,
    /// What the cluster records about itself.
    pub observation: Observation,
    /// Meet election deadlines to the microsecond rather than Tokio's
    /// millisecond: each node watches the clock for the last 2 ms before its
    /// election deadline, a busy core for that long per election timeout
    /// (nothing while heartbeats keep arriving, as long as they come more
    /// often than the minimum election timeout less 2 ms). On for a few clusters (tests,
    /// the demo, the failover benchmark); off when thousands of clusters
    /// share a process and their initial elections would spin together.
    pub precise_timers: bool,
}

impl Default for ClusterConfig {
    /// Three nodes, the paper's 150–300 ms timeouts, 50 ms heartbeats, seed 0,
    /// hard state in memory, full observation, precise timers.
    fn default() -> Self {
        Self {
            nodes: 3,
            timing: Timing::default(),
            timeouts: TimeoutSource::Seeded(0),
            storage: StorageKind::Memory,
            observation: Observation::Full,
            precise_timers: true,
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

    /// Checks that this configuration can run: a sensible size, timing the
    /// core accepts, and a schedule that covers every node inside the range.
    pub fn validate(&self) -> Result<(), ClusterConfigError> {
        if self.nodes == 0 {
            return Err(ClusterConfigError::NoNodes);
        }
        if usize::from(self.nodes) > MAX_VOTERS {
            return Err(ClusterConfigError::TooManyNodes { nodes: self.nodes });
        }
        self.timing.validate()?;
        if let TimeoutSource::Schedule(schedule) = &self.timeouts {
            self.validate_schedule(schedule)?;
        }
        Ok(())
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
    /// Zero nodes.
    #[error("a cluster needs at least one node")]
    NoNodes,
    /// More nodes than [`MAX_VOTERS`].
    #[error("{nodes} nodes is more than the supported maximum of {MAX_VOTERS}")]
    TooManyNodes {
        /// How many were asked for.
        nodes: u8,
    },
    /// The timing breaks one of the core's rules.
    #[error("bad timing: {0}")]
    Timing(#[from] ConfigError),
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

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn schedule(entries: &[(u8, &[u64])]) -> TimeoutSource {
        TimeoutSource::Schedule(
            entries
                .iter()
                .map(|&(id, list)| (NodeId(id), list.iter().copied().map(ms).collect()))
                .collect(),
        )
    }

    #[test]
    fn the_default_config_is_three_nodes_with_the_papers_timing_and_is_valid() {
        let config = ClusterConfig::default();
        assert_eq!(config.nodes, 3);
        assert_eq!(config.timing.election_timeout_min, ms(150));
        assert_eq!(config.timing.election_timeout_max, ms(300));
        assert_eq!(config.timing.heartbeat_interval, ms(50));
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn a_cluster_of_zero_nodes_is_refused() {
        let err = ClusterConfig::seeded(0, 1).validate().unwrap_err();
        assert_eq!(err, ClusterConfigError::NoNodes);
        assert_eq!(err.to_string(), "a cluster needs at least one node");
    }

    #[test]
    fn a_cluster_larger_than_the_maximum_is_refused() {
        let too_many = u8::try_from(MAX_VOTERS + 1).unwrap();
        let err = ClusterConfig::seeded(too_many, 1).validate().unwrap_err();
        assert_eq!(err, ClusterConfigError::TooManyNodes { nodes: too_many });
        let largest = u8::try_from(MAX_VOTERS).unwrap();
        assert_eq!(ClusterConfig::seeded(largest, 1).validate(), Ok(()));
    }

    #[test]
    fn timing_the_core_refuses_is_refused_with_the_cores_reason() {
        let mut config = ClusterConfig::default();
        config.timing.heartbeat_interval = ms(100);
        let err = config.validate().unwrap_err();
        assert!(
            matches!(
                err,
                ClusterConfigError::Timing(ConfigError::HeartbeatTooSlow { .. })
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("bad timing: heartbeat interval")
        );
    }

    #[test]
    fn a_schedule_covering_every_node_inside_the_range_is_accepted() {
        let config = ClusterConfig {
            timeouts: schedule(&[(0, &[150, 300]), (1, &[200]), (2, &[299])]),
            ..ClusterConfig::default()
        };
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn a_schedule_that_leaves_out_a_node_is_refused() {
        let config = ClusterConfig {
            timeouts: schedule(&[(0, &[150]), (2, &[200])]),
            ..ClusterConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err(ClusterConfigError::ScheduleMissingNode { node: NodeId(1) })
        );
    }

    #[test]
    fn a_schedule_with_an_empty_list_is_refused() {
        let config = ClusterConfig {
            timeouts: schedule(&[(0, &[150]), (1, &[]), (2, &[200])]),
            ..ClusterConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err(ClusterConfigError::ScheduleMissingNode { node: NodeId(1) })
        );
    }

    #[test]
    fn a_schedule_naming_a_node_outside_the_cluster_is_refused() {
        let config = ClusterConfig {
            timeouts: schedule(&[(0, &[150]), (1, &[150]), (2, &[150]), (3, &[150])]),
            ..ClusterConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err(ClusterConfigError::ScheduleForUnknownNode {
                node: NodeId(3),
                nodes: 3
            })
        );
    }

    #[test]
    fn a_scheduled_timeout_outside_the_election_range_is_refused() {
        for outside in [149, 301] {
            let config = ClusterConfig {
                timeouts: schedule(&[(0, &[150]), (1, &[200, outside]), (2, &[150])]),
                ..ClusterConfig::default()
            };
            assert_eq!(
                config.validate(),
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
