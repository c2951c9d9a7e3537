//! One typed record of what a node did: the one description of a step that
//! every reader shares.
//!
//! A driver reports four facts about its node: it started from a hard state,
//! it stepped on an input, a hard state became durable, and it handed a
//! message to its transport. [`Record`] says each of them once, with the
//! core's own types, so that whatever reads them (a node process's JSON log,
//! the timeline drawn from it, the harnesses that wait on real processes,
//! the model's trace validation, metrics) reads the same fields the same
//! way, and nobody parses a log line back by hand. With the `serde` feature
//! a record serializes to JSON and back unchanged.
//!
//! A step's record carries the node's [`Summary`] after the step and the
//! [`Change`] the step made, computed here once ([`Change::between`]).

use crate::message::Message;
use crate::node::{Input, Node};
use crate::types::{HardState, NodeId, Role, Term};
use std::fmt;

/// What a node is, seen from outside: the fields a reader of its steps
/// needs (Figure 2's persistent state, its role and the leader it knows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Summary {
    /// The node's term.
    pub current_term: Term,
    /// Whom it voted for in that term.
    pub voted_for: Option<NodeId>,
    /// Its role.
    pub role: Role,
    /// The leader it knows in that term (itself, if it leads).
    pub leader_id: Option<NodeId>,
}

impl Summary {
    /// The summary of `node`.
    #[must_use]
    pub fn of(node: &Node) -> Self {
        Self {
            current_term: node.current_term(),
            voted_for: node.voted_for(),
            role: node.role(),
            leader_id: node.leader_id(),
        }
    }

    /// A node restored from `hard_state`: every node starts as a follower
    /// that knows no leader (Figure 2).
    #[must_use]
    pub fn restored(hard_state: HardState) -> Self {
        Self {
            current_term: hard_state.current_term,
            voted_for: hard_state.voted_for,
            role: Role::Follower,
            leader_id: None,
        }
    }
}

/// What one step changed, between the summaries before and after it. Every
/// field is `None` when that part did not change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct Change {
    /// The term the node left: it moved to the summary's `current_term`.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub term_from: Option<Term>,
    /// The role the node left: it is now the summary's `role`.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub role_from: Option<Role>,
    /// The vote the node cast in this step: a grant to a candidate, or its
    /// own vote as a new candidate.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub vote: Option<NodeId>,
    /// The leader the node learned in this step: a leader whose heartbeat
    /// it accepted, or itself on winning its election.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub leader: Option<NodeId>,
}

impl Change {
    /// What changed from `before` to `after`. A vote or a leader counts as
    /// new when it differs from before, or when the term moved (a vote of
    /// a new term is a new vote even if it names the same node).
    #[must_use]
    pub fn between(before: &Summary, after: &Summary) -> Self {
        let new_term = after.current_term != before.current_term;
        Self {
            term_from: new_term.then_some(before.current_term),
            role_from: (after.role != before.role).then_some(before.role),
            vote: after
                .voted_for
                .filter(|_| new_term || after.voted_for != before.voted_for),
            leader: after
                .leader_id
                .filter(|_| new_term || after.leader_id != before.leader_id),
        }
    }

    /// Whether nothing changed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One fact of a node's life, in the order its driver reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Record {
    /// The node started (or restarted) from this hard state, read from its
    /// storage, before its first step.
    Started(HardState),
    /// The node stepped on `input`. Reported once the step's new hard state
    /// is durable and before any message of the step is sent.
    Stepped {
        /// The input.
        input: Input,
        /// The node after the step.
        after: Summary,
        /// What the step changed.
        change: Change,
    },
    /// This hard state became durable: the storage's save returned.
    Saved(HardState),
    /// The node handed `message` for `to` to its transport.
    Sent {
        /// The receiver.
        to: NodeId,
        /// The message, in full.
        message: Message,
    },
}

impl Record {
    /// The record of a step from `before` to `after` on `input`.
    #[must_use]
    pub fn stepped(before: &Node, input: Input, after: &Node) -> Self {
        let after = Summary::of(after);
        Self::Stepped {
            input,
            after,
            change: Change::between(&Summary::of(before), &after),
        }
    }

    /// The same record with every node id renamed by `rename` (a trace
    /// replayed where the nodes have other ids).
    #[must_use]
    pub fn map_ids(&self, rename: impl Fn(NodeId) -> NodeId) -> Self {
        let hard = |h: HardState| HardState {
            current_term: h.current_term,
            voted_for: h.voted_for.map(&rename),
        };
        match *self {
            Self::Started(h) => Self::Started(hard(h)),
            Self::Saved(h) => Self::Saved(hard(h)),
            Self::Sent { to, message } => Self::Sent {
                to: rename(to),
                message: message.map_ids(&rename),
            },
            Self::Stepped {
                input,
                after,
                change,
            } => Self::Stepped {
                input: input.map_ids(&rename),
                after: Summary {
                    voted_for: after.voted_for.map(&rename),
                    leader_id: after.leader_id.map(&rename),
                    ..after
                },
                change: Change {
                    vote: change.vote.map(&rename),
                    leader: change.leader.map(&rename),
                    ..change
                },
            },
        }
    }
}

