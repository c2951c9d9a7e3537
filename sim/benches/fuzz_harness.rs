//! Cost of one fuzz execution without libFuzzer: every checked-in input of
//! `fuzz/corpus/<target>/` decoded and run through the harness the fuzz
//! target calls, as one iteration. Divan prints the time per input and the
//! allocations, so a change to the harness or the checks is measured without
//! a 70-second fuzz build. What libFuzzer adds on top (feature collection,
//! mutation, corpus files) is not in it: exec/s comes from `cargo fuzz run`.
//!
//! Fuzz builds keep debug assertions (and so `Node::step`'s own checks) on;
//! measure the same way:
//! `CARGO_PROFILE_BENCH_DEBUG_ASSERTIONS=true cargo bench -p raft-election-sim --bench fuzz_harness`.

use arbitrary::Arbitrary;
use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use raft_election_sim::fuzzing::{self, NodeScript, Schedule, checked_in_inputs};

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

/// The checked-in corpus of `target`, sorted by file name.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let inputs = checked_in_inputs("corpus", target);
    assert!(!inputs.is_empty(), "no corpus for {target}");
    inputs.into_iter().map(|(_, bytes)| bytes).collect()
}

/// One iteration: every input of `target`'s corpus decoded as a `T` and
/// run by `run`, the harness that target calls.
fn bench_corpus<T: for<'a> Arbitrary<'a>>(bencher: Bencher, target: &str, run: fn(&T)) {
    let inputs = corpus(target);
    bencher
        .counter(ItemsCount::new(inputs.len()))
        .bench_local(|| {
            for bytes in &inputs {
                let decoded: T = fuzzing::decode(bytes).expect("decodes");
                run(black_box(&decoded));
            }
        });
}

/// The `election` target: decode a schedule, run it over a fresh cluster.
#[divan::bench]
fn election_corpus(bencher: Bencher) {
    bench_corpus::<Schedule>(bencher, "election", fuzzing::election);
}

/// The `node` target: decode a script, run it against a fresh node.
#[divan::bench]
fn node_corpus(bencher: Bencher) {
    bench_corpus::<NodeScript>(bencher, "node", fuzzing::node);
}
