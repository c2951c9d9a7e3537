//! Where a node's election timeouts come from. The core only states the
//! allowed range (`SetTimer { min, max }`); a [`TimeoutPicker`] decides the
//! value, seeded or from a fixed schedule, so every run can be replayed.

use raft_election::NodeId;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;
use std::time::Duration;

/// Where the election timeouts of a cluster's nodes come from.
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

/// Picks election timeout durations for one node.
#[derive(Debug)]
pub struct TimeoutPicker(Picker);

#[derive(Debug)]
enum Picker {
    // Not `StdRng`: timeouts need no cryptographic strength, and a follower
    // draws one on every heartbeat. ChaCha's 300-byte state behind a box cost
    // 5% of the scale benchmark's CPU in cache misses; this is 32 bytes inline.
    Seeded(Xoshiro256PlusPlus),
    Schedule {
        timeouts: Vec<Duration>,
        next: usize,
    },
}

impl TimeoutPicker {
    /// The picker of node `id` in its `incarnation`-th run (0 at first start).
    #[must_use]
    pub fn new(source: &TimeoutSource, id: NodeId, incarnation: u32) -> Self {
        Self(match source {
            TimeoutSource::Seeded(seed) => {
                // One stream per node and incarnation. The odd multipliers (from
                // SplitMix64) keep streams of nearby seeds and ids apart.
                let stream = u64::from(id.0).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    ^ u64::from(incarnation).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                Picker::Seeded(Xoshiro256PlusPlus::seed_from_u64(seed ^ stream))
            }
            TimeoutSource::Schedule(schedule) => Picker::Schedule {
                timeouts: schedule.get(&id).cloned().unwrap_or_default(),
                next: 0,
            },
        })
    }

    /// A duration in `min..=max`. Scheduled values are clamped into the range
    /// the core asked for; validation already refused any outside it.
    pub fn pick(&mut self, min: Duration, max: Duration) -> Duration {
        if min >= max {
            return min;
        }
        match &mut self.0 {
            Picker::Seeded(rng) => rng.random_range(min..=max),
            Picker::Schedule { timeouts, next } => {
                let index = (*next).min(timeouts.len().saturating_sub(1));
                *next = next.saturating_add(1);
                timeouts.get(index).copied().unwrap_or(min).clamp(min, max)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ms;

    #[test]
    fn a_schedule_is_used_in_order_then_repeats_its_last_value() {
        let schedule = BTreeMap::from([(NodeId(1), vec![ms(150), ms(220)])]);
        let mut picker = TimeoutPicker::new(&TimeoutSource::Schedule(schedule), NodeId(1), 0);
        let picked: Vec<Duration> = (0..4).map(|_| picker.pick(ms(150), ms(300))).collect();
        assert_eq!(picked, [ms(150), ms(220), ms(220), ms(220)]);
    }

    #[test]
    fn seeded_timeouts_stay_in_range_and_replay_for_the_same_seed() {
        let source = TimeoutSource::Seeded(7);
        let run = |id, incarnation| {
            let mut picker = TimeoutPicker::new(&source, NodeId(id), incarnation);
            (0..100)
                .map(|_| picker.pick(ms(150), ms(300)))
                .collect::<Vec<_>>()
        };
        let (first, again, other, reborn) = (run(0, 0), run(0, 0), run(1, 0), run(0, 1));
        assert_eq!(first, again);
        assert_ne!(first, other, "nodes must not share a stream");
        assert_ne!(
            first, reborn,
            "a restarted node must not repeat its timeouts"
        );
        assert!(first.iter().all(|d| (ms(150)..=ms(300)).contains(d)));
    }
}
