//! A real cluster's node logs as a timeline picture: what
//! `raft-election timeline --out FILE.svg LOG...` draws.
//!
//! Each node process (`raft-election node --log-format json`) writes one
//! JSON object a line on stderr, with `ts` (seconds since the Unix epoch),
//! `node`, and once it runs its `term` and `role`; see
//! [`crate::logging`]. This module reads those lines from any number of
//! files (one per node, or mixed: the `node` field says whose a line is)
//! and turns them into a [`raft_election_timeline::Timeline`]:
//!
//! - every line's `term` and `role` are the node's state when it was
//!   written, so the bands follow them;
//! - `timeout` is an election timeout tick;
//! - each `send` is paired with the `receive` of an equal message (same
//!   link, `message_type`, `message_term` and `vote_granted`) on the other
//!   node: as many pairs as can be, in order, each receipt with the latest
//!   send it can be, and a receipt logged up to a small skew before its
//!   send still its (the processes' clocks differ);
//! - a `start` after the node's first is a restart; `stop` (SIGTERM, or the
//!   server failing) and a life whose last line is not `stop` (killed) end
//!   the node's band with a crash mark, and are named in the notes, as
//!   are `signal`, `error` and `handed_over`.
//!
//! Lines that are not JSON, JSON lines that are not a node's (no `ts` or
//! `node`) and events this module does not know are counted and reported,
//! never fatal: a log file collects whatever the process printed.

use crate::timeline::set_state;
use raft_election::{HardState, Input, Message, NodeId, Role, Term, Timer};
use raft_election_timeline::{
    Axis, Event as Mark, EventKind as MarkKind, Fate, Fault, MessageClass, Note, Timeline,
};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

/// How long before its send a receipt may be logged and still be that
/// send's, by default: the two are logged by different processes, whose
/// clocks differ by a little even on one machine.
pub const DEFAULT_SKEW_MS: f64 = 2.0;

/// At most this many node lines are read, from all files together: about
/// an hour of a three-node cluster logging every heartbeat (`-vv`).
pub const MAX_LINES: usize = 1_000_000;

/// A line longer than this is no node's: skipped, and counted.
const MAX_LINE_BYTES: u64 = 64 * 1024;

/// Node lines have timestamps between 2001 and 2286: a `ts` outside that
/// range is no clock reading, and would stretch the time axis to nothing.
const TS_RANGE: std::ops::RangeInclusive<f64> = 1e9..=1e10;

/// The logs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NodeLogError {
    /// A file is missing or unreadable.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// None of the files has a node's JSON line.
    #[error(
        "no node log lines in {files}: expected the JSON lines of \
         `raft-election node --log-format json`{skipped}"
    )]
    NoNodeLines {
        /// The files, comma-separated.
        files: String,
        /// What was skipped instead, if anything, as `" (skipped: ...)"`.
        skipped: String,
    },
    /// More than [`MAX_LINES`] node lines.
    #[error(
        "more than {MAX_LINES} node lines (at {}): draw a shorter stretch, e.g. \
         the last lines of each file (tail -n)",
        path.display()
    )]
    TooManyLines {
        /// The file being read when the limit was reached.
        path: PathBuf,
    },
}

/// Lines read but not drawn, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Not JSON (or not UTF-8, or longer than 64 KiB).
    pub not_json: usize,
    /// JSON, but without a node id (0 to 255) and a plausible `ts`.
    pub not_node: usize,
    /// A node line whose `term` or `role` is not one.
    pub bad_state: usize,
    /// A known event without the fields it needs (a `send` with no `peer`).
    pub incomplete: usize,
    /// Events this module does not know, by name.
    pub unknown_events: BTreeMap<String, usize>,
}

impl Skipped {
    /// Whether nothing was skipped.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let mut count = |n: usize, what: &str| {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        };
        count(self.not_json, "not JSON");
        count(self.not_node, "JSON but not a node's");
        count(self.bad_state, "with a bad term or role");
        count(self.incomplete, "events missing their fields");
        for (event, n) in &self.unknown_events {
            parts.push(format!("{n} unknown event {event:?}"));
        }
        if parts.is_empty() {
            f.write_str("nothing")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// A message as a send or receive line describes it: enough to pair the
/// two, to colour the arrow and to label it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Logged {
    message_type: String,
    term: Term,
    /// A vote answer's verdict; `None` for other messages, or from a node
    /// that does not log it.
    vote_granted: Option<bool>,
}

impl Logged {
    fn class(&self) -> MessageClass {
        match (self.message_type.as_str(), self.vote_granted) {
            // A pre-vote is drawn as a vote: its label says which it is.
            ("RequestVote" | "PreVote", _) => MessageClass::VoteRequest,
            ("RequestVoteResponse" | "PreVoteResponse", Some(true)) => MessageClass::VoteGranted,
            ("RequestVoteResponse" | "PreVoteResponse", Some(false)) => MessageClass::VoteRejected,
            ("AppendEntries", _) => MessageClass::Heartbeat,
            ("AppendEntriesResponse", _) => MessageClass::HeartbeatResponse,
            _ => MessageClass::Other,
        }
    }

    fn label(&self) -> String {
        match self.vote_granted {
            Some(true) => format!("{}({}, granted)", self.message_type, self.term),
            Some(false) => format!("{}({}, rejected)", self.message_type, self.term),
            None => format!("{}({})", self.message_type, self.term),
        }
    }

