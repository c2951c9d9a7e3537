//! What an operator reads and runs, with real node processes: GET /metrics
//! parsed by a Prometheus text parser as leadership moves, the health
//! endpoints around a SIGSTOPped leader, `raft-election status` and
//! `transfer`, peers by host name from config files, the timing profiles
//! and systemd's readiness notification.

use crate::common::{BIN, Cluster, DEADLINE, sh};
use hyper::{Method, StatusCode};
use raft_election::{NodeId, Term};
use raft_election_cli::http::request;
use raft_election_cli::log_lines::NodeEvent;
use raft_election_cli::processes::port_of_this_process;
use raft_election_cli::profile::Profile;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// One request to a status endpoint, from this synchronous test.
fn request_blocking(
    address: &str,
    method: Method,
    path: &str,
    accept: Option<&str>,
) -> Result<(StatusCode, String), String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(request(address, method, path, accept))
}

/// A cluster whose nodes serve their status next to their peer port.
fn cluster(subnet: u8, flags: &[&str]) -> Cluster {
    let mut cluster = Cluster::new(subnet, 3, None);
    cluster.status_port = Some(port_of_this_process() + 1);
    cluster.extra.extend(flags.iter().map(|&f| f.to_owned()));
    cluster
}

/// GET `path` of node `id`'s status endpoint: its code and body.
fn get(cluster: &Cluster, id: NodeId, path: &str) -> (StatusCode, String) {
    let address = cluster
        .status_addr(id)
        .expect("a status address")
        .to_string();
    request_blocking(&address, Method::GET, path, None)
        .unwrap_or_else(|e| panic!("GET {path} of {id}: {e}"))
}

/// Node `id`'s metrics, read by a Prometheus text parser: each sample's
/// value by its name and labels (`name{label="value"}`).
fn scrape(cluster: &Cluster, id: NodeId) -> BTreeMap<String, f64> {
    let (code, text) = get(cluster, id, "/metrics");
    assert_eq!(code, StatusCode::OK, "{text}");
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    let mut samples = BTreeMap::new();
    for sample in scrape.samples {
        let value = match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.last().map_or(0.0, |bucket| bucket.count)
            }
            prometheus_parse::Value::Summary(_) => continue,
        };
        let mut labels: Vec<String> = sample
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        labels.sort();
        let key = if labels.is_empty() {
            sample.metric
        } else {
            format!("{}{{{}}}", sample.metric, labels.join(","))
        };
        samples.insert(key, value);
    }
    samples
}

/// Polls `check` until it holds, at most [`DEADLINE`].
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "waited {DEADLINE:?} for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run(args: &[String]) -> (bool, String, String) {
    let output = Command::new(BIN)
        .args(args)
        .output()
        .expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `--peer` and each node's status address, for `status` and `transfer`.
pub(crate) fn status_peers(cluster: &Cluster) -> Vec<String> {
    cluster
        .ids()
        .into_iter()
        .flat_map(|id| {
            [
                "--peer".to_owned(),
                cluster.status_addr(id).unwrap().to_string(),
            ]
        })
        .collect()
}

/// The gauges a scrape reads follow leadership: the leader says
/// is_leader 1 and the term, a follower 0 with a leader known; after
/// `raft-election transfer` the new leader says 1, has started a
/// transfer election, and the old one says 0. Counters and histograms
/// carry the round trips and the saves measured.
#[test]
fn scraped_gauges_follow_leadership_through_a_transfer_asked_from_the_command_line() {
    let mut cluster = cluster(63, &[]);
    cluster.start_all();
    let (leader, term) = cluster.wait_for_leader_after(Term(0));
    let follower = cluster.ids().into_iter().find(|&id| id != leader).unwrap();
    let before = eventually("the leader's first round trips", || {
        let samples = scrape(&cluster, leader);
        (samples["raft_election_heartbeat_round_trip_seconds"] > 0.0).then_some(samples)
    });
    assert_eq!(before["raft_election_is_leader"], 1.0);
    assert_eq!(before["raft_election_term"], term.0 as f64);
    assert!(before["raft_election_state_save_duration_seconds"] >= 1.0);
    // Prometheus itself asks for OpenMetrics, and gets it.
    let address = cluster.status_addr(leader).unwrap().to_string();
    let openmetrics = "application/openmetrics-text; version=1.0.0";
    let (_, text) = request_blocking(&address, Method::GET, "/metrics", Some(openmetrics)).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(before["raft_election_has_lease"], 0.0);
    for peer in cluster.ids_but(leader) {
        assert_eq!(
            before[&format!("raft_election_peer_connected{{peer=\"{}\"}}", peer.0)],
            1.0
        );
    }
    let seen = eventually("the follower to know the leader", || {
        let samples = scrape(&cluster, follower);
        (samples["raft_election_has_leader"] == 1.0).then_some(samples)
    });
    assert_eq!(seen["raft_election_is_leader"], 0.0);

    let mut transfer = vec!["transfer".to_owned(), "--to".into(), follower.0.to_string()];
    transfer.extend(status_peers(&cluster));
    let (ok, out, err) = run(&transfer);
    assert!(ok, "transfer failed: {out}{err}");
    let after = scrape(&cluster, follower);
    assert_eq!(after["raft_election_is_leader"], 1.0);
    assert!(after["raft_election_term"] > term.0 as f64);
    assert_eq!(
        after["raft_election_elections_started_total{kind=\"transfer\"}"],
        1.0
    );
    assert!(after["raft_election_leader_changes_seen_total"] >= 2.0);
    let old = eventually("the old leader to step down", || {
        let samples = scrape(&cluster, leader);
        (samples["raft_election_is_leader"] == 0.0).then_some(samples)
    });
    assert!(old["raft_election_leader_changes_seen_total"] >= 2.0);

    let mut status = vec!["status".to_owned(), "--json".into()];
    status.extend(status_peers(&cluster));
    let (ok, out, err) = run(&status);
    assert!(ok, "status failed: {err}");
    let nodes: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let leaders: Vec<&serde_json::Value> = nodes
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["status"]["role"] == "leader")
        .collect();
    assert_eq!(leaders.len(), 1, "{out}");
    assert_eq!(leaders[0]["status"]["id"], follower.0);
    let (ok, table, _) = run(&status[..1]
        .iter()
        .cloned()
        .chain(status_peers(&cluster))
        .collect::<Vec<_>>());
    assert!(ok && table.lines().count() == 4, "{table}");
    cluster.terminate_all(DEADLINE).unwrap();
}

