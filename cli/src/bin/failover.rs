//! Failover benchmark: how long the Tokio runtime takes to elect a leader,
//! and to replace a crashed one, against the ideal.
//!
//! `cargo run --release --bin failover -- --trials 500`
//!
//! `--features` picks the election features of every node, measured and
//! ideal alike; `--baseline` runs every trial a second time with other
//! features (interleaved, same seeds) and prints what the difference costs.
//! `--handover transfer` replaces the crash by a planned failover: the
//! leader is asked to hand its leadership to a random follower (§3.10).
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
use raft_election::{Config, Features, NodeId, Role, Term, Timing};
use raft_election_runtime::{
    ClusterConfig, ClusterHandle, EventKind, TimeoutSource, spawn_cluster,
};
use raft_election_sim::timed::TimedCluster;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::io::Write;
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
    csv: Option<std::path::PathBuf>,
    /// Election features of every node, measured and ideal alike: a
    /// comma-separated list of pre-vote, check-quorum, lease-guarded-votes
    /// and leadership-transfer, or all, or none [default: the core's
    /// defaults].
    #[arg(long, value_name = "LIST", default_value_t = Features::default())]
    features: Features,
    /// Also run every trial with these features, interleaved with the main
    /// ones on the same seeds, and print both tables and the ratio of their
    /// medians: what the difference between the two costs.
    #[arg(long, value_name = "LIST")]
    baseline: Option<Features>,
    /// How the leader goes: crashed at a random moment within a heartbeat
    /// interval, or asked at such a moment to hand its leadership to a
    /// random follower (a planned failover, §3.10; needs
    /// leadership-transfer among the features).
    #[arg(long, value_enum, default_value_t = Handover::Crash)]
    handover: Handover,
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
    let setups = args.setups();
    if args.handover == Handover::Transfer && setups.iter().any(|s| !s.features.leadership_transfer)
    {
        eprintln!("error: --handover transfer needs leadership-transfer among the features");
        return ExitCode::FAILURE;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let measured = match runtime.block_on(run_runtime_trials(&args, timing, &setups)) {
        Ok(trials) => trials,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ideal: Vec<Vec<Trial>> = setups
        .iter()
        .map(|&setup| run_ideal_trials(&args, timing, setup))
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
    for ((setup, measured), ideal) in setups.iter().zip(&measured).zip(&ideal) {
        report(&args, timing, *setup, measured, ideal);
    }
    if let ([main, baseline], [main_ideal, baseline_ideal]) = (&measured[..], &ideal[..]) {
        compare(&setups, [main, baseline], [main_ideal, baseline_ideal]);
    }
    ExitCode::SUCCESS
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

/// Runs every trial of every setup; with two, each seed runs both, in an
/// order alternating by seed, so drifting load weighs on both alike.
async fn run_runtime_trials(
    args: &Args,
    timing: Timing,
    setups: &[Setup],
) -> Result<Vec<Vec<Trial>>, String> {
    let mut trials = vec![Vec::with_capacity(args.trials as usize); setups.len()];
    for i in 0..args.trials {
        let seed = args.seed.wrapping_add(u64::from(i));
        for k in 0..setups.len() {
            let which = (k + i as usize) % setups.len();
            let trial = runtime_trial(args.nodes, timing, setups[which], seed)
                .await
                .map_err(|e| format!("trial {i} (seed {seed}): {e}"))?;
            trials[which].push(trial);
        }
        if (i + 1) % 50 == 0 || i + 1 == args.trials {
            eprint!("\rruntime trials: {}/{}", i + 1, args.trials);
        }
    }
    eprintln!();
    Ok(trials)
}

async fn runtime_trial(
    nodes: u8,
    timing: Timing,
    setup: Setup,
    seed: u64,
) -> Result<Trial, String> {
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
    match setup.handover {
        Handover::Crash => cluster.crash(leader).await.map_err(|e| e.to_string())?,
        Handover::Transfer => {
            cluster
                .transfer_leadership(target)
                .map_err(|e| e.to_string())?;
        }
    }
    let (new_leader, new_term) = cluster
        .wait_for_leader_after(term, wait_bound(timing))
        .await
        .map_err(|e| e.to_string())?;
    let elected = became_leader_at(&cluster, new_leader, new_term).ok_or("no leader event")?;
    wait_all_follow(&cluster, new_leader, new_term).await?;
    let all_know = ms(cluster.elapsed() - crashed_at);
    cluster.check_safety().map_err(|e| e.to_string())?;
    cluster.shutdown().await.map_err(|e| e.to_string())?;
    Ok(Trial {
        initial_elected,
        initial_all_know,
        elected: elected - ms(crashed_at),
        all_know,
        rounds: new_term.0 - term.0,
    })
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

fn run_ideal_trials(args: &Args, timing: Timing, setup: Setup) -> Vec<Trial> {
    let delay = Duration::from_micros(args.ideal_delay_us);
    (0..args.ideal_trials)
        .filter_map(|i| {
            ideal_trial(
                args.nodes,
                timing,
                delay,
                setup,
                args.seed.wrapping_add(u64::from(i)),
            )
        })
        .collect()
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

fn report(args: &Args, timing: Timing, setup: Setup, measured: &[Trial], ideal: &[Trial]) {
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

    let what = match setup.handover {
        Handover::Crash => "crash",
        Handover::Transfer => "transfer",
    };
    println!(
        "\nfailover by {what}: {} nodes, timeouts {}-{} ms, heartbeat {} ms, features {}, {} trials ({} ideal), seed {}",
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
        println!("formula mean (thesis ch. 9, d = {d} ms): {formula_mean:.1}");
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
