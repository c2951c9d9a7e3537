//! A cluster of `raft-election node` processes for the TCP benchmarks: each
//! node on its own loopback address, its JSON log lines read as they come
//! (the times are the nodes' own), every process killed on drop.

use raft_election::{Features, NodeId, Term, Timing};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Lines buffered from all nodes; a reader blocks when the benchmark falls
/// this far behind, which only slows that node's logging.
const LINES: usize = 4_096;

/// What one node's log says now.
#[derive(Clone, Copy, Debug, Default)]
struct NodeView {
    term: Term,
    leader: Option<NodeId>,
}

/// Three (or more) node processes.
pub(crate) struct Processes {
    children: BTreeMap<NodeId, Child>,
    /// Nodes sent SIGTERM, reaped on drop.
    stopping: Vec<Child>,
    _dir: tempfile::TempDir,
    lines: mpsc::Receiver<(NodeId, Value)>,
    views: BTreeMap<NodeId, NodeView>,
    /// Every `role -> leader` line: (term, node, ts).
    elections: Vec<(Term, NodeId, f64)>,
    /// When each node learned the leader of each term (`leader` lines).
    learned: BTreeMap<(NodeId, Term), f64>,
    /// Every `stop` line, by node.
    pub(crate) stops: BTreeMap<NodeId, Value>,
}

