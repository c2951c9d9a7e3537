//! Failover benchmark: how long the Tokio runtime takes to elect a leader,
//! and to replace a crashed one, against the ideal.
//!
//! `cargo run --release --bin failover -- --trials 500`
//!
//! Each trial starts a fresh cluster on the real clock, waits for a leader,
//! lets a few heartbeats pass, crashes the leader at a uniformly random moment
//! within a heartbeat interval, and measures the time until a new leader is
//! elected and until every live follower has heard from it. The same trials
//! are replayed on the core alone (`timed::TimedCluster`: a virtual clock and
//! an ideal network with a fixed one-way delay), and the Raft thesis's
//! closed-form expectation is printed beside both. Nothing is asserted: this
//! prints figures.

use clap::Parser;
use plotters::style::RGBColor;
use raft_election::{Config, NodeId, Role, Term, Timing};
use raft_election_cli::plot::{Series, write_cdf_svg};
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
use std::path::PathBuf;
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
    /// Minimum election timeout, ms.
    #[arg(long, default_value_t = 150)]
    min_ms: u64,
    /// Maximum election timeout, ms.
    #[arg(long, default_value_t = 300)]
    max_ms: u64,
    /// Heartbeat interval, ms.
    #[arg(long, default_value_t = 50)]
    heartbeat_ms: u64,
    /// Base seed; trial `i` uses `seed + i`.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Trials of the ideal simulation (cheap: virtual time), so its figures
    /// carry less sampling noise than the measured ones they are compared to.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    ideal_trials: u32,
    /// One-way message delay of the ideal simulation, µs.
    #[arg(long, default_value_t = 100)]
    ideal_delay_us: u64,
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

