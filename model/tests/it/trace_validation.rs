//! Trace validation, as etcd checks its runtime against its TLA+ spec: the
//! Tokio runtime's real `Driver`s run a cluster (on Tokio's paused clock,
//! with seeded message loss and crash-restarts), every step, save and send
//! they make is recorded in the order it happens, and the trace is replayed
//! through this crate's model (`raft_election_model::replay`, which the
//! TCP node processes' logs are replayed through too). Every observed step must be one the model
//! allows from where the model is (a message that is in flight, a timer that
//! is armed) and leave the node exactly as the model's step does; every send
//! must be an output of that step, made once its state is durable; a
//! restarted node must come back with what it asked to persist.
//!
//! The model checks the core; this checks the driver around it (timers,
//! persistence order, delivery). It lives here, a test with the runtime as a
//! dev-dependency, because the model must not depend on the runtime and the
//! runtime must not depend on the model: only a test can reach both.
//!
//! `RAFT_ELECTION_TRACE_SEEDS` sets the number of seeded runs (1,000 by
//! default; the nightly run asks for more).

use raft_election::Features;
use raft_election::storage::{MemStorage, Storage, StorageError};
use raft_election::{Config, HardState, Input, Message, Node, NodeId, Record, Role, Timer, Timing};
use raft_election_model::replay::{self, TraceEvent};
use raft_election_runtime::driver::Observer;
use raft_election_runtime::{Delivery, Driver, Requests, TimeoutPicker, TimeoutSource, Transport};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

const NODES: u8 = 3;
/// Virtual time each run lasts: a few elections' worth.
const RUN: Duration = Duration::from_secs(3);
/// Crash-restarts in one run, at most.
const MAX_CRASHES: u32 = 4;
/// Capacity of each node's inbox; a full inbox drops (a loss).
const INBOX: usize = 64;

/// What the drivers did, in the order they did it.
type Event = TraceEvent;

type Trace = Arc<Mutex<Vec<Event>>>;

/// A small deterministic generator (SplitMix64) for the faults: the model
/// crate needs no RNG crate for a test.
struct Faults(u64);

impl Faults {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `percent` in 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

type Routes = Arc<Mutex<Vec<mpsc::Sender<(NodeId, Message)>>>>;

/// Channels between the drivers; each send is recorded before it is
/// delivered, and some are lost.
struct TracedTransport {
    id: NodeId,
    trace: Trace,
    routes: Routes,
    faults: Arc<Mutex<Faults>>,
    inbox: mpsc::Receiver<(NodeId, Message)>,
}

impl Transport for TracedTransport {
    fn send(&mut self, to: NodeId, message: Message) -> Delivery {
        self.trace
            .lock()
            .unwrap()
            .push(Event::new(self.id, Record::Sent { to, message }));
        if self.faults.lock().unwrap().chance(10) {
            return Delivery::Dropped;
        }
        let route = self.routes.lock().unwrap()[usize::from(to.0)].clone();
        match route.try_send((self.id, message)) {
            Ok(()) => Delivery::Delivered,
            Err(_) => Delivery::Dropped,
        }
    }

    async fn recv(&mut self) -> Option<(NodeId, Message)> {
        self.inbox.recv().await
    }
}

/// How a node's storage behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Durability {
    /// A save is durable when it returns.
    Correct,
    /// PLANTED DRIVER BUG: a save becomes durable only at the next save, as
    /// a driver that sent a step's messages before persisting its state.
    Late,
}

/// Storage that records each hard state at the moment it becomes durable.
#[derive(Clone)]
struct TracedStorage {
    id: NodeId,
    trace: Trace,
    durable: Arc<Mutex<MemStorage>>,
    pending: Option<HardState>,
    durability: Durability,
}

impl Storage for TracedStorage {
    fn load(&self) -> Result<HardState, StorageError> {
        self.durable.lock().unwrap().load()
    }

    fn save(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        let now_durable = match self.durability {
            Durability::Correct => Some(*hard_state),
            Durability::Late => self.pending.replace(*hard_state),
        };
        if let Some(state) = now_durable {
            self.durable.lock().unwrap().save(&state)?;
            self.trace
                .lock()
                .unwrap()
                .push(Event::new(self.id, Record::Saved(state)));
        }
        Ok(())
    }
}

struct TracedObserver {
    trace: Trace,
}

impl Observer for TracedObserver {
    fn started(&mut self, config: &Config, node: &Node) {
        let event = Event::new(config.id(), Record::Started(node.hard_state()));
        self.trace.lock().unwrap().push(event);
    }

    fn stepped(&mut self, config: &Config, before: &Node, input: &Input, after: &Node) {
        let event = Event::step(config.id(), before, *input, after);
        self.trace.lock().unwrap().push(event);
    }
}

/// A planted driver bug to run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Planted {
    None,
    /// Saves become durable one save late (sends go out first).
    LateSaves,
    /// A leader's cancelled election timer fires anyway (injected through
    /// the node's local request queue, as a driver that forgot a cancel).
    CancelledTimerFires,
}

