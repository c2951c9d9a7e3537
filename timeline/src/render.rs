//! Where each thing of a [`Timeline`] goes, and what it looks like.
//!
//! Positions are computed on two axes, *along* (time) and *across* (lanes),
//! and turned into x and y by the layout: a timeline runs time to the right,
//! a sequence diagram downwards. Every mark is a group with a class and
//! `data-` attributes (`tl-lane`, `tl-message`, `tl-fault`, ...), so tests
//! and scripts can find it, and a `<title>` tooltip saying what it is.

use crate::{Axis, Event, EventKind, Fate, Fault, MessageClass, Note, Timeline};
use raft_election::{NodeId, Role, Term};
use std::collections::BTreeMap;
use svg::Document;
use svg::node::element::path::Data;
use svg::node::element::{
    Circle, Definitions, Group, Line, Marker, Path, Polygon, Rectangle, Text, Title,
};

/// Half the thickness of a role band.
const BAND: f64 = 9.0;
/// A message arrow slants at least this far along the time axis, so that
/// arrows sent and received in the same instant stay apart.
const MIN_SLANT: f64 = 5.0;
/// Heartbeats on one link closer than this on a timeline are drawn as one.
const THIN: f64 = 8.0;
/// On a timeline, events other than heartbeats are drawn at least this far
/// apart (see [`Frame::knots`]).
const BURST_GAP: f64 = 7.0;
/// Rough width of one character of 11 px sans-serif, for laying out text.
const CHAR: f64 = 6.2;
/// A timeline aims at about this many pixels of time.
const TARGET_WIDTH: f64 = 1400.0;
/// The most the spreading of bursts may add to a picture's width, in px.
const MAX_SPREAD: f64 = 10.0 * TARGET_WIDTH;
/// Rows of a sequence diagram, per step.
const STEP: f64 = 34.0;
const TEXT: &str = "#263238";
const MUTED: &str = "#90a4ae";
const ALARM: &str = "#c62828";
const FAULT: &str = "#6a1b9a";

fn role_colour(role: Role) -> &'static str {
    match role {
        Role::Follower => "#cfd8dc",
        Role::PreCandidate => "#fff59d",
        Role::Candidate => "#ffcc80",
        Role::Leader => "#81c784",
    }
}

fn class_colour(class: MessageClass) -> &'static str {
    match class {
        MessageClass::VoteRequest => "#1e88e5",
        MessageClass::VoteGranted => "#2e7d32",
        MessageClass::VoteRejected => "#e53935",
        MessageClass::Heartbeat => "#757575",
        MessageClass::HeartbeatResponse => "#b0bec5",
        MessageClass::Other => "#8e24aa",
    }
}

fn class_id(class: MessageClass) -> &'static str {
    match class {
        MessageClass::VoteRequest => "vote-request",
        MessageClass::VoteGranted => "vote-granted",
        MessageClass::VoteRejected => "vote-rejected",
        MessageClass::Heartbeat => "heartbeat",
        MessageClass::HeartbeatResponse => "heartbeat-response",
        MessageClass::Other => "other",
    }
}

const CLASSES: [MessageClass; 6] = [
    MessageClass::VoteRequest,
    MessageClass::VoteGranted,
    MessageClass::VoteRejected,
    MessageClass::Heartbeat,
    MessageClass::HeartbeatResponse,
    MessageClass::Other,
];

/// Times beyond this (about 30 years in milliseconds) are left out, as
/// are times that are not numbers: a picture of them could not be drawn,
/// and its axis would have no end.
const MAX_TIME: f64 = 1e12;

/// A sequence diagram shows at most this many steps.
const MAX_STEPS: f64 = 1_000.0;

/// At most this many ticks or step labels on an axis.
const MAX_TICKS: usize = 2_000;

fn usable(at: f64) -> bool {
    at.is_finite() && at.abs() <= MAX_TIME
}

/// An event whose times can all be drawn.
fn drawable(event: &Event) -> bool {
    let fate_at = match &event.kind {
        EventKind::Sent {
            fate: Fate::Delivered { at } | Fate::Lost { at, .. },
            ..
        } => *at,
        _ => event.at,
    };
    usable(event.at) && usable(fate_at)
}

