//! A node process's log lines, typed: what `raft-election node` writes
//! beside the runtime's records, and how every reader (the timeline, the
//! process harness, the tests, trace validation) reads a line back.
//!
//! A JSON line (`--log-format json`, see [`crate::logging`]) is one flat
//! object: `ts` (seconds since the Unix epoch), `level`, `node`, once the
//! node runs its `term` and `role`, `target`, `message` (the line in
//! words), and at most one typed fact:
//! - `record`: one of the node's [`Record`]s (started, stepped, saved,
//!   sent), with `delivery` beside a send's, written by the runtime
//!   ([`raft_election_runtime::record_log`]);
//! - `connection`: a peer connection that ended badly, refused or lost
//!   ([`ConnectionEnded`]);
//! - `suppressed`: how many such refusals of one cause from one address
//!   the rate limit kept out of the log ([`Suppressed`]);
//! - `event`: a [`NodeEvent`] of the process around the node (listening,
//!   a signal, a hand-over, its stop, a failure, the `--run-while-leader`
//!   program), written by [`log_event`].
//!
//! Both are serde's encoding of those types, so [`LogLine::parse`]
//! deserializes them back into the very values that were logged.

use crate::profile::TimingFigures;
use raft_election::{ClusterId, HardState, NodeId, Record, Role, Term};
use raft_election_runtime::record_log::Suppressed;
use raft_election_runtime::{ConnectionEnded, Delivery, Json};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use tracing::{error, info, warn};

/// The fields of a JSON line whose values are typed facts in JSON: the
/// runtime's `record`, `delivery`, `connection` and `suppressed`, and this
/// module's `event`.
pub const JSON_FIELDS: [&str; 5] = [
    raft_election_runtime::record_log::JSON_FIELDS[0],
    raft_election_runtime::record_log::JSON_FIELDS[1],
    raft_election_runtime::record_log::JSON_FIELDS[2],
    raft_election_runtime::record_log::JSON_FIELDS[3],
    "event",
];

