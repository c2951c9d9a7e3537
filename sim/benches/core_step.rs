//! Cost of one `Node::step` on the election hot paths (issue: core step cost).
//!
//! Run with `cargo bench --bench core_step`. Each benchmark clones a prepared
//! node outside the timed region and reuses one output buffer, so what is
//! timed is the step itself. Compare with raft-rs 0.7 `Raft::step` under
//! valgrind: heartbeat 657 instructions, vote grant 1,592, winning vote 4,131;
//! `cargo bench --bench core_step_instructions` counts ours the same way.

use divan::{Bencher, black_box};
use hot_paths::{PATHS, config, prepare};
use raft_election::Output;

#[path = "shared/hot_paths.rs"]
mod hot_paths;

/// Counts allocations per step: divan prints them beside the times. The
/// paths a running cluster repeats (heartbeat, vote reject) must show none.
#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

/// Each path of [`hot_paths::PATHS`], by its name.
#[divan::bench(args = PATHS.map(|(path, _)| path))]
fn step(bencher: Bencher, path: &str) {
    let (node, input) = prepare(path).expect("a known path");
    let config = config();
    let mut out: Vec<Output> = Vec::with_capacity(16);
    bencher
        .with_inputs(|| node.clone())
        .bench_local_refs(|node| {
            out.clear();
            node.step(&config, black_box(input), &mut out);
            black_box(out.len())
        });
}
