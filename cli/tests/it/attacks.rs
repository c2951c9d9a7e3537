//! Tests that play the attacker against real node processes: a process on
//! the same host, connecting from the members' own loopback addresses, with
//! no certificate, another CA's, or a member's certificate under another
//! member's id. With TLS every forged frame is refused and counted, and the
//! cluster keeps one leader in one term; with plaintext the same frames
//! move it, which is what docs/operations.md, "What plaintext does not
//! protect against", says.

use crate::common::{Cluster, History};
use bytes::BytesMut;
use raft_election::{ClusterId, Message, NodeId, Term};
use raft_election_cli::certs::node_files;
use raft_election_runtime::ConnectionEnd;
use raft_election_runtime::record_log::Refusal;
use raft_election_runtime::tcp::certs::{Authority, Issued};
use raft_election_runtime::tcp::tls::identity_name;
use raft_election_runtime::tcp::wire::{self, Body, Frame};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use socket2::{Domain, Socket, Type};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Who the attacker pretends to be, and with what.
#[derive(Clone)]
pub(crate) enum Impostor {
    /// Plaintext frames: all a node without TLS asks for.
    Plain,
    /// TLS, trusting the cluster's CA (public), with no certificate.
    NoCertificate,
    /// TLS with a certificate of another CA, for the claimed id.
    OtherCa(Issued),
    /// TLS with a member's own certificate and key, under another id.
    Member(Issued),
}

impl Impostor {
    /// The three impostors TLS must refuse: no certificate, another CA's
    /// certificate for `claimed`, and the certificate of member `member`
    /// (from the cluster's files in `tls_dir`).
    pub(crate) fn every_tls(
        tls_dir: &std::path::Path,
        claimed: NodeId,
        member: NodeId,
    ) -> Vec<Self> {
        let stranger = Authority::new(ClusterId(1)).unwrap();
        let foreign = stranger
            .node(claimed, time::OffsetDateTime::now_utc(), 30)
            .unwrap();
        let files = node_files(tls_dir, member);
        let own = Issued {
            cert: std::fs::read_to_string(files.cert).unwrap(),
            key: std::fs::read_to_string(files.key).unwrap(),
        };
        vec![
            Self::NoCertificate,
            Self::OtherCa(foreign),
            Self::Member(own),
        ]
    }

    /// The cause a node gives for refusing it.
    pub(crate) fn refusal(&self) -> Refusal {
        match self {
            Self::Plain => Refusal::TlsHandshake,
            Self::NoCertificate => Refusal::NoCertificate,
            Self::OtherCa(_) => Refusal::UntrustedCertificate,
            Self::Member(_) => Refusal::WrongIdentity,
        }
    }

    /// A TLS client trusting the cluster's CA (in `tls_dir`).
    fn client(&self, tls_dir: &std::path::Path) -> Option<Arc<rustls::ClientConfig>> {
        let ca = std::fs::read(node_files(tls_dir, NodeId(0)).ca).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(&ca).unwrap())
            .unwrap();
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let config = match self {
            Self::Plain => return None,
            Self::NoCertificate => builder.with_no_client_auth(),
            Self::OtherCa(issued) | Self::Member(issued) => {
                let chain = vec![CertificateDer::from_pem_slice(issued.cert.as_bytes()).unwrap()];
                let key = PrivateKeyDer::from_pem_slice(issued.key.as_bytes()).unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
        };
        Some(Arc::new(config))
    }
}

/// One frame of cluster 1, length prefix included.
pub(crate) fn frame(from: NodeId, body: Body) -> BytesMut {
    let mut out = BytesMut::new();
    let frame = Frame {
        cluster: ClusterId(1),
        from,
        body,
    };
    wire::encode(&frame, &mut out);
    out
}

/// The forged frames, claimed by `from` to `to` whose term is
/// `term`: a hello, then a RequestVote one term below the ceiling with the
/// transfer flag, an AppendEntries and an AppendEntriesResponse there, a
/// TimeoutNow of `term` and a heartbeat of the next term.
pub(crate) fn forged_frames(from: NodeId, to: NodeId, term: Term) -> BytesMut {
    let below = Term(Term::CEILING.0 - 1);
    let messages = [
        Message::RequestVote {
            term: below,
            candidate_id: from,
            last_log_index: 0,
            last_log_term: Term(0),
            leadership_transfer: true,
        },
        Message::AppendEntries {
            term: below,
            leader_id: from,
            round: 0,
        },
        Message::AppendEntriesResponse {
            term: below,
            success: true,
            last_log_index: 0,
            last_log_term: Term(0),
            round: 1,
        },
        Message::TimeoutNow { term },
        Message::AppendEntries {
            term: Term(term.0 + 1),
            leader_id: from,
            round: 0,
        },
    ];
    let mut bytes = frame(from, Body::Hello { to });
    for message in messages {
        bytes.extend_from_slice(&frame(from, Body::Message(message)));
    }
    bytes
}

