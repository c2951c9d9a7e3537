//! The SVG is well-formed XML and holds one mark per thing drawn.

use raft_election::{NodeId, Role, Term};
use raft_election_timeline::{Axis, Event, EventKind, Fate, Fault, MessageClass, Note, Timeline};

const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);

fn state(at: f64, node: NodeId, role: Role, term: u64) -> Event {
    Event {
        at,
        node,
        kind: EventKind::State {
            role,
            term: Term(term),
        },
    }
}

fn sent(at: f64, from: NodeId, to: NodeId, class: MessageClass, fate: Fate) -> Event {
    Event {
        at,
        node: from,
        kind: EventKind::Sent {
            to,
            message: format!("{} from {from} <&> \"quoted\"", class.name()),
            class,
            fate,
        },
    }
}

fn fault(at: f64, node: NodeId, fault: Fault) -> Event {
    Event {
        at,
        node,
        kind: EventKind::Fault(fault),
    }
}

/// An election, a heartbeat round, a crash and a partition, on `axis`.
fn election(axis: Axis) -> Timeline {
    let mut timeline = Timeline::new("an election <of> \"three\"", vec![N0, N1, N2], axis);
    let delivered = |at| Fate::Delivered { at };
    timeline.events = vec![
        state(0.0, N0, Role::Follower, 0),
        state(0.0, N1, Role::Follower, 0),
        state(0.0, N2, Role::Follower, 0),
        Event {
            at: 1.0,
            node: N0,
            kind: EventKind::ElectionTimeout,
        },
        state(1.0, N0, Role::Candidate, 1),
        sent(1.0, N0, N1, MessageClass::VoteRequest, delivered(2.0)),
        sent(1.0, N0, N2, MessageClass::VoteRequest, delivered(3.0)),
        sent(2.0, N1, N0, MessageClass::VoteGranted, delivered(4.0)),
        sent(3.0, N2, N0, MessageClass::VoteRejected, delivered(5.0)),
        state(4.0, N0, Role::Leader, 1),
        sent(6.0, N0, N1, MessageClass::Heartbeat, Fate::InFlight),
        sent(
            6.0,
            N0,
            N2,
            MessageClass::Heartbeat,
            Fate::Lost {
                at: 6.0,
                reason: "lost: link cut".to_owned(),
            },
        ),
        fault(7.0, N2, Fault::Crash),
        fault(8.0, N2, Fault::Restart),
        state(8.0, N2, Role::Follower, 0),
        fault(9.0, N0, Fault::Partition { group: Some(0) }),
        fault(9.0, N1, Fault::Partition { group: Some(1) }),
        fault(9.0, N2, Fault::Partition { group: None }),
        fault(10.0, N1, Fault::Heal),
        // Ignored: a node with no lane, and a time that is not a number.
        state(3.0, NodeId(9), Role::Leader, 4),
        state(f64::NAN, N1, Role::Leader, 4),
    ];
    timeline.notes = vec![Note {
        at: 4.0,
        text: "n0 elected".to_owned(),
        alarm: false,
    }];
    timeline
}

/// The elements carrying `class`.
fn marked<'a>(document: &'a roxmltree::Document<'a>, class: &str) -> Vec<roxmltree::Node<'a, 'a>> {
    document
        .descendants()
        .filter(|n| n.attribute("class") == Some(class))
        .collect()
}

#[test]
fn a_timeline_and_a_sequence_diagram_parse_as_xml_with_a_lane_per_node_and_a_mark_per_event() {
    for axis in [Axis::Milliseconds, Axis::Steps] {
        let svg = election(axis).to_svg();
        let document = roxmltree::Document::parse(&svg)
            .unwrap_or_else(|e| panic!("{axis:?}: not XML: {e}\n{svg}"));
        assert_eq!(document.root_element().tag_name().name(), "svg");
        let lanes: Vec<&str> = marked(&document, "tl-lane")
            .iter()
            .filter_map(|n| n.attribute("data-node"))
            .collect();
        assert_eq!(lanes, ["n0", "n1", "n2"], "{axis:?}");
        let messages = marked(&document, "tl-message");
        let fates: Vec<&str> = messages
            .iter()
            .filter_map(|n| n.attribute("data-fate"))
            .collect();
        assert_eq!(
            fates,
            [
                "delivered",
                "delivered",
                "delivered",
                "delivered",
                "in-flight",
                "lost"
            ],
            "{axis:?}"
        );
        let faults: Vec<&str> = marked(&document, "tl-fault")
            .iter()
            .filter_map(|n| n.attribute("data-fault"))
            .collect();
        assert_eq!(
            faults,
            [
                "crash",
                "restart",
                "partition",
                "partition",
                "partition",
                "heal"
            ],
            "{axis:?}"
        );
        assert_eq!(marked(&document, "tl-timeout").len(), 1, "{axis:?}");
        // Bands: n0 follower, candidate, leader; n1 follower; n2 follower
        // until the crash and again after the restart.
        let bands: Vec<(&str, &str)> = marked(&document, "tl-band")
            .iter()
            .filter_map(|n| Some((n.attribute("data-role")?, n.attribute("data-term")?)))
            .collect();
        assert_eq!(
            bands,
            [
                ("follower", "0"),
                ("candidate", "1"),
                ("leader", "1"),
                ("follower", "0"),
                ("follower", "0"),
                ("follower", "0"),
            ],
            "{axis:?}"
        );
        // Text came through escaped, and back out of the parser intact.
        let texts: String = document
            .descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .collect();
        assert!(texts.contains("an election <of> \"three\""), "{axis:?}");
        assert!(texts.contains("n0 elected"), "{axis:?}");
    }
}

