//! How a node's driver waits for its next input: a [`Pacer`], given to the
//! driver beside its [`Transport`].
//!
//! The transport sends and receives; the pacer decides what the driver
//! steps next, a message from the transport or one of the node's own
//! deadlines passing. [`Independent`], the driver's default, is a node on a
//! machine of its own: whichever comes first, with a deadline that has
//! passed before a message. The in-process cluster paces nodes that share
//! one process with a pacer of its own (`cluster::pacing`). Both wait the
//! same way, with the one precise wait below. Either way the driver never
//! sees another node's clock or deadlines.
//!
//! # Precise election deadlines
//!
//! Tokio's timer fires on whole milliseconds (it rounds a deadline up to the
//! next one, and the wait in the OS adds up to one more): two followers whose
//! election deadlines fall in the same millisecond fire together and split
//! the vote, though randomized timeouts exist to tell them apart (§5.2);
//! about one election in a hundred with the paper's 150 ms range. So a
//! precise wait sleeps until [`PRECISE_WINDOW`] before an election deadline
//! and then watches the clock, letting the other tasks run between looks: a
//! busy core for that long per election timeout reached, nothing while
//! heartbeats keep pushing the deadline back. Tokio's paused test clock
//! (`start_paused`) moves only while every task sleeps, never across a
//! yield, so a look that finds it unmoved sleeps to the deadline instead.
//!
//! # One alarm per node
//!
//! The driver lends the pacer its alarm for each wait: one Tokio timer entry
//! for the node's whole life. Making a new one per wait would register and
//! remove a timer for every message received.

use crate::timers::Timers;
use crate::transport::Transport;
use raft_election::{Message, NodeId, Timer};
use std::future::Future;
use std::pin::{Pin, pin};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// What a node's driver wakes up for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// A message from a peer.
    Message {
        /// The sender, as the transport knows it.
        from: NodeId,
        /// The message.
        message: Message,
    },
    /// A deadline of the node's timers may have passed: the driver fires
    /// the timer that expired first or, woken early, waits again.
    Deadline,
    /// The transport is closed for good: the node is shut down or crashed.
    Closed,
}

/// How a node's driver waits for its next input from a transport `T`.
///
/// The driver drops a [`Self::next_input`] that a local request overtook,
/// so it must be cancel-safe: nothing it took from the transport may be
/// lost then (the transport's `recv` is cancel-safe too).
pub trait Pacer<T: Transport>: Send {
    /// The driver's one wait: the next message from `transport`, or one of
    /// the deadlines of `timers` passing, with the driver's `alarm` for the
    /// deadline. A deadline that has passed goes before a message.
    fn next_input(
        &mut self,
        transport: &mut T,
        timers: &Timers,
        alarm: Pin<&mut Sleep>,
    ) -> impl Future<Output = Wake> + Send;

    /// The driver is about to step an input of the node's own side (a local
    /// request), due now. Nothing by default.
    fn stepping_local_input(&mut self, transport: &mut T) {
        let _ = transport;
    }
}

/// How long before an election deadline a precise wait stops relying on
/// Tokio's millisecond timer and watches the clock itself (see the module
/// documentation).
pub const PRECISE_WINDOW: Duration = Duration::from_millis(2);

/// The pacer of a node on a machine of its own, and the driver's default:
/// whichever comes first, the next message or the earliest deadline of any
/// timer, a deadline that has passed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Independent {
    /// Meet election deadlines to the microsecond: watch the clock for the
    /// last [`PRECISE_WINDOW`] before each (see the module documentation).
    pub precise_timers: bool,
}

impl Default for Independent {
    /// With precise timers.
    fn default() -> Self {
        Self {
            precise_timers: true,
        }
    }
}

