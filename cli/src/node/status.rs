//! The node's HTTP endpoint (`--status`): GET /status (JSON), /metrics
//! (Prometheus), /healthz, /readyz and /leader (200 or 503, the reason in
//! words), and POST /transfer?to=ID on a loopback address only. On a
//! thread and a Tokio runtime of its own, so no client can delay the node
//! and a wedged node still answers /healthz; bounded so no client can
//! exhaust the process: at most [`MAX_CONNECTIONS`] at once (one more is
//! closed at once), each answered once and closed, and closed after
//! [`CONNECTION_TIMEOUT`] whatever it sent.

use super::health::{self, Liveness};
use super::metrics;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use raft_election::{NodeId, Timing};
use raft_election_cli::log_lines::{NodeEvent, log_event};
use raft_election_cli::profile::TimingFigures;
use raft_election_runtime::{Leadership, StatusReader, TcpStatsHandle};
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::debug;

/// Connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 4;

/// How long a connection may take, from acceptance to the answer sent.
pub(crate) const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// A request to hand leadership to a node, and where it came from.
pub(super) type TransferRequest = (NodeId, SocketAddr);

/// Everything the endpoint answers from.
#[derive(Debug)]
pub(super) struct View {
    pub(super) reader: StatusReader,
    pub(super) network: TcpStatsHandle,
    pub(super) leadership: watch::Receiver<Leadership>,
    pub(super) registry: Registry,
    pub(super) liveness: Arc<Liveness>,
    pub(super) timing: Timing,
    pub(super) quorum: usize,
    pub(super) voters: Vec<NodeId>,
    /// Whether the leader lease is on.
    pub(super) lease: bool,
    pub(super) figures: TimingFigures,
    /// Where transfer requests go; `None` off loopback, where they are refused.
    pub(super) transfers: Option<mpsc::Sender<TransferRequest>>,
}

