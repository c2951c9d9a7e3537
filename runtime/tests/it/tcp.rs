//! Servers in one process over real TCP on loopback: the same driver as
//! the in-process cluster, the TCP transport instead of channels. (The node
//! binary over separate processes is tested in the cli crate.)

use raft_election::storage::MemStorage;
use raft_election::{ClusterId, Config, NodeId, Record, Term, Timing};
use raft_election_runtime::{
    Leadership, Server, ServerBuilder, TcpConfig, TcpTransport, TimeoutSource,
};
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

const CLUSTER: ClusterId = ClusterId(5);

/// Generous: the machine may be loaded; elections take about 200 ms.
const DEADLINE: Duration = Duration::from_secs(10);

/// Free ports on 127.0.0.1, one per node (freed again before the nodes bind
/// them; nothing else on this machine picks ports from this range by
/// chance often enough to matter).
fn addresses(ids: &[NodeId]) -> BTreeMap<NodeId, SocketAddr> {
    let listeners: Vec<TcpListener> = ids
        .iter()
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ids.iter()
        .zip(&listeners)
        .map(|(&id, l)| (id, l.local_addr().unwrap()))
        .collect()
}

/// Node `id` of the cluster at `addresses`, bound to its address, with
/// memory storage and timeouts seeded by `seed`: ready to spawn.
async fn builder(
    id: NodeId,
    addresses: &BTreeMap<NodeId, SocketAddr>,
    seed: u64,
) -> ServerBuilder<MemStorage, TcpTransport> {
    let config = Config::new(id, addresses.keys().copied(), Timing::default()).unwrap();
    let peers = addresses
        .iter()
        .filter(|&(&peer, _)| peer != id)
        .map(|(&peer, &addr)| (peer, addr))
        .collect();
    let tcp = TcpConfig::new(CLUSTER, addresses[&id], peers);
    let transport = TcpTransport::bind(&config, tcp).await.unwrap();
    Server::builder(config)
        .storage(MemStorage::new())
        .transport(transport)
        .timeouts(TimeoutSource::Seeded(seed))
}

async fn spawn(id: NodeId, addresses: &BTreeMap<NodeId, SocketAddr>, seed: u64) -> Server {
    builder(id, addresses, seed).await.spawn().unwrap()
}