/// One seeded run of the drivers; returns the trace.
async fn run(seed: u64, planted: Planted) -> Vec<Event> {
    let trace = Trace::default();
    let faults = Arc::new(Mutex::new(Faults(seed)));
    let configs = Config::cluster(NODES, Timing::default()).unwrap();
    let mut inboxes = Vec::new();
    let mut senders = Vec::new();
    for _ in 0..NODES {
        let (tx, rx) = mpsc::channel(INBOX);
        senders.push(tx);
        inboxes.push(Some(rx));
    }
    let routes: Routes = Arc::new(Mutex::new(senders));
    let durability = if planted == Planted::LateSaves {
        Durability::Late
    } else {
        Durability::Correct
    };
    let disks: Vec<_> = (0..NODES)
        .map(|_| Arc::new(Mutex::new(MemStorage::new())))
        .collect();
    let spawn = |id: u8, incarnation: u32, inbox: mpsc::Receiver<(NodeId, Message)>| {
        let config = configs[usize::from(id)].clone();
        let storage = TracedStorage {
            id: NodeId(id),
            trace: Arc::clone(&trace),
            durable: Arc::clone(&disks[usize::from(id)]),
            pending: None,
            durability,
        };
        let restored = storage.load().unwrap();
        let transport = TracedTransport {
            id: NodeId(id),
            trace: Arc::clone(&trace),
            routes: Arc::clone(&routes),
            faults: Arc::clone(&faults),
            inbox,
        };
        let timeouts = TimeoutPicker::new(&TimeoutSource::Seeded(seed), NodeId(id), incarnation);
        let observer = TracedObserver {
            trace: Arc::clone(&trace),
        };
        let driver = Driver::new(config, restored, storage, transport, observer, timeouts);
        let requests: Arc<Requests> = driver.requests();
        (tokio::spawn(driver.run()), requests)
    };
    let mut nodes: Vec<_> = (0..NODES)
        .map(|id| spawn(id, 0, inboxes[usize::from(id)].take().unwrap()))
        .collect();
    let mut incarnations = vec![0_u32; usize::from(NODES)];
    let mut crashes = 0;
    let tick = Duration::from_millis(10);
    let mut elapsed = Duration::ZERO;
    while elapsed < RUN {
        tokio::time::sleep(tick).await;
        elapsed += tick;
        let (crash, victim) = {
            let mut faults = faults.lock().unwrap();
            (faults.chance(2), faults.next() % u64::from(NODES))
        };
        let victim = u8::try_from(victim).unwrap();
        if planted == Planted::CancelledTimerFires {
            let leader = trace
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find_map(|e| match e.record {
                    Record::Stepped { after, .. } if after.role == Role::Leader => Some(e.node),
                    _ => None,
                });
            if let Some(leader) = leader {
                let _ = nodes[usize::from(leader.0)]
                    .1
                    .send(Input::Timeout(Timer::Election));
            }
        }
        if crash && crashes < MAX_CRASHES {
            crashes += 1;
            let index = usize::from(victim);
            nodes[index].0.abort();
            let _ = (&mut nodes[index].0).await;
            incarnations[index] += 1;
            let (tx, rx) = mpsc::channel(INBOX);
            routes.lock().unwrap()[index] = tx;
            nodes[index] = spawn(victim, incarnations[index], rx);
        }
    }
    for (task, _) in &nodes {
        task.abort();
    }
    std::mem::take(&mut *trace.lock().unwrap())
}

/// Replays `trace` through the model (`raft_election_model::replay`).
fn validate(trace: &[Event]) -> Result<usize, String> {
    // The drivers run the production features (`Config::cluster`'s default).
    replay::validate(NODES, Features::default(), trace).map_err(|refused| refused.to_string())
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

fn seeds() -> u64 {
    std::env::var("RAFT_ELECTION_TRACE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
}

#[test]
fn every_step_of_a_thousand_seeded_runs_with_loss_and_crashes_is_a_step_the_model_allows() {
    let runtime = paused_runtime();
    let mut steps = 0;
    let mut restarts = 0;
    let mut leaders = 0;
    for seed in 0..seeds() {
        let trace = runtime.block_on(run(seed, Planted::None));
        match validate(&trace) {
            Ok(count) => steps += count,
            Err(error) => panic!("seed {seed}: {error}"),
        }
        restarts += trace
            .iter()
            .filter(|e| matches!(e.record, Record::Started(_)))
            .count()
            - usize::from(NODES);
        leaders += usize::from(trace.iter().any(|e| {
            matches!(e.record, Record::Stepped { after, change, .. }
                if change.role_from.is_some() && after.role == Role::Leader)
        }));
    }
    // Not vacuous: the runs elected leaders, restarted nodes, took steps.
    let runs = usize::try_from(seeds()).unwrap();
    println!(
        "{runs} runs: {steps} steps validated, {restarts} restarts, {leaders} runs elected a leader"
    );
    assert!(leaders * 10 >= runs * 9, "{leaders} of {runs} runs elected");
    assert!(restarts >= runs, "{restarts} restarts in {runs} runs");
    assert!(steps >= runs * 100, "{steps} steps in {runs} runs");
}

/// The first seed (of at most 50) whose trace the validation refuses.
fn first_refused(planted: Planted) -> Option<(u64, String)> {
    let runtime = paused_runtime();
    (0..50).find_map(|seed| {
        let trace = runtime.block_on(run(seed, planted));
        validate(&trace).err().map(|error| (seed, error))
    })
}

#[test]
fn a_driver_that_sends_before_its_state_is_durable_is_caught() {
    let (seed, error) = first_refused(Planted::LateSaves).expect("late saves pass validation");
    println!("seed {seed}: {error}");
    assert!(
        error.contains("was not durable") || error.contains("restarted with"),
        "seed {seed}: {error}"
    );
}

#[test]
fn a_cancelled_timer_that_fires_is_caught() {
    let (seed, error) =
        first_refused(Planted::CancelledTimerFires).expect("a cancelled timer passes validation");
    println!("seed {seed}: {error}");
    assert!(error.contains("not armed"), "seed {seed}: {error}");
}
