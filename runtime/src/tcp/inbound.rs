//! Accepted connections: one task each, reading frames through
//! [`Inbound`] into the node's inbox.

use super::wire::{Inbound, Received};
use super::{Counters, MAX_INBOUND_CONNECTIONS, TcpConfig, bump};
use bytes::BytesMut;
use raft_election::{Config, Message, NodeId};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// What every connection task needs.
#[derive(Clone, Debug)]
pub(super) struct Acceptor {
    pub(super) config: Config,
    pub(super) tcp: Arc<TcpConfig>,
    pub(super) inbox: mpsc::Sender<(NodeId, Message)>,
    pub(super) counters: Arc<Counters>,
    pub(super) stop: CancellationToken,
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

/// Why a connection ended, if it is worth a warning.
enum End {
    /// Closed by the peer, idle, or the node stopping: normal.
    Quiet(&'static str),
    /// Bad input or a stall: logged once, with the address.
    Refused(String),
}

async fn serve(
    stream: TcpStream,
    address: SocketAddr,
    acceptor: Acceptor,
    _permit: OwnedSemaphorePermit,
) {
    let counters = &acceptor.counters;
    counters.inbound_connections.fetch_add(1, Ordering::Relaxed);
    let mut inbound = Inbound::new(&acceptor.config, acceptor.tcp.cluster);
    let end = read(stream, &mut inbound, &acceptor).await;
    counters.inbound_connections.fetch_sub(1, Ordering::Relaxed);
    let peer = inbound
        .peer()
        .map_or_else(|| "an unknown peer".to_owned(), |id| id.to_string());
    match end {
        End::Quiet(why) => debug!(peer_address = %address, "connection of {peer} ended: {why}"),
        End::Refused(why) => {
            bump(&counters.rejected_connections);
            warn!(peer_address = %address, "closed the connection of {peer}: {why}");
        }
    }
}

async fn read(mut stream: TcpStream, inbound: &mut Inbound, acceptor: &Acceptor) -> End {
    let tcp = &acceptor.tcp;
    let mut buffer = BytesMut::with_capacity(1024);
    // Each turn reads once, or ends the connection; the buffer never holds
    // more than one partial frame and one read, since whole frames are
    // taken out before the next read.
    loop {
        loop {
            match inbound.decode(&mut buffer) {
                Ok(Some(Received::Hello { peer })) => {
                    debug!("{peer} connected");
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
        }
        let (limit, stalled) = match (inbound.peer(), buffer.is_empty()) {
            (None, true) => (tcp.handshake_timeout, "sent no hello"),
            (_, false) => (tcp.handshake_timeout, "left a frame unfinished"),
            (Some(_), true) => (tcp.idle_timeout, ""),
        };
        buffer.reserve(512);
        let read = tokio::select! {
            biased;
            () = acceptor.stop.cancelled() => return End::Quiet("this node stops"),
            read = tokio::time::timeout(limit, stream.read_buf(&mut buffer)) => read,
        };
        match read {
            Err(_) if stalled.is_empty() => return End::Quiet("idle"),
            Err(_) => return End::Refused(format!("{stalled} within {limit:?}")),
            Ok(Ok(0)) if buffer.is_empty() => return End::Quiet("closed by the peer"),
            Ok(Ok(0)) => return End::Refused("closed in the middle of a frame".into()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return End::Quiet(if e.kind() == std::io::ErrorKind::ConnectionReset {
                    "reset by the peer"
                } else {
                    "a read failed"
                });
            }
        }
    }
}