impl<T: Transport> Pacer<T> for Independent {
    // An async block, not an async fn, which would keep a second copy of
    // its arguments: every node holds this future while it waits.
    fn next_input(
        &mut self,
        transport: &mut T,
        timers: &Timers,
        alarm: Pin<&mut Sleep>,
    ) -> impl Future<Output = Wake> + Send {
        let precise = self.precise_timers;
        async move {
            let recv = pin!(transport.recv());
            match wait(recv, timers, Wakes::Every, precise, alarm).await {
                // Perhaps early: the driver finds nothing expired and asks again.
                Woken::Clock => Wake::Deadline,
                Woken::Received(Some((from, message))) => Wake::Message { from, message },
                Woken::Received(None) => Wake::Closed,
            }
        }
    }
}

/// Which of a node's timers its pacer wakes it for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wakes {
    /// Every armed timer: each fires at its deadline.
    Every,
    /// All but a deferrable one ([`Timer::is_deferrable`]), which the pacer
    /// delivers just before the node's next input instead.
    Undeferrable,
}

impl Wakes {
    fn includes(self, timer: Timer) -> bool {
        self == Self::Every || !timer.is_deferrable()
    }
}

/// What ended a [`wait`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Woken<M> {
    /// The receive finished, with this.
    Received(M),
    /// The clock may have reached a deadline, or come close to one: look at
    /// the timers again.
    Clock,
}

/// The one wait of every pacer: until `recv` finishes or the clock reaches
/// the next instant worth a look, the alarm set to it. That is the earliest
/// deadline of the timers in `wakes`, the election deadline counted
/// [`PRECISE_WINDOW`] early if `precise`; inside that window, a precise
/// wait lets the other tasks run once and returns, for the caller to look
/// at the clock again (on a paused clock, it sleeps to the deadline).
///
/// Planned when called, the future keeping only what it needs, and `recv`
/// pinned by the caller: every node holds one of these. Cancel-safe if
/// `recv` is: it holds nothing else.
pub(crate) fn wait<'a, M>(
    mut recv: impl Future<Output = M> + Unpin + 'a,
    timers: &Timers,
    wakes: Wakes,
    precise: bool,
    mut alarm: Pin<&'a mut Sleep>,
) -> impl Future<Output = Woken<M>> + 'a {
    let now = Instant::now();
    let close = approaching(timers, wakes, now).filter(|_| precise);
    let early = if precise {
        PRECISE_WINDOW
    } else {
        Duration::ZERO
    };
    let wake = close.or_else(|| wake_early(timers, wakes, early));
    // The clock when the wait began, if it watches the clock.
    let watched = close.map(|_| now);
    async move {
        if let Some(began) = watched {
            // Let the other tasks run once, taking a message already here;
            // one that comes meanwhile waits for the next look, whose clock
            // comes first (`biased`).
            tokio::select! {
                biased;
                () = tokio::task::yield_now() => {}
                received = &mut recv => return Woken::Received(received),
            }
            if Instant::now() != began {
                return Woken::Clock;
            }
            // A paused clock did not move across the yield: sleep to the
            // deadline, so Tokio can advance the clock to it.
        }
        if let Some(at) = wake.filter(|&at| at != alarm.deadline()) {
            // Tokio moves an entry to a later deadline without touching its
            // timer wheel, so a heartbeat pushing the election back is cheap.
            alarm.as_mut().reset(at);
        }
        // `biased`: a deadline already passed fires before a queued message,
        // and a fixed order keeps paused-clock runs reproducible.
        tokio::select! {
            biased;
            () = alarm, if wake.is_some() => Woken::Clock,
            received = recv => Woken::Received(received),
        }
    }
}

/// The earliest deadline of the timers in `wakes`, the election deadline
/// counted `early` before it is due (unless that is before the clock's
/// origin).
fn wake_early(timers: &Timers, wakes: Wakes, early: Duration) -> Option<Instant> {
    timers
        .armed()
        .filter(|&(timer, _)| wakes.includes(timer))
        .map(|(timer, at)| match timer {
            Timer::Election => at.checked_sub(early).unwrap_or(at),
            _ => at,
        })
        .min()
}

