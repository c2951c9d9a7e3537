//! The in-process cluster's event log as a timeline picture
//! ([`raft_election_timeline`]): what `--timeline FILE` draws.
//!
//! Each sent message is paired with the step that received it (the
//! earliest receipt of an equal message on the same link not yet paired),
//! so an arrow runs from the send to the receipt. A second receipt of the
//! same message (a duplicating link) is a second arrow from the same send.
//! A delivered message never received was lost with its receiver if that
//! crashed, and is still in flight otherwise.

use raft_election::{Message, NodeId, Role, Term};
use raft_election_runtime::{Delivery, Event, EventKind, LinkChange};
use raft_election_timeline::{
    Axis, Event as Mark, EventKind as MarkKind, Fate, Fault, MessageClass, Note, Timeline,
};
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::time::Duration;

fn ms(at: Duration) -> f64 {
    at.as_secs_f64() * 1e3
}

/// The timeline of `events` (a cluster's event log, oldest first) for the
/// lanes `nodes`, with `notes` (time since the cluster started, text) as
/// numbered marks.
#[must_use]
pub fn timeline(
    title: &str,
    nodes: impl IntoIterator<Item = NodeId>,
    events: &[Event],
    notes: &[(Duration, String)],
) -> Timeline {
    let mut timeline = Timeline::new(title, nodes.into_iter().collect(), Axis::Milliseconds);
    timeline.notes = notes
        .iter()
        .map(|(at, text)| Note {
            at: ms(*at),
            text: text.clone(),
            alarm: false,
        })
        .collect();
    let mut marks: Vec<Mark> = Vec::with_capacity(events.len());
    // Each node's role and term as drawn last, and where that State mark is.
    let mut states: BTreeMap<NodeId, (Role, Term, usize)> = BTreeMap::new();
    // Delivered sends not yet received, by link and message.
    let mut unpaired: BTreeMap<(NodeId, NodeId, Message), VecDeque<usize>> = BTreeMap::new();
    // The send a receipt was last paired with, for a duplicate's second copy.
    let mut paired: BTreeMap<(NodeId, NodeId, Message), usize> = BTreeMap::new();
    let mut crashes: BTreeMap<NodeId, Vec<f64>> = BTreeMap::new();
    let mut copies = Vec::new();
    for event in events {
        let (at, node) = (ms(event.at), event.node);
        let mark = |kind| Mark { at, node, kind };
        match event.kind {
            EventKind::Started { restored } => {
                if crashes.contains_key(&node) {
                    marks.push(mark(MarkKind::Fault(Fault::Restart)));
                }
                states.remove(&node);
                set_state(
                    &mut marks,
                    &mut states,
                    at,
                    node,
                    Role::Follower,
                    restored.current_term,
                );
            }
            EventKind::TermChanged { .. } => {
                let role = states.get(&node).map_or(Role::Follower, |s| s.0);
                set_state(&mut marks, &mut states, at, node, role, event.term);
            }
            EventKind::RoleChanged { to, .. } => {
                set_state(&mut marks, &mut states, at, node, to, event.term);
            }
            EventKind::ElectionTimeout => marks.push(mark(MarkKind::ElectionTimeout)),
            EventKind::Sent {
                to,
                message,
                delivery,
            } => {
                let fate = match delivery {
                    Delivery::Delivered => {
                        unpaired
                            .entry((node, to, message))
                            .or_default()
                            .push_back(marks.len());
                        Fate::InFlight
                    }
                    lost => Fate::Lost {
                        at,
                        reason: lost.to_string(),
                    },
                };
                marks.push(mark(MarkKind::Sent {
                    to,
                    message: message.to_string(),
                    class: MessageClass::of(&message),
                    fate,
                }));
            }
            EventKind::Received { from, message } => {
                let key = (from, node, message);
                if let Some(index) = unpaired.get_mut(&key).and_then(VecDeque::pop_front) {
                    if let MarkKind::Sent { fate, .. } = &mut marks[index].kind {
                        *fate = Fate::Delivered { at };
                    }
                    paired.insert(key, index);
                } else if let Some(&index) = paired.get(&key) {
                    let mut copy = marks[index].clone();
                    if let MarkKind::Sent { fate, .. } = &mut copy.kind {
                        *fate = Fate::Delivered { at };
                    }
                    copies.push(copy);
                }
            }
            EventKind::Crashed => {
                crashes.entry(node).or_default().push(at);
                states.remove(&node);
                marks.push(mark(MarkKind::Fault(Fault::Crash)));
            }
            EventKind::Partitioned { group } => {
                marks.push(mark(MarkKind::Fault(Fault::Partition { group })));
            }
            EventKind::LinkChanged { to, change } => {
                let fault = match change {
                    LinkChange::Cut => Fault::Cut { to },
                    LinkChange::Faulty => Fault::FaultyLink { to },
                    LinkChange::Faultless => Fault::LinkRestored { to },
                };
                marks.push(mark(MarkKind::Fault(fault)));
            }
            EventKind::Disconnected => marks.push(mark(MarkKind::Fault(Fault::Disconnect))),
            EventKind::Connected => marks.push(mark(MarkKind::Fault(Fault::Connect))),
            EventKind::Healed => marks.push(mark(MarkKind::Fault(Fault::Heal))),
            // Drawn already: a vote is the response arrow, a leader learned
            // is the heartbeat arrow.
            EventKind::VoteGranted { .. } | EventKind::LeaderLearned { .. } => {}
        }
    }
    // Delivered but never stepped: lost with a receiver that crashed since.
    for index in unpaired.into_values().flatten() {
        let sent = marks[index].at;
        if let MarkKind::Sent { to, fate, .. } = &mut marks[index].kind {
            let crash = crashes
                .get(to)
                .and_then(|times| times.iter().copied().find(|&t| t >= sent));
            if let Some(at) = crash {
                *fate = Fate::Lost {
                    at,
                    reason: format!("{to} crashed before stepping it"),
                };
            }
        }
    }
    marks.extend(copies);
    timeline.events = marks;
    timeline
}

/// Records that `node` has `role` in `term` from `at`, unless it already
/// had; a second change at the same instant (term, then role, in one step)
/// replaces the first, so no band has zero length.
fn set_state(
    marks: &mut Vec<Mark>,
    states: &mut BTreeMap<NodeId, (Role, Term, usize)>,
    at: f64,
    node: NodeId,
    role: Role,
    term: Term,
) {
    let kind = MarkKind::State { role, term };
    match states.get(&node) {
        Some(&(r, t, _)) if (r, t) == (role, term) => {}
        Some(&(_, _, index)) if marks[index].at == at => {
            marks[index].kind = kind;
            states.insert(node, (role, term, index));
        }
        _ => {
            states.insert(node, (role, term, marks.len()));
            marks.push(Mark { at, node, kind });
        }
    }
}

/// Writes `timeline` as SVG to `path`.
pub fn write_svg(path: &Path, timeline: &Timeline) -> std::io::Result<()> {
    std::fs::write(path, timeline.to_svg())
}
