//! Scale benchmark: many independent 3-node clusters in one Tokio runtime.
//!
//! `cargo run --release --bin scale -- --clusters 10000`
//!
//! Starts G clusters on one multi-thread runtime, waits until in every one
//! all three nodes follow the same leader in its term, then leaves them alone
//! for `--seconds`. (Waiting only for a majority let a node that missed the
//! election raise its term on the next heartbeat, counted as spurious.) With no
//! fault injected, any term change in that window is a spurious election:
//! a follower that did not hear its leader in time, because the process could
//! not keep up. Prints spurious elections, CPU time, memory per node, message
//! rate and how late a probe timer woke. Nothing is asserted: this prints
//! figures; a cluster with a spurious election is named with its seed.

use clap::Parser;
use cpu_time::ProcessTime;
use raft_election::runtime::{ClusterConfig, ClusterHandle, Observation, spawn_cluster};
use std::process::ExitCode;
use std::time::Duration;
use tokio::time::Instant;

/// Many 3-node clusters in one process: spurious elections, CPU, memory, messages.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Number of independent clusters.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    clusters: u32,
    /// Length of the steady-state window, seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    seconds: u64,
    /// Base seed; cluster `i` uses `seed + i`.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: u16,
    /// How much each cluster records: `monitor` (status board and safety
    /// monitor) or `full` (also the event log and the narration).
    #[arg(long, value_enum, default_value_t = Level::Monitor)]
    observation: Level,
    /// Longest wait for every cluster to elect its first leader, seconds.
    #[arg(long, default_value_t = 300)]
    elect_within: u64,
    /// Meet election deadlines to the microsecond (`ClusterConfig::precise_timers`):
    /// each node spins for the last 2 ms before its election deadline.
    #[arg(long)]
    precise_timers: bool,
}

/// [`Observation`] as a command-line value.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Level {
    Monitor,
    Full,
}

/// Nodes per cluster.
const NODES: u8 = 3;

/// How often the probe timer asks to wake; its lateness is the scheduling delay.
const PROBE_PERIOD: Duration = Duration::from_millis(10);

/// One cluster's observable state at an instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Snapshot {
    /// Sum of the live nodes' terms: terms never go back, so any election
    /// anywhere in the cluster raises it.
    term_sum: u64,
    delivered: u64,
    lost: u64,
}