    /// Heartbeats and their answers are logged at trace level (`-vv`),
    /// other messages at debug (`-v`).
    fn needs(&self) -> Verbosity {
        if self.class().is_heartbeat() {
            Verbosity::Trace
        } else {
            Verbosity::Debug
        }
    }
}

/// How much a node logs: the most verbose level among its lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
enum Verbosity {
    #[default]
    Info,
    Debug,
    Trace,
}

/// What a line says happened.
#[derive(Clone, Debug, PartialEq)]
enum LogEvent {
    /// The node's server starts (a new life).
    Start,
    /// Its election timer fired.
    Timeout,
    /// It sent `message` to `peer`; `delivery` is the transport's word.
    Send {
        peer: NodeId,
        message: Logged,
        delivery: String,
    },
    /// It stepped `message` from `peer`.
    Receive { peer: NodeId, message: Logged },
    /// It was told to stop (`text`: which signal).
    Signal { text: String },
    /// It handed its leadership to `successor` before stopping.
    HandedOver { successor: NodeId },
    /// Its server stopped.
    Stop,
    /// The process failed (`text`: why) and exits.
    Error { text: String },
    /// Nothing to draw beyond the line's state: no event, or one the
    /// state already shows (term, role, vote, leader, listen, transfer).
    Other,
}

/// One node line.
#[derive(Clone, Debug, PartialEq)]
struct LogLine {
    /// Seconds since the Unix epoch.
    ts: f64,
    node: NodeId,
    /// The node's term and role when the line was written; `None` before
    /// its server runs.
    state: Option<(Term, Role)>,
    level: Verbosity,
    event: LogEvent,
    /// What the line says for a replay through the model, if anything.
    replayed: Option<Replayed>,
}

/// What one line of a node's log says for a replay of the node through
/// the model (trace validation): its `start`, and with `--log-steps` its
/// `step`, `save` and `sent` lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Replayed {
    /// The server starts, restored from this hard state.
    Started(HardState),
    /// The node stepped on `input` and was left as `after` says.
    Stepped {
        /// The input.
        input: Input,
        /// The node after the step.
        after: StepOutcome,
    },
    /// This hard state became durable.
    Saved(HardState),
    /// The node handed `message` for `to` to its transport.
    Sent {
        /// The receiver.
        to: NodeId,
        /// The message, in full.
        message: Message,
    },
}

/// Where a step left its node, as its `step` line says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepOutcome {
    /// The node's term.
    pub current_term: Term,
    /// Whom it voted for in that term.
    pub voted_for: Option<NodeId>,
    /// Its role.
    pub role: Role,
    /// The leader it knows.
    pub leader_id: Option<NodeId>,
}

/// The [`Replayed`] meaning of a `start`, `step`, `save` or `sent` line,
/// `Ok(None)` for any other event.
fn replayed(
    event: Option<&str>,
    fields: &Map<String, Value>,
) -> Result<Option<Replayed>, Unparsed> {
    let id = |key: &str| -> Result<Option<NodeId>, Unparsed> {
        fields
            .get(key)
            .map(|value| node_id(value).ok_or(Unparsed::Incomplete))
            .transpose()
    };
    let term = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_u64)
            .map(Term)
            .ok_or(Unparsed::Incomplete)
    };
    let wire = || -> Result<Message, Unparsed> {
        let text = fields
            .get("wire")
            .and_then(Value::as_str)
            .ok_or(Unparsed::Incomplete)?;
        serde_json::from_str(text).map_err(|_| Unparsed::Incomplete)
    };
    let hard_state = |term_key: &str, vote_key: &str| -> Result<HardState, Unparsed> {
        Ok(HardState {
            current_term: term(term_key)?,
            voted_for: id(vote_key)?,
        })
    };
    Ok(Some(match event {
        // A start says what it restored since the node's first release
        // with step logs; a line without it still starts a life to draw.
        Some("start") => match hard_state("restored_term", "voted_for") {
            Ok(restored) => Replayed::Started(restored),
            Err(_) => return Ok(None),
        },
        Some("save") => Replayed::Saved(hard_state("saved_term", "saved_vote")?),
        Some("sent") => Replayed::Sent {
            to: id("peer")?.ok_or(Unparsed::Incomplete)?,
            message: wire()?,
        },
        Some("step") => {
            let peer = || id("peer")?.ok_or(Unparsed::Incomplete);
            let input = match fields.get("input").and_then(Value::as_str) {
                Some("start") => Input::Start,
                Some("receive") => Input::Receive {
                    from: peer()?,
                    message: wire()?,
                },
                Some("timeout") => {
                    let name = fields.get("timer").and_then(Value::as_str);
                    let timer = Timer::ALL
                        .into_iter()
                        .find(|timer| Some(timer.to_string().as_str()) == name);
                    Input::Timeout(timer.ok_or(Unparsed::Incomplete)?)
                }
                Some("transfer") => Input::TransferLeadership { to: peer()? },
                _ => return Err(Unparsed::Incomplete),
            };
            let role = fields
                .get("after_role")
                .and_then(Value::as_str)
                .and_then(role_of)
                .ok_or(Unparsed::Incomplete)?;
            Replayed::Stepped {
                input,
                after: StepOutcome {
                    current_term: term("after_term")?,
                    voted_for: id("after_vote")?,
                    role,
                    leader_id: id("after_leader")?,
                },
            }
        }
        _ => return Ok(None),
    }))
}

/// Events that draw nothing of their own.
const QUIET_EVENTS: [&str; 9] = [
    "listen", "term", "role", "vote", "leader", "transfer", "step", "save", "sent",
];

/// The node lines of one or more log files, in the order written.
#[derive(Clone, Debug, Default)]
pub struct NodeLogs {
    lines: Vec<LogLine>,
    skipped: Skipped,
    /// Files that held no node line at all.
    empty_files: Vec<PathBuf>,
}

impl NodeLogs {
    /// Reads the node lines of `paths`. A missing or unreadable file is an
    /// error naming it, and so is finding no node line in any of them;
    /// anything else that is not a node line is counted in
    /// [`Self::skipped`].
    pub fn read(paths: &[PathBuf]) -> Result<Self, NodeLogError> {
        let mut logs = Self::default();
        for path in paths {
            let error = |source| NodeLogError::Read {
                path: path.clone(),
                source,
            };
            let file = std::fs::File::open(path).map_err(error)?;
            let before = logs.lines.len();
            logs.read_lines(BufReader::new(file)).map_err(|e| match e {
                ReadError::Io(source) => error(source),
                ReadError::TooMany => NodeLogError::TooManyLines { path: path.clone() },
            })?;
            if logs.lines.len() == before {
                logs.empty_files.push(path.clone());
            }
        }
        if logs.lines.is_empty() {
            let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            return Err(NodeLogError::NoNodeLines {
                files: files.join(", "),
                skipped: if logs.skipped.is_empty() {
                    String::new()
                } else {
                    format!(" (skipped: {})", logs.skipped)
                },
            });
        }
        Ok(logs)
    }

