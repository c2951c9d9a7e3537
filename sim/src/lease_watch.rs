//! The leader lease as [`crate::timed::TimedCluster`] watches it, in real
//! (virtual) time: what each node's driver makes of the core's lease
//! outputs, and three checks after every step.
//!
//! - **One holder at a time** ([`LeaseHistory`], `Invariant::OneLeaseHolder`):
//!   no two nodes hold a lease at the same instant, and leases come in the
//!   order of terms.
//! - **Every leadership leases** (per leadership, whatever happened before:
//!   a transfer, a restart, a CheckQuorum step-down): once a majority, the
//!   leader included, has acknowledged a heartbeat round of its leadership
//!   by a moment less than the lease's length after that round began (by
//!   the leader's clock), the leader holds a lease from that moment on,
//!   unless it has handed its leadership over (sent a TimeoutNow) in this
//!   term. Acknowledgements are read from the messages delivered, not from
//!   the core.
//! - **The margin** (proofs.md, "Leader lease", Claim): no node gets a lease
//!   in a later term before an earlier lease ran out by its holder's clock
//!   (the end its grant set, even if the holder crashed meanwhile: a
//!   restarted node guards its vote). A lease its holder revoked (handing
//!   over, or stepping down, which frees the holder's own vote) is not
//!   compared. The closest any two came, the margin, is kept and printed,
//!   so a change that shaves it shows before it inverts.

use crate::timed::TimedError;
use raft_election::invariants::LeaseHistory;
use raft_election::{Config, Input, Message, Node, NodeId, Output, Role, Term, Timer};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// How many heartbeat rounds' start times a node's lease keeps, as the
/// runtime's driver does.
const MAX_ROUNDS_KEPT: usize = 64;

/// A driver's reading of the lease outputs. The correct one is the only one
/// outside this crate's tests; the others are the planted bugs the lease
/// checks must catch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeaseReading {
    /// From the start of the acknowledged round, the core's duration.
    Correct,
    /// Planted: from when the majority's acknowledgement arrives.
    #[cfg(test)]
    FromAcknowledgement,
    /// Planted: the full minimum election timeout, with no drift factor.
    #[cfg(test)]
    NoDriftFactor,
    /// Planted: this much longer than the core's duration.
    #[cfg(test)]
    LongerBy(Duration),
    /// Planted: a node that once handed its leadership over ignores every
    /// lease it is granted after, in any later leadership.
    #[cfg(test)]
    NeverAfterHandOver,
}

/// One node's leader lease, as its driver sees it.
#[derive(Clone, Debug, Default)]
struct LeaseClock {
    round_starts: VecDeque<(u64, Duration)>,
    until: Option<Duration>,
}

/// A leadership in progress, as the delivered messages show it.
#[derive(Clone, Debug)]
struct Leadership {
    term: Term,
    /// The latest round the leader started.
    round: u64,
    /// The latest round each peer acknowledged.
    acked: BTreeMap<NodeId, u64>,
    /// The latest round a majority acknowledged, as last looked at.
    majority_round: u64,
    /// It sent a TimeoutNow in this term.
    handed_over: bool,
    /// A majority acknowledged one of its rounds in time to lease.
    checked: bool,
}

/// What happened to a node before its current leadership.
#[derive(Clone, Copy, Debug, Default)]
struct Past {
    handed_over: bool,
    restarted: bool,
    stepped_down: bool,
}

/// The end a node's latest lease was granted, even if it crashed sooner.
#[derive(Clone, Copy, Debug)]
struct NaturalEnd {
    term: Term,
    until: Duration,
    /// Its holder revoked it: it ended sooner, as the holder's vote was freed.
    revoked: bool,
}

/// The closest two leases of different terms came: the later one began
/// `margin` after the earlier one's natural end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Approach {
    /// The gap.
    pub margin: Duration,
    /// The earlier lease's holder and term.
    pub earlier: (NodeId, Term),
    /// The later lease's holder and term.
    pub later: (NodeId, Term),
}

/// What the checks saw, for the totals a caller prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaseStats {
    /// Times a node got or extended a lease.
    pub grants: u64,
    /// Leaderships in which a majority acknowledged a round in time to
    /// lease, so the per-leadership check applied.
    pub leaderships_checked: u64,
    /// Of those, leaderships of a node that had handed over before.
    pub after_hand_over: u64,
    /// Of those, leaderships of a node that had restarted before.
    pub after_restart: u64,
    /// Of those, leaderships of a node that had stepped down by CheckQuorum before.
    pub after_step_down: u64,
    /// The closest two leases of different terms came, if any followed another.
    pub closest: Option<Approach>,
}

