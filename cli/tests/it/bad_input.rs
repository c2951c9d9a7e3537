//! What a node refuses: at start, a state file that is missing, foreign,
//! locked or impossible, and wrong flags; while running, every kind of bad
//! input from the network, after which it still takes part in elections.

use crate::common::{Cluster, DEADLINE, History, get_status};
use bytes::BytesMut;
use raft_election::storage::Storage;
use raft_election::{ClusterId, HardState, Message, NodeId, Term};
use raft_election_cli::log_lines::{LogLine, NodeEvent};
use raft_election_runtime::ConnectionEnd;
use raft_election_runtime::FileStorage;
use raft_election_runtime::record_log::Refusal;
use raft_election_runtime::tcp::wire::{self, Body, Frame, WIRE_VERSION};
use socket2::{Domain, Socket, Type};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
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
/// with the file's path and the reason. A missing data directory is not
/// created without --init.
#[test]
fn a_node_refuses_to_start_from_a_missing_foreign_locked_or_impossible_state_file() {
    let mut cluster = Cluster::new(21, 3, None);
    let (n1, n2) = (NodeId(1), NodeId(2));
    let root = cluster.dir().to_path_buf();
    let file = |id: NodeId| FileStorage::path_in(&root.join(format!("n{}", id.0)), id);

    // A mistyped directory is refused, and not created.
    let said = refused(&cluster, n1, &[]);
    let missing = format!(
        "data directory {} does not exist: is the path right?",
        cluster.data_dir(n1).display()
    );
    assert!(said.contains(&missing) && said.contains("--init"), "{said}");
    assert!(!cluster.data_dir(n1).exists(), "{said}");
    // A directory without the node's file.
    std::fs::create_dir(cluster.data_dir(n1)).unwrap();
    let said = refused(&cluster, n1, &[]);
    let missing = format!(
        "{} does not exist: has this node voted before?",
        file(n1).display()
    );
    assert!(said.contains(&missing) && said.contains("--init"), "{said}");

    cluster.start(n1, true);
    cluster.wait_for("n1 to listen", |h| {
        h.nodes
            .get(&n1)?
            .events()
            .find_map(|(_, event)| match event {
                NodeEvent::Listening { .. } => Some(()),
                _ => None,
            })
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
                current_term: Term(Term::CEILING.0 + 1),
                voted_for: None,
            },
            "above the term ceiling t9007199254740991: no node ever holds such a term",
        ),
        (
            HardState {
                current_term: Term(u64::MAX),
                voted_for: None,
            },
            "above the term ceiling",
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

    // A node persists terms up to the ceiling, so it starts from them.
    for term in [Term(Term::CEILING.0 - 1), Term::CEILING] {
        let restored = HardState {
            current_term: term,
            voted_for: Some(n1),
        };
        FileStorage::open(&cluster.data_dir(n2), ClusterId(1), n2)
            .save(&restored)
            .unwrap();
        cluster.start(n2, false);
        let listening = |h: &History| {
            h.nodes
                .get(&n2)?
                .events()
                .find_map(|(_, event)| match event {
                    NodeEvent::Listening { restored: r, .. } if r.current_term == term => Some(*r),
                    _ => None,
                })
        };
        assert_eq!(
            cluster.wait_for(&format!("n2 to start at {term}"), listening),
            restored
        );
        cluster.kill(n2);
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
        (
            vec!["--leader-lease", "--max-clock-drift", "200%"],
            "expected a percentage from 0% to 100%",
        ),
        (
            vec!["--leader-lease", "--features", "check-quorum"],
            "the leader lease needs lease-guarded votes",
        ),
        (
            vec!["--run-while-leader", "--kill-grace-ms", "50", "--", "true"],
            "--kill-grace-ms must be positive and less than --stop-margin-ms",
        ),
        (
            vec![
                "--run-while-leader",
                "--stop-margin-ms",
                "100",
                "--",
                "true",
            ],
            "plus the heartbeat must be less than the lease",
        ),
        (
            vec!["--run-while-leader"],
            "--run-while-leader needs a COMMAND after `--`",
        ),
        (vec!["--", "true"], "needs --run-while-leader"),
        (
            vec![
                "--leader-lease",
                "--max-clock-drift",
                "100%",
                "--heartbeat-ms",
                "75",
            ],
            "it lapses between two renewals",
        ),
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

/// Connects to `addr` from `ip`, writes `bytes`, and waits for the node to
/// close the connection; returns our address, which its log must name.
fn send_and_wait_for_close(ip: IpAddr, addr: SocketAddr, bytes: &[u8]) -> SocketAddr {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(ip, 0).into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut stream = TcpStream::from(socket);
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

/// Why `victim` closed each connection from `address`, by its log: the
/// reason and the cause.
fn refusals(history: &History, victim: NodeId, address: SocketAddr) -> Vec<(String, Refusal)> {
    history.nodes[&victim]
        .lines
        .iter()
        .filter_map(LogLine::connection)
        .filter(|ended| ended.address == address)
        .filter_map(|ended| match ended.end {
            ConnectionEnd::Refused(cause) => Some((ended.reason.clone(), cause)),
            ConnectionEnd::Lost => None,
        })
        .collect()
}

/// Every bad input of the issue against a live node: each connection is
/// closed, logged once with its address and reason, and the node goes on:
/// the cluster elects a new leader after its leader is killed.
///
/// Five voters, four running: the rogue connections claim to be n5, which
/// never runs. A hello naming a running peer would replace that peer's
/// own connection (one per peer), and the peer's reconnection would then
/// replace the rogue one before it could stall.
#[test]
fn every_kind_of_bad_input_is_logged_once_with_its_address_and_the_node_keeps_electing() {
    let mut cluster = Cluster::new(23, 5, None);
    let ids = cluster.ids();
    let (absent, running) = ids.split_last().unwrap();
    let (absent, running) = (*absent, running.to_vec());
    for &id in &running {
        cluster.start(id, true);
    }
    let (leader, term) = cluster.wait_for_leader_after(Term(0));
    // The victim: a follower, so the election after the leader's death
    // needs it (three of the five voters are left).
    let victim = *running.iter().find(|&&id| id != leader).unwrap();
    let addr = cluster.addrs()[&victim];
    let (me, rogue) = (victim.0, absent.0);
    // Where n5 would connect from, and where anyone else does.
    let rogue_ip = cluster.addrs()[&absent].ip();
    let elsewhere = IpAddr::from([127, 0, 0, 1]);
    let other = running.iter().find(|&&id| id != victim).unwrap().0;
    let heartbeat = |from: u8| {
        frame(
            1,
            from,
            Body::Message(Message::AppendEntries {
                term: Term(1),
                leader_id: NodeId(from),
                round: 0,
            }),
        )
    };
    let mut oversized = vec![0xff_u8, 0xff];
    oversized.extend([0_u8; 64]);
    let mut unknown_version = hello(1, rogue, me).to_vec();
    unknown_version[2] = 99;
    let mut spoofed = hello(1, rogue, me);
    spoofed.extend_from_slice(&heartbeat(other));
    let above = Term(Term::CEILING.0 + 1);
    let mut above_ceiling = hello(1, rogue, me);
    above_ceiling.extend_from_slice(&frame(
        1,
        rogue,
        Body::Message(Message::AppendEntries {
            term: above,
            leader_id: NodeId(rogue),
            round: 0,
        }),
    ));
    let mut unfinished = hello(1, rogue, me);
    unfinished.extend_from_slice(&heartbeat(rogue)[..4]);
    // The running peers' addresses serve too (the node admits peers'
    // addresses only): each cause and address gets a few lines at once.
    let peer_ip = |index: usize| {
        let peers: Vec<IpAddr> = running
            .iter()
            .filter(|&&id| id != victim)
            .map(|id| cluster.addrs()[id].ip())
            .collect();
        peers[index % peers.len()]
    };
    let (bad, wrong) = (Refusal::BadFrame, Refusal::WrongIdentity);
    let cases: Vec<(&str, IpAddr, Vec<u8>, String, Refusal)> = vec![
        (
            "a connection from an address that is no peer's",
            elsewhere,
            hello(1, rogue, me).to_vec(),
            "its address is no peer's".into(),
            Refusal::UnknownAddress,
        ),
        (
            "garbage",
            peer_ip(0),
            vec![0, 3, WIRE_VERSION, 0xff, 0xff],
            "garbage (".into(),
            bad,
        ),
        (
            "an HTTP request",
            peer_ip(1),
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            "a frame longer than 256 bytes".into(),
            bad,
        ),
        (
            "a frame over the size limit",
            peer_ip(2),
            oversized,
            "a frame longer than 256 bytes".into(),
            bad,
        ),
        (
            "an unknown version",
            rogue_ip,
            unknown_version,
            format!("wire version 99, but this node speaks version {WIRE_VERSION}"),
            bad,
        ),
        (
            "another cluster",
            rogue_ip,
            hello(7, rogue, me).to_vec(),
            "a frame of cluster 7, but this node is in cluster 1".into(),
            bad,
        ),
        (
            "an unknown sender",
            peer_ip(0),
            hello(1, 9, me).to_vec(),
            "sender n9 is not a peer of this node".into(),
            bad,
        ),
        (
            "a peer's hello from another peer's address",
            peer_ip(1),
            hello(1, rogue, me).to_vec(),
            format!(
                "a hello from {absent}, whose address is {rogue_ip}, but from {}",
                peer_ip(1)
            ),
            wrong,
        ),
        (
            "a spoofed sender",
            rogue_ip,
            spoofed.to_vec(),
            format!("a frame from n{other} on the connection of {absent}"),
            bad,
        ),
        (
            "a heartbeat above the term ceiling",
            rogue_ip,
            above_ceiling.to_vec(),
            format!(
                "AppendEntries of {above}, above the term ceiling {}",
                Term::CEILING
            ),
            Refusal::AboveCeiling,
        ),
        (
            "a frame left unfinished",
            rogue_ip,
            unfinished.to_vec(),
            "left a frame unfinished within 2s".into(),
            Refusal::Stalled,
        ),
        (
            "a silent peer",
            peer_ip(2),
            Vec::new(),
            "sent no hello within 2s".into(),
            Refusal::Stalled,
        ),
    ];
    let mut addresses = Vec::new();
    for (what, from, bytes, reason, cause) in &cases {
        let ours = send_and_wait_for_close(*from, addr, bytes);
        let (said, logged) = cluster.wait_for(&format!("{victim} to log {what}"), |h| {
            refusals(h, victim, ours).into_iter().next()
        });
        assert!(said.contains(reason.as_str()), "{what}: {said}");
        assert_eq!(logged, *cause, "{what}: {said}");
        eprintln!("{what}: {said}");
        addresses.push((*what, ours));
    }
    // Counted before the leader is killed: its own connections may end
    // mid-frame then, which is worth a line too. No other connection (a
    // real peer's) was refused.
    let rejected = cluster.history().nodes[&victim]
        .lines
        .iter()
        .filter_map(LogLine::connection)
        .filter(|ended| matches!(ended.end, ConnectionEnd::Refused(_)))
        .count();
    assert_eq!(
        rejected,
        cases.len(),
        "one line per bad connection, no more"
    );
    cluster.kill(leader);
    let (successor, _) = cluster.wait_for_leader_after(term);
    assert_ne!(successor, leader);
    let history = cluster.history();
    history.check_safety().unwrap();
    assert!(
        history.nodes[&victim].term < Term::CEILING,
        "{victim} never adopted a forged term"
    );
    // By now a second line about any of them would have been written.
    for (what, ours) in addresses {
        let said = refusals(&history, victim, ours);
        assert_eq!(said.len(), 1, "{what}: logged once: {said:?}");
    }
}

/// The status endpoint under clients that connect and send nothing: it
/// serves a bounded number at once (closing the others at once), closes
/// the silent ones after its deadline, never starts a thread per client,
/// and answers the next GET /status.
#[test]
fn silent_http_clients_are_bounded_and_closed_and_the_status_endpoint_still_answers() {
    let mut cluster = Cluster::new(24, 3, None);
    let n1 = NodeId(1);
    let status = cluster.start_with_status(n1);
    let silent: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(status).unwrap())
        .collect();
    #[cfg(target_os = "linux")]
    {
        let threads = std::fs::read_dir(format!("/proc/{}/task", cluster.pid(n1)))
            .unwrap()
            .count();
        assert!(
            threads <= 4,
            "{threads} threads with {} clients connected",
            silent.len()
        );
    }
    for mut stream in silent {
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let read = stream.read(&mut [0_u8; 64]);
        let timed_out = read.as_ref().is_err_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )
        });
        assert!(
            matches!(read, Ok(0) | Err(_)) && !timed_out,
            "waited {DEADLINE:?} for the node to close a silent client: {read:?}"
        );
    }
    let answer = get_status(status);
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("\"role\":"),
        "{answer}"
    );
}
