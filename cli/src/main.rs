//! `cargo run`: a short Raft election story on the real clock.
//!
//! Start a cluster, elect a leader, crash it, elect another, bring the dead one
//! back, cut the new leader off so the majority elects a third, heal, and
//! watch the stale leader step down. Each step has a deadline; the program
//! exits 0 if every step happened and 1 with the reason otherwise.
//!
//! With `--data-dir DIR` each node keeps its term and vote in a file in DIR,
//! and the next run (or the next `--rounds` round) resumes from them.
//!
//! `raft-election node ...` runs one node of a real cluster instead: a
//! process of its own, over TCP (see `node.rs`).

mod certs_command;
mod cluster_view;
mod log_timeline;
mod node;
mod timing;
mod watchdog;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use raft_election::{HardState, Message, NodeId, Role, Term};
use raft_election_cli::logging::{LogFormat, init_logging};
use raft_election_cli::timeline::{timeline, write_svg};
use raft_election_runtime::{
    ClusterConfig, ClusterHandle, Delivery, EventKind, NodeStatus, StorageKind, TimeoutSource,
    spawn_cluster,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use tokio::time::Instant;

/// Prints a line of the story. A closed stdout (`cargo run | head`) is no
/// failure of the story, so write errors are ignored rather than panicking
/// as `println!` does.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Raft leader election, told step by step: who times out, who votes for
/// whom, who leads which term. `raft-election node` runs one node of a real
/// cluster instead.
#[derive(Debug, Parser)]
#[command(
    version,
    args_conflicts_with_subcommands = true,
    after_help = "The story, on the real clock: start; a leader is elected; the leader is \
crashed and the others elect a new one; the dead node restarts from its stored term and \
vote; the new leader is cut off and the majority elects a third; the partition heals and \
the stale leader steps down. Lines name nodes (n0, n1, ...) and terms (t1, t2, ...). \
Exits 0 when every step happened, 1 with the reason otherwise.

With --data-dir DIR, each node's term and vote live in DIR/node-<id>.state (written to a \
temporary file, fsynced, renamed over the old one); a second run prints what each node \
restored and continues from those terms. A directory with no state file is a new cluster: \
its files are created at t0. A missing, corrupt or foreign file stops the run with its path \
and reason instead of starting that node from t0. The directory is locked while the demo runs.

`raft-election node --help` tells how to run a real cluster, one process per node, and \
`raft-election timeline --help` how to draw its logs."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    demo: Args,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one node of a real cluster over TCP (one process per node).
    Node(Box<node::NodeArgs>),
    /// Print a cluster's nodes as one table, from their status endpoints.
    Status(cluster_view::StatusArgs),
    /// Ask a cluster's leader to hand its leadership to a node.
    Transfer(cluster_view::TransferArgs),
    /// Draw node processes' JSON logs (`node --log-format json -v`) as an SVG timeline.
    Timeline(log_timeline::TimelineArgs),
    /// Make a CA and node certificates for mutual TLS between nodes.
    Certs(certs_command::CertsArgs),
    /// The watchdog of `node --run-while-leader` (started by the node).
    #[command(hide = true)]
    LeaseWatchdog(watchdog::WatchdogArgs),
}

/// The demo's options.
#[derive(Debug, clap::Args)]
struct Args {
    /// Number of nodes (at least 3: the story crashes a leader and still needs a majority).
    #[arg(long, default_value_t = 3)]
    nodes: u8,
    /// Seed for the random election timeouts; printed so a run can be replayed.
    /// Random if omitted.
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    timing: timing::TimingArgs,
    /// How long each step of the story may take before the demo gives up, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    step_deadline_ms: u64,
    /// Keep each node's term and vote in a file in this directory (created if
    /// missing), so the next run resumes from them. Without it, state is kept
    /// in memory and every run starts at t0.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Tell the story this many times, each on a new cluster restored from
    /// the previous one's storage (with --data-dir, terms keep rising).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    rounds: u32,
    /// Show more: -v every RequestVote and lost message, -vv every heartbeat.
    /// `RUST_LOG` overrides this.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// How log lines look: text (the story's narration) or json (one object a
    /// line, with the node, term and role of the node it comes from).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Also draw the story as an SVG timeline in FILE: one lane per node,
    /// roles as coloured bands with their terms, messages as arrows, faults
    /// and election timeouts as marks, the story's steps numbered. With
    /// --rounds, the last round.
    #[arg(long, value_name = "FILE")]
    timeline: Option<PathBuf>,
}

