//! Real node processes for the tests: started from the `raft-election`
//! binary that `cargo test` builds, each on its own loopback address,
//! logging JSON to a file that survives its restarts; killed in `Drop`
//! whatever happens. What the nodes did is read back from those logs.

#![allow(dead_code, unreachable_pub)]

use raft_election::{NodeId, Term};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_raft-election");

/// How often logs are read while waiting.
const POLL: Duration = Duration::from_millis(20);

/// Generous: the machine is shared and may be loaded; an election takes
/// about 200 ms.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A cluster of node processes, ids 1 to n, node i on 127.<subnet>.0.i.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub ids: Vec<NodeId>,
    pub addrs: BTreeMap<NodeId, SocketAddr>,
    /// Run every node inside this network namespace.
    netns: Option<String>,
    running: BTreeMap<NodeId, Child>,
    /// Extra flags for every node.
    pub extra: Vec<String>,
}

impl Cluster {
    /// `nodes` nodes on 127.`subnet`.0.1.., a port per test process so two
    /// test runs on one machine do not meet.
    pub fn new(subnet: u8, nodes: u8, netns: Option<String>) -> Self {
        let port = 20_000 + (std::process::id() % 20_000) as u16;
        let ids: Vec<NodeId> = (1..=nodes).map(NodeId).collect();
        let addrs = ids
            .iter()
            .map(|&id| {
                (
                    id,
                    SocketAddr::from((Ipv4Addr::new(127, subnet, 0, id.0), port)),
                )
            })
            .collect();
        Self {
            dir: tempfile::tempdir().unwrap(),
            ids,
            addrs,
            netns,
            running: BTreeMap::new(),
            extra: Vec::new(),
        }
    }

    pub fn data_dir(&self, id: NodeId) -> PathBuf {
        self.dir.path().join(format!("n{}", id.0))
    }

    pub fn log_path(&self, id: NodeId) -> PathBuf {
        self.dir.path().join(format!("n{}.log", id.0))
    }

    /// The flags of node `id`.
    pub fn args(&self, id: NodeId) -> Vec<String> {
        let mut args = vec![
            "node".to_owned(),
            "--id".into(),
            id.0.to_string(),
            "--listen".into(),
            self.addrs[&id].to_string(),
            "--data-dir".into(),
            self.data_dir(id).display().to_string(),
            "--log-format".into(),
            "json".into(),
            // Votes and every non-heartbeat message: the history checked.
            "-v".into(),
        ];
        for (&peer, addr) in &self.addrs {
            if peer != id {
                args.push("--peer".into());
                args.push(format!("{}={addr}", peer.0));
            }
        }
        args.extend(self.extra.iter().cloned());
        args
    }

