//! `cargo run --release --bin check`: exhaustively model-check the election
//! core within explicit bounds, print every property's verdict, and exit 0
//! only if every safety property holds and every reachability property was
//! reached. On a violation, print a numbered trace ending in the bad state.
//!
//! With no options it runs the default portfolio
//! ([`raft_election_model::portfolio`]): a breadth-first pass over every
//! configuration for shallow bugs, then each configuration exhaustively, and
//! one table. `--deep` runs the nightly portfolio; any bound or feature
//! option runs that one configuration instead. With `--every-combination` it
//! checks one configuration once per combination of the election features
//! (sixteen runs) and prints a table of them.

#![forbid(unsafe_code)]

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use indicatif::{ProgressBar, ProgressStyle};
use raft_election::invariants::Invariant;
use raft_election::{Features, Term};
use raft_election_model::portfolio::{self, Entry};
use raft_election_model::{
    Bounds, ELECTION_ROUNDS, ELECTS_A_LEADER, ElectionModel, ModelError, NetworkKind, Reduction,
    Reductions, Restarts, SETTLES_ON_THE_LEADER, StartingLogs, format_trace, is_modelled,
    last_state_with_stable_ids, sequence_diagram,
};
use stateright::{Checker, HasDiscoveries, Model};
use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How often the progress line is refreshed.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);