/// A step of the story that did not happen in time.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
struct StoryError {
    step: &'static str,
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// Names the story's `step` in the error it failed with.
fn failed<E: std::error::Error + Send + Sync + 'static>(
    step: &'static str,
) -> impl FnOnce(E) -> StoryError {
    move |e| StoryError {
        step,
        source: Box::new(e),
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let args = match cli.command {
        Some(Command::Node(node)) => {
            let node_matches = matches.subcommand_matches("node").unwrap_or(&matches);
            return node::main(*node, node_matches);
        }
        Some(Command::Status(args)) => return cluster_view::status(&args),
        Some(Command::Transfer(args)) => return cluster_view::transfer(&args),
        Some(Command::Timeline(timeline)) => return log_timeline::main(timeline),
        Some(Command::Certs(certs)) => return certs_command::main(&certs),
        Some(Command::LeaseWatchdog(args)) => return watchdog::main(args),
        None => cli.demo,
    };
    // One thread keeps the story's order reproducible from its seed. With
    // --data-dir every term or vote change is an fsync of milliseconds; on a
    // multi-thread runtime it moves off the worker (`block_in_place`)
    // instead of stalling every node's timers.
    let runtime = if args.data_dir.is_some() {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    match runtime {
        Ok(runtime) => runtime.block_on(run(args)),
        Err(e) => {
            eprintln!("error: cannot start the Tokio runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> ExitCode {
    let level = match args.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    if let Err(e) = init_logging(args.log_format, &format!("raft_election={level}")) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    // Written after the story: find a bad path before it.
    if let Some(path) = &args.timeline {
        if let Err(e) = raft_election_timeline::check_writable(path) {
            eprintln!(
                "error: cannot write the timeline to {}: {e}",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let config = ClusterConfig {
        nodes: args.nodes,
        timing: args.timing.timing(),
        timeouts: TimeoutSource::Seeded(seed),
        storage: args
            .data_dir
            .clone()
            .map_or(StorageKind::Memory, StorageKind::Directory),
        ..ClusterConfig::default()
    };
    if let Err(e) = config.validate() {
        eprintln!("error: invalid cluster configuration: {e}");
        return ExitCode::FAILURE;
    }
    if args.nodes < 3 {
        eprintln!(
            "error: the story crashes a leader and still needs a majority: use --nodes 3 or more"
        );
        return ExitCode::FAILURE;
    }
    say!(
        "Raft election demo: {} nodes, seed {seed} (replay with --seed {seed}), \
         election timeouts {}-{} ms, heartbeat every {} ms",
        args.nodes,
        args.timing.election_min_ms,
        args.timing.election_max_ms,
        args.timing.heartbeat_ms
    );
    let deadline = Duration::from_millis(args.step_deadline_ms);
    for round in 0..args.rounds {
        if args.rounds > 1 {
            say!("\n#### Round {} of {}", round + 1, args.rounds);
        }
        // Each round has its own timeouts, replayable from the printed seed.
        let config = ClusterConfig {
            timeouts: TimeoutSource::Seeded(seed.wrapping_add(u64::from(round))),
            ..config.clone()
        };
        if let Err(e) = run_round(config, deadline, args.timeline.as_deref()).await {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// One story on a new cluster restored from `config.storage`, drawn in
/// `timeline` if given; the error is the line to print.
async fn run_round(
    config: ClusterConfig,
    deadline: Duration,
    timeline_file: Option<&Path>,
) -> Result<(), String> {
    let storage = config.storage.clone();
    let cluster = spawn_cluster(config).map_err(|e| e.to_string())?;
    report_restored(&cluster, &storage);
    let mut steps = Vec::new();
    let story = tell(&cluster, deadline, &mut steps).await;
    if let Some(path) = timeline_file {
        // Drawn even when the story failed: the picture shows where.
        if let Err(e) = &story {
            steps.push((cluster.elapsed(), format!("the story stopped at {e}")));
        }
        let seed = match cluster.config().timeouts {
            TimeoutSource::Seeded(seed) => format!(", seed {seed}"),
            TimeoutSource::Schedule(_) => String::new(),
        };
        let title = format!(
            "Raft election story: {} nodes{seed} (cargo run -- --timeline FILE)",
            cluster.config().nodes
        );
        let picture = timeline(&title, cluster.config().ids(), &cluster.events(), &steps);
        write_svg(path, &picture)
            .map_err(|e| format!("cannot write the timeline to {}: {e}", path.display()))?;
        say!(
            "
Timeline: {}",
            path.display()
        );
    }
    let safety = cluster.check_safety();
    let stored = stored_states(&cluster);
    let stopped = cluster.shutdown().await;
    story.map_err(|e| format!("the story stopped at {e}"))?;
    safety.map_err(|violation| violation.to_string())?;
    stopped.map_err(|e| e.to_string())?;
    if let StorageKind::Directory(dir) = &storage {
        say!(
            "\nStored in {}: {}. The next run with --data-dir {} resumes from here.",
            dir.display(),
            stored?,
            dir.display()
        );
    }
    Ok(())
}

/// Prints where state is kept and, from a directory, what each node restored.
fn report_restored(cluster: &ClusterHandle, storage: &StorageKind) {
    let StorageKind::Directory(dir) = storage else {
        say!(
            "Storage: in memory; every node starts at t0 (--data-dir DIR keeps terms across runs)"
        );
        return;
    };
    say!(
        "Storage: one file per node in {} (node-<id>.state)",
        dir.display()
    );
    for id in cluster.config().ids() {
        if let Some(restored) = cluster.started_from(id) {
            say!(
                "  {id} resumes at {}, voted for {}",
                restored.current_term,
                voted_for(restored)
            );
        }
    }
}

/// Every node's stored term and vote, read back from storage after the story.
fn stored_states(cluster: &ClusterHandle) -> Result<String, String> {
    let mut parts = Vec::new();
    for id in cluster.config().ids() {
        let stored = cluster.hard_state(id).map_err(|e| e.to_string())?;
        parts.push(format!(
            "{id} {} (voted for {})",
            stored.current_term,
            voted_for(stored)
        ));
    }
    Ok(parts.join(", "))
}

fn voted_for(hard_state: HardState) -> String {
    hard_state
        .voted_for
        .map_or_else(|| "nobody".to_owned(), |id| id.to_string())
}

/// The story's steps: when each began (since the cluster started), and its title.
type Steps = Vec<(Duration, String)>;

/// Prints the title of step `number` of the story and notes when it began.
fn step(cluster: &ClusterHandle, steps: &mut Steps, number: u8, title: &str) {
    say!("\n== {number}. {title}");
    steps.push((cluster.elapsed(), title.to_owned()));
}

fn ms(since: Instant) -> u128 {
    since.elapsed().as_millis()
}

async fn tell(
    cluster: &ClusterHandle,
    deadline: Duration,
    steps: &mut Steps,
) -> Result<(), StoryError> {
    let resumed = cluster
        .config()
        .ids()
        .filter_map(|id| cluster.started_from(id))
        .any(|restored| restored.current_term > Term(0));
    step(
        cluster,
        steps,
        1,
        &format!(
            "Start: every node is a follower of {} and waits for its election timeout (§5.2)",
            if resumed { "its stored term" } else { "t0" }
        ),
    );
    let started = Instant::now();
    let (first, t1) = cluster
        .wait_for_leader(deadline)
        .await
        .map_err(failed("electing the first leader"))?;
    say!(
        "-> {first} leads {t1}, elected {} ms after start",
        ms(started)
    );
    // Two rounds of heartbeats before the crash, so the leader is seen to
    // lead (and the timeline shows it) rather than dying as it wins.
    tokio::time::sleep(cluster.config().timing.heartbeat_interval * 2).await;

    step(
        cluster,
        steps,
        2,
        &format!("Crash the leader {first}: the others stop hearing heartbeats"),
    );
    let crashed = Instant::now();
    cluster
        .crash(first)
        .await
        .map_err(failed("crashing the leader"))?;
    let (second, t2) = cluster
        .wait_for_leader_after(t1, deadline)
        .await
        .map_err(failed("electing a leader after the crash"))?;
    say!(
        "-> {second} leads {t2}, elected {} ms after the crash",
        ms(crashed)
    );

    step(
        cluster,
        steps,
        3,
        &format!("Restart {first} from its storage: it comes back in {t1} and learns of {t2}"),
    );
    let restarted = Instant::now();
    cluster
        .restart(first)
        .await
        .map_err(failed("restarting the old leader"))?;
    cluster
        .wait_until(|s| follows(s.get(first), second, t2), deadline)
        .await
        .map_err(failed("the restarted node following the leader"))?;
    say!(
        "-> {first} follows {second} in {t2}, {} ms after restarting",
        ms(restarted)
    );

    step(
        cluster,
        steps,
        4,
        &format!(
            "Cut {second} off: the majority elects a new leader, {second} still believes it leads {t2}"
        ),
    );
    let cut = Instant::now();
    cluster
        .isolate(second)
        .map_err(failed("isolating the leader"))?;
    let (third, t3) = cluster
        .wait_for_leader_after(t2, deadline)
        .await
        .map_err(failed("electing a leader in the majority"))?;
    let stale = cluster.statuses().get(second).map(|s| (s.role, s.term));
    say!(
        "-> {third} leads {t3}, elected {} ms after the cut; {second} is still {} of {}",
        ms(cut),
        stale.map_or("down".to_owned(), |(role, _)| role.to_string()),
        stale.map_or(t2, |(_, term)| term),
    );
    let (messages, rounds) = lost_heartbeats(cluster, second);
    say!(
        "-> meanwhile {second} sent {rounds} rounds of heartbeats ({messages} messages), \
         all lost to the partition"
    );

    step(
        cluster,
        steps,
        5,
        &format!("Heal: {second} hears of {t3} and steps down (§5.1)"),
    );
    let healed = Instant::now();
    cluster.heal();
    cluster
        .wait_until(
            |s| s.get(second).is_some_and(|n| n.role == Role::Follower),
            deadline,
        )
        .await
        .map_err(failed("the stale leader stepping down"))?;
    say!("-> {second} stepped down {} ms after the heal", ms(healed));
    cluster
        .wait_until(|s| follows(s.get(second), third, t3), deadline)
        .await
        .map_err(failed("the old leader following the new one"))?;
    say!(
        "-> {second} follows {third} in {t3}, {} ms after the heal",
        ms(healed)
    );

    let leaders: Vec<String> = cluster
        .leaders_by_term()
        .iter()
        .map(|(term, leader)| format!("{term} {leader}"))
        .collect();
    say!(
        "\nOne leader per term: {}. Statuses: {}.",
        leaders.join(", "),
        cluster.statuses()
    );
    Ok(())
}

/// Heartbeat messages `leader` sent that a partition dropped, and in how many
/// rounds (one message per peer each round).
fn lost_heartbeats(cluster: &ClusterHandle, leader: NodeId) -> (usize, usize) {
    let messages = cluster
        .events()
        .iter()
        .filter(|e| {
            e.node == leader
                && matches!(
                    e.kind,
                    EventKind::Sent {
                        message: Message::AppendEntries { .. },
                        delivery: Delivery::Cut,
                        ..
                    }
                )
        })
        .count();
    let peers = usize::from(cluster.config().nodes.saturating_sub(1)).max(1);
    (messages, messages / peers)
}

/// Whether a node is a follower of `leader` in `term`.
fn follows(status: Option<&NodeStatus>, leader: NodeId, term: Term) -> bool {
    status.is_some_and(|s| s.role == Role::Follower && s.term == term && s.leader == Some(leader))
}
