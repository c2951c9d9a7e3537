//! The sans-IO election core: one Raft node as a pure state machine.
//!
//! [`Node::step`] takes one [`Input`] and appends the resulting [`Output`]s.
//! It reads no clock, draws no random number and does no I/O: a driver (the
//! Tokio runtime, the simulator, the model checker, the fuzzer) owns all of
//! that. Every election rule of this crate lives in this file.
//!
//! The shape follows etcd's `raft.go`: `step` settles the term first, the way
//! Figure 2's "Rules for Servers: All Servers" says, then dispatches on the role.
//! One difference: a higher term alone does not restart the election timer
//! here. Figure 2 resets it only on "receiving AppendEntries RPC from current
//! leader or granting vote to candidate", whereas etcd's `becomeFollower`
//! calls `reset`, which restarts it on every term bump.

use crate::config::Config;
use crate::message::Message;
use crate::types::{HardState, LogSummary, NodeId, Role, Term};
use std::collections::BTreeSet;
use std::time::Duration;

/// The two timers a node may ask its driver to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Timer {
    /// Followers and candidates: start an election when it fires (§5.2).
    Election,
    /// Leaders: send the next round of heartbeats when it fires (§5.2).
    Heartbeat,
}

/// Everything that can happen to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Input {
    /// The node was created or restarted from its [`HardState`]: arm its timer.
    Start,
    /// A message arrived; `from` is the sender as the transport reports it.
    Receive {
        /// Sender.
        from: NodeId,
        /// The message.
        message: Message,
    },
    /// A timer the node armed with [`Output::SetTimer`] expired.
    Timeout(Timer),
}

/// What a node asks its driver to do, in order.
///
/// Ordering contract: within one step, a [`Output::Persist`] comes first, so a
/// driver that executes outputs in order never sends a message that depends
/// on a term or vote it has not yet made durable (Figure 2: "updated on
/// stable storage before responding to RPCs").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// Write this hard state to stable storage before executing later outputs.
    Persist(HardState),
    /// Send `message` to node `to`. Delivery may fail; Raft tolerates loss.
    Send {
        /// Receiver.
        to: NodeId,
        /// The message.
        message: Message,
    },
    /// Arm `timer` for a duration the driver picks in `min..=max`, replacing
    /// any earlier arming of the same timer (a stale one must never fire).
    SetTimer {
        /// Which timer.
        timer: Timer,
        /// Shortest allowed duration.
        min: Duration,
        /// Longest allowed duration.
        max: Duration,
    },
    /// Disarm `timer`; a pending expiry must not be delivered.
    CancelTimer(Timer),
}

/// The state of one Raft node, restricted to leader election.
///
/// Deliberately holds neither its own id nor the membership: those live in
/// [`Config`], passed to every step, so the state hashes small and nodes are
/// interchangeable for the model checker's symmetry reduction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Node {
    // Persistent state on all servers (Figure 2).
    current_term: Term,
    voted_for: Option<NodeId>,
    // Volatile state.
    role: Role,
    /// The leader of `current_term` if this node knows it (AppendEntries' `leaderId`).
    leader_id: Option<NodeId>,
    /// Candidate only: distinct voters that granted their vote in `current_term`,
    /// this node included. Empty in every other role.
    votes_granted: BTreeSet<NodeId>,
    /// Constant for this crate: no log is replicated (see [`LogSummary`]).
    log: LogSummary,
}

impl Node {
    /// A node that has never run: term 0, no vote, an empty log.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A node restarted from the hard state it persisted, with log summary `log`.
    ///
    /// Everything volatile starts over: the node is a follower that knows no leader.
    #[must_use]
    pub fn restore(hard_state: HardState, log: LogSummary) -> Self {
        Self {
            current_term: hard_state.current_term,
            voted_for: hard_state.voted_for,
            log,
            ..Self::default()
        }
    }

    /// Latest term this node has seen.
    #[must_use]
    pub fn current_term(&self) -> Term {
        self.current_term
    }

