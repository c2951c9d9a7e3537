//! The sans-IO election core: one Raft node as a pure state machine.
//!
//! [`Node::step`] takes one [`Input`] and appends the resulting [`Output`]s.
//! It reads no clock, draws no random number and does no I/O: a driver (the
//! Tokio runtime, the simulator, the model checker, the fuzzer) owns all of
//! that. Every election rule of this crate lives in this file, those of the
//! thesis' features ([`crate::config::Features`]) included.
//!
//! The shape follows etcd's `raft.go`: `step` settles the term first, the way
//! Figure 2's "Rules for Servers: All Servers" says, then dispatches on the role.
//! One difference: a higher term alone does not restart the election timer
//! here. Figure 2 resets it only on "receiving AppendEntries RPC from current
//! leader or granting vote to candidate", whereas etcd's `becomeFollower`
//! calls `reset`, which restarts it on every term bump.
//!
//! Three messages are looked at before the term is settled, because their
//! term is not the sender's: a PreVote names the term its sender *would*
//! campaign in, a granted PreVoteResponse echoes it, and a RequestVote that
//! a node ignores under its lease must not move its term either (§9.6,
//! §4.2.3). A TimeoutNow acts only on the term it names.

use crate::config::Config;
use crate::message::Message;
use crate::types::{HardState, LogSummary, NodeId, Role, Term, Ticks};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// A RequestVote's fields that decide the vote.
#[derive(Clone, Copy)]
struct VoteRequest {
    candidate_id: NodeId,
    candidate_log: LogSummary,
    leadership_transfer: bool,
}

/// The timers a node may ask its driver to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum Timer {
    /// Followers, pre-candidates and candidates: start an election (or, with
    /// Pre-Vote, a pre-vote) when it fires (§5.2).
    Election,
    /// Leaders: send the next round of heartbeats when it fires (§5.2).
    Heartbeat,
    /// Followers, with Pre-Vote or lease-guarded votes: runs for the minimum
    /// election timeout after the leader was last heard. While it runs the
    /// node will not help depose that leader (§4.2.3, §9.6). Its expiry
    /// sends nothing and arms nothing ([`Self::is_deferrable`]).
    Lease,
    /// Leaders, with CheckQuorum: ticks once per heartbeat interval. At each
    /// tick the leader steps down unless it heard a majority (itself
    /// included) within the last window of ticks, the fewest that cover the
    /// minimum election timeout (§6.2). A sliding window: a leader cut off
    /// steps down about one election timeout after it last heard a majority,
    /// whatever the moment of the cut.
    CheckQuorum,
    /// Leaders with a leadership transfer in progress: abandon it when it
    /// fires, one election timeout (the minimum) after it began (§3.10).
    Transfer,
}

impl Timer {
    /// Every timer, in a fixed order ([`Self::index`]).
    pub const ALL: [Self; 5] = [
        Self::Election,
        Self::Heartbeat,
        Self::Lease,
        Self::CheckQuorum,
        Self::Transfer,
    ];

    /// This timer's position in [`Self::ALL`]: for drivers that keep one
    /// slot per timer.
    #[must_use]
    pub fn index(self) -> usize {
        match self {
            Self::Election => 0,
            Self::Heartbeat => 1,
            Self::Lease => 2,
            Self::CheckQuorum => 3,
            Self::Transfer => 4,
        }
    }

    /// Whether a driver may deliver this timer's expiry late, just before the
    /// node's next input, instead of waking the node for it. True of
    /// [`Self::Lease`] alone: its expiry changes only what the node answers to
    /// the messages that come after it, and produces no output. A follower
    /// re-arms its lease on every heartbeat, so waking for it would cost a
    /// wake-up per election timeout per node for nothing.
    #[must_use]
    pub fn is_deferrable(self) -> bool {
        self == Self::Lease
    }
}

impl fmt::Display for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Election => "election",
            Self::Heartbeat => "heartbeat",
            Self::Lease => "lease",
            Self::CheckQuorum => "check-quorum",
            Self::Transfer => "transfer",
        })
    }
}

/// Everything that can happen to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
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
    /// The node's own side (an operator, a graceful shutdown) asks it, if it
    /// leads, to hand leadership to `to` (§3.10; with
    /// [`crate::config::Features::leadership_transfer`] on, ignored otherwise).
    TransferLeadership {
        /// The node that should lead next.
        to: NodeId,
    },
}

impl Input {
    /// This input with every node id it names renamed by `rename` (a trace
    /// replayed where the nodes have other ids; see [`Node::map_ids`]).
    #[must_use]
    pub fn map_ids(self, rename: impl Fn(NodeId) -> NodeId) -> Self {
        match self {
            Self::Start | Self::Timeout(_) => self,
            Self::Receive { from, message } => Self::Receive {
                from: rename(from),
                message: message.map_ids(rename),
            },
            Self::TransferLeadership { to } => Self::TransferLeadership { to: rename(to) },
        }
    }
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
    /// Leader, with the leader lease: heartbeat round `round` of this
    /// leadership starts now, before its heartbeats are sent. The driver
    /// notes its clock: a later [`Output::LeaseExtended`] may be measured
    /// from this instant.
    RoundStarted {
        /// The round, counted from 1 in each leadership.
        round: u64,
    },
    /// Leader, with the leader lease: a majority (itself included)
    /// acknowledged round `round`, so this node holds the lease until
    /// `duration` after that round started, by its own clock (thesis
    /// §6.4.1; `proofs.md`, "Leader lease"), unless [`Output::LeaseRevoked`]
    /// comes first. Never measured from now: the round started earlier.
    LeaseExtended {
        /// The acknowledged round, one the driver saw start.
        round: u64,
        /// [`Config::lease_duration`].
        duration: Duration,
    },
    /// With the leader lease: this node holds no lease from now on (it
    /// stopped leading, or is about to hand leadership over). Executed
    /// before any later output of the same step.
    LeaseRevoked,
}