/// A TCP connection to `to` from `ip`.
pub(crate) fn connect_from(ip: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(ip, 0).into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(2))?;
    Ok(TcpStream::from(socket))
}

/// Reads until the node closes the connection (or a few reads, or a
/// second): TLS may send an alert first.
fn until_closed(stream: &mut impl Read) {
    let mut buffer = [0_u8; 512];
    for _ in 0..8 {
        if matches!(stream.read(&mut buffer), Ok(0) | Err(_)) {
            return;
        }
    }
}

/// Connects to node `to` at `addr` from `ip` as `impostor`, sends `bytes`
/// and waits for the node to close the connection. Errors are the node
/// refusing: no error is reported.
pub(crate) fn attack(
    impostor: &Impostor,
    tls_dir: Option<&std::path::Path>,
    (ip, to, addr): (IpAddr, NodeId, SocketAddr),
    bytes: &[u8],
) {
    let Ok(mut tcp) = connect_from(ip, addr) else {
        return;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(1)));
    let client = tls_dir.and_then(|dir| impostor.client(dir));
    let Some(client) = client else {
        let _ = tcp.write_all(bytes);
        until_closed(&mut tcp);
        return;
    };
    let name = ServerName::try_from(identity_name(ClusterId(1), to)).unwrap();
    let Ok(connection) = rustls::ClientConnection::new(client, name) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    let _ = tls.write_all(bytes).and_then(|()| tls.flush());
    until_closed(&mut tls);
}

/// The causes of every refusal `id` logged (counted once per line).
pub(crate) fn causes(history: &History, id: NodeId) -> BTreeSet<Refusal> {
    let log = &history.nodes[&id];
    let ended = log
        .lines
        .iter()
        .filter_map(|line| match line.connection()?.end {
            ConnectionEnd::Refused(cause) => Some(cause),
            ConnectionEnd::Lost => None,
        });
    let suppressed = log
        .lines
        .iter()
        .filter_map(|line| Some(line.suppressed()?.cause));
    ended.chain(suppressed).collect()
}

/// Every node's terms since `since` (the ones it entered): the term moved
/// if any is above `term`.
fn terms_after(history: &History, term: Term) -> Vec<(NodeId, Term)> {
    history
        .nodes
        .iter()
        .flat_map(|(&id, log)| log.terms_entered().map(move |t| (id, t)))
        .filter(|&(_, t)| t > term)
        .collect()
}

/// For each node, the member an attacker claims to be (the next) and the
/// member whose certificate it presents (the one after): three distinct
/// nodes.
fn claims(ids: &[NodeId]) -> Vec<(NodeId, NodeId, NodeId)> {
    let next = |i: usize, by: usize| ids[(i + by) % ids.len()];
    (0..ids.len())
        .map(|i| (ids[i], next(i, 1), next(i, 2)))
        .collect()
}