/// Coordinates rounded to a tenth of a pixel: plenty, and a smaller file.
fn r(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn text(x: f64, y: f64, size: u32, content: impl Into<String>) -> Text {
    Text::new(content)
        .set("x", r(x))
        .set("y", r(y))
        .set("font-size", size)
        .set("fill", TEXT)
}

fn line(from: (f64, f64), to: (f64, f64), colour: &str) -> Line {
    Line::new()
        .set("x1", r(from.0))
        .set("y1", r(from.1))
        .set("x2", r(to.0))
        .set("y2", r(to.1))
        .set("stroke", colour)
}

fn cross(at: (f64, f64), size: f64, colour: &str) -> Path {
    let (x, y) = at;
    let data = Data::new()
        .move_to((r(x - size), r(y - size)))
        .line_to((r(x + size), r(y + size)))
        .move_to((r(x - size), r(y + size)))
        .line_to((r(x + size), r(y - size)));
    Path::new()
        .set("d", data)
        .set("stroke", colour)
        .set("stroke-width", 2.5)
        .set("fill", "none")
}

fn time_text(axis: Axis, at: f64) -> String {
    match axis {
        Axis::Milliseconds => format!("{at:.1} ms"),
        Axis::Steps => format!("step {at:.0}"),
    }
}

/// Where things go: the time range and its scale, and the lanes.
struct Frame {
    axis: Axis,
    start: f64,
    end: f64,
    /// Pixels per unit of time.
    scale: f64,
    /// Along-axis pixel of `start`.
    along0: f64,
    /// Across-axis pixel of the first lane's centre, and between lanes.
    lane0: f64,
    lane_gap: f64,
    lanes: BTreeMap<NodeId, usize>,
    /// On a timeline, the instants of events other than heartbeats and the
    /// pixel each is drawn at: at least [`BURST_GAP`] after the previous
    /// one, so an election that took a millisecond is not one vertical
    /// smear. Times in between are interpolated, so the axis stays monotone
    /// and its labels true; after a burst the picture rejoins linear time
    /// in the next idle stretch.
    knots: Vec<(f64, f64)>,
}

impl Frame {
    fn new(timeline: &Timeline) -> Self {
        let mut times = Vec::new();
        for event in timeline.events.iter().filter(|e| drawable(e)) {
            times.push(event.at);
            if let EventKind::Sent {
                fate: Fate::Delivered { at } | Fate::Lost { at, .. },
                ..
            } = event.kind
            {
                times.push(at);
            }
        }
        times.extend(timeline.notes.iter().map(|n| n.at));
        times.retain(|&t| usable(t));
        let first = times.iter().copied().fold(f64::INFINITY, f64::min);
        let last = times.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (first, last) = if first <= last {
            (first, last)
        } else {
            (0.0, 0.0)
        };
        let key_instants = key_instants(timeline);
        let lanes = timeline
            .nodes
            .iter()
            .enumerate()
            .map(|(lane, &id)| (id, lane))
            .collect();
        match timeline.axis {
            Axis::Milliseconds => {
                let start = first.min(0.0);
                // A little room after the last event for its marks.
                let end = last + ((last - start) * 0.05).max(1.0);
                // Long runs shrink to the target width (and their heartbeats
                // thin out); short ones are stretched, up to 4 px a ms.
                let scale = (TARGET_WIDTH / (end - start)).min(4.0);
                let mut frame = Self {
                    axis: timeline.axis,
                    start,
                    end,
                    scale,
                    along0: 70.0,
                    lane0: 110.0,
                    lane_gap: 64.0,
                    lanes,
                    knots: Vec::new(),
                };
                // Spreading thousands of instants apart would make a picture
                // miles wide: the gap shrinks so the spread stays within a bound.
                let gap = BURST_GAP.min(MAX_SPREAD / key_instants.len().max(1) as f64);
                let mut knots: Vec<(f64, f64)> = Vec::with_capacity(key_instants.len());
                for at in key_instants {
                    let linear = frame.linear(at);
                    let x = knots
                        .last()
                        .map_or(linear, |&(_, previous)| linear.max(previous + gap));
                    knots.push((at, x));
                }
                frame.knots = knots;
                frame
            }
            // A model path is tens of steps; a longer one is cut off at
            // the bottom rather than drawn miles long.
            Axis::Steps => Self {
                axis: timeline.axis,
                start: first.clamp(-MAX_STEPS, 0.0),
                end: last.min(MAX_STEPS) + 1.0,
                scale: STEP,
                along0: 96.0,
                lane0: 90.0,
                lane_gap: 240.0,
                lanes,
                knots: Vec::new(),
            },
        }
    }

    fn linear(&self, at: f64) -> f64 {
        self.along0 + (at - self.start) * self.scale
    }

    /// The pixel of `at` on the time axis: linear, but for the spread of
    /// bursts ([`Self::knots`]).
    fn along(&self, at: f64) -> f64 {
        let after = self.knots.partition_point(|&(t, _)| t <= at);
        match (
            after.checked_sub(1).map(|i| self.knots[i]),
            self.knots.get(after),
        ) {
            (None, _) => self.linear(at),
            (Some((t, x)), None) => x + (at - t) * self.scale,
            (Some((t0, x0)), Some(&(t1, x1))) => x0 + (at - t0) / (t1 - t0) * (x1 - x0),
        }
    }

    fn across(&self, lane: usize) -> f64 {
        let lane = lane as f64;
        self.lane0 + lane * self.lane_gap
    }

    /// The pixel at `along` on the time axis and `across` on the lanes.
    fn xy(&self, along: f64, across: f64) -> (f64, f64) {
        match self.axis {
            Axis::Milliseconds => (along, across),
            Axis::Steps => (across, along),
        }
    }

    fn lane(&self, node: NodeId) -> Option<usize> {
        self.lanes.get(&node).copied()
    }

    fn last_lane_across(&self) -> f64 {
        self.across(self.lanes.len().saturating_sub(1))
    }
}

/// The distinct instants of everything but heartbeats, in order: the
/// events a timeline spreads apart ([`Frame::knots`]).
fn key_instants(timeline: &Timeline) -> Vec<f64> {
    if timeline.axis != Axis::Milliseconds {
        return Vec::new();
    }
    let mut instants = Vec::new();
    for event in timeline.events.iter().filter(|e| drawable(e)) {
        match &event.kind {
            EventKind::Sent { class, .. } if class.is_heartbeat() => {}
            EventKind::Sent {
                fate: Fate::Delivered { at } | Fate::Lost { at, .. },
                ..
            } => instants.extend([event.at, *at]),
            _ => instants.push(event.at),
        }
    }
    instants.retain(|&t| usable(t));
    instants.sort_by(f64::total_cmp);
    instants.dedup();
    instants
}

pub(crate) fn render(timeline: &Timeline) -> String {
    let frame = Frame::new(timeline);
    let mut events: Vec<&Event> = timeline
        .events
        .iter()
        .filter(|e| drawable(e) && frame.lane(e.node).is_some())
        .collect();
    // Stable: events at the same time keep the order they were given in.
    events.sort_by(|a, b| a.at.total_cmp(&b.at));

    let mut body = Group::new();
    body = body.add(notes_guides(&frame, &timeline.notes));
    body = body.add(lanes(&frame, &events));
    body = body.add(messages(&frame, &events));
    body = body.add(timeouts(&frame, &events));
    body = body.add(faults(&frame, &events));
    let (axis, axis_end) = time_axis(&frame);
    body = body.add(axis);
    let (notes, width, height) = notes_text(&frame, &timeline.notes, axis_end);
    body = body.add(notes);
    let (legend, legend_width) = legend(&events);
    let width = width.max(legend_width).max(match frame.axis {
        Axis::Milliseconds => frame.along(frame.end) + 40.0,
        Axis::Steps => frame.last_lane_across() + 120.0,
    });

    Document::new()
        .set("width", r(width))
        .set("height", r(height))
        .set("viewBox", (0, 0, r(width), r(height)))
        .set("font-family", "sans-serif")
        .add(
            Rectangle::new()
                .set("width", "100%")
                .set("height", "100%")
                .set("fill", "white"),
        )
        .add(markers())
        .add(
            text(10.0, 22.0, 15, timeline.title.clone())
                .set("font-weight", "bold")
                .set("class", "tl-title"),
        )
        .add(legend)
        .add(body)
        .to_string()
}

/// One arrowhead per message class, in its colour.
fn markers() -> Definitions {
    let mut defs = Definitions::new();
    for class in CLASSES {
        defs = defs.add(
            Marker::new()
                .set("id", format!("tl-arrow-{}", class_id(class)))
                .set("viewBox", "0 0 10 10")
                .set("refX", 9)
                .set("refY", 5)
                .set("markerWidth", 7)
                .set("markerHeight", 7)
                .set("orient", "auto")
                .add(
                    Path::new()
                        .set("d", "M0,0 L10,5 L0,10 z")
                        .set("fill", class_colour(class)),
                ),
        );
    }
    defs
}

/// The legend: role colours, the message classes present, and the marks.
fn legend(events: &[&Event]) -> (Group, f64) {
    let mut group = Group::new().set("class", "tl-legend");
    let mut x = 10.0;
    let y = 44.0;
    // Pre-candidates appear only with Pre-Vote on: named only then.
    let pre_vote = events.iter().any(|event| {
        matches!(
            event.kind,
            EventKind::State {
                role: Role::PreCandidate,
                ..
            }
        )
    });
    let roles = [
        Role::Follower,
        Role::PreCandidate,
        Role::Candidate,
        Role::Leader,
    ];
    for role in roles
        .into_iter()
        .filter(|&role| pre_vote || role != Role::PreCandidate)
    {
        group = group.add(
            Rectangle::new()
                .set("x", r(x))
                .set("y", y - 10.0)
                .set("width", 22)
                .set("height", 12)
                .set("fill", role_colour(role)),
        );
        let name = role.to_string();
        x += 26.0;
        group = group.add(text(x, y, 11, name.clone()));
        x += text_width(&name) + 12.0;
    }
    let present: Vec<MessageClass> = CLASSES
        .into_iter()
        .filter(|class| {
            events
                .iter()
                .any(|e| matches!(&e.kind, EventKind::Sent { class: c, .. } if c == class))
        })
        .collect();
    for class in present {
        group = group.add(
            line((x, y - 4.0), (x + 22.0, y - 4.0), class_colour(class))
                .set("stroke-width", 1.5)
                .set("marker-end", format!("url(#tl-arrow-{})", class_id(class))),
        );
        x += 26.0;
        group = group.add(text(x, y, 11, class.name()));
        x += text_width(class.name()) + 12.0;
    }
    group = group.add(timeout_mark((x + 5.0, y - 4.0), Axis::Milliseconds));
    x += 14.0;
    group = group.add(text(x, y, 11, "election timeout"));
    x += text_width("election timeout") + 12.0;
    group = group.add(cross((x + 5.0, y - 4.0), 4.0, ALARM));
    x += 14.0;
    group = group.add(text(x, y, 11, "crash or loss"));
    x += text_width("crash or loss") + 12.0;
    group = group.add(diamond((x + 5.0, y - 4.0)));
    x += 14.0;
    group = group.add(text(x, y, 11, "fault"));
    x += text_width("fault") + 10.0;
    (group, x)
}

fn text_width(text: &str) -> f64 {
    let chars = text.chars().count() as f64;
    chars * CHAR
}

/// Each lane: its name, and its role bands (a dashed line while down).
fn lanes(frame: &Frame, events: &[&Event]) -> Group {
    let mut group = Group::new();
    for (&node, &lane) in &frame.lanes {
        let across = frame.across(lane);
        let mut lane_group = Group::new()
            .set("class", "tl-lane")
            .set("data-node", node.to_string());
        let (name_x, name_y) = match frame.axis {
            Axis::Milliseconds => (12.0, across + 5.0),
            Axis::Steps => (across - 8.0, frame.along0 - 22.0),
        };
        lane_group = lane_group.add(
            text(name_x, name_y, 14, node.to_string())
                .set("font-weight", "bold")
                .set("class", "tl-lane-name"),
        );
        // The node's states, closed by the next state, a crash or the end.
        let mut open: Option<(f64, Role, Term)> = None;
        let mut down_since: Option<f64> = None;
        let mut bands = Vec::new();
        let mut downs = Vec::new();
        for event in events.iter().filter(|e| e.node == node) {
            match event.kind {
                EventKind::State { role, term } => {
                    if let Some((from, role, term)) = open.take() {
                        bands.push((from, event.at, role, term));
                    }
                    if let Some(from) = down_since.take() {
                        downs.push((from, event.at));
                    }
                    open = Some((event.at, role, term));
                }
                EventKind::Fault(Fault::Crash | Fault::Stop) => {
                    if let Some((from, role, term)) = open.take() {
                        bands.push((from, event.at, role, term));
                    }
                    down_since = down_since.or(Some(event.at));
                }
                _ => {}
            }
        }
        if let Some((from, role, term)) = open {
            bands.push((from, frame.end, role, term));
        }
        if let Some(from) = down_since {
            downs.push((from, frame.end));
        }
        for (from, to) in downs {
            lane_group = lane_group.add(
                line(
                    frame.xy(frame.along(from), across),
                    frame.xy(frame.along(to), across),
                    MUTED,
                )
                .set("stroke-dasharray", "4 3")
                .set("class", "tl-down"),
            );
        }
        for (from, to, role, term) in bands {
            lane_group = lane_group.add(band(frame, across, (from, to), role, term));
        }
        group = group.add(lane_group);
    }
    group
}

fn band(frame: &Frame, across: f64, (from, to): (f64, f64), role: Role, term: Term) -> Group {
    let (a, b) = (frame.along(from), frame.along(to));
    let length = (b - a).max(1.0);
    let (x, y) = frame.xy(a, across - BAND);
    let (width, height) = match frame.axis {
        Axis::Milliseconds => (length, 2.0 * BAND),
        Axis::Steps => (2.0 * BAND, length),
    };
    let mut group = Group::new()
        .set("class", "tl-band")
        .set("data-role", role.to_string())
        .set("data-term", term.0)
        .add(Title::new(format!(
            "{role} in {term} from {} to {}",
            time_text(frame.axis, from),
            time_text(frame.axis, to)
        )))
        .add(
            Rectangle::new()
                .set("x", r(x))
                .set("y", r(y))
                .set("width", r(width))
                .set("height", r(height))
                .set("fill", role_colour(role)),
        );
    let label = match role {
        Role::Follower => term.to_string(),
        _ => format!("{term} {role}"),
    };
    match frame.axis {
        // The term inside the band, with the role if there is room.
        Axis::Milliseconds if length >= text_width(&label) + 6.0 => {
            group = group.add(text(a + 3.0, across + 4.0, 11, label));
        }
        Axis::Milliseconds if length >= text_width(&term.to_string()) + 4.0 => {
            group = group.add(text(a + 2.0, across + 4.0, 11, term.to_string()));
        }
        Axis::Milliseconds => {}
        // Beside the band, at its start.
        Axis::Steps => {
            group = group.add(text(across + BAND + 4.0, a + 12.0, 11, label));
        }
    }
    group
}

/// One drawn arrow: possibly several heartbeats thinned into one.
struct Arrow<'a> {
    from: NodeId,
    to: NodeId,
    sent: f64,
    message: &'a str,
    class: MessageClass,
    fate: &'a Fate,
    count: u32,
    last_sent: f64,
}

