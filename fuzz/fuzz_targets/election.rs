//! An arbitrary fault schedule over a simulated cluster of 3 to 5 nodes;
//! every invariant is checked after every step (`raft_election_sim::fuzzing::election`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_election_sim::fuzzing::{Schedule, election};

fuzz_target!(|schedule: Schedule| election(&schedule));
