//! What a node refuses: at start, a state file that is missing, foreign,
//! locked or impossible, and wrong flags; while running, every kind of bad
//! input from the network, after which it still takes part in elections.

mod common;

use bytes::BytesMut;
use common::{Cluster, DEADLINE};
use raft_election::storage::{FileStorage, Storage};
use raft_election::{ClusterId, HardState, Message, NodeId, Term};
use raft_election_runtime::tcp::wire::{self, Body, Frame};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

/// Runs node `id` of `cluster` with its flags and `extra`, expecting it to
/// refuse to start; returns what it said.
fn refused(cluster: &Cluster, id: NodeId, extra: &[&str]) -> String {
    let mut args = cluster.args(id);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    // Text logs: the `error:` line an operator reads.
    let json = args.iter().position(|a| a == "json").unwrap();
    args[json] = "text".into();
    let (status, stderr) = cluster.run_to_end(&args);
    assert!(!status.success(), "{extra:?} started:\n{stderr}");
    stderr
}

/// Figure 2's "updated on stable storage before responding to RPCs" is only
/// as good as the file a node restarts from: each unsafe start is refused
/// with the file's path and the reason.
#[test]
fn a_node_refuses_to_start_from_a_missing_foreign_locked_or_impossible_state_file() {
    let mut cluster = Cluster::new(21, 3, None);
    let (n1, n2) = (NodeId(1), NodeId(2));
    let root = cluster.dir.path().to_path_buf();
    let file = |id: NodeId| FileStorage::path_in(&root.join(format!("n{}", id.0)), id);

    let said = refused(&cluster, n1, &[]);
    let missing = format!(
        "{} does not exist: has this node voted before?",
        file(n1).display()
    );
    assert!(said.contains(&missing) && said.contains("--init"), "{said}");

    cluster.start(n1, true);
    cluster.wait_for("n1 to listen", |h| {
        h.nodes[&n1].events("listen").next().map(|_| ())
    });
    let said = refused(&cluster, n1, &[]);
    let locked = format!(
        "{} is in use by another process (pid ",
        cluster.data_dir(n1).display()
    );
    assert!(said.contains(&locked), "{said}");
    cluster.kill(n1);

    let said = refused(&cluster, n1, &["--init"]);
    assert!(
        said.contains(&format!("{} already exists", file(n1).display())),
        "{said}"
    );

    let said = refused(&cluster, n1, &["--cluster-id", "2"]);
    let foreign = format!(
        "{} belongs to node n1 of cluster 1, but this is node n1 of cluster 2",
        file(n1).display()
    );
    assert!(said.contains(&foreign), "{said}");

    std::fs::create_dir_all(cluster.data_dir(n2)).unwrap();
    std::fs::copy(file(n1), file(n2)).unwrap();
    let said = refused(&cluster, n2, &[]);
    assert!(
        said.contains("belongs to node n1 of cluster 1, but this is node n2"),
        "{said}"
    );

    for (hard_state, reason) in [
        (
            HardState {
                current_term: Term(4),
                voted_for: Some(NodeId(9)),
            },
            "it records a vote for n9 in t4, which is not a voter of this cluster",
        ),
        (
            HardState {
                current_term: Term(u64::MAX),
                voted_for: None,
            },
            "the last one: this node could never campaign again",
        ),
    ] {
        let mut storage = FileStorage::open(&cluster.data_dir(n2), ClusterId(1), n2);
        storage.save(&hard_state).unwrap();
        let said = refused(&cluster, n2, &[]);
        assert!(
            said.contains("its stored state is refused") && said.contains(reason),
            "{said}"
        );
    }
}

#[test]
fn wrong_flags_get_a_clear_error_and_no_node() {
    let cluster = Cluster::new(22, 3, None);
    let n1 = NodeId(1);
    for (extra, expected) in [
        (vec!["--peer", "2"], "is not ID=ADDR"),
        (vec!["--peer", "1=127.0.0.1:9"], "is this node's own id"),
        (
            vec!["--election-min-ms", "400"],
            "election timeout range is empty",
        ),
        (
            vec!["--heartbeat-ms", "0"],
            "heartbeat interval 0ns must be positive",
        ),
        (vec!["--handshake-timeout-ms", "0"], "must be positive"),
    ] {
        let said = refused(&cluster, n1, &extra);
        assert!(said.contains(expected), "{extra:?}: {said}");
    }
}

/// One frame, length prefix included.
fn frame(cluster: u64, from: u8, body: Body) -> BytesMut {
    let mut out = BytesMut::new();
    let frame = Frame {
        cluster: ClusterId(cluster),
        from: NodeId(from),
        body,
    };
    wire::encode(&frame, &mut out);
    out
}

