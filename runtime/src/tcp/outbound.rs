//! Outgoing connections: per peer, a bounded queue the node pushes to
//! without waiting, and a task that keeps a connection up and writes the
//! queue to it.

use super::wire::{self, Body, Frame};
use super::{PeerAddress, PeerStats, TcpConfig, configure};
use crate::sync::bump;
use bytes::BytesMut;
use raft_election::{Message, NodeId};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

/// The addresses a name resolves to that one attempt tries, in order.
const MAX_ADDRESSES_TRIED: usize = 4;

/// Messages for one peer, oldest first, at most `capacity`.
#[derive(Debug)]
pub(crate) struct PeerQueue {
    queue: Mutex<VecDeque<Message>>,
    capacity: usize,
    ready: Notify,
    connected: AtomicBool,
    connections: AtomicU64,
    sent: AtomicU64,
    dropped: AtomicU64,
}

impl PeerQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            queue: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
            ready: Notify::new(),
            connected: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues `message`, dropping the oldest one if the queue is full: a
    /// newer heartbeat or vote supersedes an older one.
    pub(crate) fn push(&self, message: Message) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.len() >= self.capacity {
            queue.pop_front();
            bump(&self.dropped);
        }
        queue.push_back(message);
        drop(queue);
        self.ready.notify_one();
    }

    /// Moves every queued message to `out`.
    fn take_all(&self, out: &mut Vec<Message>) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        out.extend(queue.drain(..));
    }

    pub(crate) fn stats(&self) -> PeerStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PeerStats {
            connected: self.connected.load(Ordering::Relaxed),
            connections: read(&self.connections),
            sent: read(&self.sent),
            dropped: read(&self.dropped),
        }
    }
}

/// An outgoing connection, plaintext or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// One peer's outgoing connection and what it needs.
#[derive(Debug)]
pub(super) struct Link {
    pub(super) me: NodeId,
    pub(super) peer: NodeId,
    pub(super) addr: PeerAddress,
    pub(super) tcp: Arc<TcpConfig>,
    pub(super) queue: Arc<PeerQueue>,
    pub(super) stop: CancellationToken,
}

