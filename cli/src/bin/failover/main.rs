//! Failover benchmark: how long the Tokio runtime takes to elect a leader,
//! and to replace a crashed one, against the ideal.
//!
//! `cargo run --release --bin failover -- --trials 500`
//!
//! With `--transport tcp` the nodes are `raft-election node` processes on
//! loopback and the crash is a `kill -9` (a SIGTERM with `--handover
//! transfer`: the leader hands over, then stops); the run also measures an idle
//! cluster of processes (each node's memory and CPU, and the heartbeat
//! round trip beside the in-process cluster's), and the ideal uses half the
//! measured round trip as its one-way delay.
//!
//! `--features` picks the election features of every node, measured and
//! ideal alike; `--baseline` runs every trial a second time with other
//! features (interleaved, same seeds) and prints what the difference costs.
//! `--handover transfer` replaces the crash by a planned failover: the
//! leader is asked to hand its leadership to a random follower (§3.10).
//! `--tls on` gives every node process its certificate (mutual TLS between
//! peers); `--tls compare` runs every seed both ways, interleaved, and
//! compares them, the idle cluster's memory, CPU and round trips too.
//!
//! Each trial starts a fresh cluster on the real clock, waits for a leader,
//! lets a few heartbeats pass, crashes the leader at a uniformly random moment
//! within a heartbeat interval, and measures the time until a new leader is
//! elected and until every live follower has heard from it. The same trials
//! are replayed on the core alone (`timed::TimedCluster`: a virtual clock and
//! an ideal network with a fixed one-way delay), and the Raft thesis's
//! closed-form expectation is printed beside both. Nothing is asserted: this
//! prints figures.

mod processes;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use plotters::style::RGBColor;
use processes::usage;
use raft_election::{Config, Features, NodeId, Role, Term, Timing};
use raft_election_cli::log_lines::NodeEvent;
use raft_election_cli::plot::{Series, write_cdf_svg};
use raft_election_cli::processes::seconds;
use raft_election_cli::processes::{NodeLog, port_of_this_process};
use raft_election_cli::profile::Profile;
use raft_election_cli::progress;
use raft_election_cli::timeline::{timeline, write_svg};
use raft_election_runtime::{
    ClusterConfig, ClusterHandle, EventKind, TimeoutSource, spawn_cluster,
};
use raft_election_sim::timed::TimedCluster;
use raft_election_timeline::Timeline;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Failover time of the Tokio runtime against the ideal protocol.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Trials to run.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    trials: u32,
    /// Cluster size.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=15))]
    nodes: u8,
    /// The timing profile the three flags below default to (`node
    /// --timing`): local, lan or wan.
    #[arg(long, value_enum, default_value_t = Profile::Local)]
    timing: Profile,
    /// Minimum election timeout, ms [default: the --timing profile's].
    #[arg(long, default_value_t = 150)]
    min_ms: u64,
    /// Maximum election timeout, ms [default: the --timing profile's].
    #[arg(long, default_value_t = 300)]
    max_ms: u64,
    /// Heartbeat interval, ms [default: the --timing profile's].
    #[arg(long, default_value_t = 50)]
    heartbeat_ms: u64,
    /// Base seed; trial `i` uses `seed + i`.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Trials of the ideal simulation (cheap: virtual time), so its figures
    /// carry less sampling noise than the measured ones they are compared to.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    ideal_trials: u32,
    /// One-way message delay of the ideal simulation, µs; default 100 in
    /// process, half the measured heartbeat round trip over TCP.
    #[arg(long)]
    ideal_delay_us: Option<u64>,
    /// Also write every trial as CSV to this file.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Draw the failover times, measured and ideal, as CDFs on one chart in
    /// this SVG file.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Draw one trial (--timeline-trial) as an SVG timeline in this file:
    /// the first election, the crash and the failover.
    #[arg(long, value_name = "FILE")]
    timeline: Option<PathBuf>,
    /// The trial --timeline draws, counted from 0 (its seed is --seed plus this).
    #[arg(long, default_value_t = 0, requires = "timeline")]
    timeline_trial: u32,
    /// Where the nodes run: tasks of this process over channels, or
    /// `raft-election node` processes over TCP on loopback (127.31.0.x).
    #[arg(long, value_enum, default_value_t = TransportKind::InProcess)]
    transport: TransportKind,
    /// The node binary for `--transport tcp`; default: `raft-election`
    /// beside this one (`cargo build --release --bins` builds both).
    #[arg(long, value_name = "PATH")]
    node_binary: Option<PathBuf>,
    /// With `--transport tcp`: where the nodes' data directories go. Every
    /// vote and new term is an fsync there before the message that depends
    /// on it leaves; a memory file system (/dev/shm) leaves the network and
    /// the runtime to be measured, a disk adds its fsync latency.
    #[arg(long, value_name = "DIR", default_value_os_t = std::env::temp_dir())]
    data_root: PathBuf,
    /// With `--transport tcp`: seconds an idle cluster of node processes
    /// runs while its memory, CPU and heartbeat round trips are measured.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    idle_seconds: u64,
    /// Election features of every node, measured and ideal alike: a
    /// comma-separated list of pre-vote, check-quorum, lease-guarded-votes
    /// and leadership-transfer, or all, or none [default: the core's
    /// defaults].
    #[arg(long, value_name = "LIST", default_value_t = Features::default())]
    features: Features,
    /// Also run every trial with these features, interleaved with the main
    /// ones on the same seeds, and print both tables and the ratio of their
    /// medians: what the difference between the two costs. In process only.
    #[arg(long, value_name = "LIST")]
    baseline: Option<Features>,
    /// How the leader goes: crashed at a random moment within a heartbeat
    /// interval, or asked at such a moment to hand its leadership to a
    /// random follower (a planned failover, §3.10; needs
    /// leadership-transfer among the features). Over TCP the request is a
    /// SIGTERM: a node process stopping gracefully hands over first.
    #[arg(long, value_enum, default_value_t = Handover::Crash)]
    handover: Handover,
    /// With `--transport tcp`: peer connections in plaintext, over mutual
    /// TLS (every node with its certificate), or both, interleaved on the
    /// same seeds, with the idle cluster measured each way and the two
    /// compared.
    #[arg(long, value_enum, default_value_t = TlsMode::Off)]
    tls: TlsMode,
}