    /// Every line of `reader`, each at most [`MAX_LINE_BYTES`] long.
    fn read_lines(&mut self, mut reader: impl BufRead) -> Result<(), ReadError> {
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            let read = reader
                .by_ref()
                .take(MAX_LINE_BYTES)
                .read_until(b'\n', &mut buffer)
                .map_err(ReadError::Io)?;
            if read == 0 {
                return Ok(());
            }
            if buffer.last() != Some(&b'\n') && read as u64 == MAX_LINE_BYTES {
                // Too long: skip to the end of the line, a bounded piece at a time.
                self.skipped.not_json += 1;
                loop {
                    buffer.clear();
                    let rest = reader
                        .by_ref()
                        .take(MAX_LINE_BYTES)
                        .read_until(b'\n', &mut buffer)
                        .map_err(ReadError::Io)?;
                    if rest == 0 || buffer.last() == Some(&b'\n') {
                        break;
                    }
                }
                continue;
            }
            if self.lines.len() >= MAX_LINES {
                return Err(ReadError::TooMany);
            }
            self.add(&buffer);
        }
    }

    /// One line of a log: kept if it is a node's, counted otherwise.
    fn add(&mut self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) else {
            self.skipped.not_json += 1;
            return;
        };
        match parse(&fields) {
            Ok(line) => self.lines.push(line),
            Err(Unparsed::NotNode) => self.skipped.not_node += 1,
            Err(Unparsed::BadState) => self.skipped.bad_state += 1,
            Err(Unparsed::Incomplete) => self.skipped.incomplete += 1,
            Err(Unparsed::UnknownEvent(event)) => {
                *self.skipped.unknown_events.entry(event).or_default() += 1;
            }
        }
    }

    /// Lines read but not drawn, by reason.
    #[must_use]
    pub fn skipped(&self) -> &Skipped {
        &self.skipped
    }

    /// The files given that held no node line.
    #[must_use]
    pub fn empty_files(&self) -> &[PathBuf] {
        &self.empty_files
    }

    /// The nodes that logged, in id order.
    #[must_use]
    pub fn nodes(&self) -> Vec<NodeId> {
        let nodes: BTreeSet<NodeId> = self.lines.iter().map(|l| l.node).collect();
        nodes.into_iter().collect()
    }

    /// What the lines say for a replay through the model, each with its
    /// node, in the order they were written: by time across files, in
    /// file order within one (a node's lines are written in order).
    #[must_use]
    pub fn replayed(&self) -> Vec<(NodeId, Replayed)> {
        let mut lines: Vec<&LogLine> = self
            .lines
            .iter()
            .filter(|line| line.replayed.is_some())
            .collect();
        lines.sort_by(|a, b| a.ts.total_cmp(&b.ts));
        lines
            .into_iter()
            .filter_map(|line| Some((line.node, line.replayed.clone()?)))
            .collect()
    }

    /// The picture, titled `title`: one lane per node, time in milliseconds
    /// since the earliest line. A receipt logged up to `skew_ms` before its
    /// send still pairs with it (the processes' clocks differ).
    #[must_use]
    pub fn timeline(&self, title: &str, skew_ms: f64) -> (Timeline, Drawn) {
        draw(self, title, skew_ms)
    }
}

enum ReadError {
    Io(std::io::Error),
    TooMany,
}

enum Unparsed {
    NotNode,
    BadState,
    Incomplete,
    UnknownEvent(String),
}

fn parse(fields: &Map<String, Value>) -> Result<LogLine, Unparsed> {
    let ts = fields
        .get("ts")
        .and_then(Value::as_f64)
        .filter(|ts| TS_RANGE.contains(ts))
        .ok_or(Unparsed::NotNode)?;
    let node = fields
        .get("node")
        .and_then(node_id)
        .ok_or(Unparsed::NotNode)?;
    let state = match (fields.get("term"), fields.get("role")) {
        (None, None) => None,
        (term, role) => {
            let term = term.and_then(Value::as_u64).map(Term);
            let role = role.and_then(Value::as_str).and_then(role_of);
            Some(term.zip(role).ok_or(Unparsed::BadState)?)
        }
    };
    let level = match fields.get("level").and_then(Value::as_str) {
        Some("TRACE") => Verbosity::Trace,
        Some("DEBUG") => Verbosity::Debug,
        _ => Verbosity::Info,
    };
    let text = || {
        fields
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let peer = || {
        fields
            .get("peer")
            .and_then(node_id)
            .ok_or(Unparsed::Incomplete)
    };
    let message = || -> Result<Logged, Unparsed> {
        Ok(Logged {
            message_type: fields
                .get("message_type")
                .and_then(Value::as_str)
                .ok_or(Unparsed::Incomplete)?
                .to_owned(),
            term: fields
                .get("message_term")
                .and_then(Value::as_u64)
                .map(Term)
                .ok_or(Unparsed::Incomplete)?,
            vote_granted: fields.get("vote_granted").and_then(Value::as_bool),
        })
    };
    let event = match fields.get("event").map(|e| e.as_str().ok_or(e)) {
        None => LogEvent::Other,
        Some(Ok("start")) => LogEvent::Start,
        Some(Ok("timeout")) => LogEvent::Timeout,
        Some(Ok("send")) => LogEvent::Send {
            peer: peer()?,
            message: message()?,
            delivery: fields
                .get("delivery")
                .and_then(Value::as_str)
                .ok_or(Unparsed::Incomplete)?
                .to_owned(),
        },
        Some(Ok("receive")) => LogEvent::Receive {
            peer: peer()?,
            message: message()?,
        },
        Some(Ok("signal")) => LogEvent::Signal { text: text() },
        Some(Ok("handed_over")) => LogEvent::HandedOver {
            successor: fields
                .get("successor")
                .and_then(node_id)
                .ok_or(Unparsed::Incomplete)?,
        },
        Some(Ok("stop")) => LogEvent::Stop,
        Some(Ok("error")) => LogEvent::Error { text: text() },
        Some(Ok(quiet)) if QUIET_EVENTS.contains(&quiet) => LogEvent::Other,
        Some(Ok(unknown)) => return Err(Unparsed::UnknownEvent(unknown.to_owned())),
        Some(Err(value)) => return Err(Unparsed::UnknownEvent(value.to_string())),
    };
    let replayed = replayed(fields.get("event").and_then(Value::as_str), fields)?;
    Ok(LogLine {
        ts,
        node,
        state,
        level,
        event,
        replayed,
    })
}

fn node_id(value: &Value) -> Option<NodeId> {
    value
        .as_u64()
        .and_then(|id| u8::try_from(id).ok())
        .map(NodeId)
}

fn role_of(name: &str) -> Option<Role> {
    [
        Role::Follower,
        Role::PreCandidate,
        Role::Candidate,
        Role::Leader,
    ]
    .into_iter()
    .find(|role| role.to_string() == name)
}

/// What a timeline shows, counted: printed after drawing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drawn {
    /// Lanes.
    pub nodes: usize,
    /// Sends paired with their receipt: arrows.
    pub received: usize,
    /// Sends the transport lost, or that the receiver never logged.
    pub lost: usize,
    /// Sends the receiver may still step: its log ends first.
    pub in_flight: usize,
    /// Receipts with no send they can be: the sender's log misses it.
    pub unmatched_receipts: usize,
    /// Sends left out because their receiver logs no receipts of their
    /// kind (it ran without `-v`, or without `-vv` for heartbeats), or
    /// has no log among those given.
    pub unlogged_receipts: usize,
    /// Starts after a node's first.
    pub restarts: usize,
    /// Lives that ended without `stop`: killed (or still running).
    pub killed: usize,
    /// Lives that ended with `stop` or `error`.
    pub stopped: usize,
}

