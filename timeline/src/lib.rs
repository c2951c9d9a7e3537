//! Pictures of Raft elections as self-contained SVG, drawn from a plain
//! list of events: who held which role in which term, which messages went
//! where and what became of them, timeouts and faults.
//!
//! Two layouts of the same picture language:
//! - [`Axis::Milliseconds`], an **election timeline**: one horizontal lane
//!   per node, time to the right; the role as a coloured band with the term
//!   written on it; messages as arrows between lanes, coloured by kind
//!   (heartbeats thinned where they would crowd); election timeouts as ticks;
//!   faults as marks. The demo (`cargo run -- --timeline story.svg`) and
//!   `failover --timeline` draw the in-process cluster's event log this way.
//! - [`Axis::Steps`], a **message sequence diagram**: one column per node,
//!   one row per step downwards, every arrow labelled with its message, and
//!   each step's action written beside its row. The model checker's
//!   Explorer and `check --trace-svg` draw a path of the model this way.
//!
//! The events are plain data ([`Event`]), so any source can feed the
//! renderer: the runtime's event log, a model checker path, or a node's logs.
//! Messages are labelled with their `Display` text; [`MessageClass::of`]
//! picks the colour, and a message kind it does not know is drawn in
//! purple, labelled all the same.
//!
//! ```
//! use raft_election::{NodeId, Role, Term};
//! use raft_election_timeline::{Axis, Event, EventKind, Fate, MessageClass, Timeline};
//!
//! let (n0, n1) = (NodeId(0), NodeId(1));
//! let mut timeline = Timeline::new("two nodes", vec![n0, n1], Axis::Milliseconds);
//! let at = |at, node, kind| Event { at, node, kind };
//! timeline.events = vec![
//!     at(0.0, n0, EventKind::State { role: Role::Follower, term: Term(0) }),
//!     at(0.0, n1, EventKind::State { role: Role::Follower, term: Term(0) }),
//!     at(180.0, n0, EventKind::ElectionTimeout),
//!     at(180.0, n0, EventKind::State { role: Role::Candidate, term: Term(1) }),
//!     at(180.0, n0, EventKind::Sent {
//!         to: n1,
//!         message: "RequestVote(t1, candidate n0, log 0@t0)".into(),
//!         class: MessageClass::VoteRequest,
//!         fate: Fate::Delivered { at: 180.1 },
//!     }),
//! ];
//! let svg = timeline.to_svg();
//! assert!(svg.starts_with("<svg") && svg.contains("RequestVote(t1"));
//! ```
//!
//! # Layout
//!
//! - this file: the events ([`Timeline`], [`Event`], [`EventKind`],
//!   [`Fate`], [`Fault`], [`MessageClass`]);
//! - `render`: where each thing goes and what it looks like; the `svg` crate
//!   writes the document.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod render;

/// Whether a picture can be written to `path`, found out before a long run
/// that draws it at the end. Leaves the file system as it was: an existing
/// file is opened without truncating it, a new one is removed again.
pub fn check_writable(path: &std::path::Path) -> std::io::Result<()> {
    if path.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
    } else {
        std::fs::File::create(path)?;
        std::fs::remove_file(path)
    }
}

use raft_election::{Message, NodeId, Role, Term};
use std::fmt;

/// What the time axis counts, and so how the picture is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// Milliseconds, to the right; lanes one above the other. Message
    /// arrows carry their text as a tooltip, and heartbeats closer than a
    /// few pixels on the same link are drawn as one arrow with a count.
    Milliseconds,
    /// Steps of a model checker's path, downwards; lanes side by side. Every
    /// arrow is labelled, and each note is written beside its step's row.
    Steps,
}

/// Everything one picture shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    /// Written at the top.
    pub title: String,
    /// One lane per node, in this order. Events of other nodes are ignored.
    pub nodes: Vec<NodeId>,
    /// What [`Event::at`] counts.
    pub axis: Axis,
    /// What happened, in any order.
    pub events: Vec<Event>,
    /// Marks on the time axis: the story's steps, or a path's actions.
    pub notes: Vec<Note>,
}

/// A mark on the time axis with its text: numbered on the axis and listed
/// under a timeline; written beside its row in a sequence diagram.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    /// Where on the time axis.
    pub at: f64,
    /// What to write.
    pub text: String,
    /// Drawn in red: a broken invariant, a failed step.
    pub alarm: bool,
}

/// Something that happened at one node.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// When, in the unit of the timeline's [`Axis`].
    pub at: f64,
    /// Where: the node's lane.
    pub node: NodeId,
    /// What.
    pub kind: EventKind,
}

/// The kinds of [`Event`].
#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// From now on the node has `role` in `term` (at its start, and at every
    /// change of either). Drawn as a band until the next state or a crash.
    State {
        /// The role.
        role: Role,
        /// The term.
        term: Term,
    },
    /// The node's election timer fired.
    ElectionTimeout,
    /// The node sent a message to `to`: an arrow, or a stub if it never
    /// arrived. A message delivered twice is two events.
    Sent {
        /// The receiver.
        to: NodeId,
        /// The message's text (its `Display`): the arrow's label or tooltip.
        message: String,
        /// Its colour.
        class: MessageClass,
        /// What became of it.
        fate: Fate,
    },
    /// A fault hit the node.
    Fault(Fault),
}

