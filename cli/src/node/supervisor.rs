//! `--run-while-leader`: one copy of a program, run while this node holds
//! the leader lease (docs/lease.md).
//!
//! The program runs under a watchdog process (`raft-election
//! lease-watchdog`, `crate::watchdog`) that this supervisor renews with each
//! new lease deadline. The watchdog stops the program by the deadline on its
//! own, so a paused or killed node cannot leave it running past its lease.

use crate::watchdog::monotonic_now;
use raft_election::Term;
use raft_election_cli::log_lines::{NodeEvent, log_event};
use raft_election_runtime::Leadership;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

/// How the program is run and stopped.
#[derive(Clone, Debug)]
pub(crate) struct SupervisorConfig {
    /// The program and its arguments.
    pub(crate) command: Vec<String>,
    /// This node's id, for `RAFT_NODE_ID`.
    pub(crate) node_id: u8,
    /// SIGTERM this long before the lease can end.
    pub(crate) stop_margin: Duration,
    /// SIGKILL this long after SIGTERM (less than the margin).
    pub(crate) kill_grace: Duration,
    /// When the node is told to stop, how long the program may take to
    /// finish while the node keeps leading (zero: stopped at once).
    pub(crate) drain_timeout: Duration,
    /// Where the program's start and exit are told (the log, the metrics).
    pub(crate) events: super::Events,
}

/// The first wait before restarting a program that exited while the lease
/// held; doubled on each exit, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A program that ran this long before exiting restarts after the first
/// backoff again.
const HEALTHY_RUN: Duration = Duration::from_secs(10);

/// Where a running program is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Running under the lease, renewed.
    Running,
    /// Told to finish (SIGTERM) because the node stops, the lease still
    /// renewed, until this instant at the latest.
    Draining(Instant),
    /// Told to stop: SIGKILL follows the grace.
    Stopping,
}

/// The program's watchdog, while one runs.
struct Running {
    watchdog: Child,
    stdin: ChildStdin,
    term: Term,
    started: Instant,
    phase: Phase,
}

impl Running {
    /// Tells the watchdog to stop the program now, and says why.
    async fn stop(&mut self, reason: &str) {
        self.phase = Phase::Stopping;
        let _ = self.stdin.write_all(b"stop\n").await;
        log_event(&NodeEvent::ProgramStopping {
            term: self.term,
            reason: reason.to_owned(),
        });
    }

    /// Acts on the lease and the stop request: renews, drains or stops.
    async fn follow(
        &mut self,
        lease: &Leadership,
        usable: Option<Instant>,
        config: &SupervisorConfig,
        stop: &CancellationToken,
    ) {
        let now = Instant::now();
        let lost = usable.is_none() || lease.term != self.term;
        match self.phase {
            Phase::Stopping => return,
            _ if lost => {
                let reason = if usable.is_none() {
                    LEASE_ENDS
                } else {
                    TERM_CHANGED
                };
                self.stop(reason).await;
                return;
            }
            Phase::Running if stop.is_cancelled() && config.drain_timeout.is_zero() => {
                self.stop(NODE_STOPS).await;
                return;
            }
            Phase::Running if stop.is_cancelled() => {
                self.phase = Phase::Draining(now + config.drain_timeout);
                let _ = self.stdin.write_all(b"drain\n").await;
                log_event(&NodeEvent::ProgramDraining {
                    term: self.term,
                    timeout_seconds: config.drain_timeout.as_secs_f64(),
                });
            }
            Phase::Draining(until) if now >= until => {
                self.stop("it did not finish within the drain timeout")
                    .await;
                return;
            }
            Phase::Running | Phase::Draining(_) => {}
        }
        if let Some(until) = lease.lease_until {
            renew(&mut self.stdin, until).await;
        }
    }
}

const NODE_STOPS: &str = "the node is stopping";
const LEASE_ENDS: &str = "the lease ends within the stop margin";
const TERM_CHANGED: &str = "the term changed";