impl fmt::Display for Drawn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} lanes; {} messages received, {} lost, {} in flight; \
             {} restarts, {} stops, {} lives ended without stop (killed)",
            self.nodes,
            self.received,
            self.lost,
            self.in_flight,
            self.restarts,
            self.stopped,
            self.killed
        )?;
        if self.unmatched_receipts > 0 {
            write!(
                f,
                "; {} receipts with no logged send, not drawn",
                self.unmatched_receipts
            )?;
        }
        if self.unlogged_receipts > 0 {
            write!(
                f,
                "; {} sends not drawn: their receivers do not log receipts of that kind \
                 (run every node with -v, or -vv for heartbeats) or have no log here",
                self.unlogged_receipts
            )?;
        }
        Ok(())
    }
}

/// One life of a node: from its process's first line to its end.
#[derive(Clone, Copy, Debug)]
struct Life {
    /// Its first line, in ms: the earliest a message can reach it.
    began: f64,
    /// Its `start` line was seen: its lines carry its state.
    started: bool,
    /// Its last line with a state, in ms.
    last_seen: f64,
    /// When and how it ended, if it has.
    ended: Option<End>,
}

/// How a node's life ended.
#[derive(Clone, Copy, Debug, PartialEq)]
enum End {
    /// Its log says so (`stop`, `error`), or a new process followed: at
    /// this time or soon after, it was gone.
    Down(f64),
    /// Its log just ends: killed, or still running when read.
    LogEnds,
}

impl Life {
    fn new(began: f64) -> Self {
        Self {
            began,
            started: false,
            last_seen: began,
            ended: None,
        }
    }

    fn up(&self) -> bool {
        self.started && self.ended.is_none()
    }
}

/// A delivered send waiting for its receipt.
struct Sent {
    at: f64,
    /// Its mark.
    index: usize,
}

/// One link's messages of one kind: (from, to, message).
type Link = (NodeId, NodeId, Logged);