/// Something the process around a node did, as its log says it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeEvent {
    /// It listens for its peers on `address`, as node `id` of `cluster`,
    /// its state in `state_file`, restored as `restored`.
    Listening {
        /// The address peers connect to.
        address: SocketAddr,
        /// The cluster's id.
        cluster: ClusterId,
        /// Its state file.
        state_file: PathBuf,
        /// The term and vote the file held.
        restored: HardState,
    },
    /// The timing it runs with: every figure its flags decide.
    Timing(TimingFigures),
    /// It knows a leader, itself or one it heard: ready to serve
    /// (`GET /readyz`, systemd's READY=1).
    Ready {
        /// The leader.
        leader: NodeId,
    },
    /// An operator asked it over HTTP to hand its leadership to `to`.
    TransferAsked {
        /// The node asked to lead next.
        to: NodeId,
        /// Where the request came from.
        from: SocketAddr,
    },
    /// It serves its status over HTTP on `address` (`--status`).
    StatusServing {
        /// The address of `GET /status`.
        address: SocketAddr,
    },
    /// It was told to stop by `signal` (SIGTERM, SIGINT).
    Signal {
        /// The signal's name.
        signal: String,
    },
    /// It handed its leadership to `successor` before stopping.
    HandedOver {
        /// The node asked to lead next.
        successor: NodeId,
    },
    /// Its node stopped: shut down, or failed (`error`).
    Stopped {
        /// The heartbeat round trips it measured as leader.
        round_trips: usize,
        /// Their median, in microseconds.
        round_trip_p50_us: Option<f64>,
        /// Their 99th percentile, in microseconds.
        round_trip_p99_us: Option<f64>,
        /// Why it stopped, if it failed.
        error: Option<String>,
    },
    /// The process fails and exits: `reason`.
    Failed {
        /// Why.
        reason: String,
    },
    /// It holds the leader lease of `term` and started the program,
    /// `command`.
    ProgramStarted {
        /// The term it leads, the program's fencing token.
        term: Term,
        /// The program and its arguments.
        command: String,
    },
    /// It was told to stop and lets the program of `term` finish first: the
    /// program got SIGTERM, and the node keeps leading and renewing its
    /// lease for at most `timeout_seconds` while it drains.
    ProgramDraining {
        /// The program's term.
        term: Term,
        /// The longest wait, `--drain-timeout-ms`.
        timeout_seconds: f64,
    },
    /// It stops the program of `term`: `reason`.
    ProgramStopping {
        /// The program's term.
        term: Term,
        /// Why (the lease is ending, the node is stopping, ...).
        reason: String,
    },
    /// The program of `term` exited, with `code` (none: killed by a signal)
    /// after `seconds`.
    ProgramExited {
        /// The program's term.
        term: Term,
        /// Its exit code.
        code: Option<i32>,
        /// How long it ran.
        seconds: f64,
    },
    /// The program could not be started or waited for: `reason`.
    ProgramError {
        /// Why.
        reason: String,
    },
    /// It runs without TLS on `listen`, not a loopback address, as
    /// `--insecure-plaintext` asked: a warning.
    InsecurePlaintext {
        /// Its listening address.
        listen: SocketAddr,
    },
    /// It read its TLS files again (SIGHUP): new connections use them.
    TlsReloaded {
        /// Its certificate's file.
        cert: PathBuf,
    },
    /// Reading its TLS files again failed: it keeps the material in use.
    TlsReloadFailed {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for NodeEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Listening {
                address,
                cluster,
                state_file,
                restored,
            } => write!(
                f,
                "listening on {address} in {cluster}, state in {} ({}, voted for {})",
                state_file.display(),
                restored.current_term,
                restored
                    .voted_for
                    .map_or_else(|| "nobody".to_owned(), |v| v.to_string())
            ),
            Self::Timing(figures) => write!(f, "{figures}"),
            Self::Ready { leader } => write!(f, "ready: {leader} leads"),
            Self::TransferAsked { to, from } => {
                write!(f, "asked by {from} to hand leadership to {to}")
            }
            Self::StatusServing { address } => write!(f, "status on http://{address}/status"),
            Self::Signal { signal } => write!(f, "{signal}: shutting down"),
            Self::HandedOver { successor } => write!(f, "handed leadership to {successor}"),
            Self::Stopped { error: None, .. } => f.write_str("stopped"),
            Self::Stopped {
                error: Some(error), ..
            } => write!(f, "stopped: {error}"),
            Self::Failed { reason } => f.write_str(reason),
            Self::ProgramStarted { term, command } => {
                write!(f, "holds the lease of {term}: started {command}")
            }
            Self::ProgramDraining {
                term,
                timeout_seconds,
            } => write!(
                f,
                "draining the program of {term}: SIGTERM sent, leading on for at most \
                 {timeout_seconds:.1} s while it finishes"
            ),
            Self::ProgramStopping { term, reason } => {
                write!(f, "stopping the program of {term}: {reason}")
            }
            Self::ProgramExited {
                term,
                code,
                seconds,
            } => {
                let code = code.map_or_else(|| "a signal".to_owned(), |c| format!("code {c}"));
                write!(
                    f,
                    "the program of {term} exited ({code}) after {seconds:.3} s"
                )
            }
            Self::ProgramError { reason } => write!(f, "the program: {reason}"),
            Self::InsecurePlaintext { listen } => write!(
                f,
                "no TLS on {listen} (--insecure-plaintext): anyone who reaches it from a \
                 peer's address can speak for that peer"
            ),
            Self::TlsReloaded { cert } => {
                write!(f, "reloaded the TLS material ({})", cert.display())
            }
            Self::TlsReloadFailed { reason } => {
                write!(
                    f,
                    "kept the TLS material in use: reloading it failed: {reason}"
                )
            }
        }
    }
}

/// Logs `event` as one line, its words as the message and the event itself
/// in the `event` field: the process failing as an error, a failure it
/// goes on after as a warning, the rest as info.
pub fn log_event(event: &NodeEvent) {
    match event {
        NodeEvent::Failed { .. } => error!(event = %Json(event), "{event}"),
        NodeEvent::ProgramError { .. }
        | NodeEvent::Stopped { error: Some(_), .. }
        | NodeEvent::InsecurePlaintext { .. }
        | NodeEvent::TlsReloadFailed { .. } => {
            warn!(event = %Json(event), "{event}");
        }
        _ => info!(event = %Json(event), "{event}"),
    }
}

/// A line's level, as tracing names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// The most verbose: heartbeats (`-vv`).
    Trace,
    /// Every other message (`-v`).
    Debug,
    /// Starts, elections, votes, leaders: always logged.
    #[default]
    Info,
    /// Something went wrong, and the node goes on.
    Warn,
    /// Something went wrong.
    Error,
}

