//! Scale benchmark: many independent 3-node clusters in one Tokio runtime.
//!
//! `cargo run --release --bin scale -- --clusters 1000,10000,14000`
//!
//! For each count G: starts G clusters on one multi-thread runtime, waits
//! until in every one all three nodes follow the same leader in its term,
//! then leaves them alone for `--seconds`. (Waiting only for a majority let a
//! node that missed the election raise its term on the next heartbeat,
//! counted as spurious.) With no fault injected, any term change in that
//! window is a spurious election: a follower that did not hear its leader in
//! time, because the process could not keep up. Prints spurious elections,
//! CPU time, memory per node, message rate, heartbeat cadence and how late a
//! probe timer woke; after the last count, a table and the largest count with
//! zero spurious elections. Nothing is asserted: this prints figures; a
//! cluster with a spurious election is named with its seed.
//!
//! Each count of a sweep runs in a fresh process (this program, re-run with
//! that one count), so memory and the runtime start clean: memory a smaller
//! count freed would otherwise be reused by the next and flatter it.

use clap::{Parser, ValueEnum};
use cpu_time::ProcessTime;
use raft_election::{Features, NodeId, Timing};
use raft_election_cli::progress;
use raft_election_runtime::{ClusterConfig, ClusterHandle, Observation, Pacing, spawn_cluster};
use std::collections::BTreeMap;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;
use tokio::time::Instant;

/// Many 3-node clusters in one process: spurious elections, CPU, memory, messages.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Numbers of independent clusters to run, comma-separated, smallest
    /// first (`1000,10000,14000`); each runs in a fresh process.
    #[arg(long, value_delimiter = ',', default_value = "1000",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    clusters: Vec<u32>,
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
    /// Longest wait for every cluster to settle on its first leader, seconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    elect_within: u64,
    /// Meet election deadlines to the microsecond (`Pacing::Emulated`'s
    /// precise timers): each node spins for the last 2 ms before its
    /// election deadline.
    #[arg(long)]
    precise_timers: bool,
    /// Election features of every node: a comma-separated list of
    /// pre-vote, check-quorum, lease-guarded-votes and leadership-transfer,
    /// or all, or none [default: the core's defaults].
    #[arg(long, value_name = "LIST", default_value_t = Features::default())]
    features: Features,
    /// Go on after a count with a spurious election. By default a sweep stops
    /// there: a larger count only loads the process more.
    #[arg(long)]
    keep_going: bool,
    /// Set when a sweep re-runs this program for one count: print the
    /// report and the outcome line, no summary.
    #[arg(long, hide = true)]
    sweep_child: bool,
}

/// [`Observation`] as a command-line value.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Level {
    Monitor,
    Full,
}

/// Nodes per cluster.
const NODES: u8 = 3;

/// Most cluster counts in one sweep (each takes `--seconds` and more).
const MAX_COUNTS: usize = 32;

/// How often the probe timer asks to wake; its lateness is the scheduling delay.
const PROBE_PERIOD: Duration = Duration::from_millis(10);

/// Cadence at or above which heartbeats count as on time. Tokio rounds every
/// timer up to the next millisecond, so a leader on time heartbeats every
/// 50–51 ms, about 98% of nominal; 90% means about 5 ms late on average.
const ON_TIME_CADENCE: f64 = 0.9;

/// One cluster's observable state at an instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Snapshot {
    /// Sum of the live nodes' terms: terms never go back, so any election
    /// anywhere in the cluster raises it.
    term_sum: u64,
    /// PreVotes and RequestVotes sent so far: every election timeout of a
    /// follower sends some, whether or not a term changes.
    campaign_messages: u64,
    delivered: u64,
    lost: u64,
}

fn snapshot(cluster: &ClusterHandle) -> Snapshot {
    let terms = cluster.statuses().live().values().map(|s| s.term.0).sum();
    let campaign_messages = (0..NODES)
        .filter_map(|id| cluster.message_counts(NodeId(id)))
        .map(|counts| counts.sent.pre_vote + counts.sent.request_vote)
        .sum();
    let stats = cluster.network_stats();
    Snapshot {
        term_sum: terms,
        campaign_messages,
        delivered: stats.delivered,
        lost: stats.cut + stats.down + stats.queue_full + stats.dropped,
    }
}

