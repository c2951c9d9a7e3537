//! What a node's TCP transport does with the connections it accepts: the
//! deadlines of a hello and of a frame, a quiet peer, one connection per
//! peer, and a hello from the wrong address. Real sockets on loopback,
//! Tokio's paused clock: every deadline is exact, and an hour passes in
//! milliseconds.

use bytes::BytesMut;
use raft_election::{ClusterId, Config, Message, NodeId, Term, Timing};
use raft_election_runtime::record_log::Refusal;
use raft_election_runtime::tcp::wire::{self, Body, Frame};
use raft_election_runtime::{TcpConfig, TcpStatsHandle, TcpTransport, Transport};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket};
use tokio::time::Instant;

const CLUSTER: ClusterId = ClusterId(4);
const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);

/// Of virtual time: nothing here waits this long unless it is broken.
const DEADLINE: Duration = Duration::from_secs(600);

/// Node n1 of {n1, n2}, listening on 127.0.0.1, with n2 at a listener on
/// `peer_ip` that accepts nothing: n1's own connection to n2 waits in its
/// backlog and sends nothing, so everything n1 receives comes from the
/// test's connections.
struct Node {
    transport: TcpTransport,
    stats: TcpStatsHandle,
    handshake: Duration,
    _n2: TcpListener,
}

impl Node {
    async fn start(peer_ip: Ipv4Addr) -> Self {
        let n2 = TcpListener::bind((peer_ip, 0)).await.unwrap();
        let config = Config::new(N1, [N1, N2], Timing::default()).unwrap();
        let peers = BTreeMap::from([(N2, n2.local_addr().unwrap())]);
        let tcp = TcpConfig::new(CLUSTER, "127.0.0.1:0".parse().unwrap(), peers);
        let handshake = tcp.handshake_timeout;
        let transport = TcpTransport::bind(&config, tcp).await.unwrap();
        let stats = transport.stats();
        Self {
            transport,
            stats,
            handshake,
            _n2: n2,
        }
    }

    /// A connection to the node from `ip`.
    async fn connect_from(&self, ip: Ipv4Addr) -> (OwnedReadHalf, OwnedWriteHalf) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(IpAddr::V4(ip), 0)).unwrap();
        let stream = socket.connect(self.transport.local_addr()).await.unwrap();
        stream.into_split()
    }

    /// A connection to the node from `ip` that has sent n2's hello.
    async fn greeted_from(&self, ip: Ipv4Addr) -> (OwnedReadHalf, OwnedWriteHalf) {
        let (reader, mut writer) = self.connect_from(ip).await;
        writer.write_all(&hello()).await.unwrap();
        (reader, writer)
    }

    /// A connection to the node from `ip` that has sent n2's hello and a
    /// heartbeat of term 1, which the node received.
    async fn heard_from(&mut self, ip: Ipv4Addr) -> (OwnedReadHalf, OwnedWriteHalf) {
        let (message, frame) = heartbeat(1);
        let (reader, mut writer) = self.greeted_from(ip).await;
        writer.write_all(&frame).await.unwrap();
        assert_eq!(self.received().await, (N2, message));
        (reader, writer)
    }

    /// The next message the node receives, within [`DEADLINE`].
    async fn received(&mut self) -> (NodeId, Message) {
        tokio::time::timeout(DEADLINE, self.transport.recv())
            .await
            .expect("a message within the deadline")
            .expect("the transport is open")
    }
}

fn encode(body: Body) -> BytesMut {
    let mut out = BytesMut::new();
    let frame = Frame {
        cluster: CLUSTER,
        from: N2,
        body,
    };
    wire::encode(&frame, &mut out);
    out
}

fn hello() -> BytesMut {
    encode(Body::Hello { to: N1 })
}

fn heartbeat(term: u64) -> (Message, BytesMut) {
    let message = Message::AppendEntries {
        term: Term(term),
        leader_id: N2,
        round: 0,
    };
    (message, encode(Body::Message(message)))
}