/// A running endpoint; [`Self::stop`] ends it.
pub(super) struct StatusEndpoint {
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl StatusEndpoint {
    /// Listens on `addr` (refused at once if it cannot) and answers from `view`.
    pub(super) fn start(addr: SocketAddr, view: View) -> Result<Self, String> {
        let cannot = |e: std::io::Error| format!("cannot serve status on {addr}: {e}");
        let listener = std::net::TcpListener::bind(addr).map_err(cannot)?;
        listener.set_nonblocking(true).map_err(cannot)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(cannot)?;
        let (stop, stopped) = oneshot::channel();
        let view = Arc::new(view);
        let thread = std::thread::Builder::new()
            .name("status".into())
            .spawn(move || runtime.block_on(serve(listener, view, stopped)))
            .map_err(cannot)?;
        log_event(&NodeEvent::StatusServing { address: addr });
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
    view: Arc<View>,
    mut stopped: oneshot::Receiver<()>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Each turn accepts one connection, or ends.
    loop {
        let accepted = tokio::select! {
            biased;
            _ = &mut stopped => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, client) = match accepted {
            Ok(accepted) => accepted,
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
        let view = Arc::clone(&view);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = respond(&request, &view, client);
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

/// An answer: its code, content type and body.
type Answer = (StatusCode, &'static str, String);

const TEXT: &str = "text/plain; charset=utf-8";

/// 200 with `Ok`'s words, 503 with `Err`'s.
fn verdict(result: Result<String, String>) -> Answer {
    match result {
        Ok(words) => (StatusCode::OK, TEXT, words + "\n"),
        Err(words) => (StatusCode::SERVICE_UNAVAILABLE, TEXT, words + "\n"),
    }
}

fn respond(request: &Request<Incoming>, view: &View, client: SocketAddr) -> Response<Full<Bytes>> {
    let get = matches!(*request.method(), Method::GET | Method::HEAD);
    let (code, content_type, body) = match (request.uri().path(), get) {
        ("/status" | "/", true) => (
            StatusCode::OK,
            "application/json",
            status_json(view).to_string(),
        ),
        ("/metrics", true) => {
            let accept = request
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let (text, content_type) = metrics::encode(&view.registry, accept);
            (StatusCode::OK, content_type, text)
        }
        ("/healthz", true) => verdict(health::healthy(
            view.liveness.since_last_step(),
            &view.timing,
        )),
        ("/readyz", true) => verdict(
            health::ready(
                &view.reader.status(),
                view.quorum,
                &view.timing,
                Instant::now(),
            )
            .map(|leader| format!("{leader} leads")),
        ),
        ("/leader", true) => {
            let leadership = *view.leadership.borrow();
            verdict(health::leads(
                &view.reader.status(),
                &leadership,
                view.lease,
            ))
        }
        ("/transfer", false) if *request.method() == Method::POST => {
            transfer(request.uri().query().unwrap_or_default(), view, client)
        }
        _ => (
            StatusCode::NOT_FOUND,
            TEXT,
            "GET /status, /metrics, /healthz, /readyz or /leader; POST /transfer?to=ID\n"
                .to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

/// POST /transfer?to=ID: queued for the node, which hands over if it leads.
fn transfer(query: &str, view: &View, client: SocketAddr) -> Answer {
    let Some(transfers) = &view.transfers else {
        return (
            StatusCode::FORBIDDEN,
            TEXT,
            "transfers are accepted only on a loopback status address: nothing authenticates \
             the request yet (mutual TLS will)\n"
                .to_owned(),
        );
    };
    let to = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("to="))
        .and_then(|id| id.parse::<u8>().ok())
        .map(NodeId);
    let Some(to) = to.filter(|to| view.voters.contains(to)) else {
        let ids: Vec<String> = view.voters.iter().map(|id| id.0.to_string()).collect();
        return (
            StatusCode::BAD_REQUEST,
            TEXT,
            format!("POST /transfer?to=ID, ID one of {}\n", ids.join(", ")),
        );
    };
    match transfers.try_send((to, client)) {
        Ok(()) => (
            StatusCode::ACCEPTED,
            TEXT,
            format!("asked to hand leadership to {to}\n"),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            TEXT,
            "too many requests waiting\n".to_owned(),
        ),
    }
}

/// The node's status as an operator reads it.
fn status_json(view: &View) -> serde_json::Value {
    let status = view.reader.status();
    let round_trips = view.reader.round_trips();
    let micros = |permille| {
        round_trips
            .percentile(permille)
            .map(|d: Duration| d.as_secs_f64() * 1e6)
    };
    let net = view.network.snapshot();
    let peers: serde_json::Map<String, serde_json::Value> = net
        .peers
        .iter()
        .map(|(id, p)| {
            let value = json!({
                "connected": p.connected,
                "connections": p.connections,
                "sent": p.sent,
                "dropped": p.dropped,
            });
            (id.0.to_string(), value)
        })
        .collect();
    let leadership = *view.leadership.borrow();
    let lease_ms = leadership
        .lease_until
        .filter(|_| leadership.has_lease())
        .map(|until| {
            until
                .saturating_duration_since(Instant::now())
                .as_secs_f64()
                * 1e3
        });
    let now = Instant::now();
    json!({
        "id": status.id.0,
        "role": status.role.to_string(),
        "term": status.term.0,
        "leader": status.leader.map(|l| l.0),
        "voted_for": status.voted_for.map(|v| v.0),
        "running": status.running,
        "last_heartbeat_ms_ago": status.last_heartbeat.map(|at| at.elapsed().as_secs_f64() * 1e3),
        "last_step_ms_ago": view.liveness.since_last_step().as_secs_f64() * 1e3,
        "healthy": health::healthy(view.liveness.since_last_step(), &view.timing).is_ok(),
        "ready": health::ready(&status, view.quorum, &view.timing, now).is_ok(),
        "lease_remaining_ms": lease_ms,
        "peers": peers,
        "inbound_connections": net.inbound_connections,
        "rejected_connections": net.rejected_connections,
        // The transport counts every cause, zeros included.
        "refusals": net
            .refusals
            .iter()
            .map(|(cause, count)| (cause.name().to_owned(), json!(count)))
            .collect::<serde_json::Map<_, _>>(),
        "inbox_full": net.inbox_full,
        "heartbeat_round_trip_us": {
            "samples": round_trips.samples().count(),
            "p50": micros(500),
            "p99": micros(990),
        },
        "timing": view.figures,
    })
}
