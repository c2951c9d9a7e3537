//! Accepted connections: one task each, reading frames through
//! [`Inbound`] into the node's inbox; at most one per peer.

use super::wire::{Inbound, Received, Rejection};
use super::{Counters, MAX_INBOUND_CONNECTIONS, TcpConfig, bump, configure};
use bytes::BytesMut;
use raft_election::{Config, Message, NodeId};
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// What every connection task needs.
#[derive(Clone, Debug)]
pub(super) struct Acceptor {
    pub(super) config: Config,
    pub(super) tcp: Arc<TcpConfig>,
    pub(super) inbox: mpsc::Sender<(NodeId, Message)>,
    pub(super) counters: Arc<Counters>,
    pub(super) current: Arc<Current>,
    pub(super) stop: CancellationToken,
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Accepts connections until stopped; each gets a task, up to
/// [`MAX_INBOUND_CONNECTIONS`] at once.
pub(super) async fn accept(listener: TcpListener, acceptor: Acceptor) {
    let permits = Arc::new(Semaphore::new(MAX_INBOUND_CONNECTIONS));
    // Each turn accepts one connection or ends.
    loop {
        let accepted = tokio::select! {
            biased;
            () = acceptor.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, address)) => {
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    warn!(
                        peer_address = %address,
                        "closing a connection: {MAX_INBOUND_CONNECTIONS} are open already"
                    );
                    bump(&acceptor.counters.rejected_connections);
                    continue;
                };
                tokio::spawn(serve(stream, address, acceptor.clone(), permit));
            }
            // Out of file descriptors, or a connection reset before it was
            // accepted: wait a little rather than spin.
            Err(e) => {
                warn!("accepting a connection failed: {e}");
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
    /// Bad input or a stall: logged once as a warning, with the address,
    /// and counted.
    Refused(String),
}

async fn serve(
    stream: TcpStream,
    address: SocketAddr,
    acceptor: Acceptor,
    _permit: OwnedSemaphorePermit,
) {
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
    };
    let end = connection.read(stream, &acceptor, accepted).await;
    counters.inbound_connections.fetch_sub(1, Ordering::Relaxed);
    let peer = connection.inbound.peer();
    if let Some(peer) = peer {
        acceptor.current.release(peer, connection.number);
    }
    let peer = peer.map_or_else(|| "an unknown peer".to_owned(), |id| id.to_string());
    match end {
        End::Quiet(why) => debug!(peer_address = %address, "connection of {peer} ended: {why}"),
        End::Lost(why) => info!(peer_address = %address, "lost the connection of {peer}: {why}"),
        End::Refused(why) => {
            bump(&counters.rejected_connections);
            warn!(peer_address = %address, "closed the connection of {peer}: {why}");
        }
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
}

impl Connection {
    async fn read(&mut self, mut stream: TcpStream, acceptor: &Acceptor, accepted: Instant) -> End {
        let tcp = &acceptor.tcp;
        let hello_by = accepted + tcp.handshake_timeout;
        // When the unfinished frame at the front of the buffer began.
        let mut frame_began: Option<Instant> = None;
        let mut buffer = BytesMut::with_capacity(1024);
        // Each turn reads once, or ends the connection; the buffer never
        // holds more than one partial frame and one read, since whole
        // frames are taken out before the next read.
        loop {
            let mut took = false;
            loop {
                match self.inbound.decode(&mut buffer) {
                    Ok(Some(Received::Hello { peer })) => {
                        if let Err(rejection) = self.check_source(peer, tcp) {
                            return End::Refused(rejection.to_string());
                        }
                        acceptor
                            .current
                            .claim(peer, self.number, self.close.clone());
                        debug!(peer_address = %self.address, "{peer} connected");
                    }
                    Ok(Some(Received::Message { from, message })) => {
                        // Never wait on the node: a full inbox loses the message.
                        if acceptor.inbox.try_send((from, message)).is_err() {
                            bump(&acceptor.counters.inbox_full);
                        }
                    }
                    Ok(None) => break,
                    Err(rejection) => return End::Refused(rejection.to_string()),
                }
                took = true;
            }
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
                    return End::Refused(format!("{stalled} within {:?}", tcp.handshake_timeout));
                }
                Ok(Ok(0)) if !self.inbound.mid_frame(&buffer) => {
                    return End::Quiet("closed by the peer".into());
                }
                Ok(Ok(0)) => return End::Refused("closed in the middle of a frame".into()),
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

    /// A hello from `peer` must come from its configured IP, where that is
    /// a specific one: a second process with the same id elsewhere could
    /// otherwise cast that id's vote a second time.
    fn check_source(&self, peer: NodeId, tcp: &TcpConfig) -> Result<(), Rejection> {
        let Some(expected) = tcp.peers.get(&peer).map(SocketAddr::ip) else {
            // The decoder accepts only voters, and every voter is a peer.
            return Ok(());
        };
        let (expected, actual) = (expected.to_canonical(), self.address.ip().to_canonical());
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
