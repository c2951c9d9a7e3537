//! The node's flags, in groups. Each group is both a clap `Args` struct
//! and the schema of its keys in a `--config` file (serde): a new group of
//! flags is one more struct flattened into [`NodeArgs`] and one more line
//! in [`NodeArgs::from_toml`].

use super::tls::TlsArgs;
use clap::{Args, FromArgMatches};
use raft_election::{ClockDrift, Features};
use raft_election_cli::logging::LogFormat;
use raft_election_cli::profile::Profile;
use raft_election_runtime::PeerAddress;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// Run one node of a cluster over TCP: one process per node, each with its
/// own data directory.
#[derive(Clone, Debug, Args, Serialize)]
#[command(after_help = "\
Start each node of a new cluster once with --init, which creates its state file at term 0; \
start it without --init ever after, so it resumes its stored term and vote. A node whose \
state file is missing, corrupt, or another node's or cluster's refuses to start, naming the \
file and why: starting it from term 0 could let it vote twice in one term. The data \
directory is locked while the node runs.

SIGTERM or Ctrl-C stops the node between two steps: a node running a --run-while-leader \
program first lets it finish (SIGTERM to the program, up to --drain-timeout-ms, leading and \
renewing its lease meanwhile); a leader then hands its leadership to the follower that \
answered it last (with leadership-transfer among the --features, the default) and waits up \
to the longest election timeout for it to take over; then it sends no more heartbeats and \
the state file is whole. Logs go to stderr, one line per event, each starting with the \
node's id, term and role; --log-format json writes one JSON object per line, whose `record` \
field holds the node's step, save or send as typed JSON and `event` the process's own events.

Peers authenticate each other with mutual TLS: --tls-dir names the files `raft-election certs` \
writes (the cluster's CA, this node's certificate and key, read again on SIGHUP). A node whose \
--listen address is not a loopback address refuses to start without them, unless \
--insecure-plaintext says that anyone who reaches its port from a peer's address may speak \
for that peer.

Every flag can also be a key of a --config file, its long name without the dashes \
(`peer = [\"2=node2:7001\"]`, `timing = \"lan\"`); a flag given on the command line wins. \
docs/operators.md has the metrics, the health endpoints and the timing profiles.

Example, three terminals:
  raft-election node --id 1 --listen 127.0.0.1:7001 --peer 2=127.0.0.1:7002 --peer 3=127.0.0.1:7003 --data-dir /tmp/n1 --init
  raft-election node --id 2 --listen 127.0.0.1:7002 --peer 1=127.0.0.1:7001 --peer 3=127.0.0.1:7003 --data-dir /tmp/n2 --init
  raft-election node --id 3 --listen 127.0.0.1:7003 --peer 1=127.0.0.1:7001 --peer 2=127.0.0.1:7002 --data-dir /tmp/n3 --init")]
pub(crate) struct NodeArgs {
    /// Read the flags from this TOML file too: each key a flag's long name
    /// without its dashes. Flags given on the command line override it; an
    /// unknown key is refused with its line.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub(crate) config: Option<PathBuf>,
    /// Print the effective configuration (the file and the flags merged,
    /// the timing profile's figures filled in) as TOML, and exit.
    #[arg(long)]
    #[serde(skip)]
    pub(crate) print_config: bool,
    #[command(flatten)]
    #[serde(flatten)]
    pub(crate) cluster: ClusterArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub(crate) tls: TlsArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub(crate) timing: NodeTimingArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub(crate) program: ProgramArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub(crate) operator: OperatorArgs,
    #[command(flatten)]
    #[serde(flatten)]
    pub(crate) log: LogArgs,
}

impl NodeArgs {
    /// The groups read from one TOML document, each key its flag's long
    /// name; a missing key has its flag's default, other keys are ignored
    /// here (the caller refuses unknown ones, with their line).
    pub(crate) fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        Ok(Self {
            config: None,
            print_config: false,
            cluster: toml::from_str(text)?,
            tls: toml::from_str(text)?,
            timing: toml::from_str(text)?,
            program: toml::from_str(text)?,
            operator: toml::from_str(text)?,
            log: toml::from_str(text)?,
        })
    }
}

