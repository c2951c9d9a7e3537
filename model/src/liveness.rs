//! Liveness with timers: from every reachable state, a bounded schedule of
//! timer expiries and deliveries elects a leader that a majority follows,
//! whichever majority of the nodes is up.
//!
//! Exploration lets timers fire at any moment, so it cannot tell a cluster
//! that elects no leader *yet* from one that never will. This check decides
//! the second per state, by simulation rather than exploration: from the
//! state, it plays one schedule that a correct core must turn into a leader,
//! and fails if it does not. Terms may exceed the model's bound inside the
//! schedule: it is a simulation from the state, not a part of the search.
//!
//! What "a majority is up and connected" means here. In the model a crash
//! and its restart are one step, so every node is always up. The schedule is
//! played once with every node up, and once for each set of exactly a
//! majority of the nodes with the others down from this state on: nothing is
//! delivered to a down node and none of its timers fire, while what it sent
//! before is still delivered (a crash without a restart). On the duplicating
//! network nothing sent is ever lost, so every node that is up is connected
//! to every other.
//!
//! The schedule, a bounded number of [`ELECTION_ROUNDS`] times over:
//! 1. every message in flight to an up node is delivered, again and again,
//!    until nothing changes; then what is in flight is lost: it has all
//!    arrived, and copies arriving again after time has passed (an old
//!    heartbeat restarting a lease that just ended, a dead leader's for
//!    ever) are copies the network may lose;
//! 2. time passes: every armed [`Timer::Lease`] of an up node fires (its
//!    expiry is deferrable, so a driver delivers it late, but it does come),
//!    and with CheckQuorum every up leader's [`Timer::CheckQuorum`]; then
//!    everything is delivered again;
//! 3. the election timer of one up node that can win fires: not a leader,
//!    its election timer armed, and a log at least as up to date as every
//!    up node's (§5.4.1, compared here independently of the core); with
//!    Pre-Vote that starts its pre-vote round. Round `r` picks the `r`-th
//!    such node in turn. Then everything is delivered again.
//!
//! It succeeds as soon as an up node leads a term that a majority of the
//! cluster follows (the leader and the up followers of its term that know
//! it), counted without the core's quorum formula.
//!
//! It is not asked once a node has reached the term ceiling (after
//! everything in flight arrived): no election follows the ceiling's, so a
//! cluster there keeps its leader, if it has one, and that is all. Every
//! state below it must elect, the last election being into the ceiling.

use crate::actions::with_outputs;
use crate::properties::MAX_SETTLING_ROUNDS;
use crate::{ClusterState, ElectionModel, Network, NetworkKind, Server};
use raft_election::invariants::History;
use raft_election::{Features, Input, LogSummary, NodeId, Role, Term, Timer};
use std::cell::RefCell;
use std::collections::HashMap;

/// The liveness property with timers, decided per state by
/// [`ElectionModel::elects_a_leader_with_timers`].
pub const ELECTS_A_LEADER: &str = "with timers, a majority elects a leader";

/// Rounds of the schedule (time passes, one node's election timer fires,
/// everything is delivered) before the check gives up. A correct core needs
/// one: the first node that can win, once time has passed, wins.
pub const ELECTION_ROUNDS: usize = 3;

/// The nodes that are up, one bit per node id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Up(u16);

impl Up {
    /// Every one of `nodes` nodes.
    fn all(nodes: usize) -> Self {
        Self((1 << nodes) - 1)
    }

    /// Whether node `id` is up.
    #[must_use]
    pub(crate) fn contains(self, id: NodeId) -> bool {
        self.0 & (1 << id.0) != 0
    }

    /// Every node up, then each set of exactly a majority of `nodes` nodes.
    fn every_majority(nodes: usize) -> impl Iterator<Item = Self> {
        let all = Self::all(nodes);
        let majority = majority(nodes);
        std::iter::once(all).chain(
            (1..all.0)
                .filter(move |set| set.count_ones() as usize == majority)
                .map(Self),
        )
    }

    fn ids(self, nodes: usize) -> impl Iterator<Item = NodeId> {
        (0..nodes)
            .filter_map(|index| u8::try_from(index).ok())
            .map(NodeId)
            .filter(move |&id| self.contains(id))
    }
}