/// Every node's lease in real time, and the checks of the module doc.
pub(crate) struct LeaseWatch {
    clocks: Vec<LeaseClock>,
    leaderships: Vec<Option<Leadership>>,
    pasts: Vec<Past>,
    ends: BTreeMap<NodeId, NaturalEnd>,
    history: LeaseHistory,
    reading: LeaseReading,
    stats: LeaseStats,
}

/// One step of a node, as the watch reads it.
pub(crate) struct Stepped<'a> {
    pub(crate) config: &'a Config,
    pub(crate) before: Role,
    pub(crate) input: &'a Input,
    pub(crate) after: &'a Node,
    pub(crate) outputs: &'a [Output],
    pub(crate) now: Duration,
    /// Real time per unit of the node's clock.
    pub(crate) real: &'a dyn Fn(Duration) -> Duration,
}

impl LeaseWatch {
    pub(crate) fn new(nodes: usize) -> Self {
        Self {
            clocks: vec![LeaseClock::default(); nodes],
            leaderships: vec![None; nodes],
            pasts: vec![Past::default(); nodes],
            ends: BTreeMap::new(),
            history: LeaseHistory::new(),
            reading: LeaseReading::Correct,
            stats: LeaseStats::default(),
        }
    }

    pub(crate) fn with_reading(mut self, reading: LeaseReading) -> Self {
        self.reading = reading;
        self
    }

    pub(crate) fn holds(&self, id: NodeId, now: Duration) -> bool {
        self.history.holds(id, now)
    }

    pub(crate) fn stats(&self) -> LeaseStats {
        self.stats
    }

    /// Node `id` crashed at `now`: its lease and leadership end.
    pub(crate) fn crash(&mut self, id: NodeId, now: Duration) {
        let index = usize::from(id.0);
        self.clocks[index] = LeaseClock::default();
        self.leaderships[index] = None;
        self.pasts[index].restarted = true;
        self.history.record_end(id, now);
    }

    /// Reads one step of node `id` and runs the checks.
    pub(crate) fn step(&mut self, step: &Stepped) -> Result<(), TimedError> {
        let id = step.config.id();
        let index = usize::from(id.0);
        let (term, role) = (step.after.current_term(), step.after.role());
        self.follow_leadership(index, step);
        for output in step.outputs {
            match *output {
                Output::RoundStarted { round } => {
                    let starts = &mut self.clocks[index].round_starts;
                    if starts.len() == MAX_ROUNDS_KEPT {
                        starts.pop_front();
                    }
                    starts.push_back((round, step.now));
                    if let Some(leadership) = &mut self.leaderships[index] {
                        leadership.round = round;
                    }
                }
                Output::LeaseExtended { round, duration } => {
                    self.extend(id, term, round, duration, step)?;
                }
                Output::LeaseRevoked => {
                    self.clocks[index] = LeaseClock::default();
                    self.history.record_end(id, step.now);
                    // The lease still running, of the term the node led
                    // (a step-down revokes it in the new term's step).
                    if let Some(end) = self.ends.get_mut(&id).filter(|end| end.until > step.now) {
                        end.revoked = true;
                    }
                }
                Output::Send {
                    message: Message::TimeoutNow { .. },
                    ..
                } => self.hand_over(id),
                _ => {}
            }
        }
        if role == Role::Leader {
            self.check_majority(step)?;
        }
        Ok(())
    }

    /// Starts, ends or feeds the leadership of the stepped node.
    fn follow_leadership(&mut self, index: usize, step: &Stepped) {
        let after = step.after;
        if after.role() != Role::Leader {
            if step.before == Role::Leader
                && *step.input == Input::Timeout(Timer::CheckQuorum)
                && after.role() == Role::Follower
            {
                self.pasts[index].stepped_down = true;
            }
            self.leaderships[index] = None;
            return;
        }
        let leadership = self.leaderships[index].get_or_insert_with(|| Leadership {
            term: after.current_term(),
            round: 0,
            acked: BTreeMap::new(),
            majority_round: 0,
            handed_over: false,
            checked: false,
        });
        // An acknowledgement of a round of this leadership already started.
        if let Input::Receive {
            from,
            message:
                Message::AppendEntriesResponse {
                    term,
                    success: true,
                    round,
                    ..
                },
        } = *step.input
        {
            let counted = from != step.config.id() && step.config.is_voter(from);
            if counted && term == leadership.term && (1..=leadership.round).contains(&round) {
                let acked = leadership.acked.entry(from).or_default();
                *acked = (*acked).max(round);
            }
        }
    }

    /// Node `id` sent a TimeoutNow: it hands this leadership over (its
    /// lease was revoked just before).
    fn hand_over(&mut self, id: NodeId) {
        let index = usize::from(id.0);
        self.pasts[index].handed_over = true;
        if let Some(leadership) = &mut self.leaderships[index] {
            leadership.handed_over = true;
        }
    }

