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

#[test]
fn an_unknown_reduction_is_refused_with_the_valid_names() {
    let output = check(&["--no-reduction", "bogus"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid value 'bogus' for '--no-reduction <NAME>'"),
        "{stderr}"
    );
    for name in raft_election_model::Reduction::ALL.map(|r| r.name()) {
        assert!(stderr.contains(name), "{name} not listed: {stderr}");
    }
}

#[test]
fn the_help_lists_every_reduction_with_a_line_of_its_own() {
    let output = check(&["--help"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    for name in raft_election_model::Reduction::ALL.map(|r| r.name()) {
        let listed = format!("- {name}:");
        assert!(
            stdout
                .lines()
                .any(|line| line.trim_start().starts_with(&listed)),
            "{name} not listed: {stdout}"
        );
    }
}

/// The lines of a run that depend on what it explored: its states and
/// every verdict, without the timings.
fn explored(args: &[&str]) -> Vec<String> {
    let output = check(args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    stdout
        .lines()
        .filter(|line| {
            line.contains("unique states") || line.contains("strategy") || line.starts_with("  ")
        })
        .filter(|line| !line.contains("states/s") && !line.contains("Done in"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn keep_spent_responses_is_the_same_run_as_no_reduction_spent_responses() {
    let base = ["--nodes", "2", "--equal-logs", "--threads", "2"];
    let alias = explored(&[&base[..], &["--keep-spent-responses"]].concat());
    let named = explored(&[&base[..], &["--no-reduction", "spent-responses"]].concat());
    let default = explored(&base);
    assert_eq!(alias, named);
    assert!(
        alias
            .iter()
            .any(|line| line.contains("reductions: all but spent-responses")),
        "{alias:?}"
    );
    // 116 states with every reduction on, 529 with every response kept.
    assert!(
        alias
            .iter()
            .any(|line| line.contains("unique states     529")),
        "{alias:?}"
    );
    assert!(
        default
            .iter()
            .any(|line| line.contains("unique states     116")),
        "{default:?}"
    );
}