/// Whether a node of `state` has reached the term ceiling, where the
/// property is not asked: an election into the ceiling may split, or its
/// leader fail, and no election follows it (`proofs.md`, "The term
/// ceiling"). Below it the property holds as anywhere: the next election
/// is into the ceiling, and a correct core wins it.
fn at_the_ceiling(state: &ClusterState) -> bool {
    state
        .servers
        .iter()
        .any(|server| server.node.current_term() >= Term::CEILING)
}

/// More than half of `nodes`: restated rather than taken from
/// `Config::quorum`, so a wrong quorum formula in the core shows here.
fn majority(nodes: usize) -> usize {
    nodes / 2 + 1
}

/// `a` is at least as up to date as `b` (§5.4.1: the later last term wins,
/// then the longer log), restated rather than taken from the core.
fn at_least_as_up_to_date(a: LogSummary, b: LogSummary) -> bool {
    (a.last_log_term, a.last_log_index) >= (b.last_log_term, b.last_log_index)
}

/// A play of the schedule that elected no leader, told.
#[derive(Clone, Debug, Default)]
pub struct Election {
    /// The nodes that were up.
    pub up: Vec<NodeId>,
    /// What happened, a paragraph per stage, each ending with the state.
    pub story: Vec<String>,
}

/// Most schedules [`ROUNDS_MEMO`] remembers per checker thread before it
/// starts over: a bound on its memory (a few hundred bytes an entry).
const ROUNDS_MEMO_CAPACITY: usize = 1 << 16;

/// What a settled state (its servers, with nothing in flight) and a set of
/// up nodes, under one cluster's features, lead to.
type RoundsKey = (Features, Vec<Server>, Up);

thread_local! {
    /// The rounds of the schedule played from a settled state, remembered:
    /// many states settle to the same one (every state of a stable
    /// leadership, say), and with nothing in flight the rounds depend on
    /// the servers alone. Per thread, so the checker's threads never wait
    /// for each other.
    static ROUNDS_MEMO: RefCell<HashMap<RoundsKey, bool>> = RefCell::new(HashMap::new());
}

impl ElectionModel {
    /// The liveness property with timers (see the module documentation):
    /// once every message in flight has arrived, with every node up and
    /// with each majority up and the rest down, the bounded schedule elects
    /// a leader that a majority follows. Holds trivially on the lossy
    /// network, where a message may be lost for good.
    #[must_use]
    pub fn elects_a_leader_with_timers(&self, state: &ClusterState) -> bool {
        if self.bounds.network != NetworkKind::Duplicating {
            return true;
        }
        let Some(settled) = self.settle_for_election(state) else {
            return false;
        };
        if at_the_ceiling(&settled) {
            return true;
        }
        Up::every_majority(settled.servers.len()).all(|up| {
            let key = (self.bounds.features, settled.servers.clone(), up);
            if let Some(elected) = ROUNDS_MEMO.with(|memo| memo.borrow().get(&key).copied()) {
                return elected;
            }
            let elected = self.play_rounds(settled.clone(), up, ELECTION_ROUNDS, None);
            ROUNDS_MEMO.with(|memo| {
                let mut memo = memo.borrow_mut();
                if memo.len() >= ROUNDS_MEMO_CAPACITY {
                    memo.clear();
                }
                memo.insert(key, elected);
            });
            elected
        })
    }

    /// The property's condition: [`Self::elects_a_leader_with_timers`],
    /// decided only in states where no delivery changes anything.
    ///
    /// Deciding a state starts by delivering everything in flight until
    /// nothing changes, and each of those deliveries is an action of the
    /// model, so the settled state is itself reachable, and the checker
    /// decides it when it gets there: a state that is not settled yet is
    /// decided by the settled one its deliveries lead to. Finding one
    /// delivery that changes something is cheap; settling every state is
    /// not (it tripled the portfolio's time). Two exceptions are decided on
    /// the spot: a settled state beyond the bounds is never visited, and
    /// only a TimeoutNow leads there (its campaign raises the term), so a
    /// state with one in flight is decided at once.
    pub(crate) fn elects_a_leader_once_settled(&self, state: &ClusterState) -> bool {
        let defer = !self.bounds.features.leadership_transfer
            && state.network.iter().any(|envelope| {
                with_outputs(|outputs| self.deliver(state, &envelope, outputs).is_some())
            });
        defer || self.elects_a_leader_with_timers(state)
    }

