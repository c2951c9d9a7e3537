//! The TCP transport: a node's peers are other processes, reached over TCP.
//!
//! - Sending: one outgoing connection per peer, each with its own task and
//!   a bounded queue. [`Transport::send`] only queues (the oldest message
//!   is dropped when the queue is full: Raft tolerates loss), so a slow or
//!   dead peer never delays the node or its other peers. Every new attempt
//!   waits a capped exponential backoff with jitter, whether the last one
//!   failed or the peer closed the connection it had accepted; the backoff
//!   starts again from its minimum only once a connection has held. An
//!   outage is logged once, not once per attempt.
//! - Receiving: every accepted connection has its own task, which runs the
//!   handshake and the checks of the decoder ([`wire`]) and hands messages
//!   to the node through one bounded inbox. A connection that sends
//!   anything wrong (garbage, a frame over the size limit, an unknown
//!   version, another cluster, an unknown or spoofed sender, a peer's
//!   hello from another IP than the peer's, a message above the term ceiling),
//!   sends no whole hello within the handshake timeout of its acceptance or
//!   leaves a frame unfinished that long is counted by cause and closed,
//!   with one log line (rate-limited per cause and address,
//!   `refusals`); the node goes on. Each peer has one accepted connection
//!   at a time: its new hello replaces the older one. A peer with nothing
//!   to say keeps its connection; TCP keepalive tells it from one that
//!   vanished.
//! - Limits that favour members: a connection from an address that is no
//!   peer's is closed as soon as it is accepted, before it costs a task;
//!   each peer address may have [`PENDING_PER_ADDRESS`] connections that
//!   have not finished their handshake, each for the handshake timeout at
//!   most; a connection whose hello is accepted holds its peer's one slot.
//! - Identity: with [`TcpConfig::tls`], every connection is mutual TLS 1.3
//!   ([`tls`]): each side's certificate must chain to the cluster's CA and
//!   name the node it is, and a hello must name the peer its certificate
//!   names. Without it, the handshake checks ids, not identities: anyone
//!   who can reach the port from a peer's address can claim to be that
//!   peer (docs/operations.md, "What plaintext does not protect against").
//!
//! The transport knows nothing of elections or deadlines; the same
//! [`crate::Driver`] runs over it as over the in-process channels, paced as
//! a node on a machine of its own ([`crate::Independent`]).

pub mod certs;
pub mod fuzzing;
mod inbound;
mod outbound;
mod peer_address;
pub mod refusals;
pub mod tls;
pub mod wire;

pub use peer_address::{BadPeerAddress, PeerAddress};

use crate::record_log::Refusal;
use crate::transport::{Delivery, Transport};
use outbound::PeerQueue;
use raft_election::{ClusterId, Config, Message, NodeId};
use refusals::Refusals;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tls::PeerTls;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Messages from all peers waiting for the node; beyond this they are lost
/// (counted in [`TcpStats::inbox_full`]). A node handles a message in
/// microseconds, so only a flood fills it.
pub const INBOX_CAPACITY: usize = 256;

/// Accepted connections from one peer address that have not finished
/// their handshake (TLS, then the hello); one more is closed at once. A
/// peer needs one, two while it reconnects.
pub const PENDING_PER_ADDRESS: usize = 4;

/// How a node reaches its peers and who may reach it.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// The cluster every frame must name.
    pub cluster: ClusterId,
    /// Where this node accepts peer connections. Its IP address is also the
    /// source of outgoing connections (unless unspecified), so each node on
    /// one machine can have its own loopback address, and a firewall rule
    /// on an address pair cuts one link.
    pub listen: SocketAddr,
    /// Every peer's address, by id: the other voters. A host name is
    /// looked up again at every connection attempt. Where an address names
    /// a specific IP, or a name that resolves to some, a hello from that
    /// peer must come from that IP (peers connect from their listening
    /// address; a name is looked up again for the check), so a second
    /// process started elsewhere with the same id is refused.
    pub peers: BTreeMap<NodeId, PeerAddress>,
    /// How long an accepted connection may take from its acceptance to a
    /// whole hello, and from a frame's first byte to its last: a peer
    /// trickling bytes gains no time.
    pub handshake_timeout: Duration,
    /// A connection quiet this long, in either direction, is probed by TCP
    /// keepalive (whole seconds, at least one). A peer that answers stays
    /// connected however long it has nothing to say, as two followers
    /// have nothing to say to each other; one that vanished is dropped
    /// about `unacknowledged_timeout` later.
    pub keepalive: Duration,
    /// The first reconnection delay; it doubles up to `reconnect_max`, each
    /// wait drawn uniformly from its upper half (jitter). Every attempt
    /// waits, also after a connection the peer accepted and then closed.
    pub reconnect_min: Duration,
    /// The longest reconnection delay, and how long a connection must hold
    /// before the delay starts again from `reconnect_min`.
    pub reconnect_max: Duration,
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
    /// Sent data unacknowledged this long drops the connection (Linux
    /// `TCP_USER_TIMEOUT`), so a peer that vanished without a reset is
    /// noticed and reconnected in about this time, not in minutes. A peer
    /// that stops reading for this long (its window stays shut) is treated
    /// the same way.
    pub unacknowledged_timeout: Duration,
    /// Messages queued per peer; when full the oldest is dropped.
    pub peer_queue: usize,
    /// Mutual TLS on every peer connection, both ways ([`tls`]); `None`
    /// for plaintext.
    pub tls: Option<Arc<PeerTls>>,
}

