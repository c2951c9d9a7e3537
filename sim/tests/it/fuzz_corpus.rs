//! Replays every checked-in fuzz input on stable: the minimized corpora in
//! `fuzz/corpus/<target>/` and the crashes kept in `fuzz/regressions/<target>/`.
//!
//! Each file is decoded exactly as libfuzzer-sys decodes it and run through the
//! very harness function the fuzz target calls, so `cargo test` re-checks
//! everything the fuzzer ever kept or found, without nightly or cargo-fuzz.

use raft_election::Term;
use raft_election_sim::fuzzing::{self, NodeOutcome, ScheduleOutcome, checked_in_inputs};
use std::fmt::Display;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;

/// Runs `harness` on every input of `target` (corpus and regressions) and
/// fails listing each file that breaks a guarantee or panics; returns the
/// outcomes of the others.
fn replay<'a, T, O, E>(
    target: &str,
    files: &'a [(PathBuf, Vec<u8>)],
    harness: fn(&T) -> Result<O, E>,
) -> Vec<O>
where
    T: arbitrary::Arbitrary<'a>,
    E: Display,
{
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for (path, bytes) in files {
        let input: T = fuzzing::decode(bytes)
            .unwrap_or_else(|e| panic!("{} no longer decodes: {e}", path.display()));
        match panic::catch_unwind(AssertUnwindSafe(|| harness(&input))) {
            Ok(Ok(outcome)) => outcomes.push(outcome),
            Ok(Err(failure)) => failures.push(format!("{}: {failure}", path.display())),
            Err(_) => failures.push(format!("{}: panicked (message above)", path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {target} inputs fail; reproduce one with \
         `cargo fuzz run --sanitizer none {target} <file>`:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    outcomes
}

fn all_inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = checked_in_inputs("corpus", target);
    assert!(
        !files.is_empty(),
        "fuzz/corpus/{target}/ is empty: the seed corpus is missing"
    );
    files.extend(checked_in_inputs("regressions", target));
    files
}

/// Replays the election corpus once, then guards against a corpus that
/// passes because it does nothing: the replay must reach elections, restarts
/// and leaders of later terms, and each election feature must do what it is
/// for: a pre-vote won, a leader stepping down by CheckQuorum, a completed
/// leadership transfer.
#[test]
fn every_election_input_replays_without_a_violation_and_the_corpus_reaches_later_terms() {
    let files = all_inputs("election");
    let outcomes: Vec<ScheduleOutcome> = replay("election", &files, fuzzing::run_schedule);
    assert_eq!(outcomes.len(), files.len());
    let with_leader = outcomes.iter().filter(|o| o.leaders > 0).count();
    let with_restart = outcomes.iter().filter(|o| o.restarts > 0).count();
    let max_leaders = outcomes.iter().map(|o| o.leaders).max().unwrap_or(0);
    assert!(with_leader > 0, "no corpus schedule elects a leader");
    assert!(with_restart > 0, "no corpus schedule restarts a node");
    assert!(max_leaders >= 3, "no schedule elects leaders in 3 terms");
    let counts = outcomes.iter().map(|o| o.feature_counts);
    let sum = |count: fn(&raft_election_sim::FeatureCounts) -> usize| -> usize {
        counts.clone().map(|c| count(&c)).sum()
    };
    assert!(sum(|c| c.pre_votes_won) > 0, "no schedule wins a pre-vote");
    assert!(
        sum(|c| c.check_quorum_step_downs) > 0,
        "no leader steps down by CheckQuorum"
    );
    assert!(
        sum(|c| c.transfers_completed) > 0,
        "no leadership transfer completes"
    );
    let lease_and_leader = outcomes
        .iter()
        .any(|o| o.features.lease_guarded_votes && o.leaders >= 2);
    assert!(
        lease_and_leader,
        "no schedule with lease-guarded votes elects leaders in 2 terms"
    );
}

/// Replays the node corpus once, then guards against a vacuous one: the node
/// must win elections, vote for others, and be pushed to the end of the term
/// space; with the features, ask for pre-votes, campaign on a TimeoutNow and
/// hold a leader lease.
#[test]
fn every_node_input_replays_without_a_violation_and_the_corpus_leads_votes_and_meets_extreme_terms()
{
    let files = all_inputs("node");
    let outcomes: Vec<NodeOutcome> = replay("node", &files, fuzzing::run_node);
    assert_eq!(outcomes.len(), files.len());
    assert!(outcomes.iter().any(|o| o.led), "the node never leads");
    assert!(
        outcomes.iter().any(|o| o.voted_for_another),
        "the node never votes for another node"
    );
    assert!(
        outcomes.iter().any(|o| o.max_term.0 > u64::from(u32::MAX)),
        "no input drives the node to a huge term"
    );
    assert!(
        outcomes.iter().any(|o| o.max_term == Term::CEILING),
        "no input drives the node to the term ceiling"
    );
    assert!(
        outcomes.iter().any(|o| o.pre_candidate),
        "the node never asks for pre-votes"
    );
    assert!(
        outcomes.iter().any(|o| o.transfer_campaign),
        "the node never campaigns on a TimeoutNow"
    );
    assert!(
        outcomes.iter().any(|o| o.leased),
        "the node never holds a leader lease"
    );
}