    /// The first play of the schedule from `state` that elects no leader,
    /// told step by step: what a counterexample to [`ELECTS_A_LEADER`] ends
    /// with.
    #[must_use]
    pub fn failed_election(&self, state: &ClusterState) -> Option<Election> {
        if self.bounds.network != NetworkKind::Duplicating {
            return None;
        }
        let nodes = state.servers.len();
        let mut story = Vec::new();
        let settled = self.settle_for_election(state);
        let told = settled.as_ref().unwrap_or(state);
        story.push(format!(
            "every message in flight delivered{}:\n{}",
            if settled.is_some() {
                ""
            } else {
                " (it never settles)"
            },
            crate::describe_state(told)
        ));
        let Some(settled) = settled else {
            return Some(Election {
                up: Up::all(nodes).ids(nodes).collect(),
                story,
            });
        };
        if at_the_ceiling(&settled) {
            return None;
        }
        Up::every_majority(nodes).find_map(|up| {
            let mut told = story.clone();
            let elected = self.play_rounds(settled.clone(), up, ELECTION_ROUNDS, Some(&mut told));
            (!elected).then(|| Election {
                up: up.ids(nodes).collect(),
                story: told,
            })
        })
    }

    /// `state` with every message in flight delivered until nothing
    /// changes, then lost (see [`lose_what_arrived`]); `None` if it never
    /// settles. The ghost history starts empty but for the nodes' logs (as
    /// given, and renamed along with the nodes): the schedule checks no
    /// safety property, and the full one is costly to carry.
    fn settle_for_election(&self, state: &ClusterState) -> Option<ClusterState> {
        let mut settled = ClusterState {
            history: History::new(state.history.logs().clone()).into(),
            ..self.everyone_up(state).into_owned()
        };
        let quiet = self.deliver_everything(&mut settled, self.everyone());
        lose_what_arrived(&mut settled);
        quiet.then_some(settled)
    }

    /// Plays `rounds` rounds of the schedule from `state`, settled, with
    /// the nodes of `up` up: whether a leader that a majority follows is
    /// elected. Each stage is told in `story` if given.
    fn play_rounds(
        &self,
        mut state: ClusterState,
        up: Up,
        rounds: usize,
        mut story: Option<&mut Vec<String>>,
    ) -> bool {
        let mut note = |what: String, state: &ClusterState| {
            if let Some(story) = story.as_deref_mut() {
                story.push(format!("{what}:\n{}", crate::describe_state(state)));
            }
        };
        for round in 1..=rounds {
            if led_by_a_majority(&state, up) {
                return true;
            }
            self.let_time_pass(&mut state, up);
            let mut settled = self.deliver_everything(&mut state, up);
            lose_what_arrived(&mut state);
            let passes = if self.bounds.features.check_quorum {
                "leases end, leaders check their quorum"
            } else {
                "leases end"
            };
            note(
                format!("round {round}: time passes ({passes}), then every message is delivered"),
                &state,
            );
            if led_by_a_majority(&state, up) {
                return settled;
            }
            let Some(contender) = contender(&state, up, round - 1) else {
                note(
                    format!("round {round}: no up node that can win has its election timer armed"),
                    &state,
                );
                return false;
            };
            state.servers[usize::from(contender.0)]
                .armed
                .set(Timer::Election, false);
            self.step(&mut state, contender, Input::Timeout(Timer::Election));
            settled &= self.deliver_everything(&mut state, up);
            lose_what_arrived(&mut state);
            note(
                format!(
                    "round {round}: {contender}'s election timer fires, then every message is delivered"
                ),
                &state,
            );
            // A core whose deliveries never settle elects no one for good.
            if !settled {
                return false;
            }
        }
        led_by_a_majority(&state, up)
    }

