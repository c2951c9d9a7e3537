//! The reductions hide no state: the states the model explores with every
//! reduction on are exactly the states of the full model, each put in the
//! form the reductions give it ([`reduced_form`]). A reduction that dropped
//! a message its receiver would later act on, or cut a path that leads
//! somewhere new, shows here as a state of the full model with no
//! counterpart. proofs.md, "The model's reductions", says what is covered.

use crate::{Bounds, ClusterState, ElectionModel, Reduction, Reductions, Restarts, StartingLogs};
use raft_election::Role;
use raft_election::{Features, Term};
use stateright::{Checker, Model, Representative};
use std::collections::HashSet;

/// Every state the checker would explore: reachable, and within the
/// boundary (a state beyond it is generated but never explored or checked).
fn explored(model: &ElectionModel) -> HashSet<ClusterState> {
    let mut seen: HashSet<ClusterState> = model.init_states().into_iter().collect();
    let mut frontier: Vec<ClusterState> = seen.iter().cloned().collect();
    while let Some(state) = frontier.pop() {
        if !model.within_boundary(&state) {
            continue;
        }
        for next in model.next_states(&state) {
            if seen.insert(next.clone()) {
                frontier.push(next);
            }
        }
    }
    seen.retain(|state| model.within_boundary(state));
    seen
}

/// Whether each property of `model` has a discovery, in the order of its
/// properties.
fn verdicts(model: ElectionModel) -> Vec<bool> {
    let checker = model.checker().spawn_dfs().join();
    let names: Vec<&str> = checker
        .model()
        .properties()
        .iter()
        .map(|p| p.name)
        .collect();
    names
        .into_iter()
        .map(|name| checker.discovery(name).is_some())
        .collect()
}

/// `state`, a state of any model, in the form `reduced`'s reductions give
/// it, or `None` if they never reach it:
/// - one-step restarts: a state with a node down has no counterpart;
/// - spent responses, spent feature messages, outdone pre-votes: every
///   message in flight that the reduction would drop, dropped (by the
///   model's own predicates, over every message rather than only the
///   stepping node's);
/// - lossless crashes and self-loops: the crash and transfer budgets
///   spent, which a skipped lossless crash or a transfer request that
///   changes nothing spend, are not compared;
/// - symmetry: the representative of its renamings.
fn reduced_form(reduced: &ElectionModel, state: &ClusterState) -> Option<ClusterState> {
    if reduced.reduces(Reduction::OneStepRestarts) && state.servers.iter().any(|s| s.down) {
        return None;
    }
    let mut form = state.clone();
    if reduced.reduces(Reduction::SpentResponses) && reduced.bounds.restarts == Restarts::Durable {
        // Every response is to some node: each node's turn covers them all.
        for config in &reduced.configs {
            reduced.drop_spent_responses(&mut form, config.id());
        }
    }
    let nodes: Vec<raft_election::Node> = form.servers.iter().map(|s| s.node.clone()).collect();
    reduced.drop_spent(&mut form.network, |id| &nodes[usize::from(id.0)], None);
    if reduced.reduces(Reduction::LosslessCrashes) {
        form.crashes = 0;
    }
    if reduced.reduces(Reduction::SelfLoops) {
        form.transfers = 0;
    }
    form.spent = crate::Network::default();
    Some(reduced.canonical(form))
}

