//! `lease-failover`: how long from the death of the node running the one
//! active copy of a program (`node --run-while-leader`, kill -9) until the
//! next copy starts on another node. Three node processes on loopback; each
//! copy appends `start <term> <node> <time>` to a file and sleeps. Prints the
//! median and p99 over the trials beside the bounds the protocol imposes.
//!
//! ```text
//! cargo build --release -p raft-election-cli
//! target/release/lease-failover --trials 100
//! ```

use clap::Parser;
use raft_election::{ClockDrift, NodeId, Timing};
use raft_election_cli::processes::{ProcessCluster, seconds};
use raft_election_cli::progress;
use rand::RngExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Failover of `node --run-while-leader`: kill -9 the active node, time
/// until the next copy starts.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Trials (each kills the active node once).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    trials: u32,
    /// Shortest election timeout, in milliseconds.
    #[arg(long, default_value_t = 150)]
    election_min_ms: u64,
    /// Longest election timeout, in milliseconds.
    #[arg(long, default_value_t = 300)]
    election_max_ms: u64,
    /// Heartbeat interval, in milliseconds.
    #[arg(long, default_value_t = 50)]
    heartbeat_ms: u64,
    /// The nodes' --stop-margin-ms.
    #[arg(long, default_value_t = 40)]
    stop_margin_ms: u64,
    /// The nodes' --kill-grace-ms.
    #[arg(long, default_value_t = 20)]
    kill_grace_ms: u64,
    /// Nodes listen on 127.<subnet>.0.1-3.
    #[arg(long, default_value_t = 77)]
    subnet: u8,
    /// The port every node listens on.
    #[arg(long, default_value_t = 7_700)]
    port: u16,
    /// The `raft-election` binary (default: beside this one).
    #[arg(long, value_name = "FILE")]
    binary: Option<PathBuf>,
}

/// How long any one wait may take before the run gives up.
const WAIT: Duration = Duration::from_secs(30);

/// Three node processes, each running the program under its lease; killed
/// (and so their copies stopped by their watchdogs) on drop.
fn nodes(args: &Args, binary: &Path) -> Result<ProcessCluster, String> {
    let mut nodes = ProcessCluster::new(binary, None, 3, args.subnet, args.port)?;
    let file = starts_file(&nodes);
    let number = |n: u64| n.to_string();
    nodes.extra = vec![
        "--election-min-ms".into(),
        number(args.election_min_ms),
        "--election-max-ms".into(),
        number(args.election_max_ms),
        "--heartbeat-ms".into(),
        number(args.heartbeat_ms),
        "--stop-margin-ms".into(),
        number(args.stop_margin_ms),
        "--kill-grace-ms".into(),
        number(args.kill_grace_ms),
        "--run-while-leader".into(),
        "--".into(),
        "bash".into(),
        "-c".into(),
        r#"echo "start $RAFT_TERM $RAFT_NODE_ID $EPOCHREALTIME" >> "$0"; exec sleep 3600"#.into(),
        file.display().to_string(),
    ];
    Ok(nodes)
}

/// Where each copy of the program appends its start.
fn starts_file(nodes: &ProcessCluster) -> PathBuf {
    nodes.dir().join("starts.log")
}

/// The latest `start` line of a term after `after`: (term, node, time).
fn wait_for_start(file: &Path, after: u64) -> Result<(u64, u8, f64), String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let latest = text
            .lines()
            .filter_map(|line| {
                let mut f = line.split_whitespace().skip(1);
                Some((
                    f.next()?.parse().ok()?,
                    f.next()?.parse().ok()?,
                    f.next()?.parse().ok()?,
                ))
            })
            .rfind(|&(term, _, _)| term > after);
        if let Some(found) = latest {
            return Ok(found);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no copy of a term after {after} started within {WAIT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn percentile(sorted: &[f64], permille: usize) -> f64 {
    let index = (sorted.len() * permille).div_ceil(1000).saturating_sub(1);
    sorted[index.min(sorted.len() - 1)]
}

fn run(args: Args) -> Result<(), String> {
    let timing = Timing {
        election_timeout_min: Duration::from_millis(args.election_min_ms),
        election_timeout_max: Duration::from_millis(args.election_max_ms),
        heartbeat_interval: Duration::from_millis(args.heartbeat_ms),
    };
    timing.validate().map_err(|e| e.to_string())?;
    let binary = match &args.binary {
        Some(binary) => binary.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("raft-election"),
    };
    let trials = args.trials;
    let heartbeat = timing.heartbeat_interval;
    let mut nodes = nodes(&args, &binary)?;
    nodes.start_all()?;
    let file = starts_file(&nodes);
    let bar = progress::bar(u64::from(trials), "trials");
    let mut failovers = Vec::new();
    let (mut term, mut active, _) = wait_for_start(&file, 0)?;
    let mut rng = rand::rng();
    for _ in 0..trials {
        // Let the new leader settle, then die at a random point of a
        // heartbeat interval.
        let settle = Duration::from_millis(300) + heartbeat.mul_f64(rng.random_range(0.0..1.0));
        std::thread::sleep(settle);
        let killed_at = seconds(nodes.kill(NodeId(active)));
        let (next_term, next, started) = wait_for_start(&file, term)?;
        failovers.push((started - killed_at) * 1e3);
        nodes.start(NodeId(active), false)?;
        (term, active) = (next_term, next);
        bar.inc(1);
    }
    bar.finish_and_clear();
    failovers.sort_by(f64::total_cmp);
    let min = timing.election_timeout_min.as_secs_f64() * 1e3;
    let lease = ClockDrift::DEFAULT.shorten(timing.election_timeout_min);
    println!(
        "kill -9 of the active node to the next copy started, {trials} trials \
         (3 nodes, election timeout {}-{} ms, heartbeat {} ms, stop margin {} ms):",
        args.election_min_ms, args.election_max_ms, args.heartbeat_ms, args.stop_margin_ms
    );
    println!(
        "  median {:.1} ms, p99 {:.1} ms, min {:.1} ms, max {:.1} ms",
        percentile(&failovers, 500),
        percentile(&failovers, 990),
        failovers[0],
        failovers[failovers.len() - 1]
    );
    println!(
        "  lower bound {:.1} ms: the election timeout min {min:.0} ms less one heartbeat; \
         no follower votes or campaigns sooner after its last heartbeat, which is what \
         keeps the dead node's lease ({:.1} ms from its last acknowledged round) safe",
        min - heartbeat.as_secs_f64() * 1e3,
        lease.as_secs_f64() * 1e3
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
