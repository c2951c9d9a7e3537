//! A real cluster's node logs as a timeline picture: what
//! `raft-election timeline --out FILE.svg LOG...` draws.
//!
//! Each node process (`raft-election node --log-format json`) writes one
//! JSON object a line on stderr, read back as a typed
//! [`LogLine`]: its `ts`, `node`, once it runs
//! its `term` and `role`, and the typed fact it carries, one of the node's
//! records or an event of its process. This module reads those lines from
//! any number of files (one per node, or mixed: the `node` field says whose
//! a line is) and turns them into a [`raft_election_timeline::Timeline`]:
//!
//! - every line's `term` and `role` are the node's state when it was
//!   written, so the bands follow them;
//! - a step on an election timeout is a timeout tick;
//! - each sent record is paired with the step that received an equal
//!   message on the other node: as many pairs as can be, in order, each
//!   receipt with the latest send it can be, and a receipt logged up to a
//!   small skew before its send still its (the processes' clocks differ);
//! - a start after the node's first is a restart; a stop (SIGTERM, or the
//!   server failing) and a life whose last line is not a stop (killed) end
//!   the node's band with a crash mark, and are named in the notes, as are
//!   signals, failures and hand-overs.
//!
//! Lines that are not JSON, JSON lines that are not a node's (no `ts` or
//! `node`) and facts this version does not know are counted and reported,
//! never fatal: a log file collects whatever the process printed.

use crate::log_lines::{Fact, Level, LogLine, NodeEvent, Unreadable};
use crate::timeline::set_state;
use raft_election::{Input, Message, NodeId, Record, Role, Term, Timer};
use raft_election_runtime::Delivery;
use raft_election_timeline::{
    Axis, Event as Mark, EventKind as MarkKind, Fate, Fault, MessageClass, Note, Timeline,
};
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
    /// Records and events this version does not know (or garbled ones),
    /// by kind.
    pub unknown_facts: BTreeMap<String, usize>,
}

