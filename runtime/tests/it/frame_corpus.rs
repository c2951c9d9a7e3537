//! Replays the checked-in inputs of the fuzz target `frame` on stable: the
//! corpus in `fuzz/corpus/frame/` and any crash kept in
//! `fuzz/regressions/frame/`, through the very harness the target runs
//! (`tcp::fuzzing::run_frames`). The other targets' replay is
//! `sim/tests/it/fuzz_corpus.rs`; this one lives here because the decoder
//! does.

use raft_election_runtime::tcp::fuzzing::{FrameOutcome, run_frames};
use raft_election_runtime::tcp::wire::{FrameError, Rejection};
use raft_election_sim::fuzzing::checked_in_inputs;
use std::path::PathBuf;

/// The files of `fuzz/<kind>/frame/`, sorted by name (none if the
/// directory is missing, as `regressions/frame` is until a crash is kept).
fn inputs(kind: &str) -> Vec<(PathBuf, Vec<u8>)> {
    checked_in_inputs(kind, "frame")
}

/// Whether a rejection is of one kind.
type Kind = fn(&Rejection) -> bool;

/// Every input replays without breaking a property, and the corpus is not
/// vacuous: it reaches accepted hellos, messages, and every rejection kind.
#[test]
fn every_frame_input_replays_and_the_corpus_reaches_messages_and_every_rejection() {
    let mut files = inputs("corpus");
    assert!(
        !files.is_empty(),
        "fuzz/corpus/frame/ is empty: the seed corpus is missing"
    );
    files.extend(inputs("regressions"));
    let mut outcomes: Vec<FrameOutcome> = Vec::new();
    let mut failures = Vec::new();
    for (path, bytes) in &files {
        match std::panic::catch_unwind(|| run_frames(bytes)) {
            Ok(Ok(outcome)) => outcomes.push(outcome),
            Ok(Err(broken)) => failures.push(format!("{}: {broken}", path.display())),
            Err(_) => failures.push(format!("{}: panicked (message above)", path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} frame inputs fail; reproduce one with \
         `cargo fuzz run --sanitizer none frame <file>`:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    assert!(
        outcomes.iter().any(|o| o.messages >= 4),
        "no input gets 4 messages through"
    );
    let reached = |kind: Kind| {
        outcomes
            .iter()
            .any(|o| o.rejection.as_ref().is_some_and(kind))
    };
    let kinds: [(&str, Kind); 11] = [
        ("too long", |r| *r == Rejection::Frame(FrameError::TooLong)),
        ("empty", |r| *r == Rejection::Frame(FrameError::Empty)),
        ("version", |r| {
            matches!(r, Rejection::Frame(FrameError::UnknownVersion(_)))
        }),
        ("garbage", |r| {
            matches!(r, Rejection::Frame(FrameError::Garbage(_)))
        }),
        ("trailing", |r| {
            matches!(r, Rejection::Frame(FrameError::Trailing(_)))
        }),
        ("cluster", |r| matches!(r, Rejection::WrongCluster { .. })),
        ("sender", |r| matches!(r, Rejection::UnknownSender(_))),
        ("not for me", |r| matches!(r, Rejection::NotForMe { .. })),
        ("no hello", |r| *r == Rejection::NoHello),
        ("spoofed", |r| matches!(r, Rejection::SpoofedSender { .. })),
        ("above the ceiling", |r| {
            matches!(r, Rejection::AboveCeiling { .. })
        }),
    ];
    for (name, kind) in kinds {
        assert!(reached(kind), "no corpus input is rejected as {name}");
    }
}
