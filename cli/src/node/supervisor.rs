//! `--run-while-leader`: one copy of a program, run while this node holds
//! the leader lease (README, "Run one active copy of a program").
//!
//! The program runs under a watchdog process (`raft-election
//! lease-watchdog`, `crate::watchdog`) that this supervisor renews with each
//! new lease deadline. The watchdog stops the program by the deadline on its
//! own, so a paused or killed node cannot leave it running past its lease.

use crate::watchdog::monotonic_now;
use raft_election::Term;
use raft_election_runtime::Leadership;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

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
}

/// The first wait before restarting a program that exited while the lease
/// held; doubled on each exit, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A program that ran this long before exiting restarts after the first
/// backoff again.
const HEALTHY_RUN: Duration = Duration::from_secs(10);

/// The program's watchdog, while one runs.
struct Running {
    watchdog: Child,
    stdin: ChildStdin,
    term: Term,
    started: Instant,
    stopping: bool,
}

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
            Some(run) if !run.stopping => {
                if stop.is_cancelled() || usable.is_none() || lease.term != run.term {
                    run.stopping = true;
                    let _ = run.stdin.write_all(b"stop\n").await;
                    info!(
                        event = "child_stop",
                        term = run.term.0,
                        "stopping the program: {}",
                        why(&stop, usable.is_none())
                    );
                } else if let Some(until) = lease.lease_until {
                    renew(&mut run.stdin, until).await;
                }
            }
            Some(_) => {}
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
        let wake_at = match (&running, usable) {
            (Some(run), Some(at)) if !run.stopping => at,
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
                match status {
                    Ok(status) => info!(event = "child_exit", term = run.term.0, "the program exited ({status}) after {ran:?}"),
                    Err(e) => warn!(event = "child_exit", "cannot wait for the program: {e}"),
                }
                if !run.stopping {
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

fn why(stop: &CancellationToken, lost: bool) -> &'static str {
    if stop.is_cancelled() {
        "the node is stopping"
    } else if lost {
        "the lease ends within the stop margin"
    } else {
        "the term changed"
    }
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
        warn!("cannot find this program's own path to start the watchdog");
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
            warn!(event = "child_start", "cannot start the watchdog: {e}");
            return None;
        }
    };
    let mut stdin = child.stdin.take()?;
    renew(&mut stdin, until).await;
    info!(
        event = "child_start",
        term = term.0,
        "holds the lease: started {}",
        config.command.join(" ")
    );
    Some(Running {
        watchdog: child,
        stdin,
        term,
        started: Instant::now(),
        stopping: false,
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
