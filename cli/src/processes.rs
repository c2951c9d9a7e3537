//! A cluster of `raft-election node` processes on loopback, for the
//! benchmarks (`failover --transport tcp`, `lease-failover`) and the tests:
//! each node on its own address 127.`subnet`.0.`id`, its JSON log appended
//! to a file that survives its restarts, every process killed on drop
//! whatever happens. What the nodes did is read back from those logs as
//! typed lines ([`LogLine`]), never parsed by hand.

use crate::log_lines::{LogLine, NodeEvent};
use raft_election::{ClusterId, NodeId, Record, Role, Term};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often the logs are read while waiting.
const POLL: Duration = Duration::from_millis(5);

/// At most this many lines are kept per node: hours of a node logging its
/// votes and elections; a node logging every heartbeat (`-vv`) for longer
/// than a test or a benchmark trial is not what this harness is for.
const MAX_LINES_PER_NODE: usize = 1_000_000;

/// Seconds since the Unix epoch, as the logs' `ts`.
#[must_use]
pub fn seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A port for the nodes of this process: one per benchmark or test process,
/// so that two runs on one machine do not meet (each node has its own
/// address, so one port serves them all). Below Linux's ephemeral range
/// (from 32768): a port the kernel hands to an outgoing connection or to
/// a listener on port 0 is never one of these.
#[must_use]
pub fn port_of_this_process() -> u16 {
    let offset = u16::try_from(std::process::id() % 20_000).unwrap_or(0);
    10_000 + offset
}

/// Node processes, ids 1 to n; see the module documentation.
#[derive(Debug)]
pub struct ProcessCluster {
    binary: PathBuf,
    dir: tempfile::TempDir,
    addrs: BTreeMap<NodeId, SocketAddr>,
    /// Run every node inside this network namespace.
    netns: Option<String>,
    running: BTreeMap<NodeId, Child>,
    /// Nodes sent SIGTERM and not waited for, reaped on drop.
    stopping: Vec<Child>,
    /// Flags for every node, after its own.
    pub extra: Vec<String>,
    /// With a port, each node serves its status (`--status`) on its own
    /// address and this port.
    pub status_port: Option<u16>,
    /// Environment variables for every node.
    pub env: Vec<(String, String)>,
    /// The certificates of every node (`--tls-dir`), once
    /// [`Self::with_tls`] made them.
    tls_dir: Option<PathBuf>,
    logs: RefCell<Logs>,
}

impl ProcessCluster {
    /// `nodes` nodes of `binary` on 127.`subnet`.0.1.. at `port`, their data
    /// directories and logs in a new temporary directory under `root` (the
    /// system's if `None`). None runs yet.
    pub fn new(
        binary: &Path,
        root: Option<&Path>,
        nodes: u8,
        subnet: u8,
        port: u16,
    ) -> Result<Self, String> {
        let dir = match root {
            Some(root) => tempfile::tempdir_in(root),
            None => tempfile::tempdir(),
        }
        .map_err(|e| format!("a temporary directory: {e}"))?;
        let addrs = (1..=nodes)
            .map(|i| {
                let ip = Ipv4Addr::new(127, subnet, 0, i);
                (NodeId(i), SocketAddr::from((ip, port)))
            })
            .collect();
        Ok(Self {
            binary: binary.to_owned(),
            dir,
            addrs,
            netns: None,
            running: BTreeMap::new(),
            stopping: Vec::new(),
            extra: Vec::new(),
            status_port: None,
            env: Vec::new(),
            tls_dir: None,
            logs: RefCell::default(),
        })
    }

    /// The same cluster with mutual TLS: a CA and a certificate per node
    /// (`raft-election certs`' files, in [`Self::tls_dir`]), and every
    /// node started with `--tls-dir`.
    pub fn with_tls(mut self) -> Result<Self, String> {
        let dir = self.dir.path().join("certs");
        crate::certs::create(&dir, ClusterId(1), &self.ids(), 30)?;
        self.tls_dir = Some(dir);
        Ok(self)
    }

    /// Where the certificates are, with TLS.
    #[must_use]
    pub fn tls_dir(&self) -> Option<&Path> {
        self.tls_dir.as_deref()
    }

    /// The same cluster, its nodes run inside network namespace `name`.
    #[must_use]
    pub fn in_namespace(mut self, name: &str) -> Self {
        self.netns = Some(name.to_owned());
        self
    }

    /// The directory that holds the nodes' data directories and logs.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every node's id.
    #[must_use]
    pub fn ids(&self) -> Vec<NodeId> {
        self.addrs.keys().copied().collect()
    }

