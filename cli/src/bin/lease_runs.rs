//! `lease-runs`: many seeded runs of the leader lease under drifting clocks,
//! arbitrary delays, crashes, partitions and transfers
//! (`raft_election_sim::lease_runs`; half of them the adversary's: clocks at
//! the drift bound in the worst direction, the leader cut off as its lease
//! grows), each checked after every event: no two nodes hold a lease at the
//! same instant of real time; every leadership that a majority acknowledged
//! in time holds a lease; no lease begins before an earlier one ran out.
//! Prints the margin, the closest two leases of different terms came.
//! Stops at the first failure and prints its seed, which replays it.
//!
//! ```text
//! cargo run --release -p raft-election-cli --bin lease-runs -- --runs 100000
//! ```

use clap::Parser;
use raft_election::ClockDrift;
use raft_election_cli::progress;
use raft_election_sim::lease_runs::{self, RUN_LENGTH, RunStats};
use raft_election_sim::lease_watch::{Approach, LeaseStats};
use std::process::ExitCode;
use std::time::Instant;

/// Seeded runs of the leader lease under faults, half of them with clocks at
/// the drift bound in the worst direction: no two lease holders at once,
/// every leadership a majority acknowledged in time holds a lease, and the
/// margin between successive leases (printed). Exits 1 at the first
/// failure, printing the seed that replays it.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// How many runs (seeds `first-seed .. first-seed + runs`).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    runs: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// The clock-drift bound the nodes are configured with, which the
    /// simulated clocks stay within (a percentage, such as 10% or 0.5%).
    #[arg(long, default_value_t = ClockDrift::DEFAULT)]
    max_clock_drift: ClockDrift,
}

fn main() -> ExitCode {
    let args = Args::parse();
    println!(
        "{} runs of {RUN_LENGTH:?} virtual time each, seeds {}.., clock drift bound {}",
        args.runs, args.first_seed, args.max_clock_drift
    );
    let bar = progress::bar(args.runs, "runs");
    let started = Instant::now();
    let mut totals = Totals::default();
    for seed in args.first_seed..args.first_seed.saturating_add(args.runs) {
        match lease_runs::run(seed, args.max_clock_drift) {
            Ok(stats) => totals.add(seed, &stats),
            Err(failure) => {
                bar.finish_and_clear();
                println!("seed {seed}: {failure}");
                println!(
                    "replay: lease-runs --first-seed {seed} --runs 1 --max-clock-drift {}",
                    args.max_clock_drift
                );
                return ExitCode::FAILURE;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    totals.print(args.runs, started.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}

/// What every run did, summed.
#[derive(Default)]
struct Totals {
    runs: RunStats,
    leases: LeaseStats,
    five_node_runs: u64,
    adversarial_runs: u64,
    /// The closest approach of all runs, and the seed of its run.
    closest: Option<(u64, Approach)>,
}

impl Totals {
    fn add(&mut self, seed: u64, stats: &RunStats) {
        self.runs.leaderships += stats.leaderships;
        self.runs.crashes += stats.crashes;
        self.runs.cuts += stats.cuts;
        self.runs.transfers += stats.transfers;
        self.five_node_runs += u64::from(stats.nodes == 5);
        self.adversarial_runs += u64::from(stats.adversarial);
        let leases = &stats.leases;
        self.leases.grants += leases.grants;
        self.leases.leaderships_checked += leases.leaderships_checked;
        self.leases.after_hand_over += leases.after_hand_over;
        self.leases.after_restart += leases.after_restart;
        self.leases.after_step_down += leases.after_step_down;
        if let Some(approach) = leases.closest {
            if self.closest.is_none_or(|(_, c)| approach.margin < c.margin) {
                self.closest = Some((seed, approach));
            }
        }
    }

    fn print(&self, runs: u64, seconds: f64) {
        let (leases, totals) = (&self.leases, &self.runs);
        println!(
            "{runs} runs ({} of 5 nodes, the rest of 3; {} the adversary's) in {seconds:.1} s: no two lease holders at once",
            self.five_node_runs, self.adversarial_runs
        );
        println!(
            "  {} leases got or extended, {} leaderships, {} crashes, {} cuts, {} transfers",
            leases.grants, totals.leaderships, totals.crashes, totals.cuts, totals.transfers
        );
        println!(
            "  per leadership: each of the {} that a majority acknowledged in time held a lease from then on ({} after a hand-over, {} after a restart, {} after a CheckQuorum step-down)",
            leases.leaderships_checked,
            leases.after_hand_over,
            leases.after_restart,
            leases.after_step_down
        );
        match self.closest {
            Some((seed, approach)) => println!(
                "  margin: the closest two leases came, {:?} ({} of {} ran out, then {} of {} began; seed {seed})",
                approach.margin,
                approach.earlier.0,
                approach.earlier.1,
                approach.later.0,
                approach.later.1
            ),
            None => println!("  margin: no lease followed another unrevoked one"),
        }
    }
}