    /// Time passes for the nodes of `up`: their leases end, and with
    /// CheckQuorum their leaders' quorum checks fire.
    fn let_time_pass(&self, state: &mut ClusterState, up: Up) {
        let nodes = state.servers.len();
        for id in up.ids(nodes) {
            let leads = state.servers[usize::from(id.0)].node.role() == Role::Leader;
            let check_quorum = self.bounds.features.check_quorum && leads;
            for timer in [Timer::Lease, Timer::CheckQuorum] {
                let server = &mut state.servers[usize::from(id.0)];
                if server.armed.is_armed(timer) && (timer == Timer::Lease || check_quorum) {
                    server.armed.set(timer, false);
                    self.step(state, id, Input::Timeout(timer));
                }
            }
        }
    }

    /// Delivers every message in flight to a node of `up`, round after
    /// round, until nothing changes; false if it still changes after
    /// [`MAX_SETTLING_ROUNDS`] rounds (a core that never settles).
    pub(crate) fn deliver_everything(&self, state: &mut ClusterState, up: Up) -> bool {
        for _ in 0..MAX_SETTLING_ROUNDS {
            let mut changed = false;
            let envelopes: Vec<_> = state.network.iter().filter(|e| up.contains(e.to)).collect();
            for envelope in envelopes {
                // Only what is still in flight is delivered: a message this
                // round dropped as spent is lost, as in the model's steps.
                if !state.network.contains(&envelope) {
                    continue;
                }
                let mut outputs = Vec::new();
                let Some(node) = self.deliver(state, &envelope, &mut outputs) else {
                    continue;
                };
                let input = Input::Receive {
                    from: envelope.from,
                    message: envelope.message,
                };
                let receiver = usize::from(envelope.to.0);
                let server = state.servers[receiver].clone();
                let in_flight = state.network.clone();
                self.commit(state, envelope.to, input, node, &outputs);
                // A step may change nothing in the end (a refusal the model
                // drops as spent at once): only a change is progress. A
                // step changes its receiver and adds to the network or
                // drops spent messages from it, nothing else.
                if state.servers[receiver] != server || state.network != in_flight {
                    changed = true;
                }
            }
            if !changed {
                return true;
            }
        }
        false
    }

    /// Every node up, for [`Self::deliver_everything`].
    pub(crate) fn everyone(&self) -> Up {
        Up::all(usize::from(self.bounds.nodes))
    }
}

/// Empties the network once everything in it has been delivered until
/// nothing changed. It has all arrived; a copy arriving again after time has
/// passed (an old heartbeat that would restart a lease that just ended, a
/// dead leader's heartbeats for ever) is one the network may lose anyway.
fn lose_what_arrived(state: &mut ClusterState) {
    state.network = Network::default();
}

/// An up node leads a term that a majority of the cluster follows: itself
/// and the up followers of that term that know it as their leader.
fn led_by_a_majority(state: &ClusterState, up: Up) -> bool {
    let nodes = state.servers.len();
    up.ids(nodes).any(|leader| {
        let node = &state.servers[usize::from(leader.0)].node;
        node.role() == Role::Leader && {
            let term = node.current_term();
            let followers = up
                .ids(nodes)
                .map(|id| &state.servers[usize::from(id.0)].node)
                .filter(|n| {
                    n.current_term() == term
                        && n.role() == Role::Follower
                        && n.leader_id() == Some(leader)
                })
                .count();
            followers + 1 >= majority(nodes)
        }
    })
}