/// Compares `bounds` with `on` against the same with every reduction but
/// `kept_in_full` off: the reduced states in their own form equal the full
/// model's in the reduced form. Returns (reduced, full) state counts.
fn assert_same_states(bounds: &Bounds, on: Reductions, kept_in_full: Reductions) -> (usize, usize) {
    let model = |reductions| {
        let mut bounds = bounds.clone();
        bounds.reductions = reductions;
        ElectionModel::new(bounds).expect("valid bounds")
    };
    let (reduced, full) = (model(on), model(kept_in_full));
    let label = format!(
        "{} nodes, terms up to {}, {} crash(es), {}; reductions {on} against {kept_in_full}",
        bounds.nodes, bounds.max_term.0, bounds.max_crashes, bounds.features
    );
    let reduced_states = explored(&reduced);
    let full_states = explored(&full);
    let form = |state: &ClusterState| reduced_form(&reduced, state);
    let expected: HashSet<ClusterState> = full_states.iter().filter_map(form).collect();
    let got: HashSet<ClusterState> = reduced_states.iter().filter_map(form).collect();
    let missing = expected.difference(&got).next();
    assert!(
        missing.is_none(),
        "{label}: a state of the full model the reduced one never reaches: {missing:?}"
    );
    let extra = got.difference(&expected).next();
    assert!(
        extra.is_none(),
        "{label}: a state the reduced model reaches that the full one does not: {extra:?}"
    );
    (reduced_states.len(), full_states.len())
}

fn bounds(nodes: u8, max_term: u64, max_crashes: u8, features: Features) -> Bounds {
    let mut bounds = Bounds::with_logs(nodes, StartingLogs::Equal).with_features(features);
    bounds.max_term = Term(max_term);
    bounds.max_crashes = max_crashes;
    bounds
}

/// The full model but for the pre-vote at the bound, which cuts states off
/// rather than merging them (the next test).
fn all_but_the_bound() -> Reductions {
    Reduction::ALL
        .into_iter()
        .filter(|&r| r != Reduction::PreVoteAtBound)
        .fold(Reductions::ALL, Reductions::without)
}

#[test]
fn every_reduction_hides_no_state_on_two_nodes_with_pre_vote_and_transfer() {
    let features = Features {
        pre_vote: true,
        leadership_transfer: true,
        ..Features::NONE
    };
    let bounds = bounds(2, 2, 1, features);
    let (reduced, full) = assert_same_states(&bounds, Reductions::ALL, all_but_the_bound());
    assert_eq!((reduced, full), (4_696, 408_042));
}

#[test]
#[ignore = "minutes in a release build: .ci/nightly runs it"]
fn every_reduction_hides_no_state_on_two_nodes_in_every_feature_combination() {
    for features in Features::combinations() {
        let bounds = bounds(2, 2, 1, features);
        let (reduced, full) = assert_same_states(&bounds, Reductions::ALL, all_but_the_bound());
        assert!(reduced < full, "{features}: {reduced} of {full}");
    }
}

/// Outdone pre-votes are dropped only once their receiver has passed the
/// later request's term, which takes terms up to 3.
#[test]
fn dropping_outdone_pre_votes_hides_no_state_with_three_terms() {
    let pre_vote = Features {
        pre_vote: true,
        ..Features::NONE
    };
    let bounds = bounds(2, 3, 0, pre_vote);
    let only_outdone = Reductions::ALL.without(Reduction::OutdonePreVotes);
    assert_same_states(&bounds, Reductions::ALL, only_outdone);
}

/// Three nodes with a feature, two terms: every reduction that drops
/// messages, and self-loops, against the full model with symmetry.
#[test]
#[ignore = "a release build: .ci/run model runs it"]
fn the_reductions_hide_no_state_on_three_nodes_with_lease_guarded_votes_over_two_terms() {
    let guarded = Features {
        lease_guarded_votes: true,
        ..Features::NONE
    };
    let bounds = bounds(3, 2, 0, guarded);
    let symmetric = Reduction::ALL
        .into_iter()
        .filter(|&r| !matches!(r, Reduction::Symmetry | Reduction::PreVoteAtBound))
        .fold(Reductions::ALL, Reductions::without);
    let (reduced, full) = assert_same_states(&bounds, Reductions::ALL, symmetric);
    assert_eq!((reduced, full), (1_372, 429_256));
}

/// Three nodes, Figure 2 alone, one crash: symmetry, one-step restarts and
/// lossless crashes on three nodes, against the full model.
#[test]
#[ignore = "10 GB and minutes in a release build: .ci/nightly runs it"]
fn the_reductions_hide_no_state_on_three_nodes_with_a_crash() {
    let bounds = bounds(3, 2, 1, Features::NONE);
    let (reduced, full) = assert_same_states(&bounds, Reductions::ALL, all_but_the_bound());
    assert!(reduced < full, "{reduced} of {full}");
}

