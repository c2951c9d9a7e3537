//! The model checker's own tests: pinned state counts (an unintended change
//! to the core or the model shows up as a different count), the
//! volatile-restart counterexample, and each reachability property found.

use raft_election::invariants::Invariant;
use raft_election::{LogSummary, Role, Term};
use raft_election_model::{
    Bounds, ClusterState, ElectionModel, ModelError, NetworkKind, REACHABILITY, Restarts,
    StartingLogs, format_trace,
};
use stateright::{Checker, HasDiscoveries, Model};
use std::collections::{BTreeSet, HashSet};

fn model(bounds: Bounds) -> ElectionModel {
    ElectionModel::new(bounds).expect("valid bounds")
}

/// Two nodes with equal logs, terms up to 2 and one crash: small enough for a
/// debug build, large enough to reach every reachability property.
fn two_nodes() -> Bounds {
    let mut bounds = Bounds::new(2);
    bounds.logs = vec![LogSummary::default(); 2];
    bounds.max_term = Term(2);
    bounds
}

fn no_safety_violation<C: Checker<ElectionModel>>(checker: &C) {
    for invariant in Invariant::ALL {
        if let Some(path) = checker.discovery(invariant.name()) {
            panic!(
                "{invariant} violated:\n{}",
                format_trace(checker.model(), &path)
            );
        }
    }
}

#[test]
fn a_two_node_cluster_with_a_crash_satisfies_every_property_in_exactly_529_states() {
    let checker = model(two_nodes()).checker().spawn_dfs().join();
    no_safety_violation(&checker);
    checker.assert_properties();
    assert_eq!(checker.unique_state_count(), 529);
}

#[test]
fn three_nodes_with_unequal_logs_and_a_crash_keep_every_invariant_in_one_term() {
    // n0 is a log entry ahead, so n1 and n2 can never win its vote (§5.4.1).
    let mut bounds = Bounds::new(3);
    bounds.max_term = Term(1);
    let checker = model(bounds).checker().spawn_dfs().join();
    no_safety_violation(&checker);
    assert!(checker.discovery(REACHABILITY[0]).is_some());
    assert_eq!(checker.unique_state_count(), 577);
}

/// Every state reachable within the model's boundary (for small bounds only).
fn every_state(model: &ElectionModel) -> HashSet<ClusterState> {
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
    seen
}

#[test]
fn a_longer_log_of_an_older_term_never_wins_the_vote_of_a_later_one() {
    // n0 holds 2 entries of t0, n1 one of t1: a length-only comparison grants
    // n0 the vote §5.4.1 refuses. Terms up to 3: two elections past n1's t1.
    let mut bounds = Bounds::with_logs(2, StartingLogs::LongerOlder);
    bounds.max_term = Term(3);
    let longer = bounds.logs[0];
    let checker = model(bounds.clone()).checker().spawn_dfs().join();
    no_safety_violation(&checker);
    for reached in [REACHABILITY[0], REACHABILITY[1], REACHABILITY[3]] {
        assert!(
            checker.discovery(reached).is_some(),
            "{reached} never happens"
        );
    }
    // Two nodes need both votes, so only n1 can ever lead: no other node
    // replaces it.
    assert!(checker.discovery(REACHABILITY[2]).is_none());
    assert_eq!(checker.unique_state_count(), 2354);
    // Independently of the invariants: n0 campaigns, and never leads.
    let states = every_state(&model(bounds));
    let with_longer = |role: Role| {
        states.iter().any(|state| {
            state
                .servers
                .iter()
                .any(|s| s.node.log() == longer && s.node.role() == role)
        })
    };
    assert!(with_longer(Role::Candidate));
    assert!(!with_longer(Role::Leader));
}

#[test]
fn the_lossy_network_keeps_every_invariant_too() {
    let mut bounds = two_nodes();
    bounds.network = NetworkKind::Lossy;
    let checker = model(bounds).checker().spawn_dfs().join();
    no_safety_violation(&checker);
    checker.assert_properties();
}