/// The typed fact a line carries, if any.
#[derive(Clone, Debug, PartialEq)]
pub enum Fact {
    /// One of the node's records, and for a send what became of it.
    Record(Record, Option<Delivery>),
    /// A peer connection that ended badly.
    Connection(ConnectionEnded),
    /// Refusals the rate limit kept out of the log.
    Suppressed(Suppressed),
    /// Something the process did.
    Event(NodeEvent),
    /// Words only.
    None,
}

/// One line of a node's JSON log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    /// When it was written: seconds since the Unix epoch, by the node's clock.
    pub ts: f64,
    /// Whose line it is.
    pub node: NodeId,
    /// The node's term and role when the line was written; `None` before
    /// its server runs.
    pub state: Option<(Term, Role)>,
    /// Its level.
    pub level: Level,
    /// The line in words.
    pub message: String,
    /// What it says, typed.
    pub fact: Fact,
}

/// Why a line is not a node's line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unreadable {
    /// Not a JSON object.
    NotJson,
    /// JSON, but without a node id and a plausible `ts`.
    NotNode,
    /// A node's line whose `term` or `role` is not one.
    BadState,
    /// A `record`, `delivery` or `event` that is not one this version
    /// writes, named by its kind (an unknown event, a garbled record).
    UnknownFact(String),
}

/// Node lines have timestamps between 2001 and 2286: a `ts` outside that
/// range is no clock reading.
const TS_RANGE: std::ops::RangeInclusive<f64> = 1e9..=1e10;

/// The fields a line is read from, each still JSON.
#[derive(Deserialize)]
struct Fields {
    ts: Option<Value>,
    node: Option<Value>,
    term: Option<Value>,
    role: Option<Value>,
    level: Option<Value>,
    message: Option<Value>,
    record: Option<Value>,
    delivery: Option<Value>,
    connection: Option<Value>,
    suppressed: Option<Value>,
    event: Option<Value>,
}

/// `value` as a `T`, or `None` if it is none.
fn typed<T: DeserializeOwned>(value: Option<Value>) -> Option<T> {
    value.and_then(|value| serde_json::from_value(value).ok())
}

