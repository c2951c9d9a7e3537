//! Mutual TLS on peer connections, and the limits that favour members:
//! node n1 with its certificates, and a test playing every kind of peer,
//! honest or not, from the addresses the node admits. Real sockets on
//! loopback, real certificates (rcgen).

use bytes::BytesMut;
use raft_election::{ClusterId, Config, Message, NodeId, Term, Timing};
use raft_election_runtime::record_log::Refusal;
use raft_election_runtime::tcp::PENDING_PER_ADDRESS;
use raft_election_runtime::tcp::certs::{Authority, Issued};
use raft_election_runtime::tcp::tls::{PeerTls, TlsFiles, identity_name};
use raft_election_runtime::tcp::wire::{self, Body, Frame};
use raft_election_runtime::{TcpConfig, TcpStatsHandle, TcpTransport, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const CLUSTER: ClusterId = ClusterId(4);
const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);
const N3: NodeId = NodeId(3);
const N2_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 4, 2);
const N3_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 4, 3);

/// Far beyond any wait here that is not broken.
const DEADLINE: Duration = Duration::from_secs(20);

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Node n1 of {n1, n2, n3} with TLS, listening on 127.0.4.1; n2 and n3 are
/// listeners that accept nothing, so n1's own connections to them send
/// nothing, and everything it receives comes from the test.
struct Node {
    transport: TcpTransport,
    stats: TcpStatsHandle,
    tls: Arc<PeerTls>,
    authority: Authority,
    dir: tempfile::TempDir,
    _peers: [TcpListener; 2],
}