    /// Every node's address.
    #[must_use]
    pub fn addrs(&self) -> &BTreeMap<NodeId, SocketAddr> {
        &self.addrs
    }

    /// Node `id`'s data directory.
    #[must_use]
    pub fn data_dir(&self, id: NodeId) -> PathBuf {
        self.dir.path().join(format!("n{}", id.0))
    }

    /// Node `id`'s log, across its lives.
    #[must_use]
    pub fn log_path(&self, id: NodeId) -> PathBuf {
        self.dir.path().join(format!("n{}.log", id.0))
    }

    /// Where node `id` serves its status, with [`Self::status_port`].
    #[must_use]
    pub fn status_addr(&self, id: NodeId) -> Option<SocketAddr> {
        let port = self.status_port?;
        Some(SocketAddr::new(self.addrs.get(&id)?.ip(), port))
    }

    /// The flags of node `id`: its id, address, data directory, JSON logs,
    /// its peers, its status address, its certificates with TLS, then
    /// [`Self::extra`].
    #[must_use]
    pub fn args(&self, id: NodeId) -> Vec<String> {
        let mut args = vec!["node".to_owned(), "--id".into(), id.0.to_string()];
        if let Some(addr) = self.addrs.get(&id) {
            args.extend(["--listen".into(), addr.to_string()]);
        }
        args.extend(["--data-dir".into(), self.data_dir(id).display().to_string()]);
        args.extend(["--log-format".into(), "json".into()]);
        for (&peer, addr) in &self.addrs {
            if peer != id {
                args.extend(["--peer".into(), format!("{}={addr}", peer.0)]);
            }
        }
        if let Some(status) = self.status_addr(id) {
            args.extend(["--status".into(), status.to_string()]);
        }
        if let Some(dir) = &self.tls_dir {
            args.extend(["--tls-dir".into(), dir.display().to_string()]);
        }
        args.extend(self.extra.iter().cloned());
        args
    }

    fn command(&self, args: &[String]) -> Command {
        let mut command = match &self.netns {
            Some(ns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", ns]).arg(&self.binary);
                command
            }
            None => Command::new(&self.binary),
        };
        command
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        command
    }

    /// Runs the binary with `args` to its end (a refusal to start): its
    /// exit status and what it wrote on stderr.
    pub fn run_to_end(&self, args: &[String]) -> Result<(ExitStatus, String), String> {
        let output = self
            .command(args)
            .output()
            .map_err(|e| format!("{}: {e}", self.binary.display()))?;
        let text = String::from_utf8_lossy(&output.stderr).into_owned();
        Ok((output.status, text))
    }

    /// Starts node `id` with its flags ([`Self::args`]), `--init` the first
    /// time.
    pub fn start(&mut self, id: NodeId, init: bool) -> Result<(), String> {
        let mut args = self.args(id);
        if init {
            // Right after `node`: the extra flags may end with `-- COMMAND`.
            args.insert(1, "--init".into());
        }
        self.start_with(id, &args)
    }