/// The record in words, for a person reading a log: what happened, then
/// what changed ("RequestVote(t2, ...) from n1: t1 -> t2, votes for n1").
impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Started(h) => write!(
                f,
                "starts as follower of {}, voted for {}",
                h.current_term,
                display_vote(h.voted_for)
            ),
            Self::Saved(h) => write!(
                f,
                "saved {}, voted for {}",
                h.current_term,
                display_vote(h.voted_for)
            ),
            Self::Sent { to, message } => write!(f, "{message} to {to}"),
            Self::Stepped {
                input,
                after,
                change,
            } => {
                match input {
                    Input::Start => f.write_str("start")?,
                    Input::Receive { from, message } => write!(f, "{message} from {from}")?,
                    Input::Timeout(timer) => write!(f, "{timer} timeout")?,
                    Input::TransferLeadership { to } => {
                        write!(f, "asked to hand its leadership to {to}")?;
                    }
                }
                write!(f, " in {}", change.term_from.unwrap_or(after.current_term))?;
                if !change.is_empty() {
                    write!(f, ":{}", Changed(change, after))?;
                }
                Ok(())
            }
        }
    }
}

/// A change in words: " t1 -> t2, follower -> candidate, votes for n1",
/// " leader n2".
struct Changed<'a>(&'a Change, &'a Summary);

impl fmt::Display for Changed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (change, after) = (self.0, self.1);
        let mut separator = " ";
        let mut part = |f: &mut fmt::Formatter<'_>, text: fmt::Arguments<'_>| {
            let written = write!(f, "{separator}{text}");
            separator = ", ";
            written
        };
        if let Some(from) = change.term_from {
            part(f, format_args!("{from} -> {}", after.current_term))?;
        }
        if let Some(from) = change.role_from {
            part(f, format_args!("{from} -> {}", after.role))?;
        }
        if let Some(candidate) = change.vote {
            part(f, format_args!("votes for {candidate}"))?;
        }
        if let Some(leader) = change.leader {
            part(f, format_args!("leader {leader}"))?;
        }
        Ok(())
    }
}

fn display_vote(vote: Option<NodeId>) -> String {
    vote.map_or_else(|| "nobody".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Timer;

    fn summary(term: u64, vote: Option<u8>, role: Role, leader: Option<u8>) -> Summary {
        Summary {
            current_term: Term(term),
            voted_for: vote.map(NodeId),
            role,
            leader_id: leader.map(NodeId),
        }
    }

    #[test]
    fn a_follower_granting_a_vote_in_a_new_term_changes_its_term_and_vote_only() {
        let before = summary(1, Some(1), Role::Follower, Some(1));
        let after = summary(2, Some(2), Role::Follower, None);
        let change = Change::between(&before, &after);
        assert_eq!(
            change,
            Change {
                term_from: Some(Term(1)),
                role_from: None,
                vote: Some(NodeId(2)),
                leader: None,
            }
        );
    }

    #[test]
    fn the_same_vote_in_a_new_term_is_a_new_vote_and_an_unchanged_one_is_none() {
        let before = summary(1, Some(2), Role::Follower, None);
        let later = summary(2, Some(2), Role::Follower, None);
        assert_eq!(Change::between(&before, &later).vote, Some(NodeId(2)));
        assert_eq!(Change::between(&later, &later).vote, None);
        assert!(Change::between(&later, &later).is_empty());
    }

    #[test]
    fn a_candidate_winning_learns_itself_as_leader_and_changes_role() {
        let before = summary(2, Some(0), Role::Candidate, None);
        let after = summary(2, Some(0), Role::Leader, Some(0));
        let change = Change::between(&before, &after);
        assert_eq!(change.role_from, Some(Role::Candidate));
        assert_eq!(change.leader, Some(NodeId(0)));
        assert_eq!((change.term_from, change.vote), (None, None));
    }

    #[test]
    fn a_step_record_says_its_input_and_change_in_words() {
        let record = Record::Stepped {
            input: Input::Timeout(Timer::Election),
            after: summary(2, Some(0), Role::Candidate, None),
            change: Change {
                term_from: Some(Term(1)),
                role_from: Some(Role::Follower),
                vote: Some(NodeId(0)),
                leader: None,
            },
        };
        assert_eq!(
            record.to_string(),
            "election timeout in t1: t1 -> t2, follower -> candidate, votes for n0"
        );
        let quiet = Record::Stepped {
            input: Input::Timeout(Timer::Heartbeat),
            after: summary(2, Some(0), Role::Leader, Some(0)),
            change: Change::default(),
        };
        assert_eq!(quiet.to_string(), "heartbeat timeout in t2");
    }

    #[test]
    fn renaming_ids_renames_every_id_a_record_holds() {
        let record = Record::Stepped {
            input: Input::Receive {
                from: NodeId(1),
                message: Message::AppendEntries {
                    term: Term(3),
                    leader_id: NodeId(1),
                    round: 0,
                },
            },
            after: summary(3, Some(1), Role::Follower, Some(1)),
            change: Change {
                term_from: None,
                role_from: None,
                vote: Some(NodeId(1)),
                leader: Some(NodeId(1)),
            },
        };
        let renamed = record.map_ids(|id| NodeId(id.0 + 10));
        let Record::Stepped {
            input,
            after,
            change,
        } = renamed
        else {
            panic!("a step stays a step: {renamed:?}");
        };
        assert_eq!(
            input,
            Input::Receive {
                from: NodeId(11),
                message: Message::AppendEntries {
                    term: Term(3),
                    leader_id: NodeId(11),
                    round: 0,
                },
            }
        );
        assert_eq!(
            (after.voted_for, after.leader_id),
            (Some(NodeId(11)), Some(NodeId(11)))
        );
        assert_eq!(
            (change.vote, change.leader),
            (Some(NodeId(11)), Some(NodeId(11)))
        );
    }
}
