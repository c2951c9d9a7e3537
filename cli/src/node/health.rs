//! What the health endpoints promise, decided from the node's status
//! (docs/operators.md, "Health endpoints"):
//! - `/healthz`: the node's loop steps. Every role has a timer that fires
//!   within the longest election timeout (a follower's or candidate's
//!   election timer, a leader's heartbeat), so a loop that has not stepped
//!   for longer than that, plus a heartbeat of slack, is wedged: a stalled
//!   disk, a blocked thread.
//! - `/readyz`: the node knows a leader it heard from within the longest
//!   election timeout: a follower its leader's heartbeat, a leader the
//!   answers of a majority (itself included).
//! - `/leader`: this node leads and, with the leader lease on, holds it.

use raft_election::{NodeId, Role, Timing};
use raft_election_runtime::{Leadership, ServerStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// When the node's loop last stepped, written by the record hook.
#[derive(Debug)]
pub(super) struct Liveness {
    base: Instant,
    /// Microseconds from `base` to the last step.
    last_step_us: AtomicU64,
}

impl Liveness {
    pub(super) fn new() -> Self {
        Self {
            base: Instant::now(),
            last_step_us: AtomicU64::new(0),
        }
    }

    /// The loop stepped now.
    pub(super) fn stepped(&self) {
        let us = u64::try_from(self.base.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_step_us.store(us, Ordering::Relaxed);
    }

    /// How long ago it last stepped (since its start, before a first step).
    pub(super) fn since_last_step(&self) -> Duration {
        let last = Duration::from_micros(self.last_step_us.load(Ordering::Relaxed));
        self.base.elapsed().saturating_sub(last)
    }
}

/// `/healthz`: `Err` with the reason once the loop is wedged.
pub(super) fn healthy(since_last_step: Duration, timing: &Timing) -> Result<String, String> {
    let limit = timing.election_timeout_max + timing.heartbeat_interval;
    if since_last_step > limit {
        return Err(format!(
            "the node's loop has not stepped for {since_last_step:.1?}, longer than the longest \
             election timeout and a heartbeat ({limit:?})"
        ));
    }
    Ok(format!("stepped {since_last_step:.1?} ago"))
}

/// `/readyz`: the leader this node heard from recently, or why none.
pub(super) fn ready(
    status: &ServerStatus,
    quorum: usize,
    timing: &Timing,
    now: Instant,
) -> Result<NodeId, String> {
    let within = timing.election_timeout_max;
    let recent = |at: &Instant| now.saturating_duration_since(*at) <= within;
    if !status.running {
        return Err("the node has stopped".to_owned());
    }
    if status.role == Role::Leader {
        let heard = 1 + status.answered.values().filter(|at| recent(at)).count();
        return if heard >= quorum {
            Ok(status.id)
        } else {
            Err(format!(
                "it leads, but only {heard} of the {quorum} nodes a majority needs answered \
                 within {within:?}"
            ))
        };
    }
    let Some(leader) = status.leader else {
        return Err(format!("it knows no leader in {}", status.term));
    };
    match status.last_heartbeat {
        Some(at) if recent(&at) => Ok(leader),
        _ => Err(format!(
            "it last heard its leader {leader} more than {within:?} ago"
        )),
    }
}

/// `/leader`: `Ok` on the leader (holding the lease, if it is on).
pub(super) fn leads(
    status: &ServerStatus,
    leadership: &Leadership,
    lease: bool,
) -> Result<String, String> {
    if status.role != Role::Leader || !status.running {
        return Err(format!(
            "{} is a {} in {}",
            status.id, status.role, status.term
        ));
    }
    if lease && !leadership.has_lease() {
        return Err(format!(
            "{} leads {} but holds no lease",
            status.id, status.term
        ));
    }
    Ok(format!("{} leads {}", status.id, status.term))
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_election::Term;
    use std::collections::BTreeMap;

    fn status(
        role: Role,
        leader: Option<u8>,
        heard_ms_ago: Option<u64>,
        now: Instant,
    ) -> ServerStatus {
        ServerStatus {
            id: NodeId(1),
            role,
            term: Term(4),
            leader: leader.map(NodeId),
            voted_for: None,
            last_heartbeat: heard_ms_ago.map(|ms| now - Duration::from_millis(ms)),
            answered: BTreeMap::new(),
            running: true,
        }
    }

    #[test]
    fn a_loop_quiet_for_longer_than_an_election_timeout_and_a_heartbeat_is_unhealthy() {
        let timing = Timing::default();
        assert!(healthy(Duration::from_millis(340), &timing).is_ok());
        let error = healthy(Duration::from_millis(360), &timing).unwrap_err();
        assert!(error.contains("has not stepped"), "{error}");
    }

    #[test]
    fn a_follower_is_ready_while_its_leader_was_heard_within_an_election_timeout() {
        let timing = Timing::default();
        let now = Instant::now() + Duration::from_secs(10);
        let fresh = status(Role::Follower, Some(2), Some(100), now);
        assert_eq!(ready(&fresh, 2, &timing, now), Ok(NodeId(2)));
        let stale = status(Role::Follower, Some(2), Some(400), now);
        assert!(ready(&stale, 2, &timing, now).is_err());
        let none = status(Role::Candidate, None, None, now);
        assert!(
            ready(&none, 2, &timing, now)
                .unwrap_err()
                .contains("no leader")
        );
    }

    #[test]
    fn a_leader_is_ready_while_a_majority_answers_and_leads_only_with_its_lease() {
        let timing = Timing::default();
        let now = Instant::now() + Duration::from_secs(10);
        let mut leader = status(Role::Leader, Some(1), None, now);
        assert!(
            ready(&leader, 2, &timing, now).is_err(),
            "nobody answered yet"
        );
        leader
            .answered
            .insert(NodeId(2), now - Duration::from_millis(30));
        assert_eq!(ready(&leader, 2, &timing, now), Ok(NodeId(1)));
        let lapsed = Leadership {
            term: Term(4),
            leader: Some(NodeId(1)),
            is_me: true,
            lease_until: None,
        };
        assert!(leads(&leader, &lapsed, false).is_ok());
        assert!(
            leads(&leader, &lapsed, true)
                .unwrap_err()
                .contains("no lease")
        );
        let held = Leadership {
            lease_until: Some(Instant::now() + Duration::from_secs(1)),
            ..lapsed
        };
        assert!(leads(&leader, &held, true).is_ok());
        let follower = status(Role::Follower, Some(2), Some(10), now);
        assert!(leads(&follower, &held, true).is_err());
    }
}
