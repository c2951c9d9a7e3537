//! Seeded runs of the leader lease under faults: the timed cluster
//! ([`crate::timed`]) with clocks drifting within the configured bound,
//! arbitrary message delays, crashes, restarts, cut links, isolated nodes
//! and leadership transfers, checked after every event by
//! [`raft_election::invariants::LeaseHistory`]: no two nodes hold a lease at
//! the same instant of real time, and leases come in the order of terms.
//!
//! One run is a function of its seed alone, so a failing seed replays. The
//! `lease-runs` command runs many; `cargo test` a few thousand.

use crate::timed::{LeaseReading, PickDelay, PickDuration, TimedCluster};
use raft_election::invariants::Violation;
use raft_election::{ClockDrift, Config, Features, NodeId, Timing};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// How long one run lasts in virtual time.
pub const RUN_LENGTH: Duration = Duration::from_secs(3);

/// What one run did, for the totals a caller prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Voters in the cluster (3 or 5).
    pub nodes: u8,
    /// Times a node got or extended a lease.
    pub lease_grants: u64,
    /// Distinct leaderships (a node winning a term).
    pub leaderships: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Isolations and one-way cuts injected.
    pub cuts: u64,
    /// Leadership transfers asked for.
    pub transfers: u64,
}

/// Runs the seeded scenario `seed` with the drift bound `drift`: clocks run
/// at rates up to `1 + drift` apart, at the bound's very edge half the time.
pub fn run(seed: u64, drift: ClockDrift) -> Result<RunStats, Violation> {
    run_reading(seed, drift, LeaseReading::Correct)
}

/// [`run`], with the drivers reading the lease outputs as `reading` says.
pub(crate) fn run_reading(
    seed: u64,
    drift: ClockDrift,
    reading: LeaseReading,
) -> Result<RunStats, Violation> {
    let rng = Rc::new(RefCell::new(Xoshiro256PlusPlus::seed_from_u64(seed)));
    let mut stats = RunStats {
        nodes: if rng.borrow_mut().random_bool(0.7) {
            3
        } else {
            5
        },
        ..RunStats::default()
    };
    let features = if rng.borrow_mut().random_bool(0.5) {
        Features::default()
    } else {
        Features::ALL
    };
    let configs: Vec<Config> = Config::cluster(stats.nodes, Timing::default())
        .expect("the default timing is valid")
        .into_iter()
        .map(|config| {
            config
                .with_features(features)
                .with_leader_lease(drift)
                .expect("both feature sets guard votes")
        })
        .collect();
    let rates = clock_rates(&mut rng.borrow_mut(), stats.nodes, drift);
    let pick: PickDuration = {
        let rng = Rc::clone(&rng);
        Box::new(move |min, max| {
            // The adversary's timeouts: the shortest allowed often, so a
            // follower campaigns the moment its guard lets it.
            let mut rng = rng.borrow_mut();
            match rng.random_range(0..10) {
                0..3 => min,
                3 => max,
                _ => rng.random_range(min..=max),
            }
        })
    };
    let delays: PickDelay = {
        let rng = Rc::clone(&rng);
        Box::new(move || message_delay(&mut rng.borrow_mut()))
    };
    let mut cluster = TimedCluster::new(configs, Duration::ZERO, pick)
        .with_clock_rates(rates)
        .with_delays(delays)
        .with_lease_reading(reading);
    let ids: Vec<NodeId> = (0..stats.nodes).map(NodeId).collect();
    let fastest = fastest_rate(drift);
    let mut down: Vec<NodeId> = Vec::new();
    // Each turn advances virtual time by at least a millisecond.
    while cluster.now() < RUN_LENGTH {
        // Drawn up front: the cluster draws from the same generator.
        let (slice, fault, a, b) = {
            let mut rng = rng.borrow_mut();
            (
                Duration::from_millis(rng.random_range(1..=150)),
                rng.random_range(0..100),
                ids[rng.random_range(0..ids.len())],
                ids[rng.random_range(0..ids.len())],
            )
        };
        let deadline = cluster.now() + slice;
        cluster.run_until(deadline, |_| false)?;
        match fault {
            // A crash, at most a minority down at once.
            0..10 if down.len() < usize::from(stats.nodes) / 2 && !down.contains(&a) => {
                cluster.crash(a);
                down.push(a);
                stats.crashes += 1;
            }
            10..20 if !down.is_empty() => {
                let id = down.remove(usize::from(b.0) % down.len());
                cluster.restart(id)?;
            }
            20..28 => {
                cluster.isolate(a);
                stats.cuts += 1;
            }
            28..36 if a != b => {
                cluster.cut(a, b);
                stats.cuts += 1;
            }
            36..50 => cluster.heal(),
            // The leader cut off: the case a lease exists for.
            55..65 => {
                if let Some(&(leader, _)) = cluster.leaders().first() {
                    cluster.isolate(leader);
                    stats.cuts += 1;
                }
            }
            50..55 => {
                if let Some(&(leader, _)) = cluster.leaders().first() {
                    cluster.transfer_leadership(leader, b)?;
                    stats.transfers += 1;
                }
            }
            // The worst clocks for the lease: the leader's slowest, every
            // other clock fastest, within the bound.
            65..75 => {
                if let Some(&(leader, _)) = cluster.leaders().first() {
                    for &id in &ids {
                        let rate = if id == leader { 1.0 } else { fastest };
                        cluster.set_clock_rate(id, rate);
                    }
                }
            }
            _ => {}
        }
    }
    stats.lease_grants = cluster.lease_grants();
    stats.leaderships = cluster.leaderships();
    Ok(stats)
}