/// The pre-vote at the bound cuts states off: what the model explores with
/// it is a part of what it explores without it, and every property has the
/// same verdict.
#[test]
fn the_pre_vote_at_the_bound_only_cuts_states_and_changes_no_verdict() {
    for features in Features::combinations().filter(|f| f.pre_vote) {
        let bounds = bounds(2, 2, 1, features);
        let cut = ElectionModel::new(bounds.clone()).expect("valid bounds");
        let whole = cut.clone().without(Reduction::PreVoteAtBound);
        let (cut_states, whole_states) = (explored(&cut), explored(&whole));
        assert!(cut_states.is_subset(&whole_states), "{features}");
        assert!(cut_states.len() < whole_states.len(), "{features}");
        assert_eq!(verdicts(cut), verdicts(whole), "{features}");
    }
}

/// Whether a response in flight to `receiver` is one the model drops, as
/// restated here from Figure 2 rather than taken from the model: of a term
/// below the receiver's; or of its term and neither a grant a candidate has
/// not counted yet nor, with CheckQuorum or leadership transfer (which read
/// acknowledgements), a success to a leader or a candidate.
fn is_spent_response(
    receiver: &raft_election::Node,
    envelope: &raft_election::Envelope,
    features: raft_election::Features,
) -> bool {
    use raft_election::Message;
    let current = receiver.current_term();
    let role = receiver.role();
    match envelope.message {
        Message::RequestVoteResponse { term, vote_granted } => {
            let uncounted_grant = vote_granted
                && role == Role::Candidate
                && !receiver.votes_granted().contains(&envelope.from);
            term < current || (term == current && !uncounted_grant)
        }
        Message::AppendEntriesResponse { term, success, .. } => {
            let read = success
                && (features.check_quorum || features.leadership_transfer)
                && matches!(role, Role::Leader | Role::Candidate);
            term < current || (term == current && !read)
        }
        _ => false,
    }
}

/// Every state within the boundary, spent responses taken out, in canonical
/// form: what the reduction of `ElectionModel::drop_spent_responses` should
/// explore.
fn without_spent_responses(
    states: HashSet<ClusterState>,
    model: &ElectionModel,
) -> HashSet<ClusterState> {
    let features = model.bounds().features;
    states
        .into_iter()
        .map(|mut state| {
            let nodes: Vec<raft_election::Node> =
                state.servers.iter().map(|s| s.node.clone()).collect();
            state
                .network
                .retain(|e| !is_spent_response(&nodes[usize::from(e.to.0)], e, features));
            state.representative()
        })
        .collect()
}

/// The reduction that drops spent responses merges states and hides none:
/// the states it explores are exactly those of the full model with the
/// spent responses taken out, in every feature combination (2 nodes) and
/// in 3 nodes, and it finds the same verdicts.
#[test]
fn dropping_spent_responses_explores_exactly_the_full_model_without_them() {
    use raft_election::Features;
    let mut three = Bounds::with_logs(3, StartingLogs::Equal);
    three.max_crashes = 0;
    let configurations = Features::combinations()
        .map(|features| bounds(2, 2, 1, features))
        .chain([three]);
    for bounds in configurations {
        let label = format!("{} nodes, {}", bounds.nodes, bounds.features);
        let reduced = ElectionModel::new(bounds).expect("valid bounds");
        let full = reduced.clone().without(Reduction::SpentResponses);
        let full_states = explored(&full);
        let full_count = full_states.len();
        let expected = without_spent_responses(full_states, &full);
        let explored = explored(&reduced);
        assert_eq!(explored.len(), expected.len(), "{label}");
        assert!(explored == expected, "{label}");
        assert!(explored.len() < full_count, "{label}: nothing merged");
        assert_eq!(verdicts(reduced), verdicts(full), "{label}");
    }
}