    /// Starts node `id` with `args`, its stderr appended to its log.
    pub fn start_with(&mut self, id: NodeId, args: &[String]) -> Result<(), String> {
        if self.running.contains_key(&id) {
            return Err(format!("{id} is running already"));
        }
        let path = self.log_path(id);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let child = self
            .command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("{}: {e}", self.binary.display()))?;
        self.running.insert(id, child);
        Ok(())
    }

    /// Starts every node of a new cluster (`--init`).
    pub fn start_all(&mut self) -> Result<(), String> {
        for id in self.ids() {
            self.start(id, true)?;
        }
        Ok(())
    }

    /// The process id of node `id`, if it runs.
    #[must_use]
    pub fn pid(&self, id: NodeId) -> Option<u32> {
        self.running.get(&id).map(Child::id)
    }

    /// The nodes started and not killed or stopped since.
    #[must_use]
    pub fn running(&self) -> BTreeSet<NodeId> {
        self.running.keys().copied().collect()
    }

    /// SIGKILL to node `id`, and waits for it to be gone; returns when the
    /// signal was sent.
    pub fn kill(&mut self, id: NodeId) -> SystemTime {
        let at = SystemTime::now();
        if let Some(mut child) = self.running.remove(&id) {
            let _ = child.kill();
            let _ = child.wait();
        }
        at
    }

    /// SIGTERM to node `id` (a leader hands over, then stops), without
    /// waiting; returns when it was sent. It no longer counts as running.
    pub fn stop(&mut self, id: NodeId) -> SystemTime {
        let at = SystemTime::now();
        if let Some(child) = self.running.remove(&id) {
            sigterm(&child);
            self.stopping.push(child);
        }
        at
    }

    /// SIGTERM to node `id`, and waits at most `limit` for it to exit.
    pub fn terminate(&mut self, id: NodeId, limit: Duration) -> Result<ExitStatus, String> {
        let mut child = self
            .running
            .remove(&id)
            .ok_or_else(|| format!("{id} is not running"))?;
        sigterm(&child);
        let deadline = Instant::now() + limit;
        // Each turn polls once or gives up.
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{id} did not exit within {limit:?} of SIGTERM"));
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGTERM to every running node; waits at most `limit` for each to
    /// exit and to have logged its stop.
    pub fn terminate_all(&mut self, limit: Duration) -> Result<(), String> {
        for id in self.running() {
            let status = self.terminate(id, limit)?;
            self.wait_for(&format!("{id}'s stop line"), limit, |h| {
                h.nodes.get(&id)?.stopped().map(drop)
            })
            .map_err(|e| format!("{e} (it exited with {status})"))?;
        }
        Ok(())
    }

    /// What every node's log says now.
    #[must_use]
    pub fn history(&self) -> History {
        self.read_logs();
        self.logs.borrow().history.clone()
    }

    /// Reads the logs until `found` finds something, at most `limit`; the
    /// error names `what` and ends with the last lines of every log.
    pub fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        mut found: impl FnMut(&History) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + limit;
        // Each turn reads what the nodes logged since the last.
        loop {
            self.read_logs();
            let logs = self.logs.borrow();
            if let Some(t) = found(&logs.history) {
                return Ok(t);
            }
            if Instant::now() >= deadline {
                let tails = logs.history.tails(8);
                return Err(format!(
                    "waited {limit:?} for {what}; the logs end with:\n{tails}"
                ));
            }
            drop(logs);
            std::thread::sleep(POLL);
        }
    }

    /// Waits at most `limit` for a running leader of a term after `after`
    /// that a majority follows.
    pub fn wait_for_leader_after(
        &self,
        after: Term,
        limit: Duration,
    ) -> Result<(NodeId, Term), String> {
        self.wait_for(&format!("a leader of a term after {after}"), limit, |h| {
            h.leader().filter(|&(_, term)| term > after)
        })
    }

    /// What was appended to the logs since they were last read.
    fn read_logs(&self) {
        let mut logs = self.logs.borrow_mut();
        logs.history.running = self.running();
        for id in self.ids() {
            logs.read(id, &self.log_path(id));
        }
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for child in self.running.values_mut().chain(&mut self.stopping) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Asks `child` to stop gracefully; it may have exited already.
fn sigterm(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdin(Stdio::null())
        .status();
}

/// The logs read so far: how far into each file, and what they said.
#[derive(Debug, Default)]
struct Logs {
    /// Bytes of each node's file read, up to its last whole line.
    read: BTreeMap<NodeId, u64>,
    history: History,
}

impl Logs {
    /// The whole lines appended to node `id`'s log at `path`.
    fn read(&mut self, id: NodeId, path: &Path) {
        let from = self.read.get(&id).copied().unwrap_or(0);
        let mut text = Vec::new();
        // A log not written yet reads as empty.
        let Ok(mut file) = std::fs::File::open(path) else {
            return;
        };
        if file.seek(SeekFrom::Start(from)).is_err() || file.read_to_end(&mut text).is_err() {
            return;
        }
        // A line still being written is left for the next read.
        let Some(end) = text.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        self.read.insert(id, from + end as u64 + 1);
        let log = self.history.nodes.entry(id).or_default();
        for line in String::from_utf8_lossy(&text[..end]).lines() {
            if log.lines.len() >= MAX_LINES_PER_NODE {
                break;
            }
            // Whatever else the process printed is not the node's.
            if let Ok(line) = LogLine::parse(line) {
                log.push(line);
            }
        }
    }
}

/// One node's log lines, across its lives, and what they say now.
#[derive(Clone, Debug, Default)]
pub struct NodeLog {
    /// Every line, in the order written.
    pub lines: Vec<LogLine>,
    /// Its term, by its last line.
    pub term: Term,
    /// Its role, by its last line.
    pub role: Role,
    /// The leader it follows in `term` (itself, if it leads).
    pub leader: Option<NodeId>,
}

impl NodeLog {
    fn push(&mut self, line: LogLine) {
        if let Some((term, role)) = line.state {
            if term != self.term {
                self.leader = None;
            }
            (self.term, self.role) = (term, role);
        }
        match line.record() {
            Some(Record::Stepped { after, .. }) => {
                (self.term, self.role) = (after.current_term, after.role);
                self.leader = after.leader_id;
            }
            Some(Record::Started(_)) => self.leader = None,
            _ => {}
        }
        self.lines.push(line);
    }

    /// Every record, with the line that carries it.
    pub fn records(&self) -> impl Iterator<Item = (&LogLine, &Record)> {
        self.lines
            .iter()
            .filter_map(|line| Some((line, line.record()?)))
    }

    /// Every event of the process, with the line that carries it.
    pub fn events(&self) -> impl Iterator<Item = (&LogLine, &NodeEvent)> {
        self.lines
            .iter()
            .filter_map(|line| Some((line, line.event()?)))
    }

    /// The lines of each start of the node's server, one per life.
    pub fn starts(&self) -> impl Iterator<Item = &LogLine> {
        self.records()
            .filter(|(_, record)| matches!(record, Record::Started(_)))
            .map(|(line, _)| line)
    }

    /// Every term the node moved to, in order.
    pub fn terms_entered(&self) -> impl Iterator<Item = Term> {
        self.records().filter_map(|(_, record)| match record {
            Record::Stepped { after, change, .. } if change.term_from.is_some() => {
                Some(after.current_term)
            }
            _ => None,
        })
    }

    /// Every change of role: (from, to, in which term).
    pub fn role_changes(&self) -> impl Iterator<Item = (Role, Role, Term)> {
        self.records().filter_map(|(_, record)| match record {
            Record::Stepped { after, change, .. } => change
                .role_from
                .map(|from| (from, after.role, after.current_term)),
            _ => None,
        })
    }

    /// Every election this node won: (term, when).
    pub fn wins(&self) -> impl Iterator<Item = (Term, f64)> {
        self.records().filter_map(|(line, record)| match record {
            Record::Stepped { after, change, .. }
                if change.role_from.is_some() && after.role == Role::Leader =>
            {
                Some((after.current_term, line.ts))
            }
            _ => None,
        })
    }

    /// Its last stop, if it logged one.
    #[must_use]
    pub fn stopped(&self) -> Option<&NodeEvent> {
        self.lines
            .iter()
            .rev()
            .filter_map(LogLine::event)
            .find(|event| matches!(event, NodeEvent::Stopped { .. }))
    }
}

/// What every node's log says.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Each node's log.
    pub nodes: BTreeMap<NodeId, NodeLog>,
    /// The nodes running when the logs were read.
    pub running: BTreeSet<NodeId>,
}