/// What a sweep keeps of one count: a row of its summary table.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Outcome {
    clusters: u32,
    spurious: u64,
    violations: u64,
    /// Delivered messages over what leaders heartbeating exactly on time
    /// (and followers answering each heartbeat) would exchange.
    cadence: f64,
    cpu_cores: f64,
    us_per_cluster: f64,
    bytes_per_node: f64,
}

/// Starts the line a sweep's child prints for its parent.
const OUTCOME_TAG: &str = "outcome:";

impl Outcome {
    fn line(&self) -> String {
        format!(
            "{OUTCOME_TAG} clusters={} spurious={} violations={} cadence={:.4} cpu_cores={:.3} us_per_cluster={:.2} bytes_per_node={:.0}",
            self.clusters,
            self.spurious,
            self.violations,
            self.cadence,
            self.cpu_cores,
            self.us_per_cluster,
            self.bytes_per_node
        )
    }

    fn parse(line: &str) -> Option<Self> {
        let fields: BTreeMap<&str, &str> = line
            .strip_prefix(OUTCOME_TAG)?
            .split_whitespace()
            .filter_map(|field| field.split_once('='))
            .collect();
        Some(Self {
            clusters: fields.get("clusters")?.parse().ok()?,
            spurious: fields.get("spurious")?.parse().ok()?,
            violations: fields.get("violations")?.parse().ok()?,
            cadence: fields.get("cadence")?.parse().ok()?,
            cpu_cores: fields.get("cpu_cores")?.parse().ok()?,
            us_per_cluster: fields.get("us_per_cluster")?.parse().ok()?,
            bytes_per_node: fields.get("bytes_per_node")?.parse().ok()?,
        })
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.clusters.len() > MAX_COUNTS {
        eprintln!("error: at most {MAX_COUNTS} cluster counts in one sweep");
        return ExitCode::from(2);
    }
    let (outcomes, error) = match args.clusters[..] {
        [g] => match measure(&args, g) {
            Ok(outcome) => (vec![outcome], None),
            Err(e) => (Vec::new(), Some(e)),
        },
        _ => sweep(&args),
    };
    if args.sweep_child {
        if let Some(outcome) = outcomes.first() {
            println!("{}", outcome.line());
        }
    } else if !outcomes.is_empty() {
        print_summary(&args, &outcomes);
    }
    match error {
        None => ExitCode::SUCCESS,
        Some(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one count on a runtime of its own and prints its report.
fn measure(args: &Args, clusters: u32) -> Result<Outcome, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.workers))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build the Tokio runtime: {e}"))?;
    runtime.block_on(run(args, clusters))
}

/// Runs every count in a fresh process of this program, in order, and
/// returns the outcomes so far and the error that ended the sweep, if any:
/// the counts already measured are reported either way.
fn sweep(args: &Args) -> (Vec<Outcome>, Option<String>) {
    let mut outcomes = Vec::new();
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return (outcomes, Some(format!("cannot find this program: {e}"))),
    };
    let total = args.clusters.len();
    for (i, &g) in args.clusters.iter().enumerate() {
        eprintln!("\n--- count {}/{total}: {g} clusters ---", i + 1);
        let output = match Command::new(&exe)
            .args(child_args(args, g))
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
        {
            Ok(output) => output,
            Err(e) => return (outcomes, Some(format!("cannot run {}: {e}", exe.display()))),
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        for line in stdout.lines().filter(|l| !l.starts_with(OUTCOME_TAG)) {
            println!("{line}");
        }
        if !output.status.success() {
            return (
                outcomes,
                Some(format!(
                    "the run of {g} clusters failed ({})",
                    output.status
                )),
            );
        }
        let Some(outcome) = stdout.lines().find_map(Outcome::parse) else {
            return (
                outcomes,
                Some(format!("the run of {g} clusters printed no outcome")),
            );
        };
        outcomes.push(outcome);
        if outcome.spurious > 0 && !args.keep_going && i + 1 < total {
            eprintln!(
                "stopping the sweep at the first count with a spurious election (--keep-going to go on)"
            );
            break;
        }
    }
    (outcomes, None)
}

/// The arguments that make this program measure `clusters` alone with the
/// sweep's settings. Every option of [`Args`] but the sweep's own is passed on.
fn child_args(args: &Args, clusters: u32) -> Vec<String> {
    let observation = args
        .observation
        .to_possible_value()
        .map_or_else(|| "monitor".to_owned(), |v| v.get_name().to_owned());
    let mut child = vec![
        format!("--clusters={clusters}"),
        format!("--seconds={}", args.seconds),
        format!("--seed={}", args.seed),
        format!("--workers={}", args.workers),
        format!("--observation={observation}"),
        format!("--elect-within={}", args.elect_within),
        format!("--features={}", args.features),
        "--sweep-child".to_owned(),
    ];
    if args.precise_timers {
        child.push("--precise-timers".to_owned());
    }
    child
}

fn print_summary(args: &Args, outcomes: &[Outcome]) {
    println!(
        "\nsummary: {} s of steady state per count, {} workers, seed {}",
        args.seconds, args.workers, args.seed
    );
    println!(
        "{:>9} {:>8} {:>9} {:>10} {:>8} {:>9} {:>13} {:>10}",
        "clusters",
        "nodes",
        "spurious",
        "violations",
        "cadence",
        "CPU cores",
        "us/cluster/s",
        "bytes/node"
    );
    for o in outcomes {
        println!(
            "{:>9} {:>8} {:>9} {:>10} {:>7.1}% {:>9.2} {:>13.1} {:>10.0}",
            o.clusters,
            u64::from(o.clusters) * u64::from(NODES),
            o.spurious,
            o.violations,
            o.cadence * 100.0,
            o.cpu_cores,
            o.us_per_cluster,
            o.bytes_per_node
        );
    }
    let verdict = Verdict::of(outcomes);
    let show = |g: Option<u32>| {
        g.map_or_else(
            || "none of these".to_owned(),
            |g| format!("{g} clusters ({} nodes)", u64::from(g) * u64::from(NODES)),
        )
    };
    println!(
        "largest count with zero spurious elections: {}",
        show(verdict.largest_clean)
    );
    println!(
        "  largest with every smaller count clean too: {}",
        show(verdict.clean_up_to)
    );
    println!(
        "  largest clean with heartbeats on time (cadence >= {:.0}%): {}",
        ON_TIME_CADENCE * 100.0,
        show(verdict.on_time)
    );
}

/// What a sweep answers. Near saturation one stall can start an election
/// storm, so a larger count may run clean where a smaller one did not: the
/// largest clean count alone would overstate what the process sustains.
#[derive(Debug, PartialEq, Eq)]
struct Verdict {
    /// The largest count with zero spurious elections and no violation.
    largest_clean: Option<u32>,
    /// The largest count such that it and every smaller count ran clean.
    clean_up_to: Option<u32>,
    /// The largest clean count whose heartbeats also kept time.
    on_time: Option<u32>,
}

impl Verdict {
    fn of(outcomes: &[Outcome]) -> Self {
        let clean = |o: &&Outcome| o.spurious == 0 && o.violations == 0;
        let mut ascending: Vec<&Outcome> = outcomes.iter().collect();
        ascending.sort_by_key(|o| o.clusters);
        Self {
            largest_clean: outcomes.iter().filter(clean).map(|o| o.clusters).max(),
            clean_up_to: ascending
                .into_iter()
                .take_while(clean)
                .map(|o| o.clusters)
                .last(),
            on_time: outcomes
                .iter()
                .filter(clean)
                .filter(|o| o.cadence >= ON_TIME_CADENCE)
                .map(|o| o.clusters)
                .max(),
        }
    }
}

/// Measures `g` clusters: starts them, waits until all settle, watches
/// the steady state, prints the report and shuts them down.
async fn run(args: &Args, g: u32) -> Result<Outcome, String> {
    let observation = match args.observation {
        Level::Monitor => Observation::Monitor,
        Level::Full => Observation::Full,
    };
    let rss_start = rss_bytes();
    let cpu_start = ProcessTime::now();
    let started = Instant::now();
    let mut clusters = Vec::with_capacity(g as usize);
    let bar = progress::bar(u64::from(g), "clusters");
    bar.set_message("spawning");
    for i in 0..g {
        let config = ClusterConfig {
            observation,
            features: args.features,
            pacing: Pacing::Emulated {
                precise_timers: args.precise_timers,
            },
            ..ClusterConfig::seeded(NODES, seed_of(args, i))
        };
        clusters.push(spawn_cluster(config).map_err(|e| e.to_string())?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    eprintln!("spawned {g} clusters ({} nodes)", u64::from(g) * 3);

    // Every cluster is already running; waiting on them in order costs no more
    // than the slowest one.
    let deadline = started + Duration::from_secs(args.elect_within);
    let bar = progress::bar(u64::from(g), "clusters");
    bar.set_message("up (a leader all follow)");
    for (i, cluster) in clusters.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        cluster
            .wait_for_leader_known_to_all(left)
            .await
            .map_err(|e| {
                let seed = seed_of(args, u32::try_from(i).unwrap_or(u32::MAX));
                format!("cluster {i} (seed {seed}) did not settle on a leader in time: {e}")
            })?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let elected_after = started.elapsed();
    eprintln!("all {g} clusters settled on a leader after {elected_after:.2?}");
    let rss_elected = rss_bytes();

    let probe = tokio::spawn(probe_lateness(Duration::from_secs(args.seconds)));
    let before: Vec<Snapshot> = clusters.iter().map(snapshot).collect();
    let cpu_before = ProcessTime::now();
    let window_start = Instant::now();
    let bar = progress::bar(args.seconds, "s");
    bar.set_message("steady state");
    for second in 1..=args.seconds {
        tokio::time::sleep_until(window_start + Duration::from_secs(second)).await;
        if second % 5 == 0 || second == args.seconds {
            let now: Vec<Snapshot> = clusters.iter().map(snapshot).collect();
            let spurious = count_changed(&now, &before).0;
            bar.set_message(format!(
                "steady state, {spurious} cluster(s) with a term change"
            ));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let window = window_start.elapsed();
    let cpu_window = cpu_before.elapsed();
    let after: Vec<Snapshot> = clusters.iter().map(snapshot).collect();
    let rss_end = rss_bytes();
    let lateness = probe.await.map_err(|e| e.to_string())?;

    // Every figure of the window comes from `after`, one snapshot taken at
    // its end.
    let (changed, terms_added) = count_changed(&after, &before);
    let campaigned = after
        .iter()
        .zip(&before)
        .filter(|(a, b)| a.campaign_messages != b.campaign_messages)
        .count() as u64;
    let first_changed: Vec<String> = after
        .iter()
        .zip(&before)
        .enumerate()
        .filter(|(_, (a, b))| a.term_sum != b.term_sum)
        .take(5)
        .map(|(i, _)| {
            format!(
                "{i} (seed {})",
                seed_of(args, u32::try_from(i).unwrap_or(u32::MAX))
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
        "scale: {g} clusters x {NODES} nodes, {} workers, observation {:?}, precise timers {}, features {}, seed {}",
        args.workers, args.observation, args.precise_timers, args.features, args.seed
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
    println!(
        "spurious campaigns         {campaigned:>10} cluster(s) sent a PreVote or RequestVote"
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
    // A leader sends one heartbeat to each follower per interval and each
    // follower answers it.
    let h = Timing::default().heartbeat_interval;
    let nominal = 2.0 * f64::from(NODES - 1) / h.as_secs_f64();
    let cadence = delivered as f64 / secs / f64::from(g) / nominal;
    println!(
        "heartbeat cadence          {:>10.1}% of nominal ({nominal:.0} messages per cluster per s at a {h:?} heartbeat)",
        cadence * 100.0
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
    Ok(Outcome {
        clusters: g,
        // A campaign without a term change (a refused pre-vote) is spurious too.
        spurious: changed.max(campaigned),
        violations,
        cadence,
        cpu_cores: cpu / secs,
        us_per_cluster: 1e6 * cpu / secs / f64::from(g),
        bytes_per_node: (rss_end.saturating_sub(rss_start)) as f64 / nodes,
    })
}

/// The seed of cluster `index`.
fn seed_of(args: &Args, index: u32) -> u64 {
    args.seed.wrapping_add(u64::from(index))
}

/// Clusters whose term sum changed from `before` to `now`, and by how much in all.
fn count_changed(now: &[Snapshot], before: &[Snapshot]) -> (u64, u64) {
    now.iter().zip(before).fold((0, 0), |(n, added), (a, b)| {
        let now = a.term_sum;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_line_reads_back_as_the_same_outcome() {
        let outcome = Outcome {
            clusters: 10_000,
            spurious: 2,
            violations: 0,
            cadence: 0.9351,
            cpu_cores: 1.599,
            us_per_cluster: 159.91,
            bytes_per_node: 7327.0,
        };
        assert_eq!(Outcome::parse(&outcome.line()), Some(outcome));
        assert_eq!(Outcome::parse("spurious elections 0"), None);
        assert_eq!(
            Outcome::parse("outcome: clusters=1"),
            None,
            "fields missing"
        );
    }

    #[test]
    fn a_sweep_child_gets_every_setting_of_its_parent_and_one_count() {
        let args = Args::parse_from([
            "scale",
            "--clusters",
            "1000,2000",
            "--seconds",
            "5",
            "--seed",
            "9",
            "--workers",
            "1",
            "--observation",
            "full",
            "--elect-within",
            "7",
            "--features",
            "pre-vote,check-quorum",
            "--precise-timers",
        ]);
        let child =
            Args::parse_from(std::iter::once("scale".to_owned()).chain(child_args(&args, 2000)));
        assert_eq!(child.clusters, [2000]);
        assert!(child.sweep_child && child.precise_timers && !child.keep_going);
        assert_eq!(
            (child.seconds, child.seed, child.workers, child.elect_within),
            (5, 9, 1, 7)
        );
        assert!(matches!(child.observation, Level::Full));
        assert_eq!(child.features, args.features);
        assert!(child.features.pre_vote && !child.features.leadership_transfer);
    }

    fn outcome(clusters: u32, spurious: u64, cadence: f64) -> Outcome {
        Outcome {
            clusters,
            spurious,
            violations: 0,
            cadence,
            cpu_cores: 1.0,
            us_per_cluster: 100.0,
            bytes_per_node: 7000.0,
        }
    }

    #[test]
    fn a_storm_at_a_smaller_count_ends_the_clean_run_though_a_larger_count_ran_clean() {
        // The sweep of docs/benchmarks.md: 12,000 stormed, 14,000 and 16,000 did not.
        let outcomes = [
            outcome(10_000, 0, 0.945),
            outcome(12_000, 12_000, 0.675),
            outcome(14_000, 0, 0.743),
            outcome(16_000, 0, 0.641),
            outcome(20_000, 522, 0.488),
        ];
        let verdict = Verdict::of(&outcomes);
        assert_eq!(
            verdict,
            Verdict {
                largest_clean: Some(16_000),
                clean_up_to: Some(10_000),
                on_time: Some(10_000),
            }
        );
        let none = Verdict::of(&[outcome(1_000, 1, 0.98)]);
        assert_eq!(
            (none.largest_clean, none.clean_up_to, none.on_time),
            (None, None, None)
        );
    }

    #[test]
    fn counts_outside_the_range_are_refused() {
        assert!(Args::try_parse_from(["scale", "--clusters", "0"]).is_err());
        assert!(Args::try_parse_from(["scale", "--clusters", "10,x"]).is_err());
    }
}