#[test]
fn volatile_restarts_let_two_leaders_win_one_term() {
    let mut bounds = Bounds::new(3);
    bounds.max_term = Term(1);
    bounds.restarts = Restarts::Volatile;
    let safety = Invariant::ElectionSafety.name();
    let checker = model(bounds)
        .checker()
        .finish_when(HasDiscoveries::AnyOf(BTreeSet::from([safety])))
        .spawn_bfs()
        .join();
    let path = checker
        .discovery(safety)
        .expect("forgetting the vote elects two leaders");
    let last: &ClusterState = path.last_state();
    assert!(last.violations.contains(Invariant::ElectionSafety));
    let states = path.clone().into_states();
    assert!(
        states
            .iter()
            .any(|s| s.violations.contains(Invariant::OneVotePerTerm)),
        "a restarted node voted twice on the way"
    );
    let leaders: Vec<Term> = last
        .servers
        .iter()
        .filter(|s| s.node.role() == Role::Leader)
        .map(|s| s.node.current_term())
        .collect();
    assert_eq!(
        leaders,
        [Term(1), Term(1)],
        "{}",
        format_trace(checker.model(), &path)
    );
    // Crash, forget the vote, vote again, win: the shortest story.
    assert_eq!(path.into_actions().len(), 7);
}

/// Searches breadth-first until `property` is found; returns the states of
/// the trace, after printing it.
fn find(bounds: Bounds, property: &'static str) -> Vec<ClusterState> {
    let checker = model(bounds)
        .checker()
        .finish_when(HasDiscoveries::AnyOf(BTreeSet::from([property])))
        .spawn_bfs()
        .join();
    no_safety_violation(&checker);
    let path = checker
        .discovery(property)
        .unwrap_or_else(|| panic!("{property} never happens"));
    println!("{}", format_trace(checker.model(), &path));
    path.into_states()
}

/// `(node index, term)` of every leader in `state`.
fn leaders(state: &ClusterState) -> Vec<(usize, Term)> {
    state
        .servers
        .iter()
        .enumerate()
        .filter(|(_, s)| s.node.role() == Role::Leader)
        .map(|(i, s)| (i, s.node.current_term()))
        .collect()
}

/// Every `(node index, term)` that was leader somewhere along `states`.
fn leaders_along(states: &[ClusterState]) -> BTreeSet<(usize, Term)> {
    states.iter().flat_map(leaders).collect()
}

#[test]
fn a_leader_is_elected_in_three_nodes() {
    let states = find(Bounds::new(3), REACHABILITY[0]);
    assert!(!leaders_along(&states).is_empty());
}

#[test]
fn a_split_vote_happens() {
    let states = find(two_nodes(), REACHABILITY[1]);
    let terms: BTreeSet<Term> = leaders_along(&states).into_iter().map(|l| l.1).collect();
    assert_eq!(
        terms,
        BTreeSet::from([Term(2)]),
        "nobody led t1, someone led t2"
    );
    // Both nodes campaigned in t1: the shortest split has them candidates at once.
    let both_candidates = states.iter().any(|state| {
        state
            .servers
            .iter()
            .all(|s| s.node.role() == Role::Candidate && s.node.current_term() == Term(1))
    });
    assert!(both_candidates, "a lone candidate is no split vote");
}

#[test]
fn a_leader_is_replaced_by_one_of_a_later_term() {
    let states = find(two_nodes(), REACHABILITY[2]);
    let led = leaders_along(&states);
    let nodes: BTreeSet<usize> = led.iter().map(|l| l.0).collect();
    let terms: BTreeSet<Term> = led.iter().map(|l| l.1).collect();
    assert_eq!((nodes.len(), terms.len()), (2, 2), "{led:?}");
}

#[test]
fn a_stale_leader_steps_down() {
    let states = find(two_nodes(), REACHABILITY[3]);
    let last = states.last().unwrap();
    assert_eq!(last.crashes, 0);
    let stepped_down = leaders_along(&states).into_iter().any(|(node, term)| {
        let now = &last.servers[node].node;
        now.role() == Role::Follower && now.current_term() > term
    });
    assert!(stepped_down);
}

#[test]
fn bounds_the_network_cannot_pack_are_refused() {
    let mut bounds = Bounds::new(3);
    bounds.max_term = Term(1 << 20);
    assert!(matches!(
        ElectionModel::new(bounds),
        Err(ModelError::TooLarge { .. })
    ));
    let mut bounds = Bounds::new(3);
    bounds.logs.pop();
    assert!(matches!(
        ElectionModel::new(bounds),
        Err(ModelError::LogCount { nodes: 3, logs: 2 })
    ));
    let mut bounds = Bounds::with_logs(2, StartingLogs::LongerOlder);
    bounds.max_term = Term(0);
    assert!(matches!(
        ElectionModel::new(bounds),
        Err(ModelError::LogBeyondMaxTerm { .. })
    ));
}