impl TcpConfig {
    /// Listens on `listen`, reaches `peers` (set [`Self::peers`] after for
    /// host names), with the default limits:
    /// handshake 2 s, keepalive after 5 s of quiet, reconnection 10 to
    /// 100 ms (a restarted peer hears its leader well within an election
    /// timeout), connection attempts 500 ms, unacknowledged data 2 s, 64
    /// messages per peer, plaintext.
    #[must_use]
    pub fn new(
        cluster: ClusterId,
        listen: SocketAddr,
        peers: BTreeMap<NodeId, SocketAddr>,
    ) -> Self {
        Self {
            cluster,
            listen,
            peers: peers
                .into_iter()
                .map(|(id, addr)| (id, PeerAddress::Ip(addr)))
                .collect(),
            handshake_timeout: Duration::from_secs(2),
            keepalive: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(10),
            reconnect_max: Duration::from_millis(100),
            connect_timeout: Duration::from_millis(500),
            unacknowledged_timeout: Duration::from_secs(2),
            peer_queue: 64,
            tls: None,
        }
    }
}

/// Why the transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum TcpError {
    /// The listening address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the operating system said.
        source: io::Error,
    },
    /// The peers are not the configuration's other voters.
    #[error("the peers given ({given}) are not the other voters of the configuration ({expected})")]
    Peers {
        /// The peer ids given.
        given: String,
        /// The other voters.
        expected: String,
    },
    /// A limit that cannot work (zero, or a backoff range upside down).
    #[error("invalid TCP setting: {0}")]
    Setting(&'static str),
}

/// What the transport has done so far, for operators.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Each peer's outgoing connection.
    pub peers: BTreeMap<NodeId, PeerStats>,
    /// Accepted connections open now.
    pub inbound_connections: usize,
    /// Accepted connections refused: closed at once, or for bad input or
    /// a timeout. The sum of [`Self::refusals`].
    pub rejected_connections: u64,
    /// Refused connections by cause, every cause listed.
    pub refusals: BTreeMap<Refusal, u64>,
    /// Messages received but lost because the node's inbox was full.
    pub inbox_full: u64,
}

/// One peer's outgoing connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Whether the connection is up (its hello was written).
    pub connected: bool,
    /// Connections made so far.
    pub connections: u64,
    /// Messages written to the connection (handed to the kernel).
    pub sent: u64,
    /// Messages dropped from the full queue.
    pub dropped: u64,
}

/// The shared counters behind [`TcpStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    inbound_connections: AtomicUsize,
    rejected_connections: AtomicU64,
    inbox_full: AtomicU64,
    refusals: Refusals,
}

/// A handle on a running transport's statistics, usable after the
/// transport moved into its driver.
#[derive(Clone, Debug)]
pub struct TcpStatsHandle {
    counters: Arc<Counters>,
    peers: BTreeMap<NodeId, Arc<PeerQueue>>,
}

impl TcpStatsHandle {
    /// The statistics now.
    #[must_use]
    pub fn snapshot(&self) -> TcpStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TcpStats {
            peers: self
                .peers
                .iter()
                .map(|(&id, queue)| (id, queue.stats()))
                .collect(),
            inbound_connections: self.counters.inbound_connections.load(Ordering::Relaxed),
            rejected_connections: read(&self.counters.rejected_connections),
            refusals: self.counters.refusals.counts(),
            inbox_full: read(&self.counters.inbox_full),
        }
    }
}

/// A node's TCP transport; see the module documentation. Dropping it stops
/// every connection task.
#[derive(Debug)]
pub struct TcpTransport {
    inbox: mpsc::Receiver<(NodeId, Message)>,
    peers: BTreeMap<NodeId, Arc<PeerQueue>>,
    counters: Arc<Counters>,
    stop: CancellationToken,
    local_addr: SocketAddr,
}

