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

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use raft_election_sim::fuzzing::{self, NodeScript, Schedule};
use std::path::Path;

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

/// The checked-in corpus of `target`, sorted by file name.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

/// The `election` target: decode a schedule, run it over a fresh cluster.
#[divan::bench]
fn election_corpus(bencher: Bencher) {
    let inputs = corpus("election");
    bencher
        .counter(ItemsCount::new(inputs.len()))
        .bench_local(|| {
            for bytes in &inputs {
                let schedule: Schedule = fuzzing::decode(bytes).expect("decodes");
                fuzzing::election(black_box(&schedule));
            }
        });
}

/// The `node` target: decode a script, run it against a fresh node.
#[divan::bench]
fn node_corpus(bencher: Bencher) {
    let inputs = corpus("node");
    bencher
        .counter(ItemsCount::new(inputs.len()))
        .bench_local(|| {
            for bytes in &inputs {
                let script: NodeScript = fuzzing::decode(bytes).expect("decodes");
                fuzzing::node(black_box(&script));
            }
        });
}
