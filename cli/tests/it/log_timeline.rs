//! `raft-election timeline`: three real node processes on loopback
//! (127.41.0.<id>), one killed with SIGKILL and restarted, all stopped with
//! SIGTERM, and their JSON logs drawn. What the picture must show is
//! counted from the logs themselves, independently of the drawing code.

use crate::common::{BIN, Cluster, History};
use raft_election::{Input, Message, NodeId, Record, Term};
use raft_election_cli::log_lines::Fact;
use raft_election_runtime::Delivery;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn timeline(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("timeline")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

/// Sent and received messages by link, as the logs say: (from, to,
/// message) -> (delivered sends, receipts). Heartbeats left out: at `-v` a
/// node logs every other message, sent or received, and a heartbeat only
/// where it changed something (its receipt, never its send).
type Link = (NodeId, NodeId, Message);

fn messages(history: &History) -> BTreeMap<Link, (usize, usize)> {
    let mut links: BTreeMap<Link, (usize, usize)> = BTreeMap::new();
    for (&id, log) in &history.nodes {
        for (line, record) in log.records() {
            let (sent, from, to, message) = match (record, &line.fact) {
                (Record::Sent { to, message }, Fact::Record(_, Some(Delivery::Delivered))) => {
                    (true, id, *to, *message)
                }
                (
                    Record::Stepped {
                        input: Input::Receive { from, message },
                        ..
                    },
                    _,
                ) => (false, *from, id, *message),
                _ => continue,
            };
            if message.is_heartbeat() {
                continue;
            }
            let counts = links.entry((from, to, message)).or_default();
            if sent {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
    }
    links
}

fn groups<'a>(svg: &'a roxmltree::Document<'a>, class: &str) -> Vec<roxmltree::Node<'a, 'a>> {
    svg.descendants()
        .filter(|n| n.has_tag_name("g") && n.attribute("class") == Some(class))
        .collect()
}

/// Start three nodes, `kill -9` the leader once they elect one, restart it
/// once the others elect a successor, stop all with SIGTERM, then draw the
/// logs: one lane per node, an arrow per send that a receipt pairs with
/// (every vote request and vote, no heartbeats at `-v`), a mark for every
/// send, a crash for the kill, a stop for each SIGTERM, a restart ring.
#[test]
fn three_real_nodes_logs_draw_a_lane_each_an_arrow_per_received_message_and_the_kill_and_restart() {
    let mut cluster = Cluster::new(41, 3, None);
    cluster.start_all();
    let (first, t1) = cluster.wait_for_leader_after(Term(0));
    cluster.kill(first);
    let (_, t2) = cluster.wait_for_leader_after(t1);
    cluster.start(first, false);
    // Restarted and following the leader of a term at least t2.
    cluster.wait_for(&format!("{first} to restart and follow a leader"), |h| {
        let log = &h.nodes[&first];
        let restarted = log.starts().count() == 2;
        (restarted && log.leader.is_some() && log.term >= t2).then_some(())
    });
    for id in cluster.ids() {
        assert!(cluster.terminate(id).success(), "{id} exits 0 on SIGTERM");
    }
    let history = cluster.history();
    history
        .check_safety()
        .expect("one leader a term, one vote a term");

    let svg_path = cluster.dir().join("timeline.svg");
    let logs: Vec<String> = cluster
        .ids()
        .iter()
        .map(|&id| cluster.log_path(id).display().to_string())
        .collect();
    let mut args = vec!["--out", svg_path.to_str().expect("UTF-8")];
    args.extend(logs.iter().map(String::as_str));
    let output = timeline(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{first} killed in {t1} and restarted; raft-election timeline said:\n{stdout}");

    let text = crate::common::read(&svg_path);
    let svg = roxmltree::Document::parse(&text).expect("the SVG parses as XML");
    let lanes: Vec<&str> = groups(&svg, "tl-lane")
        .iter()
        .filter_map(|g| g.attribute("data-node"))
        .collect();
    assert_eq!(lanes, ["n1", "n2", "n3"]);

    // Counted from the logs: a send and a receipt of an equal message on
    // one link pair up; all of a link's equal messages either way.
    let links = messages(&history);
    let paired: usize = links.values().map(|&(sent, got)| sent.min(got)).sum();
    let receipts: usize = links.values().map(|&(_, got)| got).sum();
    assert_eq!(
        paired, receipts,
        "every receipt has its send in the logs: {links:?}"
    );
    // Two elections at least, each a RequestVote and a granted vote from
    // the one other node a majority of three needs.
    assert!(paired >= 4, "{links:?}");
    let messages = groups(&svg, "tl-message");
    let arrows: u64 = messages
        .iter()
        .filter(|g| g.attribute("data-fate") == Some("delivered"))
        .map(|g| {
            g.attribute("data-count")
                .and_then(|c| c.parse::<u64>().ok())
                .expect("a count")
        })
        .sum();
    let drawn: Vec<String> = messages
        .iter()
        .map(|g| {
            let attribute = |name| g.attribute(name).unwrap_or("-");
            format!(
                "{}->{} {} {} {}..{}",
                attribute("data-from"),
                attribute("data-to"),
                attribute("data-class"),
                attribute("data-fate"),
                attribute("data-sent"),
                attribute("data-delivered")
            )
        })
        .collect();
    assert_eq!(
        arrows, paired as u64,
        "{stdout}\nfrom the logs: {links:#?}\ndrawn: {drawn:#?}"
    );
    let sends = history
        .nodes
        .values()
        .map(|log| {
            log.records()
                .filter(|(_, record)| matches!(record, Record::Sent { .. }))
                .count()
        })
        .sum::<usize>();
    assert_eq!(messages.len(), sends, "a mark per logged send: {stdout}");
    assert!(
        stdout.contains(&format!("{paired} messages received")),
        "{stdout}"
    );

    let faults: Vec<(&str, &str)> = groups(&svg, "tl-fault")
        .iter()
        .map(|g| {
            (
                g.attribute("data-node").expect("a node"),
                g.attribute("data-fault").expect("a kind"),
            )
        })
        .collect();
    let killed = first.to_string();
    let count = |node: &str, kind: &str| faults.iter().filter(|&&f| f == (node, kind)).count();
    // The kill, the restart and the final stop.
    assert_eq!(count(&killed, "crash"), 1, "{faults:?}");
    assert_eq!(count(&killed, "restart"), 1, "{faults:?}");
    assert_eq!(count(&killed, "stop"), 1, "{faults:?}");
    for id in cluster.ids().iter().filter(|&&id| id != first) {
        assert_eq!(count(&id.to_string(), "stop"), 1, "{id}: {faults:?}");
    }
    assert_eq!(faults.len(), 5, "{faults:?}");
    assert!(
        stdout.contains("1 restarts, 3 stops, 1 lives ended without stop (killed)"),
        "{stdout}"
    );
    let notes: Vec<String> = svg
        .descendants()
        .filter(|n| n.attribute("class") == Some("tl-note"))
        .filter_map(|n| n.text().map(str::to_owned))
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains(&format!("{killed}'s last line")) && n.contains("killed")),
        "{notes:?}"
    );
}

#[test]
fn a_missing_log_a_log_without_node_lines_and_garbage_beside_node_lines_are_reported_clearly() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path().join("t.svg");
    let out = out.to_str().expect("UTF-8");
    let missing = dir.path().join("missing.log");
    let output = timeline(&["--out", out, missing.to_str().expect("UTF-8")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("cannot read") && stderr.contains("missing.log"),
        "{stderr}"
    );

    let text_log = dir.path().join("text.log");
    std::fs::write(&text_log, "INFO n1 t0 follower: starts\n").expect("written");
    let output = timeline(&["--out", out, text_log.to_str().expect("UTF-8")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("no node log lines"), "{stderr}");
    assert!(!Path::new(out).exists(), "nothing drawn");

    let mixed = dir.path().join("mixed.log");
    let started = serde_json::json!({"started": {"current_term": 0, "voted_for": null}});
    let node_line = |node: u8| {
        serde_json::json!({"ts": 1.7e9, "node": node, "term": 0, "role": "follower",
                           "record": started})
        .to_string()
    };
    let lines = [
        node_line(1),
        "thread 'main' panicked".to_owned(),
        node_line(2),
        serde_json::json!({"ts": 1.7e9, "node": 1, "term": 0, "role": "follower",
                           "event": {"warp": {}}})
        .to_string(),
    ];
    std::fs::write(&mixed, lines.join("\n")).expect("written");
    let output = timeline(&["--out", out, mixed.to_str().expect("UTF-8")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("1 not JSON, 1 unknown \"warp\""),
        "{stdout}"
    );
    let svg_text = crate::common::read(Path::new(out));
    let svg = roxmltree::Document::parse(&svg_text).expect("XML");
    assert_eq!(groups(&svg, "tl-lane").len(), 2, "two nodes in one file");
}

#[test]
fn the_help_says_which_flags_the_nodes_need() {
    let output = timeline(&["--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for flag in ["--log-format json", "-v", "-vv", "--out"] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
    let output = timeline(&["--out", "x.svg", "--max-skew-ms", "-3", "a.log"]);
    assert!(!output.status.success(), "a negative skew is refused");
}