/// One clock rate per node within the bound: every rate in `[1, 1 + drift]`,
/// so no clock runs more than `1 + drift` times as fast as another. Half the
/// runs put one node at each edge, the adversary's choice.
fn clock_rates(rng: &mut Xoshiro256PlusPlus, nodes: u8, drift: ClockDrift) -> Vec<f64> {
    let fastest = fastest_rate(drift);
    let edges = rng.random_bool(0.5);
    (0..nodes)
        .map(|_| {
            if edges {
                if rng.random_bool(0.5) { 1.0 } else { fastest }
            } else {
                rng.random_range(1.0..=fastest)
            }
        })
        .collect()
}

/// The rate of a clock `drift` faster than one running at rate 1.
fn fastest_rate(drift: ClockDrift) -> f64 {
    1.0 + f64::from(drift.0) / 1_000_000.0
}

/// A one-way delay: mostly a LAN's, sometimes a congested link's, now and
/// then longer than any election timeout. Never zero: a reply never
/// arrives at the instant of its request.
fn message_delay(rng: &mut Xoshiro256PlusPlus) -> Duration {
    let micros = match rng.random_range(0..100) {
        0..70 => rng.random_range(10..=2_000),
        70..95 => rng.random_range(2_000..=60_000),
        _ => rng.random_range(60_000..=400_000),
    };
    Duration::from_micros(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seeds each test runs: enough to catch both planted bugs many times
    /// over, few enough for a debug build.
    const SEEDS: u64 = 1_000;

    /// The first seed of `0..SEEDS` whose run breaks an invariant.
    fn first_violation(reading: LeaseReading) -> Option<(u64, Violation)> {
        (0..SEEDS).find_map(|seed| {
            run_reading(seed, ClockDrift::DEFAULT, reading)
                .err()
                .map(|violation| (seed, violation))
        })
    }

    #[test]
    fn no_two_nodes_ever_hold_a_lease_at_once_under_drift_delays_and_faults() {
        let mut grants = 0;
        for seed in 0..SEEDS {
            match run(seed, ClockDrift::DEFAULT) {
                Ok(stats) => grants += stats.lease_grants,
                Err(violation) => panic!("seed {seed}: {violation}"),
            }
        }
        // Leases were held, so the check had something to check.
        assert!(grants > SEEDS * 10, "only {grants} lease grants");
    }

    #[test]
    fn a_lease_measured_from_the_acknowledgements_instead_of_the_round_start_is_caught() {
        let found = first_violation(LeaseReading::FromAcknowledgement);
        let (seed, violation) = found.expect("the planted bug went unnoticed");
        println!("caught at seed {seed}: {violation}");
    }

    #[test]
    fn a_lease_without_the_drift_factor_is_caught() {
        let found = first_violation(LeaseReading::NoDriftFactor);
        let (seed, violation) = found.expect("the planted bug went unnoticed");
        println!("caught at seed {seed}: {violation}");
    }
}