/// Who the node is, where its peers are, where its state lives.
#[derive(Clone, Debug, Args, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub(crate) struct ClusterArgs {
    /// This node's id (0 to 255), unique in its cluster. Required, as a
    /// flag or in --config.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<u8>,
    /// Address to accept peer connections on; its IP is also the source of
    /// this node's connections to its peers. Required.
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) listen: Option<SocketAddr>,
    /// A peer, as ID=IP:PORT or ID=HOST:PORT; once per other node of the
    /// cluster. A host name is looked up again at every connection attempt.
    #[arg(long = "peer", value_name = "ID=ADDR")]
    #[serde(rename = "peer")]
    pub(crate) peers: Vec<Peer>,
    /// Directory of this node's state file, locked while the node runs.
    /// Created by --init if missing; without --init it must exist. Required.
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Create this node's state file at term 0: only for a new node that has
    /// never run. Refused if the file exists.
    #[arg(long)]
    pub(crate) init: bool,
    /// The cluster's id, the same on every node: frames and state files of
    /// another cluster are refused.
    #[arg(long, default_value_t = 1)]
    pub(crate) cluster_id: u64,
    /// Election features: a comma-separated list of pre-vote, check-quorum,
    /// lease-guarded-votes and leadership-transfer, or all, or none
    /// (docs/features.md). Give every node of a cluster the same list.
    #[arg(long, value_name = "LIST", default_value_t = Features::default())]
    #[serde(with = "as_text")]
    pub(crate) features: Features,
    /// How long a peer connection may take to send its hello, or to finish
    /// a frame, before it is closed, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub(crate) handshake_timeout_ms: u64,
}

/// Election timing and the leader lease.
#[derive(Clone, Debug, Args, Serialize, Deserialize)]
#[command(next_help_heading = "Timing")]
#[serde(default, rename_all = "kebab-case")]
pub(crate) struct NodeTimingArgs {
    /// The defaults of the timing flags below for one kind of network:
    /// local (one machine: 150–300 ms elections), lan (one data centre:
    /// 1–2 s) or wan (regions apart: 5–10 s); docs/operators.md.
    #[arg(long = "timing", value_enum, default_value_t = Profile::Local)]
    #[serde(rename = "timing")]
    pub(crate) profile: Profile,
    /// Shortest election timeout, in milliseconds [default: the profile's].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) election_min_ms: Option<u64>,
    /// Longest election timeout, in milliseconds [default: the profile's].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) election_max_ms: Option<u64>,
    /// Interval between a leader's heartbeats, in milliseconds [default:
    /// the profile's].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) heartbeat_ms: Option<u64>,
    /// Hold a leader lease (thesis §6.4.1; docs/lease.md): while it
    /// holds one no other node can lead, as long as
    /// no clock runs faster than another by more than --max-clock-drift.
    /// Needs lease-guarded-votes among the --features. Give every node of a
    /// cluster the same setting.
    #[arg(long)]
    pub(crate) leader_lease: bool,
    /// The clock-drift bound of the leader lease, a percentage: the lease
    /// lasts the minimum election timeout divided by 1 + this.
    #[arg(long, value_name = "PERCENT", default_value_t = ClockDrift::DEFAULT)]
    #[serde(with = "as_text")]
    pub(crate) max_clock_drift: ClockDrift,
}

impl NodeTimingArgs {
    /// The same, each timing flag left out set to the profile's value.
    pub(crate) fn resolved(&self) -> Self {
        let timing = self.profile.timing();
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            election_min_ms: self
                .election_min_ms
                .or(Some(ms(timing.election_timeout_min))),
            election_max_ms: self
                .election_max_ms
                .or(Some(ms(timing.election_timeout_max))),
            heartbeat_ms: self.heartbeat_ms.or(Some(ms(timing.heartbeat_interval))),
            ..self.clone()
        }
    }
}

