//! A peer that accepts connections and closes them at once (another
//! cluster, a wrong address, a full receiver: each closes without a word):
//! the link backs off between attempts instead of reconnecting in a loop,
//! and says so once. Tokio's paused clock, so the count per virtual second
//! is exact. A test binary of its own: it installs a log subscriber, and
//! tracing caches which call sites are enabled across a test binary.

use raft_election::{ClusterId, Config, NodeId, Timing};
use raft_election_runtime::{TcpConfig, TcpTransport};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Instant;

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_peer_that_closes_every_connection_at_once_is_retried_at_backoff_pace_and_logged_once() {
    let log = tempfile::NamedTempFile::new().expect("a temporary log file");
    let writer = Arc::new(log.reopen().expect("the log file, reopened"));
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter("raft_election_runtime=debug")
        .with_writer(writer)
        .finish();
    // The current-thread runtime polls every task on this thread.
    let _logging = tracing::subscriber::set_default(subscriber);

    let peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = Config::new(NodeId(1), [NodeId(1), NodeId(2)], Timing::default()).unwrap();
    let peers = BTreeMap::from([(NodeId(2), peer.local_addr().unwrap())]);
    let mut tcp = TcpConfig::new(ClusterId(1), "127.0.0.1:0".parse().unwrap(), peers);
    tcp.reconnect_min = Duration::from_millis(20);
    tcp.reconnect_max = Duration::from_millis(200);
    let (min, max) = (tcp.reconnect_min, tcp.reconnect_max);
    let transport = TcpTransport::bind(&config, tcp).await.unwrap();
    let stats = transport.stats();

    let watched = Duration::from_secs(10);
    // Each wait is drawn from the upper half of the backoff, which doubles
    // from `min` to `max` and starts again only after a connection held
    // for `max`: none here does.
    let mut doublings = 0;
    let mut backoff = min;
    while backoff < max {
        backoff *= 2;
        doublings += 1;
    }
    let at_max = u64::try_from(watched.as_nanos().div_ceil((max / 2).as_nanos())).unwrap();
    let most = 1 + doublings + at_max;
    let start = Instant::now();
    let mut accepted = 0_u64;
    // Each turn accepts one connection and closes it, until the window
    // ends or the count passes the bound (a link without backoff would
    // pass it within real milliseconds, with the virtual clock standing).
    while accepted <= most {
        tokio::select! {
            conn = peer.accept() => {
                drop(conn.unwrap());
                accepted += 1;
            }
            () = tokio::time::sleep_until(start + watched) => break,
        }
    }
    let elapsed = start.elapsed();
    drop(transport);
    assert!(
        accepted <= most,
        "{accepted} connections in {elapsed:?} of virtual time, more than the backoff allows ({most})"
    );
    assert!(
        accepted >= 5,
        "only {accepted} connections in {elapsed:?}: the link stopped retrying"
    );
    assert!(
        !stats.snapshot().peers[&NodeId(2)].connected,
        "never up for long"
    );
    let text = std::fs::read_to_string(log.path()).unwrap();
    let info: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" INFO raft_election_runtime::tcp::outbound:"))
        .collect();
    assert_eq!(
        info.len(),
        1,
        "one line for the whole outage of {accepted} connections:\n{}",
        info.join("\n")
    );
    assert!(
        info[0].contains("the connection to n2 ended after"),
        "{}",
        info[0]
    );
    eprintln!(
        "{accepted} connections in {elapsed:?} (at most {most}); said: {}",
        info[0]
    );
}
