//! `raft-election node`: one node of a real cluster, a process of its own,
//! reaching its peers over TCP.

mod status;
mod supervisor;

use crate::timing::TimingArgs;
use clap::Args;
use raft_election::{ClockDrift, ClusterId, Config, Features, NodeId};
use raft_election_cli::logging::{LogFormat, NodeContext, init_node_logging};
use raft_election_runtime::{
    DataDir, STEP_LOG_TARGET, Server, StatusReader, TcpConfig, TcpStatsHandle, TcpTransport,
};
use serde_json::json;
use status::StatusEndpoint;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info};

/// Run one node of a cluster over TCP: one process per node, each with its
/// own data directory.
#[derive(Debug, Args)]
#[command(after_help = "\
Start each node of a new cluster once with --init, which creates its state file at term 0; \
start it without --init ever after, so it resumes its stored term and vote. A node whose \
state file is missing, corrupt, or another node's or cluster's refuses to start, naming the \
file and why: starting it from term 0 could let it vote twice in one term. The data \
directory is locked while the node runs.

SIGTERM or Ctrl-C stops the node between two steps: a leader first hands its leadership to \
the follower that answered it last (with leadership-transfer among the --features, the \
default) and waits up to the longest election timeout for it to take over; then it sends no \
more heartbeats and the state file is whole. Logs go to stderr, one line per event, each starting with the \
node's id, term and role; --log-format json writes one JSON object per line.

Example, three terminals:
  raft-election node --id 1 --listen 127.0.0.1:7001 --peer 2=127.0.0.1:7002 --peer 3=127.0.0.1:7003 --data-dir /tmp/n1 --init
  raft-election node --id 2 --listen 127.0.0.1:7002 --peer 1=127.0.0.1:7001 --peer 3=127.0.0.1:7003 --data-dir /tmp/n2 --init
  raft-election node --id 3 --listen 127.0.0.1:7003 --peer 1=127.0.0.1:7001 --peer 2=127.0.0.1:7002 --data-dir /tmp/n3 --init")]
pub(crate) struct NodeArgs {
    /// This node's id (0 to 255), unique in its cluster.
    #[arg(long)]
    id: u8,
    /// Address to accept peer connections on; its IP is also the source of
    /// this node's connections to its peers.
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// A peer, as ID=ADDR; once per other node of the cluster.
    #[arg(long = "peer", value_name = "ID=ADDR", value_parser = parse_peer)]
    peers: Vec<(u8, SocketAddr)>,
    /// Directory of this node's state file, locked while the node runs.
    /// Created by --init if missing; without --init it must exist.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Create this node's state file at term 0: only for a new node that has
    /// never run. Refused if the file exists.
    #[arg(long)]
    init: bool,
    /// The cluster's id, the same on every node: frames and state files of
    /// another cluster are refused.
    #[arg(long, default_value_t = 1)]
    cluster_id: u64,
    #[command(flatten)]
    timing: TimingArgs,
    /// Election features: a comma-separated list of pre-vote, check-quorum,
    /// lease-guarded-votes and leadership-transfer, or all, or none (README,
    /// "Election features"). Give every node of a cluster the same list.
    #[arg(long, value_name = "LIST", default_value_t = Features::default())]
    features: Features,
    /// Serve the node's status as JSON over HTTP on this address
    /// (GET /status: role, term, leader, peers connected, last heartbeat age,
    /// heartbeat round trips). At most 4 connections at once, each answered
    /// once and closed within 2 s; more are closed at once.
    #[arg(long, value_name = "ADDR")]
    status: Option<SocketAddr>,
    /// How long a peer connection may take to send its hello, or to finish
    /// a frame, before it is closed, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    handshake_timeout_ms: u64,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log more: -v every message but heartbeats, sent or received (votes,
    /// terms and roles are always logged), -vv heartbeats too. `RUST_LOG`
    /// overrides this.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Log what a replay through the model needs (trace validation, README):
    /// every step's input and the node's term, vote, role and leader after
    /// it, every save of the state file once it is durable, and every
    /// message sent, in full (events step, save and sent). Best with
    /// --log-format json, whose lines `raft-election timeline` also reads.
    #[arg(long)]
    log_steps: bool,
    /// Hold a leader lease (thesis §6.4.1; README, "Run one active copy of
    /// a program"): while it holds one no other node can lead, as long as
    /// no clock runs faster than another by more than --max-clock-drift.
    /// Needs lease-guarded-votes among the --features. Give every node of a
    /// cluster the same setting.
    #[arg(long)]
    leader_lease: bool,
    /// The clock-drift bound of the leader lease, a percentage: the lease
    /// lasts the minimum election timeout divided by 1 + this.
    #[arg(long, value_name = "PERCENT", default_value_t = ClockDrift::DEFAULT)]
    max_clock_drift: ClockDrift,
    /// Run the program given after `--` while this node holds the leader
    /// lease (implies --leader-lease), with RAFT_TERM (the fencing token),
    /// RAFT_NODE_ID and RAFT_LEADER=1 in its environment. It gets SIGTERM
    /// --stop-margin-ms before the lease can end, SIGKILL --kill-grace-ms
    /// later, from a watchdog process that does so even if this node is
    /// paused or killed; it is restarted, with backoff, if it exits while
    /// the lease holds.
    #[arg(long, requires = "command")]
    run_while_leader: bool,
    /// See --run-while-leader, in milliseconds.
    #[arg(long, default_value_t = 40)]
    stop_margin_ms: u64,
    /// See --run-while-leader, in milliseconds; less than --stop-margin-ms.
    #[arg(long, default_value_t = 20)]
    kill_grace_ms: u64,
    /// The program (and its arguments) for --run-while-leader.
    #[arg(last = true, value_name = "COMMAND", requires = "run_while_leader")]
    command: Vec<String>,
}

