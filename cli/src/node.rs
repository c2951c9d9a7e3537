//! `raft-election node`: one node of a real cluster, a process of its own,
//! reaching its peers over TCP.

mod args;
mod config;
mod health;
mod metrics;
mod status;
mod supervisor;
mod tls;

pub(crate) use args::NodeArgs;
use clap::ArgMatches;
use health::Liveness;
use metrics::Recorded;
use raft_election::{ClusterId, Config, NodeId, Record, Role};
use raft_election_cli::log_lines::{NodeEvent, log_event};
use raft_election_cli::logging::{LogFormat, NodeContext, init_node_logging};
use raft_election_cli::profile::{ProgramTiming, TimingFigures};
use raft_election_runtime::{
    DataDir, DirStorage, Leadership, Noted, RECORD_LOG_TARGET, RoundTrips, Server, TcpConfig,
    TcpStatsHandle, TcpTransport,
};
use status::{StatusEndpoint, TransferRequest, View};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::info;

/// Where the process's own events go: its log, and its metrics.
#[derive(Clone, Debug)]
pub(crate) struct Events(Arc<Recorded>);

impl Events {
    /// Logs `event` and counts it.
    pub(crate) fn tell(&self, event: &NodeEvent) {
        log_event(event);
        self.0.event(event);
    }
}

