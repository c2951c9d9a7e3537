//! The demo binary killed with SIGKILL at random moments: its hard-state
//! files (Raft Figure 2: `currentTerm` and `votedFor` "updated on stable
//! storage before responding to RPCs") are whole after every kill, and the
//! next run resumes from them.

use raft_election::storage::Storage;
use raft_election::{ClusterId, HardState, NodeId, Term};
use raft_election_runtime::FileStorage;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);

/// What node `id`'s file in `dir` holds, read by a fresh handle.
fn on_disk(dir: &Path, id: NodeId) -> HardState {
    FileStorage::open(dir, ClusterId(1), id)
        .load()
        .unwrap_or_else(|e| panic!("{id}: {e}"))
}
use std::fs::File;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Instant;

/// The demo binary, which `cargo test` builds for integration tests.
const DEMO: &str = env!("CARGO_BIN_EXE_raft-election");

/// How often the files are looked at while waiting.
const POLL: Duration = Duration::from_millis(5);

/// A child process that is killed (SIGKILL on Unix) if the test panics.
struct Demo {
    child: Child,
    output: std::path::PathBuf,
}

impl Demo {
    /// Runs the demo over `data` with `args`, its output in `output`.
    fn spawn(data: &Path, output: &Path, args: &[&str]) -> Self {
        let out = File::create(output).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(DEMO)
            .arg("--data-dir")
            .arg(data)
            // Generous: the machine may be busy; a slow step must not end the run.
            .args(["--step-deadline-ms", "30000"])
            .args(args)
            .env("RUST_LOG", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap();
        Self {
            child,
            output: output.to_path_buf(),
        }
    }

    fn output(&self) -> String {
        fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// Its exit status if it has ended.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits at most `limit` for it to end on its own.
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return status;
            }
            std::thread::sleep(POLL);
        }
        panic!("the demo did not end within {limit:?}:\n{}", self.output());
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // Already ended is fine.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The state files in `dir`, by node.
fn files(dir: &Path) -> BTreeMap<NodeId, HardState> {
    [N0, N1, N2]
        .into_iter()
        .map(|id| (id, on_disk(dir, id)))
        .collect()
}

fn describe(id: NodeId, stored: HardState) -> String {
    let voted_for = stored
        .voted_for
        .map_or_else(|| "nobody".to_owned(), |v| v.to_string());
    format!(
        "{id} resumes at {}, voted for {voted_for}",
        stored.current_term
    )
}

/// Runs the demo over `data` until its files show a term at least
/// `target`, then kills it with SIGKILL; returns the files as found after
/// the kill. Its output must name what each node resumed from.
fn run_until_then_kill(
    data: &Path,
    output: &Path,
    seed: u64,
    resumes_from: &BTreeMap<NodeId, HardState>,
    target: Term,
) -> BTreeMap<NodeId, HardState> {
    let seed = seed.to_string();
    let mut demo = Demo::spawn(data, output, &["--seed", &seed, "--rounds", "1000"]);
    // A thousand rounds take many minutes; this waits at most one.
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        // The first run creates the files as it starts.
        let created = [N0, N1, N2]
            .iter()
            .all(|&id| FileStorage::path_in(data, id).exists());
        let now = if created {
            files(data)
        } else {
            BTreeMap::new()
        };
        if now.values().any(|s| s.current_term >= target) {
            break now;
        }
        if let Some(status) = demo.exited() {
            panic!(
                "the demo ended ({status}) before saving {target}:\n{}",
                demo.output()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no {target} on disk within a minute: {now:?}\n{}",
            demo.output()
        );
        std::thread::sleep(POLL);
    };
    demo.child.kill().unwrap();
    let status = demo.child.wait().unwrap();
    assert!(!status.success(), "killed, not finished: {status}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "SIGKILL");
    }
    // The resume lines come first, before any election could reach `target`.
    let output = demo.output();
    for (&id, &stored) in resumes_from {
        let line = describe(id, stored);
        assert!(output.contains(&line), "missing {line:?} in:\n{output}");
    }
    // Whole and decodable (`on_disk` panics on a corrupt file), and at
    // least as new as what was seen before the kill.
    let after = files(data);
    for (id, stored) in &after {
        assert!(stored.current_term >= seen[id].current_term, "{id}");
    }
    after
}

/// The real thing: the demo keeps its three nodes' state in files and
/// tells its story over and over (a leader killed and replaced, a
/// partition, a step-down, each saving new terms and votes). It is killed
/// with SIGKILL the moment its files show a new term two above the last
/// run's, the middle of a run that is still saving; three times, each run
/// resuming from the files the killed one left. Every file must be whole
/// and decodable after each kill (write to a temporary file, fsync,
/// rename: old or new, never torn), and a final run must print exactly
/// what the files hold, finish its story and carry the terms on.
#[test]
fn a_demo_process_killed_with_sigkill_leaves_whole_files_and_the_next_run_resumes_from_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The first run finds no file and creates them all at t0.
    let mut stored: BTreeMap<NodeId, HardState> = [N0, N1, N2]
        .into_iter()
        .map(|id| (id, HardState::default()))
        .collect();
    for run in 0..3u64 {
        let highest = stored
            .values()
            .map(|s| s.current_term)
            .max()
            .unwrap_or_default();
        let target = Term(highest.0 + 2);
        let output = dir.path().join(format!("run-{run}.out"));
        stored = run_until_then_kill(&data, &output, 7 + run, &stored, target);
        let tmp_left = fs::read_dir(&data)
            .unwrap()
            .any(|e| e.unwrap().path().extension().is_some_and(|x| x == "tmp"));
        eprintln!(
            "run {run} killed at {target} with {stored:?} on disk, temporary file left: {tmp_left}"
        );
    }

    let mut last = Demo::spawn(
        &data,
        &dir.path().join("last.out"),
        &["--seed", "10", "--rounds", "1"],
    );
    let status = last.wait(Duration::from_secs(120));
    let output = last.output();
    assert!(status.success(), "{status}:\n{output}");
    for (&id, &before) in &stored {
        let line = describe(id, before);
        assert!(output.contains(&line), "missing {line:?} in:\n{output}");
    }
    for (id, after) in files(&data) {
        assert!(
            after.current_term >= stored[&id].current_term,
            "{id} went back from {:?} to {after:?}",
            stored[&id]
        );
    }
}
