//! Accepted connections: one task each, reading frames through
//! [`Inbound`] into the node's inbox; at most one per peer once its hello
//! is accepted, and at most [`PENDING_PER_ADDRESS`] per peer address before.

use super::tls::{PeerTls, refusal_of};
use super::wire::{Inbound, Received, Rejection};
use super::{Counters, PENDING_PER_ADDRESS, TcpConfig, configure};
use crate::record_log::{ConnectionEnd, ConnectionEnded, Refusal, log_connection};
use crate::sync::{bump, lock};
use bytes::BytesMut;
use raft_election::{Config, Message, NodeId};
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// What every connection task needs.
#[derive(Clone, Debug)]
pub(super) struct Acceptor {
    pub(super) config: Config,
    pub(super) tcp: Arc<TcpConfig>,
    pub(super) inbox: mpsc::Sender<(NodeId, Message)>,
    pub(super) counters: Arc<Counters>,
    pub(super) current: Arc<Current>,
    pub(super) pending: Arc<Pending>,
    pub(super) stop: CancellationToken,
}

impl Acceptor {
    /// Whether `ip` may connect at all: every peer's IP address, or any
    /// address if some peer's is unspecified or a host name (a name may
    /// resolve to any address: its hello is checked against the name's
    /// addresses once it says which peer it is).
    fn is_a_peers_address(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.tcp.peers.values().any(|addr| {
            addr.ip()
                .is_none_or(|peer| peer.is_unspecified() || peer.to_canonical() == ip)
        })
    }

    /// Counts and logs (rate-limited) a refused connection.
    fn refuse(&self, address: SocketAddr, peer: Option<NodeId>, cause: Refusal, reason: String) {
        bump(&self.counters.rejected_connections);
        let ended = ConnectionEnded {
            address,
            peer,
            end: ConnectionEnd::Refused(cause),
            reason,
        };
        self.counters.refusals.refuse(cause, &ended);
    }
}

/// Connections that have not finished their handshake (TLS, then the
/// hello), per remote address: each may hold [`PENDING_PER_ADDRESS`]. Only
/// peers' addresses get here, so a host that holds its own slots delays no
/// other peer.
#[derive(Debug, Default)]
pub(super) struct Pending {
    by_address: Mutex<BTreeMap<IpAddr, usize>>,
}

impl Pending {
    /// A slot for a connection from `ip`, if it has one left.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<PendingSlot> {
        let mut by_address = lock(&self.by_address);
        let taken = by_address.entry(ip).or_default();
        if *taken >= PENDING_PER_ADDRESS {
            return None;
        }
        *taken += 1;
        Some(PendingSlot {
            pending: Arc::clone(self),
            ip,
        })
    }
}

/// One pending connection's slot, given back when dropped: once its hello
/// is accepted, or when it ends.
#[derive(Debug)]
struct PendingSlot {
    pending: Arc<Pending>,
    ip: IpAddr,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut by_address = lock(&self.pending.by_address);
        if let Some(taken) = by_address.get_mut(&self.ip) {
            *taken = taken.saturating_sub(1);
            if *taken == 0 {
                by_address.remove(&self.ip);
            }
        }
    }
}

/// Each peer's accepted connection: one at a time. A peer that says hello
/// again (it restarted, or lost its connection without this side noticing)
/// replaces its older connection, which would otherwise linger until TCP
/// gave up on it.
#[derive(Debug, Default)]
pub(super) struct Current {
    by_peer: Mutex<BTreeMap<NodeId, (u64, CancellationToken)>>,
    next: AtomicU64,
}