/// Whether the node processes speak TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum TlsMode {
    /// Plaintext.
    Off,
    /// Mutual TLS.
    On,
    /// Both, every seed each way, TLS first on even seeds.
    Compare,
}

impl TlsMode {
    /// Each way the trials run, the main one first.
    fn ways(self) -> &'static [bool] {
        match self {
            Self::Off => &[false],
            Self::On => &[true],
            Self::Compare => &[true, false],
        }
    }
}

/// How the leader of a trial goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Handover {
    /// Crashed: the followers wait out an election timeout.
    Crash,
    /// Asked to transfer its leadership to a follower.
    Transfer,
}

/// What one run of trials measures: the features of its nodes and how the
/// leader goes.
#[derive(Clone, Copy, Debug)]
struct Setup {
    features: Features,
    handover: Handover,
}

impl Args {
    /// The main setup, and the baseline's if asked for.
    fn setups(&self) -> Vec<Setup> {
        let setup = |features| Setup {
            features,
            handover: self.handover,
        };
        std::iter::once(self.features)
            .chain(self.baseline)
            .map(setup)
            .collect()
    }
}

/// Where the benchmark's nodes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum TransportKind {
    /// Tasks of this process, channels between them.
    InProcess,
    /// One process per node, TCP between them.
    Tcp,
}

/// One failover, in milliseconds from the crash.
#[derive(Clone, Copy, Debug, Default)]
struct Trial {
    initial_elected: f64,
    initial_all_know: f64,
    elected: f64,
    all_know: f64,
    rounds: u64,
}

/// Generous bounds so a broken runtime fails a trial instead of hanging: at
/// least this, and at least twenty rounds of the longest election timeout.
const WAIT: Duration = Duration::from_secs(5);

/// How long a trial waits for anything, for these timeouts.
fn wait_bound(timing: Timing) -> Duration {
    timing
        .election_timeout_max
        .checked_mul(20)
        .unwrap_or(Duration::MAX)
        .max(WAIT)
}

/// The flags, the timing ones not given set to the `--timing` profile's.
fn parse() -> Args {
    let matches = Args::command().get_matches();
    let mut args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let profile = args.timing.timing();
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let defaulted = |id: &str| matches.value_source(id) != Some(ValueSource::CommandLine);
    if defaulted("min_ms") {
        args.min_ms = ms(profile.election_timeout_min);
    }
    if defaulted("max_ms") {
        args.max_ms = ms(profile.election_timeout_max);
    }
    if defaulted("heartbeat_ms") {
        args.heartbeat_ms = ms(profile.heartbeat_interval);
    }
    args
}

