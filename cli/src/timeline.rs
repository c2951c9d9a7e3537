//! The in-process cluster's event log as a timeline picture
//! ([`raft_election_timeline`]): what `--timeline FILE` draws.
//!
//! Each sent message is paired with the step that received it (the
//! earliest receipt of an equal message on the same link not yet paired),
//! so an arrow runs from the send to the receipt. On worker threads the
//! receiver can log its receipt a moment before the sender logs the send:
//! a receipt with no send yet waits for one logged within [`SKEW_MS`]. A
//! receipt with no send at all (a duplicating link's second copy) is a
//! second arrow from the send paired last. A delivered message never
//! received was lost with its receiver if that crashed, and is still in
//! flight otherwise. A crashed node's lane stays empty until it restarts,
//! whatever its aborted task logged on its way out.

use raft_election::{Message, NodeId, Role, Term};
use raft_election_runtime::{Delivery, Event, EventKind, LinkChange};
use raft_election_timeline::{
    Axis, Event as Mark, EventKind as MarkKind, Fate, Fault, MessageClass, Note, Timeline,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::time::Duration;

/// How long before its send a receipt may be logged and still be that
/// send's: the two are logged by different tasks, which on worker threads
/// run at the same time.
pub const SKEW_MS: f64 = 1.0;

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
    // Receipts logged before any send they could be: (at) by link and message.
    let mut early: BTreeMap<(NodeId, NodeId, Message), VecDeque<f64>> = BTreeMap::new();
    let mut crashes: BTreeMap<NodeId, Vec<f64>> = BTreeMap::new();
    // Crashed and not restarted: their tasks' last words draw no band.
    let mut down: BTreeSet<NodeId> = BTreeSet::new();
    let mut copies = Vec::new();
    for event in events {
        let (at, node) = (ms(event.at), event.node);
        let mark = |kind| Mark { at, node, kind };
        if down.contains(&node)
            && matches!(
                event.kind,
                EventKind::TermChanged { .. } | EventKind::RoleChanged { .. }
            )
        {
            continue;
        }
        match event.kind {
            EventKind::Started { restored } => {
                down.remove(&node);
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
                let key = (node, to, message);
                let fate = match delivery {
                    Delivery::Delivered => {
                        let waiting = early.get_mut(&key);
                        // Receipts too old to be this send's are copies of the last.
                        let stale = waiting.map_or(Vec::new(), |w| {
                            let mut stale = Vec::new();
                            while w.front().is_some_and(|&r| r < at - SKEW_MS) {
                                stale.extend(w.pop_front());
                            }
                            stale
                        });
                        for receipt in stale {
                            copy_of_last(&marks, &paired, key, receipt, &mut copies);
                        }
                        match early.get_mut(&key).and_then(VecDeque::pop_front) {
                            Some(receipt) => {
                                paired.insert(key, marks.len());
                                Fate::Delivered {
                                    at: receipt.max(at),
                                }
                            }
                            None => {
                                unpaired.entry(key).or_default().push_back(marks.len());
                                Fate::InFlight
                            }
                        }
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
                } else {
                    early.entry(key).or_default().push_back(at);
                }
            }
            EventKind::Crashed => {
                down.insert(node);
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
    // Receipts no send followed: copies of the send paired last.
    for (key, receipts) in early {
        for receipt in receipts {
            copy_of_last(&marks, &paired, key, receipt, &mut copies);
        }
    }
    marks.extend(copies);
    timeline.events = marks;
    timeline
}

/// A second arrow, to `receipt`, from the send last paired on `key`'s link
/// with its message (a duplicating link's second copy), if there was one.
fn copy_of_last(
    marks: &[Mark],
    paired: &BTreeMap<(NodeId, NodeId, Message), usize>,
    key: (NodeId, NodeId, Message),
    receipt: f64,
    copies: &mut Vec<Mark>,
) {
    if let Some(&index) = paired.get(&key) {
        let mut copy = marks[index].clone();
        if let MarkKind::Sent { fate, .. } = &mut copy.kind {
            *fate = Fate::Delivered { at: receipt };
        }
        copies.push(copy);
    }
}

/// Records that `node` has `role` in `term` from `at`, unless it already
/// had; a second change at the same instant (term, then role, in one step)
/// replaces the first, so no band has zero length.
pub(crate) fn set_state(
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

#[cfg(test)]
mod tests {
    use super::*;

    const N0: NodeId = NodeId(0);
    const N1: NodeId = NodeId(1);

    fn heartbeat() -> Message {
        Message::AppendEntries {
            term: Term(1),
            leader_id: N0,
            round: 0,
        }
    }

    fn event(at_us: u64, node: NodeId, kind: EventKind) -> Event {
        Event {
            at: Duration::from_micros(at_us),
            node,
            term: Term(1),
            kind,
        }
    }

    fn sent(at_us: u64) -> Event {
        let kind = EventKind::Sent {
            to: N1,
            message: heartbeat(),
            delivery: Delivery::Delivered,
        };
        event(at_us, N0, kind)
    }

    fn received(at_us: u64) -> Event {
        let kind = EventKind::Received {
            from: N0,
            message: heartbeat(),
        };
        event(at_us, N1, kind)
    }

    /// (sent, delivered) in ms of every arrow drawn, in order.
    fn arrows(events: &[Event]) -> Vec<(f64, Option<f64>)> {
        timeline("t", [N0, N1], events, &[])
            .events
            .iter()
            .filter_map(|mark| match &mark.kind {
                MarkKind::Sent { fate, .. } => Some((
                    mark.at,
                    match fate {
                        Fate::Delivered { at } => Some(*at),
                        _ => None,
                    },
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_receipt_logged_just_before_its_send_is_still_that_sends_arrow() {
        // On worker threads the receiver may log first, by microseconds.
        let drawn = arrows(&[received(10_000), sent(10_300)]);
        assert_eq!(drawn, [(10.3, Some(10.3))]);
    }

    #[test]
    fn a_second_receipt_with_no_send_of_its_own_is_a_copy_of_the_last_send() {
        let drawn = arrows(&[sent(10_000), received(10_000), received(30_000)]);
        assert_eq!(drawn, [(10.0, Some(10.0)), (10.0, Some(30.0))]);
    }

    /// A duplicate's copy arriving long before the next, equal heartbeat is
    /// the first send's, and the next heartbeat keeps its own receipt.
    #[test]
    fn an_old_copy_is_not_mistaken_for_the_receipt_of_the_next_equal_message() {
        let events = [
            sent(10_000),
            received(10_000),
            received(30_000),
            sent(60_000),
            received(60_000),
        ];
        let drawn = arrows(&events);
        assert!(drawn.contains(&(10.0, Some(30.0))), "{drawn:?}");
        assert!(drawn.contains(&(60.0, Some(60.0))), "{drawn:?}");
        assert_eq!(drawn.len(), 3, "{drawn:?}");
    }

    #[test]
    fn a_crashed_nodes_late_steps_draw_no_band_until_it_restarts() {
        let restored = raft_election::HardState::default();
        let role = |at_us, to| {
            event(
                at_us,
                N1,
                EventKind::RoleChanged {
                    from: Role::Follower,
                    to,
                },
            )
        };
        let events = [
            event(0, N1, EventKind::Started { restored }),
            event(5_000, N1, EventKind::Crashed),
            role(5_100, Role::Candidate),
            event(9_000, N1, EventKind::Started { restored }),
            role(12_000, Role::Candidate),
        ];
        let candidates: Vec<f64> = timeline("t", [N0, N1], &events, &[])
            .events
            .iter()
            .filter(|m| {
                matches!(
                    m.kind,
                    MarkKind::State {
                        role: Role::Candidate,
                        ..
                    }
                )
            })
            .map(|m| m.at)
            .collect();
        assert_eq!(candidates, [12.0]);
    }
}