impl Current {
    /// A number for a new connection, to tell it from later ones.
    fn number(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Makes connection `number` `peer`'s, closing its older one, if any.
    fn claim(&self, peer: NodeId, number: u64, close: CancellationToken) {
        let older = lock(&self.by_peer).insert(peer, (number, close));
        if let Some((_, older)) = older {
            older.cancel();
        }
    }

    /// Connection `number` of `peer` ended: forgotten, unless a newer one
    /// took its place already.
    fn release(&self, peer: NodeId, number: u64) {
        let mut by_peer = lock(&self.by_peer);
        if by_peer.get(&peer).is_some_and(|&(n, _)| n == number) {
            by_peer.remove(&peer);
        }
    }
}

/// Accepts connections until stopped. One from an address that is no
/// peer's, or beyond its address's pending slots, is closed at once,
/// before it costs a task; every other gets a task of its own.
pub(super) async fn accept(listener: TcpListener, acceptor: Acceptor) {
    // Each turn accepts one connection or ends.
    loop {
        let accepted = tokio::select! {
            biased;
            () = acceptor.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, address)) => {
                if !acceptor.is_a_peers_address(address.ip()) {
                    drop(stream);
                    let reason = "its address is no peer's".to_owned();
                    acceptor.refuse(address, None, Refusal::UnknownAddress, reason);
                    continue;
                }
                let Some(slot) = acceptor.pending.take(address.ip()) else {
                    drop(stream);
                    let reason = format!(
                        "{PENDING_PER_ADDRESS} connections from its address are in their handshake"
                    );
                    acceptor.refuse(address, None, Refusal::TooManyPending, reason);
                    continue;
                };
                tokio::spawn(serve(stream, address, acceptor.clone(), slot));
            }
            // Out of file descriptors, or a connection reset before it was
            // accepted: wait a little rather than spin.
            Err(e) => {
                debug!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Why a connection ended.
enum End {
    /// Closed by the peer, replaced by its newer connection, or the node
    /// stopping: normal, logged at debug level.
    Quiet(String),
    /// The peer stopped answering (keepalive or unacknowledged data timed
    /// out): it vanished without closing. Logged once, at info level.
    Lost(String),
    /// Bad input or a stall: counted, and logged as a warning with the
    /// address (rate-limited).
    Refused(Refusal, String),
}

async fn serve(stream: TcpStream, address: SocketAddr, acceptor: Acceptor, slot: PendingSlot) {
    let accepted = Instant::now();
    let counters = &acceptor.counters;
    counters.inbound_connections.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = configure(&stream, &acceptor.tcp) {
        // The connection still works; only a vanished peer goes unnoticed
        // until it says hello again.
        debug!(peer_address = %address, "cannot set up keepalive on a connection: {e}");
    }
    let mut connection = Connection {
        inbound: Inbound::new(&acceptor.config, acceptor.tcp.cluster),
        number: acceptor.current.number(),
        address,
        close: acceptor.stop.child_token(),
        slot: Some(slot),
        named: resolve_named(&acceptor.tcp).await,
    };
    let end = match acceptor.tcp.tls.clone() {
        None => connection.read(stream, &acceptor, accepted).await,
        Some(tls) => connection.read_tls(stream, &tls, &acceptor, accepted).await,
    };
    counters.inbound_connections.fetch_sub(1, Ordering::Relaxed);
    let peer = connection.inbound.peer();
    if let Some(peer) = peer {
        acceptor.current.release(peer, connection.number);
    }
    match end {
        End::Quiet(why) => {
            let named = peer.map_or_else(|| "an unknown peer".to_owned(), |id| id.to_string());
            debug!(peer_address = %address, "connection of {named} ended: {why}");
        }
        End::Lost(reason) => log_connection(&ConnectionEnded {
            address,
            peer,
            end: ConnectionEnd::Lost,
            reason,
        }),
        End::Refused(cause, reason) => acceptor.refuse(address, peer, cause, reason),
    }
}

/// One accepted connection.
struct Connection {
    inbound: Inbound,
    /// Its number among this node's connections ([`Current`]).
    number: u64,
    /// Where it comes from.
    address: SocketAddr,
    /// Cancelled when the node stops or the peer's newer connection
    /// replaces this one.
    close: CancellationToken,
    /// Its pending slot, given back once its hello is accepted.
    slot: Option<PendingSlot>,
    /// What each peer configured by host name resolved to when the
    /// connection was accepted, or why the lookup failed.
    named: BTreeMap<NodeId, Result<Vec<IpAddr>, String>>,
}

impl Connection {
    /// The TLS handshake, within the handshake timeout of the connection's
    /// acceptance, then the peer its certificate names, then the frames as
    /// [`Self::read`] reads them: the hello must name that peer.
    async fn read_tls(
        &mut self,
        stream: TcpStream,
        tls: &PeerTls,
        acceptor: &Acceptor,
        accepted: Instant,
    ) -> End {
        let timeout = acceptor.tcp.handshake_timeout;
        let handshake = tls.acceptor().accept(stream);
        let stream = tokio::select! {
            biased;
            () = self.close.cancelled() => return End::Quiet("this node stops".into()),
            shaken = tokio::time::timeout_at(accepted + timeout, handshake) => match shaken {
                Err(_) => {
                    let why = format!("no TLS handshake within {timeout:?}");
                    return End::Refused(Refusal::Stalled, why);
                }
                Ok(Err(e)) => return match refusal_of(&e) {
                    Some(cause) => End::Refused(cause, format!("TLS handshake: {e}")),
                    None => End::Quiet(format!("closed in the TLS handshake: {e}")),
                },
                Ok(Ok(stream)) => stream,
            },
        };
        match tls.certified_peer(stream.get_ref().1, acceptor.config.peers()) {
            Ok(peer) => self.inbound.certified(peer),
            Err(reason) => return End::Refused(Refusal::WrongIdentity, reason),
        }
        self.read(stream, acceptor, accepted).await
    }

    async fn read<S: AsyncRead + Unpin>(
        &mut self,
        mut stream: S,
        acceptor: &Acceptor,
        accepted: Instant,
    ) -> End {
        let tcp = &acceptor.tcp;
        let hello_by = accepted + tcp.handshake_timeout;
        // When the unfinished frame at the front of the buffer began.
        let mut frame_began: Option<Instant> = None;
        let mut buffer = BytesMut::with_capacity(1024);
        // Each turn reads once, or ends the connection; the buffer never
        // holds more than one partial frame and one read, since whole
        // frames are taken out before the next read.
        loop {
            let took = match self.take_frames(&mut buffer, acceptor) {
                Ok(took) => took,
                Err(rejection) => return End::Refused(rejection.refusal(), rejection.to_string()),
            };
            // A frame left over after a whole one began in the last read.
            frame_began = match frame_began {
                _ if !self.inbound.mid_frame(&buffer) => None,
                Some(began) if !took => Some(began),
                _ => Some(Instant::now()),
            };
            let deadline = match (self.inbound.peer(), frame_began) {
                (None, _) => Some((hello_by, "sent no hello")),
                (Some(_), Some(began)) => {
                    Some((began + tcp.handshake_timeout, "left a frame unfinished"))
                }
                // A peer with nothing to say is no fault: keepalive tells a
                // quiet peer from a vanished one.
                (Some(_), None) => None,
            };
            buffer.reserve(512);
            let reading = stream.read_buf(&mut buffer);
            let read = tokio::select! {
                biased;
                () = self.close.cancelled() => {
                    return End::Quiet(if acceptor.stop.is_cancelled() {
                        "this node stops".into()
                    } else {
                        "replaced by a newer connection of the same peer".into()
                    });
                }
                read = async {
                    match deadline {
                        Some((at, _)) => tokio::time::timeout_at(at, reading).await,
                        None => Ok(reading.await),
                    }
                } => read,
            };
            match read {
                Err(_) => {
                    let stalled = deadline.map_or("stalled", |(_, why)| why);
                    let why = format!("{stalled} within {:?}", tcp.handshake_timeout);
                    return End::Refused(Refusal::Stalled, why);
                }
                Ok(Ok(0)) if !self.inbound.mid_frame(&buffer) => {
                    return End::Quiet("closed by the peer".into());
                }
                Ok(Ok(0)) => {
                    let why = "closed in the middle of a frame".into();
                    return End::Refused(Refusal::BadFrame, why);
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) if e.kind() == io::ErrorKind::TimedOut => {
                    return End::Lost(format!("the peer stopped answering ({e})"));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return End::Quiet("reset by the peer".into());
                }
                Ok(Err(e)) => return End::Quiet(format!("a read failed: {e}")),
            }
        }
    }

    /// Takes every whole frame out of `buffer`: a hello makes the
    /// connection its peer's, a message goes to the node. Whether it took
    /// any, or why the connection must close.
    fn take_frames(
        &mut self,
        buffer: &mut BytesMut,
        acceptor: &Acceptor,
    ) -> Result<bool, Rejection> {
        let mut took = false;
        // Each turn takes one frame; the buffer holds at most one read.
        while let Some(received) = self.inbound.decode(buffer)? {
            took = true;
            match received {
                Received::Hello { peer } => {
                    self.check_source(peer, &acceptor.tcp)?;
                    // A peer now: its slot is its own from here on.
                    self.slot = None;
                    acceptor
                        .current
                        .claim(peer, self.number, self.close.clone());
                    debug!(peer_address = %self.address, "{peer} connected");
                }
                Received::Message { from, message } => {
                    // Never wait on the node: a full inbox loses the message.
                    if acceptor.inbox.try_send((from, message)).is_err() {
                        bump(&acceptor.counters.inbox_full);
                    }
                }
            }
        }
        Ok(took)
    }

    /// A hello from `peer` must come from its configured IP, where that is
    /// a specific one, or from one its name resolved to: a second process
    /// with the same id elsewhere could otherwise cast that id's vote a
    /// second time.
    fn check_source(&self, peer: NodeId, tcp: &TcpConfig) -> Result<(), Rejection> {
        let Some(address) = tcp.peers.get(&peer) else {
            // The decoder accepts only voters, and every voter is a peer.
            return Ok(());
        };
        let actual = self.address.ip().to_canonical();
        let Some(expected) = address.ip() else {
            let why = match self.named.get(&peer) {
                Some(Ok(found)) if found.iter().any(|ip| ip.to_canonical() == actual) => {
                    return Ok(());
                }
                Some(Ok(found)) => {
                    let listed: Vec<String> = found.iter().map(ToString::to_string).collect();
                    format!("it resolves to {}", listed.join(", "))
                }
                Some(Err(why)) => why.clone(),
                None => "it was not looked up".to_owned(),
            };
            return Err(Rejection::WrongHost {
                peer,
                name: address.to_string(),
                actual,
                why,
            });
        };
        let expected = expected.to_canonical();
        if expected.is_unspecified() || expected == actual {
            return Ok(());
        }
        Err(Rejection::WrongAddress {
            peer,
            expected,
            actual,
        })
    }
}

/// What each peer configured by host name resolves to now, each lookup
/// bounded by the handshake timeout: none without such peers.
async fn resolve_named(tcp: &TcpConfig) -> BTreeMap<NodeId, Result<Vec<IpAddr>, String>> {
    let mut named = BTreeMap::new();
    for (&peer, address) in tcp.peers.iter().filter(|(_, a)| a.ip().is_none()) {
        let found = match tokio::time::timeout(tcp.handshake_timeout, address.resolve()).await {
            Ok(Ok(found)) => Ok(found.iter().map(SocketAddr::ip).collect()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("looking it up timed out".to_owned()),
        };
        named.insert(peer, found);
    }
    named
}