/// A program run while this node leads.
#[derive(Clone, Debug, Args, Serialize, Deserialize)]
#[command(next_help_heading = "Run while leader")]
#[serde(default, rename_all = "kebab-case")]
pub(crate) struct ProgramArgs {
    /// Run the program given after `--` while this node holds the leader
    /// lease (implies --leader-lease), with RAFT_TERM (the fencing token),
    /// RAFT_NODE_ID and RAFT_LEADER=1 in its environment. It gets SIGTERM
    /// --stop-margin-ms before the lease can end, SIGKILL --kill-grace-ms
    /// later, from a watchdog process that does so even if this node is
    /// paused or killed; it is restarted, with backoff, if it exits while
    /// the lease holds.
    #[arg(long)]
    pub(crate) run_while_leader: bool,
    /// See --run-while-leader, in milliseconds [default: the profile's].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stop_margin_ms: Option<u64>,
    /// See --run-while-leader, in milliseconds; less than --stop-margin-ms
    /// [default: the profile's].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) kill_grace_ms: Option<u64>,
    /// On SIGTERM to the node, how long the program may take to finish
    /// after its own SIGTERM, in milliseconds, while the node keeps
    /// leading and renewing its lease; then SIGKILL. The node hands over
    /// once the program has exited.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) drain_timeout_ms: u64,
    /// The program (and its arguments) for --run-while-leader.
    #[arg(last = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
}

impl ProgramArgs {
    /// The same, the margins left out set to `profile`'s.
    pub(crate) fn resolved(&self, profile: Profile) -> Self {
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            stop_margin_ms: self.stop_margin_ms.or(Some(ms(profile.stop_margin()))),
            kill_grace_ms: self.kill_grace_ms.or(Some(ms(profile.kill_grace()))),
            ..self.clone()
        }
    }
}

/// What the node serves to operators.
#[derive(Clone, Debug, Args, Serialize, Deserialize)]
#[command(next_help_heading = "Operators")]
#[serde(default, rename_all = "kebab-case")]
pub(crate) struct OperatorArgs {
    /// Serve the node over HTTP on this address: GET /status (JSON), GET
    /// /metrics (Prometheus), GET /healthz, /readyz and /leader (200 or
    /// 503), and on a loopback address only, POST /transfer?to=ID
    /// (docs/operators.md). At most 4 connections at once, each answered
    /// once and closed within 2 s; more are closed at once.
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<SocketAddr>,
}

/// What the node logs, and how.
#[derive(Clone, Debug, Args, Serialize, Deserialize)]
#[command(next_help_heading = "Logging")]
#[serde(default, rename_all = "kebab-case")]
pub(crate) struct LogArgs {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    /// Log more: -v every message but heartbeats, sent or received (votes,
    /// terms and roles are always logged), -vv heartbeats too. `RUST_LOG`
    /// overrides this.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Log every record of the node, whatever -v says: each step (its
    /// input, the node after it and what changed), each save of the state
    /// file once it is durable, each message sent, heartbeats included.
    /// What a replay through the model needs (trace validation,
    /// docs/verification.md); best with --log-format json, whose typed
    /// records `raft-election timeline` and the replay read back.
    #[arg(long)]
    pub(crate) log_steps: bool,
}

/// The flags' defaults: a group as clap builds it from no arguments.
fn clap_defaults<T: Args + FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("defaults"));
    command
        .try_get_matches_from(["defaults"])
        .and_then(|matches| T::from_arg_matches(&matches))
        .unwrap_or_else(|e| panic!("a group's defaults are its own: {e}"))
}

macro_rules! defaults_of_flags {
    ($($group:ty),*) => {$(
        impl Default for $group {
            fn default() -> Self {
                clap_defaults()
            }
        }
    )*};
}
defaults_of_flags!(
    ClusterArgs,
    TlsArgs,
    NodeTimingArgs,
    ProgramArgs,
    OperatorArgs,
    LogArgs
);

/// A peer: its id and address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub(crate) struct Peer {
    /// Its id.
    pub(crate) id: u8,
    /// Where it listens.
    pub(crate) address: PeerAddress,
}

impl FromStr for Peer {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (id, address) = text.split_once('=').ok_or_else(|| {
            format!("{text:?} is not ID=ADDR (for example 2=127.0.0.1:7002 or 2=node2:7002)")
        })?;
        let id = id
            .parse::<u8>()
            .map_err(|e| format!("peer id {id:?}: {e}"))?;
        let address = address
            .parse::<PeerAddress>()
            .map_err(|e| format!("peer address: {e}"))?;
        Ok(Self { id, address })
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.id, self.address)
    }
}

impl From<Peer> for String {
    fn from(peer: Peer) -> Self {
        peer.to_string()
    }
}

impl TryFrom<String> for Peer {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

/// Serde for a type as the text its `Display` writes and its `FromStr`
/// reads, the same as its flag's.
mod as_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::fmt::Display;
    use std::str::FromStr;

    pub(super) fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub(super) fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr<Err: Display>,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