    /// Whom this node voted for in [`Self::current_term`].
    #[must_use]
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }

    /// Follower, candidate or leader.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The leader of the current term, if this node knows it (itself, if leader).
    #[must_use]
    pub fn leader_id(&self) -> Option<NodeId> {
        self.leader_id
    }

    /// A candidate's granted votes in its current term (empty in other roles).
    #[must_use]
    pub fn votes_granted(&self) -> &BTreeSet<NodeId> {
        &self.votes_granted
    }

    /// The log summary this node compares candidates against (§5.4.1).
    #[must_use]
    pub fn log(&self) -> LogSummary {
        self.log
    }

    /// What must survive a crash.
    #[must_use]
    pub fn hard_state(&self) -> HardState {
        HardState {
            current_term: self.current_term,
            voted_for: self.voted_for,
        }
    }

    /// This node with every node id it holds renamed by `rename`.
    ///
    /// For the model checker's symmetry reduction: ids are only names, so a
    /// cluster whose ids are permuted behaves the same way, permuted. `rename`
    /// must be a permutation of the voters; no election rule reads it.
    #[must_use]
    pub fn map_ids(&self, rename: impl Fn(NodeId) -> NodeId) -> Self {
        Self {
            voted_for: self.voted_for.map(&rename),
            leader_id: self.leader_id.map(&rename),
            votes_granted: self.votes_granted.iter().copied().map(&rename).collect(),
            ..self.clone()
        }
    }

    /// Applies the election rules to one input, appending the resulting
    /// sends and timer changes to `out`. [`Node::step`] wraps it with the
    /// output contract (the persist first) and the debug-build checks.
    pub(crate) fn apply(&mut self, config: &Config, input: Input, out: &mut Vec<Output>) {
        match input {
            Input::Start => self.arm_role_timer(config, out),
            Input::Timeout(Timer::Election) => self.handle_election_timeout(config, out),
            Input::Timeout(Timer::Heartbeat) => self.handle_heartbeat_timeout(config, out),
            Input::Receive { from, message } => self.handle_message(config, from, message, out),
        }
    }

    fn handle_message(
        &mut self,
        config: &Config,
        from: NodeId,
        message: Message,
        out: &mut Vec<Output>,
    ) {
        // A message from a non-member, or one that claims to come from this node,
        // is no Raft message: acting on its term would let anyone bump ours.
        if from == config.id() || !config.is_voter(from) {
            return;
        }
        // Nor is one that contradicts its own envelope: a RequestVote whose
        // candidateId, or an AppendEntries whose leaderId, is not its sender.
        // No server following the protocol sends it, and Figure 2's rules assume
        // well-formed RPCs, so it is dropped before its term is read, in every
        // role: it neither raises our term nor deposes a leader.
        let names_its_sender = match message {
            Message::RequestVote { candidate_id, .. } => candidate_id == from,
            Message::AppendEntries { leader_id, .. } => leader_id == from,
            Message::RequestVoteResponse { .. } | Message::AppendEntriesResponse { .. } => true,
        };
        if !names_its_sender {
            return;
        }
        let term = message.term();
        if term > self.current_term {
            // Figure 2, all servers: "If RPC request or response contains term
            // T > currentTerm: set currentTerm = T, convert to follower" (§5.1).
            // The leader is unknown until an AppendEntries of this term names it.
            self.become_follower(config, term, out);
        } else if term < self.current_term {
            self.reply_to_stale(from, message, out);
            return;
        }
        debug_assert_eq!(term, self.current_term);

        match message {
            Message::RequestVote {
                candidate_id,
                last_log_index,
                last_log_term,
                ..
            } => {
                let candidate_log = LogSummary {
                    last_log_index,
                    last_log_term,
                };
                self.handle_request_vote(config, candidate_id, candidate_log, out);
            }
            _ => match self.role {
                Role::Follower => self.step_follower(config, message, out),
                Role::Candidate => self.step_candidate(config, from, message, out),
                Role::Leader => self.step_leader(from, message, out),
            },
        }
    }

    /// A message from an older term. Requests get our term back so a stale
    /// candidate or leader learns it and steps down (§5.1: "If a server receives
    /// a request with a stale term number, it rejects the request"). Responses
    /// answer a question of a past term and are dropped.
    fn reply_to_stale(&mut self, from: NodeId, message: Message, out: &mut Vec<Output>) {
        let term = self.current_term;
        let reply = match message {
            Message::RequestVote { .. } => Message::RequestVoteResponse {
                term,
                vote_granted: false,
            },
            Message::AppendEntries { .. } => Message::AppendEntriesResponse {
                term,
                success: false,
            },
            Message::RequestVoteResponse { .. } | Message::AppendEntriesResponse { .. } => return,
        };
        out.push(Output::Send {
            to: from,
            message: reply,
        });
    }

    /// RequestVote of the current term from `candidate_id`, its sender, in any
    /// role (Figure 2, RequestVote RPC).
    fn handle_request_vote(
        &mut self,
        config: &Config,
        candidate_id: NodeId,
        candidate_log: LogSummary,
        out: &mut Vec<Output>,
    ) {
        // We can vote if this is a repeat of the vote we already cast (a lost or
        // duplicated request), or if we have not voted and know no leader of this
        // term. Figure 2 only asks "votedFor is null or candidateId"; refusing once
        // a leader is known is etcd's extra rule. It costs nothing: that leader
        // won with a majority, and each voter votes once per term, so no other
        // candidate of the term can reach one (§5.2); granting would be useless.
        // Candidates and leaders voted for themselves, so they always refuse others.
        let can_vote = self.voted_for == Some(candidate_id)
            || (self.voted_for.is_none() && self.leader_id.is_none());
        // Election restriction (§5.4.1): never help a candidate whose log is
        // behind ours, so a leader always holds every committed entry.
        let log_ok = candidate_log.is_at_least_as_up_to_date_as(self.log);
        let vote_granted = can_vote && log_ok;
        if vote_granted {
            self.voted_for = Some(candidate_id);
            // Figure 2, followers: reset the election timer when "granting vote to
            // candidate", not on every RequestVote or higher term (etcd resets on
            // every term bump), or a candidate we refuse (an out-of-date log,
            // §5.4.1) could keep us from ever campaigning.
            self.arm_election_timer(config, out);
        }
        out.push(Output::Send {
            to: candidate_id,
            message: Message::RequestVoteResponse {
                term: self.current_term,
                vote_granted,
            },
        });
    }

    fn step_follower(&mut self, config: &Config, message: Message, out: &mut Vec<Output>) {
        match message {
            Message::AppendEntries { leader_id, .. } => {
                self.handle_append_entries(config, leader_id, out);
            }
            // Answers to a campaign or leadership of this term that we already gave up.
            Message::RequestVoteResponse { .. } | Message::AppendEntriesResponse { .. } => {}
            Message::RequestVote { .. } => unreachable!("handled before role dispatch"),
        }
    }

    fn step_candidate(
        &mut self,
        config: &Config,
        from: NodeId,
        message: Message,
        out: &mut Vec<Output>,
    ) {
        match message {
            Message::RequestVoteResponse { vote_granted, .. } => {
                // Count distinct voters of this term only: `step` dropped older
                // terms and a set ignores a duplicated grant (§5.2).
                if vote_granted {
                    self.votes_granted.insert(from);
                    if self.votes_granted.len() >= config.quorum() {
                        self.become_leader(config, out);
                    }
                }
            }
            Message::AppendEntries { leader_id, .. } => {
                // §5.2: "If the leader's term is at least as large as the candidate's
                // current term, then the candidate recognizes the leader as
                // legitimate and returns to follower state." The term is equal here.
                self.become_follower(config, self.current_term, out);
                self.handle_append_entries(config, leader_id, out);
            }
            Message::AppendEntriesResponse { .. } => {}
            Message::RequestVote { .. } => unreachable!("handled before role dispatch"),
        }
    }

    fn step_leader(&mut self, from: NodeId, message: Message, out: &mut Vec<Output>) {
        match message {
            // Another leader of our own term cannot exist (election safety, §5.2);
            // only a forged message gets here. Refuse it and change nothing.
            Message::AppendEntries { .. } => out.push(Output::Send {
                to: from,
                message: Message::AppendEntriesResponse {
                    term: self.current_term,
                    success: false,
                },
            }),
            // Late votes after winning, and heartbeat acknowledgements: with no log
            // to replicate there is nothing to do with either.
            Message::RequestVoteResponse { .. } | Message::AppendEntriesResponse { .. } => {}
            Message::RequestVote { .. } => unreachable!("handled before role dispatch"),
        }
    }

    /// A heartbeat of the current term from `leader_id`, its sender, reaching a
    /// follower.
    fn handle_append_entries(&mut self, config: &Config, leader_id: NodeId, out: &mut Vec<Output>) {
        debug_assert_eq!(self.role, Role::Follower);
        // A term has one leader: a heartbeat that contradicts the leader we know
        // is forged, so it neither resets our timer nor changes whom we follow.
        let valid = self.leader_id.is_none_or(|known| known == leader_id);
        if valid {
            self.leader_id = Some(leader_id);
            // Figure 2, followers: a valid AppendEntries from the current leader
            // postpones the next election.
            self.arm_election_timer(config, out);
        }
        out.push(Output::Send {
            to: leader_id,
            message: Message::AppendEntriesResponse {
                term: self.current_term,
                success: valid,
            },
        });
    }

    fn handle_election_timeout(&mut self, config: &Config, out: &mut Vec<Output>) {
        match self.role {
            // A leader's election timer was cancelled; a late expiry is stale.
            Role::Leader => {}
            // Figure 2: a follower that hears nothing becomes a candidate; a
            // candidate whose election timed out (a split vote) starts another.
            Role::Follower | Role::Candidate => self.become_candidate(config, out),
        }
    }

    fn handle_heartbeat_timeout(&mut self, config: &Config, out: &mut Vec<Output>) {
        // Only a leader has a heartbeat timer; an expiry after stepping down is stale.
        if self.role == Role::Leader {
            self.broadcast_heartbeat(config, out);
            self.arm_heartbeat_timer(config, out);
        }
    }

    /// Converts to follower of `term`, forgetting the vote if the term is new.
    fn become_follower(&mut self, config: &Config, term: Term, out: &mut Vec<Output>) {
        debug_assert!(term >= self.current_term, "terms never go back");
        let was_leader = self.role == Role::Leader;
        if term > self.current_term {
            self.current_term = term;
            self.voted_for = None;
            self.leader_id = None;
        }
        self.role = Role::Follower;
        self.votes_granted.clear();
        if was_leader {
            // A follower needs an election timer; a leader had none running.
            out.push(Output::CancelTimer(Timer::Heartbeat));
            self.arm_election_timer(config, out);
        }
        // A candidate or follower keeps its running election timer: Figure 2
        // resets it only on granting a vote or hearing the current leader, and a
        // higher term alone is neither (etcd's `becomeFollower` does reset it).
    }

    /// §5.2: "a follower increments its current term and transitions to
    /// candidate state. It then votes for itself and issues RequestVote RPCs".
    fn become_candidate(&mut self, config: &Config, out: &mut Vec<Output>) {
        debug_assert_ne!(
            self.role,
            Role::Leader,
            "invalid transition leader -> candidate"
        );
        // Terms exhausted (only reachable through a forged term near u64::MAX): no
        // election can start without wrapping around, which would break safety.
        // Keep the role (a candidate may still win its term with late votes) and
        // re-arm the timer, so no follower or candidate is left without one.
        let Some(term) = self.current_term.next() else {
            self.arm_election_timer(config, out);
            return;
        };
        self.current_term = term;
        self.voted_for = Some(config.id());
        self.role = Role::Candidate;
        self.leader_id = None;
        self.votes_granted.clear();
        self.votes_granted.insert(config.id());
        // A fresh randomized timeout per election is what breaks split votes (§5.2).
        self.arm_election_timer(config, out);
        if self.votes_granted.len() >= config.quorum() {
            // A single-node cluster wins on its own vote.
            self.become_leader(config, out);
            return;
        }
        let request = Message::RequestVote {
            term,
            candidate_id: config.id(),
            last_log_index: self.log.last_log_index,
            last_log_term: self.log.last_log_term,
        };
        for peer in config.peers() {
            out.push(Output::Send {
                to: peer,
                message: request,
            });
        }
    }

    /// On a majority (§5.2), become leader. Figure 2, "Rules for Servers:
    /// Leaders": "Upon election: send initial empty AppendEntries RPCs
    /// (heartbeat) to each server", at once, to stop new elections.
    fn become_leader(&mut self, config: &Config, out: &mut Vec<Output>) {
        assert_eq!(self.role, Role::Candidate, "only a candidate can win");
        debug_assert!(self.votes_granted.len() >= config.quorum());
        self.role = Role::Leader;
        self.leader_id = Some(config.id());
        self.votes_granted.clear();
        out.push(Output::CancelTimer(Timer::Election));
        self.broadcast_heartbeat(config, out);
        self.arm_heartbeat_timer(config, out);
    }

    fn broadcast_heartbeat(&self, config: &Config, out: &mut Vec<Output>) {
        let heartbeat = Message::AppendEntries {
            term: self.current_term,
            leader_id: config.id(),
        };
        for peer in config.peers() {
            out.push(Output::Send {
                to: peer,
                message: heartbeat,
            });
        }
    }

    fn arm_role_timer(&self, config: &Config, out: &mut Vec<Output>) {
        match self.role {
            Role::Follower | Role::Candidate => self.arm_election_timer(config, out),
            Role::Leader => self.arm_heartbeat_timer(config, out),
        }
    }

    fn arm_election_timer(&self, config: &Config, out: &mut Vec<Output>) {
        let timing = config.timing();
        out.push(Output::SetTimer {
            timer: Timer::Election,
            min: timing.election_timeout_min,
            max: timing.election_timeout_max,
        });
    }

    fn arm_heartbeat_timer(&self, config: &Config, out: &mut Vec<Output>) {
        let interval = config.timing().heartbeat_interval;
        out.push(Output::SetTimer {
            timer: Timer::Heartbeat,
            min: interval,
            max: interval,
        });
    }
}