impl TcpTransport {
    /// Listens on `tcp.listen` and starts a connection task per peer of
    /// node `config.id()`. Must be called inside a Tokio runtime.
    pub async fn bind(config: &Config, tcp: TcpConfig) -> Result<Self, TcpError> {
        check(config, &tcp)?;
        let listener = TcpListener::bind(tcp.listen)
            .await
            .map_err(|source| TcpError::Bind {
                addr: tcp.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| TcpError::Bind {
            addr: tcp.listen,
            source,
        })?;
        let stop = CancellationToken::new();
        let counters = Arc::new(Counters::default());
        let (inbox_sender, inbox) = mpsc::channel(INBOX_CAPACITY);
        let tcp = Arc::new(tcp);
        tokio::spawn(inbound::accept(
            listener,
            inbound::Acceptor {
                config: config.clone(),
                tcp: Arc::clone(&tcp),
                inbox: inbox_sender,
                counters: Arc::clone(&counters),
                current: Arc::default(),
                pending: Arc::default(),
                stop: stop.clone(),
            },
        ));
        tokio::spawn(flush_refusals(Arc::clone(&counters), stop.clone()));
        let mut peers = BTreeMap::new();
        for (&peer, addr) in &tcp.peers {
            let queue = Arc::new(PeerQueue::new(tcp.peer_queue));
            peers.insert(peer, Arc::clone(&queue));
            let link = outbound::Link {
                me: config.id(),
                peer,
                addr: addr.clone(),
                tcp: Arc::clone(&tcp),
                queue,
                stop: stop.clone(),
            };
            tokio::spawn(link.run());
        }
        Ok(Self {
            inbox,
            peers,
            counters,
            stop,
            local_addr,
        })
    }

    /// The address it listens on (the actual port, if 0 was asked for).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle on its statistics.
    #[must_use]
    pub fn stats(&self) -> TcpStatsHandle {
        TcpStatsHandle {
            counters: Arc::clone(&self.counters),
            peers: self.peers.clone(),
        }
    }
}

/// Reports the refusals the rate limit held back, every
/// [`refusals::LINE_INTERVAL`], until the transport stops.
async fn flush_refusals(counters: Arc<Counters>, stop: CancellationToken) {
    let mut every = tokio::time::interval(refusals::LINE_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Each turn waits one interval, then flushes.
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            _ = every.tick() => counters.refusals.flush(),
        }
    }
}

fn check(config: &Config, tcp: &TcpConfig) -> Result<(), TcpError> {
    let given: BTreeSet<NodeId> = tcp.peers.keys().copied().collect();
    let expected: BTreeSet<NodeId> = config.peers().collect();
    if given != expected {
        let list = |ids: &BTreeSet<NodeId>| {
            let names: Vec<String> = ids.iter().map(NodeId::to_string).collect();
            names.join(", ")
        };
        return Err(TcpError::Peers {
            given: list(&given),
            expected: list(&expected),
        });
    }
    if tcp.peer_queue == 0 {
        return Err(TcpError::Setting(
            "the peer queue must hold at least one message",
        ));
    }
    if tcp.reconnect_min.is_zero() || tcp.reconnect_min > tcp.reconnect_max {
        return Err(TcpError::Setting(
            "the reconnection delays must be positive, the minimum at most the maximum",
        ));
    }
    let timeouts = [
        tcp.handshake_timeout,
        tcp.connect_timeout,
        tcp.unacknowledged_timeout,
    ];
    if timeouts.iter().any(Duration::is_zero) {
        return Err(TcpError::Setting("every timeout must be positive"));
    }
    if tcp.keepalive < Duration::from_secs(1) {
        return Err(TcpError::Setting(
            "keepalive is set in whole seconds: at least 1 s",
        ));
    }
    Ok(())
}

/// Between keepalive probes of a quiet connection.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);

/// Sets up a peer connection, accepted or made: no Nagle delay for small
/// messages, keepalive probes once it has been quiet for `tcp.keepalive`,
/// and data or probes unacknowledged for `tcp.unacknowledged_timeout` drop
/// it (Linux `TCP_USER_TIMEOUT`; elsewhere the kernel's retransmission and
/// probe limits apply), so a peer that vanished without a FIN is noticed
/// in seconds on both ends, not in the kernel's default of hours.
fn configure(stream: &TcpStream, tcp: &TcpConfig) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let socket = socket2::SockRef::from(stream);
    socket.set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(tcp.keepalive)
            .with_interval(KEEPALIVE_INTERVAL),
    )?;
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
    socket.set_tcp_user_timeout(Some(tcp.unacknowledged_timeout))?;
    Ok(())
}

impl Transport for TcpTransport {
    fn send(&mut self, to: NodeId, message: Message) -> Delivery {
        match self.peers.get(&to) {
            Some(queue) => {
                queue.push(message);
                Delivery::Delivered
            }
            // The core sends only to voters, all of which are peers.
            None => Delivery::Down,
        }
    }

    async fn recv(&mut self) -> Option<(NodeId, Message)> {
        tokio::select! {
            biased;
            () = self.stop.cancelled() => None,
            received = self.inbox.recv() => received,
        }
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