fn messages(frame: &Frame, events: &[&Event]) -> Group {
    let mut arrows: Vec<Arrow<'_>> = Vec::new();
    // The arrow each thinnable link drew last: (from, to, class, delivered).
    let mut last: BTreeMap<(NodeId, NodeId, MessageClass, bool), usize> = BTreeMap::new();
    for event in events {
        let EventKind::Sent {
            to,
            message,
            class,
            fate,
        } = &event.kind
        else {
            continue;
        };
        if frame.lane(*to).is_none() {
            continue;
        }
        let delivered = matches!(fate, Fate::Delivered { .. });
        let key = (event.node, *to, *class, delivered);
        if frame.axis == Axis::Milliseconds && class.is_heartbeat() {
            if let Some(&index) = last.get(&key) {
                let arrow = &mut arrows[index];
                if frame.along(event.at) - frame.along(arrow.sent) < THIN {
                    arrow.count += 1;
                    arrow.last_sent = event.at;
                    continue;
                }
            }
            last.insert(key, arrows.len());
        }
        arrows.push(Arrow {
            from: event.node,
            to: *to,
            sent: event.at,
            message,
            class: *class,
            fate,
            count: 1,
            last_sent: event.at,
        });
    }
    let mut group = Group::new();
    for arrow in &arrows {
        group = group.add(draw_arrow(frame, arrow));
    }
    group
}