/// Exhaustive stateright model of the raft-election core (the same
/// `Node::step` the Tokio runtime runs). Explores every interleaving of
/// message deliveries, duplications and losses, timer expiries and
/// crash-restarts within the bounds below.
///
/// With no bound or feature option it runs the default portfolio: 3 nodes
/// with a crash, 5 nodes, each log profile and the election features, a
/// breadth-first pass over all of them first, then each exhaustively, and
/// prints one table (about half a minute on two loaded cores). Any option
/// below that sets a bound or a feature checks that one configuration
/// instead.
#[derive(Debug, Parser)]
#[command(name = "check", version)]
struct Args {
    /// Number of nodes in the cluster.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=7))]
    nodes: u8,
    /// Largest term explored: states where a node's term exceeds it are cut off.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=50))]
    max_term: u64,
    /// Crash-restarts allowed in one run, all nodes together.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=20))]
    max_crashes: u8,
    /// Network kind. duplicating: a delivered message stays in flight, so any
    /// message arrives any number of times, in any order, or never. lossy: a
    /// delivery consumes the message and any message may be dropped.
    #[arg(long, value_enum, default_value_t = NetworkKind::Duplicating)]
    network: NetworkKind,
    /// Breadth-first search: shortest counterexamples, more memory than the
    /// default depth-first search. Implied by --volatile-restarts, whose point
    /// is the shortest demonstration.
    #[arg(long)]
    bfs: bool,
    /// Turn off one reduction of the state space (repeatable); each is on by
    /// default and argued in proofs.md, "The model's reductions". Turned
    /// off, the same behaviours show in more states, unless the core under
    /// test is wrong in a way the reduction hides. Applies to the portfolio
    /// too: `check --no-reductions --time-limit S` is the default portfolio
    /// on the full model.
    #[arg(long, value_enum, value_name = "NAME")]
    no_reduction: Vec<Reduction>,
    /// Turn off every reduction above: the full model.
    #[arg(long)]
    no_reductions: bool,
    /// Same as --no-reduction symmetry.
    #[arg(long)]
    no_symmetry: bool,
    /// Same as --no-reduction spent-responses: keep every RequestVoteResponse
    /// and AppendEntriesResponse in flight, spent ones included.
    #[arg(long, alias = "keep-stale-responses")]
    keep_spent_responses: bool,
    /// Checker threads [default: one per core]. State counts do not depend
    /// on it.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: Option<u16>,
    /// Serve stateright's Explorer web UI at ADDR (e.g. 127.0.0.1:3000; port
    /// 0 picks a free one, printed) instead of checking (without symmetry
    /// reduction, so ids stay put). States read one line per node, and the
    /// path is drawn as a message sequence diagram.
    #[arg(long, value_name = "ADDR")]
    explore: Option<SocketAddr>,
    /// A restarted node forgets its term and vote (as stateright's own Raft
    /// example does). Expected to fail: two leaders in one term.
    #[arg(long)]
    volatile_restarts: bool,
    /// The logs the nodes start with; each node starts in the term of its
    /// last entry. With longer-older and 2 nodes only n1 can ever lead, so
    /// "a leader is replaced" cannot be reached.
    #[arg(long, value_enum, default_value_t = StartingLogs::Ahead)]
    logs: StartingLogs,
    /// Same as --logs equal.
    #[arg(long, conflicts_with = "logs")]
    equal_logs: bool,
    /// On a violation, also draw the counterexample as an SVG message
    /// sequence diagram in FILE (the Explorer's picture): a column per node,
    /// a row per step, every delivered message an arrow. Nothing is written
    /// when every invariant holds.
    #[arg(long, value_name = "FILE", conflicts_with = "explore")]
    trace_svg: Option<PathBuf>,
    /// Election features every node runs: a comma-separated list of
    /// pre-vote, check-quorum, lease-guarded-votes and leadership-transfer,
    /// or all, or none. The switches below add to it.
    #[arg(long, default_value = "none", value_name = "LIST")]
    features: Features,
    /// Turn Pre-Vote on (thesis §9.6).
    #[arg(long)]
    pre_vote: bool,
    /// Turn CheckQuorum on (thesis §6.2).
    #[arg(long)]
    check_quorum: bool,
    /// Turn lease-guarded votes on (thesis §4.2.3).
    #[arg(long)]
    lease_guarded_votes: bool,
    /// Turn leadership transfer on (thesis §3.10).
    #[arg(long)]
    leadership_transfer: bool,
    /// Leadership-transfer requests in one run, all leaders together (with
    /// leadership transfer on).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=20))]
    max_transfers: u8,
    /// Check every combination of the four election features, one run each
    /// with the bounds above (sixteen runs), and print a table: states, time
    /// and verdict per combination. Exits 0 only if every run passes.
    #[arg(long, conflicts_with_all = ["features", "pre_vote", "check_quorum",
        "lease_guarded_votes", "leadership_transfer", "explore", "volatile_restarts", "trace_svg"])]
    every_combination: bool,
    /// Run the nightly portfolio: larger bounds (3 nodes with terms up to 3,
    /// 5 nodes with terms up to 2, the production features and three pairs of
    /// features with two terms and a crash), each exhausted: four to six
    /// minutes on two cores. Takes no bound or feature option.
    #[arg(long)]
    deep: bool,
    /// Stop each exhaustive run after this many seconds: what was explored
    /// by then is reported (its unique states, any violation found), the
    /// run counts as failed ("not exhausted"), and the next one starts. For
    /// long runs such as `--deep`, so a run cut short still says how far it
    /// got. Runs at least 2 checker threads (the checker looks at its
    /// deadline only when threads share work).
    #[arg(long, value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=7 * 24 * 3600))]
    time_limit: Option<u64>,
}

/// Checker threads a time limit needs: stateright's depth-first search
/// looks at its deadline only when threads share work, so one thread alone
/// would run on past it.
const TIME_LIMIT_THREADS: usize = 2;

/// The options that choose one configuration (or a mode other than the
/// portfolio): given any of them, `check` runs that instead.
const SINGLE_RUN_OPTIONS: [&str; 16] = [
    "nodes",
    "max_term",
    "max_crashes",
    "network",
    "bfs",
    "explore",
    "volatile_restarts",
    "logs",
    "equal_logs",
    "trace_svg",
    "features",
    "pre_vote",
    "check_quorum",
    "lease_guarded_votes",
    "leadership_transfer",
    "max_transfers",
];

