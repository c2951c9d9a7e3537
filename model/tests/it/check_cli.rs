//! The `check` binary's options that only the command line shows: a run
//! cut short by `--time-limit` says how far it got and fails, and an
//! impossible limit is refused.

use std::process::Command;

fn check(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_check"))
        .args(args)
        .output()
        .expect("the check binary runs")
}

#[test]
fn a_run_cut_short_by_the_time_limit_reports_its_states_and_fails() {
    // Five nodes with two terms take far longer than a second.
    let output = check(&[
        "--nodes",
        "5",
        "--max-term",
        "2",
        "--max-crashes",
        "0",
        "--time-limit",
        "1",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("Not exhausted: stopped at the time limit (1 s) after"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "election safety                        not established (stopped at the time limit)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("NOT EXHAUSTED"), "{stdout}");
    assert!(!stdout.contains("\nOK"), "{stdout}");
}

#[test]
fn a_time_limit_of_zero_seconds_is_refused_with_a_clear_error() {
    let output = check(&["--time-limit", "0"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--time-limit"), "{stderr}");
}

#[test]
fn a_time_limit_with_one_thread_is_refused_with_a_clear_error() {
    // One checker thread never looks at the deadline: the run would go on.
    let output = check(&["--time-limit", "5", "--threads", "1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--time-limit needs --threads 2 or more"),
        "{stderr}"
    );
}

/// The default `check` passes, judged by its exit status alone: the test
/// cargo-mutants runs to count the mutants of the core that `check` catches
/// by itself (`.ci/nightly` has the command). Ignored by `cargo test`, which
/// checks the same portfolio with pinned state counts in `model.rs`.
#[test]
#[ignore = "the whole default portfolio: run by the mutants-by-check measurement"]
fn the_default_check_passes_on_its_own() {
    let output = check(&[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("\nOK: in every configuration"), "{stdout}");
}
