//! Any bytes a peer connection could carry, fed to the decoder every
//! accepted connection runs (`raft_election_runtime::tcp::fuzzing`): no
//! panic, the same result however TCP cuts the bytes, and every accepted
//! frame round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_election_runtime::tcp::fuzzing::run_frames;

fuzz_target!(|bytes: &[u8]| {
    if let Err(broken) = run_frames(bytes) {
        panic!("{broken}");
    }
});
