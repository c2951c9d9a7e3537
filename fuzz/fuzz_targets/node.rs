//! One node fed arbitrary inputs, forged messages included; checks what a
//! single node guarantees on its own (`raft_election_sim::fuzzing::node`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_election_sim::fuzzing::{NodeScript, node};

fuzz_target!(|script: NodeScript| node(&script));