fn hello(cluster: u64, from: u8, to: u8) -> BytesMut {
    frame(cluster, from, Body::Hello { to: NodeId(to) })
}

/// Connects to `addr`, writes `bytes`, and waits for the node to close the
/// connection; returns our address, which its log must name.
fn send_and_wait_for_close(addr: SocketAddr, bytes: &[u8]) -> SocketAddr {
    let mut stream = TcpStream::connect(addr).unwrap();
    let ours = stream.local_addr().unwrap();
    stream.write_all(bytes).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let started = Instant::now();
    let mut buffer = [0_u8; 64];
    // The node never writes on an accepted connection: a read ends in EOF
    // (or a reset) when it closes it.
    let read = stream.read(&mut buffer);
    assert!(
        matches!(read, Ok(0) | Err(_)) && started.elapsed() < DEADLINE,
        "{ours}: not closed within {DEADLINE:?}: {read:?}"
    );
    ours
}

/// Every bad input of the issue against a live node: each connection is
/// closed, logged once with its address and reason, and the node goes on:
/// the cluster elects a new leader after its leader is killed.
#[test]
fn every_kind_of_bad_input_is_logged_once_with_its_address_and_the_node_keeps_electing() {
    let mut cluster = Cluster::new(23, 3, None);
    // Quick: the silent and half-open cases wait for this.
    cluster.extra = vec!["--handshake-timeout-ms".into(), "500".into()];
    cluster.start_all();
    let (leader, term) = cluster.wait_for_leader_after(Term(0));
    // The victim: a follower, so the election after the leader's death
    // needs it.
    let victim = *cluster.ids.iter().find(|&&id| id != leader).unwrap();
    let addr = cluster.addrs[&victim];
    let me = victim.0;
    let heartbeat = |from: u8| {
        frame(
            1,
            from,
            Body::Message(Message::AppendEntries {
                term: Term(1),
                leader_id: NodeId(from),
            }),
        )
    };
    let mut oversized = vec![0xff_u8, 0xff];
    oversized.extend([0_u8; 64]);
    let mut unknown_version = hello(1, 2, me).to_vec();
    unknown_version[2] = 99;
    let mut spoofed = hello(1, (me % 3) + 1, me);
    spoofed.extend_from_slice(&heartbeat(((me + 1) % 3) + 1));
    let mut half_open = hello(1, (me % 3) + 1, me);
    half_open.extend_from_slice(&heartbeat((me % 3) + 1)[..4]);
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        ("garbage", vec![0, 3, 1, 0xff, 0xff], "garbage (".into()),
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            "a frame longer than 256 bytes".into(),
        ),
        (
            "a frame over the size limit",
            oversized,
            "a frame longer than 256 bytes".into(),
        ),
        (
            "an unknown version",
            unknown_version,
            "wire version 99, but this node speaks version 1".into(),
        ),
        (
            "another cluster",
            hello(7, 2, me).to_vec(),
            "a frame of cluster 7, but this node is in cluster 1".into(),
        ),
        (
            "an unknown sender",
            hello(1, 9, me).to_vec(),
            "sender n9 is not a peer of this node".into(),
        ),
        (
            "a spoofed sender",
            spoofed.to_vec(),
            "on the connection of".into(),
        ),
        (
            "a half-open connection",
            half_open.to_vec(),
            "left a frame unfinished within 500ms".into(),
        ),
        (
            "a silent peer",
            Vec::new(),
            "sent no hello within 500ms".into(),
        ),
    ];
    for (what, bytes, reason) in &cases {
        let ours = send_and_wait_for_close(addr, bytes);
        let needle = ours.to_string();
        let lines = cluster.wait_for(&format!("{victim} to log {what}"), |h| {
            let lines: Vec<String> = h.nodes[&victim]
                .lines
                .iter()
                .filter(|l| l["peer_address"] == needle.as_str() && l["level"] == "WARN")
                .map(|l| l["message"].as_str().unwrap_or_default().to_owned())
                .collect();
            (!lines.is_empty()).then_some(lines)
        });
        assert_eq!(lines.len(), 1, "{what}: logged once: {lines:?}");
        assert!(lines[0].contains(reason.as_str()), "{what}: {lines:?}");
        eprintln!("{what}: {}", lines[0]);
    }
    // Counted before the leader is killed: its own connections may end
    // mid-frame then, which is worth a line too.
    let rejected = cluster.history().nodes[&victim]
        .lines
        .iter()
        .filter(|l| l["level"] == "WARN" && l["target"] == "raft_election_runtime::tcp::inbound")
        .count();
    assert_eq!(
        rejected,
        cases.len(),
        "one line per bad connection, no more"
    );
    cluster.kill(leader);
    let (successor, _) = cluster.wait_for_leader_after(term);
    assert_ne!(successor, leader);
    cluster.history().check_safety().unwrap();
}