impl Skipped {
    /// Whether nothing was skipped.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn count(&mut self, why: Unreadable) {
        match why {
            Unreadable::NotJson => self.not_json += 1,
            Unreadable::NotNode => self.not_node += 1,
            Unreadable::BadState => self.bad_state += 1,
            Unreadable::UnknownFact(kind) => *self.unknown_facts.entry(kind).or_default() += 1,
        }
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
        for (kind, n) in &self.unknown_facts {
            parts.push(format!("{n} unknown {kind:?}"));
        }
        if parts.is_empty() {
            f.write_str("nothing")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// Heartbeats and their answers are logged at trace level (`-vv`), other
/// messages at debug (`-v`): what a node must log for its sends and
/// receipts of `message` to be drawn.
fn needs(message: &Message) -> Level {
    if message.is_heartbeat() {
        Level::Trace
    } else {
        Level::Debug
    }
}

/// What a line says happened, for the picture.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Drawable<'a> {
    /// The node's server starts (a new life).
    Start,
    /// Its election timer fired.
    Timeout,
    /// It sent `message` to `peer`, and the transport did `delivery`.
    Send {
        peer: NodeId,
        message: &'a Message,
        delivery: Delivery,
    },
    /// It stepped `message` from `peer`.
    Receive { peer: NodeId, message: &'a Message },
    /// Something its process did.
    Event(&'a NodeEvent),
    /// Nothing beyond the line's state.
    Nothing,
}

impl<'a> Drawable<'a> {
    fn of(line: &'a LogLine) -> Self {
        match &line.fact {
            Fact::Record(Record::Started(_), _) => Self::Start,
            Fact::Record(Record::Sent { to, message }, delivery) => Self::Send {
                peer: *to,
                message,
                delivery: delivery.unwrap_or(Delivery::Delivered),
            },
            Fact::Record(Record::Stepped { input, .. }, _) => match input {
                Input::Timeout(Timer::Election) => Self::Timeout,
                Input::Receive { from, message } => Self::Receive {
                    peer: *from,
                    message,
                },
                _ => Self::Nothing,
            },
            Fact::Event(event) => Self::Event(event),
            Fact::Record(Record::Saved(_), _)
            | Fact::Connection(_)
            | Fact::Suppressed(_)
            | Fact::None => Self::Nothing,
        }
    }
}

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
            let read = read_piece(&mut reader, &mut buffer)?;
            if read == 0 {
                return Ok(());
            }
            if buffer.last() != Some(&b'\n') && read as u64 == MAX_LINE_BYTES {
                // Too long: skip to the end of the line, a bounded piece at a time.
                self.skipped.not_json += 1;
                loop {
                    let rest = read_piece(&mut reader, &mut buffer)?;
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
        match LogLine::parse(text) {
            Ok(line) => self.lines.push(line),
            Err(why) => self.skipped.count(why),
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

    /// Every record of the lines, each with its node, in the order they
    /// were written: by time across files, in file order within one (a
    /// node's lines are written in order). With `--log-steps` these are
    /// every start, step, save and send: what trace validation replays.
    #[must_use]
    pub fn records(&self) -> Vec<(NodeId, Record)> {
        let mut lines: Vec<&LogLine> = self
            .lines
            .iter()
            .filter(|line| line.record().is_some())
            .collect();
        lines.sort_by(|a, b| a.ts.total_cmp(&b.ts));
        lines
            .into_iter()
            .filter_map(|line| Some((line.node, *line.record()?)))
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

/// Reads into `buffer`, emptied first, up to and with the next newline but
/// at most [`MAX_LINE_BYTES`]; returns how many bytes it read, 0 at the end.
fn read_piece(reader: &mut impl BufRead, buffer: &mut Vec<u8>) -> Result<usize, ReadError> {
    buffer.clear();
    reader
        .by_ref()
        .take(MAX_LINE_BYTES)
        .read_until(b'\n', buffer)
        .map_err(ReadError::Io)
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

/// One link's equal messages: (from, to, message).
type Link = (NodeId, NodeId, Message);

/// A timeline being drawn from node lines, in time order.
struct Drawing {
    /// The most verbose level each node logs at.
    verbosity: BTreeMap<NodeId, Level>,
    marks: Vec<Mark>,
    notes: Vec<Note>,
    drawn: Drawn,
    /// Every node's lives so far, the current one last.
    lives: BTreeMap<NodeId, Vec<Life>>,
    states: BTreeMap<NodeId, (Role, Term, usize)>,
    sends: BTreeMap<Link, Vec<Sent>>,
    /// Receipt times by link and message.
    receipts: BTreeMap<Link, Vec<f64>>,
}

fn draw(logs: &NodeLogs, title: &str, skew_ms: f64) -> (Timeline, Drawn) {
    let mut lines: Vec<&LogLine> = logs.lines.iter().collect();
    // Stable: lines of one instant keep their order in the file.
    lines.sort_by(|a, b| a.ts.total_cmp(&b.ts));
    let t0 = lines.first().map_or(0.0, |l| l.ts);
    let nodes = logs.nodes();
    let mut timeline = Timeline::new(
        format!("{title} (0 ms = {t0:.3} s since the Unix epoch)"),
        nodes.clone(),
        Axis::Milliseconds,
    );
    let mut drawing = Drawing {
        verbosity: lines.iter().fold(BTreeMap::new(), |mut most, line| {
            let level = most.entry(line.node).or_insert(Level::Info);
            *level = (*level).min(line.level);
            most
        }),
        marks: Vec::new(),
        notes: Vec::new(),
        drawn: Drawn {
            nodes: nodes.len(),
            ..Drawn::default()
        },
        lives: BTreeMap::new(),
        states: BTreeMap::new(),
        sends: BTreeMap::new(),
        receipts: BTreeMap::new(),
    };
    for line in lines {
        drawing.line(line, (line.ts - t0) * 1e3);
    }
    drawing.end_lives();
    drawing.pair_messages(skew_ms);
    let Drawing {
        marks,
        mut notes,
        drawn,
        ..
    } = drawing;
    notes.sort_by(|a, b| a.at.total_cmp(&b.at));
    timeline.events = marks;
    timeline.notes = notes;
    (timeline, drawn)
}

impl Drawing {
    /// Whether `node` logs sends and receipts of `message`.
    fn logs(&self, node: NodeId, message: &Message) -> bool {
        self.verbosity
            .get(&node)
            .is_some_and(|&v| v <= needs(message))
    }

    /// One line, `at` ms since the first.
    fn line(&mut self, line: &LogLine, at: f64) {
        let node = line.node;
        let what = Drawable::of(line);
        let node_lives = self.lives.entry(node).or_default();
        // A new process: its first lines carry no state yet, and its
        // server starts again. The old life ended unseen: killed.
        let new_life = match node_lives.last() {
            None => true,
            Some(life) => life.started && (line.state.is_none() || what == Drawable::Start),
        };
        if new_life {
            if let Some(life) = node_lives.last_mut() {
                if life.ended.is_none() {
                    end_killed(
                        life,
                        node,
                        &mut self.marks,
                        &mut self.notes,
                        &mut self.drawn,
                    );
                }
            }
            node_lives.push(Life::new(at));
            self.states.remove(&node);
        }
        let restart = node_lives.len() > 1;
        let Some(life) = node_lives.last_mut() else {
            return;
        };
        if what == Drawable::Start {
            life.started = true;
            if restart {
                self.drawn.restarts += 1;
                self.marks
                    .push(mark(at, node, MarkKind::Fault(Fault::Restart)));
            }
        }
        if !life.up() {
            // Before its server runs or after it stopped: no band, and
            // what it says then is about no step of the node; but a
            // process that fails before it starts says why.
            if let Drawable::Event(NodeEvent::Failed { reason }) = what {
                note(&mut self.notes, at, format!("{node} failed: {reason}"));
            }
            return;
        }
        if let Some((term, role)) = line.state {
            life.last_seen = at;
            set_state(&mut self.marks, &mut self.states, at, node, role, term);
        }
        self.what(node, at, what);
    }

    /// What a line of a running node says happened, `at` ms.
    fn what(&mut self, node: NodeId, at: f64, what: Drawable<'_>) {
        match what {
            Drawable::Timeout => self.marks.push(mark(at, node, MarkKind::ElectionTimeout)),
            Drawable::Send {
                peer,
                message,
                delivery,
            } => self.send(node, at, peer, message, delivery),
            // A receipt whose sender logs no sends of its kind has no send
            // to pair with: it is not drawn, nor counted as unmatched.
            Drawable::Receive { peer, message }
                if self.logs(peer, message) && self.logs(node, message) =>
            {
                let link = (peer, node, *message);
                self.receipts.entry(link).or_default().push(at);
            }
            Drawable::Event(event) => self.event(node, at, event),
            Drawable::Receive { .. } | Drawable::Start | Drawable::Nothing => {}
        }
    }

    fn send(&mut self, node: NodeId, at: f64, peer: NodeId, message: &Message, delivery: Delivery) {
        if delivery != Delivery::Delivered {
            self.drawn.lost += 1;
            let reason = delivery.to_string();
            let fate = Fate::Lost { at, reason };
            self.marks.push(sent(at, node, peer, message, fate));
        } else if !self.logs(peer, message) {
            self.drawn.unlogged_receipts += 1;
        } else {
            let index = self.marks.len();
            self.marks
                .push(sent(at, node, peer, message, Fate::InFlight));
            let link = (node, peer, *message);
            self.sends.entry(link).or_default().push(Sent { at, index });
        }
    }

    fn event(&mut self, node: NodeId, at: f64, event: &NodeEvent) {
        let notes = &mut self.notes;
        match event {
            NodeEvent::Signal { .. }
            | NodeEvent::TransferAsked { .. }
            | NodeEvent::ProgramDraining { .. } => note(notes, at, format!("{node}: {event}")),
            NodeEvent::HandedOver { successor } => note(
                notes,
                at,
                format!("{node} handed its leadership to {successor}"),
            ),
            NodeEvent::Stopped { .. } | NodeEvent::Failed { .. } => {
                let (fault, text) = match event {
                    NodeEvent::Failed { reason } => {
                        (Fault::Crash, format!("{node} failed: {reason}"))
                    }
                    _ => (Fault::Stop, format!("{node} stopped")),
                };
                if let Some(life) = self.lives.get_mut(&node).and_then(|l| l.last_mut()) {
                    life.ended = Some(End::Down(at));
                }
                self.drawn.stopped += 1;
                self.marks.push(mark(at, node, MarkKind::Fault(fault)));
                note(notes, at, text);
            }
            NodeEvent::Listening { .. }
            | NodeEvent::Timing(_)
            | NodeEvent::Ready { .. }
            | NodeEvent::StatusServing { .. }
            | NodeEvent::ProgramStarted { .. }
            | NodeEvent::ProgramStopping { .. }
            | NodeEvent::ProgramExited { .. }
            | NodeEvent::ProgramError { .. }
            | NodeEvent::InsecurePlaintext { .. }
            | NodeEvent::TlsReloaded { .. }
            | NodeEvent::TlsReloadFailed { .. } => {}
        }
    }

    /// A life whose log ends while it runs was killed, or still runs.
    fn end_lives(&mut self) {
        for (&node, node_lives) in &mut self.lives {
            if let Some(life) = node_lives.last_mut().filter(|life| life.up()) {
                end_killed(
                    life,
                    node,
                    &mut self.marks,
                    &mut self.notes,
                    &mut self.drawn,
                );
                life.ended = Some(End::LogEnds);
            }
        }
    }

    /// Each send paired with its receipt, if it has one: its arrow's fate.
    fn pair_messages(&mut self, skew_ms: f64) {
        for (link, link_sends) in &self.sends {
            let link_receipts = self.receipts.remove(link).unwrap_or_default();
            let pairs = pair(link_sends, &link_receipts, skew_ms);
            self.drawn.unmatched_receipts += link_receipts.len() - pairs.len();
            self.drawn.received += pairs.len();
            let last_paired = pairs.keys().next_back().copied();
            for (i, send) in link_sends.iter().enumerate() {
                let fate = match pairs.get(&i) {
                    Some(&receipt) => Fate::Delivered {
                        at: receipt.max(send.at),
                    },
                    None => {
                        let overtaken = last_paired.is_some_and(|p| p > i);
                        let fate = unreceived(send.at, link.1, &self.lives, overtaken);
                        if matches!(fate, Fate::Lost { .. }) {
                            self.drawn.lost += 1;
                        } else {
                            self.drawn.in_flight += 1;
                        }
                        fate
                    }
                };
                if let MarkKind::Sent {
                    fate: drawn_fate, ..
                } = &mut self.marks[send.index].kind
                {
                    *drawn_fate = fate;
                }
            }
        }
        self.drawn.unmatched_receipts += self.receipts.values().map(Vec::len).sum::<usize>();
    }
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

fn sent(at: f64, node: NodeId, to: NodeId, message: &Message, fate: Fate) -> Mark {
    mark(
        at,
        node,
        MarkKind::Sent {
            to,
            message: message.to_string(),
            class: MessageClass::of(message),
            fate,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_election::{Change, HardState, Summary};
    use raft_election_runtime::Json;
    use serde_json::{Value, json};

    const T0: f64 = 1_700_000_000.0;

    /// A node line at `ms` after [`T0`] at `level`, with `fields`.
    fn line_at(ms: f64, node: u8, state: (u64, &str), level: &str, fields: Value) -> String {
        let mut value = json!({
            "ts": T0 + ms / 1e3, "level": level, "node": node,
            "term": state.0, "role": state.1,
        });
        if let (Value::Object(line), Value::Object(fields)) = (&mut value, fields) {
            line.extend(fields);
        }
        value.to_string()
    }

    /// A DEBUG node line, as a node run with `-v` writes most of them.
    fn line(ms: f64, node: u8, term: u64, role: &str, fields: Value) -> String {
        line_at(ms, node, (term, role), "DEBUG", fields)
    }

    /// `value` as the JSON a log line embeds.
    fn embedded<T: serde::Serialize>(value: &T) -> Value {
        serde_json::from_str(&Json(value).to_string()).expect("its own JSON")
    }

    fn record_line(ms: f64, node: u8, term: u64, role: &str, record: Record) -> String {
        line(ms, node, term, role, json!({"record": embedded(&record)}))
    }

    fn event_line(ms: f64, node: u8, term: u64, role: &str, event: NodeEvent) -> String {
        line(ms, node, term, role, json!({"event": embedded(&event)}))
    }

    fn sent_line(
        ms: f64,
        node: u8,
        state: (u64, &str),
        to: u8,
        message: Message,
        delivery: Delivery,
    ) -> String {
        let record = Record::Sent {
            to: NodeId(to),
            message,
        };
        let fields = json!({"record": embedded(&record), "delivery": embedded(&delivery)});
        line(ms, node, state.0, state.1, fields)
    }

    fn received_line(ms: f64, node: u8, state: (u64, &str), from: u8, message: Message) -> String {
        let record = Record::Stepped {
            input: Input::Receive {
                from: NodeId(from),
                message,
            },
            after: Summary::default(),
            change: Change::default(),
        };
        record_line(ms, node, state.0, state.1, record)
    }

    /// A clean stop's event.
    fn stopped() -> NodeEvent {
        NodeEvent::Stopped {
            round_trips: 0,
            round_trip_p50_us: None,
            round_trip_p99_us: None,
            error: None,
        }
    }

    fn start(ms: f64, node: u8) -> String {
        let record = Record::Started(HardState {
            current_term: Term(1),
            voted_for: None,
        });
        line_at(
            ms,
            node,
            (1, "follower"),
            "INFO",
            json!({"record": embedded(&record)}),
        )
    }

    fn vote_request_message(from: u8) -> Message {
        Message::RequestVote {
            term: Term(2),
            candidate_id: NodeId(from),
            last_log_index: 0,
            last_log_term: Term(0),
            leadership_transfer: false,
        }
    }

    fn vote_request(ms: f64, from: u8, to: u8, event: &str) -> String {
        let message = vote_request_message(from);
        if event == "send" {
            sent_line(ms, from, (2, "candidate"), to, message, Delivery::Delivered)
        } else {
            received_line(ms, to, (2, "follower"), from, message)
        }
    }

    #[test]
    fn record_lines_read_back_as_what_the_node_did_in_order() {
        let request = vote_request_message(2);
        let grant = Message::RequestVoteResponse {
            term: Term(2),
            vote_granted: true,
        };
        let voted = HardState {
            current_term: Term(2),
            voted_for: Some(NodeId(2)),
        };
        let stepped = Record::Stepped {
            input: Input::Receive {
                from: NodeId(2),
                message: request,
            },
            after: Summary {
                current_term: Term(2),
                voted_for: Some(NodeId(2)),
                role: Role::Follower,
                leader_id: None,
            },
            change: Change {
                term_from: Some(Term(1)),
                vote: Some(NodeId(2)),
                ..Change::default()
            },
        };
        let started = Record::Started(HardState {
            current_term: Term(1),
            voted_for: None,
        });
        let all = logs(&[
            // Out of order across the file: read back in time order.
            record_line(2.0, 1, 2, "follower", stepped),
            record_line(0.0, 1, 1, "follower", started),
            record_line(1.0, 1, 2, "follower", Record::Saved(voted)),
            sent_line(3.0, 1, (2, "follower"), 2, grant, Delivery::Delivered),
        ]);
        assert!(all.skipped().is_empty(), "{}", all.skipped());
        let n1 = NodeId(1);
        let sent = Record::Sent {
            to: NodeId(2),
            message: grant,
        };
        assert_eq!(
            all.records(),
            vec![
                (n1, started),
                (n1, Record::Saved(voted)),
                (n1, stepped),
                (n1, sent)
            ]
        );
    }

    #[test]
    fn a_record_line_with_a_garbled_message_is_counted_not_read() {
        let all = logs(&[
            start(0.0, 1),
            line(
                1.0,
                1,
                1,
                "follower",
                json!({"record": {"sent": {"to": 2, "message": {"Teleport": {}}}}}),
            ),
        ]);
        assert_eq!(all.skipped().unknown_facts.get("sent"), Some(&1));
        assert_eq!(all.records().len(), 1, "the start alone");
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
    fn garbage_lines_and_unknown_facts_are_counted_and_node_lines_kept() {
        let timeout = Record::Stepped {
            input: Input::Timeout(Timer::Election),
            after: Summary::default(),
            change: Change::default(),
        };
        let lines = [
            start(0.0, 1),
            "Compiling raft-election v0.1.0".to_owned(),
            "{\"half\": ".to_owned(),
            json!({"msg": "another program's JSON"}).to_string(),
            json!({"ts": 5, "node": 1}).to_string(),
            json!({"ts": T0, "node": 300}).to_string(),
            line(1.0, 1, 1, "follower", json!({"event": {"teleport": {}}})),
            line(2.0, 1, 1, "follower", json!({"event": {"teleport": {}}})),
            line(3.0, 1, 1, "follower", json!({"event": 7})),
            line(4.0, 1, 1, "emperor", json!({})),
            record_line(6.0, 1, 1, "follower", timeout),
        ];
        let logs = logs(&lines);
        let skipped = logs.skipped();
        assert_eq!(skipped.not_json, 2, "{skipped:?}");
        assert_eq!(skipped.not_node, 3, "{skipped:?}");
        assert_eq!(skipped.bad_state, 1, "{skipped:?}");
        assert_eq!(
            skipped.unknown_facts.get("teleport"),
            Some(&2),
            "{skipped:?}"
        );
        assert_eq!(skipped.unknown_facts.get("7"), Some(&1), "{skipped:?}");
        assert_eq!(logs.lines.len(), 2);
        let text = skipped.to_string();
        assert!(text.contains("2 unknown \"teleport\""), "{text}");
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

    /// A receipt logged before its send, by a clock behind the sender's:
    /// 1.4 ms before is within the default skew, so it is the send's arrow,
    /// drawn as delivered when sent, never backwards; 10 ms before is not,
    /// so it is counted unmatched and the send stays in flight.
    #[test]
    fn a_receipt_logged_before_its_send_is_its_arrow_within_the_skew_and_counted_beyond() {
        for (received_at, fate, (received, unmatched, in_flight)) in [
            (98.6, Fate::Delivered { at: 100.0 }, (1, 0, 0)),
            (90.0, Fate::InFlight, (0, 1, 1)),
        ] {
            let (timeline, drawn) = two_nodes(&[
                vote_request(received_at, 1, 2, "receive"),
                vote_request(100.0, 1, 2, "send"),
            ]);
            assert_eq!(arrows(&timeline), [(100.0, fate)], "{received_at} ms");
            assert_eq!(
                (drawn.received, drawn.unmatched_receipts, drawn.in_flight),
                (received, unmatched, in_flight),
                "{received_at} ms"
            );
        }
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
        let timeout_now = Message::TimeoutNow { term: Term(2) };
        let send = |ms| sent_line(ms, 1, (2, "leader"), 2, timeout_now, Delivery::Delivered);
        let receive = |ms| received_line(ms, 2, (2, "follower"), 1, timeout_now);
        let (timeline, drawn) =
            two_nodes(&[send(633.5), send(633.6), receive(649.3), receive(649.4)]);
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
        let answer = |granted| Message::RequestVoteResponse {
            term: Term(2),
            vote_granted: granted,
        };
        let state = (2, "follower");
        let (timeline, drawn) = two_nodes(&[
            start(0.0, 3),
            sent_line(10.0, 2, state, 1, answer(true), Delivery::Delivered),
            sent_line(10.0, 3, state, 1, answer(false), Delivery::Delivered),
            // Equal but for the verdict: each receipt pairs with its own.
            received_line(11.0, 1, state, 3, answer(false)),
            received_line(11.0, 1, state, 2, answer(true)),
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
            json!({"ts": T0 + ms / 1e3, "node": node, "level": "INFO", "message": "listening"})
                .to_string()
        };
        let leader = Record::Stepped {
            input: Input::Timeout(Timer::Election),
            after: Summary::default(),
            change: Change {
                role_from: Some(Role::Candidate),
                ..Change::default()
            },
        };
        let signal = NodeEvent::Signal {
            signal: "SIGTERM".to_owned(),
        };
        let lines = [
            listen(0.0, 1),
            start(1.0, 1),
            record_line(200.0, 1, 1, "leader", leader),
            // Killed here: the next lines are a new process's.
            listen(900.0, 1),
            start(901.0, 1),
            event_line(1000.0, 1, 1, "follower", signal),
            event_line(1001.0, 1, 1, "follower", stopped()),
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
        let later = Message::RequestVote {
            term: Term(3),
            candidate_id: NodeId(1),
            last_log_index: 0,
            last_log_term: Term(0),
            leadership_transfer: false,
        };
        let (timeline, drawn) = two_nodes(&[
            // n2's last line before it is killed.
            line(50.0, 2, 1, "follower", json!({})),
            vote_request(100.0, 1, 2, "send"),
            start(500.0, 2),
            // The queued message reaches n2's next life over a new connection.
            vote_request(510.0, 1, 2, "receive"),
            event_line(600.0, 2, 2, "follower", stopped()),
            sent_line(700.0, 1, (3, "candidate"), 2, later, Delivery::Delivered),
            sent_line(701.0, 1, (3, "candidate"), 2, later, Delivery::Down),
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
        let heartbeat = Message::AppendEntries {
            term: Term(1),
            leader_id: NodeId(1),
            round: 0,
        };
        let record = Record::Sent {
            to: NodeId(2),
            message: heartbeat,
        };
        let sent = line_at(
            10.0,
            1,
            (1, "leader"),
            "TRACE",
            json!({"record": embedded(&record), "delivery": "delivered"}),
        );
        // n2 ran with -v: it logs debug lines, no trace.
        let debug = line(5.0, 2, 1, "follower", json!({}));
        let lines = [start(0.0, 1), start(0.0, 2), debug, sent];
        let (timeline, drawn) = logs(&lines).timeline("t", DEFAULT_SKEW_MS);
        assert!(arrows(&timeline).is_empty());
        assert_eq!(drawn.unlogged_receipts, 1);
        assert!(drawn.to_string().contains("-vv"), "{drawn}");
    }

    #[test]
    fn a_receipt_logged_at_info_from_a_sender_that_logs_no_sends_is_not_drawn_nor_unmatched() {
        // Both nodes run at info: a vote that changed n2 is logged, its
        // request's send is not.
        let receipt = line_at(
            10.0,
            2,
            (2, "follower"),
            "INFO",
            json!({"record": embedded(&Record::Stepped {
                input: Input::Receive { from: NodeId(1), message: vote_request_message(1) },
                after: Summary::default(),
                change: Change { vote: Some(NodeId(1)), ..Change::default() },
            })}),
        );
        let (timeline, drawn) =
            logs(&[start(0.0, 1), start(0.0, 2), receipt]).timeline("t", DEFAULT_SKEW_MS);
        assert!(arrows(&timeline).is_empty());
        assert_eq!((drawn.received, drawn.unmatched_receipts), (0, 0));
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