fn parse_peer(text: &str) -> Result<(u8, SocketAddr), String> {
    let (id, addr) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not ID=ADDR (for example 2=127.0.0.1:7002)"))?;
    let id = id
        .parse::<u8>()
        .map_err(|e| format!("peer id {id:?}: {e}"))?;
    let addr = addr
        .parse::<SocketAddr>()
        .map_err(|e| format!("peer address {addr:?}: {e}"))?;
    Ok((id, addr))
}

/// Runs the node until SIGTERM or Ctrl-C (exit 0) or a failure (exit 1,
/// with the reason).
pub(crate) fn main(args: NodeArgs) -> ExitCode {
    let json = args.log_format == LogFormat::Json;
    let context = NodeContext::new(NodeId(args.id));
    let level = match args.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let mut filter = format!("raft_election={level}");
    if args.log_steps {
        filter.push_str(&format!(",{STEP_LOG_TARGET}=trace"));
    }
    if let Err(e) = init_node_logging(args.log_format, &filter, context.clone()) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    // One thread: a node is one state machine and a few sockets, and a
    // state file write (an fsync) must finish before the step's messages
    // go out anyway.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run(args, context)),
        Err(e) => Err(format!("cannot start the Tokio runtime: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A JSON log is read by tools: the reason goes there. On a terminal,
        // the usual `error:` line.
        Err(e) if json => {
            error!(event = "error", "{e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn configure(args: &NodeArgs) -> Result<(Config, TcpConfig), String> {
    let id = NodeId(args.id);
    let mut peers = BTreeMap::new();
    for &(peer, addr) in &args.peers {
        if peer == args.id {
            return Err(format!("--peer {peer}={addr} is this node's own id"));
        }
        if peers.insert(NodeId(peer), addr).is_some() {
            return Err(format!("--peer {peer} is given twice"));
        }
    }
    let timing = args.timing.timing();
    let voters = peers.keys().copied().chain([id]);
    let mut config = Config::new(id, voters, timing)
        .map_err(|e| e.to_string())?
        .with_features(args.features);
    if args.leader_lease || args.run_while_leader {
        config = config
            .with_leader_lease(args.max_clock_drift)
            .map_err(|e| e.to_string())?;
    }
    if args.run_while_leader {
        let lease = config.lease_duration().unwrap_or_default();
        let margin = Duration::from_millis(args.stop_margin_ms);
        if args.kill_grace_ms == 0 || args.kill_grace_ms >= args.stop_margin_ms {
            return Err("--kill-grace-ms must be positive and less than --stop-margin-ms".into());
        }
        // The lease is renewed once a heartbeat: a margin that does not fit
        // after one would stop the program at every renewal.
        if margin + timing.heartbeat_interval >= lease {
            return Err(format!(
                "--stop-margin-ms {} plus the heartbeat must be less than the lease of {lease:?}",
                args.stop_margin_ms
            ));
        }
    }
    let mut tcp = TcpConfig::new(ClusterId(args.cluster_id), args.listen, peers);
    tcp.handshake_timeout = Duration::from_millis(args.handshake_timeout_ms);
    if tcp.handshake_timeout.is_zero() {
        return Err("--handshake-timeout-ms must be positive".into());
    }
    Ok((config, tcp))
}

async fn run(args: NodeArgs, context: NodeContext) -> Result<(), String> {
    let (config, tcp) = configure(&args)?;
    let (id, cluster) = (config.id(), tcp.cluster);
    // The lock first: a second process on this directory must say so,
    // not fail later on a busy port.
    // Only --init may create the directory: a mistyped path must not
    // become a new, empty node.
    let dir = if args.init {
        DataDir::create(&args.data_dir)
    } else {
        DataDir::lock(&args.data_dir)
    };
    let (storage, restored) = dir
        .and_then(|dir| dir.state(cluster, id, args.init))
        .map_err(|e| e.to_string())?;
    if args.init {
        info!("initialized {} at term 0", storage.path().display());
    }
    let transport = TcpTransport::bind(&config, tcp.clone())
        .await
        .map_err(|e| e.to_string())?;
    let network = transport.stats();
    info!(
        event = "listen",
        address = %transport.local_addr(),
        "listening on {} as {id} of {cluster}, state in {} ({}, voted for {})",
        transport.local_addr(),
        storage.path().display(),
        restored.current_term,
        restored.voted_for.map_or_else(|| "nobody".to_owned(), |v| v.to_string()),
    );
    let handover_wait = config.timing().election_timeout_max;
    let mut server = Server::builder(config)
        .storage(storage)
        .transport(transport)
        .spawn()
        .map_err(|e| e.to_string())?;
    let supervisor_stop = tokio_util::sync::CancellationToken::new();
    let supervisor = args.run_while_leader.then(|| {
        let config = supervisor::SupervisorConfig {
            command: args.command.clone(),
            node_id: args.id,
            stop_margin: Duration::from_millis(args.stop_margin_ms),
            kill_grace: Duration::from_millis(args.kill_grace_ms),
        };
        tokio::spawn(supervisor::supervise(
            config,
            server.leadership(),
            supervisor_stop.clone(),
        ))
    });
    let reader = server.status_reader();
    let state = reader.clone();
    context.set(Arc::new(move || {
        let status = state.status();
        (status.term, status.role)
    }));
    let status = match args.status {
        Some(addr) => Some(StatusEndpoint::start(addr, reader, network)?),
        None => None,
    };
    let stopped = tokio::select! {
        signal = shutdown_signal() => {
            info!(event = "signal", "{signal}: shutting down");
            // The program first: it runs only under this node's lease.
            supervisor_stop.cancel();
            if let Some(supervisor) = supervisor {
                let _ = supervisor.await;
            }
            // A leader hands over first: the others then elect its successor
            // within a few message delays, not an election timeout.
            if let Some(target) = server.hand_over(handover_wait).await {
                info!(event = "handed_over", successor = target.0, "handed leadership to {target}");
            }
            server.shutdown().await
        }
        stopped = server.stopped() => stopped,
    };
    if let Some(status) = status {
        status.stop();
    }
    stopped.map_err(|e| e.to_string())
}

/// Waits for SIGTERM or SIGINT (Ctrl-C); names the one that came.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// The node's status as an operator reads it.
fn status_json(reader: &StatusReader, network: &TcpStatsHandle) -> serde_json::Value {
    let status = reader.status();
    let round_trips = reader.round_trips();
    let micros = |permille| {
        round_trips
            .percentile(permille)
            .map(|d: Duration| d.as_secs_f64() * 1e6)
    };
    let net = network.snapshot();
    let peers: serde_json::Map<String, serde_json::Value> = net
        .peers
        .iter()
        .map(|(id, p)| {
            (
                id.0.to_string(),
                json!({
                    "connected": p.connected,
                    "connections": p.connections,
                    "sent": p.sent,
                    "dropped": p.dropped,
                }),
            )
        })
        .collect();
    json!({
        "id": status.id.0,
        "role": status.role.to_string(),
        "term": status.term.0,
        "leader": status.leader.map(|l| l.0),
        "voted_for": status.voted_for.map(|v| v.0),
        "running": status.running,
        "last_heartbeat_ms_ago": status.last_heartbeat.map(|at| at.elapsed().as_secs_f64() * 1e3),
        "peers": peers,
        "inbound_connections": net.inbound_connections,
        "rejected_connections": net.rejected_connections,
        "inbox_full": net.inbox_full,
        "heartbeat_round_trip_us": {
            "samples": round_trips.samples().count(),
            "p50": micros(500),
            "p99": micros(990),
        },
    })
}
