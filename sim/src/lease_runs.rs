//! Seeded runs of the leader lease under faults: the timed cluster
//! ([`crate::timed`]) with clocks drifting within the configured bound,
//! arbitrary message delays, crashes, restarts, cut links, isolated nodes
//! and leadership transfers, checked after every event by
//! [`crate::lease_watch`]: no two nodes hold a lease at the same instant of
//! real time and leases come in the order of terms; every leadership holds
//! a lease once a majority acknowledged it in time; no lease begins before
//! an earlier term's lease ran out, and the closest two came is kept.
//!
//! Half the runs are the adversary's: the leader's clock slowest and every
//! other one fastest, at the drift bound, from each election on; short,
//! even delays; the shortest election timeouts; and the leader cut off the
//! moment its lease grows, so its followers elect the next leader as soon
//! as their vote guards allow. That is where the two leases come closest,
//! so a bug that lengthens the lease shows in these runs first.
//!
//! One run is a function of its seed alone, so a failing seed replays. The
//! `lease-runs` command runs many; `cargo test` a thousand.

use crate::lease_watch::LeaseStats;
use crate::timed::{LeaseReading, PickDelay, PickDuration, TimedCluster, TimedError};
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
    /// Distinct leaderships (a node winning a term).
    pub leaderships: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Isolations and one-way cuts injected.
    pub cuts: u64,
    /// Leadership transfers asked for.
    pub transfers: u64,
    /// Whether this was one of the adversary's runs (see the module doc).
    pub adversarial: bool,
    /// What the lease checks saw.
    pub leases: LeaseStats,
}

/// Runs the seeded scenario `seed` with the drift bound `drift`: clocks run
/// at rates up to `1 + drift` apart, at the bound's very edge half the time,
/// and in the worst direction in the adversary's runs.
pub fn run(seed: u64, drift: ClockDrift) -> Result<RunStats, TimedError> {
    run_reading(seed, drift, LeaseReading::Correct)
}

/// [`run`], with the drivers reading the lease outputs as `reading` says.
pub(crate) fn run_reading(
    seed: u64,
    drift: ClockDrift,
    reading: LeaseReading,
) -> Result<RunStats, TimedError> {
    let rng = Rc::new(RefCell::new(Xoshiro256PlusPlus::seed_from_u64(seed)));
    let (nodes, features, adversarial) = {
        let mut rng = rng.borrow_mut();
        let nodes = if rng.random_bool(0.7) { 3 } else { 5 };
        let features = if rng.random_bool(0.5) {
            Features::default()
        } else {
            Features::ALL
        };
        (nodes, features, rng.random_bool(0.5))
    };
    let mut stats = RunStats {
        nodes,
        adversarial,
        ..RunStats::default()
    };
    let configs: Vec<Config> = Config::cluster(nodes, Timing::default())
        .expect("the default timing is valid")
        .into_iter()
        .map(|config| {
            config
                .with_features(features)
                .with_leader_lease(drift)
                .expect("both feature sets guard votes")
        })
        .collect();
    let mut cluster = if adversarial {
        adversarial_cluster(configs, &rng, drift)
    } else {
        random_cluster(configs, &rng, drift)
    }
    .with_lease_reading(reading);
    let mut down: Vec<NodeId> = Vec::new();
    // Each turn advances virtual time by at least a millisecond.
    while cluster.now() < RUN_LENGTH {
        if adversarial {
            adversarial_turn(&mut cluster, &rng, &mut stats)?;
        } else {
            random_turn(&mut cluster, &rng, &mut stats, &mut down, drift)?;
        }
    }
    stats.leaderships = cluster.leaderships();
    stats.leases = cluster.lease_stats();
    Ok(stats)
}

/// The cluster of a random run: clocks within the bound, at its edges half
/// the time; timeouts at the shortest often; a LAN's delays mostly.
fn random_cluster(
    configs: Vec<Config>,
    rng: &Rc<RefCell<Xoshiro256PlusPlus>>,
    drift: ClockDrift,
) -> TimedCluster {
    let nodes = u8::try_from(configs.len()).unwrap_or(u8::MAX);
    let rates = clock_rates(&mut rng.borrow_mut(), nodes, drift);
    let pick: PickDuration = {
        let rng = Rc::clone(rng);
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
        let rng = Rc::clone(rng);
        Box::new(move || message_delay(&mut rng.borrow_mut()))
    };
    TimedCluster::new(configs, Duration::ZERO, pick)
        .with_clock_rates(rates)
        .with_delays(delays)
}

/// The cluster of an adversary's run: the leader's clock slowest and every
/// other one fastest, at the bound, from each election on; the shortest
/// timeouts mostly; short, even delays, so the followers' guards end at
/// about the same instant and the next election takes no longer than it
/// must.
fn adversarial_cluster(
    configs: Vec<Config>,
    rng: &Rc<RefCell<Xoshiro256PlusPlus>>,
    drift: ClockDrift,
) -> TimedCluster {
    let pick: PickDuration = {
        let rng = Rc::clone(rng);
        Box::new(move |min, max| {
            let mut rng = rng.borrow_mut();
            if rng.random_bool(0.8) {
                min
            } else {
                rng.random_range(min..=max)
            }
        })
    };
    let delays: PickDelay = {
        let rng = Rc::clone(rng);
        Box::new(move || Duration::from_micros(rng.borrow_mut().random_range(10..=300)))
    };
    TimedCluster::new(configs, Duration::ZERO, pick)
        .with_delays(delays)
        .with_adversarial_clocks(fastest_rate(drift))
}