/// Seen from a follower, a leader paused with SIGSTOP (and the other
/// follower with it, so no majority is left to elect another): /readyz
/// turns 503 within an election timeout of the last heartbeat while
/// /healthz stays 200 (its loop goes on stepping: it campaigns), and
/// /leader is 503 throughout; all is well again after SIGCONT. With the
/// lease on, /leader is 200 on the leader only.
#[test]
fn a_sigstopped_leader_seen_from_a_follower_fails_readyz_but_not_healthz() {
    let mut cluster = cluster(64, &["--leader-lease"]);
    cluster.start_all();
    let (leader, _) = cluster.wait_for_leader_after(Term(0));
    let [watcher, other]: [NodeId; 2] = cluster.ids_but(leader).try_into().unwrap();
    eventually("the leader's lease", || {
        (get(&cluster, leader, "/leader").0 == StatusCode::OK).then_some(())
    });
    eventually("the watcher to be ready", || {
        (get(&cluster, watcher, "/readyz").0 == StatusCode::OK).then_some(())
    });
    assert_eq!(
        get(&cluster, watcher, "/leader").0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(get(&cluster, watcher, "/healthz").0, StatusCode::OK);

    let paused = [cluster.pid(leader), cluster.pid(other)];
    for pid in paused {
        sh("kill", &["-STOP", &pid.to_string()]).unwrap();
    }
    let (_, why) = eventually("/readyz to fail", || {
        let (code, body) = get(&cluster, watcher, "/readyz");
        (code == StatusCode::SERVICE_UNAVAILABLE).then_some((code, body))
    });
    assert!(
        why.contains("knows no leader") || why.contains("last heard"),
        "{why}"
    );
    // Its loop steps (it campaigns): healthy, though a loaded machine may
    // leave it unscheduled past the limit for a moment.
    eventually("/healthz to say the loop steps", || {
        (get(&cluster, watcher, "/healthz").0 == StatusCode::OK).then_some(())
    });
    assert_eq!(
        get(&cluster, watcher, "/leader").0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    for pid in paused {
        sh("kill", &["-CONT", &pid.to_string()]).unwrap();
    }
    eventually("/readyz to recover", || {
        (get(&cluster, watcher, "/readyz").0 == StatusCode::OK).then_some(())
    });
    let status: serde_json::Value =
        serde_json::from_str(&get(&cluster, watcher, "/status").1).unwrap();
    assert_eq!(status["healthy"], true);
    cluster.terminate_all(DEADLINE).unwrap();
}

/// Three nodes from config files, their peers given as `localhost:PORT`:
/// they elect a leader; a follower killed and restarted from its file is
/// reached again by name and follows. `--print-config` prints a file that
/// starts the same node; an unknown key stops it, naming the key and line.
#[test]
fn nodes_configured_by_file_reach_their_peers_by_host_name() {
    let mut cluster = Cluster::new(62, 3, None);
    let base = port_of_this_process();
    let port = |id: NodeId| base + u16::from(id.0);
    for id in cluster.ids() {
        let peers: Vec<String> = cluster
            .ids()
            .into_iter()
            .filter(|&peer| peer != id)
            .map(|peer| format!("\"{}=localhost:{}\"", peer.0, port(peer)))
            .collect();
        let file = format!(
            "id = {}\nlisten = \"127.0.0.1:{}\"\npeer = [{}]\ndata-dir = \"{}\"\n\
             log-format = \"json\"\nverbose = 1\n",
            id.0,
            port(id),
            peers.join(", "),
            cluster.data_dir(id).display()
        );
        std::fs::write(cluster.dir().join(format!("n{}.toml", id.0)), file).unwrap();
    }
    let dir = cluster.dir().to_owned();
    let config = |id: NodeId| dir.join(format!("n{}.toml", id.0)).display().to_string();
    let args = |id: NodeId, init: bool| {
        let mut args = vec!["node".to_owned(), "--config".into(), config(id)];
        if init {
            args.push("--init".into());
        }
        args
    };
    let (ok, printed, err) = run(&[args(NodeId(1), false), vec!["--print-config".into()]].concat());
    assert!(ok, "{err}");
    assert!(printed.contains("peer = [\"2=localhost:"), "{printed}");
    assert!(printed.contains("timing = \"local\""), "{printed}");
    let all: Vec<(NodeId, Vec<String>)> = cluster
        .ids()
        .into_iter()
        .map(|id| (id, args(id, true)))
        .collect();
    for (id, args) in all {
        cluster.start_with(id, &args);
    }
    let (leader, term) = cluster.wait_for_leader_after(Term(0));
    let follower = cluster.ids().into_iter().find(|&id| id != leader).unwrap();
    cluster.kill(follower);
    let again = args(follower, false);
    cluster.start_with(follower, &again);
    cluster.wait_for(&format!("{follower} to follow again"), |h| {
        let log = &h.nodes[&follower];
        (log.starts().count() == 2 && log.leader.is_some() && log.term >= term).then_some(())
    });

    let bad = cluster.dir().join("bad.toml");
    std::fs::write(
        &bad,
        "id = 1\nlisten = \"127.0.0.1:1\"\nheartbeat_ms = 50\n",
    )
    .unwrap();
    let (ok, _, err) = run(&["node".into(), "--config".into(), bad.display().to_string()]);
    assert!(!ok);
    assert!(err.contains("line 3: unknown key `heartbeat_ms`"), "{err}");
    cluster.terminate_all(DEADLINE).unwrap();
}

/// `--timing lan` is logged at start with every derived figure, and served
/// in /status; a stop margin that does not fit in the lease after a
/// heartbeat is refused, saying why.
#[test]
fn a_timing_profile_is_logged_and_served_and_a_margin_outside_the_lease_is_refused() {
    let mut cluster = cluster(65, &["--timing", "lan", "--leader-lease"]);
    cluster.start(NodeId(1), true);
    let figures = cluster.wait_for("the timing line", |h| {
        h.nodes
            .get(&NodeId(1))?
            .events()
            .find_map(|(_, event)| match event {
                NodeEvent::Timing(figures) => Some(figures.clone()),
                _ => None,
            })
    });
    assert_eq!(figures.profile, Profile::Lan);
    assert_eq!(
        (figures.election_min_ms, figures.heartbeat_ms),
        (1000.0, 100.0)
    );
    assert_eq!(figures.check_quorum_window_ms, Some(1000.0));
    assert!((figures.lease_ms.unwrap() - 1000.0 / 1.1).abs() < 0.01);
    let status: serde_json::Value = eventually("the status endpoint", || {
        let address = cluster.status_addr(NodeId(1))?.to_string();
        let (_, body) = request_blocking(&address, Method::GET, "/status", None).ok()?;
        serde_json::from_str(&body).ok()
    });
    assert_eq!(status["timing"]["profile"], "lan");
    assert_eq!(status["timing"]["heartbeat_ms"], 100.0);

    let mut refused = cluster.args(NodeId(2));
    refused.extend(
        [
            "--init",
            "--run-while-leader",
            "--stop-margin-ms",
            "850",
            "--kill-grace-ms",
            "100",
            "--",
            "true",
        ]
        .map(String::from),
    );
    let (status, err) = cluster.run_to_end(&refused);
    assert!(!status.success());
    assert!(err.contains("stopped at every renewal"), "{err}");
    cluster.terminate_all(DEADLINE).unwrap();
}

/// With NOTIFY_SOCKET set, as systemd sets it for Type=notify, a node
/// sends READY=1 once it knows a leader, and STOPPING=1 on SIGTERM. The
/// socket is read all along, as systemd reads it: a full socket would
/// block the node's notifications.
#[test]
fn a_node_tells_systemd_it_is_ready_once_it_knows_a_leader() {
    let mut cluster = cluster(66, &[]);
    let path = cluster.dir().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let said = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (said, done) = (said.clone(), done.clone());
        std::thread::spawn(move || {
            let mut buffer = [0_u8; 512];
            // Each turn reads one notification or times out, until done.
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buffer) {
                    let mut said = said.lock().unwrap();
                    if said.len() < 10_000 {
                        said.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
                    }
                }
            }
        })
    };
    let notified = |what: &str| said.lock().unwrap().iter().any(|s| s.contains(what));
    cluster
        .env
        .push(("NOTIFY_SOCKET".into(), path.display().to_string()));
    cluster.start_all();
    eventually("READY=1", || notified("READY=1").then_some(()));
    let history = cluster.history();
    assert!(
        history.nodes.values().any(|log| log
            .events()
            .any(|(_, e)| matches!(e, NodeEvent::Ready { .. }))),
        "a Ready event is logged"
    );
    cluster.terminate_all(DEADLINE).unwrap();
    eventually("STOPPING=1", || notified("STOPPING=1").then_some(()));
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    reader.join().unwrap();
}