/// Every node is attacked `rounds` times, 150 ms apart, by each impostor
/// (plaintext, and the TLS ones with TLS), from the address of the member
/// it claims to be. Returns the causes the node should give.
fn attack_every_node(cluster: &Cluster, rounds: usize, term: Term) -> BTreeSet<Refusal> {
    let attackers: Vec<(NodeId, NodeId, Vec<Impostor>)> = claims(&cluster.ids())
        .into_iter()
        .map(|(to, claimed, member)| {
            let mut impostors = vec![Impostor::Plain];
            if let Some(dir) = cluster.tls_dir() {
                impostors.extend(Impostor::every_tls(dir, claimed, member));
            }
            (to, claimed, impostors)
        })
        .collect();
    for _ in 0..rounds {
        for (to, claimed, impostors) in &attackers {
            let ip = cluster.addrs()[claimed].ip();
            let bytes = forged_frames(*claimed, *to, term);
            let target = (ip, *to, cluster.addrs()[to]);
            for impostor in impostors {
                attack(impostor, cluster.tls_dir(), target, &bytes);
            }
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    attackers
        .iter()
        .flat_map(|(_, _, impostors)| impostors.iter().map(Impostor::refusal))
        .collect()
}

#[test]
fn with_tls_every_impostor_is_refused_and_the_cluster_keeps_one_leader_in_one_term() {
    let mut cluster = Cluster::new(51, 3, None).with_tls();
    cluster.start_all();
    let (leader, term) = cluster.wait_for_leader_after(Term(0));
    // Each node is attacked as the next member, with the certificate of
    // the one after (node 1: as n2, with n3's).
    let started = Instant::now();
    let expected = attack_every_node(&cluster, 20, term);
    eprintln!("attacked for {:.1?}", started.elapsed());
    let history = cluster.history();
    assert_eq!(history.leader(), Some((leader, term)), "the leader changed");
    assert_eq!(terms_after(&history, term), vec![], "the term moved");
    for id in cluster.ids() {
        let seen = causes(&history, id);
        assert!(
            seen.is_superset(&expected),
            "{id} refused {seen:?}, not all of {expected:?}"
        );
    }
    history.check_safety().unwrap();
}

/// What plaintext leaves open, shown: from a member's address, a process
/// without any key pushes the cluster to the top of the term space with
/// one RequestVote. The term ceiling keeps every state file restartable.
#[test]
fn with_plaintext_one_forged_request_vote_moves_the_cluster_to_the_ceiling_and_it_restarts() {
    let mut cluster = Cluster::new(52, 3, None);
    cluster.start_all();
    let (leader, term) = cluster.wait_for_leader_after(Term(0));
    let follower = *cluster.ids().iter().find(|&&id| id != leader).unwrap();
    let claimed = *cluster
        .ids()
        .iter()
        .find(|&&id| id != leader && id != follower)
        .unwrap();
    let ip = cluster.addrs()[&claimed].ip();
    let bytes = forged_frames(claimed, follower, term);
    attack(
        &Impostor::Plain,
        None,
        (ip, follower, cluster.addrs()[&follower]),
        &bytes,
    );
    let below = Term(Term::CEILING.0 - 1);
    cluster.wait_for("a term near the ceiling", |h| {
        (h.nodes[&follower].term >= below).then_some(())
    });
    // The highest state any node persists is one its restart takes.
    cluster.kill(follower);
    cluster.start(follower, false);
    let restored = cluster.wait_for(&format!("{follower} to start again"), |h| {
        h.nodes[&follower]
            .starts()
            .nth(1)
            .and_then(|line| match line.record()? {
                raft_election::Record::Started(restored) => Some(*restored),
                _ => None,
            })
    });
    assert!(restored.current_term >= below && restored.current_term <= Term::CEILING);
    let history = cluster.history();
    history.check_safety().unwrap();
    assert!(history.nodes.values().all(|log| log.term <= Term::CEILING));
}

/// Starts `cluster` with `--run-while-leader` and a program that marks
/// its activity in a file; pauses the node whose copy runs (SIGSTOP: its
/// watchdog still stops the copy at the lease's end) and forges a
/// TimeoutNow from it to each follower: in plaintext, or with TLS as each
/// impostor. Returns whether two copies ever ran at once.
fn forged_timeout_now_under_the_lease(mut cluster: Cluster) -> bool {
    use crate::run_while_leader::{FLAGS, SCRIPT, intervals, overlap, running_copy, signal};
    let script = cluster.dir().join("child.sh");
    std::fs::write(&script, SCRIPT).unwrap();
    let file = cluster.dir().join("active.log");
    cluster.extra = FLAGS.iter().map(|&f| f.to_owned()).collect();
    cluster
        .extra
        .extend(["--".into(), "bash".into(), script.display().to_string()]);
    cluster.extra.push(file.display().to_string());
    cluster.start_all();
    let first = running_copy(&file, 0);
    let holder = NodeId(first.node);
    signal(cluster.pid(holder), "STOP");
    let ip = cluster.addrs()[&holder].ip();
    let ids = cluster.ids();
    for &to in ids.iter().filter(|&&id| id != holder) {
        let mut bytes = frame(holder, Body::Hello { to });
        let timeout_now = Message::TimeoutNow {
            term: Term(first.term),
        };
        bytes.extend_from_slice(&frame(holder, Body::Message(timeout_now)));
        // With TLS: the third member's certificate, under the holder's id.
        let third = *ids.iter().find(|&&id| id != holder && id != to).unwrap();
        let impostors = match cluster.tls_dir() {
            Some(dir) => Impostor::every_tls(dir, holder, third),
            None => vec![Impostor::Plain],
        };
        let target = (ip, to, cluster.addrs()[&to]);
        for impostor in &impostors {
            attack(impostor, cluster.tls_dir(), target, &bytes);
        }
    }
    let second = running_copy(&file, first.term);
    signal(cluster.pid(holder), "CONT");
    std::thread::sleep(Duration::from_secs(1));
    for id in cluster.running() {
        assert!(cluster.terminate(id).success());
    }
    assert_ne!(second.node, first.node);
    overlap(&intervals(&file)).is_some()
}

/// The lease case with TLS: the forged TimeoutNow is refused, so
/// the followers keep guarding their votes until the paused holder's lease
/// is over, and no two copies of the program ever run at once.
#[test]
fn with_tls_a_forged_timeout_now_to_a_follower_never_runs_two_copies_at_once() {
    let cluster = Cluster::new(53, 3, None).with_tls();
    let overlapped = forged_timeout_now_under_the_lease(cluster);
    assert!(!overlapped, "two copies ran at once under TLS");
}

/// The same with plaintext: the follower campaigns on the forged request,
/// its peers grant a transfer's candidate within their guard, and the new
/// leader's copy starts while the paused holder's still runs. The lease
/// assumes authenticated peers (proofs.md, "Leader lease").
#[test]
fn with_plaintext_a_forged_timeout_now_runs_two_copies_at_once() {
    let cluster = Cluster::new(54, 3, None);
    let overlapped = forged_timeout_now_under_the_lease(cluster);
    assert!(
        overlapped,
        "plaintext kept the copies apart: the docs say it cannot"
    );
}
