//! How a [`Server`] ends, seen by the application embedding it: its
//! leadership watch when its task panics, and waiting for its end more
//! than once. Node n1 of {n1, n2, n3} over a transport the test feeds by
//! hand; Tokio's paused clock.

use crate::fed_server::{Fed, elect};
use raft_election::storage::{Storage, StorageError};
use raft_election::{Config, HardState, Message, NodeId, Term, Timing};
use raft_election_runtime::{Server, ServerError, TimeoutSource};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);

/// Of virtual time.
const DEADLINE: Duration = Duration::from_secs(60);

/// What a save does once armed.
#[derive(Clone, Copy)]
enum Fault {
    Panic,
    Fail,
}

/// Memory storage that panics or fails on every save once armed.
#[derive(Clone)]
struct Faulty {
    saved: Arc<Mutex<HardState>>,
    armed: Arc<AtomicBool>,
    fault: Fault,
}

impl Faulty {
    fn new(fault: Fault) -> Self {
        Self {
            saved: Arc::default(),
            armed: Arc::default(),
            fault,
        }
    }
}

impl Storage for Faulty {
    fn load(&self) -> Result<HardState, StorageError> {
        Ok(*self.saved.lock().unwrap())
    }

    fn save(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        if self.armed.load(Ordering::SeqCst) {
            match self.fault {
                Fault::Panic => panic!("the storage panics, as the test asked"),
                Fault::Fail => {
                    return Err(StorageError::Io {
                        action: "write",
                        path: PathBuf::from("the test's storage"),
                        source: io::Error::other("the disk is gone"),
                    });
                }
            }
        }
        *self.saved.lock().unwrap() = *hard_state;
        Ok(())
    }
}

/// n1, started, and the channel that feeds it.
fn spawn(storage: Faulty) -> (Server, mpsc::Sender<(NodeId, Message)>) {
    let config = Config::new(N1, [N1, NodeId(2), NodeId(3)], Timing::default()).unwrap();
    let (peers, inbox) = mpsc::channel(16);
    let server = Server::builder(config)
        .storage(storage)
        .transport(Fed { inbox })
        .timeouts(TimeoutSource::Seeded(1))
        .spawn()
        .unwrap();
    (server, peers)
}

/// A leader whose storage panics (a bug, not an error it could report)
/// stops, and its watch no longer says it leads: an application that does
/// work only while `is_me` stops its work.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_leader_whose_storage_panics_stops_saying_it_leads() {
    let storage = Faulty::new(Fault::Panic);
    let (mut server, peers) = spawn(storage.clone());
    elect(&server, &peers).await;
    let leadership = server.leadership();
    storage.armed.store(true, Ordering::SeqCst);
    // A later term: n1 must persist it, and its storage panics.
    let later = Message::AppendEntries {
        term: Term(2),
        leader_id: N2,
        round: 0,
    };
    peers.send((N2, later)).await.unwrap();
    let ended = tokio::time::timeout(DEADLINE, server.stopped())
        .await
        .expect("the server stops");
    assert!(
        matches!(ended, Err(ServerError::Panicked { id: N1, .. })),
        "{ended:?}"
    );
    let last = *leadership.borrow();
    assert!(
        !last.is_me && last.leader.is_none(),
        "a server whose task panicked still says {last:?}"
    );
    assert!(!server.status().running);
}

/// Waiting for a server's end twice, then shutting it down, reports the
/// same end each time instead of panicking on a finished task: a clean end
/// when its transport closes, the storage error when it failed.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn waiting_for_a_stopped_server_again_and_then_shutting_it_down_report_the_same_end() {
    let (mut server, peers) = spawn(Faulty::new(Fault::Fail));
    drop(peers);
    for _ in 0..2 {
        let ended = tokio::time::timeout(DEADLINE, server.stopped()).await;
        assert!(matches!(ended, Ok(Ok(()))), "{ended:?}");
    }
    assert!(matches!(server.shutdown().await, Ok(())));

    let storage = Faulty::new(Fault::Fail);
    let (mut server, peers) = spawn(storage.clone());
    storage.armed.store(true, Ordering::SeqCst);
    // Its first election timeout needs a save, which fails: fail-stop.
    let mut said = Vec::new();
    for _ in 0..2 {
        let ended = tokio::time::timeout(DEADLINE, server.stopped())
            .await
            .expect("the server stops on the failed save");
        let Err(ServerError::Node(e)) = ended else {
            panic!("a storage failure, not {ended:?}");
        };
        said.push(e.to_string());
    }
    let Err(ServerError::Node(e)) = server.shutdown().await else {
        panic!("the same failure from shutdown");
    };
    said.push(e.to_string());
    assert!(said[0].contains("the disk is gone"), "{said:?}");
    assert!(said.iter().all(|s| *s == said[0]), "{said:?}");
    drop(peers);
}
