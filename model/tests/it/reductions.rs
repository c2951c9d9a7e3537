//! Each reduction of the state space has a switch that turns it off
//! (`Reduction`): turned off, the same configuration explores more states
//! (pinned here) and every property has the same verdict.

use raft_election::{Features, LogSummary};
use raft_election_model::{Bounds, ElectionModel, Reduction, Reductions};
use stateright::{Checker, Model};

/// Two nodes with equal logs, terms up to 2, one crash and one transfer,
/// with Pre-Vote and leadership transfer: every reduction has something to
/// drop here, and the full model is still small.
fn two_nodes(features: Features) -> Bounds {
    let mut bounds = Bounds::new(2).with_features(features);
    bounds.logs = vec![LogSummary::default(); 2];
    bounds
}

fn pre_vote_and_transfer() -> Features {
    Features {
        pre_vote: true,
        leadership_transfer: true,
        ..Features::NONE
    }
}

/// The unique states of `bounds` with `reductions`, after checking that
/// every property holds and every reachability property is reached.
fn states(mut bounds: Bounds, reductions: Reductions) -> usize {
    bounds.reductions = reductions;
    let model = ElectionModel::new(bounds).expect("valid bounds");
    let checker = model.checker().threads(2).spawn_dfs().join();
    checker.assert_properties();
    checker.unique_state_count()
}

#[test]
fn each_reduction_turned_off_alone_explores_its_pinned_count_of_states() {
    let bounds = two_nodes(pre_vote_and_transfer());
    assert_eq!(states(bounds.clone(), Reductions::ALL), 4_696);
    // Outdone pre-votes are dropped only once their receiver has passed the
    // later request's term, which terms up to 2 never allow: the same count
    // (the next test turns that one off where it drops).
    let expected = [
        (Reduction::Symmetry, 9_367),
        (Reduction::SelfLoops, 6_305),
        (Reduction::LosslessCrashes, 4_697),
        (Reduction::PreVoteAtBound, 21_092),
        (Reduction::SpentResponses, 10_361),
        (Reduction::SpentFeatureMessages, 38_345),
        (Reduction::OutdonePreVotes, 4_696),
        (Reduction::OneStepRestarts, 6_154),
    ];
    assert_eq!(
        expected.len(),
        Reduction::ALL.len(),
        "one row per reduction"
    );
    for (reduction, count) in expected {
        let off = Reductions::ALL.without(reduction);
        assert_eq!(states(bounds.clone(), off), count, "{reduction} off");
    }
}

/// With terms up to 3 a receiver can pass the later request's term, and
/// the drop happens: fewer states, as a reduction should give (it once
/// waited for the latest request and explored more, 9,351; see
/// `is_spent` in `model/src/reductions.rs`).
#[test]
fn outdone_pre_votes_turned_off_explore_their_pinned_count_with_three_terms() {
    let mut bounds = two_nodes(Features {
        pre_vote: true,
        ..Features::NONE
    });
    bounds.max_term = raft_election::Term(3);
    bounds.max_crashes = 0;
    assert_eq!(states(bounds.clone(), Reductions::ALL), 8_030);
    let off = Reductions::ALL.without(Reduction::OutdonePreVotes);
    assert_eq!(states(bounds, off), 8_826);
}

#[test]
fn every_reduction_off_is_the_full_model_and_it_passes_on_two_nodes() {
    assert_eq!(states(two_nodes(Features::NONE), Reductions::ALL), 116);
    assert_eq!(states(two_nodes(Features::NONE), Reductions::NONE), 1_644);
}

#[test]
fn the_reductions_read_all_none_or_all_but_the_ones_turned_off() {
    assert_eq!(Reductions::ALL.to_string(), "all");
    assert_eq!(Reductions::NONE.to_string(), "none");
    let two = Reductions::ALL
        .without(Reduction::Symmetry)
        .without(Reduction::OutdonePreVotes);
    assert_eq!(two.to_string(), "all but symmetry, outdone-pre-votes");
    assert_eq!(Bounds::new(2).reductions, Reductions::ALL);
}
