//! An application that does its work only while its node leads: a
//! "singleton" job (a scheduler, a cron, a queue consumer) run by exactly
//! one of three processes, taken over by another when its leader dies.
//!
//! Three terminals (`--init` only the first time each):
//!
//! ```sh
//! cargo run -p raft-election-runtime --example leader_only -- --id 1 --listen 127.0.0.1:7001 --peer 2=127.0.0.1:7002 --peer 3=127.0.0.1:7003 --data-dir /tmp/job1 --init
//! cargo run -p raft-election-runtime --example leader_only -- --id 2 --listen 127.0.0.1:7002 --peer 1=127.0.0.1:7001 --peer 3=127.0.0.1:7003 --data-dir /tmp/job2 --init
//! cargo run -p raft-election-runtime --example leader_only -- --id 3 --listen 127.0.0.1:7003 --peer 1=127.0.0.1:7001 --peer 2=127.0.0.1:7002 --data-dir /tmp/job3 --init
//! ```
//!
//! One of them prints a job every 200 ms; Ctrl-C it and another takes over
//! within about 300 ms. Each job carries the term as its fencing token:
//! without CheckQuorum a deposed leader may not know yet that it was
//! deposed (a partition it cannot see), so whatever the jobs write to must
//! refuse a token lower than one it has seen (proofs.md, question 5).

use clap::Parser;
use raft_election::{ClusterId, Config, NodeId, Timing};
use raft_election_runtime::{DataDir, Leadership, Server, TcpConfig, TcpTransport};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;

/// A job that runs on one node of three: the leader.
#[derive(Parser)]
struct Args {
    /// This node's id.
    #[arg(long)]
    id: u8,
    /// Where it accepts its peers.
    #[arg(long)]
    listen: SocketAddr,
    /// Each other node, as ID=ADDR.
    #[arg(long = "peer", value_parser = parse_peer)]
    peers: Vec<(u8, SocketAddr)>,
    /// Its term and vote live here.
    #[arg(long)]
    data_dir: PathBuf,
    /// First start of a new node only.
    #[arg(long)]
    init: bool,
}

fn parse_peer(text: &str) -> Result<(u8, SocketAddr), String> {
    let (id, addr) = text.split_once('=').ok_or("expected ID=ADDR")?;
    Ok((
        id.parse().map_err(|e| format!("{id}: {e}"))?,
        addr.parse().map_err(|e| format!("{addr}: {e}"))?,
    ))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let id = NodeId(args.id);
    let cluster = ClusterId(1);
    let peers: BTreeMap<NodeId, SocketAddr> =
        args.peers.iter().map(|&(p, a)| (NodeId(p), a)).collect();
    let config = Config::new(id, peers.keys().copied().chain([id]), Timing::default())?;
    let dir = if args.init {
        DataDir::create(&args.data_dir)?
    } else {
        DataDir::lock(&args.data_dir)?
    };
    let (storage, _) = dir.state(cluster, id, args.init)?;
    let transport =
        TcpTransport::bind(&config, TcpConfig::new(cluster, args.listen, peers)).await?;
    let server = Server::builder(config)
        .storage(storage)
        .transport(transport)
        .spawn()?;
    println!("{id} running; the job runs on whichever node leads");
    tokio::select! {
        () = run_jobs_while_leading(id, server.leadership()) => {}
        _ = tokio::signal::ctrl_c() => println!("{id} stopping"),
    }
    server.shutdown().await?;
    Ok(())
}

/// Waits to lead, works while leading, stops the moment it does not.
async fn run_jobs_while_leading(id: NodeId, mut leadership: watch::Receiver<Leadership>) {
    let mut done = 0_u64;
    // Each turn waits for leadership, then works until it is lost.
    loop {
        let Ok(now) = leadership.wait_for(|l| l.is_me).await.map(|l| *l) else {
            return; // The server stopped.
        };
        println!("{id} leads {}: starting the job", now.term);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    done += 1;
                    println!("{id}: job #{done}, fencing token {}", now.term.0);
                }
                changed = leadership.changed() => {
                    let still = changed.is_ok() && {
                        let l = *leadership.borrow_and_update();
                        l.is_me && l.term == now.term
                    };
                    if !still {
                        println!("{id} no longer leads {}: job stopped", now.term);
                        break;
                    }
                }
            }
        }
    }
}