impl Args {
    fn bounds(&self) -> Bounds {
        let logs = if self.equal_logs {
            StartingLogs::Equal
        } else {
            self.logs
        };
        let mut bounds = Bounds::with_logs(self.nodes, logs).with_features(self.features());
        bounds.max_term = Term(self.max_term);
        bounds.max_crashes = self.max_crashes;
        bounds.max_transfers = self.max_transfers;
        bounds.network = self.network;
        if self.volatile_restarts {
            bounds.restarts = Restarts::Volatile;
        }
        bounds.reductions = self.reductions();
        bounds
    }

    /// The reductions left on by `--no-reduction`, `--no-reductions` and
    /// the two older switches.
    fn reductions(&self) -> Reductions {
        let mut reductions = if self.no_reductions {
            Reductions::NONE
        } else {
            Reductions::ALL
        };
        let older = [
            (self.no_symmetry, Reduction::Symmetry),
            (self.keep_spent_responses, Reduction::SpentResponses),
        ];
        let off = older.into_iter().filter_map(|(set, r)| set.then_some(r));
        for reduction in self.no_reduction.iter().copied().chain(off) {
            reductions = reductions.without(reduction);
        }
        reductions
    }

    /// The model of `bounds`, with the reductions they keep on.
    fn model(&self, bounds: Bounds) -> Result<ElectionModel, ModelError> {
        ElectionModel::new(bounds)
    }

    /// `--features` with the single switches added.
    fn features(&self) -> Features {
        let switches = [
            self.pre_vote,
            self.check_quorum,
            self.lease_guarded_votes,
            self.leadership_transfer,
        ];
        let listed = self.features.switches();
        Features::from_switches([0, 1, 2, 3].map(|i| listed[i] || switches[i]))
    }

    /// `--time-limit` as a duration.
    fn time_limit(&self) -> Option<Duration> {
        self.time_limit.map(Duration::from_secs)
    }

    /// The requested threads, or one per core (at most 64), and at least
    /// [`TIME_LIMIT_THREADS`] under a time limit.
    fn threads(&self) -> usize {
        let threads = self.threads.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get().min(64)),
            usize::from,
        );
        if self.time_limit.is_some() {
            threads.max(TIME_LIMIT_THREADS)
        } else {
            threads
        }
    }

    fn breadth_first(&self) -> bool {
        self.bfs || self.volatile_restarts
    }

    fn strategy(&self) -> String {
        let search = if self.breadth_first() {
            "breadth-first (shortest counterexamples)"
        } else {
            "depth-first"
        };
        let mut reductions = self.reductions();
        if self.explore.is_some() {
            reductions = reductions.without(Reduction::Symmetry);
        }
        format!("{search}, reductions: {reductions}")
    }
}