fn draw_arrow(frame: &Frame, arrow: &Arrow<'_>) -> Group {
    let (Some(from_lane), Some(to_lane)) = (frame.lane(arrow.from), frame.lane(arrow.to)) else {
        return Group::new();
    };
    let (a_from, a_to) = (frame.across(from_lane), frame.across(to_lane));
    let direction = if a_to >= a_from { 1.0 } else { -1.0 };
    let start_across = a_from + direction * BAND;
    let end_across = a_to - direction * BAND;
    let start_along = frame.along(arrow.sent);
    let colour = class_colour(arrow.class);
    let min_slant = match frame.axis {
        Axis::Milliseconds => MIN_SLANT,
        Axis::Steps => 8.0,
    };
    let (fate, tooltip_fate, end_along, end_across, lost) = match arrow.fate {
        Fate::Delivered { at } => (
            "delivered",
            format!("delivered at {}", time_text(frame.axis, *at)),
            frame.along(*at).max(start_along + min_slant),
            end_across,
            false,
        ),
        // Half way to the next lane in the receiver's direction: a stub
        // that ends between lanes, labelled with its receiver.
        Fate::Lost { at, reason } => (
            "lost",
            format!("lost at {}: {reason}", time_text(frame.axis, *at)),
            frame.along(*at).max(start_along + min_slant),
            start_across + direction * frame.lane_gap * 0.45,
            true,
        ),
        Fate::InFlight => (
            "in-flight",
            "still in flight".to_owned(),
            start_along + min_slant * 2.0,
            start_across + direction * frame.lane_gap * 0.35,
            false,
        ),
    };
    let start = frame.xy(start_along, start_across);
    let end = frame.xy(end_along, end_across);
    let what = if arrow.count > 1 {
        format!(
            "{} {}s {} -> {} from {} to {}",
            arrow.count,
            arrow.class.name(),
            arrow.from,
            arrow.to,
            time_text(frame.axis, arrow.sent),
            time_text(frame.axis, arrow.last_sent)
        )
    } else {
        format!(
            "{} -> {} at {}: {} ({tooltip_fate})",
            arrow.from,
            arrow.to,
            time_text(frame.axis, arrow.sent),
            arrow.message
        )
    };
    let mut shaft = line(start, end, colour).set(
        "stroke-width",
        if arrow.class.is_heartbeat() { 1.0 } else { 1.6 },
    );
    match arrow.fate {
        Fate::Delivered { .. } => {
            shaft = shaft.set(
                "marker-end",
                format!("url(#tl-arrow-{})", class_id(arrow.class)),
            );
        }
        Fate::Lost { .. } => shaft = shaft.set("stroke-dasharray", "3 2"),
        Fate::InFlight => {
            shaft = shaft
                .set("stroke-dasharray", "2 3")
                .set("stroke-opacity", 0.6);
        }
    }
    let mut group = Group::new()
        .set("class", "tl-message")
        .set("data-class", class_id(arrow.class))
        .set("data-fate", fate)
        .set("data-count", arrow.count)
        .set("data-from", arrow.from.to_string())
        .set("data-to", arrow.to.to_string())
        .set("data-sent", format!("{:.3}", arrow.sent));
    if let Fate::Delivered { at } = arrow.fate {
        group = group.set("data-delivered", format!("{at:.3}"));
    }
    group = group.add(Title::new(what)).add(shaft);
    if lost {
        group = group.add(cross(end, 3.5, ALARM));
    }
    if !matches!(arrow.fate, Fate::Delivered { .. }) && to_lane.abs_diff(from_lane) > 1 {
        // The stub does not reach the next lane; say whose it was.
        group =
            group.add(text(end.0 + 5.0, end.1 + 3.0, 9, arrow.to.to_string()).set("fill", colour));
    }
    if arrow.count > 1 {
        let (x, y) = frame.xy(start_along, start_across);
        group = group.add(text(
            x + 2.0,
            y + direction * 2.0,
            9,
            format!("×{}", arrow.count),
        ));
    }
    if frame.axis == Axis::Steps && !matches!(arrow.fate, Fate::InFlight) {
        // The label over the middle of the arrow, haloed so crossing lines
        // do not hide it.
        let middle = ((start.0 + end.0) / 2.0, (start.1 + end.1) / 2.0 - 4.0);
        group = group.add(
            text(middle.0, middle.1, 10, arrow.message)
                .set("text-anchor", "middle")
                .set("fill", colour)
                .set("stroke", "white")
                .set("stroke-width", 3)
                .set("paint-order", "stroke"),
        );
    }
    group
}