/// The kind an unreadable fact names: an externally tagged enum's tag, or
/// the value itself.
fn kind_of(value: &Value) -> String {
    match value {
        Value::Object(fields) => fields.keys().next().cloned().unwrap_or_default(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

impl LogLine {
    /// Reads one line of text.
    pub fn parse(text: &str) -> Result<Self, Unreadable> {
        let Ok(fields) = serde_json::from_str::<Fields>(text) else {
            return Err(Unreadable::NotJson);
        };
        let ts = typed::<f64>(fields.ts).filter(|ts| TS_RANGE.contains(ts));
        let node = typed::<NodeId>(fields.node);
        let (Some(ts), Some(node)) = (ts, node) else {
            return Err(Unreadable::NotNode);
        };
        let state = match (fields.term, fields.role) {
            (None, None) => None,
            (term, role) => Some(
                typed::<Term>(term)
                    .zip(typed::<Role>(role))
                    .ok_or(Unreadable::BadState)?,
            ),
        };
        let fact = match (fields.record, fields.connection, fields.event) {
            (Some(record), _, _) => {
                let kind = kind_of(&record);
                let delivery = match fields.delivery {
                    Some(value) => Some(
                        typed::<Delivery>(Some(value.clone()))
                            .ok_or_else(|| Unreadable::UnknownFact(kind_of(&value)))?,
                    ),
                    None => None,
                };
                let record = typed::<Record>(Some(record)).ok_or(Unreadable::UnknownFact(kind))?;
                Fact::Record(record, delivery)
            }
            (None, Some(connection), _) => Fact::Connection(
                typed(Some(connection))
                    .ok_or_else(|| Unreadable::UnknownFact("connection".to_owned()))?,
            ),
            (None, None, Some(event)) => {
                let kind = kind_of(&event);
                Fact::Event(typed(Some(event)).ok_or(Unreadable::UnknownFact(kind))?)
            }
            (None, None, None) => match fields.suppressed {
                Some(suppressed) => Fact::Suppressed(
                    typed(Some(suppressed))
                        .ok_or_else(|| Unreadable::UnknownFact("suppressed".to_owned()))?,
                ),
                None => Fact::None,
            },
        };
        Ok(Self {
            ts,
            node,
            state,
            level: typed(fields.level).unwrap_or_default(),
            message: typed(fields.message).unwrap_or_default(),
            fact,
        })
    }

    /// The record the line carries, if any.
    #[must_use]
    pub fn record(&self) -> Option<&Record> {
        match &self.fact {
            Fact::Record(record, _) => Some(record),
            Fact::Connection(_) | Fact::Suppressed(_) | Fact::Event(_) | Fact::None => None,
        }
    }

    /// The process event the line carries, if any.
    #[must_use]
    pub fn event(&self) -> Option<&NodeEvent> {
        match &self.fact {
            Fact::Event(event) => Some(event),
            Fact::Record(..) | Fact::Connection(_) | Fact::Suppressed(_) | Fact::None => None,
        }
    }

    /// The peer connection that ended badly the line tells of, if any.
    #[must_use]
    pub fn connection(&self) -> Option<&ConnectionEnded> {
        match &self.fact {
            Fact::Connection(ended) => Some(ended),
            Fact::Record(..) | Fact::Suppressed(_) | Fact::Event(_) | Fact::None => None,
        }
    }

    /// The count of refusals held back by the rate limit the line
    /// reports, if any.
    #[must_use]
    pub fn suppressed(&self) -> Option<&Suppressed> {
        match &self.fact {
            Fact::Suppressed(suppressed) => Some(suppressed),
            Fact::Record(..) | Fact::Connection(_) | Fact::Event(_) | Fact::None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_election::{Change, Input, Summary, Timer};
    use serde_json::json;

    fn line(fields: Value) -> Result<LogLine, Unreadable> {
        LogLine::parse(&fields.to_string())
    }

    #[test]
    fn a_record_and_an_event_read_back_as_the_values_logged() {
        let record = Record::Stepped {
            input: Input::Timeout(Timer::Election),
            after: Summary {
                current_term: Term(2),
                voted_for: Some(NodeId(1)),
                role: Role::Candidate,
                leader_id: None,
            },
            change: Change {
                term_from: Some(Term(1)),
                role_from: Some(Role::Follower),
                vote: Some(NodeId(1)),
                leader: None,
            },
        };
        let text = Json(&record).to_string();
        let read = line(
            json!({"ts": 1.7e9, "node": 1, "term": 2, "role": "candidate",
            "level": "INFO", "message": record.to_string(),
            "record": serde_json::from_str::<Value>(&text).unwrap()}),
        )
        .expect("a node's line");
        assert_eq!(read.fact, Fact::Record(record, None));
        assert_eq!(read.state, Some((Term(2), Role::Candidate)));
        let event = NodeEvent::HandedOver {
            successor: NodeId(3),
        };
        let value = serde_json::from_str::<Value>(&Json(&event).to_string()).unwrap();
        let read = line(json!({"ts": 1.7e9, "node": 1, "event": value})).expect("a node's line");
        assert_eq!(read.event(), Some(&event));
        assert_eq!(read.level, Level::Info);
    }

    #[test]
    fn lines_that_are_not_a_nodes_say_why() {
        assert_eq!(
            LogLine::parse("Compiling raft-election"),
            Err(Unreadable::NotJson)
        );
        assert_eq!(line(json!({"ts": 5, "node": 1})), Err(Unreadable::NotNode));
        assert_eq!(
            line(json!({"ts": 1.7e9, "node": 300})),
            Err(Unreadable::NotNode)
        );
        assert_eq!(
            line(json!({"ts": 1.7e9, "node": 1, "term": 1, "role": "emperor"})),
            Err(Unreadable::BadState)
        );
        assert_eq!(
            line(json!({"ts": 1.7e9, "node": 1, "event": {"teleport": {}}})),
            Err(Unreadable::UnknownFact("teleport".to_owned()))
        );
        assert_eq!(
            line(json!({"ts": 1.7e9, "node": 1, "record": {"started": {"current_term": "x"}}})),
            Err(Unreadable::UnknownFact("started".to_owned()))
        );
        let saved = Record::Saved(HardState::default());
        let value = serde_json::from_str::<Value>(&Json(&saved).to_string()).unwrap();
        let plain = line(json!({"ts": 1.7e9, "node": 1, "record": value})).expect("a save");
        assert_eq!(plain.record(), Some(&saved));
    }
}