/// What became of a sent message.
#[derive(Clone, Debug, PartialEq)]
pub enum Fate {
    /// Its receiver stepped it at `at`.
    Delivered {
        /// When.
        at: f64,
    },
    /// Lost at `at` (or when sent, if `at` is the sending time): a cut
    /// link, a crashed receiver, a lossy network.
    Lost {
        /// When the loss happened.
        at: f64,
        /// Why, for the tooltip.
        reason: String,
    },
    /// Still on its way when the picture ends.
    InFlight,
}

/// The colour of a message arrow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageClass {
    /// A candidate asks for a vote (RequestVote).
    VoteRequest,
    /// A vote granted.
    VoteGranted,
    /// A vote refused.
    VoteRejected,
    /// A leader's heartbeat (AppendEntries without entries).
    Heartbeat,
    /// The answer to a heartbeat.
    HeartbeatResponse,
    /// Any other kind of message.
    Other,
}

impl MessageClass {
    /// The class of `message`. Written with `matches!` rather than an
    /// exhaustive `match`, so a new message kind compiles here unchanged and
    /// is drawn as [`Self::Other`].
    #[must_use]
    pub fn of(message: &Message) -> Self {
        if matches!(message, Message::RequestVote { .. }) {
            Self::VoteRequest
        } else if matches!(
            message,
            Message::RequestVoteResponse {
                vote_granted: true,
                ..
            }
        ) {
            Self::VoteGranted
        } else if matches!(message, Message::RequestVoteResponse { .. }) {
            Self::VoteRejected
        } else if matches!(message, Message::AppendEntries { .. }) {
            Self::Heartbeat
        } else if matches!(message, Message::AppendEntriesResponse { .. }) {
            Self::HeartbeatResponse
        } else {
            Self::Other
        }
    }

    /// Heartbeats and their answers are the only messages thinned on a
    /// crowded timeline: every vote matters to the story.
    #[must_use]
    pub fn is_heartbeat(self) -> bool {
        matches!(self, Self::Heartbeat | Self::HeartbeatResponse)
    }

    /// The legend's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::VoteRequest => "RequestVote",
            Self::VoteGranted => "vote granted",
            Self::VoteRejected => "vote rejected",
            Self::Heartbeat => "heartbeat",
            Self::HeartbeatResponse => "heartbeat response",
            Self::Other => "other",
        }
    }
}

/// A fault, in the vocabulary of the runtime, the simulator and the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The node crashed: its band ends here.
    Crash,
    /// The node stopped as asked (a graceful shutdown): its band ends here.
    Stop,
    /// The node restarted from its stable storage.
    Restart,
    /// A partition put the node in group `group` (0 for the first group
    /// given, written A, B, ...), or in none (`None`): cut off from everyone.
    Partition {
        /// Its group.
        group: Option<u8>,
    },
    /// Every link is open again.
    Heal,
    /// The link from this node to `to` now loses everything (one way).
    Cut {
        /// The other end.
        to: NodeId,
    },
    /// The link from this node to `to` now loses, duplicates or delays some
    /// messages.
    FaultyLink {
        /// The other end.
        to: NodeId,
    },
    /// The link from this node to `to` is faultless again.
    LinkRestored {
        /// The other end.
        to: NodeId,
    },
    /// The node was cut off from everyone while running.
    Disconnect,
    /// The node was connected again.
    Connect,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Crash => f.write_str("crash"),
            Self::Stop => f.write_str("stop"),
            Self::Restart => f.write_str("restart"),
            Self::Partition { group: Some(group) } => {
                let letter = char::from(b'A'.saturating_add(group.min(25)));
                write!(f, "partition {letter}")
            }
            Self::Partition { group: None } => f.write_str("partition: alone"),
            Self::Heal => f.write_str("heal"),
            Self::Cut { to } => write!(f, "cut ->{to}"),
            Self::FaultyLink { to } => write!(f, "faulty ->{to}"),
            Self::LinkRestored { to } => write!(f, "open ->{to}"),
            Self::Disconnect => f.write_str("disconnect"),
            Self::Connect => f.write_str("connect"),
        }
    }
}

impl Fault {
    /// A short name for the `data-fault` attribute of its mark.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Crash => "crash",
            Self::Stop => "stop",
            Self::Restart => "restart",
            Self::Partition { .. } => "partition",
            Self::Heal => "heal",
            Self::Cut { .. } => "cut",
            Self::FaultyLink { .. } => "faulty-link",
            Self::LinkRestored { .. } => "link-restored",
            Self::Disconnect => "disconnect",
            Self::Connect => "connect",
        }
    }
}

impl Timeline {
    /// An empty picture of `nodes` on `axis`.
    #[must_use]
    pub fn new(title: impl Into<String>, nodes: Vec<NodeId>, axis: Axis) -> Self {
        Self {
            title: title.into(),
            nodes,
            axis,
            events: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The picture as a self-contained SVG document: no script, no external
    /// style or font, so it opens in any browser and embeds in any page.
    /// Events at times that are not numbers or beyond 10^12 (about 30
    /// years in milliseconds) are left out; a sequence diagram shows at
    /// most 1,000 steps.
    #[must_use]
    pub fn to_svg(&self) -> String {
        render::render(self)
    }
}