impl History {
    /// A running leader that a majority of the cluster (itself included)
    /// follows in its term.
    #[must_use]
    pub fn leader(&self) -> Option<(NodeId, Term)> {
        let quorum = self.nodes.len() / 2 + 1;
        self.running.iter().find_map(|&id| {
            let log = self.nodes.get(&id)?;
            if log.role != Role::Leader {
                return None;
            }
            let followers = self
                .running
                .iter()
                .filter_map(|other| self.nodes.get(other))
                .filter(|l| l.term == log.term && l.leader == Some(id))
                .count();
            (followers >= quorum).then_some((id, log.term))
        })
    }

    /// Who won each term's election, from every node's steps.
    #[must_use]
    pub fn leaders_by_term(&self) -> BTreeMap<Term, BTreeSet<NodeId>> {
        let mut leaders: BTreeMap<Term, BTreeSet<NodeId>> = BTreeMap::new();
        for (&id, log) in &self.nodes {
            for (term, _) in log.wins() {
                leaders.entry(term).or_default().insert(id);
            }
        }
        leaders
    }

    /// When `leader` won `term` (the first win logged), or `None`.
    #[must_use]
    pub fn won_at(&self, leader: NodeId, term: Term) -> Option<f64> {
        let log = self.nodes.get(&leader)?;
        log.wins().find(|&(t, _)| t == term).map(|(_, ts)| ts)
    }

    /// When `id` learned that `leader` leads `term`: the step that told it
    /// (its win, for the leader).
    #[must_use]
    pub fn learned_at(&self, id: NodeId, leader: NodeId, term: Term) -> Option<f64> {
        if id == leader {
            return self.won_at(leader, term);
        }
        self.nodes
            .get(&id)?
            .records()
            .find_map(|(line, record)| match record {
                Record::Stepped { after, change, .. }
                    if change.leader == Some(leader) && after.current_term == term =>
                {
                    Some(line.ts)
                }
                _ => None,
            })
    }