    /// What the driver of `id`, leader of `term`, does with a
    /// `LeaseExtended` of `round` for `duration`: the lease runs until
    /// `duration` by its clock after the round started.
    fn extend(
        &mut self,
        id: NodeId,
        term: Term,
        round: u64,
        duration: Duration,
        step: &Stepped,
    ) -> Result<(), TimedError> {
        let index = usize::from(id.0);
        let now = step.now;
        let clock = &self.clocks[index];
        let Some(&(_, started)) = clock.round_starts.iter().find(|(r, _)| *r == round) else {
            return Ok(());
        };
        let until = match self.reading {
            LeaseReading::Correct => started + (step.real)(duration),
            #[cfg(test)]
            LeaseReading::FromAcknowledgement => now + (step.real)(duration),
            #[cfg(test)]
            LeaseReading::NoDriftFactor => {
                started + (step.real)(step.config.timing().election_timeout_min)
            }
            #[cfg(test)]
            LeaseReading::LongerBy(extra) => started + (step.real)(duration + extra),
            #[cfg(test)]
            LeaseReading::NeverAfterHandOver if self.pasts[index].handed_over => return Ok(()),
            #[cfg(test)]
            LeaseReading::NeverAfterHandOver => started + (step.real)(duration),
        };
        if until <= now || clock.until >= Some(until) {
            return Ok(());
        }
        self.clocks[index].until = Some(until);
        self.stats.grants += 1;
        self.history.record_grant(id, term, now, until)?;
        self.check_margin(id, term, now)?;
        let end = self.ends.entry(id).or_insert(NaturalEnd {
            term,
            until,
            revoked: false,
        });
        if end.term != term {
            *end = NaturalEnd {
                term,
                until,
                revoked: false,
            };
        }
        end.until = end.until.max(until);
        Ok(())
    }

    /// `id` got a lease of `term` at `now`: no earlier term's lease its
    /// holder did not revoke may still run by its natural end.
    fn check_margin(&mut self, id: NodeId, term: Term, now: Duration) -> Result<(), TimedError> {
        for (&earlier, end) in &self.ends {
            if end.term >= term || end.revoked {
                continue;
            }
            let Some(margin) = now.checked_sub(end.until) else {
                return Err(TimedError::LeaseBeforeAnEarlierEnds {
                    holder: id,
                    term,
                    at: now,
                    earlier,
                    earlier_term: end.term,
                    earlier_until: end.until,
                });
            };
            if self
                .stats
                .closest
                .is_none_or(|closest| margin < closest.margin)
            {
                self.stats.closest = Some(Approach {
                    margin,
                    earlier: (earlier, end.term),
                    later: (id, term),
                });
            }
        }
        Ok(())
    }

    /// The per-leadership check, after a step of a leader: once a majority
    /// acknowledged a round in time to lease, the leader holds one.
    fn check_majority(&mut self, step: &Stepped) -> Result<(), TimedError> {
        let id = step.config.id();
        let index = usize::from(id.0);
        let Some(leadership) = &mut self.leaderships[index] else {
            return Ok(());
        };
        // The leader counts its own latest round; a majority of the voters,
        // counted here rather than with `Config::quorum`.
        let mut rounds: Vec<u64> = leadership.acked.values().copied().collect();
        rounds.push(leadership.round);
        rounds.sort_unstable_by(|a, b| b.cmp(a));
        let majority = step.config.voters().len() / 2 + 1;
        let round = rounds.get(majority - 1).copied().unwrap_or(0);
        if round <= leadership.majority_round {
            return Ok(());
        }
        leadership.majority_round = round;
        let duration = step.config.lease_duration();
        let started = self.clocks[index]
            .round_starts
            .iter()
            .find(|(r, _)| *r == round)
            .map(|&(_, started)| started);
        let (Some(duration), Some(started)) = (duration, started) else {
            return Ok(());
        };
        if leadership.handed_over || started + (step.real)(duration) <= step.now {
            return Ok(());
        }
        if !leadership.checked {
            leadership.checked = true;
            let past = self.pasts[index];
            self.stats.leaderships_checked += 1;
            self.stats.after_hand_over += u64::from(past.handed_over);
            self.stats.after_restart += u64::from(past.restarted);
            self.stats.after_step_down += u64::from(past.stepped_down);
        }
        if !self.history.holds(id, step.now) {
            return Err(TimedError::LeaseNotHeld {
                leader: id,
                term: leadership.term,
                round,
                started,
                at: step.now,
            });
        }
        Ok(())
    }
}