impl Link {
    /// Connects, writes, reconnects, until stopped.
    ///
    /// Every reconnection waits a jittered backoff first, whether the
    /// attempt failed or the connection was accepted and then closed (a
    /// peer of another cluster, a wrong address, a full receiver): a peer
    /// that closes at once is tried at most once per backoff, never in a
    /// loop. The backoff starts again from `reconnect_min` only once a
    /// connection has stayed up for `reconnect_max`.
    pub(super) async fn run(self) {
        let mut backoff = self.tcp.reconnect_min;
        // Whether the last line at INFO said the link is down: repeats of a
        // failure go to DEBUG until a connection holds again, so an outage
        // is logged once, not once per attempt.
        let mut said_down = false;
        // Each turn makes one connection attempt, serves it if it succeeds,
        // and always sleeps before the next.
        loop {
            let connected = tokio::select! {
                biased;
                () = self.stop.cancelled() => return,
                connected = self.connect() => connected,
            };
            match connected {
                Ok(stream) => {
                    bump(&self.queue.connections);
                    debug!(peer = %self.peer, peer_address = %self.addr, "connection to {} open", self.peer);
                    let opened = Instant::now();
                    let serving = self.serve(stream);
                    tokio::pin!(serving);
                    let held = tokio::time::sleep(self.tcp.reconnect_max);
                    // A connection that holds this long is a working link.
                    let (ended, stable) = tokio::select! {
                        ended = &mut serving => (ended, false),
                        () = held => {
                            backoff = self.tcp.reconnect_min;
                            said_down = false;
                            info!(peer = %self.peer, peer_address = %self.addr, "connected to {}", self.peer);
                            ((&mut serving).await, true)
                        }
                    };
                    self.queue.connected.store(false, Ordering::Relaxed);
                    if self.stop.is_cancelled() {
                        return;
                    }
                    let lasted = opened.elapsed();
                    if stable {
                        info!(
                            peer = %self.peer,
                            peer_address = %self.addr,
                            "lost the connection to {} after {lasted:.1?}: {ended}", self.peer
                        );
                        said_down = true;
                    } else if !said_down {
                        info!(
                            peer = %self.peer,
                            peer_address = %self.addr,
                            "the connection to {} ended after {lasted:.1?}: {ended}; retrying \
                             with backoff up to {:?} (repeats at debug level)",
                            self.peer,
                            self.tcp.reconnect_max
                        );
                        said_down = true;
                    } else {
                        debug!(peer = %self.peer, "the connection to {} ended after {lasted:.1?}: {ended}", self.peer);
                    }
                }
                Err(e) if !said_down => {
                    info!(
                        peer = %self.peer,
                        peer_address = %self.addr,
                        "cannot reach {}: {e}; retrying with backoff up to {:?} (repeats at \
                         debug level)",
                        self.peer,
                        self.tcp.reconnect_max
                    );
                    said_down = true;
                }
                Err(e) => debug!(peer = %self.peer, "cannot reach {}: {e}", self.peer),
            }
            // Jitter over the upper half: peers that lost one node together
            // do not retry in lockstep.
            let wait = rand::random_range(backoff / 2..=backoff);
            tokio::select! {
                biased;
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            backoff = backoff.saturating_mul(2).min(self.tcp.reconnect_max);
        }
    }

    /// A connection to the peer: TCP, then with TLS the handshake, which
    /// checks that the peer's certificate names this peer.
    async fn connect(&self) -> io::Result<Stream> {
        let stream = self.connect_tcp().await?;
        let Some(tls) = &self.tcp.tls else {
            return Ok(Stream::Plain(stream));
        };
        let handshake = tls.connector().connect(tls.server_name(self.peer), stream);
        let stream = tokio::time::timeout(self.tcp.connect_timeout, handshake)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
            .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake: {e}")))?;
        Ok(Stream::Tls(Box::new(stream)))
    }

    /// A TCP connection to the peer: its address, or the first address its
    /// name resolves to now that accepts. Looked up at every attempt, so a
    /// peer that moved is reached at its new address.
    async fn connect_tcp(&self) -> io::Result<TcpStream> {
        let timed_out = |what| io::Error::new(io::ErrorKind::TimedOut, what);
        let found = tokio::time::timeout(self.tcp.connect_timeout, self.addr.resolve())
            .await
            .map_err(|_| timed_out("looking up the peer's name timed out"))??;
        let mut failed = timed_out("no address to try");
        for addr in found.into_iter().take(MAX_ADDRESSES_TRIED) {
            match self.connect_to(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => failed = e,
            }
        }
        Err(failed)
    }

    async fn connect_to(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // From this node's own address, so the peer (and a firewall) sees
        // the same address this node listens on.
        let local = self.tcp.listen.ip();
        if !local.is_unspecified() && local.is_ipv4() == addr.is_ipv4() {
            socket.bind(SocketAddr::new(local, 0))?;
        }
        let stream = tokio::time::timeout(self.tcp.connect_timeout, socket.connect(addr))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "connection attempt timed out")
            })??;
        configure(&stream, &self.tcp)?;
        Ok(stream)
    }

    /// Writes the hello, then every queued message, until the connection
    /// breaks or the node stops.
    async fn serve(&self, stream: Stream) -> io::Error {
        match stream {
            Stream::Plain(stream) => self.write(stream).await,
            Stream::Tls(stream) => self.write(*stream).await,
        }
    }

    async fn write<S: AsyncRead + AsyncWrite>(&self, stream: S) -> io::Error {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut out = BytesMut::with_capacity(1024);
        let frame = |body| Frame {
            cluster: self.tcp.cluster,
            from: self.me,
            body,
        };
        wire::encode(&frame(Body::Hello { to: self.peer }), &mut out);
        let mut hello_written = false;
        // Messages in `out`: counted as sent once written.
        let mut pending = 0_u64;
        let mut batch = Vec::with_capacity(self.queue.capacity);
        // The peer never writes on this connection: a readable socket
        // means it closed (or broke the protocol), so reconnect at once
        // rather than at the next failed write.
        let mut probe = [0_u8; 1];
        // Each turn writes what is queued, or waits for more.
        loop {
            if !out.is_empty() {
                let written = tokio::select! {
                    biased;
                    () = self.stop.cancelled() => return io::ErrorKind::Interrupted.into(),
                    written = writer.write_all(&out) => written,
                };
                if let Err(e) = written {
                    return e;
                }
                out.clear();
                self.queue.sent.fetch_add(pending, Ordering::Relaxed);
                pending = 0;
                if !hello_written {
                    hello_written = true;
                    self.queue.connected.store(true, Ordering::Relaxed);
                }
            }
            self.queue.take_all(&mut batch);
            if batch.is_empty() {
                tokio::select! {
                    biased;
                    () = self.stop.cancelled() => return io::ErrorKind::Interrupted.into(),
                    read = reader.read(&mut probe) => return match read {
                        Ok(0) => io::Error::new(io::ErrorKind::UnexpectedEof, "closed by the peer"),
                        Ok(_) => io::Error::new(io::ErrorKind::InvalidData, "the peer wrote on a connection it should only read"),
                        Err(e) => e,
                    },
                    () = self.queue.ready.notified() => continue,
                }
            }
            pending = batch.len() as u64;
            for message in batch.drain(..) {
                wire::encode(&frame(Body::Message(message)), &mut out);
            }
        }
    }
}
