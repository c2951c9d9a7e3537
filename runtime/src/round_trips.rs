//! Round trips of a leader's heartbeats: the message round trip between two
//! nodes, measured at the leader, for operators and the benchmarks.

use std::collections::VecDeque;
use std::time::Duration;

/// How many round trips [`RoundTrips`] keeps (the most recent).
pub const ROUND_TRIP_SAMPLES: usize = 4_096;

/// Round trips of a leader's heartbeats (AppendEntries sent, its response
/// received): the message round trip between two nodes, both steps included.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoundTrips {
    samples: VecDeque<Duration>,
}

impl RoundTrips {
    pub(crate) fn record(&mut self, sample: Duration) {
        if self.samples.len() >= ROUND_TRIP_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// The most recent samples (at most [`ROUND_TRIP_SAMPLES`]), oldest first.
    pub fn samples(&self) -> impl Iterator<Item = Duration> + '_ {
        self.samples.iter().copied()
    }

    /// The `permille`-th of the samples by nearest rank (500 the median),
    /// or `None` without samples.
    #[must_use]
    pub fn percentile(&self, permille: usize) -> Option<Duration> {
        let mut sorted: Vec<Duration> = self.samples.iter().copied().collect();
        sorted.sort_unstable();
        let last = sorted.len().checked_sub(1)?;
        sorted.get(last * permille.min(1000) / 1000).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_over_the_most_recent_samples() {
        let mut round_trips = RoundTrips::default();
        assert_eq!(round_trips.percentile(500), None);
        for micros in 1..=100 {
            round_trips.record(Duration::from_micros(micros));
        }
        assert_eq!(round_trips.percentile(0), Some(Duration::from_micros(1)));
        assert_eq!(round_trips.percentile(500), Some(Duration::from_micros(50)));
        assert_eq!(round_trips.percentile(990), Some(Duration::from_micros(99)));
        assert_eq!(
            round_trips.percentile(1000),
            Some(Duration::from_micros(100))
        );
        for _ in 0..ROUND_TRIP_SAMPLES {
            round_trips.record(Duration::from_micros(7));
        }
        assert_eq!(round_trips.samples().count(), ROUND_TRIP_SAMPLES);
        assert_eq!(
            round_trips.percentile(1000),
            Some(Duration::from_micros(7)),
            "the old ones are gone"
        );
    }
}