/// The state of one Raft node, restricted to leader election.
///
/// Deliberately holds neither its own id nor the membership: those live in
/// [`Config`], passed to every step, so the state hashes small and nodes are
/// interchangeable for the model checker's symmetry reduction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    // Persistent state on all servers (Figure 2).
    current_term: Term,
    voted_for: Option<NodeId>,
    // Volatile state.
    role: Role,
    /// The leader of `current_term` if this node knows it (AppendEntries' `leaderId`).
    leader_id: Option<NodeId>,
    /// Candidate: distinct voters that granted their vote in `current_term`;
    /// pre-candidate: distinct voters that granted a pre-vote for the next
    /// term. This node included; empty in the other roles.
    votes_granted: BTreeSet<NodeId>,
    /// Follower, when [`crate::config::Features::keeps_lease`]: the leader of `current_term`
    /// was heard within the minimum election timeout (its [`Timer::Lease`]
    /// runs). False in every other role.
    lease: bool,
    /// Leader, with CheckQuorum: each peer heard within the window, with
    /// the [`Timer::CheckQuorum`] ticks since it was last heard (0: none
    /// since). A peer leaves it when its count passes the window, so every
    /// count is at most the window. Empty otherwise.
    heard_from: BTreeMap<NodeId, Ticks>,
    /// Leader, with a leadership transfer in progress: its target.
    transfer_target: Option<NodeId>,
    /// Leader, with the leader lease: its latest heartbeat round (0 before
    /// the first and in every other role).
    round: u64,
    /// Leader, with the leader lease: the latest round each peer acknowledged.
    acked_rounds: BTreeMap<NodeId, u64>,
    /// Leader, with the leader lease: the latest round a majority
    /// acknowledged, reported in an [`Output::LeaseExtended`].
    lease_round: Option<u64>,
    /// Leader, with the leader lease: it asked a follower to campaign
    /// (TimeoutNow). The follower may act on it at any later time, bypassing
    /// every vote guard, so this leader holds no lease again in its term.
    lease_surrendered: bool,
    /// Constant for this crate: no log is replicated (see [`LogSummary`]).
    log: LogSummary,
}

/// Hashes every field, in few wide writes: the model checker hashes
/// millions of nodes, and a hasher's cost is per write (a derived `Hash`
/// made about twenty). The stream is prefix-free: the length of each
/// collection comes before its elements, so unequal nodes write unequal
/// streams.
impl Hash for Node {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // 0 for none, else the id plus one: 9 bits.
        let id = |id: Option<NodeId>| id.map_or(0, |id| u64::from(id.0) + 1);
        // A collection of ids holds at most 256: 9 bits.
        let len = |len: usize| u64::try_from(len).unwrap_or(u64::MAX) & 0x1ff;
        let flags = self.role as u64
            | id(self.voted_for) << 2
            | id(self.leader_id) << 11
            | id(self.transfer_target) << 20
            | u64::from(self.lease) << 29
            | u64::from(self.lease_surrendered) << 30
            | u64::from(self.lease_round.is_some()) << 31
            | len(self.votes_granted.len()) << 32
            | len(self.heard_from.len()) << 41
            | len(self.acked_rounds.len()) << 50;
        state.write_u64(self.current_term.0);
        state.write_u64(flags);
        state.write_u128(
            u128::from(self.log.last_log_index) << 64 | u128::from(self.log.last_log_term.0),
        );
        state.write_u128(u128::from(self.round) << 64 | u128::from(self.lease_round.unwrap_or(0)));
        // Eight ids a word.
        let (mut word, mut in_word) = (0_u64, 0);
        for id in &self.votes_granted {
            word = word << 8 | u64::from(id.0);
            in_word += 1;
            if in_word == 8 {
                state.write_u64(word);
                (word, in_word) = (0, 0);
            }
        }
        if in_word > 0 {
            state.write_u64(word);
        }
        for (id, ticks) in &self.heard_from {
            state.write_u128(u128::from(id.0) << 64 | u128::from(ticks.0));
        }
        for (id, round) in &self.acked_rounds {
            state.write_u128(u128::from(id.0) << 64 | u128::from(*round));
        }
    }
}

impl Node {
    /// A node that has never run: term 0, no vote, an empty log.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A node restarted from the hard state it persisted, with log summary `log`.
    ///
    /// Everything volatile starts over: the node is a follower that knows no
    /// leader and holds no lease.
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

    /// Follower, pre-candidate, candidate or leader.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// The leader of the current term, if this node knows it (itself, if leader).
    #[must_use]
    pub fn leader_id(&self) -> Option<NodeId> {
        self.leader_id
    }

    /// A candidate's granted votes in its current term, or a pre-candidate's
    /// granted pre-votes for the next (empty in other roles).
    #[must_use]
    pub fn votes_granted(&self) -> &BTreeSet<NodeId> {
        &self.votes_granted
    }

    /// Whether this follower heard the leader of its term within the minimum
    /// election timeout ([`Timer::Lease`] runs). Only with
    /// [`crate::config::Features::keeps_lease`]; a leader is its own current leader and
    /// needs no flag.
    #[must_use]
    pub fn in_lease(&self) -> bool {
        self.lease
    }

    /// A leader's peers heard within its CheckQuorum window, each with the
    /// CheckQuorum ticks since it was last heard (empty in other roles and
    /// without CheckQuorum).
    #[must_use]
    pub fn heard_from(&self) -> &BTreeMap<NodeId, Ticks> {
        &self.heard_from
    }