    /// Every vote each node cast, by (node, term): grants to others, its
    /// own as a candidate, and the vote each life restored from its file.
    #[must_use]
    pub fn votes(&self) -> BTreeMap<(NodeId, Term), BTreeSet<NodeId>> {
        let mut votes: BTreeMap<(NodeId, Term), BTreeSet<NodeId>> = BTreeMap::new();
        for (&id, log) in &self.nodes {
            for (_, record) in log.records() {
                let cast = match *record {
                    Record::Stepped { after, change, .. } => {
                        change.vote.map(|vote| (after.current_term, vote))
                    }
                    Record::Started(restored) => {
                        restored.voted_for.map(|vote| (restored.current_term, vote))
                    }
                    Record::Saved(_) | Record::Sent { .. } => None,
                };
                if let Some((term, candidate)) = cast {
                    votes.entry((id, term)).or_default().insert(candidate);
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
    #[must_use]
    pub fn tails(&self, n: usize) -> String {
        let mut out = String::new();
        for (id, log) in &self.nodes {
            out.push_str(&format!("-- {id} (now {} {}):\n", log.term, log.role));
            for line in log.lines.iter().rev().take(n).rev() {
                out.push_str(&format!("   {}\n", line.message));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_lines::{Fact, Level};
    use raft_election::{Change, HardState, Input, Summary, Timer};

    /// A line of node `node` at `ts` carrying `record`.
    fn line(node: u8, ts: f64, record: Record) -> LogLine {
        let state = match record {
            Record::Stepped { after, .. } => Some((after.current_term, after.role)),
            _ => None,
        };
        LogLine {
            ts,
            node: NodeId(node),
            state,
            level: Level::Info,
            message: record.to_string(),
            fact: Fact::Record(record, None),
        }
    }

    /// A step into `term` as `role`, voting for `vote`, led by `leader`.
    fn stepped(term: u64, role: Role, vote: Option<u8>, leader: Option<u8>) -> Record {
        let before = Summary {
            current_term: Term(term - 1),
            ..Summary::default()
        };
        let after = Summary {
            current_term: Term(term),
            voted_for: vote.map(NodeId),
            role,
            leader_id: leader.map(NodeId),
        };
        Record::Stepped {
            input: Input::Timeout(Timer::Election),
            after,
            change: Change::between(&before, &after),
        }
    }

    fn history(lines: Vec<LogLine>) -> History {
        let mut history = History::default();
        for line in lines {
            history.running.insert(line.node);
            history.nodes.entry(line.node).or_default().push(line);
        }
        history
    }

    #[test]
    fn a_leader_followed_by_a_majority_is_the_leader_and_its_win_is_dated() {
        let history = history(vec![
            line(1, 1.0, stepped(2, Role::Leader, Some(1), Some(1))),
            line(2, 1.5, stepped(2, Role::Follower, Some(1), Some(1))),
            line(3, 2.0, stepped(2, Role::Follower, None, None)),
        ]);
        assert_eq!(history.leader(), Some((NodeId(1), Term(2))));
        assert_eq!(history.won_at(NodeId(1), Term(2)), Some(1.0));
        assert_eq!(history.learned_at(NodeId(2), NodeId(1), Term(2)), Some(1.5));
        assert_eq!(history.learned_at(NodeId(3), NodeId(1), Term(2)), None);
        assert!(history.check_safety().is_ok());
    }

    #[test]
    fn two_votes_in_one_term_across_a_restart_fail_the_safety_check() {
        let restored = Record::Started(HardState {
            current_term: Term(3),
            voted_for: Some(NodeId(2)),
        });
        let history = history(vec![
            line(1, 1.0, restored),
            line(1, 2.0, stepped(3, Role::Follower, Some(3), None)),
        ]);
        let error = history.check_safety().expect_err("two votes in t3");
        assert!(error.contains("n1 voted for"), "{error}");
    }

    #[test]
    fn two_winners_of_one_term_fail_the_safety_check() {
        let history = history(vec![
            line(1, 1.0, stepped(4, Role::Leader, Some(1), Some(1))),
            line(2, 1.0, stepped(4, Role::Leader, Some(2), Some(2))),
        ]);
        let error = history.check_safety().expect_err("two leaders of t4");
        assert!(error.contains("two leaders of t4"), "{error}");
    }
}