/// The up node whose election timer round `round` (from 0) fires: of those
/// that can win (not leading, election timer armed, a log at least as up to
/// date as every up node's), those in the highest term first (its next
/// term is news to every up node, so nobody has voted in it yet), the
/// `round`-th in turn.
fn contender(state: &ClusterState, up: Up, round: usize) -> Option<NodeId> {
    let nodes = state.servers.len();
    let server = |id: NodeId| &state.servers[usize::from(id.0)];
    let mut can_win: Vec<NodeId> = up
        .ids(nodes)
        .filter(|&id| {
            let s = server(id);
            s.node.role() != Role::Leader
                && s.armed.is_armed(Timer::Election)
                && up
                    .ids(nodes)
                    .all(|other| at_least_as_up_to_date(s.node.log(), server(other).node.log()))
        })
        .collect();
    can_win.sort_by_key(|&id| std::cmp::Reverse(server(id).node.current_term()));
    (!can_win.is_empty()).then(|| can_win[round % can_win.len()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bounds, StartingLogs};
    use raft_election::{Features, Term};
    use stateright::{Checker, Model, StateRecorder};
    use std::collections::HashSet;

    fn bounds(nodes: u8, max_term: u64, crashes: u8, logs: StartingLogs, f: Features) -> Bounds {
        let mut bounds = Bounds::with_logs(nodes, logs).with_features(f);
        bounds.max_term = Term(max_term);
        bounds.max_crashes = crashes;
        bounds
    }

    /// Small configurations, each feature in at least one, for a debug build.
    fn configurations() -> Vec<Bounds> {
        let guarded = Features {
            pre_vote: true,
            check_quorum: true,
            lease_guarded_votes: true,
            leadership_transfer: false,
        };
        vec![
            bounds(3, 1, 1, StartingLogs::Ahead, Features::NONE),
            bounds(3, 2, 0, StartingLogs::LongerOlder, Features::NONE),
            bounds(2, 2, 1, StartingLogs::Equal, guarded),
            bounds(3, 1, 0, StartingLogs::Ahead, guarded),
            bounds(2, 2, 1, StartingLogs::Equal, Features::ALL),
        ]
    }

    /// Every state the checker visits within the bounds of `model`.
    fn visited(model: &ElectionModel) -> Vec<ClusterState> {
        let (recorder, states) = StateRecorder::new_with_accessor();
        model.clone().checker().visitor(recorder).spawn_dfs().join();
        states()
            .into_iter()
            .filter(|state| model.within_boundary(state))
            .collect()
    }

    #[test]
    fn every_state_whose_check_is_deferred_settles_into_a_state_the_checker_visits() {
        for bounds in configurations() {
            let model = ElectionModel::new(bounds).expect("valid bounds");
            let states = visited(&model);
            let known: HashSet<&ClusterState> = states.iter().collect();
            let mut deferred = 0;
            for state in &states {
                let pending = state
                    .network
                    .iter()
                    .any(|envelope| model.deliver(state, &envelope, &mut Vec::new()).is_some());
                if !pending || model.bounds.features.leadership_transfer {
                    continue;
                }
                deferred += 1;
                let mut settled = state.clone();
                assert!(model.deliver_everything(&mut settled, model.everyone()));
                let settled = model.canonical(settled);
                assert!(
                    !model.within_boundary(&settled) || known.contains(&settled),
                    "{}: settling {state:?} leads to {settled:?}, never visited",
                    crate::portfolio::label(&model.bounds)
                );
            }
            assert!(
                deferred > 0 || model.bounds.features.leadership_transfer,
                "nothing deferred"
            );
        }
    }

    #[test]
    fn one_round_of_the_schedule_elects_a_leader_from_every_reachable_state() {
        for bounds in configurations() {
            let model = ElectionModel::new(bounds).expect("valid bounds");
            for state in visited(&model) {
                let settled = model.settle_for_election(&state).expect("settles");
                for up in Up::every_majority(state.servers.len()) {
                    assert!(
                        model.play_rounds(settled.clone(), up, 1, None),
                        "{}: {up:?} from {state:?}",
                        crate::portfolio::label(&model.bounds)
                    );
                }
            }
        }
    }

    #[test]
    fn followers_that_never_arm_their_election_timers_elect_no_one_once_the_leader_is_down() {
        let model = ElectionModel::new(bounds(3, 1, 1, StartingLogs::Ahead, Features::NONE))
            .expect("valid bounds");
        let led: Vec<ClusterState> = visited(&model)
            .into_iter()
            .filter(|state| led_by_a_majority(state, model.everyone()))
            .collect();
        assert!(!led.is_empty());
        for state in led {
            assert!(model.elects_a_leader_with_timers(&state), "{state:?}");
            let mut settled = model.settle_for_election(&state).expect("settles");
            for server in &mut settled.servers {
                server.armed.set(Timer::Election, false);
            }
            // With every node up the leader is there and nothing is missed:
            // only a majority without it shows the missing timers.
            let elects = |up| model.play_rounds(settled.clone(), up, ELECTION_ROUNDS, None);
            assert!(elects(model.everyone()), "{state:?}");
            assert!(
                !Up::every_majority(state.servers.len()).all(elects),
                "{state:?}"
            );
        }
    }
}