/// Waits (at most `within`) for the node to close the connection; returns
/// when it did.
async fn closed(reader: &mut OwnedReadHalf, within: Duration) -> Instant {
    let mut buffer = [0_u8; 16];
    let read = tokio::time::timeout(within, reader.read(&mut buffer))
        .await
        .unwrap_or_else(|_| panic!("the node did not close the connection within {within:?}"));
    // The node never writes on an accepted connection.
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    Instant::now()
}

/// The gap between trickled bytes: well within the handshake timeout.
fn trickle_gap(handshake: Duration) -> Duration {
    handshake * 2 / 5
}

/// How long, from now, the node keeps `connection` open while `bytes`
/// trickle in one at a time, [`trickle_gap`] apart.
async fn open_while_trickling(
    node: &Node,
    (mut reader, writer): (OwnedReadHalf, OwnedWriteHalf),
    bytes: BytesMut,
) -> Duration {
    let began = Instant::now();
    tokio::spawn(trickle(writer, bytes, trickle_gap(node.handshake)));
    closed(&mut reader, DEADLINE).await - began
}

/// Writes `bytes` one at a time, `gap` apart, until the connection breaks.
async fn trickle(mut writer: OwnedWriteHalf, bytes: BytesMut, gap: Duration) {
    for byte in bytes {
        if writer.write_all(&[byte]).await.is_err() {
            return;
        }
        tokio::time::sleep(gap).await;
    }
    // Keep the connection open: the node is the one to close it.
    tokio::time::sleep(DEADLINE * 2).await;
}

/// A hello trickled a byte at a time, each within the handshake timeout of
/// the last, does not hold the connection open: the deadline runs from
/// acceptance, not from the last byte.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_peer_trickling_its_hello_is_closed_at_the_handshake_deadline_counted_from_acceptance() {
    let node = Node::start(Ipv4Addr::LOCALHOST).await;
    let connection = node.connect_from(Ipv4Addr::LOCALHOST).await;
    let bytes = hello();
    let gaps = u32::try_from(bytes.len()).unwrap();
    assert!(trickle_gap(node.handshake) * gaps > node.handshake);
    let lasted = open_while_trickling(&node, connection, bytes).await;
    assert!(
        lasted <= node.handshake,
        "open for {lasted:?}, beyond the {:?} handshake",
        node.handshake
    );
    let stats = node.stats.snapshot();
    assert_eq!(
        (stats.rejected_connections, stats.inbound_connections),
        (1, 0)
    );
}

/// After the hello, a frame trickled a byte at a time is closed the
/// handshake timeout after its first byte, however long the connection was
/// quiet before it.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_peer_trickling_a_frame_is_closed_at_the_deadline_counted_from_its_first_byte() {
    let mut node = Node::start(Ipv4Addr::LOCALHOST).await;
    let connection = node.heard_from(Ipv4Addr::LOCALHOST).await;
    tokio::time::sleep(node.handshake * 10).await;
    let (_, frame) = heartbeat(2);
    let lasted = open_while_trickling(&node, connection, frame).await;
    assert!(
        lasted <= node.handshake,
        "a frame unfinished for {lasted:?}, beyond the {:?} allowed",
        node.handshake
    );
    assert_eq!(node.stats.snapshot().rejected_connections, 1);
}

/// Two followers have nothing to say to each other for as long as their
/// leader lives: a peer quiet for an hour keeps its connection (TCP
/// keepalive, not a timer of the node, tells a quiet peer from a vanished
/// one), and what it sends then arrives.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_quiet_peer_keeps_its_connection_for_an_hour_and_is_heard_when_it_speaks() {
    let mut node = Node::start(Ipv4Addr::LOCALHOST).await;
    let (_reader, mut writer) = node.greeted_from(Ipv4Addr::LOCALHOST).await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let stats = node.stats.snapshot();
    assert_eq!(
        (stats.inbound_connections, stats.rejected_connections),
        (1, 0),
        "still open after an hour"
    );
    let (message, frame) = heartbeat(7);
    writer.write_all(&frame).await.unwrap();
    assert_eq!(node.received().await, (N2, message));
}