fn timeout_mark(at: (f64, f64), axis: Axis) -> Polygon {
    let (x, y) = at;
    let points = match axis {
        // Pointing down at the band.
        Axis::Milliseconds => format!(
            "{},{} {},{} {},{}",
            r(x - 4.5),
            r(y - 5.0),
            r(x + 4.5),
            r(y - 5.0),
            r(x),
            r(y + 3.0)
        ),
        // Pointing right at the band.
        Axis::Steps => format!(
            "{},{} {},{} {},{}",
            r(x - 5.0),
            r(y - 4.5),
            r(x - 5.0),
            r(y + 4.5),
            r(x + 3.0),
            r(y)
        ),
    };
    Polygon::new().set("points", points).set("fill", "#ef6c00")
}

fn timeouts(frame: &Frame, events: &[&Event]) -> Group {
    let mut group = Group::new();
    for event in events {
        if event.kind != EventKind::ElectionTimeout {
            continue;
        }
        let Some(lane) = frame.lane(event.node) else {
            continue;
        };
        let at = frame.xy(frame.along(event.at), frame.across(lane) - BAND - 4.0);
        group = group.add(
            Group::new()
                .set("class", "tl-timeout")
                .set("data-node", event.node.to_string())
                .add(Title::new(format!(
                    "{}'s election timer fired at {}",
                    event.node,
                    time_text(frame.axis, event.at)
                )))
                .add(timeout_mark(at, frame.axis)),
        );
    }
    group
}

