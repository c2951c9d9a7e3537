//! Raft leader election (Raft paper §5.2, §5.4.1, Figure 2), verified rather
//! than only tested: one sans-IO election core that a Tokio runtime, a
//! stateright model checker and a fuzzer all drive.
//!
//! # The contract
//!
//! [`Node`] is a deterministic state machine. It contains no clock, no random
//! number generator, no Tokio and no I/O. Each call to [`Node::step`] takes one
//! [`Input`] (start, a received message, an expired timer) and appends
//! [`Output`]s (persist, send, arm or cancel a timer) that the driver executes
//! in order. When a step changes the term or the vote, its first output is an
//! [`Output::Persist`] of the new hard state (and there is none otherwise), so
//! executing in order never sends a message that depends on an unsaved term
//! or vote.
//!
//! A timer output names the timer and the allowed duration range; the driver
//! picks the duration (at random, from a schedule, or, in the model checker,
//! not at all: any armed timer may fire at any moment).
//!
//! # The drive loop
//!
//! ```
//! use raft_election::{Config, Input, Node, NodeId, Output, Timing};
//!
//! let config = Config::new(NodeId(0), [NodeId(0), NodeId(1), NodeId(2)], Timing::default())?;
//! let mut node = Node::new();
//! let mut outputs = Vec::new();
//! // Boot: the node asks for an election timer.
//! node.step(&config, Input::Start, &mut outputs);
//! // ... the driver's timer fires ...
//! node.step(&config, Input::Timeout(raft_election::Timer::Election), &mut outputs);
//! for output in outputs.drain(..) {
//!     match output {
//!         Output::Persist(hard_state) => { /* write and fsync before going on */ }
//!         Output::Send { to, message } => { /* hand to the transport */ }
//!         Output::SetTimer { timer, min, max } => { /* pick a duration in min..=max */ }
//!         Output::CancelTimer(timer) => { /* a pending expiry must never fire */ }
//!         // Only with the leader lease (`Config::with_leader_lease`):
//!         Output::RoundStarted { round } => { /* note the clock for this round */ }
//!         Output::LeaseExtended { round, duration } => { /* lease until that note + duration */ }
//!         Output::LeaseRevoked => { /* no lease from now on */ }
//!     }
//! }
//! assert_eq!(node.role(), raft_election::Role::Candidate);
//! # Ok::<(), raft_election::ConfigError>(())
//! ```
//!
//! # Layout
//!
//! - [`types`], [`message`], [`config`]: the vocabulary (`NodeId`, `Term`,
//!   `Role`, `HardState`, the four RPCs and their [`Envelope`], timing).
//! - [`node`]: the election core. Every election rule lives there.
//! - `step`: [`Node::step`], the rules wrapped in the output contract.
//! - [`record`]: [`Record`], one typed record of what a node did (started,
//!   stepped, saved, sent), the one description of a step that every reader
//!   of a node's life shares (logs, timelines, trace validation).
//! - [`invariants`]: the one definition of each safety invariant, shared by
//!   the core's debug assertions, the simulators, the model, the fuzzer and
//!   the runtime's safety monitor.
//! - [`storage`]: the hard state on stable storage: the [`Storage`](storage::Storage)
//!   trait a driver saves through, and memory for the simulators (the
//!   runtime keeps it in a file).
//!
//! The tiers above this crate: `raft-election-sim` (deterministic
//! simulators and the fuzz harnesses), `raft-election-model` (the stateright
//! model checker), `raft-election-runtime` (Tokio) and `raft-election-cli`
//! (the binaries). With the `arbitrary` feature the input types derive
//! `arbitrary::Arbitrary`, for fuzzers; with `serde`, the messages and ids
//! derive serde's traits, for wire encodings.
#![forbid(unsafe_code)]
#![cfg_attr(not(fuzzing), warn(missing_docs))]

pub mod config;
pub mod invariants;
pub mod message;
pub mod node;
pub mod record;
mod step;
pub mod storage;
pub mod types;

pub use config::{ClockDrift, Config, ConfigError, Features, RestoredStateError, Timing};
pub use message::{Envelope, Message};
pub use node::{Input, Node, Output, Timer};
pub use record::{Change, Record, Summary};
pub use types::{ClusterId, HardState, LogSummary, NodeId, Role, Term, Ticks};