    fn command(&self, args: &[String]) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", ns, BIN]).args(args);
                command
            }
            None => {
                let mut command = Command::new(BIN);
                command.args(args);
                command
            }
        }
    }

    /// Runs `raft-election` with `args` to its end (a refusal to start).
    pub fn run_to_end(&self, args: &[String]) -> (ExitStatus, String) {
        let output = self.command(args).stdin(Stdio::null()).output().unwrap();
        let text = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status, text)
    }

    /// Starts node `id` (`--init` the first time), its log appended to.
    pub fn start(&mut self, id: NodeId, init: bool) {
        let mut args = self.args(id);
        if init {
            // Right after `node`: the extra flags may end with `-- COMMAND`.
            args.insert(1, "--init".into());
        }
        self.start_with(id, &args);
    }

    pub fn start_with(&mut self, id: NodeId, args: &[String]) {
        assert!(!self.running.contains_key(&id), "{id} is running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .unwrap();
        let child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.running.insert(id, child);
    }

    /// Starts every node of a new cluster.
    pub fn start_all(&mut self) {
        for id in self.ids.clone() {
            self.start(id, true);
        }
    }

    /// The process id of running node `id`.
    pub fn pid(&self, id: NodeId) -> u32 {
        self.running[&id].id()
    }

    pub fn running(&self) -> BTreeSet<NodeId> {
        self.running.keys().copied().collect()
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(&mut self, id: NodeId) -> SystemTime {
        let mut child = self.running.remove(&id).expect("running");
        let at = SystemTime::now();
        child.kill().unwrap();
        child.wait().unwrap();
        at
    }

    /// SIGTERM, and waits (at most [`DEADLINE`]) for it to exit.
    pub fn terminate(&mut self, id: NodeId) -> ExitStatus {
        let mut child = self.running.remove(&id).expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{id} did not exit within {DEADLINE:?} of SIGTERM");
            }
            std::thread::sleep(POLL);
        }
    }

    /// Every node's log, read now.
    pub fn history(&self) -> History {
        let nodes = self
            .ids
            .iter()
            .map(|&id| (id, NodeLog::read(id, &self.log_path(id))))
            .collect();
        History {
            nodes,
            running: self.running(),
        }
    }

    /// Polls the logs until `found` finds something, at most [`DEADLINE`];
    /// fails naming `what` and the last lines of every log.
    pub fn wait_for<T>(&self, what: &str, mut found: impl FnMut(&History) -> Option<T>) -> T {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let history = self.history();
            if let Some(t) = found(&history) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "waited {DEADLINE:?} for {what}; the logs end with:\n{}",
                history.tails(8)
            );
            std::thread::sleep(POLL);
        }
    }

    /// Waits for a leader of a term after `after` that a majority follows.
    pub fn wait_for_leader_after(&self, after: Term) -> (NodeId, Term) {
        self.wait_for(&format!("a leader of a term after {after}"), |h| {
            h.leader().filter(|&(_, term)| term > after)
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.running.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One node's log lines, across its lives, and what they say now.
#[derive(Debug, Default)]
pub struct NodeLog {
    pub lines: Vec<Value>,
    pub term: Term,
    pub role: String,
    pub leader: Option<NodeId>,
}

impl NodeLog {
    fn read(id: NodeId, path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut log = Self::default();
        // A line still being written is left for the next read.
        for line in text.lines() {
            let Ok(value) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if let (Some(term), Some(role)) = (value["term"].as_u64(), value["role"].as_str()) {
                if term != log.term.0 {
                    log.leader = None;
                }
                log.term = Term(term);
                log.role = role.to_owned();
            }
            match value["event"].as_str() {
                Some("leader") => log.leader = value["leader"].as_u64().map(node),
                Some("role") if value["to"] == "leader" => log.leader = Some(id),
                Some("start") => log.leader = None,
                _ => {}
            }
            log.lines.push(value);
        }
        log
    }

    /// Lines of `event`.
    pub fn events<'a>(&'a self, event: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.lines.iter().filter(move |l| l["event"] == event)
    }
}

fn node(id: u64) -> NodeId {
    NodeId(u8::try_from(id).unwrap())
}

/// Seconds since the epoch, as the logs' `ts`.
pub fn seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// What every node's log says.
#[derive(Debug)]
pub struct History {
    pub nodes: BTreeMap<NodeId, NodeLog>,
    pub running: BTreeSet<NodeId>,
}

impl History {
    /// A running leader that a majority of the cluster (itself included)
    /// follows in its term.
    pub fn leader(&self) -> Option<(NodeId, Term)> {
        let quorum = self.nodes.len() / 2 + 1;
        self.running.iter().find_map(|&id| {
            let log = &self.nodes[&id];
            if log.role != "leader" {
                return None;
            }
            let followers = self
                .running
                .iter()
                .filter(|other| {
                    let l = &self.nodes[other];
                    l.term == log.term && l.leader == Some(id)
                })
                .count();
            (followers >= quorum).then_some((id, log.term))
        })
    }

    /// Who became leader of each term, from every `role -> leader` line.
    pub fn leaders_by_term(&self) -> BTreeMap<Term, BTreeSet<NodeId>> {
        let mut leaders: BTreeMap<Term, BTreeSet<NodeId>> = BTreeMap::new();
        for (&id, log) in &self.nodes {
            for line in log.events("role").filter(|l| l["to"] == "leader") {
                let term = Term(line["term"].as_u64().unwrap());
                leaders.entry(term).or_default().insert(id);
            }
        }
        leaders
    }

    /// Every vote each node cast, by (node, term): grants to others, its own
    /// as a candidate, and the vote each life restored from its file.
    pub fn votes(&self) -> BTreeMap<(NodeId, Term), BTreeSet<NodeId>> {
        let mut votes: BTreeMap<(NodeId, Term), BTreeSet<NodeId>> = BTreeMap::new();
        for (&id, log) in &self.nodes {
            for line in &log.lines {
                let cast = match line["event"].as_str() {
                    Some("vote") => Some((line["vote_term"].as_u64(), line["candidate"].as_u64())),
                    Some("role") if line["to"] == "candidate" => {
                        Some((line["term"].as_u64(), Some(u64::from(id.0))))
                    }
                    Some("start") => {
                        Some((line["restored_term"].as_u64(), line["voted_for"].as_u64()))
                    }
                    _ => None,
                };
                if let Some((Some(term), Some(candidate))) = cast {
                    votes
                        .entry((id, Term(term)))
                        .or_default()
                        .insert(node(candidate));
                }
            }
        }
        votes
    }

    /// No term with two leaders, no node with two votes in one term.
    pub fn check_safety(&self) -> Result<(), String> {
        for (term, leaders) in self.leaders_by_term() {
            if leaders.len() > 1 {
                return Err(format!("two leaders of {term}: {leaders:?}"));
            }
        }
        for ((id, term), candidates) in self.votes() {
            if candidates.len() > 1 {
                return Err(format!("{id} voted for {candidates:?} in {term}"));
            }
        }
        Ok(())
    }

    /// The last `n` lines of every log, for a failure message.
    pub fn tails(&self, n: usize) -> String {
        let mut out = String::new();
        for (id, log) in &self.nodes {
            out.push_str(&format!("-- {id} (now {} {}):\n", log.term, log.role));
            for line in log.lines.iter().rev().take(n).rev() {
                out.push_str(&format!("   {}\n", line["message"].as_str().unwrap_or("?")));
            }
        }
        out
    }
}

/// Runs a command that must succeed (set-up and tear-down of namespaces
/// and firewall tables); returns its stdout.
pub fn sh(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A file to read from a test: panics naming it.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn touch(path: &Path) -> File {
    File::create(path).unwrap()
}

/// A network namespace this test made, deleted on drop.
pub struct Namespace {
    pub name: String,
}

impl Namespace {
    /// A fresh namespace with its loopback up, or why there can be none.
    pub fn create(tag: &str) -> Result<Self, String> {
        let uid = sh("id", &["-u"])?;
        if uid.trim() != "0" {
            return Err(format!("not root (uid {})", uid.trim()));
        }
        sh("nft", &["--version"]).map_err(|e| format!("no nftables: {e}"))?;
        let name = format!("raft-{tag}-{}", std::process::id());
        sh("ip", &["netns", "add", &name])?;
        let namespace = Self { name };
        sh("ip", &["-n", &namespace.name, "link", "set", "lo", "up"])?;
        // One table and chain of our own, inside the namespace.
        namespace.nft("add table inet raft_test")?;
        namespace.nft(
            "add chain inet raft_test output { type filter hook output priority 0 ; policy accept ; }",
        )?;
        Ok(namespace)
    }

    pub fn nft(&self, command: &str) -> Result<String, String> {
        let mut args = vec!["netns", "exec", &self.name, "nft"];
        args.extend(command.split_whitespace());
        sh("ip", &args)
    }

    /// Drops what `from` sends `to`: every packet, or only those to `to`'s
    /// listening port (`from`'s own connection to it: a one-way cut that
    /// leaves `from`'s acknowledgements of `to`'s messages alone), with
    /// `probability` in percent.
    pub fn drop(&self, from: SocketAddr, to: SocketAddr, one_way: bool, percent: u8) {
        let port = if one_way {
            format!("tcp dport {}", to.port())
        } else {
            String::new()
        };
        let random = if percent < 100 {
            format!("numgen random mod 100 < {percent}")
        } else {
            String::new()
        };
        let rule = format!(
            "add rule inet raft_test output ip saddr {} ip daddr {} {port} {random} drop",
            from.ip(),
            to.ip()
        );
        self.nft(&rule).unwrap();
    }

    /// Every rule gone.
    pub fn heal(&self) {
        self.nft("flush chain inet raft_test output").unwrap();
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // The table goes with the namespace; the nodes were killed first
        // (the cluster is declared after the namespace, so dropped before).
        if let Err(e) = sh("ip", &["netns", "del", &self.name]) {
            eprintln!("cannot delete namespace {}: {e}", self.name);
        }
    }
}

/// The namespace, or `None` after saying why the test is skipped (a
/// failure where skipping is not allowed).
pub fn namespace(tag: &str) -> Option<Namespace> {
    match Namespace::create(tag) {
        Ok(namespace) => Some(namespace),
        Err(why) if std::env::var_os("RAFT_ELECTION_REQUIRE_NETWORK_FAULTS").is_some() => {
            panic!("network faults are required here but unavailable: {why}")
        }
        Err(why) => {
            eprintln!("skipped: network faults need a namespace and nftables: {why}");
            None
        }
    }
}