fn draw(logs: &NodeLogs, title: &str, skew_ms: f64) -> (Timeline, Drawn) {
    let mut lines: Vec<&LogLine> = logs.lines.iter().collect();
    // Stable: lines of one instant keep their order in the file.
    lines.sort_by(|a, b| a.ts.total_cmp(&b.ts));
    let t0 = lines.first().map_or(0.0, |l| l.ts);
    let ms = |ts: f64| (ts - t0) * 1e3;
    let nodes = logs.nodes();
    let mut timeline = Timeline::new(
        format!("{title} (0 ms = {t0:.3} s since the Unix epoch)"),
        nodes.clone(),
        Axis::Milliseconds,
    );
    let mut drawn = Drawn {
        nodes: nodes.len(),
        ..Drawn::default()
    };
    let verbosity: BTreeMap<NodeId, Verbosity> =
        lines.iter().fold(BTreeMap::new(), |mut most, line| {
            let level = most.entry(line.node).or_default();
            *level = (*level).max(line.level);
            most
        });
    let mut marks: Vec<Mark> = Vec::new();
    let mut notes: Vec<Note> = Vec::new();
    // Every node's lives so far, the current one last.
    let mut lives: BTreeMap<NodeId, Vec<Life>> = BTreeMap::new();
    let mut states: BTreeMap<NodeId, (Role, Term, usize)> = BTreeMap::new();
    let mut sends: BTreeMap<Link, Vec<Sent>> = BTreeMap::new();
    // Receipt times by link and message.
    let mut receipts: BTreeMap<Link, Vec<f64>> = BTreeMap::new();
    for line in lines {
        let (at, node) = (ms(line.ts), line.node);
        let node_lives = lives.entry(node).or_default();
        // A new process: its first lines carry no state yet, and its
        // server starts again. The old life ended unseen: killed.
        let new_life = match node_lives.last() {
            None => true,
            Some(life) => life.started && (line.state.is_none() || line.event == LogEvent::Start),
        };
        if new_life {
            if let Some(life) = node_lives.last_mut() {
                if life.ended.is_none() {
                    end_killed(life, node, &mut marks, &mut notes, &mut drawn);
                }
            }
            node_lives.push(Life::new(at));
            states.remove(&node);
        }
        let restart = node_lives.len() > 1;
        let Some(life) = node_lives.last_mut() else {
            continue;
        };
        if line.event == LogEvent::Start {
            life.started = true;
            if restart {
                drawn.restarts += 1;
                marks.push(mark(at, node, MarkKind::Fault(Fault::Restart)));
            }
        }
        if !life.up() {
            // Before its server runs or after it stopped: no band, and
            // what it says then is about no step of the node; but a
            // process that fails before it starts says why.
            if let LogEvent::Error { text } = &line.event {
                note(&mut notes, at, format!("{node} failed: {text}"));
            }
            continue;
        }
        if let Some((term, role)) = line.state {
            life.last_seen = at;
            set_state(&mut marks, &mut states, at, node, role, term);
        }
        match &line.event {
            LogEvent::Timeout => marks.push(mark(at, node, MarkKind::ElectionTimeout)),
            LogEvent::Send {
                peer,
                message,
                delivery,
            } => {
                if delivery != "delivered" {
                    drawn.lost += 1;
                    let fate = Fate::Lost {
                        at,
                        reason: delivery.clone(),
                    };
                    marks.push(sent(at, node, *peer, message, fate));
                } else if verbosity.get(peer).is_none_or(|&v| v < message.needs()) {
                    drawn.unlogged_receipts += 1;
                } else {
                    let link = (node, *peer, message.clone());
                    let index = marks.len();
                    marks.push(sent(at, node, *peer, message, Fate::InFlight));
                    sends.entry(link).or_default().push(Sent { at, index });
                }
            }
            LogEvent::Receive { peer, message } => {
                let link = (*peer, node, message.clone());
                receipts.entry(link).or_default().push(at);
            }
            LogEvent::Signal { text } => note(&mut notes, at, format!("{node}: {text}")),
            LogEvent::HandedOver { successor } => note(
                &mut notes,
                at,
                format!("{node} handed its leadership to {successor}"),
            ),
            LogEvent::Stop => {
                life.ended = Some(End::Down(at));
                drawn.stopped += 1;
                marks.push(mark(at, node, MarkKind::Fault(Fault::Stop)));
                note(&mut notes, at, format!("{node} stopped"));
            }
            LogEvent::Error { text } => {
                life.ended = Some(End::Down(at));
                drawn.stopped += 1;
                marks.push(mark(at, node, MarkKind::Fault(Fault::Crash)));
                note(&mut notes, at, format!("{node} failed: {text}"));
            }
            LogEvent::Start | LogEvent::Other => {}
        }
    }
    for (&node, node_lives) in &mut lives {
        if let Some(life) = node_lives.last_mut().filter(|life| life.up()) {
            end_killed(life, node, &mut marks, &mut notes, &mut drawn);
            life.ended = Some(End::LogEnds);
        }
    }
    for (link, link_sends) in &sends {
        let link_receipts = receipts.remove(link).unwrap_or_default();
        let pairs = pair(link_sends, &link_receipts, skew_ms);
        drawn.unmatched_receipts += link_receipts.len() - pairs.len();
        drawn.received += pairs.len();
        let last_paired = pairs.keys().next_back().copied();
        for (i, send) in link_sends.iter().enumerate() {
            let fate = match pairs.get(&i) {
                Some(&receipt) => Fate::Delivered {
                    at: receipt.max(send.at),
                },
                None => {
                    let fate =
                        unreceived(send.at, link.1, &lives, last_paired.is_some_and(|p| p > i));
                    if matches!(fate, Fate::Lost { .. }) {
                        drawn.lost += 1;
                    } else {
                        drawn.in_flight += 1;
                    }
                    fate
                }
            };
            if let MarkKind::Sent {
                fate: drawn_fate, ..
            } = &mut marks[send.index].kind
            {
                *drawn_fate = fate;
            }
        }
    }
    drawn.unmatched_receipts += receipts.values().map(Vec::len).sum::<usize>();
    notes.sort_by(|a, b| a.at.total_cmp(&b.at));
    timeline.events = marks;
    timeline.notes = notes;
    (timeline, drawn)
}

/// Pairs the receipts of one link's equal messages (their times, in
/// order) with its sends, in order (a link delivers in order): as many
/// pairs as can be, a receipt logged at most `skew_ms` before its send (the
/// processes' clocks differ). Of the pairings with the most pairs, the one
/// with the latest sends: the last receipt takes the last send it can be,
/// the one before it the last send before that, and so on. So a lost
/// message does not shift every later pair onto an older send, and two
/// equal messages sent back to back and received later (a TimeoutNow
/// repeated) are two arrows. A message queued for a peer that is down
/// reaches the peer's next life once it reconnects, so lives do not limit
/// the pairing. Returns the receipt time by send index.
fn pair(sends: &[Sent], receipts: &[f64], skew_ms: f64) -> BTreeMap<usize, f64> {
    let mut pairs = BTreeMap::new();
    // Sends `..end` are still free.
    let mut end = sends.len();
    for &receipt in receipts.iter().rev() {
        while end > 0 && sends[end - 1].at > receipt + skew_ms {
            end -= 1;
        }
        // None left: this receipt and every earlier one have no send logged.
        let Some(last) = end.checked_sub(1) else {
            break;
        };
        pairs.insert(last, receipt);
        end = last;
    }
    pairs
}

/// The fate of a delivered send no receipt pairs with, sent at `at` to
/// `to`: lost if the receiver's life went down after it, or if a later
/// equal message on the link arrived; otherwise still on its way (a log
/// that just ends may be a running node's).
fn unreceived(at: f64, to: NodeId, lives: &BTreeMap<NodeId, Vec<Life>>, overtaken: bool) -> Fate {
    let down = lives.get(&to).and_then(|lives| {
        lives
            .iter()
            .rfind(|life| life.began <= at)
            .and_then(|life| match life.ended {
                Some(End::Down(end)) => Some(end.max(at)),
                Some(End::LogEnds) | None => None,
            })
    });
    if let Some(end) = down {
        Fate::Lost {
            at: end,
            reason: format!("{to} went down before stepping it"),
        }
    } else if overtaken {
        Fate::Lost {
            at,
            reason: format!("never stepped by {to}; a later equal message was"),
        }
    } else {
        Fate::InFlight
    }
}

