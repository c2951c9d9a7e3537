//! `lease-runs`: many seeded runs of the leader lease under drifting clocks,
//! arbitrary delays, crashes, partitions and transfers
//! (`raft_election_sim::lease_runs`), each checked after every event: no two
//! nodes hold a lease at the same instant of real time. Stops at the first
//! violation and prints its seed, which replays it.
//!
//! ```text
//! cargo run --release -p raft-election-cli --bin lease-runs -- --runs 100000
//! ```

use clap::Parser;
use raft_election::ClockDrift;
use raft_election_cli::progress;
use raft_election_sim::lease_runs::{self, RUN_LENGTH};
use std::process::ExitCode;
use std::time::Instant;

/// Seeded runs of the leader lease under faults; exits 1 at the first
/// violation, printing the seed that replays it.
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
    let mut totals = lease_runs::RunStats::default();
    let mut five_node_runs = 0_u64;
    for seed in args.first_seed..args.first_seed.saturating_add(args.runs) {
        match lease_runs::run(seed, args.max_clock_drift) {
            Ok(stats) => {
                totals.lease_grants += stats.lease_grants;
                totals.leaderships += stats.leaderships;
                totals.crashes += stats.crashes;
                totals.cuts += stats.cuts;
                totals.transfers += stats.transfers;
                five_node_runs += u64::from(stats.nodes == 5);
            }
            Err(violation) => {
                bar.finish_and_clear();
                println!("seed {seed}: {violation}");
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
    let elapsed = started.elapsed();
    println!(
        "{} runs ({} of 5 nodes, the rest of 3) in {:.1} s: no two lease holders at once",
        args.runs,
        five_node_runs,
        elapsed.as_secs_f64()
    );
    println!(
        "  {} leases got or extended, {} leaderships, {} crashes, {} cuts, {} transfers",
        totals.lease_grants, totals.leaderships, totals.crashes, totals.cuts, totals.transfers
    );
    ExitCode::SUCCESS
}
