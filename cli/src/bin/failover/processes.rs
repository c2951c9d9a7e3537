//! The TCP benchmarks' node processes: a [`ProcessCluster`] started with
//! the benchmark's timing and features, and what the benchmark waits for
//! and measures of it (the times are the nodes' own, from their logs).

use raft_election::{Features, NodeId, Term, Timing};
use raft_election_cli::processes::{ProcessCluster, seconds};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Starts `nodes` new nodes (`--init`) of `binary` on 127.`subnet`.0.i,
/// their data directories in a new directory under `root`; with `tls`,
/// each with its certificate, every peer connection mutual TLS. Returns
/// the cluster and when its nodes were started (`ts`), once their
/// certificates were made.
pub(crate) fn start(
    binary: &Path,
    root: &Path,
    (nodes, tls): (u8, bool),
    (subnet, port): (u8, u16),
    timing: Timing,
    features: Features,
) -> Result<(ProcessCluster, f64), String> {
    let mut cluster = ProcessCluster::new(binary, Some(root), nodes, subnet, port)?;
    if tls {
        cluster = cluster.with_tls()?;
    }
    let millis = |d: Duration| d.as_millis().to_string();
    cluster.extra = vec![
        "--election-min-ms".into(),
        millis(timing.election_timeout_min),
        "--election-max-ms".into(),
        millis(timing.election_timeout_max),
        "--heartbeat-ms".into(),
        millis(timing.heartbeat_interval),
        "--features".into(),
        features.to_string(),
    ];
    let started = seconds(std::time::SystemTime::now());
    cluster.start_all()?;
    Ok((cluster, started))
}

/// The first leader of a term after `after` that a majority follows, and
/// when it won (`ts`).
pub(crate) fn wait_for_leader_after(
    cluster: &ProcessCluster,
    after: Term,
    limit: Duration,
) -> Result<(NodeId, Term, f64), String> {
    let (leader, term) = cluster.wait_for_leader_after(after, limit)?;
    let won = cluster.history().won_at(leader, term);
    Ok((leader, term, won.ok_or("the win is not logged")?))
}

/// Waits until every running node follows `leader` in `term`; returns
/// when the last one learned it (`ts`).
pub(crate) fn wait_all_follow(
    cluster: &ProcessCluster,
    leader: NodeId,
    term: Term,
    limit: Duration,
) -> Result<f64, String> {
    let what = format!("every node to follow {leader} in {term}");
    cluster.wait_for(&what, limit, |h| {
        h.running.iter().try_fold(0.0_f64, |last, &id| {
            let log = h.nodes.get(&id)?;
            if log.term != term || log.leader != Some(leader) {
                return None;
            }
            Some(last.max(h.learned_at(id, leader, term)?))
        })
    })
}

/// Resident memory (kB) and CPU time (s) of process `pid`, from /proc.
pub(crate) fn usage(pid: u32) -> Result<(u64, f64), String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or("no VmRSS")?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // Fields after the command name, which may contain spaces, in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15: indexes 11 and 12 after the name.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    let (user, system) = (ticks(11).ok_or("no utime")?, ticks(12).ok_or("no stime")?);
    // /proc counts in USER_HZ, 100 on Linux whatever the kernel's HZ.
    Ok((rss, (user + system) as f64 / 100.0))
}

/// The node binary beside this one (`cargo build --release --bins` builds both).
pub(crate) fn default_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("raft-election")))
        .unwrap_or_else(|| PathBuf::from("raft-election"))
}
