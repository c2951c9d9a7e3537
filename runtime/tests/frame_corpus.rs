//! Replays the checked-in inputs of the fuzz target `frame` on stable: the
//! corpus in `fuzz/corpus/frame/` and any crash kept in
//! `fuzz/regressions/frame/`, through the very harness the target runs
//! (`tcp::fuzzing::run_frames`). The other targets' replay is
//! `sim/tests/fuzz_corpus.rs`; this one lives here because the decoder
//! does.

use raft_election_runtime::tcp::fuzzing::{FrameOutcome, run_frames};
use raft_election_runtime::tcp::wire::{FrameError, Rejection};
use std::path::{Path, PathBuf};

/// The files of `fuzz/<kind>/frame/`, sorted by name (none if the
/// directory is missing, as `regressions/frame` is until a crash is kept).
fn inputs(kind: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join("frame");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.is_file())
        .filter(|path| {
            !path
                .file_name()
                .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."))
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, bytes)
        })
        .collect()
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
        ("last term", |r| matches!(r, Rejection::LastTerm(_))),
    ];
    for (name, kind) in kinds {
        assert!(reached(kind), "no corpus input is rejected as {name}");
    }
}