/// A peer that says hello again (it restarted, or lost its connection
/// without the node noticing) replaces its older connection, which the
/// node closes: one connection per peer, never a pile of stale ones.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_second_hello_from_the_same_peer_replaces_its_older_connection() {
    let mut node = Node::start(Ipv4Addr::LOCALHOST).await;
    // The old connection stays open on this side until the end.
    let (mut old_reader, _old) = node.heard_from(Ipv4Addr::LOCALHOST).await;

    let (_new_reader, mut new) = node.greeted_from(Ipv4Addr::LOCALHOST).await;
    // At once: no timer of the node is involved.
    closed(&mut old_reader, Duration::from_millis(1)).await;
    let (message, frame) = heartbeat(2);
    new.write_all(&frame).await.unwrap();
    assert_eq!(node.received().await, (N2, message));
    let stats = node.stats.snapshot();
    assert_eq!(
        (stats.inbound_connections, stats.rejected_connections),
        (1, 0),
        "the newer connection only, and a replacement is no rejection"
    );
}

/// A hello naming n2 from another IP than n2's configured one is refused:
/// a second process started with n2's id elsewhere cannot speak for it.
/// From n2's own IP the same bytes are accepted.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_hello_from_another_ip_than_the_peers_configured_one_is_refused() {
    let n2_ip = Ipv4Addr::new(127, 0, 0, 2);
    let mut node = Node::start(n2_ip).await;
    let (_, frame) = heartbeat(1);
    let (mut reader, mut writer) = node.greeted_from(Ipv4Addr::LOCALHOST).await;
    // The frame after the hello may find the connection closed already.
    let _ = writer.write_all(&frame).await;
    closed(&mut reader, DEADLINE).await;
    assert_eq!(node.stats.snapshot().rejected_connections, 1);

    let _n2 = node.heard_from(n2_ip).await;
    assert_eq!(node.stats.snapshot().rejected_connections, 1);
}

/// A peer given by host name (`localhost:PORT`) is looked up to connect to
/// it, and its hello must come from an address the name resolves to: from
/// 127.0.0.2 it is refused, counted as a wrong identity, from 127.0.0.1 it is
/// accepted. On the real clock: the lookups run on Tokio's blocking pool.
#[tokio::test(flavor = "current_thread")]
async fn a_peer_given_by_name_is_reached_by_it_and_heard_only_from_an_address_it_resolves_to() {
    let n2 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let port = n2.local_addr().unwrap().port();
    let config = Config::new(N1, [N1, N2], Timing::default()).unwrap();
    let mut tcp = TcpConfig::new(CLUSTER, "127.0.0.1:0".parse().unwrap(), BTreeMap::new());
    tcp.peers = BTreeMap::from([(N2, format!("localhost:{port}").parse().unwrap())]);
    let handshake = tcp.handshake_timeout;
    let transport = TcpTransport::bind(&config, tcp).await.unwrap();
    let stats = transport.stats();
    // n1 resolves the name and connects to n2's listener.
    let (from_n1, _) = tokio::time::timeout(Duration::from_secs(10), n2.accept())
        .await
        .expect("n1 connects to localhost within 10 s")
        .unwrap();
    assert!(from_n1.peer_addr().unwrap().ip().is_loopback());
    let mut node = Node {
        transport,
        stats,
        handshake,
        _n2: n2,
    };
    let (_, frame) = heartbeat(1);
    let (mut reader, mut writer) = node.greeted_from(Ipv4Addr::new(127, 0, 0, 2)).await;
    let _ = writer.write_all(&frame).await;
    closed(&mut reader, Duration::from_secs(10)).await;
    let refused = node.stats.snapshot();
    assert_eq!(refused.rejected_connections, 1);
    assert_eq!(refused.refusals[&Refusal::WrongIdentity], 1);

    let _n2 = node.heard_from(Ipv4Addr::LOCALHOST).await;
    assert_eq!(node.stats.snapshot().rejected_connections, 1);
}
