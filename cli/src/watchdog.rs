//! `raft-election lease-watchdog`: the process between a node and the
//! program it runs while it holds the leader lease (`node
//! --run-while-leader`). It starts the program in a process group of its
//! own and stops it by the lease's deadline whatever the node does: the
//! node renews the deadline on its standard input, and if no renewal comes
//! (the node is paused by SIGSTOP, stalled, swapped out or killed), this
//! process alone sends SIGTERM `stop-margin` before the deadline and
//! SIGKILL `kill-grace` later, still before it.
//!
//! The protocol, one line at a time on standard input:
//! - `until <ns>`: the lease now ends at `<ns>` on CLOCK_MONOTONIC (the
//!   system-wide clock every process of the machine reads alike);
//! - `drain`: SIGTERM now, and let the program finish for as long as the
//!   deadline is renewed (the node stops, and keeps its lease meanwhile);
//! - `stop`: stop the program now (SIGTERM, SIGKILL after the grace);
//! - end of input (the node exited or was killed): the same as `stop`.
//!
//! Whatever it was told, once the deadline less the margin passes the
//! program gets SIGTERM, and SIGKILL a grace later, still before the
//! deadline.
//!
//! It exits with the program's status once the program has exited.

use clap::Args;
use nix::sys::signal::{Signal, killpg};
use nix::time::{ClockId, clock_gettime};
use nix::unistd::Pid;
use std::io::BufRead;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitCode};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Run a program until a lease deadline renewed on standard input passes
/// (used by `node --run-while-leader`; not meant to be run by hand).
#[derive(Debug, Args)]
pub(crate) struct WatchdogArgs {
    /// SIGTERM this long before the deadline, in milliseconds.
    #[arg(long)]
    stop_margin_ms: u64,
    /// SIGKILL this long after SIGTERM, in milliseconds (less than the margin).
    #[arg(long)]
    kill_grace_ms: u64,
    /// The program and its arguments.
    #[arg(required = true, last = true)]
    command: Vec<String>,
}

/// CLOCK_MONOTONIC now, the clock the node's deadlines use; `None` if it
/// cannot be read (never on Linux). Each caller picks the safe side.
pub(crate) fn monotonic_now() -> Option<Duration> {
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .ok()
        .map(Duration::from)
}

/// The watchdog's now: a clock that cannot be read counts as past every
/// deadline, so the program is stopped.
fn now() -> Duration {
    monotonic_now().unwrap_or(Duration::MAX)
}

#[derive(Debug, Default)]
struct Shared {
    /// The deadline on CLOCK_MONOTONIC; `None` once told to stop.
    until: Option<Duration>,
    stop: bool,
    drain: bool,
    exited: Option<std::process::ExitStatus>,
}

/// Runs the watchdog; exits with the program's status (1 if it could not start).
pub(crate) fn main(args: WatchdogArgs) -> ExitCode {
    if args.kill_grace_ms >= args.stop_margin_ms {
        eprintln!("error: --kill-grace-ms must be less than --stop-margin-ms");
        return ExitCode::FAILURE;
    }
    let margin = Duration::from_millis(args.stop_margin_ms);
    let grace = Duration::from_millis(args.kill_grace_ms);
    // The first deadline comes before the program starts: it never runs
    // without one.
    let mut line = String::new();
    // Stdin's buffer is shared: the reader thread below goes on after it.
    let first = match std::io::stdin().read_line(&mut line) {
        Ok(1..) => parse_until(&line),
        _ => None,
    };
    let Some(first) = first else {
        eprintln!("error: no lease deadline on standard input: not starting the program");
        return ExitCode::FAILURE;
    };
    if now().saturating_add(margin) >= first {
        eprintln!("error: the lease ends within the stop margin: not starting the program");
        return ExitCode::FAILURE;
    }
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let mut child = match Command::new(program).args(rest).process_group(0).spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("error: cannot start {program}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let group = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let shared = Arc::new((
        Mutex::new(Shared {
            until: Some(first),
            ..Shared::default()
        }),
        Condvar::new(),
    ));
    // Renewals: each line updates the deadline; the end of input stops.
    let reader = Arc::clone(&shared);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let (lock, wake) = &*reader;
            let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
            if line.trim() == "stop" {
                state.stop = true;
            } else if line.trim() == "drain" {
                state.drain = true;
            } else if let Some(until) = parse_until(&line) {
                state.until = Some(until);
            }
            wake.notify_all();
        }
        let (lock, wake) = &*reader;
        lock.lock().unwrap_or_else(PoisonError::into_inner).stop = true;
        wake.notify_all();
    });
    // The program's exit, reported to the loop below.
    let waiter = Arc::clone(&shared);
    std::thread::spawn(move || {
        let status = child.wait();
        let (lock, wake) = &*waiter;
        let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
        state.exited = Some(status.unwrap_or_else(|_| std::process::ExitStatus::from_raw(1 << 8)));
        wake.notify_all();
    });
    let (lock, wake) = &*shared;
    let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
    let mut signals = Signals::default();
    // Each turn waits for news or the next deadline; it ends when the
    // program has exited.
    loop {
        if let Some(status) = state.exited {
            return status
                .code()
                .and_then(|c| u8::try_from(c).ok())
                .map_or(ExitCode::FAILURE, ExitCode::from);
        }
        let next = signals.due(&state, now(), margin, grace, group);
        let wait = next.saturating_sub(now()).max(Duration::from_micros(100));
        state = wake
            .wait_timeout(state, wait)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

/// The signals sent so far.
#[derive(Debug, Default)]
struct Signals {
    /// When SIGTERM was sent.
    terminated: Option<Duration>,
    /// When the grace before SIGKILL began: at a stop, or when the
    /// deadline less the margin passed; never for a drain alone.
    grace_from: Option<Duration>,
    killed: bool,
}

impl Signals {
    /// Sends what is due at `now`; returns when to look again.
    fn due(
        &mut self,
        state: &Shared,
        now: Duration,
        margin: Duration,
        grace: Duration,
        group: Pid,
    ) -> Duration {
        let stop_at = state
            .until
            .map_or(now, |until| until.saturating_sub(margin));
        let lease_ends = now >= stop_at;
        if self.terminated.is_none() && (state.stop || state.drain || lease_ends) {
            let _ = killpg(group, Signal::SIGTERM);
            self.terminated = Some(now);
        }
        if self.terminated.is_some() && self.grace_from.is_none() && (state.stop || lease_ends) {
            // A lease that ran out counts from its margin's start, so the
            // SIGKILL still comes before the deadline.
            self.grace_from = Some(if state.stop { now } else { stop_at.min(now) });
        }
        match self.grace_from {
            Some(from) if !self.killed && now >= from + grace => {
                let _ = killpg(group, Signal::SIGKILL);
                self.killed = true;
                now + Duration::from_secs(3_600)
            }
            Some(from) if !self.killed => from + grace,
            Some(_) => now + Duration::from_secs(3_600),
            None => stop_at,
        }
    }
}

fn parse_until(line: &str) -> Option<Duration> {
    let nanos = line.trim().strip_prefix("until ")?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(nanos))
}
