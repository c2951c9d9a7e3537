//! Real node processes for the tests: a [`ProcessCluster`] of the
//! `raft-election` binary that `cargo test` builds, with the waits a test
//! wants (a generous deadline, a panic that says what was waited for), and
//! network namespaces with nftables rules to cut links between nodes.

use raft_election::{NodeId, Term};
use raft_election_cli::log_lines::NodeEvent;
pub(crate) use raft_election_cli::processes::{History, ProcessCluster};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_raft-election");

/// Generous: the machine is shared and may be loaded; an election takes
/// about 200 ms.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// A cluster of node processes, ids 1 to n, node i on 127.<subnet>.0.i,
/// logging every message but heartbeats (`-v`): the history checked.
pub(crate) struct Cluster(ProcessCluster);

impl Deref for Cluster {
    type Target = ProcessCluster;

    fn deref(&self) -> &ProcessCluster {
        &self.0
    }
}

impl DerefMut for Cluster {
    fn deref_mut(&mut self) -> &mut ProcessCluster {
        &mut self.0
    }
}

impl Cluster {
    /// `nodes` nodes on 127.`subnet`.0.1.., inside `netns` if given.
    /// Outside a namespace every test has a subnet of its own: two tests
    /// on one would take each other's addresses.
    pub(crate) fn new(subnet: u8, nodes: u8, netns: Option<String>) -> Self {
        static SUBNETS_TAKEN: std::sync::Mutex<BTreeSet<u8>> =
            std::sync::Mutex::new(BTreeSet::new());
        if netns.is_none() {
            let mut taken = SUBNETS_TAKEN.lock().unwrap_or_else(|e| e.into_inner());
            assert!(
                taken.insert(subnet),
                "subnet 127.{subnet}.0.0 is another test's: give this one its own"
            );
        }
        let port = raft_election_cli::processes::port_of_this_process();
        let mut cluster = ProcessCluster::new(Path::new(BIN), None, nodes, subnet, port)
            .expect("a temporary directory");
        if let Some(name) = netns {
            cluster = cluster.in_namespace(&name);
        }
        cluster.extra.push("-v".into());
        Self(cluster)
    }

    /// The same cluster with mutual TLS: certificates made, `--tls-dir`
    /// given to every node.
    pub(crate) fn with_tls(self) -> Self {
        Self(self.0.with_tls().expect("certificates"))
    }

    /// Starts node `id` (`--init`) with its status endpoint on the port
    /// after its own; returns the endpoint's address once it serves.
    pub(crate) fn start_with_status(&mut self, id: NodeId) -> SocketAddr {
        let addr = self.addrs()[&id];
        let status = SocketAddr::new(addr.ip(), addr.port() + 1);
        let mut args = self.args(id);
        args.extend(["--init".into(), "--status".into(), status.to_string()]);
        self.start_with(id, &args);
        self.wait_for("the status endpoint", |h| {
            h.nodes
                .get(&id)?
                .events()
                .find_map(|(_, event)| match event {
                    NodeEvent::StatusServing { address } if *address == status => Some(()),
                    _ => None,
                })
        });
        status
    }

    /// Runs `raft-election` with `args` to its end (a refusal to start).
    pub(crate) fn run_to_end(&self, args: &[String]) -> (ExitStatus, String) {
        self.0.run_to_end(args).expect("the binary runs")
    }

    /// Starts node `id` (`--init` the first time), its log appended to.
    pub(crate) fn start(&mut self, id: NodeId, init: bool) {
        self.0.start(id, init).expect("the node starts");
    }

    pub(crate) fn start_with(&mut self, id: NodeId, args: &[String]) {
        self.0.start_with(id, args).expect("the node starts");
    }

    /// Every node's id but `id`.
    pub(crate) fn ids_but(&self, id: NodeId) -> Vec<NodeId> {
        self.ids()
            .into_iter()
            .filter(|&other| other != id)
            .collect()
    }

    /// Starts every node of a new cluster.
    pub(crate) fn start_all(&mut self) {
        self.0.start_all().expect("the nodes start");
    }

    /// The process id of running node `id`.
    pub(crate) fn pid(&self, id: NodeId) -> u32 {
        self.0.pid(id).expect("running")
    }

    /// SIGTERM, and waits (at most [`DEADLINE`]) for it to exit.
    pub(crate) fn terminate(&mut self, id: NodeId) -> ExitStatus {
        self.0.terminate(id, DEADLINE).unwrap()
    }

    /// Polls the logs until `found` finds something, at most [`DEADLINE`];
    /// fails naming `what` and the last lines of every log.
    pub(crate) fn wait_for<T>(&self, what: &str, found: impl FnMut(&History) -> Option<T>) -> T {
        self.0.wait_for(what, DEADLINE, found).unwrap()
    }

    /// Waits for a leader of a term after `after` that a majority follows.
    pub(crate) fn wait_for_leader_after(&self, after: Term) -> (NodeId, Term) {
        self.0.wait_for_leader_after(after, DEADLINE).unwrap()
    }
}

/// Runs a command that must succeed (set-up and tear-down of namespaces
/// and firewall tables); returns its stdout.
pub(crate) fn sh(program: &str, args: &[&str]) -> Result<String, String> {
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

/// `GET /status` from `addr`: the whole answer, headers and JSON.
pub(crate) fn get_status(addr: SocketAddr) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
        .write_all(b"GET /status HTTP/1.1\r\nHost: node\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// A file to read from a test: panics naming it.
pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A network namespace this test made, deleted on drop.
pub(crate) struct Namespace {
    pub(crate) name: String,
}

impl Namespace {
    /// A fresh namespace with its loopback up, or why there can be none.
    pub(crate) fn create(tag: &str) -> Result<Self, String> {
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

    pub(crate) fn nft(&self, command: &str) -> Result<String, String> {
        let mut args = vec!["netns", "exec", &self.name, "nft"];
        args.extend(command.split_whitespace());
        sh("ip", &args)
    }

    /// Drops what `from` sends `to`: every packet, or only those to `to`'s
    /// listening port (`from`'s own connection to it: a one-way cut that
    /// leaves `from`'s acknowledgements of `to`'s messages alone), with
    /// `probability` in percent.
    pub(crate) fn drop(&self, from: SocketAddr, to: SocketAddr, one_way: bool, percent: u8) {
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
    pub(crate) fn heal(&self) {
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
pub(crate) fn namespace(tag: &str) -> Option<Namespace> {
    or_skip("a namespace and nftables", Namespace::create(tag))
}

/// What a network-fault test `needs`, or `None` after saying why the test
/// is skipped; a failure with `RAFT_ELECTION_REQUIRE_NETWORK_FAULTS` set.
pub(crate) fn or_skip<T>(needs: &str, found: Result<T, String>) -> Option<T> {
    match found {
        Ok(found) => Some(found),
        Err(why) if std::env::var_os("RAFT_ELECTION_REQUIRE_NETWORK_FAULTS").is_some() => {
            panic!("network faults are required here but unavailable: {why}")
        }
        Err(why) => {
            eprintln!("skipped: network faults need {needs}: {why}");
            None
        }
    }
}