/// The earliest deadline of the timers in `wakes`, if the election deadline
/// is at most [`PRECISE_WINDOW`] after `now` and no deadline of those
/// timers has passed (a passed one is for the alarm to report at once).
fn approaching(timers: &Timers, wakes: Wakes, now: Instant) -> Option<Instant> {
    let election = timers.deadline(Timer::Election)?;
    let close = election > now && election.duration_since(now) <= PRECISE_WINDOW;
    let next = wake_early(timers, wakes, Duration::ZERO)?;
    (close && next > now).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::pending;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn timers_with_election(at: Instant) -> Timers {
        let mut timers = Timers::default();
        timers.arm(Timer::Election, Some(at));
        timers
    }

    #[test]
    fn an_election_deadline_is_approached_early_only_with_precise_timers() {
        let start = Instant::now();
        let deadline = start + ms(200);
        let timers = timers_with_election(deadline);
        let wake = |early| wake_early(&timers, Wakes::Undeferrable, early);
        assert_eq!(wake(Duration::ZERO), Some(deadline));
        assert_eq!(wake(PRECISE_WINDOW), Some(deadline - PRECISE_WINDOW));
        let close = |now| approaching(&timers, Wakes::Undeferrable, now);
        assert_eq!(close(start + ms(199)), Some(deadline));
        assert_eq!(close(start + ms(100)), None);
        assert_eq!(close(deadline), None, "due, not approaching");
    }

    #[test]
    fn a_lease_deadline_wakes_only_a_node_that_wakes_for_every_timer() {
        let start = Instant::now();
        let mut timers = timers_with_election(start + ms(200));
        timers.arm(Timer::Lease, Some(start + ms(150)));
        timers.arm(Timer::CheckQuorum, Some(start + ms(180)));
        let wake = |timers: &Timers, wakes| wake_early(timers, wakes, Duration::ZERO);
        assert_eq!(wake(&timers, Wakes::Undeferrable), Some(start + ms(180)));
        assert_eq!(wake(&timers, Wakes::Every), Some(start + ms(150)));
        timers.arm(Timer::CheckQuorum, None);
        assert_eq!(wake(&timers, Wakes::Undeferrable), Some(start + ms(200)));
    }

    #[test]
    fn a_passed_deadline_is_for_the_alarm_even_inside_the_window() {
        let start = Instant::now();
        let mut timers = timers_with_election(start + ms(200));
        timers.arm(Timer::Lease, Some(start + ms(198)));
        let now = start + ms(199);
        assert_eq!(approaching(&timers, Wakes::Every, now), None);
        assert_eq!(
            approaching(&timers, Wakes::Undeferrable, now),
            Some(start + ms(200))
        );
    }

    /// One wait for `recv` or the deadlines of `timers`, from now.
    async fn wait_once<M>(
        recv: impl Future<Output = M>,
        timers: &Timers,
        precise: bool,
    ) -> Woken<M> {
        let alarm = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(alarm);
        wait(pin!(recv), timers, Wakes::Every, precise, alarm.as_mut()).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_on_a_paused_clock_reaches_the_election_deadline_precise_or_not() {
        // Precise: to the window, then a look that finds the clock unmoved
        // and sleeps the rest of the way. Not: straight to the deadline.
        for (precise, wakes) in [(true, vec![198, 200]), (false, vec![200])] {
            let start = Instant::now();
            let timers = timers_with_election(start + ms(200));
            let mut woken_at = Vec::new();
            while start.elapsed() < ms(200) && woken_at.len() < 4 {
                let woken = wait_once(pending::<()>(), &timers, precise).await;
                assert_eq!(woken, Woken::Clock);
                woken_at.push(start.elapsed().as_millis());
            }
            assert_eq!(woken_at, wakes, "precise: {precise}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_passed_deadline_comes_before_a_queued_message() {
        let timers = timers_with_election(Instant::now());
        let woken = wait_once(std::future::ready("message"), &timers, true).await;
        assert_eq!(woken, Woken::Clock);
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_while_the_clock_is_watched_is_taken() {
        let start = Instant::now();
        let timers = timers_with_election(start + ms(1));
        let woken = wait_once(std::future::ready("message"), &timers, true).await;
        assert_eq!(woken, Woken::Received("message"));
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