fn main() -> ExitCode {
    let matches = Args::command().get_matches();
    let args = match Args::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(error) => error.exit(),
    };
    if args.time_limit.is_some()
        && args
            .threads
            .is_some_and(|t| usize::from(t) < TIME_LIMIT_THREADS)
    {
        eprintln!(
            "error: --time-limit needs --threads {TIME_LIMIT_THREADS} or more: the checker looks at its deadline only when threads share work"
        );
        return ExitCode::from(2);
    }
    let single: Vec<&str> = SINGLE_RUN_OPTIONS
        .into_iter()
        .filter(|id| matches.value_source(id) == Some(ValueSource::CommandLine))
        .collect();
    if args.deep {
        if let Some(first) = single
            .first()
            .or(args.every_combination.then_some(&"every_combination"))
        {
            eprintln!(
                "error: --deep runs its own configurations and takes no --{}",
                first.replace('_', "-")
            );
            return ExitCode::from(2);
        }
        return run_portfolio(&portfolio::deep(), "nightly (--deep)", &args);
    }
    if single.is_empty() && !args.every_combination {
        return run_portfolio(&portfolio::portfolio(), "default", &args);
    }
    if args.every_combination {
        return every_combination(&args);
    }
    let model = match args.model(args.bounds()) {
        Ok(model) if args.explore.is_some() => model.without_symmetry(),
        Ok(model) => model,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    // Written after the whole check: find a bad path before it.
    if let Some(path) = &args.trace_svg {
        if let Err(error) = raft_election_timeline::check_writable(path) {
            eprintln!("error: cannot write {}: {error}", path.display());
            return ExitCode::from(2);
        }
    }
    print_bounds(&model, &args);
    if let Some(address) = args.explore {
        // tiny_http panics on a bind error; check first for a clear message,
        // and learn the port the system picked for port 0.
        let address = match TcpListener::bind(address).and_then(|l| l.local_addr()) {
            Ok(bound) => bound,
            Err(error) => {
                eprintln!("error: cannot serve the Explorer on {address}: {error}");
                return ExitCode::from(2);
            }
        };
        println!("Explorer: http://{address}/ (Ctrl-C to stop)");
        model.checker().threads(args.threads()).serve(address);
        return ExitCode::SUCCESS;
    }
    let verdict = check(
        &model,
        Search::of(&args),
        Output::Full,
        args.trace_svg.as_ref(),
        None,
    );
    if verdict.ok {
        println!("\nOK: every property holds and every reachability property was reached.");
        ExitCode::SUCCESS
    } else if verdict.timed_out {
        println!("\nNOT EXHAUSTED: stopped at the time limit (no violation found so far)");
        ExitCode::FAILURE
    } else {
        println!("\nFAILED");
        ExitCode::FAILURE
    }
}

/// How much a check prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    /// Progress, statistics, every property's verdict, counterexamples.
    Full,
    /// Only what went wrong: counterexamples and unreached properties.
    Failures,
}

/// What one check found.
struct Verdict {
    unique: usize,
    /// Invariants not found broken.
    held: usize,
    /// Required reachability properties reached.
    reached: usize,
    seconds: f64,
    max_depth: usize,
    ok: bool,
    /// Stopped at `--time-limit` before it was exhausted.
    timed_out: bool,
}

impl Verdict {
    /// The verdict column of a table.
    fn word(&self) -> &'static str {
        match (self.ok, self.timed_out) {
            (true, _) => "ok",
            (false, true) => "TIME LIMIT",
            (false, false) => "FAILED",
        }
    }
}

/// One run's reporting: when it started, its time limit, what to print.
#[derive(Clone, Copy)]
struct Run<'a> {
    start: Instant,
    time_limit: Option<Duration>,
    output: Output,
    trace_svg: Option<&'a PathBuf>,
    required: &'a [&'static str],
}

/// How one check searches.
#[derive(Clone, Copy, Debug)]
struct Search {
    /// Breadth-first rather than depth-first.
    bfs: bool,
    /// Checker threads.
    threads: usize,
    /// Explore no deeper than this many steps (a shallow pass).
    max_depth: Option<usize>,
    /// Run on past violations until election safety breaks (volatile restarts).
    until_election_safety: bool,
    /// Stop the run after this long (`--time-limit`).
    time_limit: Option<Duration>,
}

impl Search {
    fn of(args: &Args) -> Self {
        Self {
            bfs: args.breadth_first(),
            threads: args.threads(),
            max_depth: None,
            until_election_safety: args.volatile_restarts,
            time_limit: args.time_limit(),
        }
    }
}