#[cfg(test)]
mod map_ids_tests {
    use super::*;
    use crate::config::Timing;

    /// n0 -> n2, n1 -> n0, n2 -> n1.
    fn rotate(id: NodeId) -> NodeId {
        NodeId((id.0 + 2) % 3)
    }

    fn rename_output(output: Output) -> Output {
        match output {
            Output::Persist(hard_state) => Output::Persist(HardState {
                voted_for: hard_state.voted_for.map(rotate),
                ..hard_state
            }),
            Output::Send { to, message } => Output::Send {
                to: rotate(to),
                message: message.map_ids(rotate),
            },
            other => other,
        }
    }

    /// Symmetry reduction is sound only if renaming commutes with stepping:
    /// the renamed node fed renamed inputs ends where the original, renamed, ends.
    #[test]
    fn renaming_ids_commutes_with_every_step_of_an_election() {
        let configs = Config::cluster(3, Timing::default()).unwrap();
        let (original_config, renamed_config) = (&configs[0], &configs[2]);
        let grant = |term| Message::RequestVoteResponse {
            term: Term(term),
            vote_granted: true,
        };
        let inputs = [
            Input::Start,
            Input::Receive {
                from: NodeId(1),
                message: Message::RequestVote {
                    term: Term(1),
                    candidate_id: NodeId(1),
                    last_log_index: 0,
                    last_log_term: Term(0),
                },
            },
            Input::Timeout(Timer::Election),
            Input::Receive {
                from: NodeId(2),
                message: grant(2),
            },
            Input::Timeout(Timer::Heartbeat),
            Input::Receive {
                from: NodeId(1),
                message: Message::AppendEntries {
                    term: Term(3),
                    leader_id: NodeId(1),
                },
            },
        ];
        let (mut original, mut renamed) = (Node::new(), Node::new());
        for input in inputs {
            let renamed_input = match input {
                Input::Receive { from, message } => Input::Receive {
                    from: rotate(from),
                    message: message.map_ids(rotate),
                },
                other => other,
            };
            let (mut original_out, mut renamed_out) = (Vec::new(), Vec::new());
            original.step(original_config, input, &mut original_out);
            renamed.step(renamed_config, renamed_input, &mut renamed_out);
            assert_eq!(renamed, original.map_ids(rotate), "after {input:?}");
            let expected: Vec<Output> = original_out.into_iter().map(rename_output).collect();
            assert_eq!(renamed_out, expected, "outputs of {input:?}");
        }
        // The script went through every role, so every id field was exercised.
        assert_eq!(original.role(), Role::Follower);
        assert_eq!(renamed.leader_id(), Some(NodeId(0)));
    }

    #[test]
    fn renaming_ids_rewrites_the_vote_the_leader_and_the_granted_votes() {
        let configs = Config::cluster(3, Timing::default()).unwrap();
        let mut node = Node::new();
        let mut out = Vec::new();
        node.step(&configs[0], Input::Timeout(Timer::Election), &mut out);
        let renamed = node.map_ids(rotate);
        assert_eq!(renamed.voted_for(), Some(NodeId(2)));
        assert_eq!(renamed.votes_granted(), &BTreeSet::from([NodeId(2)]));
        assert_eq!(renamed.current_term(), node.current_term());
        assert_eq!(renamed.map_ids(rotate).map_ids(rotate), node);
    }
}