fn diamond(at: (f64, f64)) -> Polygon {
    let (x, y) = at;
    Polygon::new()
        .set(
            "points",
            format!(
                "{},{} {},{} {},{} {},{}",
                r(x),
                r(y - 5.0),
                r(x + 5.0),
                r(y),
                r(x),
                r(y + 5.0),
                r(x - 5.0),
                r(y)
            ),
        )
        .set("fill", FAULT)
}

/// A mark per fault; labels at the same node and place are set side by side.
fn faults(frame: &Frame, events: &[&Event]) -> Group {
    let mut group = Group::new();
    // Label offset already used at (lane, along pixel).
    let mut used: BTreeMap<(usize, u64), f64> = BTreeMap::new();
    for event in events {
        let EventKind::Fault(fault) = event.kind else {
            continue;
        };
        let Some(lane) = frame.lane(event.node) else {
            continue;
        };
        let along = frame.along(event.at);
        let across = frame.across(lane);
        let (glyph, colour): (Group, &str) = match fault {
            Fault::Crash => (
                Group::new().add(cross(frame.xy(along, across), 6.0, ALARM)),
                ALARM,
            ),
            Fault::Stop => {
                let (x, y) = frame.xy(along, across);
                let square = Rectangle::new()
                    .set("x", r(x - 5.0))
                    .set("y", r(y - 5.0))
                    .set("width", 10)
                    .set("height", 10)
                    .set("fill", TEXT);
                (Group::new().add(square), TEXT)
            }
            Fault::Restart => (
                Group::new().add(
                    Circle::new()
                        .set("cx", r(frame.xy(along, across).0))
                        .set("cy", r(frame.xy(along, across).1))
                        .set("r", 5.5)
                        .set("fill", "white")
                        .set("stroke", "#2e7d32")
                        .set("stroke-width", 2.5),
                ),
                "#2e7d32",
            ),
            _ => (
                Group::new().add(diamond(frame.xy(along, across + BAND + 6.0))),
                FAULT,
            ),
        };
        // The pixel-rounded position keys the label slot; as bits, since
        // f64 is not Ord (positions are positive, so one pixel, one key).
        let key = (lane, along.round().to_bits());
        let label = fault.to_string();
        let offset = used.entry(key).or_insert(0.0);
        let (x, y) = match frame.axis {
            Axis::Milliseconds => (along + 6.0 + *offset, across + BAND + 15.0),
            Axis::Steps => (across - BAND - 6.0 - *offset, along + 4.0),
        };
        *offset += text_width(&label) + 6.0;
        let mut label_text = text(x, y, 10, label).set("fill", colour);
        if frame.axis == Axis::Steps {
            label_text = label_text.set("text-anchor", "end");
        }
        group = group.add(
            Group::new()
                .set("class", "tl-fault")
                .set("data-fault", fault.kind())
                .set("data-node", event.node.to_string())
                .add(Title::new(format!(
                    "{} at {}: {fault}",
                    event.node,
                    time_text(frame.axis, event.at)
                )))
                .add(glyph)
                .add(label_text),
        );
    }
    group
}