/// Checks `model`, printing as `output` says; a counterexample is also
/// drawn in `trace_svg`. The verdict requires the reachability properties
/// in `required` (every one the model checks if `None`).
fn check(
    model: &ElectionModel,
    search: Search,
    output: Output,
    trace_svg: Option<&PathBuf>,
    required: Option<&[&'static str]>,
) -> Verdict {
    // Stop at the first broken invariant. Volatile restarts break "terms never
    // go back" at once; that run goes on to the two leaders it exists to show.
    let finish = if search.until_election_safety {
        HasDiscoveries::AnyOf(BTreeSet::from([Invariant::ElectionSafety.name()]))
    } else {
        HasDiscoveries::AnyFailures
    };
    let mut builder = model
        .clone()
        .checker()
        .threads(search.threads)
        .finish_when(finish);
    if let Some(depth) = search.max_depth {
        builder = builder.target_max_depth(depth);
    }
    if let Some(limit) = search.time_limit {
        builder = builder.timeout(limit);
    }
    let start = Instant::now();
    let label = configuration(model);
    let required = required.map_or_else(|| model.reachability(), <[_]>::to_vec);
    let run = Run {
        start,
        time_limit: search.time_limit,
        output,
        trace_svg,
        required: &required,
    };
    if search.bfs {
        let checker = watch(builder.spawn_bfs(), start, &label);
        summarize(checker, true, &run)
    } else {
        let checker = watch(builder.spawn_dfs(), start, &label);
        summarize(checker, false, &run)
    }
}

/// How deep the breadth-first pass of a portfolio looks before the
/// exhaustive runs: deep enough for a whole election with a crash and a
/// second campaign (a quorum bug in five nodes shows in 8 steps), shallow
/// enough to cost a few seconds in all.
const SHALLOW_PASS_DEPTH: usize = 12;

/// Runs a portfolio: a breadth-first pass over every configuration up to
/// [`SHALLOW_PASS_DEPTH`] steps, which finds shallow bugs in seconds and
/// gives their shortest traces, then each configuration exhaustively
/// (depth-first, which keeps only fingerprints), and one table. Exits 0
/// only if every configuration passed.
fn run_portfolio(entries: &[Entry], which: &str, args: &Args) -> ExitCode {
    let threads = args.threads();
    println!("Model-checking the raft-election core: the {which} portfolio");
    println!(
        "  every configuration: a duplicating network (reorder, duplicate, lose), durable restarts, at most {} transfer(s); {threads} thread(s)",
        Bounds::new(2).max_transfers
    );
    let reductions = args.reductions();
    println!(
        "  reductions: {reductions}; n0 ahead: n0 holds one more entry of t0; longer-older: n0 two entries of t0, n1 one of t1"
    );
    let start = Instant::now();
    let mut models = Vec::new();
    for entry in entries {
        let bounds = Bounds {
            reductions,
            ..entry.bounds.clone()
        };
        match ElectionModel::new(bounds) {
            Ok(model) => models.push(model),
            Err(error) => {
                eprintln!("error: {}: {error}", entry.name);
                return ExitCode::from(2);
            }
        }
    }
    println!(
        "\n1. Breadth-first pass, each configuration up to {SHALLOW_PASS_DEPTH} steps (shortest counterexamples first)"
    );
    let shallow = Search {
        bfs: true,
        threads,
        max_depth: Some(SHALLOW_PASS_DEPTH),
        until_election_safety: false,
        time_limit: args.time_limit(),
    };
    let mut shallow_states = 0;
    for (entry, model) in entries.iter().zip(&models) {
        let verdict = check(model, shallow, Output::Failures, None, Some(&[]));
        shallow_states += verdict.unique;
        // Cut short with no violation: the depth-first pass still checks
        // this configuration, and the other configurations' shallow
        // counterexamples are still worth finding first.
        if verdict.timed_out {
            println!("   ({}: cut short, no violation so far)", entry.name);
            continue;
        }
        if !verdict.ok {
            println!("\nFAILED in the breadth-first pass: {}", entry.name);
            return ExitCode::FAILURE;
        }
    }
    println!(
        "   no violation within {SHALLOW_PASS_DEPTH} steps in any configuration ({shallow_states} states, {:.1} s)",
        start.elapsed().as_secs_f64()
    );
    println!("\n2. Each configuration exhaustively (depth-first)");
    println!(
        "\n{:<52} {:>10} {:>8} {:>7} {:>9} {:>9}  verdict",
        "configuration", "states", "seconds", "depth", "safety", "reached"
    );
    let mut failed = 0;
    let mut total = 0;
    let exhaustive = Search {
        bfs: false,
        threads,
        max_depth: None,
        until_election_safety: false,
        time_limit: args.time_limit(),
    };
    for (entry, model) in entries.iter().zip(&models) {
        let verdict = check(
            model,
            exhaustive,
            Output::Failures,
            None,
            Some(&entry.required),
        );
        total += verdict.unique;
        let word = verdict.word();
        println!(
            "{:<52} {:>10} {:>8.1} {:>7} {:>9} {:>9}  {word}",
            entry.name,
            verdict.unique,
            verdict.seconds,
            verdict.max_depth,
            format!("{}/{}", verdict.held, modelled_invariants()),
            format!("{}/{}", verdict.reached, entry.required.len()),
        );
        if !verdict.ok {
            failed += 1;
            println!("   ({})", entry.aim);
        }
    }
    println!(
        "{:<52} {:>10} {:>8.1}",
        format!("all {} configurations, both passes", entries.len()),
        total + shallow_states,
        start.elapsed().as_secs_f64()
    );
    println!(
        "safety: invariants that held of the {} the model checks (the lease's is real time's: `lease-runs`); reached: reachability properties reached of those the bounds allow",
        modelled_invariants()
    );
    if failed == 0 {
        println!(
            "\nOK: in every configuration every property holds and every required reachability property was reached."
        );
        ExitCode::SUCCESS
    } else {
        println!("\nFAILED: {failed} of {} configurations", entries.len());
        ExitCode::FAILURE
    }
}

/// The bounds and features in a few words, to label progress.
fn configuration(model: &ElectionModel) -> String {
    let bounds = model.bounds();
    format!(
        "{} nodes, terms <= {}, {} crash(es), features {}",
        bounds.nodes, bounds.max_term.0, bounds.max_crashes, bounds.features
    )
}

/// `--every-combination`: one check per combination of the features, then
/// a table.
fn every_combination(args: &Args) -> ExitCode {
    let bounds = args.bounds();
    let first = match args.model(bounds.clone()) {
        Ok(model) => model,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    print_bounds(&first, args);
    println!("  features     every combination (16 runs)");
    println!(
        "\n{:<63} {:>11} {:>9} {:>6}  verdict",
        "features", "states", "seconds", "depth"
    );
    let mut rows = Vec::new();
    let start = Instant::now();
    for features in Features::combinations() {
        let model = match args.model(bounds.clone().with_features(features)) {
            Ok(model) => model,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(2);
            }
        };
        let verdict = check(&model, Search::of(args), Output::Failures, None, None);
        let word = verdict.word();
        println!(
            "{:<63} {:>11} {:>9.1} {:>6}  {word}",
            features.to_string(),
            verdict.unique,
            verdict.seconds,
            verdict.max_depth
        );
        rows.push(verdict);
    }
    let total: usize = rows.iter().map(|v| v.unique).sum();
    let failed = rows.iter().filter(|v| !v.ok).count();
    println!(
        "{:<63} {:>11} {:>9.1}",
        "all 16 combinations",
        total,
        start.elapsed().as_secs_f64()
    );
    if failed == 0 {
        println!(
            "\nOK: in every combination every property holds and every reachability property was reached."
        );
        ExitCode::SUCCESS
    } else {
        println!("\nFAILED: {failed} of 16 combinations");
        ExitCode::FAILURE
    }
}

fn print_bounds(model: &ElectionModel, args: &Args) {
    let bounds = model.bounds();
    let logs: Vec<String> = bounds.logs.iter().map(ToString::to_string).collect();
    println!("Model-checking the raft-election core");
    println!("  nodes        {}", bounds.nodes);
    println!("  max term     {}", bounds.max_term);
    println!("  max crashes  {}", bounds.max_crashes);
    println!("  network      {}", bounds.network);
    let restarts = match bounds.restarts {
        Restarts::Durable => "durable (restore the persisted term and vote)",
        Restarts::Volatile => "VOLATILE (forget term and vote)",
    };
    println!("  restarts     {restarts}");
    println!(
        "  logs         {} (each node starts in its last entry's term)",
        logs.join(", ")
    );
    if !args.every_combination {
        println!("  features     {}", bounds.features);
        if bounds.features.leadership_transfer {
            println!("  transfers    at most {}", bounds.max_transfers);
        }
    }
    println!(
        "  strategy     {}, {} thread(s)",
        args.strategy(),
        args.threads()
    );
}

/// Shows progress until the checker is done, then waits for its threads.
/// The progress line is drawn on standard error when it is a terminal and
/// hidden otherwise, so a log or a pipe gets only the results.
fn watch<C: Checker<ElectionModel>>(checker: C, start: Instant, label: &str) -> C {
    let progress = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
        progress.set_style(style);
    }
    let mut last_report = Instant::now();
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(50));
        if last_report.elapsed() >= PROGRESS_INTERVAL {
            last_report = Instant::now();
            let elapsed = start.elapsed().as_secs_f64();
            progress.set_message(format!(
                "{label}: {} unique states, {:.0} states/s, depth {}",
                checker.unique_state_count(),
                rate(checker.unique_state_count(), elapsed),
                checker.max_depth()
            ));
            progress.tick();
        }
    }
    progress.finish_and_clear();
    checker.join()
}