fn main() -> ExitCode {
    let args = parse();
    let timing = Timing {
        election_timeout_min: Duration::from_millis(args.min_ms),
        election_timeout_max: Duration::from_millis(args.max_ms),
        heartbeat_interval: Duration::from_millis(args.heartbeat_ms),
    };
    if let Err(e) = timing.validate() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    // Files are written after minutes of trials: find a bad path now.
    for path in [&args.csv, &args.plot, &args.timeline]
        .into_iter()
        .flatten()
    {
        if let Err(e) = raft_election_timeline::check_writable(path) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if args.timeline.is_some() && args.transport == TransportKind::Tcp {
        eprintln!(
            "error: --timeline draws a trial of the in-process cluster, whose event log it reads; \
             it cannot draw node processes (--transport tcp)"
        );
        return ExitCode::FAILURE;
    }
    if args.timeline.is_some() && args.timeline_trial >= args.trials {
        eprintln!(
            "error: --timeline-trial {} names no trial: there are {} (0 to {})",
            args.timeline_trial,
            args.trials,
            args.trials - 1
        );
        return ExitCode::FAILURE;
    }
    let setups = args.setups();
    if args.handover == Handover::Transfer && setups.iter().any(|s| !s.features.leadership_transfer)
    {
        eprintln!("error: --handover transfer needs leadership-transfer among the features");
        return ExitCode::FAILURE;
    }
    if args.baseline.is_some() && args.transport == TransportKind::Tcp {
        eprintln!("error: --baseline is measured in process only");
        return ExitCode::FAILURE;
    }
    if args.tls != TlsMode::Off && args.transport != TransportKind::Tcp {
        eprintln!("error: --tls needs --transport tcp");
        return ExitCode::FAILURE;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let load_before = load_average();
    let (measured, idle, delay_us) = match args.transport {
        TransportKind::InProcess => {
            let measured = match runtime.block_on(run_runtime_trials(&args, timing, &setups)) {
                Ok((trials, picture)) => {
                    if let (Some(path), Some(picture)) = (&args.timeline, picture) {
                        if let Err(e) = write_svg(path, &picture) {
                            eprintln!("error: writing {}: {e}", path.display());
                            return ExitCode::FAILURE;
                        }
                        println!(
                            "timeline of trial {}: {}",
                            args.timeline_trial,
                            path.display()
                        );
                    }
                    Ok(trials)
                }
                Err(e) => Err(e),
            };
            (measured, None, args.ideal_delay_us.unwrap_or(100) as f64)
        }
        TransportKind::Tcp => match run_tcp(&args, timing, &runtime) {
            Ok((measured, idle, delay_us)) => (Ok(measured), Some(idle), delay_us),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let measured = match measured {
        Ok(trials) => trials,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ideal: Vec<Vec<Trial>> = setups
        .iter()
        .map(|&setup| run_ideal_trials(&args, timing, delay_us, setup))
        .collect();
    for trials in &ideal {
        let dropped = u64::from(args.ideal_trials).saturating_sub(trials.len() as u64);
        if dropped > 0 {
            eprintln!(
                "warning: {dropped} ideal trials elected no leader within their horizon and are left out"
            );
        }
    }
    if let Some(path) = &args.csv {
        if let Err(e) = write_csv(path, &measured[0]) {
            eprintln!("error: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if let Some(path) = &args.plot {
        if let Err(e) = plot(&args, delay_us, path, &measured[0], &ideal[0]) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        println!("CDF plot: {}", path.display());
    }
    for ((setup, measured), ideal) in setups.iter().zip(&measured).zip(&ideal) {
        report(&args, timing, delay_us, *setup, measured, ideal);
    }
    if let ([main, baseline], [main_ideal, baseline_ideal]) = (&measured[..], &ideal[..]) {
        compare(&setups, [main, baseline], [main_ideal, baseline_ideal]);
    }
    if let [tls, plain] = &measured[..] {
        if args.tls == TlsMode::Compare {
            compare_tls(tls, plain);
        }
    }
    for idle in idle.iter().flatten() {
        idle.report(&args);
    }
    println!(
        "load average (1, 5, 15 min): {load_before} at the start, {} at the end; \
         other work on this machine slows the nodes",
        load_average()
    );
    ExitCode::SUCCESS
}

/// The measured and ideal failover times as CDFs on one chart.
fn plot(
    args: &Args,
    delay_us: f64,
    path: &std::path::Path,
    measured: &[Trial],
    ideal: &[Trial],
) -> Result<(), raft_election_cli::plot::PlotError> {
    let elected = |trials: &[Trial]| trials.iter().map(|t| t.elected).collect::<Vec<_>>();
    let what = match args.handover {
        Handover::Crash => "crashed",
        Handover::Transfer => "asked to hand over",
    };
    let title = format!(
        "Failover: leader {what} to new leader elected ({} nodes, timeouts {}-{} ms, heartbeat {} ms, features {})",
        args.nodes, args.min_ms, args.max_ms, args.heartbeat_ms, args.features
    );
    let series = [
        Series {
            name: "measured (Tokio runtime, real clock)".to_owned(),
            values: elected(measured),
            colour: RGBColor(30, 136, 229),
        },
        Series {
            name: format!("ideal (virtual clock, {delay_us:.0} µs one-way delay)"),
            values: elected(ideal),
            colour: RGBColor(67, 160, 71),
        },
    ];
    let axis = match args.handover {
        Handover::Crash => "ms from the crash to a new leader",
        Handover::Transfer => "ms from the transfer request to a new leader",
    };
    write_cdf_svg(path, &title, axis, &series)
}

/// The machine's load average, as /proc/loadavg says it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

/// An idle cluster measured: memory and CPU of node processes, and the
/// heartbeat round trip over TCP and in process (p50, p99 in µs).
struct Idle {
    /// Whether the nodes spoke TLS.
    tls: bool,
    seconds: u64,
    /// (RSS kB, CPU share of one core) of the leader and of each follower.
    leader: (u64, f64),
    followers: Vec<(u64, f64)>,
    tcp_round_trip_us: (f64, f64),
    tcp_samples: usize,
    /// The in-process cluster's, if measured with this one.
    in_process: Option<((f64, f64), usize)>,
}

impl Idle {
    fn report(&self, args: &Args) {
        let way = if self.tls { "mutual TLS" } else { "plaintext" };
        println!(
            "\nidle cluster of {} node processes ({way}), {} s, heartbeat {} ms:",
            args.nodes, self.seconds, args.heartbeat_ms
        );
        let (rss, cpu) = self.leader;
        println!(
            "  leader:   RSS {:>6.1} MB, CPU {:>5.2}% of one core",
            rss as f64 / 1024.0,
            cpu * 100.0
        );
        for &(rss, cpu) in &self.followers {
            println!(
                "  follower: RSS {:>6.1} MB, CPU {:>5.2}% of one core",
                rss as f64 / 1024.0,
                cpu * 100.0
            );
        }
        println!("heartbeat round trip (AppendEntries sent to its answer stepped, at the leader):");
        let (p50, p99) = self.tcp_round_trip_us;
        println!(
            "  node processes over TCP: p50 {p50:>7.1} µs, p99 {p99:>7.1} µs ({} samples, {way})",
            self.tcp_samples
        );
        if let Some(((p50, p99), samples)) = self.in_process {
            println!(
                "  in-process cluster:      p50 {p50:>7.1} µs, p99 {p99:>7.1} µs ({samples} samples)"
            );
        }
    }
}

/// Runs an idle cluster of node processes (with TLS if `tls`) for
/// `--idle-seconds` (RSS, CPU, round trips from the leader's `stop` line),
/// then, if `in_process`, the in-process cluster for as long (its round
/// trips).
fn measure_idle(
    args: &Args,
    timing: Timing,
    binary: &Path,
    (tls, in_process): (bool, bool),
    runtime: &tokio::runtime::Runtime,
) -> Result<Idle, String> {
    let limit = wait_bound(timing);
    let (mut cluster, _) = processes::start(
        binary,
        &args.data_root,
        (args.nodes, tls),
        (32, port_of_this_process()),
        timing,
        args.features,
    )?;
    let (leader, term, _) = processes::wait_for_leader_after(&cluster, Term(0), limit)?;
    processes::wait_all_follow(&cluster, leader, term, limit)?;
    let ids: Vec<NodeId> = (1..=args.nodes).map(NodeId).collect();
    let pids: Vec<(NodeId, u32)> = ids
        .iter()
        .filter_map(|&id| Some((id, cluster.pid(id)?)))
        .collect();
    let before: Vec<(u64, f64)> = pids
        .iter()
        .map(|&(_, pid)| usage(pid))
        .collect::<Result<_, _>>()?;
    eprintln!(
        "idle cluster of node processes: measuring for {} s",
        args.idle_seconds
    );
    std::thread::sleep(Duration::from_secs(args.idle_seconds));
    let after: Vec<(u64, f64)> = pids
        .iter()
        .map(|&(_, pid)| usage(pid))
        .collect::<Result<_, _>>()?;
    let mut followers = Vec::new();
    let mut leader_usage = (0, 0.0);
    for (i, &(id, _)) in pids.iter().enumerate() {
        let cpu = (after[i].1 - before[i].1) / args.idle_seconds as f64;
        if id == leader {
            leader_usage = (after[i].0, cpu);
        } else {
            followers.push((after[i].0, cpu));
        }
    }
    cluster.terminate_all(limit)?;
    let history = cluster.history();
    let stop = history
        .nodes
        .get(&leader)
        .and_then(NodeLog::stopped)
        .ok_or("no stop line from the leader")?;
    let NodeEvent::Stopped {
        round_trips: tcp_samples,
        round_trip_p50_us: Some(p50),
        round_trip_p99_us: Some(p99),
        ..
    } = *stop
    else {
        return Err("no round trips measured".to_owned());
    };
    let tcp_round_trip_us = (p50, p99);
    let seconds = args.idle_seconds;
    let mut idle = Idle {
        tls,
        seconds,
        leader: leader_usage,
        followers,
        tcp_round_trip_us,
        tcp_samples,
        in_process: None,
    };
    if in_process {
        idle.in_process = Some(measure_in_process(args, timing, runtime)?);
    }
    Ok(idle)
}

/// The in-process cluster's heartbeat round trips (p50, p99 in µs, and the
/// samples) over `--idle-seconds`.
fn measure_in_process(
    args: &Args,
    timing: Timing,
    runtime: &tokio::runtime::Runtime,
) -> Result<((f64, f64), usize), String> {
    let (limit, seconds) = (wait_bound(timing), args.idle_seconds);
    eprintln!("in-process cluster: measuring for {seconds} s");
    let in_process = runtime.block_on(async {
        let config = ClusterConfig {
            nodes: args.nodes,
            timing,
            timeouts: TimeoutSource::Seeded(args.seed),
            ..ClusterConfig::default()
        };
        let cluster = spawn_cluster(config).map_err(|e| e.to_string())?;
        cluster
            .wait_for_leader(limit)
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let round_trips = cluster.round_trips();
        cluster.shutdown().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(round_trips)
    })?;
    let micros = |permille| {
        in_process
            .percentile(permille)
            .map_or(f64::NAN, |d| ms(d) * 1e3)
    };
    Ok(((micros(500), micros(990)), in_process.samples().count()))
}

/// What the node processes gave: the trials of each way of `--tls`, the
/// idle cluster of each, and the ideal's one-way delay in µs.
type TcpRun = (Vec<Vec<Trial>>, Vec<Idle>, f64);

/// Everything with node processes: the idle cluster of each way of
/// `--tls`, then the trials; with the one-way delay the ideal uses, half
/// the first way's round trip unless `--ideal-delay-us` says.
fn run_tcp(
    args: &Args,
    timing: Timing,
    runtime: &tokio::runtime::Runtime,
) -> Result<TcpRun, String> {
    let binary = args
        .node_binary
        .clone()
        .unwrap_or_else(processes::default_binary);
    if !binary.is_file() {
        return Err(format!(
            "no node binary at {} (build it: cargo build --release --bins)",
            binary.display()
        ));
    }
    let idle: Vec<Idle> = (args.tls.ways().iter().enumerate())
        .map(|(i, &tls)| measure_idle(args, timing, &binary, (tls, i == 0), runtime))
        .collect::<Result<_, _>>()?;
    let delay_us = args
        .ideal_delay_us
        .map_or(idle[0].tcp_round_trip_us.0 / 2.0, |d| d as f64);
    let measured = run_tcp_trials(args, timing, &binary)?;
    Ok((measured, idle, delay_us))
}

/// The trials with node processes, for each way of `--tls` (the main one
/// first): each seed runs every way, in an order alternating by seed, so
/// drifting load weighs on both alike.
fn run_tcp_trials(args: &Args, timing: Timing, binary: &Path) -> Result<Vec<Vec<Trial>>, String> {
    let ways = args.tls.ways();
    let mut trials = vec![Vec::with_capacity(args.trials as usize); ways.len()];
    let bar = progress::bar(u64::from(args.trials), "trials");
    bar.set_message("node processes");
    for i in 0..args.trials {
        let seed = args.seed.wrapping_add(u64::from(i));
        let mut order: Vec<usize> = (0..ways.len()).collect();
        if i % 2 == 1 {
            order.reverse();
        }
        for way in order {
            let trial = tcp_trial(args, timing, binary, (seed, ways[way]))
                .map_err(|e| format!("trial {i} (seed {seed}): {e}"))?;
            trials[way].push(trial);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(trials)
}

/// One trial with node processes: start them, wait for a leader and for
/// everyone to follow it, `kill -9` it (SIGTERM with `--handover
/// transfer`) at a random moment within a heartbeat interval (after
/// three), time the successor from the nodes' own log timestamps.
fn tcp_trial(
    args: &Args,
    timing: Timing,
    binary: &Path,
    (seed, tls): (u64, bool),
) -> Result<Trial, String> {
    let limit = wait_bound(timing);
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let (mut cluster, started) = processes::start(
        binary,
        &args.data_root,
        (args.nodes, tls),
        (31, port_of_this_process()),
        timing,
        args.features,
    )?;
    let (leader, term, won) = processes::wait_for_leader_after(&cluster, Term(0), limit)?;
    let all_know = processes::wait_all_follow(&cluster, leader, term, limit)?;
    let h = timing.heartbeat_interval;
    std::thread::sleep(h * 3 + h.mul_f64(rng.random::<f64>()));
    let crashed = seconds(match args.handover {
        Handover::Crash => cluster.kill(leader),
        Handover::Transfer => cluster.stop(leader),
    });
    let (successor, new_term, elected) = processes::wait_for_leader_after(&cluster, term, limit)?;
    let everyone = processes::wait_all_follow(&cluster, successor, new_term, limit)?;
    Ok(Trial {
        initial_elected: (won - started) * 1e3,
        initial_all_know: (all_know - started) * 1e3,
        elected: (elected - crashed) * 1e3,
        all_know: (everyone - crashed) * 1e3,
        rounds: new_term.0 - term.0,
    })
}

/// Every runtime trial of every setup, and the timeline of the one
/// `--timeline` asks for (of the main setup). With two setups each seed runs
/// both, in an order alternating by seed, so drifting load weighs on both
/// alike.
async fn run_runtime_trials(
    args: &Args,
    timing: Timing,
    setups: &[Setup],
) -> Result<(Vec<Vec<Trial>>, Option<Timeline>), String> {
    let mut trials = vec![Vec::with_capacity(args.trials as usize); setups.len()];
    let mut picture = None;
    let bar = progress::bar(u64::from(args.trials), "trials");
    bar.set_message("runtime");
    for i in 0..args.trials {
        let seed = args.seed.wrapping_add(u64::from(i));
        for k in 0..setups.len() {
            let which = (k + i as usize) % setups.len();
            let draw = args.timeline.is_some() && i == args.timeline_trial && which == 0;
            let (trial, drawn) = runtime_trial(args.nodes, timing, setups[which], seed, draw)
                .await
                .map_err(|e| format!("trial {i} (seed {seed}): {e}"))?;
            trials[which].push(trial);
            picture = picture.or(drawn);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((trials, picture))
}

async fn runtime_trial(
    nodes: u8,
    timing: Timing,
    setup: Setup,
    seed: u64,
    draw: bool,
) -> Result<(Trial, Option<Timeline>), String> {
    let config = ClusterConfig {
        nodes,
        timing,
        features: setup.features,
        timeouts: TimeoutSource::Seeded(seed),
        ..ClusterConfig::default()
    };
    let cluster = spawn_cluster(config).map_err(|e| e.to_string())?;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let (leader, term) = cluster
        .wait_for_leader(wait_bound(timing))
        .await
        .map_err(|e| e.to_string())?;
    let initial_elected = became_leader_at(&cluster, leader, term).ok_or("no leader event")?;
    wait_all_follow(&cluster, leader, term).await?;
    let initial_all_know = ms(cluster.elapsed());

    // Let the cluster settle for a few heartbeats, then crash the leader (or
    // ask it to hand over) at a uniformly random point within one heartbeat
    // interval.
    let h = timing.heartbeat_interval;
    let offset = h.mul_f64(rng.random::<f64>());
    let target = NodeId((leader.0 + rng.random_range(1..nodes)) % nodes);
    tokio::time::sleep(h * 3 + offset).await;
    let crashed_at = cluster.elapsed();
    let what = match setup.handover {
        Handover::Crash => {
            cluster.crash(leader).await.map_err(|e| e.to_string())?;
            format!("{leader} crashed")
        }
        Handover::Transfer => {
            cluster
                .transfer_leadership(target)
                .map_err(|e| e.to_string())?;
            format!("{leader} asked to hand over to {target}")
        }
    };
    let (new_leader, new_term) = cluster
        .wait_for_leader_after(term, wait_bound(timing))
        .await
        .map_err(|e| e.to_string())?;
    let elected = became_leader_at(&cluster, new_leader, new_term).ok_or("no leader event")?;
    wait_all_follow(&cluster, new_leader, new_term).await?;
    let all_know = ms(cluster.elapsed() - crashed_at);
    cluster.check_safety().map_err(|e| e.to_string())?;
    let picture = draw.then(|| {
        let at = |ms: f64| Duration::from_secs_f64(ms / 1e3);
        let notes = [
            (at(initial_elected), format!("{leader} elected in {term}")),
            (crashed_at, what),
            (
                at(elected),
                format!(
                    "{new_leader} elected in {new_term}, {:.1} ms later",
                    elected - ms(crashed_at)
                ),
            ),
        ];
        let title = format!(
            "Failover trial, seed {seed}: {nodes} nodes, timeouts {:?}-{:?}, heartbeat {:?}, features {}",
            timing.election_timeout_min,
            timing.election_timeout_max,
            timing.heartbeat_interval,
            setup.features
        );
        timeline(&title, cluster.config().ids(), &cluster.events(), &notes)
    });
    cluster.shutdown().await.map_err(|e| e.to_string())?;
    let trial = Trial {
        initial_elected,
        initial_all_know,
        elected: elected - ms(crashed_at),
        all_know,
        rounds: new_term.0 - term.0,
    };
    Ok((trial, picture))
}

/// When `leader` became leader of `term`, in ms since the cluster started.
fn became_leader_at(cluster: &ClusterHandle, leader: NodeId, term: Term) -> Option<f64> {
    cluster.events().iter().find_map(|e| {
        let won = e.node == leader
            && e.term == term
            && matches!(
                e.kind,
                EventKind::RoleChanged {
                    to: Role::Leader,
                    ..
                }
            );
        won.then(|| ms(e.at))
    })
}

async fn wait_all_follow(
    cluster: &ClusterHandle,
    leader: NodeId,
    term: Term,
) -> Result<(), String> {
    let wait = wait_bound(cluster.config().timing);
    cluster
        .wait_until(|s| s.leader_known_to_all() == Some((leader, term)), wait)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn run_ideal_trials(args: &Args, timing: Timing, delay_us: f64, setup: Setup) -> Vec<Trial> {
    let delay = Duration::from_secs_f64(delay_us / 1e6);
    let bar = progress::bar(u64::from(args.ideal_trials), "trials");
    bar.set_message("ideal");
    let trials = (0..args.ideal_trials)
        .filter_map(|i| {
            bar.inc(1);
            ideal_trial(
                args.nodes,
                timing,
                delay,
                setup,
                args.seed.wrapping_add(u64::from(i)),
            )
        })
        .collect();
    bar.finish_and_clear();
    trials
}

/// The same trial on the core alone, with an ideal network and the same
/// features.
fn ideal_trial(
    nodes: u8,
    timing: Timing,
    delay: Duration,
    setup: Setup,
    seed: u64,
) -> Option<Trial> {
    let configs = Config::cluster(nodes, timing)
        .ok()?
        .into_iter()
        .map(|config| config.with_features(setup.features))
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut offsets = StdRng::seed_from_u64(seed ^ 0x5eed);
    let pick = Box::new(move |min: Duration, max: Duration| {
        if min == max {
            min
        } else {
            rng.random_range(min..=max)
        }
    });
    let mut cluster = TimedCluster::new(configs, delay, pick);
    let horizon = Duration::from_secs(60);
    cluster
        .run_until(horizon, |c| !c.leaders().is_empty())
        .ok()?;
    let (leader, term) = *cluster.leaders().first()?;
    let initial_elected = ms(cluster.now());
    let everyone_follows = |c: &TimedCluster, leader: NodeId, term: Term| {
        (0..nodes).map(NodeId).all(|id| {
            c.node(id)
                .is_none_or(|n| n.current_term() == term && n.leader_id() == Some(leader))
        })
    };
    cluster
        .run_until(horizon, |c| everyone_follows(c, leader, term))
        .ok()?;
    let initial_all_know = ms(cluster.now());

    let h = timing.heartbeat_interval;
    let crash_at = cluster.now() + h * 3 + h.mul_f64(offsets.random::<f64>());
    let target = NodeId((leader.0 + offsets.random_range(1..nodes)) % nodes);
    cluster.run_until(crash_at, |_| false).ok()?;
    match setup.handover {
        Handover::Crash => cluster.crash(leader),
        Handover::Transfer => cluster.transfer_leadership(leader, target).ok()?,
    }
    let newer = |c: &TimedCluster| c.leaders().into_iter().find(|&(_, t)| t > term);
    cluster
        .run_until(crash_at + horizon, |c| newer(c).is_some())
        .ok()?;
    let (new_leader, new_term) = newer(&cluster)?;
    let elected = ms(cluster.now() - crash_at);
    cluster
        .run_until(crash_at + horizon, |c| {
            everyone_follows(c, new_leader, new_term)
        })
        .ok()?;
    Some(Trial {
        initial_elected,
        initial_all_know,
        elected,
        all_know: ms(cluster.now() - crash_at),
        rounds: new_term.0 - term.0,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Min, median, mean, p90, p99, max of `values`.
fn summary(mut values: Vec<f64>) -> [f64; 6] {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return [f64::NAN; 6];
    }
    // Nearest rank on integers: `permille` of the way from the first to the last.
    let at = |permille: usize| values[(n - 1) * permille / 1000];
    let mean = values.iter().sum::<f64>() / n as f64;
    [values[0], at(500), mean, at(900), at(990), values[n - 1]]
}

fn report(
    args: &Args,
    timing: Timing,
    delay_us: f64,
    setup: Setup,
    measured: &[Trial],
    ideal: &[Trial],
) {
    let t = ms(timing.election_timeout_min);
    let r = ms(timing.election_timeout_max) - t;
    let h = ms(timing.heartbeat_interval);
    let d = delay_us / 1e3;
    let s = f64::from(args.nodes - 1);
    // Raft thesis ch. 9: first of s uniform timeouts, minus the mean time
    // since the last heartbeat, plus vote request/reply and a heartbeat.
    let formula_mean = t + r / (s + 1.0) - h / 2.0 + 3.0 * d;
    let l = if r > 0.0 { d / r } else { 1.0 };
    let formula_split = 1.0 - (1.0 - l).powf(s);

    let transport = match args.transport {
        TransportKind::InProcess => "in one process",
        TransportKind::Tcp => &format!(
            "node processes over TCP, data in {}",
            args.data_root.display()
        ),
    };
    let what = match setup.handover {
        Handover::Crash => "crash",
        Handover::Transfer => "transfer",
    };
    println!(
        "\nfailover by {what} ({transport}): {} nodes, timeouts {}-{} ms, heartbeat {} ms, features {}, {} trials ({} ideal, one-way delay {d:.3} ms), seed {}",
        args.nodes,
        args.min_ms,
        args.max_ms,
        args.heartbeat_ms,
        setup.features,
        measured.len(),
        ideal.len(),
        args.seed
    );
    // A transfer takes a few message delays: fractions of a millisecond.
    let digits = match setup.handover {
        Handover::Crash => 1,
        Handover::Transfer => 3,
    };
    println!("(ms)                         min   median     mean      p90      p99      max");
    let row = |name: &str, values: Vec<f64>| {
        let [min, med, mean, p90, p99, max] = summary(values);
        println!(
            "{name:<24} {min:>8.digits$} {med:>8.digits$} {mean:>8.digits$} {p90:>8.digits$} {p99:>8.digits$} {max:>8.digits$}"
        );
    };
    let col = |trials: &[Trial], f: fn(&Trial) -> f64| trials.iter().map(f).collect::<Vec<_>>();
    row("initial elected", col(measured, |t| t.initial_elected));
    row("  ideal (sim)", col(ideal, |t| t.initial_elected));
    row("initial all know", col(measured, |t| t.initial_all_know));
    row("  ideal (sim)", col(ideal, |t| t.initial_all_know));
    row("failover elected", col(measured, |t| t.elected));
    row("  ideal (sim)", col(ideal, |t| t.elected));
    row("failover all know", col(measured, |t| t.all_know));
    row("  ideal (sim)", col(ideal, |t| t.all_know));
    if setup.handover == Handover::Crash {
        println!("formula mean (thesis ch. 9, d = {d:.3} ms): {formula_mean:.1}");
    }

    let split = |trials: &[Trial]| {
        let splits = trials.iter().filter(|t| t.rounds > 1).count();
        let rate = 100.0 * splits as f64 / trials.len().max(1) as f64;
        format!("{rate:.2}% ({splits}/{})", trials.len())
    };
    // The formula is that of a failover by timeout; a transfer has none.
    let formula = match setup.handover {
        Handover::Crash => format!(", formula {:.2}%", 100.0 * formula_split),
        Handover::Transfer => String::new(),
    };
    println!(
        "split rate: measured {}, ideal sim {}{formula}",
        split(measured),
        split(ideal),
    );
    if setup.handover == Handover::Transfer {
        let [_, med, _, _, p99, _] = summary(col(measured, |t| t.all_know));
        println!(
            "transfer to every follower knowing the new leader: median {med:.3} ms, p99 {p99:.3} ms"
        );
    }
    let [_, m_med, m_mean, _, m_p99, _] = summary(col(measured, |t| t.elected));
    let [_, i_med, i_mean, _, i_p99, _] = summary(col(ideal, |t| t.elected));
    println!(
        "measured/ideal: median {:.3}, mean {:.3}, p99 {:.3}",
        m_med / i_med,
        m_mean / i_mean,
        m_p99 / i_p99
    );
}

/// What the main features cost against the baseline's, per statistic of the
/// failover (new leader elected), measured and ideal.
fn compare(setups: &[Setup], measured: [&[Trial]; 2], ideal: [&[Trial]; 2]) {
    let elected = |trials: &[Trial]| summary(trials.iter().map(|t| t.elected).collect());
    println!(
        "\nfeatures {} against baseline {} (failover: new leader elected)",
        setups[0].features, setups[1].features
    );
    for (name, [main, baseline]) in [("measured", measured), ("ideal", ideal)] {
        let ([_, m_med, m_mean, _, m_p99, _], [_, b_med, b_mean, _, b_p99, _]) =
            (elected(main), elected(baseline));
        println!(
            "  {name:<9} median {m_med:.1} vs {b_med:.1} ms ({:+.2}%), mean {m_mean:.1} vs {b_mean:.1} ms ({:+.2}%), p99 {m_p99:.1} vs {b_p99:.1} ms",
            100.0 * (m_med / b_med - 1.0),
            100.0 * (m_mean / b_mean - 1.0),
        );
    }
}

/// One figure of a trial.
type Column = fn(&Trial) -> f64;

/// TLS against plaintext, trial for trial on the same seeds: the
/// failover (new leader elected, every follower knowing it) and the first
/// election.
fn compare_tls(tls: &[Trial], plain: &[Trial]) {
    println!("\nmutual TLS against plaintext, interleaved on the same seeds (ms):");
    println!("                      TLS median  plain median   ratio   TLS p99  plain p99   ratio");
    let rows: [(&str, Column); 3] = [
        ("failover elected", |t| t.elected),
        ("failover all know", |t| t.all_know),
        ("initial all know", |t| t.initial_all_know),
    ];
    for (name, f) in rows {
        let [_, t_med, _, _, t_p99, _] = summary(tls.iter().map(f).collect());
        let [_, p_med, _, _, p_p99, _] = summary(plain.iter().map(f).collect());
        println!(
            "  {name:<18} {t_med:>12.1} {p_med:>13.1} {:>7.3} {t_p99:>9.1} {p_p99:>10.1} {:>7.3}",
            t_med / p_med,
            t_p99 / p_p99
        );
    }
    // A split vote costs an election timeout: at a p99 it outweighs the rest.
    let splits = |trials: &[Trial]| trials.iter().filter(|t| t.rounds > 1).count();
    println!(
        "  split votes: TLS {}, plaintext {} of {} trials each",
        splits(tls),
        splits(plain),
        tls.len()
    );
}

fn write_csv(path: &std::path::Path, trials: &[Trial]) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        file,
        "trial,initial_elected_ms,initial_all_know_ms,elected_ms,all_know_ms,rounds"
    )?;
    for (i, t) in trials.iter().enumerate() {
        writeln!(
            file,
            "{i},{:.3},{:.3},{:.3},{:.3},{}",
            t.initial_elected, t.initial_all_know, t.elected, t.all_know, t.rounds
        )?;
    }
    file.flush()
}