fn snapshot(cluster: &ClusterHandle) -> Snapshot {
    let terms = cluster.statuses().live().values().map(|s| s.term.0).sum();
    let stats = cluster.network_stats();
    Snapshot {
        term_sum: terms,
        delivered: stats.delivered,
        lost: stats.partitioned + stats.down + stats.inbox_full,
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.workers))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot build the Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), String> {
    let g = args.clusters;
    let observation = match args.observation {
        Level::Monitor => Observation::Monitor,
        Level::Full => Observation::Full,
    };
    let rss_start = rss_bytes();
    let cpu_start = ProcessTime::now();
    let started = Instant::now();
    let mut clusters = Vec::with_capacity(g as usize);
    for i in 0..g {
        let config = ClusterConfig {
            observation,
            precise_timers: args.precise_timers,
            ..ClusterConfig::seeded(NODES, seed_of(args, i))
        };
        clusters.push(spawn_cluster(config).map_err(|e| e.to_string())?);
        if (i + 1) % 1_000 == 0 {
            eprint!("\rspawned {}/{g}", i + 1);
        }
    }
    eprintln!("\rspawned {g} clusters ({} nodes)", u64::from(g) * 3);

    // Every cluster is already running; waiting on them in order costs no more
    // than the slowest one.
    let deadline = started + Duration::from_secs(args.elect_within);
    for (i, cluster) in clusters.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        cluster
            .wait_for_leader_known_to_all(left)
            .await
            .map_err(|e| {
                let seed = seed_of(args, u32::try_from(i).unwrap_or(u32::MAX));
                format!("cluster {i} (seed {seed}) did not settle on a leader in time: {e}")
            })?;
    }
    let elected_after = started.elapsed();
    eprintln!("all {g} clusters settled on a leader after {elected_after:.2?}");
    let rss_elected = rss_bytes();

    let probe = tokio::spawn(probe_lateness(Duration::from_secs(args.seconds)));
    let before: Vec<Snapshot> = clusters.iter().map(snapshot).collect();
    let cpu_before = ProcessTime::now();
    let window_start = Instant::now();
    for second in 1..=args.seconds {
        tokio::time::sleep_until(window_start + Duration::from_secs(second)).await;
        if second % 5 == 0 || second == args.seconds {
            let spurious = count_changed(&clusters, &before).0;
            eprint!(
                "\rsteady state {second}/{} s: {spurious} cluster(s) with a term change",
                args.seconds
            );
        }
    }
    eprintln!();
    let window = window_start.elapsed();
    let cpu_window = cpu_before.elapsed();
    let after: Vec<Snapshot> = clusters.iter().map(snapshot).collect();
    let rss_end = rss_bytes();
    let lateness = probe.await.map_err(|e| e.to_string())?;

    let (changed, terms_added) = count_changed(&clusters, &before);
    let first_changed: Vec<String> = clusters
        .iter()
        .zip(&before)
        .enumerate()
        .filter(|(_, (c, b))| snapshot(c).term_sum != b.term_sum)
        .take(5)
        .map(|(i, _)| {
            format!(
                "{i} (seed {})",
                seed_of(args, u32::try_from(i).unwrap_or(0))
            )
        })
        .collect();
    let delivered: u64 = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.delivered - b.delivered)
        .sum();
    let lost: u64 = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.lost - b.lost)
        .sum();
    let mut violations = 0;
    for cluster in &clusters {
        if let Err(v) = cluster.check_safety() {
            violations += 1;
            eprintln!("safety violation: {v}");
        }
    }

    let secs = window.as_secs_f64();
    let nodes = f64::from(g) * f64::from(NODES);
    let cpu = cpu_window.as_secs_f64();
    println!(
        "scale: {g} clusters x {NODES} nodes, {} workers, observation {:?}, precise timers {}, seed {}",
        args.workers, args.observation, args.precise_timers, args.seed
    );
    println!(
        "all settled after          {:>10.2} s",
        elected_after.as_secs_f64()
    );
    println!("steady state               {secs:>10.2} s");
    println!(
        "spurious elections         {changed:>10} cluster(s), {terms_added} term(s) added{}",
        if first_changed.is_empty() {
            String::new()
        } else {
            format!(": {}", first_changed.join(", "))
        }
    );
    println!("safety violations          {violations:>10}");
    println!(
        "CPU                        {:>10.3} cores ({:.2} us per cluster per s)",
        cpu / secs,
        1e6 * cpu / secs / f64::from(g)
    );
    println!(
        "CPU during start-up        {:>10.2} s",
        (cpu_before.duration_since(cpu_start)).as_secs_f64()
    );
    println!(
        "memory (RSS)               {:>10.1} MiB at start, {:.1} MiB elected, {:.1} MiB at end",
        mib(rss_start),
        mib(rss_elected),
        mib(rss_end)
    );
    println!(
        "memory per node            {:>10.0} bytes (elected), {:.0} bytes (end)",
        (rss_elected.saturating_sub(rss_start)) as f64 / nodes,
        (rss_end.saturating_sub(rss_start)) as f64 / nodes
    );
    println!(
        "messages                   {:>10.0} delivered/s ({:.1} per cluster per s), {lost} lost",
        delivered as f64 / secs,
        delivered as f64 / secs / f64::from(g)
    );
    let [p50, p99, max] = lateness;
    println!(
        "probe timer lateness (ms)  {p50:>10.2} median, {p99:.2} p99, {max:.2} max (every {PROBE_PERIOD:?})"
    );

    // All at once: one by one, each wait took a turn of a busy runtime.
    let stopping: Vec<_> = clusters
        .into_iter()
        .map(|cluster| tokio::spawn(cluster.shutdown()))
        .collect();
    let shutdown_deadline = Instant::now() + Duration::from_secs(120);
    for stop in stopping {
        let left = shutdown_deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stop).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(e.to_string()),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("shutdown took longer than 120 s".to_owned()),
        }
    }
    Ok(())
}

fn seed_of(args: &Args, index: u32) -> u64 {
    args.seed.wrapping_add(u64::from(index))
}

/// Clusters whose term sum changed since `before`, and by how much in all.
fn count_changed(clusters: &[ClusterHandle], before: &[Snapshot]) -> (u64, u64) {
    clusters
        .iter()
        .zip(before)
        .fold((0, 0), |(n, added), (c, b)| {
            let now = snapshot(c).term_sum;
            if now == b.term_sum {
                (n, added)
            } else {
                (n + 1, added + now.saturating_sub(b.term_sum))
            }
        })
}

/// Sleeps `PROBE_PERIOD` again and again for `length` and returns the
/// median, p99 and max of how late each wake came, in ms: how long a ready
/// task waited for a worker, on top of the timer's millisecond rounding.
/// Ends at `length` however late the wakes are (an overloaded process
/// would otherwise stretch a count of rounds without bound).
async fn probe_lateness(length: Duration) -> [f64; 3] {
    let end = Instant::now() + length;
    let rounds = (length.as_nanos() / PROBE_PERIOD.as_nanos()).max(1);
    let mut late = Vec::with_capacity(usize::try_from(rounds).unwrap_or(0));
    for _ in 0..rounds {
        let due = Instant::now() + PROBE_PERIOD;
        if due > end {
            break;
        }
        tokio::time::sleep_until(due).await;
        late.push(Instant::now().duration_since(due).as_secs_f64() * 1e3);
    }
    if late.is_empty() {
        return [f64::NAN; 3];
    }
    late.sort_by(f64::total_cmp);
    let at = |permille: usize| late[(late.len() - 1) * permille / 1000];
    [at(500), at(990), at(1000)]
}

/// Resident set size of this process, from `/proc/self/status` (0 if unreadable).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