/// One turn of a random run: a slice of up to 150 ms, then maybe a fault.
fn random_turn(
    cluster: &mut TimedCluster,
    rng: &Rc<RefCell<Xoshiro256PlusPlus>>,
    stats: &mut RunStats,
    down: &mut Vec<NodeId>,
    drift: ClockDrift,
) -> Result<(), TimedError> {
    let ids: Vec<NodeId> = (0..stats.nodes).map(NodeId).collect();
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
    let leader = cluster.leaders().first().map(|&(leader, _)| leader);
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
            if let Some(leader) = leader {
                cluster.isolate(leader);
                stats.cuts += 1;
            }
        }
        50..55 => {
            if let Some(leader) = leader {
                cluster.transfer_leadership(leader, b)?;
                stats.transfers += 1;
            }
        }
        // The worst clocks for the lease: the leader's slowest, every
        // other clock fastest, within the bound.
        65..75 => {
            if let Some(leader) = leader {
                for &id in &ids {
                    let rate = if id == leader {
                        1.0
                    } else {
                        fastest_rate(drift)
                    };
                    cluster.set_clock_rate(id, rate);
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// One turn of the adversary: run until a lease grows (at most 400 ms),
/// then at once cut its holder off (most often), crash it, or have it hand
/// over to another node; let the others elect a successor (at most 400
/// ms), and heal.
fn adversarial_turn(
    cluster: &mut TimedCluster,
    rng: &Rc<RefCell<Xoshiro256PlusPlus>>,
    stats: &mut RunStats,
) -> Result<(), TimedError> {
    let grants = cluster.lease_grants();
    let deadline = cluster.now() + Duration::from_millis(400);
    cluster.run_until(deadline, |c| c.lease_grants() > grants)?;
    let nodes = stats.nodes;
    let Some(holder) = (0..nodes).map(NodeId).find(|&id| cluster.holds_lease(id)) else {
        return Ok(());
    };
    let (fault, other) = {
        let mut rng = rng.borrow_mut();
        let other = (holder.0 + rng.random_range(1..nodes)) % nodes;
        (rng.random_range(0..10), NodeId(other))
    };
    match fault {
        0 => {
            cluster.transfer_leadership(holder, other)?;
            stats.transfers += 1;
        }
        1 => {
            cluster.crash(holder);
            stats.crashes += 1;
        }
        _ => {
            cluster.isolate(holder);
            stats.cuts += 1;
        }
    }
    let deadline = cluster.now() + Duration::from_millis(400);
    let successor = |c: &TimedCluster| {
        (0..nodes)
            .map(NodeId)
            .any(|id| id != holder && c.holds_lease(id))
    };
    cluster.run_until(deadline, successor)?;
    cluster.heal();
    cluster.restart(holder)
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
    use crate::lease_watch::Approach;

    /// Seeds each test runs: enough to catch every planted bug, few enough
    /// for a debug build.
    const SEEDS: u64 = 1_000;

    /// What the first seed of `0..SEEDS` whose run fails a check with the
    /// planted `reading` found, printed with the seed.
    fn caught(reading: LeaseReading) -> TimedError {
        let found = (0..SEEDS).find_map(|seed| {
            run_reading(seed, ClockDrift::DEFAULT, reading)
                .err()
                .map(|error| (seed, error))
        });
        let (seed, error) = found.expect("the planted bug went unnoticed");
        println!("caught at seed {seed}: {error}");
        error
    }

    #[test]
    fn every_leadership_leases_and_no_two_ever_hold_at_once_under_drift_delays_and_faults() {
        let mut totals = LeaseStats::default();
        let mut closest: Option<(u64, Approach)> = None;
        for seed in 0..SEEDS {
            let stats = match run(seed, ClockDrift::DEFAULT) {
                Ok(stats) => stats.leases,
                Err(error) => panic!("seed {seed}: {error}"),
            };
            totals.grants += stats.grants;
            totals.leaderships_checked += stats.leaderships_checked;
            totals.after_hand_over += stats.after_hand_over;
            totals.after_restart += stats.after_restart;
            totals.after_step_down += stats.after_step_down;
            if let Some(approach) = stats.closest {
                if closest.is_none_or(|(_, c)| approach.margin < c.margin) {
                    closest = Some((seed, approach));
                }
            }
        }
        totals.closest = closest.map(|(_, approach)| approach);
        println!(
            "{totals:?}, the closest at seed {:?}",
            closest.map(|(seed, _)| seed)
        );
        // Leases were held, and the per-leadership check applied after each
        // kind of past it is about.
        assert!(totals.grants > SEEDS * 10, "only {} grants", totals.grants);
        assert!(totals.leaderships_checked > SEEDS, "{totals:?}");
        assert!(totals.after_hand_over > 0, "{totals:?}");
        assert!(totals.after_restart > 0, "{totals:?}");
        assert!(totals.after_step_down > 0, "{totals:?}");
        // The adversary brings two holders within a millisecond: a lease a
        // millisecond too long would overlap the next in these seeds.
        let (_, approach) = closest.expect("leases followed one another");
        assert!(approach.margin < Duration::from_millis(1), "{approach:?}");
    }

    #[test]
    fn a_lease_measured_from_the_acknowledgements_instead_of_the_round_start_is_caught() {
        caught(LeaseReading::FromAcknowledgement);
    }

    #[test]
    fn a_lease_without_the_drift_factor_is_caught() {
        caught(LeaseReading::NoDriftFactor);
    }

    #[test]
    fn a_lease_12_ms_too_long_is_caught_within_the_seeds_cargo_test_runs() {
        caught(LeaseReading::LongerBy(Duration::from_millis(12)));
    }

    #[test]
    fn a_node_that_never_leases_again_after_handing_over_is_caught_per_leadership() {
        let error = caught(LeaseReading::NeverAfterHandOver);
        assert!(matches!(error, TimedError::LeaseNotHeld { .. }), "{error}");
    }
}
