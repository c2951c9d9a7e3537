//! Instructions per `Node::step` on the election hot paths, counted by
//! valgrind's callgrind: unlike nanoseconds, these repeat run to run within a
//! few instructions, and compare with raft-rs 0.7's `Raft::step` measured the
//! same way (heartbeat 657, vote grant 1,592, vote reject 809, winning vote
//! 4,131 instructions).
//!
//! `cargo bench --bench core_step_instructions`
//!
//! The binary runs itself under `valgrind --tool=callgrind`, once per path,
//! collecting only inside `measured_step` (one `Node::step` call); the node
//! is cloned and the output buffer cleared outside it. Without valgrind it
//! says so and stops. Nothing is asserted: this prints figures.

use hot_paths::{PATHS, config, prepare};
use raft_election::{Config, Input, Node, Output};
use std::hint::black_box;
use std::process::{Command, ExitCode};

#[path = "shared/hot_paths.rs"]
mod hot_paths;

/// Steps per path; the count is divided by this.
const STEPS: u32 = 1_000;

/// Set (to a path name) when this binary runs under valgrind.
const PATH_VAR: &str = "CORE_STEP_PATH";

/// The one region callgrind counts.
#[inline(never)]
fn measured_step(node: &mut Node, config: &Config, input: Input, out: &mut Vec<Output>) {
    node.step(config, input, out);
}

/// Under valgrind: runs `path` [`STEPS`] times.
fn run_path(path: &str) -> ExitCode {
    let Some((node, input)) = prepare(path) else {
        eprintln!("unknown path {path}");
        return ExitCode::FAILURE;
    };
    let config = config();
    let mut out = Vec::with_capacity(16);
    for _ in 0..STEPS {
        let mut node = black_box(node.clone());
        out.clear();
        measured_step(&mut node, &config, black_box(input), &mut out);
        black_box((&node, &out));
    }
    ExitCode::SUCCESS
}

/// Runs `path` under callgrind and returns the instructions counted.
fn count(exe: &std::path::Path, path: &str, dir: &std::path::Path) -> Result<u64, String> {
    let out_file = dir.join(format!("callgrind.{}.out", path.replace(' ', "_")));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg("--toggle-collect=*measured_step*")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(exe)
        .env(PATH_VAR, path)
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    if !status.status.success() {
        return Err(String::from_utf8_lossy(&status.stderr).into_owned());
    }
    let text = std::fs::read_to_string(&out_file).map_err(|e| e.to_string())?;
    text.lines()
        .find_map(|line| {
            line.strip_prefix("totals: ")
                .or_else(|| line.strip_prefix("summary: "))
        })
        .and_then(|total| total.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no total in {}", out_file.display()))
}

fn main() -> ExitCode {
    if let Ok(path) = std::env::var(PATH_VAR) {
        return run_path(&path);
    }
    let probe = Command::new("valgrind").arg("--version").output();
    let Ok(version) = probe else {
        println!("valgrind is not installed: no instruction counts (apt-get install valgrind)");
        return ExitCode::SUCCESS;
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("error: cannot find this binary: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dir = std::env::temp_dir().join(format!("core-step-callgrind-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("error: {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    println!(
        "instructions per Node::step ({}, {STEPS} steps per path)",
        String::from_utf8_lossy(&version.stdout).trim()
    );
    println!(
        "{:<30} {:>8} {:>10} {:>7}",
        "path", "ours", "raft-rs 0.7", "ratio"
    );
    let mut failed = false;
    for (path, raft_rs) in PATHS {
        match count(&exe, path, &dir) {
            Ok(total) => {
                let ours = total as f64 / f64::from(STEPS);
                let (theirs, ratio) = raft_rs.map_or((String::from("-"), String::from("-")), |r| {
                    (r.to_string(), format!("{:.2}", ours / f64::from(r)))
                });
                println!("{path:<30} {ours:>8.0} {theirs:>10} {ratio:>7}");
            }
            Err(e) => {
                eprintln!("{path}: {e}");
                failed = true;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