fn main() -> ExitCode {
    let args = Args::parse();
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
        if let Err(e) = raft_election_cli::check_writable(path) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let measured = match runtime.block_on(run_runtime_trials(&args, timing)) {
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
            trials
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ideal = run_ideal_trials(&args, timing);
    let dropped = u64::from(args.ideal_trials).saturating_sub(ideal.len() as u64);
    if dropped > 0 {
        eprintln!(
            "warning: {dropped} ideal trials elected no leader within their horizon and are left out"
        );
    }
    if let Some(path) = &args.csv {
        if let Err(e) = write_csv(path, &measured) {
            eprintln!("error: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if let Some(path) = &args.plot {
        if let Err(e) = plot(&args, path, &measured, &ideal) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        println!("CDF plot: {}", path.display());
    }
    report(&args, timing, &measured, &ideal);
    ExitCode::SUCCESS
}

/// The measured and ideal failover times as CDFs on one chart.
fn plot(
    args: &Args,
    path: &std::path::Path,
    measured: &[Trial],
    ideal: &[Trial],
) -> Result<(), raft_election_cli::plot::PlotError> {
    let elected = |trials: &[Trial]| trials.iter().map(|t| t.elected).collect::<Vec<_>>();
    let title = format!(
        "Failover: leader crashed to new leader elected ({} nodes, timeouts {}-{} ms, heartbeat {} ms)",
        args.nodes, args.min_ms, args.max_ms, args.heartbeat_ms
    );
    let series = [
        Series {
            name: "measured (Tokio runtime, real clock)".to_owned(),
            values: elected(measured),
            colour: RGBColor(30, 136, 229),
        },
        Series {
            name: format!(
                "ideal (virtual clock, {} µs one-way delay)",
                args.ideal_delay_us
            ),
            values: elected(ideal),
            colour: RGBColor(67, 160, 71),
        },
    ];
    write_cdf_svg(path, &title, "ms from the crash to a new leader", &series)
}

/// Every runtime trial, and the timeline of the one `--timeline` asks for.
async fn run_runtime_trials(
    args: &Args,
    timing: Timing,
) -> Result<(Vec<Trial>, Option<Timeline>), String> {
    let mut trials = Vec::with_capacity(args.trials as usize);
    let mut picture = None;
    let bar = progress::bar(u64::from(args.trials), "trials");
    bar.set_message("runtime");
    for i in 0..args.trials {
        let seed = args.seed.wrapping_add(u64::from(i));
        let draw = args.timeline.is_some() && i == args.timeline_trial;
        let (trial, drawn) = runtime_trial(args.nodes, timing, seed, draw)
            .await
            .map_err(|e| format!("trial {i} (seed {seed}): {e}"))?;
        trials.push(trial);
        picture = picture.or(drawn);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((trials, picture))
}

async fn runtime_trial(
    nodes: u8,
    timing: Timing,
    seed: u64,
    draw: bool,
) -> Result<(Trial, Option<Timeline>), String> {
    let config = ClusterConfig {
        nodes,
        timing,
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

    // Let the cluster settle for a few heartbeats, then crash the leader at a
    // uniformly random point within one heartbeat interval.
    let h = timing.heartbeat_interval;
    let offset = h.mul_f64(rng.random::<f64>());
    tokio::time::sleep(h * 3 + offset).await;
    let crashed_at = cluster.elapsed();
    cluster.crash(leader).await.map_err(|e| e.to_string())?;
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
            (crashed_at, format!("{leader} crashed")),
            (
                at(elected),
                format!(
                    "{new_leader} elected in {new_term}, {:.1} ms after the crash",
                    elected - ms(crashed_at)
                ),
            ),
        ];
        let title = format!(
            "Failover trial, seed {seed}: {nodes} nodes, timeouts {:?}-{:?}, heartbeat {:?}",
            timing.election_timeout_min, timing.election_timeout_max, timing.heartbeat_interval
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

fn run_ideal_trials(args: &Args, timing: Timing) -> Vec<Trial> {
    let delay = Duration::from_micros(args.ideal_delay_us);
    let bar = progress::bar(u64::from(args.ideal_trials), "trials");
    bar.set_message("ideal");
    let trials = (0..args.ideal_trials)
        .filter_map(|i| {
            bar.inc(1);
            ideal_trial(
                args.nodes,
                timing,
                delay,
                args.seed.wrapping_add(u64::from(i)),
            )
        })
        .collect();
    bar.finish_and_clear();
    trials
}

/// The same trial on the core alone, with an ideal network.
fn ideal_trial(nodes: u8, timing: Timing, delay: Duration, seed: u64) -> Option<Trial> {
    let configs = Config::cluster(nodes, timing).ok()?;
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
    cluster.run_until(crash_at, |_| false).ok()?;
    cluster.crash(leader);
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

fn report(args: &Args, timing: Timing, measured: &[Trial], ideal: &[Trial]) {
    let t = ms(timing.election_timeout_min);
    let r = ms(timing.election_timeout_max) - t;
    let h = ms(timing.heartbeat_interval);
    let d = args.ideal_delay_us as f64 / 1e3;
    let s = f64::from(args.nodes - 1);
    // Raft thesis ch. 9: first of s uniform timeouts, minus the mean time
    // since the last heartbeat, plus vote request/reply and a heartbeat.
    let formula_mean = t + r / (s + 1.0) - h / 2.0 + 3.0 * d;
    let l = if r > 0.0 { d / r } else { 1.0 };
    let formula_split = 1.0 - (1.0 - l).powf(s);

    println!(
        "failover: {} nodes, timeouts {}-{} ms, heartbeat {} ms, {} trials ({} ideal), seed {}",
        args.nodes,
        args.min_ms,
        args.max_ms,
        args.heartbeat_ms,
        measured.len(),
        ideal.len(),
        args.seed
    );
    println!("(ms)                         min   median     mean      p90      p99      max");
    let row = |name: &str, values: Vec<f64>| {
        let [min, med, mean, p90, p99, max] = summary(values);
        println!("{name:<24} {min:>8.1} {med:>8.1} {mean:>8.1} {p90:>8.1} {p99:>8.1} {max:>8.1}");
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
    println!("formula mean (thesis ch. 9, d = {d} ms): {formula_mean:.1}");

    let split = |trials: &[Trial]| {
        let splits = trials.iter().filter(|t| t.rounds > 1).count();
        let rate = 100.0 * splits as f64 / trials.len().max(1) as f64;
        format!("{rate:.2}% ({splits}/{})", trials.len())
    };
    println!(
        "split rate: measured {}, ideal sim {}, formula {:.2}%",
        split(measured),
        split(ideal),
        100.0 * formula_split
    );
    let [_, m_med, m_mean, _, m_p99, _] = summary(col(measured, |t| t.elected));
    let [_, i_med, i_mean, _, i_p99, _] = summary(col(ideal, |t| t.elected));
    println!(
        "measured/ideal: median {:.3}, mean {:.3}, p99 {:.3}",
        m_med / i_med,
        m_mean / i_mean,
        m_p99 / i_p99
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