/// The time axis with its ticks; returns it and where it ends across.
fn time_axis(frame: &Frame) -> (Group, f64) {
    let mut group = Group::new().set("class", "tl-axis");
    let across = frame.last_lane_across() + 40.0;
    match frame.axis {
        Axis::Milliseconds => {
            let step = tick_step(frame.scale);
            group = group.add(line(
                (frame.along(frame.start), across),
                (frame.along(frame.end), across),
                MUTED,
            ));
            let first = (frame.start / step).ceil();
            let mut last_label = f64::NEG_INFINITY;
            // About one tick per 80 pixels of a bounded width; counted
            // rather than summed, so rounding cannot stall it.
            for index in 0..MAX_TICKS {
                let tick = (first + index as f64) * step;
                if tick > frame.end {
                    break;
                }
                let x = frame.along(tick);
                // Where a spread burst squeezed the ticks after it, some go
                // unlabelled rather than overlap.
                if x - last_label < 48.0 {
                    continue;
                }
                last_label = x;
                group = group.add(line((x, across), (x, across + 5.0), MUTED)).add(
                    text(x, across + 17.0, 10, format!("{tick:.0} ms"))
                        .set("text-anchor", "middle")
                        .set("fill", MUTED),
                );
            }
            group = group.add(
                text(frame.along0, across + 32.0, 10, format!(
                    "time since start; events closer than {BURST_GAP:.0} px (but heartbeats) are spread {BURST_GAP:.0} px apart and the axis follows; \
                     arrows slant at least {MIN_SLANT:.0} px; heartbeats closer than {THIN:.0} px on one link are drawn as one (×N)"
                ))
                .set("fill", MUTED),
            );
            (group, across + 40.0)
        }
        Axis::Steps => {
            let first = frame.start.ceil();
            for index in 0..MAX_TICKS {
                let step = first + index as f64;
                if step > frame.end - 1.0 {
                    break;
                }
                group = group.add(
                    text(40.0, frame.along(step) + 4.0, 10, format!("{step:.0}"))
                        .set("text-anchor", "end")
                        .set("fill", MUTED),
                );
            }
            (group, frame.along(frame.end))
        }
    }
}