/// Waits until one of `watches` leads a term above `after`; returns its
/// index and leadership.
async fn leader_after(
    watches: &mut [watch::Receiver<Leadership>],
    after: Term,
) -> (usize, Leadership) {
    let wait = async {
        // Each turn waits for a change of any watch.
        loop {
            for (i, w) in watches.iter().enumerate() {
                let now = *w.borrow();
                if now.is_me && now.term > after {
                    return (i, now);
                }
            }
            let changes: Vec<_> = watches.iter_mut().map(|w| Box::pin(w.changed())).collect();
            let _ = futures_select_any(changes).await;
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .expect("no leader within the deadline")
}

/// The first of several futures to finish (a tiny `select_all`).
async fn futures_select_any<F: std::future::Future + Unpin>(mut futures: Vec<F>) {
    std::future::poll_fn(|cx| {
        for f in &mut futures {
            if std::pin::Pin::new(&mut *f).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await;
}

/// A leader is elected over TCP and every server's watch agrees on it; when
/// the leader shuts down, its watch says it leads nothing any more, and the
/// other two elect a successor in a later term.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_over_tcp_elect_a_leader_and_replace_it_when_it_shuts_down() {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let addresses = addresses(&ids);
    let mut servers = Vec::new();
    for (seed, &id) in (1..).zip(&ids) {
        servers.push(Some(spawn(id, &addresses, seed).await));
    }
    let mut watches: Vec<_> = servers.iter().flatten().map(Server::leadership).collect();
    let (first, won) = leader_after(&mut watches, Term(0)).await;
    let leader = ids[first];
    assert_eq!(won.leader, Some(leader));
    // The followers learn it from its heartbeats.
    for (i, w) in watches.iter_mut().enumerate() {
        let seen = tokio::time::timeout(DEADLINE, w.wait_for(|l| l.leader == Some(leader)))
            .await
            .unwrap_or_else(|_| panic!("{} never heard of {leader}", ids[i]))
            .map(|l| *l)
            .unwrap();
        assert_eq!((seen.term, seen.is_me), (won.term, i == first));
    }

    let mut stopped = watches.remove(first);
    servers[first].take().unwrap().shutdown().await.unwrap();
    assert!(
        !stopped.borrow_and_update().is_me,
        "a stopped server leads nothing"
    );
    assert!(stopped.changed().await.is_err(), "and its watch is closed");

    let (next, successor) = leader_after(&mut watches, won.term).await;
    let rest: Vec<NodeId> = ids.iter().copied().filter(|&id| id != leader).collect();
    assert!(successor.term > won.term);
    assert_eq!(successor.leader, Some(rest[next]));
    for server in servers.into_iter().flatten() {
        let status = server.status();
        assert!(status.running);
        server.shutdown().await.unwrap();
    }
}

/// What the record hook saw: saves with their durations, heartbeat round
/// trips, and every record in order.
#[derive(Debug, Default)]
struct Seen {
    records: Vec<Record>,
    saves_timed: usize,
    round_trips: usize,
}

/// A server's application sees every record through `on_record`, a save
/// with how long it took and a heartbeat answer with its round trip: a
/// cluster of two over TCP, the hook on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_hook_sees_every_record_with_save_durations_and_round_trips() {
    let ids = [NodeId(1), NodeId(2)];
    let addresses = addresses(&ids);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut servers = Vec::new();
    for (seed, &id) in (1..).zip(&ids) {
        let seen = Arc::clone(&seen);
        let server = builder(id, &addresses, seed)
            .await
            .on_record(move |noted| {
                let mut seen = seen.lock().unwrap();
                seen.saves_timed += usize::from(noted.took.is_some());
                seen.round_trips += usize::from(noted.round_trip.is_some());
                if seen.records.len() < 10_000 {
                    seen.records.push(*noted.record);
                }
            })
            .spawn()
            .unwrap();
        servers.push(server);
    }
    let mut watches: Vec<_> = servers.iter().map(Server::leadership).collect();
    leader_after(&mut watches, Term(0)).await;
    let heard = async {
        // Each turn waits a heartbeat for the leader's first round trips.
        while seen.lock().unwrap().round_trips < 3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(DEADLINE, heard)
        .await
        .expect("round trips");
    for server in servers {
        server.shutdown().await.unwrap();
    }
    let seen = seen.lock().unwrap();
    let count = |f: fn(&Record) -> bool| seen.records.iter().filter(|r| f(r)).count();
    assert_eq!(count(|r| matches!(r, Record::Started(_))), 2);
    let saves = count(|r| matches!(r, Record::Saved(_)));
    assert!(
        saves >= 2,
        "a candidate's vote and its voter's are saved: {saves}"
    );
    assert_eq!(
        seen.saves_timed, saves,
        "every save comes with its duration"
    );
    assert!(count(|r| matches!(r, Record::Sent { .. })) > 0);
}

/// Reads whole frames from a peer connection until it closes; returns how
/// many carried a message.
async fn count_frames(mut stream: tokio::net::TcpStream) -> u64 {
    use raft_election_runtime::tcp::wire::{self, Body};
    use tokio::io::AsyncReadExt;
    use tokio_util::codec::Decoder;
    let mut codec = wire::codec();
    let mut buffer = bytes::BytesMut::with_capacity(64 * 1024);
    let mut messages = 0;
    // Each turn reads once; ends when the sender closes.
    loop {
        while let Ok(Some(payload)) = codec.decode(&mut buffer) {
            let frame = wire::decode(&payload).expect("the node sends whole frames");
            if matches!(frame.body, Body::Message(_)) {
                messages += 1;
            }
        }
        match stream.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => return messages,
            Ok(_) => {}
        }
    }
}

/// A dead peer (nothing listens at its address): its queue keeps the 64
/// newest messages and drops the rest, oldest first, while every send
/// returns at once and the other peer receives everything written to its
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_peer_loses_its_oldest_messages_but_delays_neither_the_node_nor_the_other_peer() {
    use raft_election::Message;
    use raft_election_runtime::Transport;
    let fast = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // A port that was free a moment ago: connections to it are refused.
    let dead = addresses(&[NodeId(3)])[&NodeId(3)];
    let peers = BTreeMap::from([(NodeId(2), fast.local_addr().unwrap()), (NodeId(3), dead)]);
    let config = Config::new(
        NodeId(1),
        [NodeId(1), NodeId(2), NodeId(3)],
        Timing::default(),
    )
    .unwrap();
    let tcp = TcpConfig::new(CLUSTER, "127.0.0.1:0".parse().unwrap(), peers);
    let queue = tcp.peer_queue as u64;
    let mut transport = TcpTransport::bind(&config, tcp).await.unwrap();
    let stats = transport.stats();
    let (fast_stream, _) = fast.accept().await.unwrap();
    let counted = tokio::spawn(count_frames(fast_stream));
    let heartbeat = Message::AppendEntries {
        term: Term(1),
        leader_id: NodeId(1),
        round: 0,
    };
    let mut sent = 0;
    for _ in 0..200 {
        // A round within the queue's 64, then a pause for the connection tasks.
        for _ in 0..50 {
            transport.send(NodeId(2), heartbeat);
            transport.send(NodeId(3), heartbeat);
            sent += 1;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let to_dead = stats.snapshot().peers[&NodeId(3)];
    assert_eq!(
        (to_dead.connected, to_dead.sent, to_dead.dropped),
        (false, 0, sent - queue),
        "the dead peer's queue holds the newest {queue}"
    );
    // Wait until every message for the other peer is written or dropped
    // (on a loaded machine a round may outrun its connection task, whose
    // queue then drops the oldest, as it should), then close.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let to_fast = loop {
        let now = stats.snapshot().peers[&NodeId(2)];
        if now.sent + now.dropped == sent {
            break now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {DEADLINE:?} for the other peer's {sent} messages to be written or dropped: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    drop(transport);
    let received = tokio::time::timeout(DEADLINE, counted)
        .await
        .expect("the other peer's connection closes")
        .unwrap();
    assert_eq!(
        received, to_fast.sent,
        "the other peer got everything written to its connection"
    );
}

/// On Tokio's paused clock, which moves only while every task waits, a TCP
/// node meets its election deadline exactly, as the in-process cluster's
/// nodes do: the precise wait of its last 2 ms sleeps to the deadline
/// rather than watching a clock that cannot move. A runtime of its own on
/// a thread of its own, so a node stuck watching it fails the test within
/// a bound of real time instead of hanging it.
#[test]
fn a_tcp_node_on_a_paused_clock_campaigns_exactly_at_its_election_deadline() {
    const TIMEOUT: Duration = Duration::from_millis(200);
    let (report, reported) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let elapsed = runtime.block_on(async {
            // A cluster of one: it elects itself when its timeout fires.
            let id = NodeId(1);
            let config = Config::new(id, [id], Timing::default()).unwrap();
            let listen = "127.0.0.1:0".parse().unwrap();
            let tcp = TcpConfig::new(CLUSTER, listen, BTreeMap::new());
            let transport = TcpTransport::bind(&config, tcp).await.unwrap();
            let schedule = BTreeMap::from([(id, vec![TIMEOUT])]);
            let start = tokio::time::Instant::now();
            let server = Server::builder(config)
                .storage(MemStorage::new())
                .transport(transport)
                .timeouts(TimeoutSource::Schedule(schedule))
                .spawn()
                .unwrap();
            let mut leadership = server.leadership();
            leadership.wait_for(|l| l.is_me).await.unwrap();
            let elapsed = start.elapsed();
            server.shutdown().await.unwrap();
            elapsed
        });
        let _ = report.send(elapsed);
    });
    let elapsed = reported
        .recv_timeout(DEADLINE)
        .expect("the node never reached its deadline: its paused clock is stuck");
    // Tokio's timer fires on the millisecond tick at or after a deadline.
    assert!(
        (TIMEOUT..TIMEOUT + Duration::from_millis(1)).contains(&elapsed),
        "elected after {elapsed:?}"
    );
}