/// Ends `life`, whose log stops without `stop`, at its last line.
fn end_killed(
    life: &mut Life,
    node: NodeId,
    marks: &mut Vec<Mark>,
    notes: &mut Vec<Note>,
    drawn: &mut Drawn,
) {
    let at = life.last_seen;
    life.ended = Some(End::Down(at));
    if !life.started {
        return;
    }
    drawn.killed += 1;
    marks.push(mark(at, node, MarkKind::Fault(Fault::Crash)));
    note(
        notes,
        at,
        format!(
            "{node}'s last line: its log ends without stop, so it was killed after \
             this (or was still running when read)"
        ),
    );
}

fn note(notes: &mut Vec<Note>, at: f64, text: String) {
    notes.push(Note {
        at,
        text,
        alarm: false,
    });
}

fn mark(at: f64, node: NodeId, kind: MarkKind) -> Mark {
    Mark { at, node, kind }
}

fn sent(at: f64, node: NodeId, to: NodeId, message: &Logged, fate: Fate) -> Mark {
    mark(
        at,
        node,
        MarkKind::Sent {
            to,
            message: message.label(),
            class: message.class(),
            fate,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T0: f64 = 1_700_000_000.0;

    /// A node line at `ms` after [`T0`] with `fields`.
    fn line(ms: f64, node: u8, term: u64, role: &str, fields: Value) -> String {
        let mut value = json!({
            "ts": T0 + ms / 1e3, "level": "DEBUG", "node": node, "term": term, "role": role,
        });
        if let (Value::Object(line), Value::Object(fields)) = (&mut value, fields) {
            line.extend(fields);
        }
        value.to_string()
    }

    fn start(ms: f64, node: u8) -> String {
        line(ms, node, 1, "follower", json!({"event": "start"}))
    }

    fn vote_request(ms: f64, from: u8, to: u8, event: &str) -> String {
        let (node, peer) = if event == "send" {
            (from, to)
        } else {
            (to, from)
        };
        line(
            ms,
            node,
            2,
            "candidate",
            json!({"event": event, "peer": peer, "message_type": "RequestVote",
                   "message_term": 2, "delivery": "delivered"}),
        )
    }

    #[test]
    fn step_save_and_sent_lines_read_back_as_what_the_node_did_and_draw_nothing() {
        let request = Message::RequestVote {
            term: Term(2),
            candidate_id: NodeId(2),
            last_log_index: 0,
            last_log_term: Term(0),
            leadership_transfer: false,
        };
        let wire = serde_json::to_string(&request).unwrap();
        let all = logs(&[
            line(
                0.0,
                1,
                1,
                "follower",
                json!({"event": "start", "restored_term": 1}),
            ),
            line(
                1.0,
                1,
                2,
                "follower",
                json!({"event": "save", "saved_term": 2, "saved_vote": 2}),
            ),
            line(
                2.0,
                1,
                2,
                "follower",
                json!({"event": "step", "input": "receive", "peer": 2,
                "wire": wire, "after_term": 2, "after_vote": 2, "after_role": "follower"}),
            ),
            line(
                3.0,
                1,
                2,
                "follower",
                json!({"event": "sent", "peer": 2,
                "wire": r#"{"RequestVoteResponse":{"term":2,"vote_granted":true}}"#}),
            ),
            line(
                4.0,
                1,
                2,
                "follower",
                json!({"event": "step", "input": "timeout",
                "timer": "check-quorum", "after_term": 2, "after_role": "follower"}),
            ),
        ]);
        assert!(all.skipped().is_empty(), "{}", all.skipped());
        let after = |voted_for| StepOutcome {
            current_term: Term(2),
            voted_for,
            role: Role::Follower,
            leader_id: None,
        };
        let n1 = NodeId(1);
        assert_eq!(
            all.replayed(),
            vec![
                (
                    n1,
                    Replayed::Started(HardState {
                        current_term: Term(1),
                        voted_for: None
                    })
                ),
                (
                    n1,
                    Replayed::Saved(HardState {
                        current_term: Term(2),
                        voted_for: Some(NodeId(2))
                    })
                ),
                (
                    n1,
                    Replayed::Stepped {
                        input: Input::Receive {
                            from: NodeId(2),
                            message: request
                        },
                        after: after(Some(NodeId(2))),
                    }
                ),
                (
                    n1,
                    Replayed::Sent {
                        to: NodeId(2),
                        message: Message::RequestVoteResponse {
                            term: Term(2),
                            vote_granted: true
                        },
                    }
                ),
                (
                    n1,
                    Replayed::Stepped {
                        input: Input::Timeout(Timer::CheckQuorum),
                        after: after(None),
                    }
                ),
            ]
        );
        let (timeline, _) = all.timeline("t", DEFAULT_SKEW_MS);
        assert!(arrows(&timeline).is_empty());
    }

    #[test]
    fn a_step_line_with_a_garbled_message_is_counted_not_replayed() {
        let all = logs(&[line(
            0.0,
            1,
            1,
            "follower",
            json!({"event": "step",
            "input": "receive", "peer": 2, "wire": "{\"Teleport\":{}}",
            "after_term": 1, "after_role": "follower"}),
        )]);
        assert_eq!(all.skipped().incomplete, 1);
        assert!(all.replayed().is_empty());
    }

    fn logs(lines: &[String]) -> NodeLogs {
        let mut logs = NodeLogs::default();
        let text = lines.join("\n");
        if logs.read_lines(text.as_bytes()).is_err() {
            panic!("reading from memory cannot fail");
        }
        logs
    }

    /// The timeline of n1 and n2, both started at 0 ms, then `lines`.
    fn two_nodes(lines: &[String]) -> (Timeline, Drawn) {
        let mut all = vec![start(0.0, 1), start(0.0, 2)];
        all.extend_from_slice(lines);
        logs(&all).timeline("t", DEFAULT_SKEW_MS)
    }

    /// `ms` to a microsecond: a `ts` near 1.7e9 s is exact to about 0.2 µs.
    fn us(ms: f64) -> f64 {
        (ms * 1e3).round() / 1e3
    }

    /// (sent, fate) of every arrow, in ms since the first line.
    fn arrows(timeline: &Timeline) -> Vec<(f64, Fate)> {
        timeline
            .events
            .iter()
            .filter_map(|mark| match &mark.kind {
                MarkKind::Sent { fate, .. } => {
                    let fate = match fate {
                        Fate::Delivered { at } => Fate::Delivered { at: us(*at) },
                        Fate::Lost { at, reason } => Fate::Lost {
                            at: us(*at),
                            reason: reason.clone(),
                        },
                        Fate::InFlight => Fate::InFlight,
                    };
                    Some((us(mark.at), fate))
                }
                _ => None,
            })
            .collect()
    }

    fn faults(timeline: &Timeline) -> Vec<(NodeId, f64, &'static str)> {
        timeline
            .events
            .iter()
            .filter_map(|mark| match &mark.kind {
                MarkKind::Fault(fault) => Some((mark.node, us(mark.at), fault.kind())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn garbage_lines_and_unknown_events_are_counted_and_node_lines_kept() {
        let lines = [
            start(0.0, 1),
            "Compiling raft-election v0.1.0".to_owned(),
            "{\"half\": ".to_owned(),
            json!({"msg": "another program's JSON"}).to_string(),
            json!({"ts": 5, "node": 1}).to_string(),
            json!({"ts": T0, "node": 300}).to_string(),
            line(1.0, 1, 1, "follower", json!({"event": "teleport"})),
            line(2.0, 1, 1, "follower", json!({"event": "teleport"})),
            line(3.0, 1, 1, "follower", json!({"event": 7})),
            line(4.0, 1, 1, "emperor", json!({})),
            line(5.0, 1, 1, "follower", json!({"event": "send", "peer": 2})),
            line(6.0, 1, 1, "follower", json!({"event": "timeout"})),
        ];
        let logs = logs(&lines);
        let skipped = logs.skipped();
        assert_eq!(skipped.not_json, 2, "{skipped:?}");
        assert_eq!(skipped.not_node, 3, "{skipped:?}");
        assert_eq!(skipped.bad_state, 1, "{skipped:?}");
        assert_eq!(skipped.incomplete, 1, "{skipped:?}");
        assert_eq!(
            skipped.unknown_events.get("teleport"),
            Some(&2),
            "{skipped:?}"
        );
        assert_eq!(skipped.unknown_events.get("7"), Some(&1), "{skipped:?}");
        assert_eq!(logs.lines.len(), 2);
        let text = skipped.to_string();
        assert!(text.contains("2 unknown event \"teleport\""), "{text}");
        let (timeline, _) = logs.timeline("t", DEFAULT_SKEW_MS);
        let ticks = timeline
            .events
            .iter()
            .filter(|m| m.kind == MarkKind::ElectionTimeout)
            .count();
        assert_eq!(ticks, 1);
    }

    #[test]
    fn a_line_longer_than_64_kib_is_skipped_and_the_next_one_read() {
        let long = format!("{{\"junk\": \"{}\"}}", "x".repeat(200_000));
        let logs = logs(&[start(0.0, 1), long, start(1.0, 2)]);
        assert_eq!(logs.skipped().not_json, 1);
        assert_eq!(logs.nodes(), [NodeId(1), NodeId(2)]);
    }

    #[test]
    fn a_receipt_logged_a_little_before_its_send_is_still_its_arrow() {
        // n2's clock runs 1.5 ms behind n1's: within the default skew.
        let (timeline, drawn) = two_nodes(&[
            vote_request(98.6, 1, 2, "receive"),
            vote_request(100.0, 1, 2, "send"),
        ]);
        assert_eq!(
            arrows(&timeline),
            [(100.0, Fate::Delivered { at: 100.0 })],
            "drawn as delivered when sent, never backwards"
        );
        assert_eq!(drawn.received, 1);
        assert_eq!(drawn.unmatched_receipts, 0);
    }

    #[test]
    fn a_receipt_logged_well_before_any_send_is_counted_not_drawn() {
        let (timeline, drawn) = two_nodes(&[
            vote_request(90.0, 1, 2, "receive"),
            vote_request(100.0, 1, 2, "send"),
        ]);
        assert_eq!(arrows(&timeline), [(100.0, Fate::InFlight)]);
        assert_eq!(drawn.unmatched_receipts, 1);
        assert_eq!(drawn.in_flight, 1);
    }

    /// A lost first copy must not shift the pairing: the receipt is the
    /// latest equal send's, and the older send was lost.
    #[test]
    fn a_receipt_pairs_with_the_latest_equal_send_and_the_older_one_is_lost() {
        let (timeline, drawn) = two_nodes(&[
            vote_request(100.0, 1, 2, "send"),
            vote_request(150.0, 1, 2, "send"),
            vote_request(150.3, 1, 2, "receive"),
        ]);
        let drawn_arrows = arrows(&timeline);
        assert!(
            matches!(drawn_arrows[0], (100.0, Fate::Lost { .. })),
            "{drawn_arrows:?}"
        );
        assert_eq!(drawn_arrows[1], (150.0, Fate::Delivered { at: 150.3 }));
        assert_eq!((drawn.received, drawn.lost), (1, 1));
    }

    /// A leader stopping sends TimeoutNow twice in a fraction of a
    /// millisecond; both arrive later: two arrows, neither lost.
    #[test]
    fn equal_messages_sent_back_to_back_and_received_late_are_each_an_arrow() {
        let timeout_now = |ms, event: &str| {
            let node = if event == "send" { 1 } else { 2 };
            let peer = 3 - node;
            line(
                ms,
                node,
                2,
                "leader",
                json!({"event": event, "peer": peer, "message_type": "TimeoutNow",
                       "message_term": 2, "delivery": "delivered"}),
            )
        };
        let (timeline, drawn) = two_nodes(&[
            timeout_now(633.5, "send"),
            timeout_now(633.6, "send"),
            timeout_now(649.3, "receive"),
            timeout_now(649.4, "receive"),
        ]);
        assert_eq!(
            arrows(&timeline),
            [
                (633.5, Fate::Delivered { at: 649.3 }),
                (633.6, Fate::Delivered { at: 649.4 })
            ]
        );
        assert_eq!((drawn.received, drawn.lost), (2, 0));
    }

    #[test]
    fn granted_and_rejected_votes_are_told_apart() {
        let answer = |ms, from: u8, to: u8, event: &str, granted| {
            let (node, peer) = if event == "send" {
                (from, to)
            } else {
                (to, from)
            };
            line(
                ms,
                node,
                2,
                "follower",
                json!({"event": event, "peer": peer, "message_type": "RequestVoteResponse",
                       "message_term": 2, "vote_granted": granted, "delivery": "delivered"}),
            )
        };
        let (timeline, drawn) = two_nodes(&[
            start(0.0, 3),
            answer(10.0, 2, 1, "send", true),
            answer(10.0, 3, 1, "send", false),
            // Equal but for the verdict: each receipt pairs with its own.
            answer(11.0, 3, 1, "receive", false),
            answer(11.0, 2, 1, "receive", true),
        ]);
        let classes: Vec<(NodeId, MessageClass, String)> = timeline
            .events
            .iter()
            .filter_map(|mark| match &mark.kind {
                MarkKind::Sent { class, message, .. } => Some((mark.node, *class, message.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            classes,
            [
                (
                    NodeId(2),
                    MessageClass::VoteGranted,
                    "RequestVoteResponse(t2, granted)".to_owned()
                ),
                (
                    NodeId(3),
                    MessageClass::VoteRejected,
                    "RequestVoteResponse(t2, rejected)".to_owned()
                ),
            ]
        );
        assert_eq!(drawn.received, 2);
    }

    #[test]
    fn a_killed_life_ends_at_its_last_line_a_second_start_is_a_restart_and_stop_ends_a_band() {
        let listen = |ms, node| {
            json!({"ts": T0 + ms / 1e3, "node": node, "level": "INFO", "event": "listen"})
                .to_string()
        };
        let lines = [
            listen(0.0, 1),
            start(1.0, 1),
            line(200.0, 1, 1, "leader", json!({"event": "role"})),
            // Killed here: the next lines are a new process's.
            listen(900.0, 1),
            start(901.0, 1),
            line(
                1000.0,
                1,
                1,
                "follower",
                json!({"event": "signal", "message": "SIGTERM: shutting down"}),
            ),
            line(1001.0, 1, 1, "follower", json!({"event": "stop"})),
            // After the stop: no band.
            line(1002.0, 1, 2, "candidate", json!({})),
        ];
        let (timeline, drawn) = logs(&lines).timeline("t", DEFAULT_SKEW_MS);
        let n1 = NodeId(1);
        assert_eq!(
            faults(&timeline),
            [
                (n1, 200.0, "crash"),
                (n1, 901.0, "restart"),
                (n1, 1001.0, "stop")
            ]
        );
        assert_eq!((drawn.killed, drawn.restarts, drawn.stopped), (1, 1, 1));
        let candidate = timeline.events.iter().any(|m| {
            matches!(
                m.kind,
                MarkKind::State {
                    role: Role::Candidate,
                    ..
                }
            )
        });
        assert!(!candidate, "a stopped node's late lines draw no band");
        let notes: Vec<&str> = timeline.notes.iter().map(|n| n.text.as_str()).collect();
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].contains("killed"), "{notes:?}");
        assert_eq!(notes[1], "n1: SIGTERM: shutting down");
        assert_eq!(notes[2], "n1 stopped");
    }

    #[test]
    fn a_message_queued_for_a_killed_node_pairs_with_its_next_life_and_one_never_stepped_is_lost() {
        let (timeline, drawn) = two_nodes(&[
            // n2's last line before it is killed.
            line(50.0, 2, 1, "follower", json!({})),
            vote_request(100.0, 1, 2, "send"),
            start(500.0, 2),
            // The queued message reaches n2's next life over a new connection.
            vote_request(510.0, 1, 2, "receive"),
            line(600.0, 2, 2, "follower", json!({"event": "stop"})),
            line(
                700.0,
                1,
                3,
                "candidate",
                json!({"event": "send", "peer": 2, "message_type": "RequestVote", "message_term": 3, "delivery": "delivered"}),
            ),
            line(
                701.0,
                1,
                3,
                "candidate",
                json!({"event": "send", "peer": 2, "message_type": "RequestVote", "message_term": 3, "delivery": "lost: node down"}),
            ),
        ]);
        let drawn_arrows = arrows(&timeline);
        assert_eq!(drawn_arrows[0], (100.0, Fate::Delivered { at: 510.0 }));
        assert!(
            matches!(&drawn_arrows[1], (700.0, Fate::Lost { reason, .. }) if reason.contains("went down")),
            "{drawn_arrows:?}"
        );
        assert!(
            matches!(&drawn_arrows[2], (701.0, Fate::Lost { reason, .. }) if reason == "lost: node down"),
            "{drawn_arrows:?}"
        );
        assert_eq!((drawn.received, drawn.lost, drawn.in_flight), (1, 2, 0));
    }

    #[test]
    fn heartbeats_to_a_node_that_does_not_log_their_receipt_are_counted_not_drawn() {
        let heartbeat = json!({"event": "send", "peer": 2, "message_type": "AppendEntries",
                               "message_term": 1, "delivery": "delivered"});
        let mut sent = line(10.0, 1, 1, "leader", heartbeat);
        sent = sent.replace("\"DEBUG\"", "\"TRACE\"");
        // n2 ran with -v: it logs debug lines, no trace.
        let lines = [start(0.0, 1), start(0.0, 2), sent];
        let (timeline, drawn) = logs(&lines).timeline("t", DEFAULT_SKEW_MS);
        assert!(arrows(&timeline).is_empty());
        assert_eq!(drawn.unlogged_receipts, 1);
        assert!(drawn.to_string().contains("-vv"), "{drawn}");
    }

    #[test]
    fn a_missing_file_and_a_file_without_node_lines_are_errors_naming_them() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let missing = dir.path().join("missing.log");
        let error = NodeLogs::read(std::slice::from_ref(&missing))
            .expect_err("a missing file")
            .to_string();
        assert!(error.contains("missing.log"), "{error}");
        let text = dir.path().join("text.log");
        std::fs::write(&text, "2024-01-01 INFO n1 t1 follower: hello\n").expect("written");
        let error = NodeLogs::read(std::slice::from_ref(&text))
            .expect_err("no node lines")
            .to_string();
        assert!(error.contains("text.log"), "{error}");
        assert!(error.contains("--log-format json"), "{error}");
        assert!(error.contains("1 not JSON"), "{error}");
    }
}