/// Runs the node until SIGTERM or Ctrl-C (exit 0) or a failure (exit 1,
/// with the reason). `matches` tells which flags the command line gave,
/// which win over the `--config` file.
pub(crate) fn main(args: NodeArgs, matches: &ArgMatches) -> ExitCode {
    let args = match config::merge(args, matches) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.print_config {
        return match config::print(&args).and_then(|text| configure(&args).map(|_| text)) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let json = args.log.log_format == LogFormat::Json;
    let context = NodeContext::new(NodeId(args.cluster.id.unwrap_or_default()));
    let level = match args.log.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let mut filter = format!("raft_election={level}");
    if args.log.log_steps {
        filter.push_str(&format!(",{RECORD_LOG_TARGET}=trace"));
    }
    if let Err(e) = init_node_logging(args.log.log_format, &filter, context.clone()) {
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
        Ok(runtime) => runtime.block_on(run(&args, context)),
        Err(e) => Err(format!("cannot start the Tokio runtime: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A JSON log is read by tools: the reason goes there. On a terminal,
        // the usual `error:` line.
        Err(reason) if json => {
            log_event(&NodeEvent::Failed { reason });
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the flags decide, checked.
struct Settings {
    config: Config,
    tcp: TcpConfig,
    data_dir: PathBuf,
    init: bool,
    figures: TimingFigures,
    /// The `--run-while-leader` program and how it is stopped.
    program: Option<(Vec<String>, ProgramTiming)>,
    status: Option<SocketAddr>,
}

/// The flags' settings, or why they cannot work: each refusal names the
/// flags and the argument it would break (docs/operators.md).
fn configure(args: &NodeArgs) -> Result<Settings, String> {
    let cluster = &args.cluster;
    let missing = |flag: &str| format!("--{flag} is required (a flag, or `{flag}` in --config)");
    let id = cluster.id.ok_or_else(|| missing("id"))?;
    let listen = cluster.listen.ok_or_else(|| missing("listen"))?;
    let data_dir = cluster
        .data_dir
        .clone()
        .ok_or_else(|| missing("data-dir"))?;
    let mut peers = BTreeMap::new();
    for peer in &cluster.peers {
        if peer.id == id {
            return Err(format!("--peer {peer} is this node's own id"));
        }
        if peers
            .insert(NodeId(peer.id), peer.address.clone())
            .is_some()
        {
            return Err(format!("--peer {} is given twice", peer.id));
        }
    }
    let timing = args.timing.resolved();
    let ms = |value: Option<u64>| Duration::from_millis(value.unwrap_or_default());
    let timing_of = raft_election::Timing {
        election_timeout_min: ms(timing.election_min_ms),
        election_timeout_max: ms(timing.election_max_ms),
        heartbeat_interval: ms(timing.heartbeat_ms),
    };
    let voters = peers.keys().copied().chain([NodeId(id)]);
    let mut config = Config::new(NodeId(id), voters, timing_of)
        .map_err(|e| timing_refused(&e.to_string(), cluster.features.check_quorum))?
        .with_features(cluster.features);
    let program = program(args)?;
    if args.timing.leader_lease || program.is_some() {
        config = config
            .with_leader_lease(args.timing.max_clock_drift)
            .map_err(|e| e.to_string())?;
        check_lease(&config, program.as_ref().map(|(_, p)| p))?;
    }
    let mut tcp = TcpConfig::new(ClusterId(cluster.cluster_id), listen, BTreeMap::new());
    tcp.peers = peers;
    tcp.handshake_timeout = Duration::from_millis(cluster.handshake_timeout_ms);
    if tcp.handshake_timeout.is_zero() {
        return Err("--handshake-timeout-ms must be positive".into());
    }
    let figures = TimingFigures::of(timing.profile, &config, program.as_ref().map(|(_, p)| *p));
    Ok(Settings {
        config,
        tcp,
        data_dir,
        init: cluster.init,
        figures,
        program,
        status: args.operator.status,
    })
}

/// The core's refusal of a timing, with CheckQuorum's stake in it.
fn timing_refused(reason: &str, check_quorum: bool) -> String {
    if check_quorum {
        format!(
            "{reason} (CheckQuorum counts a majority's answers over the heartbeats that fit in \
             the minimum election timeout: it needs at least two, or one lost answer deposes \
             the leader)"
        )
    } else {
        reason.to_owned()
    }
}

/// The `--run-while-leader` program and its timing, if one is asked for.
fn program(args: &NodeArgs) -> Result<Option<(Vec<String>, ProgramTiming)>, String> {
    let program = args.program.resolved(args.timing.profile);
    match (program.run_while_leader, program.command.is_empty()) {
        (false, true) => return Ok(None),
        (false, false) => return Err("a COMMAND after `--` needs --run-while-leader".into()),
        (true, true) => return Err("--run-while-leader needs a COMMAND after `--`".into()),
        (true, false) => {}
    }
    let ms = |value: Option<u64>| Duration::from_millis(value.unwrap_or_default());
    let timing = ProgramTiming {
        stop_margin: ms(program.stop_margin_ms),
        kill_grace: ms(program.kill_grace_ms),
        drain_timeout: Duration::from_millis(program.drain_timeout_ms),
    };
    if timing.kill_grace.is_zero() || timing.kill_grace >= timing.stop_margin {
        return Err(
            "--kill-grace-ms must be positive and less than --stop-margin-ms: the watchdog's \
             SIGKILL must come before the lease ends"
                .into(),
        );
    }
    Ok(Some((program.command, timing)))
}

/// Refuses a lease that cannot hold between two renewals, or a program
/// margin that does not fit in it.
fn check_lease(config: &Config, program: Option<&ProgramTiming>) -> Result<(), String> {
    let lease = config.lease_duration().unwrap_or_default();
    let heartbeat = config.timing().heartbeat_interval;
    if lease <= heartbeat {
        return Err(format!(
            "the lease of {lease:?} (the minimum election timeout shortened by \
             --max-clock-drift) is renewed once a heartbeat of {heartbeat:?}: it must be \
             longer, or it lapses between two renewals"
        ));
    }
    // The lease is renewed once a heartbeat: a margin that does not fit
    // after one would stop the program at every renewal.
    if let Some(program) = program {
        if program.stop_margin + heartbeat >= lease {
            return Err(format!(
                "--stop-margin-ms {:?} plus the heartbeat must be less than the lease of \
                 {lease:?}, or the program would be stopped at every renewal",
                program.stop_margin
            ));
        }
    }
    Ok(())
}

/// The node's state file, its directory locked; only --init may create
/// them: a mistyped path must not become a new, empty node.
fn open_state(settings: &Settings) -> Result<(DirStorage, raft_election::HardState), String> {
    let (id, cluster) = (settings.config.id(), settings.tcp.cluster);
    // The lock first: a second process on this directory must say so,
    // not fail later on a busy port.
    let dir = if settings.init {
        DataDir::create(&settings.data_dir)
    } else {
        DataDir::lock(&settings.data_dir)
    };
    let opened = dir
        .and_then(|dir| dir.state(cluster, id, settings.init))
        .map_err(|e| e.to_string())?;
    if settings.init {
        info!("initialized {} at term 0", opened.0.path().display());
    }
    Ok(opened)
}

/// What the node's records feed: the metrics, and the loop's liveness.
fn record_hook(
    recorded: &Arc<Recorded>,
    liveness: &Arc<Liveness>,
) -> impl FnMut(&Noted<'_>) + Send + 'static {
    let (recorded, liveness) = (Arc::clone(recorded), Arc::clone(liveness));
    move |noted| {
        if matches!(noted.record, Record::Stepped { .. } | Record::Started(_)) {
            liveness.stepped();
        }
        recorded.note(noted);
    }
}

/// What the status endpoint answers from; `transfers` takes its transfer
/// requests, accepted only if it listens on a loopback address.
fn view(
    settings: &Settings,
    running: &Running,
    addr: SocketAddr,
    transfers: &mpsc::Sender<TransferRequest>,
) -> View {
    let server = &running.server;
    let network = running.network.clone();
    View {
        reader: server.status_reader(),
        registry: metrics::registry(&running.recorded, server.leadership(), network.clone()),
        network,
        leadership: server.leadership(),
        liveness: Arc::clone(&running.liveness),
        timing: *settings.config.timing(),
        quorum: settings.config.quorum(),
        voters: settings.config.voters().iter().copied().collect(),
        lease: settings.config.leader_lease().is_some(),
        figures: settings.figures.clone(),
        transfers: addr.ip().is_loopback().then(|| transfers.clone()),
    }
}

/// The node running, and what watches it.
struct Running {
    server: Server,
    recorded: Arc<Recorded>,
    liveness: Arc<Liveness>,
    network: TcpStatsHandle,
}

async fn start(settings: &Settings) -> Result<Running, String> {
    let (storage, restored) = open_state(settings)?;
    let transport = TcpTransport::bind(&settings.config, settings.tcp.clone())
        .await
        .map_err(|e| e.to_string())?;
    let network = transport.stats();
    log_event(&NodeEvent::Listening {
        address: transport.local_addr(),
        cluster: settings.tcp.cluster,
        state_file: storage.path().to_owned(),
        restored,
    });
    log_event(&NodeEvent::Timing(settings.figures.clone()));
    let recorded = Arc::new(Recorded::default());
    let liveness = Arc::new(Liveness::new());
    let server = Server::builder(settings.config.clone())
        .storage(storage)
        .transport(transport)
        .on_record(record_hook(&recorded, &liveness))
        .spawn()
        .map_err(|e| e.to_string())?;
    Ok(Running {
        server,
        recorded,
        liveness,
        network,
    })
}

/// The `--run-while-leader` supervisor's task, if a program runs.
fn supervise(
    settings: &Settings,
    server: &Server,
    recorded: &Arc<Recorded>,
    stop: &tokio_util::sync::CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let (command, timing) = settings.program.clone()?;
    let config = supervisor::SupervisorConfig {
        command,
        node_id: settings.config.id().0,
        stop_margin: timing.stop_margin,
        kill_grace: timing.kill_grace,
        drain_timeout: timing.drain_timeout,
        events: Events(Arc::clone(recorded)),
    };
    Some(tokio::spawn(supervisor::supervise(
        config,
        server.leadership(),
        stop.clone(),
    )))
}

async fn run(args: &NodeArgs, context: NodeContext) -> Result<(), String> {
    let mut settings = configure(args)?;
    // Inside the runtime: with TLS, a task reloads the files on SIGHUP.
    settings.tcp.tls = args.tls.start(
        settings.tcp.listen,
        settings.tcp.cluster,
        settings.config.id(),
    )?;
    let running = start(&settings).await?;
    let (transfers, mut asked) = mpsc::channel::<TransferRequest>(4);
    let endpoint = match settings.status {
        Some(addr) => Some(StatusEndpoint::start(
            addr,
            view(&settings, &running, addr, &transfers),
        )?),
        None => None,
    };
    let Running {
        mut server,
        recorded,
        ..
    } = running;
    let supervisor_stop = tokio_util::sync::CancellationToken::new();
    let supervisor = supervise(&settings, &server, &recorded, &supervisor_stop);
    let reader = server.status_reader();
    let state = reader.clone();
    context.set(Arc::new(move || {
        let status = state.status();
        (status.term, status.role)
    }));
    let readiness = tokio::spawn(announce_readiness(server.leadership()));
    let handover_wait = settings.config.timing().election_timeout_max;
    let signal = shutdown_signal();
    tokio::pin!(signal);
    // Each turn serves one transfer request, or ends with the node.
    let stopped = loop {
        tokio::select! {
            signal = &mut signal => {
                log_event(&NodeEvent::Signal { signal: signal.to_owned() });
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
                // The program first: it runs only under this node's lease,
                // which the node keeps renewing while the program drains.
                supervisor_stop.cancel();
                if let Some(supervisor) = supervisor {
                    let _ = supervisor.await;
                }
                // A leader hands over first: the others then elect its
                // successor within a few message delays, not an election timeout.
                if let Some(target) = server.hand_over(handover_wait).await {
                    log_event(&NodeEvent::HandedOver { successor: target });
                }
                break server.shutdown().await;
            }
            stopped = server.stopped() => break stopped,
            Some((to, from)) = asked.recv() => {
                log_event(&NodeEvent::TransferAsked { to, from });
                let _ = server.transfer_leadership(to);
            }
        }
    };
    readiness.abort();
    if let Some(endpoint) = endpoint {
        endpoint.stop();
    }
    let stopped = stopped.map_err(|e| e.to_string());
    log_event(&stopped_event(
        &reader.round_trips(),
        stopped.as_ref().err(),
    ));
    stopped
}

/// Says when the node first knows a leader (itself, or one it heard): a
/// log line, and READY=1 to systemd (a no-op elsewhere); then the leader
/// as systemd's status line at each change.
async fn announce_readiness(mut leadership: watch::Receiver<Leadership>) {
    let first = match leadership.wait_for(|l| l.leader.is_some()).await {
        Ok(now) => *now,
        Err(_) => return,
    };
    if let Some(leader) = first.leader {
        log_event(&NodeEvent::Ready { leader });
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let mut said = String::new();
    // Each turn reports one change of term or leader (not the lease's
    // renewals, once a heartbeat), until the node stops.
    loop {
        let now = *leadership.borrow_and_update();
        let role = if now.is_me {
            Role::Leader
        } else {
            Role::Follower
        };
        let words = match now.leader {
            Some(leader) => format!("{role} in {}, {leader} leads", now.term),
            None => format!("no leader known in {}", now.term),
        };
        if words != said {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(&words)]);
            said = words;
        }
        if leadership.changed().await.is_err() {
            return;
        }
    }
}

/// The record of the node's end: the round trips it measured as leader, and
/// why it failed, if it did.
fn stopped_event(round_trips: &RoundTrips, error: Option<&String>) -> NodeEvent {
    let micros = |permille| {
        round_trips
            .percentile(permille)
            .map(|d| d.as_secs_f64() * 1e6)
    };
    NodeEvent::Stopped {
        round_trips: round_trips.samples().count(),
        round_trip_p50_us: micros(500),
        round_trip_p99_us: micros(990),
        error: error.cloned(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, FromArgMatches};
    use raft_election::HardState;
    use raft_election::storage::{MemStorage, Storage, StorageError};
    use raft_election_cli::http::request;
    use std::sync::{Condvar, Mutex};

    /// A disk that stopped answering: saves block while `stalled` holds.
    struct StalledDisk {
        inner: MemStorage,
        stalled: Arc<(Mutex<bool>, Condvar)>,
    }

    impl Storage for StalledDisk {
        fn load(&self) -> Result<HardState, StorageError> {
            self.inner.load()
        }

        fn save(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
            let (lock, wake) = &*self.stalled;
            let mut stalled = lock.lock().unwrap();
            // Each turn waits for the disk to come back.
            while *stalled {
                stalled = wake.wait(stalled).unwrap();
            }
            self.inner.save(hard_state)
        }
    }

    fn settings(status: SocketAddr) -> Settings {
        let argv = [
            "node",
            "--id",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--peer",
            "2=127.0.0.1:9",
        ];
        let status = status.to_string();
        let argv = argv
            .into_iter()
            .chain(["--data-dir", "/unused", "--status", &status]);
        let command = NodeArgs::augment_args(clap::Command::new("node"));
        let args = NodeArgs::from_arg_matches(&command.get_matches_from(argv)).unwrap();
        configure(&args).unwrap()
    }

    /// A node whose state file cannot be saved (its disk stalled) stops
    /// stepping: its status endpoint, on a thread of its own, still
    /// answers, and /healthz turns 503 once the loop has been stuck for
    /// longer than an election timeout and a heartbeat.
    #[test]
    fn a_loop_wedged_on_a_stalled_disk_fails_healthz_while_the_endpoint_answers() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let status = free.local_addr().unwrap();
        drop(free);
        let settings = settings(status);
        let stalled = Arc::new((Mutex::new(true), Condvar::new()));
        let disk = StalledDisk {
            inner: MemStorage::new(),
            stalled: Arc::clone(&stalled),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // The node on a runtime of its own, which the stalled save blocks.
        let node = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let transport = TcpTransport::bind(&settings.config, settings.tcp.clone())
                    .await
                    .unwrap();
                let (recorded, liveness) = (Arc::default(), Arc::new(Liveness::new()));
                let running = Running {
                    network: transport.stats(),
                    server: Server::builder(settings.config.clone())
                        .storage(disk)
                        .transport(transport)
                        .on_record(record_hook(&recorded, &liveness))
                        .spawn()
                        .unwrap(),
                    recorded,
                    liveness,
                };
                let (transfers, _asked) = mpsc::channel(1);
                let endpoint =
                    StatusEndpoint::start(status, view(&settings, &running, status, &transfers))
                        .unwrap();
                let _ = stopped.await;
                endpoint.stop();
                running.server.shutdown().await.unwrap();
            });
        });
        let address = status.to_string();
        let asking = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let healthz = || asking.block_on(request(&address, hyper::Method::GET, "/healthz", None));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut answers = Vec::new();
        // Each turn asks once, until the endpoint says the loop is wedged.
        let wedged = loop {
            if let Ok((code, body)) = healthz() {
                if code == hyper::StatusCode::SERVICE_UNAVAILABLE {
                    break body;
                }
                answers.push(code);
            }
            assert!(std::time::Instant::now() < deadline, "still {answers:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(wedged.contains("has not stepped"), "{wedged}");
        assert_eq!(
            answers.first(),
            Some(&hyper::StatusCode::OK),
            "healthy at first"
        );
        *stalled.0.lock().unwrap() = false;
        stalled.1.notify_all();
        let _ = stop.send(());
        node.join().unwrap();
    }
}