#[test]
fn crowded_heartbeats_are_thinned_into_counted_arrows_and_votes_never_are() {
    let mut timeline = Timeline::new("ten seconds", vec![N0, N1], Axis::Milliseconds);
    timeline.events.push(state(0.0, N0, Role::Leader, 1));
    timeline.events.push(state(0.0, N1, Role::Follower, 1));
    // A heartbeat every 10 ms for 10 s: far closer than a few pixels.
    for i in 0..1000_u32 {
        let at = f64::from(i) * 10.0;
        let fate = Fate::Delivered { at: at + 0.1 };
        timeline
            .events
            .push(sent(at, N0, N1, MessageClass::Heartbeat, fate));
    }
    for i in 0..20_u32 {
        let at = f64::from(i) * 10.0 + 5.0;
        let fate = Fate::Delivered { at: at + 0.1 };
        timeline
            .events
            .push(sent(at, N1, N0, MessageClass::VoteRequest, fate));
    }
    let svg = timeline.to_svg();
    let document = roxmltree::Document::parse(&svg).expect("XML");
    let messages = marked(&document, "tl-message");
    let count = |class: &str| -> (usize, u64) {
        let arrows: Vec<_> = messages
            .iter()
            .filter(|n| n.attribute("data-class") == Some(class))
            .collect();
        let total = arrows
            .iter()
            .filter_map(|n| n.attribute("data-count")?.parse::<u64>().ok())
            .sum();
        (arrows.len(), total)
    };
    let (arrows, heartbeats) = count("heartbeat");
    assert_eq!(heartbeats, 1000, "every heartbeat is counted once");
    assert!(arrows < 500, "{arrows} heartbeat arrows: not thinned");
    assert_eq!(
        count("vote-request"),
        (20, 20),
        "one arrow per vote request"
    );
}

#[test]
fn an_empty_timeline_is_still_a_picture() {
    for axis in [Axis::Milliseconds, Axis::Steps] {
        let svg = Timeline::new("nothing", Vec::new(), axis).to_svg();
        roxmltree::Document::parse(&svg).expect("XML");
    }
}

#[test]
fn absurd_times_are_left_out_and_never_hang_the_renderer() {
    for axis in [Axis::Milliseconds, Axis::Steps] {
        let mut timeline = Timeline::new("absurd", vec![N0, N1], axis);
        for at in [f64::MAX, -f64::MAX, f64::INFINITY, f64::NAN, 1e300, -1e300] {
            timeline.events.push(state(at, N0, Role::Leader, u64::MAX));
            timeline.events.push(sent(
                0.0,
                N0,
                N1,
                MessageClass::Other,
                Fate::Delivered { at },
            ));
            timeline.notes.push(Note {
                at,
                text: "never".to_owned(),
                alarm: true,
            });
        }
        timeline.events.push(state(0.0, N1, Role::Follower, 0));
        timeline.events.push(state(1e9, N1, Role::Candidate, 1));
        let svg = timeline.to_svg();
        let document = roxmltree::Document::parse(&svg).expect("XML");
        for dimension in ["width", "height"] {
            let size: f64 = document
                .root_element()
                .attribute(dimension)
                .and_then(|w| w.parse().ok())
                .expect("a size");
            assert!(
                size.is_finite() && size < 100_000.0,
                "{axis:?}: {dimension} {size}"
            );
        }
        assert!(marked(&document, "tl-message").is_empty(), "{axis:?}");
        assert!(!svg.contains("never"), "{axis:?}");
    }
}