/// A round tick interval (1, 2 or 5 times a power of ten) about 80 px apart.
fn tick_step(scale: f64) -> f64 {
    let raw = 80.0 / scale;
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&step| step >= raw)
        .unwrap_or(10.0 * power)
}

/// Faint guides through the lanes at each note, behind everything else.
fn notes_guides(frame: &Frame, notes: &[Note]) -> Group {
    let mut group = Group::new();
    let (low, high) = (frame.lane0 - 30.0, frame.last_lane_across() + 30.0);
    for note in notes.iter().filter(|n| usable(n.at)) {
        let along = frame.along(note.at);
        let (from, to) = match frame.axis {
            Axis::Milliseconds => ((along, low), (along, high)),
            Axis::Steps => ((44.0, along), (frame.last_lane_across() + 60.0, along)),
        };
        group = group.add(
            line(from, to, if note.alarm { ALARM } else { "#eceff1" })
                .set("stroke-dasharray", "2 2"),
        );
    }
    group
}

/// The notes' text: numbered marks on a timeline's axis and a list under
/// it, or each note beside its step. Returns them, the width and height.
fn notes_text(frame: &Frame, notes: &[Note], axis_end: f64) -> (Group, f64, f64) {
    let mut group = Group::new().set("class", "tl-notes");
    let mut width: f64 = 0.0;
    match frame.axis {
        Axis::Milliseconds => {
            let mut y = axis_end + 10.0;
            for (number, note) in notes.iter().filter(|n| usable(n.at)).enumerate() {
                let colour = if note.alarm { ALARM } else { TEXT };
                let (x, top) = (frame.along(note.at), frame.lane0 - 40.0);
                let label = (number + 1).to_string();
                group = group
                    .add(
                        Circle::new()
                            .set("cx", r(x))
                            .set("cy", r(top))
                            .set("r", 8)
                            .set("fill", colour),
                    )
                    .add(
                        text(x, top + 3.5, 10, label.clone())
                            .set("text-anchor", "middle")
                            .set("fill", "white"),
                    );
                y += 16.0;
                let line_text = format!(
                    "{label}. {} ({})",
                    note.text,
                    time_text(frame.axis, note.at)
                );
                width = width.max(20.0 + text_width(&line_text));
                group = group.add(
                    text(12.0, y, 12, line_text)
                        .set("fill", colour)
                        .set("class", "tl-note"),
                );
            }
            (group, width, y + 14.0)
        }
        Axis::Steps => {
            let x = frame.last_lane_across() + 70.0;
            for note in notes.iter().filter(|n| usable(n.at)) {
                let colour = if note.alarm { ALARM } else { TEXT };
                width = width.max(x + text_width(&note.text) + 20.0);
                group = group.add(
                    text(x, frame.along(note.at) + 4.0, 11, note.text.clone())
                        .set("fill", colour)
                        .set("class", "tl-note"),
                );
            }
            (group, width, axis_end + 10.0)
        }
    }
}
