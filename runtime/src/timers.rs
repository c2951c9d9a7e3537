//! A node's armed timers: one deadline per [`Timer`], owned by its driver
//! and read by its pacer to know when the node must next wake.

use raft_election::Timer;
use tokio::time::Instant;

/// The deadline of each armed timer. One slot per timer ([`Timer::index`]),
/// so arming replaces the old deadline and cancelling clears it: a stale
/// expiry cannot fire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timers {
    deadlines: [Option<Instant>; Timer::ALL.len()],
}

impl Timers {
    /// Arms `timer` to expire at `deadline`, or disarms it (`None`).
    pub(crate) fn arm(&mut self, timer: Timer, deadline: Option<Instant>) {
        self.deadlines[timer.index()] = deadline;
    }

    /// When `timer` is due, if it is armed.
    #[must_use]
    pub fn deadline(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    /// Every armed timer with its deadline, in [`Timer::ALL`] order.
    pub fn armed(&self) -> impl Iterator<Item = (Timer, Instant)> + '_ {
        Timer::ALL
            .into_iter()
            .filter_map(|timer| Some((timer, self.deadline(timer)?)))
    }

    /// The earliest deadline of any armed timer.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        self.armed().map(|(_, deadline)| deadline).min()
    }

    /// The earliest deadline a node must wake for: that of any armed timer
    /// but a deferrable one ([`Timer::is_deferrable`]), which a pacer
    /// may deliver just before the node's next input instead.
    #[must_use]
    pub fn next_wake(&self) -> Option<Instant> {
        self.armed()
            .filter(|(timer, _)| !timer.is_deferrable())
            .map(|(_, deadline)| deadline)
            .min()
    }

    /// The timer that expired first by `now`, if any, and its deadline. Of
    /// timers due at the same instant a deferrable one comes first, as it
    /// would if delivered just before the next input: a vote guard that
    /// ends when an election timer fires has ended by then.
    #[must_use]
    pub fn first_expired(&self, now: Instant) -> Option<(Instant, Timer)> {
        self.armed()
            .filter(|&(_, deadline)| deadline <= now)
            .min_by_key(|&(timer, deadline)| (deadline, !timer.is_deferrable(), timer))
            .map(|(timer, deadline)| (deadline, timer))
    }

    /// Takes the timer that expired first by `now`: firing disarms it, and
    /// re-arming puts it in the future (durations are positive), so each
    /// arming fires at most once.
    pub(crate) fn fire(&mut self, now: Instant) -> Option<Timer> {
        let (_, timer) = self.first_expired(now)?;
        self.arm(timer, None);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ms;

    /// Timers armed, in order, at each `(timer, ms)` after the returned start.
    fn armed(deadlines: &[(Timer, u64)]) -> (Instant, Timers) {
        let start = Instant::now();
        let mut timers = Timers::default();
        for &(timer, after) in deadlines {
            timers.arm(timer, Some(start + ms(after)));
        }
        (start, timers)
    }

    #[test]
    fn a_replaced_or_cancelled_timer_never_expires() {
        // Re-armed later (a heartbeat arrived): the first deadline is gone.
        let (start, mut timers) = armed(&[(Timer::Election, 100), (Timer::Election, 300)]);
        assert_eq!(timers.first_expired(start + ms(200)), None);
        let due = start + ms(300);
        assert_eq!(timers.first_expired(due), Some((due, Timer::Election)));
        // Firing disarms it.
        assert_eq!(timers.fire(due), Some(Timer::Election));
        assert_eq!(timers.fire(start + ms(400)), None);
        timers.arm(Timer::Heartbeat, Some(start + ms(50)));
        timers.arm(Timer::Heartbeat, None);
        assert_eq!(timers.first_expired(start + ms(400)), None);
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn the_earliest_of_two_expired_timers_fires_first() {
        let (start, mut timers) = armed(&[(Timer::Election, 20), (Timer::Heartbeat, 10)]);
        assert_eq!(timers.next_deadline(), Some(start + ms(10)));
        assert_eq!(timers.fire(start + ms(30)), Some(Timer::Heartbeat));
        assert_eq!(timers.fire(start + ms(30)), Some(Timer::Election));
        assert_eq!(timers.deadline(Timer::Election), None);
    }

    #[test]
    fn a_lease_is_never_waited_for_but_fires_first_once_expired() {
        let (start, mut timers) = armed(&[(Timer::Lease, 150), (Timer::Election, 200)]);
        assert_eq!(timers.next_deadline(), Some(start + ms(150)));
        assert_eq!(timers.next_wake(), Some(start + ms(200)));
        let later = start + ms(210);
        assert_eq!(timers.fire(later), Some(Timer::Lease));
        assert_eq!(timers.fire(later), Some(Timer::Election));
        assert_eq!(timers.next_wake(), None);
    }
}