/// Seconds since the epoch, as the logs' `ts`.
pub(crate) fn seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Processes {
    /// Starts `nodes` new nodes (`--init`) of `binary` on 127.`subnet`.0.i,
    /// their data directories in a new directory under `root`.
    pub(crate) fn start(
        binary: &Path,
        root: &Path,
        nodes: u8,
        subnet: u8,
        port: u16,
        timing: Timing,
        features: Features,
    ) -> Result<Self, String> {
        let dir = tempfile::tempdir_in(root).map_err(|e| format!("{}: {e}", root.display()))?;
        let addrs: BTreeMap<NodeId, SocketAddr> = (1..=nodes)
            .map(|i| {
                (
                    NodeId(i),
                    SocketAddr::from((Ipv4Addr::new(127, subnet, 0, i), port)),
                )
            })
            .collect();
        let (sender, lines) = mpsc::sync_channel(LINES);
        let mut children = BTreeMap::new();
        for (&id, addr) in &addrs {
            let mut command = Command::new(binary);
            command
                .args([
                    "node",
                    "--init",
                    "--log-format",
                    "json",
                    "--id",
                    &id.0.to_string(),
                ])
                .arg("--listen")
                .arg(addr.to_string())
                .arg("--data-dir")
                .arg(dir.path().join(id.0.to_string()))
                .arg("--election-min-ms")
                .arg(timing.election_timeout_min.as_millis().to_string())
                .arg("--election-max-ms")
                .arg(timing.election_timeout_max.as_millis().to_string())
                .arg("--heartbeat-ms")
                .arg(timing.heartbeat_interval.as_millis().to_string())
                .arg("--features")
                .arg(features.to_string());
            for (&peer, peer_addr) in &addrs {
                if peer != id {
                    command.arg("--peer").arg(format!("{}={peer_addr}", peer.0));
                }
            }
            let mut child = command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("{}: {e}", binary.display()))?;
            let stderr = child.stderr.take().ok_or("no stderr")?;
            let sender = sender.clone();
            // Ends when the process closes its stderr (it exited).
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(value) = serde_json::from_str::<Value>(&line) {
                        if sender.send((id, value)).is_err() {
                            return;
                        }
                    }
                }
            });
            children.insert(id, child);
        }
        Ok(Self {
            children,
            stopping: Vec::new(),
            _dir: dir,
            lines,
            views: addrs.keys().map(|&id| (id, NodeView::default())).collect(),
            elections: Vec::new(),
            learned: BTreeMap::new(),
            stops: BTreeMap::new(),
        })
    }

    pub(crate) fn pid(&self, id: NodeId) -> Option<u32> {
        self.children.get(&id).map(Child::id)
    }

    /// Reads lines until `done` says so or `limit` passes.
    fn read_until<T>(
        &mut self,
        what: &str,
        limit: Duration,
        mut done: impl FnMut(&Self) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + limit;
        // Each turn takes one line or gives up.
        loop {
            if let Some(found) = done(self) {
                return Ok(found);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let (id, line) = self
                .lines
                .recv_timeout(left)
                .map_err(|_| format!("no {what} within {limit:?}"))?;
            self.apply(id, &line);
        }
    }

    fn apply(&mut self, id: NodeId, line: &Value) {
        let view = self.views.entry(id).or_default();
        if let Some(term) = line["term"].as_u64().map(Term) {
            if term != view.term {
                view.leader = None;
            }
            view.term = term;
        }
        let ts = line["ts"].as_f64().unwrap_or(0.0);
        match line["event"].as_str() {
            Some("role") if line["to"] == "leader" => {
                view.leader = Some(id);
                self.elections.push((view.term, id, ts));
            }
            Some("leader") => {
                view.leader = line["leader"]
                    .as_u64()
                    .and_then(|l| u8::try_from(l).ok())
                    .map(NodeId);
                self.learned.insert((id, view.term), ts);
            }
            Some("stop") => {
                self.stops.insert(id, line.clone());
            }
            _ => {}
        }
    }

    /// The first leader of a term after `after`, and when it won (`ts`).
    pub(crate) fn wait_for_leader_after(
        &mut self,
        after: Term,
        limit: Duration,
    ) -> Result<(NodeId, Term, f64), String> {
        self.read_until("leader", limit, |p| {
            p.elections
                .iter()
                .find(|&&(term, _, _)| term > after)
                .map(|&(term, id, ts)| (id, term, ts))
        })
    }

    /// Waits until every running node follows `leader` in `term`; returns
    /// when the last one learned it (`ts`).
    pub(crate) fn wait_all_follow(
        &mut self,
        leader: NodeId,
        term: Term,
        limit: Duration,
    ) -> Result<f64, String> {
        let mut last = 0.0_f64;
        let running: Vec<NodeId> = self.children.keys().copied().collect();
        let deadline = Instant::now() + limit;
        for id in running {
            let left = deadline.saturating_duration_since(Instant::now());
            self.read_until("follower", left, |p| {
                let v = p.views[&id];
                (v.term == term && v.leader == Some(leader)).then_some(())
            })?;
            last = last.max(self.learned_at(id, leader, term));
        }
        Ok(last)
    }

    /// When `id` learned that `leader` leads `term` (won it, for the leader).
    fn learned_at(&self, id: NodeId, leader: NodeId, term: Term) -> f64 {
        if id == leader {
            return self
                .elections
                .iter()
                .find(|&&(t, l, _)| t == term && l == leader)
                .map_or(0.0, |&(_, _, ts)| ts);
        }
        *self.learned.get(&(id, term)).unwrap_or(&0.0)
    }

    /// SIGKILL; returns the moment it was sent.
    pub(crate) fn kill(&mut self, id: NodeId) -> SystemTime {
        let at = SystemTime::now();
        if let Some(mut child) = self.children.remove(&id) {
            let _ = child.kill();
            let _ = child.wait();
        }
        at
    }

    /// SIGTERM (a leader hands over, then stops); returns the moment it was
    /// sent. The node no longer counts as running.
    pub(crate) fn terminate(&mut self, id: NodeId) -> SystemTime {
        let at = SystemTime::now();
        if let Some(child) = self.children.remove(&id) {
            sigterm(&child);
            self.stopping.push(child);
        }
        at
    }

    /// SIGTERM to every node; waits for each to exit and for its `stop` line.
    pub(crate) fn terminate_all(&mut self, limit: Duration) -> Result<(), String> {
        let ids: Vec<NodeId> = self.children.keys().copied().collect();
        for child in self.children.values() {
            sigterm(child);
        }
        for id in ids {
            self.read_until("stop line", limit, |p| {
                p.stops.contains_key(&id).then_some(())
            })?;
            if let Some(mut child) = self.children.remove(&id) {
                let _ = child.wait();
            }
        }
        Ok(())
    }
}

/// Asks `child` to stop gracefully; it may have exited already.
fn sigterm(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

impl Drop for Processes {
    fn drop(&mut self) {
        for child in self.children.values_mut().chain(&mut self.stopping) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
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
