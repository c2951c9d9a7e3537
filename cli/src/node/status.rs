//! The node's HTTP status endpoint: GET /status answers the node's status
//! as JSON. On a thread and a Tokio runtime of its own, so no client can
//! delay the node, and bounded so no client can exhaust the process: at
//! most [`MAX_CONNECTIONS`] at once (one more is closed at once), each
//! answered once and closed, and closed after [`CONNECTION_TIMEOUT`]
//! whatever it sent.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use raft_election_runtime::{StatusReader, TcpStatsHandle};
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tracing::{debug, info};

/// Connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 4;

/// How long a connection may take, from acceptance to the answer sent.
pub(crate) const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// A running endpoint; [`Self::stop`] ends it.
pub(super) struct StatusEndpoint {
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl StatusEndpoint {
    /// Listens on `addr` (refused at once if it cannot) and answers from
    /// `reader` and `network`.
    pub(super) fn start(
        addr: SocketAddr,
        reader: StatusReader,
        network: TcpStatsHandle,
    ) -> Result<Self, String> {
        let cannot = |e: std::io::Error| format!("cannot serve status on {addr}: {e}");
        let listener = std::net::TcpListener::bind(addr).map_err(cannot)?;
        listener.set_nonblocking(true).map_err(cannot)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(cannot)?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("status".into())
            .spawn(move || runtime.block_on(serve(listener, reader, network, stopped)))
            .map_err(cannot)?;
        info!("status on http://{addr}/status");
        Ok(Self { stop, thread })
    }

    /// Stops serving; connections still open are closed.
    pub(super) fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

async fn serve(
    listener: std::net::TcpListener,
    reader: StatusReader,
    network: TcpStatsHandle,
    mut stopped: oneshot::Receiver<()>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let answer = Arc::new(move |request: &Request<Incoming>| respond(request, &reader, &network));
    // Each turn accepts one connection, or ends.
    loop {
        let accepted = tokio::select! {
            biased;
            _ = &mut stopped => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // Out of file descriptors, or reset before it was accepted.
            Err(e) => {
                debug!("status: accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Over the cap: closed at once, the client may try again.
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            continue;
        };
        let answer = Arc::clone(&answer);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = answer(&request);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = http1::Builder::new()
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
            drop(permit);
        });
    }
}

fn respond(
    request: &Request<Incoming>,
    reader: &StatusReader,
    network: &TcpStatsHandle,
) -> Response<Full<Bytes>> {
    let (code, body) = match request.uri().path() {
        "/status" | "/" => (StatusCode::OK, super::status_json(reader, network)),
        _ => (StatusCode::NOT_FOUND, json!({"error": "GET /status"})),
    };
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
