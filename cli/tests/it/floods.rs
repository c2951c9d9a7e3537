//! Floods against real node processes with TLS: connections that crowd
//! the node's slots, and refusals meant to fill its log. Members keep
//! their connections, and the log stays short.

use crate::attacks::{Impostor, attack, connect_from};
use crate::common::Cluster;
use raft_election::{NodeId, Term};
use raft_election_runtime::tcp::refusals::LINE_INTERVAL;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// Idle connections the crowding client holds to each node.
const HELD_PER_NODE: usize = 1_000;

/// The most lines the flooded node may log in [`FLOOD`]: five causes and
/// addresses, each with three lines at once, one per
/// [`LINE_INTERVAL`] after that, and its "suppressed" lines.
const MAX_FLOOD_LINES: usize = 50;

/// How long the log flood lasts.
const FLOOD: Duration = Duration::from_secs(10);

/// An address on the cluster's subnet that is no member's.
fn stranger(cluster: &Cluster, host: u8) -> IpAddr {
    let IpAddr::V4(member) = cluster.addrs()[&NodeId(1)].ip() else {
        unreachable!("members listen on IPv4 loopback addresses");
    };
    let [a, b, c, _] = member.octets();
    IpAddr::V4(Ipv4Addr::new(a, b, c, host))
}

/// Runs `body` on a thread until `stop` is set (at most `limit` turns);
/// the thread returns how many turns it made.
fn until_stopped(
    stop: &Arc<AtomicBool>,
    limit: u64,
    mut body: impl FnMut() + Send + 'static,
) -> JoinHandle<u64> {
    let stop = Arc::clone(stop);
    std::thread::spawn(move || {
        let mut turns = 0;
        while !stop.load(Ordering::Relaxed) && turns < limit {
            body();
            turns += 1;
        }
        turns
    })
}

#[test]
fn a_restarted_follower_rejoins_its_leader_within_an_election_timeout_while_strangers_crowd_every_node()
 {
    let mut cluster = Cluster::new(55, 3, None).with_tls();
    cluster.start_all();
    let (leader, term) = cluster.wait_for_leader_after(Term(0));
    let follower = *cluster.ids().iter().find(|&&id| id != leader).unwrap();
    let targets: Vec<SocketAddr> = cluster.addrs().values().copied().collect();
    // One client holds a thousand idle connections to every node...
    let holder_ip = stranger(&cluster, 200);
    let held: Vec<TcpStream> = targets
        .iter()
        .flat_map(|&to| (0..HELD_PER_NODE).filter_map(move |_| connect_from(holder_ip, to).ok()))
        .collect();
    eprintln!("holding {} connections", held.len());
    // ... and another opens and closes connections in a loop.
    let stop = Arc::new(AtomicBool::new(false));
    let churn_ip = stranger(&cluster, 201);
    let churner = until_stopped(&stop, 1_000_000, move || {
        for &to in &targets {
            drop(connect_from(churn_ip, to));
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    cluster.kill(follower);
    cluster.start(follower, false);
    let (started, rejoined) = cluster.wait_for(&format!("{follower} to rejoin {leader}"), |h| {
        let log = &h.nodes[&follower];
        let started = log.starts().nth(1)?.ts;
        let rejoined = log.records().find_map(|(line, record)| match record {
            raft_election::Record::Stepped { after, .. }
                if line.ts > started && after.leader_id == Some(leader) =>
            {
                Some(line.ts)
            }
            _ => None,
        })?;
        Some((started, rejoined))
    });
    stop.store(true, Ordering::Relaxed);
    let churned = churner.join().unwrap();
    drop(held);
    let took = Duration::from_secs_f64(rejoined - started);
    eprintln!("{follower} rejoined {leader} {took:?} after it started; {churned} churn rounds");
    assert!(
        took <= Duration::from_millis(300),
        "{follower} took {took:?}"
    );
    let history = cluster.history();
    assert_eq!(history.leader(), Some((leader, term)), "the leader changed");
    let moved: Vec<Term> = history
        .nodes
        .values()
        .flat_map(|l| l.terms_entered())
        .collect();
    assert!(
        moved.iter().all(|&t| t <= term),
        "the term moved: {moved:?}"
    );
}

#[test]
fn a_node_flooded_with_refused_connections_for_ten_seconds_logs_a_few_dozen_lines() {
    let mut cluster = Cluster::new(56, 3, None).with_tls();
    // The default log level: what an operator runs with.
    cluster.extra.clear();
    cluster.start_all();
    let (leader, _) = cluster.wait_for_leader_after(Term(0));
    let victim = *cluster.ids().iter().find(|&&id| id != leader).unwrap();
    let to = cluster.addrs()[&victim];
    let peer_ip = cluster.addrs()[&leader].ip();
    let before = cluster.history().nodes[&victim].lines.len();
    let began = SystemTime::now();
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&attempts);
    let from_strangers = stranger(&cluster, 202);
    let strangers = until_stopped(&stop, 10_000_000, move || {
        drop(connect_from(from_strangers, to));
        counted.fetch_add(1, Ordering::Relaxed);
    });
    // From a member's address: plaintext, TLS without a certificate, and
    // connections that say nothing (pending, then stalled).
    let tls_dir = cluster.tls_dir().unwrap().to_owned();
    let impostors = until_stopped(&stop, 10_000_000, move || {
        for impostor in [Impostor::Plain, Impostor::NoCertificate] {
            attack(&impostor, Some(&tls_dir), (peer_ip, victim, to), b"garbage");
        }
        let silent: Vec<_> = (0..8)
            .filter_map(|_| connect_from(peer_ip, to).ok())
            .collect();
        drop(silent);
    });
    std::thread::sleep(FLOOD);
    stop.store(true, Ordering::Relaxed);
    strangers.join().unwrap();
    impostors.join().unwrap();
    // The held-back counts come out at the next flush.
    std::thread::sleep(LINE_INTERVAL + Duration::from_secs(1));
    let history = cluster.history();
    let lines = &history.nodes[&victim].lines[before..];
    let suppressed: u64 = lines
        .iter()
        .filter_map(|l| Some(l.suppressed()?.count))
        .sum();
    let attempts = attempts.load(Ordering::Relaxed);
    eprintln!(
        "{attempts} connections from a stranger in {FLOOD:?}, and the impostors' ({:.1?} with \
         the flush): {} lines, {suppressed} refusals suppressed",
        began.elapsed().unwrap_or_default(),
        lines.len()
    );
    for line in lines {
        eprintln!("  {}", line.message);
    }
    assert!(lines.len() <= MAX_FLOOD_LINES, "{} lines", lines.len());
    // Every refusal beyond the first few lines of each cause is counted
    // in a "suppressed" line.
    assert!(
        suppressed + 10 >= attempts,
        "{suppressed} of {attempts} suppressed"
    );
}
