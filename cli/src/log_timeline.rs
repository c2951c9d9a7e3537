//! `raft-election timeline --out FILE.svg LOG...`: a real cluster's node
//! logs drawn as a timeline ([`raft_election_cli::node_log`]).

use raft_election_cli::node_log::{DEFAULT_SKEW_MS, NodeLogs};
use raft_election_cli::timeline::write_svg;
use std::path::PathBuf;
use std::process::ExitCode;

/// Draw the JSON logs of `raft-election node` processes as an SVG timeline.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
The nodes must log JSON: run each with `--log-format json` and keep its \
stderr (`2> n1.log`). `-v` logs votes and every message but heartbeats, so \
the picture shows elections with every RequestVote and vote as an arrow; \
`-vv` logs heartbeats too (drawn thinned where they crowd). Without -v a \
node logs only its timeouts and role and term changes: bands and ticks, \
no arrows. Give every node the same verbosity: a send is drawn only if its \
receiver logs receipts of its kind.

One lane per node, time in milliseconds since the earliest line. Roles are \
coloured bands with their terms; each send is an arrow to the receipt of the \
same message (link and every field) on the other node, a lost one a \
dashed stub with a cross, one still unanswered when the log ends a faint \
stub; election timeouts are triangles. A restart is a green ring; a stop \
(SIGTERM) ends the band with a dark square, a life whose log ends without \
a stop (killed) with a red cross; both are named in the numbered notes below the picture, \
with signals and leadership hand-overs. A kill is drawn at the node's last \
line, the last moment it is known to have lived: at -v a leader logs \
nothing between its election and its death, at -vv a heartbeat every \
interval.

Lines that are not a node's JSON (a shell's output, another program's) and \
records or events this version does not know are skipped and counted.

Example, three nodes on one machine for a few seconds:
  raft-election node --id 1 --listen 127.0.0.1:7001 --peer 2=127.0.0.2:7001 \\
      --peer 3=127.0.0.3:7001 --data-dir d1 --init --log-format json -v 2> n1.log &
  (likewise nodes 2 and 3, then kill them)
  raft-election timeline --out election.svg n1.log n2.log n3.log")]
pub(crate) struct TimelineArgs {
    /// Where to write the SVG picture.
    #[arg(long, value_name = "FILE.svg")]
    out: PathBuf,
    /// The nodes' log files: one per node, or several nodes' lines mixed
    /// (each line's `node` field says whose it is).
    #[arg(value_name = "LOG", required = true)]
    logs: Vec<PathBuf>,
    /// How long before its send a receipt may be logged and still be that
    /// send's, in milliseconds: the most the nodes' clocks differ.
    #[arg(long, default_value_t = DEFAULT_SKEW_MS, value_parser = skew)]
    max_skew_ms: f64,
    /// The picture's title.
    #[arg(long, default_value = "Raft election timeline from node logs")]
    title: String,
}

fn skew(text: &str) -> Result<f64, String> {
    let skew: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=60_000.0).contains(&skew) {
        Ok(skew)
    } else {
        Err("must be between 0 and 60000 milliseconds".into())
    }
}

/// Reads the logs, writes the picture, prints what it shows; exit 1 with
/// the reason if a file cannot be read or written or holds no node line.
pub(crate) fn main(args: TimelineArgs) -> ExitCode {
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &TimelineArgs) -> Result<(), String> {
    let logs = NodeLogs::read(&args.logs).map_err(|e| e.to_string())?;
    for path in logs.empty_files() {
        println!("note: {} has no node log lines", path.display());
    }
    if !logs.skipped().is_empty() {
        println!("skipped lines: {}", logs.skipped());
    }
    let (picture, drawn) = logs.timeline(&args.title, args.max_skew_ms);
    write_svg(&args.out, &picture)
        .map_err(|e| format!("cannot write the timeline to {}: {e}", args.out.display()))?;
    println!("drew {drawn}");
    println!("timeline: {}", args.out.display());
    Ok(())
}