/// How many invariants this model checks.
fn modelled_invariants() -> usize {
    Invariant::ALL
        .iter()
        .filter(|&&invariant| is_modelled(invariant))
        .count()
}

fn broken_count<P>(discoveries: &std::collections::HashMap<&'static str, P>) -> usize {
    Invariant::ALL
        .iter()
        .filter(|invariant| discoveries.contains_key(invariant.name()))
        .count()
}

fn rate(count: usize, seconds: f64) -> f64 {
    let count = count as f64;
    if seconds > 0.0 { count / seconds } else { 0.0 }
}

/// Prints the statistics, each property's verdict and every counterexample
/// (only what went wrong with [`Output::Failures`]); the verdict is ok only
/// if every safety property held and every reachability property was reached.
fn summarize<C: Checker<ElectionModel>>(checker: C, bfs: bool, run: &Run<'_>) -> Verdict {
    let Run {
        start,
        time_limit,
        output,
        trace_svg,
        required,
    } = *run;
    let elapsed = start.elapsed().as_secs_f64();
    let unique = checker.unique_state_count();
    let full = output == Output::Full;
    // The checker stops at the limit without saying so; a run that ends
    // exactly then is counted as cut short, the safe side.
    let timed_out = time_limit.is_some_and(|limit| start.elapsed() >= limit);
    if timed_out {
        println!(
            "Not exhausted: stopped at the time limit ({} s) after {unique} unique states, depth {}",
            time_limit.map_or(0, |limit| limit.as_secs()),
            checker.max_depth()
        );
    }
    if full {
        println!("Done in {elapsed:.1} s");
        println!("  unique states     {unique}");
        println!("  generated states  {}", checker.state_count());
        println!("  states/s          {:.0}", rate(unique, elapsed));
        println!("  max depth         {}", checker.max_depth());
    }
    let discoveries = checker.discoveries();
    // A broken invariant stops the run, so what was not found by then is
    // unknown rather than established.
    let liveness = discoveries.get(SETTLES_ON_THE_LEADER);
    let elects = discoveries.get(ELECTS_A_LEADER);
    let stopped_early = broken_count(&discoveries) > 0 || liveness.is_some() || elects.is_some();
    let (unknown, unreached) = if stopped_early {
        (
            "not established (stopped at a violation)",
            "not reached (stopped early)",
        )
    } else if timed_out {
        (
            "not established (stopped at the time limit)",
            "not reached (stopped at the time limit)",
        )
    } else {
        ("holds", "NOT REACHED")
    };
    let mut ok = !stopped_early && !timed_out;
    if full {
        println!("Safety (always):");
        for invariant in Invariant::ALL {
            if !is_modelled(invariant) {
                println!(
                    "  {:<38} not modelled (no clock: see `lease-runs`)",
                    invariant.name()
                );
                continue;
            }
            let verdict = if discoveries.contains_key(invariant.name()) {
                "VIOLATED"
            } else {
                unknown
            };
            println!("  {:<38} {verdict}", invariant.name());
        }
        println!("Reachability (sometimes):");
    }
    let mut reached = 0;
    for name in checker.model().reachability() {
        let is_required = required.contains(&name);
        let verdict = match discoveries.get(name) {
            Some(path) => {
                reached += usize::from(is_required);
                format!(
                    "reached (a trace of {} steps)",
                    path.clone().into_actions().len()
                )
            }
            None if is_required => {
                ok = false;
                unreached.to_owned()
            }
            None => "not reached (not required with these bounds)".to_owned(),
        };
        if full || (is_required && !discoveries.contains_key(name)) {
            println!("  {name:<38} {verdict}");
        }
    }
    // The first broken invariant in `Invariant::ALL` order (election safety
    // first) gets the full trace; the others often follow from it.
    if full {
        println!("Liveness (always):");
        for (name, found) in [
            (SETTLES_ON_THE_LEADER, liveness.is_some()),
            (ELECTS_A_LEADER, elects.is_some()),
        ] {
            let verdict = if found { "VIOLATED" } else { unknown };
            println!("  {name:<47} {verdict}");
        }
    }
    if let Some(path) = liveness {
        println!(
            "\nCounterexample to \"{SETTLES_ON_THE_LEADER}\" (delivering every message in flight from the last state leaves a node of the leader's term not following it):"
        );
        print!("{}", format_trace(checker.model(), path));
    }
    if let Some(path) = elects {
        println!(
            "\nCounterexample to \"{ELECTS_A_LEADER}\" (from the last state, {ELECTION_ROUNDS} rounds of time passing, the election timer of a node that can win firing and every message delivered elect no leader that a majority follows):"
        );
        print!("{}", format_trace(checker.model(), path));
        let last = last_state_with_stable_ids(checker.model(), path);
        if let Some(election) = last.and_then(|state| checker.model().failed_election(&state)) {
            let up: Vec<String> = election.up.iter().map(ToString::to_string).collect();
            println!(
                "  The schedule from the last state, with {} up:",
                up.join(", ")
            );
            for stage in &election.story {
                println!("    {stage}");
            }
        }
    }
    let mut broken = Invariant::ALL
        .iter()
        .filter_map(|invariant| Some((invariant, discoveries.get(invariant.name())?)));
    if let Some((invariant, path)) = broken.next() {
        println!("\nCounterexample to \"{invariant}\":");
        print!("{}", format_trace(checker.model(), path));
        if let Some(file) = trace_svg {
            let steps = path.clone().into_actions().len();
            let title = format!("Counterexample to \"{invariant}\" in {steps} steps");
            let svg = sequence_diagram(checker.model(), path, &title).to_svg();
            match std::fs::write(file, svg) {
                Ok(()) => println!("The trace as a sequence diagram: {}", file.display()),
                Err(e) => {
                    eprintln!("error: cannot write {}: {e}", file.display());
                    ok = false;
                }
            }
        }
    } else if let Some(file) = trace_svg {
        println!("No counterexample: {} not written.", file.display());
    }
    for (invariant, path) in broken {
        let steps = path.clone().into_actions().len();
        println!("Also violated: \"{invariant}\" (a trace of {steps} steps was found)");
    }
    if stopped_early && !bfs {
        println!("(depth-first traces are not the shortest: rerun with --bfs for the shortest)");
    }
    Verdict {
        unique,
        held: modelled_invariants() - broken_count(&discoveries),
        reached,
        seconds: elapsed,
        max_depth: checker.max_depth(),
        ok,
        // A violation found before the limit is the verdict, not the limit.
        timed_out: timed_out && !stopped_early,
    }
}

/// The checker allocates and frees a few small maps per generated state;
/// mimalloc does that markedly faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