impl Node {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let authority = Authority::new(CLUSTER).unwrap();
        let issued = authority.node(N1, OffsetDateTime::now_utc(), 30).unwrap();
        let files = TlsFiles {
            ca: write(dir.path(), "ca.pem", authority.cert_pem()),
            cert: write(dir.path(), "n1.pem", &issued.cert),
            key: write(dir.path(), "n1.key", &issued.key),
        };
        let tls = Arc::new(PeerTls::load(files, CLUSTER, N1).unwrap());
        let n2 = TcpListener::bind((N2_IP, 0)).await.unwrap();
        let n3 = TcpListener::bind((N3_IP, 0)).await.unwrap();
        let config = Config::new(N1, [N1, N2, N3], Timing::default()).unwrap();
        let peers = BTreeMap::from([
            (N2, n2.local_addr().unwrap()),
            (N3, n3.local_addr().unwrap()),
        ]);
        let mut tcp = TcpConfig::new(CLUSTER, "127.0.4.1:0".parse().unwrap(), peers);
        tcp.tls = Some(Arc::clone(&tls));
        let transport = TcpTransport::bind(&config, tcp).await.unwrap();
        let stats = transport.stats();
        Self {
            transport,
            stats,
            tls,
            authority,
            dir,
            _peers: [n2, n3],
        }
    }

    /// A TCP connection to the node from `ip`.
    async fn connect_from(&self, ip: Ipv4Addr) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(IpAddr::V4(ip), 0)).unwrap();
        socket.connect(self.transport.local_addr()).await.unwrap()
    }

    /// How many connections were refused for `cause`.
    fn refused(&self, cause: Refusal) -> u64 {
        self.stats.snapshot().refusals[&cause]
    }

    /// Waits until `cause` was counted `count` times.
    async fn wait_refused(&self, cause: Refusal, count: u64) {
        let waited = tokio::time::timeout(DEADLINE, async {
            while self.refused(cause) < count {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        waited.await.unwrap_or_else(|_| {
            panic!("{cause} counted {} times, not {count}", self.refused(cause))
        });
    }
}

/// A TLS client trusting the CA of `trusted`, presenting `identity` if
/// given.
fn client(trusted: &Authority, identity: Option<&Issued>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(trusted.cert_pem().as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(issued) => {
            let chain = vec![CertificateDer::from_pem_slice(issued.cert.as_bytes()).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(issued.key.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn frame(from: NodeId, body: Body) -> BytesMut {
    let mut out = BytesMut::new();
    let frame = Frame {
        cluster: CLUSTER,
        from,
        body,
    };
    wire::encode(&frame, &mut out);
    out
}

/// A hello from `from` and a heartbeat of its.
fn hello_and_heartbeat(from: NodeId) -> (Message, BytesMut) {
    let heartbeat = Message::AppendEntries {
        term: Term(1),
        leader_id: from,
        round: 0,
    };
    let mut bytes = frame(from, Body::Hello { to: N1 });
    bytes.extend_from_slice(&frame(from, Body::Message(heartbeat)));
    (heartbeat, bytes)
}

/// Writes `bytes` (failures are the node closing first) and waits for the
/// node to close the connection. The node writes nothing on an accepted
/// connection but TLS's own records (an alert), so a few reads end it.
async fn written_then_closed<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, bytes: &[u8]) {
    let _ = stream.write_all(bytes).await;
    let _ = stream.flush().await;
    let mut buffer = [0_u8; 256];
    for _ in 0..16 {
        let read = tokio::time::timeout(DEADLINE, stream.read(&mut buffer)).await;
        match read {
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => panic!("not closed by the node within {DEADLINE:?}"),
        }
    }
    panic!("the node kept writing on a connection it should close");
}

#[tokio::test(flavor = "current_thread")]
async fn a_peer_with_its_certificate_is_heard_and_every_impostor_is_refused_before_any_message() {
    let mut node = Node::start().await;
    let now = OffsetDateTime::now_utc();
    let n2 = node.authority.node(N2, now, 30).unwrap();
    let n3 = node.authority.node(N3, now, 30).unwrap();
    let stranger = Authority::new(CLUSTER).unwrap();
    let foreign = stranger.node(N2, now, 30).unwrap();
    let expired = node
        .authority
        .node(N2, now - time::Duration::days(40), 30)
        .unwrap();
    let name = ServerName::try_from(identity_name(CLUSTER, N1)).unwrap();
    let (heartbeat, bytes) = hello_and_heartbeat(N2);

    // No TLS at all: the hello in plaintext.
    written_then_closed(node.connect_from(N2_IP).await, &bytes).await;
    node.wait_refused(Refusal::TlsHandshake, 1).await;
    let cases: [(Option<&Issued>, Refusal); 4] = [
        (None, Refusal::NoCertificate),
        (Some(&foreign), Refusal::UntrustedCertificate),
        (Some(&expired), Refusal::ExpiredCertificate),
        // A member's certificate, n3's, under a hello naming n2.
        (Some(&n3), Refusal::WrongIdentity),
    ];
    for (identity, cause) in cases {
        let connector = client(&node.authority, identity);
        let tcp = node.connect_from(N2_IP).await;
        // TLS 1.3: the client may finish before the node refuses its
        // certificate; either way nothing it sends is read.
        if let Ok(stream) = connector.connect(name.clone(), tcp).await {
            written_then_closed(stream, &bytes).await;
        }
        node.wait_refused(cause, 1).await;
    }
    // n2 itself, from its address: heard.
    let stream = client(&node.authority, Some(&n2))
        .connect(name, node.connect_from(N2_IP).await)
        .await
        .unwrap();
    let (_reader, mut writer) = tokio::io::split(stream);
    writer.write_all(&bytes).await.unwrap();
    writer.flush().await.unwrap();
    let received = tokio::time::timeout(DEADLINE, node.transport.recv()).await;
    assert_eq!(received.unwrap(), Some((N2, heartbeat)));
    assert_eq!(node.stats.snapshot().rejected_connections, 5);
}

#[tokio::test(flavor = "current_thread")]
async fn a_certificate_naming_no_peer_of_the_cluster_is_refused() {
    let node = Node::start().await;
    let now = OffsetDateTime::now_utc();
    // Signed by the cluster's CA, for a node that is no voter.
    let stranger = node.authority.node(NodeId(9), now, 30).unwrap();
    let name = ServerName::try_from(identity_name(CLUSTER, N1)).unwrap();
    let (_, bytes) = hello_and_heartbeat(N2);
    let tcp = node.connect_from(N2_IP).await;
    if let Ok(stream) = client(&node.authority, Some(&stranger))
        .connect(name, tcp)
        .await
    {
        written_then_closed(stream, &bytes).await;
    }
    node.wait_refused(Refusal::WrongIdentity, 1).await;
}

#[tokio::test(flavor = "current_thread")]
async fn new_certificates_are_used_after_a_reload_and_a_failed_reload_keeps_the_old_ones() {
    let node = Node::start().await;
    let now = OffsetDateTime::now_utc();
    let name = ServerName::try_from(identity_name(CLUSTER, N1)).unwrap();
    let files = node.tls.files().clone();
    // A broken key file: the reload fails and says which file.
    std::fs::write(&files.key, "not a key").unwrap();
    let failed = node.tls.reload().unwrap_err().to_string();
    assert!(failed.contains("n1.key"), "{failed}");
    // The old material still serves n2.
    let n2 = node.authority.node(N2, now, 30).unwrap();
    let tcp = node.connect_from(N2_IP).await;
    let connected = client(&node.authority, Some(&n2))
        .connect(name.clone(), tcp)
        .await;
    assert!(connected.is_ok(), "{connected:?}");
    // A new CA, and n1's certificate from it: a reload switches to them.
    let renewed = Authority::new(CLUSTER).unwrap();
    let n1 = renewed.node(N1, now, 30).unwrap();
    write(node.dir.path(), "ca.pem", renewed.cert_pem());
    write(node.dir.path(), "n1.pem", &n1.cert);
    write(node.dir.path(), "n1.key", &n1.key);
    node.tls.reload().unwrap();
    let (_, bytes) = hello_and_heartbeat(N2);
    let tcp = node.connect_from(N2_IP).await;
    // The old CA's n2 no longer gets in; the new one's does.
    if let Ok(stream) = client(&renewed, Some(&n2)).connect(name.clone(), tcp).await {
        written_then_closed(stream, &bytes).await;
    }
    node.wait_refused(Refusal::UntrustedCertificate, 1).await;
    let n2 = renewed.node(N2, now, 30).unwrap();
    let tcp = node.connect_from(N2_IP).await;
    assert!(client(&renewed, Some(&n2)).connect(name, tcp).await.is_ok());
}

#[tokio::test(flavor = "current_thread")]
async fn a_connection_from_no_peers_address_is_closed_at_once_and_a_peer_address_holds_few_pending()
{
    let node = Node::start().await;
    for _ in 0..10 {
        written_then_closed(node.connect_from(Ipv4Addr::new(127, 0, 4, 9)).await, b"").await;
    }
    node.wait_refused(Refusal::UnknownAddress, 10).await;
    // Silent connections from n3's address take its pending slots; one
    // more is closed at once; n2's address keeps its own.
    let mut held = Vec::new();
    for _ in 0..PENDING_PER_ADDRESS {
        held.push(node.connect_from(N3_IP).await);
    }
    written_then_closed(node.connect_from(N3_IP).await, b"").await;
    node.wait_refused(Refusal::TooManyPending, 1).await;
    let pending = node.connect_from(N2_IP).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(node.refused(Refusal::TooManyPending), 1);
    assert_eq!(
        node.stats.snapshot().inbound_connections,
        PENDING_PER_ADDRESS + 1
    );
    drop((held, pending));
}

/// Three servers on 127.0.4.1x, each with its certificate: every
/// connection, both ways, is mutual TLS, and they elect a leader whom the
/// other two follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_over_mutual_tls_elect_a_leader_the_others_follow() {
    use raft_election::storage::MemStorage;
    use raft_election_runtime::{Server, TimeoutSource};
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new(CLUSTER).unwrap();
    let ca = write(dir.path(), "ca.pem", authority.cert_pem());
    let ids = [N1, N2, N3];
    let addresses: BTreeMap<NodeId, SocketAddr> = ids
        .iter()
        .map(|&id| {
            let listener = std::net::TcpListener::bind((Ipv4Addr::new(127, 0, 4, 10 + id.0), 0));
            (id, listener.unwrap().local_addr().unwrap())
        })
        .collect();
    let mut servers = Vec::new();
    for &id in &ids {
        let issued = authority.node(id, OffsetDateTime::now_utc(), 30).unwrap();
        let files = TlsFiles {
            ca: ca.clone(),
            cert: write(dir.path(), &format!("n{}.pem", id.0), &issued.cert),
            key: write(dir.path(), &format!("n{}.key", id.0), &issued.key),
        };
        let config = Config::new(id, ids, Timing::default()).unwrap();
        let peers = addresses
            .iter()
            .filter(|(p, _)| **p != id)
            .map(|(&p, &a)| (p, a));
        let mut tcp = TcpConfig::new(CLUSTER, addresses[&id], peers.collect());
        tcp.tls = Some(Arc::new(PeerTls::load(files, CLUSTER, id).unwrap()));
        let transport = TcpTransport::bind(&config, tcp).await.unwrap();
        let server = Server::builder(config)
            .storage(MemStorage::new())
            .transport(transport)
            .timeouts(TimeoutSource::Seeded(u64::from(id.0)))
            .spawn()
            .unwrap();
        servers.push(server);
    }
    let agreed = tokio::time::timeout(DEADLINE, async {
        // Each turn looks at every server's view once.
        loop {
            let views: Vec<_> = servers.iter().map(|s| *s.leadership().borrow()).collect();
            let leaders = views.iter().filter(|v| v.is_me).count();
            if leaders == 1
                && views
                    .iter()
                    .all(|v| v.leader.is_some() && v.leader == views[0].leader)
            {
                return views[0].leader;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert!(
        agreed
            .await
            .expect("a leader within the deadline")
            .is_some()
    );
    for server in servers {
        server.shutdown().await.unwrap();
    }
}

/// The connecting side checks too: a server at n2's address that shows n3's
/// certificate (or one of another CA) never gets n1's hello, and n1's link
/// to n2 stays down.
#[tokio::test(flavor = "current_thread")]
async fn a_node_sends_no_hello_to_a_peer_address_answered_by_another_identity() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new(CLUSTER).unwrap();
    let now = OffsetDateTime::now_utc();
    let n1 = authority.node(N1, now, 30).unwrap();
    let files = TlsFiles {
        ca: write(dir.path(), "ca.pem", authority.cert_pem()),
        cert: write(dir.path(), "n1.pem", &n1.cert),
        key: write(dir.path(), "n1.key", &n1.key),
    };
    // n3's certificate, at the address n1 has for n2.
    let n3 = authority.node(N3, now, 30).unwrap();
    let impostor = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(n3.cert.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(n3.key.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(impostor));
    let listener = TcpListener::bind((N2_IP, 0)).await.unwrap();
    let peers = BTreeMap::from([(N2, listener.local_addr().unwrap())]);
    let config = Config::new(N1, [N1, N2], Timing::default()).unwrap();
    let mut tcp = TcpConfig::new(CLUSTER, "127.0.4.1:0".parse().unwrap(), peers);
    tcp.tls = Some(Arc::new(PeerTls::load(files, CLUSTER, N1).unwrap()));
    let mut transport = TcpTransport::bind(&config, tcp).await.unwrap();
    transport.send(N2, Message::TimeoutNow { term: Term(1) });
    // Each connection n1 makes: the handshake fails on n1's side, so the
    // impostor reads no byte of application data.
    for _ in 0..3 {
        let (tcp, _) = tokio::time::timeout(DEADLINE, listener.accept())
            .await
            .unwrap()
            .unwrap();
        if let Ok(mut stream) = acceptor.accept(tcp).await {
            let mut buffer = [0_u8; 64];
            let read = tokio::time::timeout(DEADLINE, stream.read(&mut buffer)).await;
            assert!(
                matches!(read, Ok(Ok(0) | Err(_))),
                "n1 wrote to an impostor: {read:?}"
            );
        }
    }
    assert!(!transport.stats().snapshot().peers[&N2].connected);
}