    /// The node a leader is handing leadership to, if a transfer is in progress.
    #[must_use]
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer_target
    }

    /// A leader's latest heartbeat round acknowledged by a majority, for
    /// which it holds (or held) the leader lease; `None` in other roles.
    #[must_use]
    pub fn lease_round(&self) -> Option<u64> {
        self.lease_round
    }

    /// A leader's latest heartbeat round (0 without the leader lease).
    #[must_use]
    pub fn round(&self) -> u64 {
        self.round
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
            heard_from: self
                .heard_from
                .iter()
                .map(|(&peer, &ticks)| (rename(peer), ticks))
                .collect(),
            acked_rounds: self
                .acked_rounds
                .iter()
                .map(|(&peer, &round)| (rename(peer), round))
                .collect(),
            transfer_target: self.transfer_target.map(&rename),
            ..self.clone()
        }
    }

    /// Applies the election rules to one input, appending the resulting
    /// sends and timer changes to `out`. [`Node::step`] wraps it with the
    /// output contract (the persist first) and the debug-build checks.
    pub(crate) fn apply(&mut self, config: &Config, input: Input, out: &mut Vec<Output>) {
        match input {
            Input::Start => self.handle_start(config, out),
            Input::Timeout(Timer::Election) => self.handle_election_timeout(config, out),
            Input::Timeout(Timer::Heartbeat) => self.handle_heartbeat_timeout(config, out),
            Input::Timeout(Timer::Lease) => self.handle_lease_timeout(),
            Input::Timeout(Timer::CheckQuorum) => self.handle_check_quorum_timeout(config, out),
            Input::Timeout(Timer::Transfer) => self.handle_transfer_timeout(),
            Input::Receive { from, message } => self.handle_message(config, from, message, out),
            Input::TransferLeadership { to } => self.handle_transfer_request(config, to, out),
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
        // Nor is one that contradicts its own envelope: a RequestVote or
        // PreVote whose candidateId, or an AppendEntries whose leaderId, is
        // not its sender. No server following the protocol sends it, and
        // Figure 2's rules assume well-formed RPCs, so it is dropped before
        // its term is read, in every role: it neither raises our term nor
        // deposes a leader.
        if !message.names_sender(from) {
            return;
        }
        // Nor is one above the term ceiling: no correct server reaches it
        // (`Term::next` stops at the ceiling), and adopting it would leave
        // this node with a state file its restart refuses.
        if message.term() > Term::CEILING {
            return;
        }
        match message {
            // §9.6: a pre-vote is answered without adopting its term, which is
            // only the term its sender would campaign in.
            Message::PreVote {
                term,
                candidate_id,
                last_log_index,
                last_log_term,
            } => {
                let candidate_log = LogSummary {
                    last_log_index,
                    last_log_term,
                };
                return self.handle_pre_vote(candidate_id, term, candidate_log, out);
            }
            // A grant echoes the term we asked about, one above ours: it is no
            // news of a higher term. (A refusal carries the voter's term, and
            // is settled like any message below.)
            Message::PreVoteResponse {
                term,
                vote_granted: true,
            } => return self.handle_pre_vote_grant(config, from, term, out),
            // §4.2.3: "If a server receives a RequestVote request within the
            // minimum election timeout of hearing from a current leader, it
            // does not update its term or grant its vote", unless the leader
            // itself asked for the election (a transfer).
            Message::RequestVote {
                term,
                leadership_transfer: false,
                ..
            } if term > self.current_term && self.ignores_votes_under_lease(config) => return,
            // §3.10: the leader of our term asks us to campaign now. One of a
            // term we have not reached comes from no leader we know: its term
            // is adopted below, like any message's, and the request ignored.
            Message::TimeoutNow { term } if term == self.current_term => {
                return self.handle_timeout_now(config, from, out);
            }
            _ => {}
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
                leadership_transfer,
                ..
            } => {
                let candidate_log = LogSummary {
                    last_log_index,
                    last_log_term,
                };
                let request = VoteRequest {
                    candidate_id,
                    candidate_log,
                    leadership_transfer,
                };
                self.handle_request_vote(config, request, out);
            }
            // A refused pre-vote of our own term, and a TimeoutNow whose term
            // was news to us (adopted above): nothing more to do.
            Message::PreVoteResponse { .. } | Message::TimeoutNow { .. } => {}
            Message::PreVote { .. } => unreachable!("answered before the term is settled"),
            _ => match self.role {
                Role::Follower => self.step_follower(config, message, out),
                Role::PreCandidate | Role::Candidate => {
                    self.step_candidate(config, from, message, out);
                }
                Role::Leader => self.step_leader(config, from, message, out),
            },
        }
    }

    /// Whether a RequestVote of a higher term is ignored: with lease-guarded
    /// votes, by a leader (the current leader, heard by itself) or a follower
    /// that heard its leader within the minimum election timeout.
    fn ignores_votes_under_lease(&self, config: &Config) -> bool {
        config.features().lease_guarded_votes && (self.role == Role::Leader || self.lease)
    }

    /// A message from an older term. Requests get our term back so a stale
    /// candidate or leader learns it and steps down (§5.1: "If a server receives
    /// a request with a stale term number, it rejects the request"). Responses
    /// answer a question of a past term and are dropped, and so is a
    /// TimeoutNow of a past leader.
    fn reply_to_stale(&self, from: NodeId, message: Message, out: &mut Vec<Output>) {
        let term = self.current_term;
        let reply = match message {
            Message::RequestVote { .. } => Message::RequestVoteResponse {
                term,
                vote_granted: false,
            },
            Message::AppendEntries { round, .. } => self.append_entries_response(false, round),
            Message::RequestVoteResponse { .. }
            | Message::AppendEntriesResponse { .. }
            | Message::PreVoteResponse { .. }
            | Message::TimeoutNow { .. } => return,
            Message::PreVote { .. } => unreachable!("answered before the term is settled"),
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
        request: VoteRequest,
        out: &mut Vec<Output>,
    ) {
        let VoteRequest {
            candidate_id,
            candidate_log,
            leadership_transfer,
        } = request;
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
        // With the leader lease, a node that heard a leader (of any term) or
        // restarted within the minimum election timeout votes for no one but
        // a transfer's candidate, whatever term it has adopted since: a
        // leader counts on that to hold its lease (proofs.md, "Leader lease").
        let guarded = config.lease_duration().is_some() && self.lease && !leadership_transfer;
        let vote_granted = can_vote && log_ok && !guarded;
        if vote_granted {
            // A pre-candidate that votes for a candidate of its term backs that
            // campaign and gives up its own.
            if self.role == Role::PreCandidate {
                self.role = Role::Follower;
                self.votes_granted.clear();
            }
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

    /// A PreVote from `candidate_id` for `term`, in any role (§9.6). Answering
    /// changes nothing here, whatever the answer: that is the point of it.
    fn handle_pre_vote(
        &self,
        candidate_id: NodeId,
        term: Term,
        candidate_log: LogSummary,
        out: &mut Vec<Output>,
    ) {
        // §9.6: a voter agrees only if the candidate's log is at least as up to
        // date as its own (§5.4.1) and it has not heard from a leader within
        // the minimum election timeout. A leader is one; a follower knows by
        // its lease.
        let heard_leader = self.role == Role::Leader || self.lease;
        let up_to_date = candidate_log.is_at_least_as_up_to_date_as(self.log);
        // A term beyond ours: nothing we did in our term stands in the way. Our
        // own term: only if a real vote could be granted in it now.
        let could_vote = match term.cmp(&self.current_term) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Equal => {
                self.voted_for.is_none_or(|v| v == candidate_id) && self.leader_id.is_none()
            }
            std::cmp::Ordering::Less => false,
        };
        let vote_granted = could_vote && up_to_date && !heard_leader;
        // A grant carries the term it grants, not ours: a voter behind in terms
        // would otherwise answer with a term the candidate drops as stale, and
        // a cluster with a node behind could never collect a quorum. A refusal
        // carries our term, and is sent only if that term is news to the
        // candidate (at least the one it asks about): it then adopts it. Any
        // other refusal would change nothing there, so silence says it, as
        // etcd's silence within the lease does.
        if vote_granted || self.current_term >= term {
            let term = if vote_granted {
                term
            } else {
                self.current_term
            };
            out.push(Output::Send {
                to: candidate_id,
                message: Message::PreVoteResponse { term, vote_granted },
            });
        }
    }

    /// A granted PreVoteResponse for `term` from `from`.
    fn handle_pre_vote_grant(
        &mut self,
        config: &Config,
        from: NodeId,
        term: Term,
        out: &mut Vec<Output>,
    ) {
        // Only a pre-candidate counts pre-votes, and only for the term it asks
        // about; a grant from an earlier round (when its term was lower) is stale.
        if self.role != Role::PreCandidate || self.current_term.next() != Some(term) {
            return;
        }
        self.votes_granted.insert(from);
        if self.votes_granted.len() >= config.quorum() {
            // §9.6: "Only if the candidate believed it could get votes from a
            // majority of the cluster would it increment its term and start a
            // normal election."
            self.become_candidate(config, false, out);
        }
    }

    /// TimeoutNow of the current term from `from` (§3.10).
    fn handle_timeout_now(&mut self, config: &Config, from: NodeId, out: &mut Vec<Output>) {
        // "This request has the same effect as the target server's election
        // timer firing": a follower of the sender (or of no known leader yet)
        // campaigns at once, bypassing Pre-Vote. Anyone else was not asked by
        // the leader of this term: a candidate is already campaigning, and
        // another leader of our term cannot exist.
        let asked_by_leader = self.leader_id.is_none_or(|leader| leader == from);
        if config.features().leadership_transfer && self.role == Role::Follower && asked_by_leader {
            self.become_candidate(config, true, out);
        }
    }

    fn step_follower(&mut self, config: &Config, message: Message, out: &mut Vec<Output>) {
        match message {
            Message::AppendEntries {
                leader_id, round, ..
            } => {
                self.handle_append_entries(config, leader_id, round, out);
            }
            // Answers to a campaign or leadership of this term that we already gave up.
            Message::RequestVoteResponse { .. } | Message::AppendEntriesResponse { .. } => {}
            _ => unreachable!("handled before role dispatch"),
        }
    }

    /// A candidate's or a pre-candidate's message of its current term.
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
                // terms and a set ignores a duplicated grant (§5.2). A
                // pre-candidate that was a candidate of this term before it
                // timed out no longer counts them: it voted for itself in a
                // campaign it gave up.
                if vote_granted && self.role == Role::Candidate {
                    self.votes_granted.insert(from);
                    if self.votes_granted.len() >= config.quorum() {
                        self.become_leader(config, out);
                    }
                }
            }
            Message::AppendEntries {
                leader_id, round, ..
            } => {
                // §5.2: "If the leader's term is at least as large as the candidate's
                // current term, then the candidate recognizes the leader as
                // legitimate and returns to follower state." The term is equal here.
                // A pre-candidate hearing the leader of its term does the same: the
                // leader it thought lost is alive (§9.6).
                self.become_follower(config, self.current_term, out);
                self.handle_append_entries(config, leader_id, round, out);
            }
            Message::AppendEntriesResponse { .. } => {}
            _ => unreachable!("handled before role dispatch"),
        }
    }

    fn step_leader(
        &mut self,
        config: &Config,
        from: NodeId,
        message: Message,
        out: &mut Vec<Output>,
    ) {
        match message {
            // Another leader of our own term cannot exist (election safety, §5.2);
            // only a forged message gets here. Refuse it and change nothing.
            Message::AppendEntries { round, .. } => out.push(Output::Send {
                to: from,
                message: self.append_entries_response(false, round),
            }),
            Message::AppendEntriesResponse {
                success: true,
                last_log_index,
                last_log_term,
                round,
                ..
            } => {
                let peer_log = LogSummary {
                    last_log_index,
                    last_log_term,
                };
                self.record_round_ack(config, from, round, out);
                self.handle_heartbeat_ack(config, from, peer_log, out);
            }
            // Late votes after winning, and refusals no follower of our term
            // sends: nothing to do with either.
            Message::RequestVoteResponse { .. } | Message::AppendEntriesResponse { .. } => {}
            _ => unreachable!("handled before role dispatch"),
        }
    }

    /// A follower of our term acknowledged a heartbeat, reporting its log.
    fn handle_heartbeat_ack(
        &mut self,
        config: &Config,
        from: NodeId,
        peer_log: LogSummary,
        out: &mut Vec<Output>,
    ) {
        if config.features().check_quorum {
            self.heard_from.insert(from, Ticks(0));
        }
        if self.transfer_target != Some(from) {
            return;
        }
        if peer_log.is_at_least_as_up_to_date_as(self.log) {
            // The target campaigns on TimeoutNow at once, and the voters grant
            // a transfer's candidate their vote within any guard: the lease
            // ends before the request leaves, for the rest of this term, since
            // the request may arrive at any later time.
            if config.lease_duration().is_some() && !self.lease_surrendered {
                self.lease_surrendered = true;
                self.lease_round = None;
                out.push(Output::LeaseRevoked);
            }
            // §3.10 step 3: "The prior leader sends a TimeoutNow request to the
            // target server." Sent on each acknowledgement until the transfer
            // ends; the target acts on the first, and its new term makes the
            // rest stale.
            out.push(Output::Send {
                to: from,
                message: Message::TimeoutNow {
                    term: self.current_term,
                },
            });
        } else {
            // §3.10 step 2: the leader would first bring the target's log up to
            // date. No log is replicated here, so a target that is behind never
            // catches up: the transfer is refused now rather than left to time
            // out (the target could not win the votes of §5.4.1 anyway).
            self.transfer_target = None;
            out.push(Output::CancelTimer(Timer::Transfer));
        }
    }

    /// A heartbeat of the current term from `leader_id`, its sender, reaching a
    /// follower.
    fn handle_append_entries(
        &mut self,
        config: &Config,
        leader_id: NodeId,
        round: u64,
        out: &mut Vec<Output>,
    ) {
        debug_assert_eq!(self.role, Role::Follower);
        // A term has one leader: a heartbeat that contradicts the leader we know
        // is forged, so it neither resets our timer nor changes whom we follow.
        let valid = self.leader_id.is_none_or(|known| known == leader_id);
        if valid {
            self.leader_id = Some(leader_id);
            // Figure 2, followers: a valid AppendEntries from the current leader
            // postpones the next election.
            self.arm_election_timer(config, out);
            if config.features().keeps_lease() {
                // The leader was heard now: for the minimum election timeout
                // this node will not help depose it (§4.2.3, §9.6).
                self.lease = true;
                let timeout = config.timing().election_timeout_min;
                self.arm_fixed_timer(Timer::Lease, timeout, out);
            }
        }
        out.push(Output::Send {
            to: leader_id,
            message: self.append_entries_response(valid, round),
        });
    }

    fn append_entries_response(&self, success: bool, round: u64) -> Message {
        Message::AppendEntriesResponse {
            term: self.current_term,
            success,
            last_log_index: self.log.last_log_index,
            last_log_term: self.log.last_log_term,
            round,
        }
    }

    fn handle_election_timeout(&mut self, config: &Config, out: &mut Vec<Output>) {
        match self.role {
            // A leader's election timer was cancelled; a late expiry is stale.
            Role::Leader => {}
            // Figure 2: a follower that hears nothing becomes a candidate; a
            // candidate whose election timed out (a split vote) starts another.
            // With Pre-Vote each first asks whether it could win (§9.6), a
            // timed-out candidate included (as etcd does): a candidate cut off
            // right after winning its pre-vote then stops raising its term.
            // With the leader lease, a follower whose vote guard still runs
            // does not campaign: the leader it heard counts on it. Its own
            // timer cannot expire sooner than the guard (both run the
            // minimum election timeout from the same heartbeat), so this
            // expiry was asked for by hand (an operator's campaign) or
            // tied with the guard's: it waits a new election timeout.
            Role::Follower if config.lease_duration().is_some() && self.lease => {
                self.arm_election_timer(config, out);
            }
            Role::Follower | Role::PreCandidate | Role::Candidate => {
                if config.features().pre_vote {
                    self.become_pre_candidate(config, out);
                } else {
                    self.become_candidate(config, false, out);
                }
            }
        }
    }

    fn handle_heartbeat_timeout(&mut self, config: &Config, out: &mut Vec<Output>) {
        // Only a leader has a heartbeat timer; an expiry after stepping down is stale.
        if self.role == Role::Leader {
            self.broadcast_heartbeat(config, out);
            self.arm_heartbeat_timer(config, out);
        }
    }

    /// The minimum election timeout has passed since the leader was last
    /// heard: from now on this follower will help elect another.
    fn handle_lease_timeout(&mut self) {
        self.lease = false;
    }

    /// A CheckQuorum tick of a leader: one heartbeat interval has passed.
    fn handle_check_quorum_timeout(&mut self, config: &Config, out: &mut Vec<Output>) {
        if self.role != Role::Leader || !config.features().check_quorum {
            return;
        }
        // Every peer was heard one tick longer ago. One last heard before
        // the latest `window` ticks, a whole window of heartbeat intervals
        // ago or more, no longer counts. Forgetting it, rather than counting
        // on, keeps each count within the window: the state stays finite.
        let window = config.check_quorum_window();
        self.heard_from.retain(|_, ticks| {
            ticks.0 = ticks.0.saturating_add(1);
            *ticks <= window
        });
        // §6.2: "a leader steps down if an election timeout elapses without a
        // successful round of heartbeats to a majority of its cluster". The
        // window covers the minimum election timeout, and slides: it is
        // asked at every tick, not once per timeout. Itself counts towards
        // the majority.
        if self.heard_from.len() + 1 >= config.quorum() {
            self.arm_check_quorum_timer(config, out);
        } else {
            // It stays in its term, a follower that knows no leader; the timer
            // that fired needs no cancelling.
            self.role = Role::Follower;
            self.leader_id = None;
            self.leave_leadership(config, false, out);
        }
    }

    /// The transfer in progress did not complete within an election timeout:
    /// abandon it and go on leading (§3.10).
    fn handle_transfer_timeout(&mut self) {
        if self.role == Role::Leader {
            self.transfer_target = None;
        }
    }

    /// The node's own side asks it to hand leadership to `to` (§3.10).
    fn handle_transfer_request(&mut self, config: &Config, to: NodeId, out: &mut Vec<Output>) {
        if !config.features().leadership_transfer || self.role != Role::Leader {
            return;
        }
        // Handing over to itself or to a non-member means nothing; asking again
        // for the target of the transfer in progress changes nothing (and does
        // not extend its deadline). Asking for another target replaces it.
        if to == config.id() || !config.is_voter(to) || self.transfer_target == Some(to) {
            return;
        }
        // "The prior leader stops accepting new client requests": this crate
        // takes none, and a leader starts no new term, so there is nothing to stop.
        self.transfer_target = Some(to);
        self.arm_fixed_timer(Timer::Transfer, config.timing().election_timeout_min, out);
        // Ask the target for its log now rather than at the next heartbeat: its
        // acknowledgement decides whether it gets TimeoutNow.
        out.push(Output::Send {
            to,
            message: Message::AppendEntries {
                term: self.current_term,
                leader_id: config.id(),
                round: self.round,
            },
        });
    }

    /// Converts to follower of `term`, forgetting the vote if the term is new.
    fn become_follower(&mut self, config: &Config, term: Term, out: &mut Vec<Output>) {
        debug_assert!(term >= self.current_term, "terms never go back");
        let was_leader = self.role == Role::Leader;
        if term > self.current_term {
            self.current_term = term;
            self.voted_for = None;
            self.leader_id = None;
            // The leader whose lease we held is not the leader of this term.
            // With the leader lease, the guard outlives the term: a higher
            // term learned from any message (a late reply, say) must not free
            // this vote while the leader we heard counts on it.
            if config.lease_duration().is_none() {
                self.end_lease(out);
            }
        }
        self.role = Role::Follower;
        self.votes_granted.clear();
        if was_leader {
            self.leave_leadership(config, true, out);
        }
        // A candidate or follower keeps its running election timer: Figure 2
        // resets it only on granting a vote or hearing the current leader, and a
        // higher term alone is neither (etcd's `becomeFollower` does reset it).
    }

    /// What a leader that became a follower gives up: its heartbeats, its
    /// CheckQuorum ticks (unless that timer just fired), a transfer in
    /// progress. A follower needs an election timer; a leader had none running.
    fn leave_leadership(&mut self, config: &Config, cancel_round: bool, out: &mut Vec<Output>) {
        if config.lease_duration().is_some() {
            out.push(Output::LeaseRevoked);
        }
        self.reset_rounds();
        out.push(Output::CancelTimer(Timer::Heartbeat));
        if cancel_round && config.features().check_quorum {
            out.push(Output::CancelTimer(Timer::CheckQuorum));
        }
        if self.transfer_target.take().is_some() {
            out.push(Output::CancelTimer(Timer::Transfer));
        }
        self.heard_from.clear();
        self.arm_election_timer(config, out);
    }

    /// Ends a follower's lease early: it campaigns, or the term moved on.
    fn end_lease(&mut self, out: &mut Vec<Output>) {
        if self.lease {
            self.lease = false;
            out.push(Output::CancelTimer(Timer::Lease));
        }
    }

    /// §9.6: before raising its term, ask every voter whether it would vote
    /// for this node in the next term.
    fn become_pre_candidate(&mut self, config: &Config, out: &mut Vec<Output>) {
        // At the term ceiling no election follows (see `become_candidate`).
        let Some(term) = self.current_term.next() else {
            self.arm_election_timer(config, out);
            return;
        };
        // A node that campaigns has given up on the leader it heard: it holds
        // no lease and forgets that leader, or two pre-candidates that both
        // still trusted a dead leader would refuse each other forever (etcd
        // issue 9586, fixed by etcd pull request 8334).
        self.end_lease(out);
        self.leader_id = None;
        self.role = Role::PreCandidate;
        self.votes_granted.clear();
        self.votes_granted.insert(config.id());
        // A fresh randomized timeout per round, as for an election (§5.2).
        self.arm_election_timer(config, out);
        if self.votes_granted.len() >= config.quorum() {
            // A single-node cluster needs no one's leave.
            self.become_candidate(config, false, out);
            return;
        }
        let request = Message::PreVote {
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

    /// §5.2: "a follower increments its current term and transitions to
    /// candidate state. It then votes for itself and issues RequestVote RPCs".
    /// `leadership_transfer`: the leader asked for this election (TimeoutNow).
    fn become_candidate(
        &mut self,
        config: &Config,
        leadership_transfer: bool,
        out: &mut Vec<Output>,
    ) {
        debug_assert_ne!(
            self.role,
            Role::Leader,
            "invalid transition leader -> candidate"
        );
        // At the term ceiling no election starts (`Term::next`): a cluster
        // reaches it only through a forged term, and wrapping around would
        // break safety. Keep the role (a candidate may still win its term
        // with late votes) and re-arm the timer, so no follower or candidate
        // is left without one.
        let Some(term) = self.current_term.next() else {
            self.arm_election_timer(config, out);
            return;
        };
        self.end_lease(out);
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
            leadership_transfer,
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
        let voters = std::mem::take(&mut self.votes_granted);
        self.reset_rounds();
        out.push(Output::CancelTimer(Timer::Election));
        self.broadcast_heartbeat(config, out);
        self.arm_heartbeat_timer(config, out);
        if config.features().check_quorum {
            // Its voters answered in this term, just now: the window starts
            // with them, so a new leader has a whole window to hear its
            // followers' first acknowledgements.
            self.heard_from = voters
                .into_iter()
                .filter(|&voter| voter != config.id())
                .map(|voter| (voter, Ticks(0)))
                .collect();
            self.arm_check_quorum_timer(config, out);
        }
    }

    fn broadcast_heartbeat(&mut self, config: &Config, out: &mut Vec<Output>) {
        if config.lease_duration().is_some() {
            // The round starts before its first heartbeat leaves: a lease
            // measured from here ends no later than one measured from any
            // follower's receipt of it.
            self.round = self.round.saturating_add(1);
            out.push(Output::RoundStarted { round: self.round });
        }
        let heartbeat = Message::AppendEntries {
            term: self.current_term,
            leader_id: config.id(),
            round: self.round,
        };
        for peer in config.peers() {
            out.push(Output::Send {
                to: peer,
                message: heartbeat,
            });
        }
        // A single-node cluster is its own majority.
        self.extend_lease(config, out);
    }

    /// A peer acknowledged heartbeat round `round` of this leadership.
    fn record_round_ack(
        &mut self,
        config: &Config,
        from: NodeId,
        round: u64,
        out: &mut Vec<Output>,
    ) {
        // A round not yet started was never sent: a forged acknowledgement
        // must not extend the lease.
        if config.lease_duration().is_none() || round == 0 || round > self.round {
            return;
        }
        let acked = self.acked_rounds.entry(from).or_default();
        *acked = (*acked).max(round);
        self.extend_lease(config, out);
    }

    /// Reports a lease for the latest round a majority acknowledged, if it is
    /// newer than the last one reported (thesis §6.4.1).
    fn extend_lease(&mut self, config: &Config, out: &mut Vec<Output>) {
        let Some(duration) = config.lease_duration() else {
            return;
        };
        if self.lease_surrendered {
            return;
        }
        // This leader has "acknowledged" its own latest round: it votes for
        // no one while it leads. The quorum-th latest round is one a
        // majority has seen.
        let mut rounds: Vec<u64> = self.acked_rounds.values().copied().collect();
        rounds.push(self.round);
        rounds.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&round) = rounds.get(config.quorum() - 1) else {
            return;
        };
        if self.lease_round.is_none_or(|held| round > held) {
            self.lease_round = Some(round);
            out.push(Output::LeaseExtended { round, duration });
        }
    }

    /// Forgets a leadership's rounds: a new one counts from 1.
    fn reset_rounds(&mut self) {
        self.round = 0;
        self.acked_rounds.clear();
        self.lease_round = None;
        self.lease_surrendered = false;
    }

    /// The node was created or restarted.
    fn handle_start(&mut self, config: &Config, out: &mut Vec<Output>) {
        // With the leader lease, a restarted node may have heard a leader just
        // before it went down, and has forgotten when: it guards its vote for
        // the minimum election timeout, as if it had heard one now.
        if config.lease_duration().is_some() && self.role == Role::Follower {
            self.lease = true;
            let timeout = config.timing().election_timeout_min;
            self.arm_fixed_timer(Timer::Lease, timeout, out);
        }
        self.arm_role_timer(config, out);
    }

    fn arm_role_timer(&self, config: &Config, out: &mut Vec<Output>) {
        match self.role {
            Role::Follower | Role::PreCandidate | Role::Candidate => {
                self.arm_election_timer(config, out);
            }
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
        self.arm_fixed_timer(Timer::Heartbeat, config.timing().heartbeat_interval, out);
    }

    /// CheckQuorum ticks once per heartbeat interval (see
    /// [`Timer::CheckQuorum`]).
    fn arm_check_quorum_timer(&self, config: &Config, out: &mut Vec<Output>) {
        let tick = config.timing().heartbeat_interval;
        self.arm_fixed_timer(Timer::CheckQuorum, tick, out);
    }

    /// Arms `timer` for exactly `duration` (no randomness to pick).
    fn arm_fixed_timer(&self, timer: Timer, duration: Duration, out: &mut Vec<Output>) {
        out.push(Output::SetTimer {
            timer,
            min: duration,
            max: duration,
        });
    }
}

#[cfg(test)]
mod map_ids_tests {
    use super::*;
    use crate::config::{ClockDrift, Timing};

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
    /// the renamed node fed renamed inputs ends where the original, renamed,
    /// ends. With the default features, and with the leader lease too, so
    /// that the acknowledged rounds are renamed as well.
    #[test]
    fn renaming_ids_commutes_with_every_step_of_an_election() {
        let configs = Config::cluster(3, Timing::default()).unwrap();
        let leased: Vec<Config> = configs
            .iter()
            .map(|c| c.clone().with_leader_lease(ClockDrift::DEFAULT).unwrap())
            .collect();
        for configs in [configs, leased] {
            renaming_commutes_with_an_election(&configs[0], &configs[2]);
        }
    }

    fn renaming_commutes_with_an_election(original_config: &Config, renamed_config: &Config) {
        let grant = |term| Message::RequestVoteResponse {
            term: Term(term),
            vote_granted: true,
        };
        let inputs = [
            Input::Start,
            // A started node guards its vote under the leader lease; this
            // script has it vote at once.
            Input::Timeout(Timer::Lease),
            Input::Receive {
                from: NodeId(1),
                message: Message::RequestVote {
                    term: Term(1),
                    candidate_id: NodeId(1),
                    last_log_index: 0,
                    last_log_term: Term(0),
                    leadership_transfer: false,
                },
            },
            Input::Timeout(Timer::Election),
            Input::Receive {
                from: NodeId(2),
                message: grant(2),
            },
            Input::Timeout(Timer::Heartbeat),
            Input::Receive {
                from: NodeId(2),
                message: Message::AppendEntriesResponse {
                    term: Term(2),
                    success: true,
                    last_log_index: 0,
                    last_log_term: Term(0),
                    round: 1,
                },
            },
            Input::Receive {
                from: NodeId(1),
                message: Message::AppendEntries {
                    term: Term(3),
                    leader_id: NodeId(1),
                    round: 0,
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
    fn timers_have_their_position_a_name_and_only_the_lease_is_deferrable() {
        for (position, timer) in Timer::ALL.into_iter().enumerate() {
            assert_eq!(timer.index(), position);
            assert_eq!(timer.is_deferrable(), timer == Timer::Lease);
        }
        let names = Timer::ALL.map(|t| t.to_string());
        assert_eq!(
            names,
            ["election", "heartbeat", "lease", "check-quorum", "transfer"]
        );
    }

    #[test]
    fn renaming_ids_rewrites_acknowledgements_and_the_transfer_target() {
        let configs: Vec<Config> = Config::cluster(3, Timing::default())
            .unwrap()
            .into_iter()
            .map(|c| c.with_features(crate::Features::ALL))
            .collect();
        let mut node = Node::new();
        let mut out = Vec::new();
        let config = &configs[0];
        node.step(config, Input::Timeout(Timer::Election), &mut out);
        node.step(
            config,
            Input::Receive {
                from: NodeId(1),
                message: Message::PreVoteResponse {
                    term: Term(1),
                    vote_granted: true,
                },
            },
            &mut out,
        );
        node.step(
            config,
            Input::Receive {
                from: NodeId(1),
                message: Message::RequestVoteResponse {
                    term: Term(1),
                    vote_granted: true,
                },
            },
            &mut out,
        );
        assert_eq!(node.role(), Role::Leader);
        node.step(
            config,
            Input::TransferLeadership { to: NodeId(2) },
            &mut out,
        );
        node.step(
            config,
            Input::Receive {
                from: NodeId(1),
                message: Message::AppendEntriesResponse {
                    term: Term(1),
                    round: 0,
                    success: true,
                    last_log_index: 0,
                    last_log_term: Term(0),
                },
            },
            &mut out,
        );
        let renamed = node.map_ids(rotate);
        assert_eq!(
            renamed.heard_from(),
            &BTreeMap::from([(NodeId(0), Ticks(0))])
        );
        assert_eq!(renamed.transfer_target(), Some(NodeId(1)));
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

#[cfg(test)]
mod hash_tests {
    use super::*;
    use std::hash::{BuildHasher, RandomState};

    /// A node with every field away from its default.
    fn busy() -> Node {
        Node {
            current_term: Term(3),
            voted_for: Some(NodeId(0)),
            role: Role::Leader,
            leader_id: Some(NodeId(0)),
            votes_granted: BTreeSet::from([NodeId(0), NodeId(2)]),
            lease: true,
            heard_from: BTreeMap::from([(NodeId(1), Ticks(1)), (NodeId(2), Ticks(2))]),
            transfer_target: Some(NodeId(2)),
            round: 5,
            acked_rounds: BTreeMap::from([(NodeId(1), 4), (NodeId(2), 5)]),
            lease_round: Some(4),
            lease_surrendered: false,
            log: LogSummary {
                last_log_index: 2,
                last_log_term: Term(1),
            },
        }
    }

    /// The model checker keeps only a state's hash (its fingerprint), so a
    /// hash that ignored a field, or packed two fields into the same bits,
    /// would merge distinct states and skip behaviours without a word.
    #[test]
    fn nodes_that_differ_in_any_one_field_hash_differently_and_equal_nodes_alike() {
        let hasher = RandomState::new();
        let base = busy();
        assert_eq!(hasher.hash_one(&base), hasher.hash_one(base.clone()));
        let ids: Vec<BTreeSet<NodeId>> = (0..10_u8).map(|n| (0..n).map(NodeId).collect()).collect();
        let mut variants = vec![
            Node {
                current_term: Term(4),
                ..busy()
            },
            Node {
                voted_for: None,
                ..busy()
            },
            Node {
                voted_for: Some(NodeId(1)),
                ..busy()
            },
            Node {
                role: Role::Candidate,
                ..busy()
            },
            Node {
                role: Role::Follower,
                ..busy()
            },
            Node {
                leader_id: None,
                ..busy()
            },
            Node {
                leader_id: Some(NodeId(255)),
                ..busy()
            },
            Node {
                votes_granted: BTreeSet::from([NodeId(1), NodeId(2)]),
                ..busy()
            },
            Node {
                lease: false,
                ..busy()
            },
            Node {
                heard_from: BTreeMap::from([(NodeId(1), Ticks(2)), (NodeId(2), Ticks(2))]),
                ..busy()
            },
            Node {
                heard_from: BTreeMap::from([(NodeId(2), Ticks(2))]),
                ..busy()
            },
            Node {
                transfer_target: None,
                ..busy()
            },
            Node {
                transfer_target: Some(NodeId(1)),
                ..busy()
            },
            Node { round: 6, ..busy() },
            Node {
                acked_rounds: BTreeMap::from([(NodeId(1), 5), (NodeId(2), 5)]),
                ..busy()
            },
            Node {
                acked_rounds: BTreeMap::from([(NodeId(2), 5)]),
                ..busy()
            },
            Node {
                lease_round: None,
                ..busy()
            },
            Node {
                lease_round: Some(0),
                ..busy()
            },
            Node {
                lease_surrendered: true,
                ..busy()
            },
            Node {
                log: LogSummary {
                    last_log_index: 3,
                    last_log_term: Term(1),
                },
                ..busy()
            },
            Node {
                log: LogSummary {
                    last_log_index: 2,
                    last_log_term: Term(2),
                },
                ..busy()
            },
        ];
        // Granted-vote sets of every size up to ten, across the eight-ids-a-word packing.
        variants.extend(ids.into_iter().map(|votes_granted| Node {
            votes_granted,
            ..busy()
        }));
        variants.push(base);
        let mut seen = BTreeMap::new();
        for (index, node) in variants.iter().enumerate() {
            if let Some(other) = seen.insert(hasher.hash_one(node), index) {
                panic!(
                    "variants {other} and {index} hash alike:\n{:?}\n{node:?}",
                    variants[other]
                );
            }
        }
    }
}