/// Runs the program while this node holds the lease, until `stop` is
/// cancelled; then stops it and returns once it has exited.
pub(crate) async fn supervise(
    config: SupervisorConfig,
    mut leadership: watch::Receiver<Leadership>,
    stop: CancellationToken,
) {
    let mut running: Option<Running> = None;
    let mut backoff = FIRST_BACKOFF;
    let mut not_before = Instant::now();
    let mut closed = false;
    // Each turn waits for a lease change, a deadline or the program's exit.
    loop {
        let now = Instant::now();
        let lease = *leadership.borrow_and_update();
        let usable = usable_until(&lease, config.stop_margin, now);
        match running.as_mut() {
            Some(run) => run.follow(&lease, usable, &config, &stop).await,
            None if stop.is_cancelled() => return,
            None => {
                if let (Some(until), true) =
                    (lease.lease_until, usable.is_some() && now >= not_before)
                {
                    running = start(&config, lease.term, until).await;
                }
            }
        }
        // Wake for the margin's start even if no lease news comes, and for
        // the end of a backoff.
        let wake_at = match (running.as_ref().map(|run| run.phase), usable) {
            (Some(Phase::Draining(until)), Some(at)) => until.min(at),
            (Some(Phase::Running), Some(at)) => at,
            (None, Some(_)) => not_before.max(now + Duration::from_millis(1)),
            _ => now + Duration::from_secs(3_600),
        };
        tokio::select! {
            changed = leadership.changed(), if !closed => {
                // The server is gone: nothing will renew the lease.
                if changed.is_err() {
                    closed = true;
                    stop.cancel();
                }
            }
            () = sleep_until(wake_at) => {}
            // Once cancelled, the top of the loop acts on it.
            () = stop.cancelled(), if !stop.is_cancelled() => {}
            status = wait(&mut running) => {
                let Some(run) = running.take() else { continue };
                let ran = run.started.elapsed();
                config.events.tell(&match status {
                    Ok(status) => NodeEvent::ProgramExited {
                        term: run.term,
                        code: status.code(),
                        seconds: ran.as_secs_f64(),
                    },
                    Err(e) => NodeEvent::ProgramError {
                        reason: format!("cannot wait for it: {e}"),
                    },
                });
                if run.phase == Phase::Running {
                    // It exited by itself while the lease held: start it
                    // again, after a wait that grows while it keeps failing.
                    backoff = if ran >= HEALTHY_RUN { FIRST_BACKOFF } else { backoff };
                    not_before = Instant::now() + backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                if stop.is_cancelled() {
                    return;
                }
            }
        }
    }
}

/// Until when the program may run under `lease`: its end less the margin,
/// if that is still ahead.
fn usable_until(lease: &Leadership, margin: Duration, now: Instant) -> Option<Instant> {
    if !lease.has_lease() {
        return None;
    }
    let until = lease.lease_until?.checked_sub(margin)?;
    (until > now).then_some(until)
}

/// The lease end as CLOCK_MONOTONIC nanoseconds, for the watchdog. The
/// monotonic clock is read before Tokio's: the deadline sent is never later
/// than the lease's.
fn deadline_line(until: Instant) -> String {
    // Unreadable (never on Linux): a deadline already past, which stops it.
    let Some(monotonic) = monotonic_now() else {
        return "until 0\n".to_owned();
    };
    let remaining = until.saturating_duration_since(Instant::now());
    format!("until {}\n", (monotonic + remaining).as_nanos())
}

async fn renew(stdin: &mut ChildStdin, until: Instant) {
    // A watchdog that is gone has stopped the program: its exit is reported.
    let _ = stdin.write_all(deadline_line(until).as_bytes()).await;
}

async fn start(config: &SupervisorConfig, term: Term, until: Instant) -> Option<Running> {
    let Ok(exe) = std::env::current_exe() else {
        log_event(&NodeEvent::ProgramError {
            reason: "cannot find this program's own path to start the watchdog".to_owned(),
        });
        return None;
    };
    let mut watchdog = Command::new(exe);
    watchdog
        .arg("lease-watchdog")
        .arg("--stop-margin-ms")
        .arg(config.stop_margin.as_millis().to_string())
        .arg("--kill-grace-ms")
        .arg(config.kill_grace.as_millis().to_string())
        .arg("--")
        .args(&config.command)
        .env("RAFT_TERM", term.0.to_string())
        .env("RAFT_NODE_ID", config.node_id.to_string())
        .env("RAFT_LEADER", "1")
        .stdin(Stdio::piped())
        // Its own process group: a signal meant for the node's group (a
        // terminal's Ctrl-Z) does not pause the watchdog with it.
        .process_group(0)
        .kill_on_drop(false);
    let mut child = match watchdog.spawn() {
        Ok(child) => child,
        Err(e) => {
            log_event(&NodeEvent::ProgramError {
                reason: format!("cannot start the watchdog: {e}"),
            });
            return None;
        }
    };
    let mut stdin = child.stdin.take()?;
    renew(&mut stdin, until).await;
    config.events.tell(&NodeEvent::ProgramStarted {
        term,
        command: config.command.join(" "),
    });
    Some(Running {
        watchdog: child,
        stdin,
        term,
        started: Instant::now(),
        phase: Phase::Running,
    })
}

/// The watchdog's exit, or never if none runs.
async fn wait(running: &mut Option<Running>) -> std::io::Result<std::process::ExitStatus> {
    match running {
        Some(run) => run.watchdog.wait().await,
        None => {
            std::future::pending::<()>().await;
            unreachable!("pending never completes")
        }
    }
}
