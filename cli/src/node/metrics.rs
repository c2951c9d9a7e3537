//! GET /metrics: the node in Prometheus' terms, with `prometheus-client`
//! (the official Rust client: typed metrics, no global registry, both the
//! Prometheus text format and OpenMetrics). Names follow etcd's, Consul's
//! and Kubernetes' so dashboards carry over, prefixed `raft_election_`.
//!
//! What the node did comes from its records ([`Recorded::note`], the
//! server's `on_record` hook) and its process events
//! ([`Recorded::event`]); what holds now (the lease, the connections, the
//! transport's counters) is read at each scrape ([`Now`]).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use raft_election::{Input, Message, Record, Role};
use raft_election_cli::log_lines::NodeEvent;
use raft_election_runtime::{Delivery, Leadership, Noted, TcpStatsHandle};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;
use tokio::time::Instant;

/// One label, `kind` or `cause`.
type Label = [(&'static str, &'static str); 1];

/// What the records and events said, kept as metrics.
#[derive(Debug)]
pub(super) struct Recorded {
    is_leader: Gauge,
    has_leader: Gauge,
    term: Gauge,
    leader_changes: Counter,
    elections: Family<Label, Counter>,
    round_trips: Histogram,
    saves: Histogram,
    /// Sends the transport could not hand on.
    undeliverable: AtomicU64,
    program_running: Gauge,
    program_starts: Counter,
    program_last_exit_code: Gauge,
}

impl Default for Recorded {
    fn default() -> Self {
        Self {
            is_leader: Gauge::default(),
            has_leader: Gauge::default(),
            term: Gauge::default(),
            leader_changes: Counter::default(),
            elections: Family::default(),
            // 50 µs to about 1.6 s: loopback to a WAN's round trips.
            round_trips: Histogram::new(exponential_buckets(50e-6, 2.0, 16)),
            // 10 µs to about 0.3 s: a tmpfs write to a slow disk's fsync.
            saves: Histogram::new(exponential_buckets(10e-6, 2.0, 16)),
            undeliverable: AtomicU64::new(0),
            program_running: Gauge::default(),
            program_starts: Counter::default(),
            program_last_exit_code: Gauge::default(),
        }
    }
}

/// The kind of election a step started, if it started one: it made the
/// node a candidate of a new term.
fn election_kind(record: &Record) -> Option<&'static str> {
    let Record::Stepped {
        input,
        after,
        change,
    } = record
    else {
        return None;
    };
    if after.role != Role::Candidate || change.term_from.is_none() {
        return None;
    }
    Some(match input {
        Input::Receive {
            message: Message::TimeoutNow { .. },
            ..
        } => "transfer",
        _ if change.role_from == Some(Role::PreCandidate) => "pre-vote",
        _ => "timeout",
    })
}

impl Recorded {
    /// Takes in one record of the node (the server's hook: quick, no waits).
    pub(super) fn note(&self, noted: &Noted<'_>) {
        match noted.record {
            Record::Started(hard_state) => {
                self.term.set(gauge(hard_state.current_term.0));
            }
            Record::Stepped { after, change, .. } => {
                self.is_leader.set(i64::from(after.role == Role::Leader));
                self.has_leader.set(i64::from(after.leader_id.is_some()));
                self.term.set(gauge(after.current_term.0));
                if change.leader.is_some() {
                    self.leader_changes.inc();
                }
                if let Some(kind) = election_kind(noted.record) {
                    self.elections.get_or_create(&[("kind", kind)]).inc();
                }
            }
            Record::Saved(_) | Record::Sent { .. } => {}
        }
        if let Some(took) = noted.took {
            self.saves.observe(took.as_secs_f64());
        }
        if let Some(round_trip) = noted.round_trip {
            self.round_trips.observe(round_trip.as_secs_f64());
        }
        if noted.delivery.is_some_and(|d| d != Delivery::Delivered) {
            self.undeliverable.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes in one event of the process (the `--run-while-leader` program).
    pub(super) fn event(&self, event: &NodeEvent) {
        match event {
            NodeEvent::ProgramStarted { .. } => {
                self.program_running.set(1);
                self.program_starts.inc();
            }
            NodeEvent::ProgramExited { code, .. } => {
                self.program_running.set(0);
                // Killed by a signal: -1, as no exit code is negative.
                self.program_last_exit_code.set(code.map_or(-1, i64::from));
            }
            _ => {}
        }
    }
}

/// A count as a gauge's value.
fn gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// What holds at the moment of a scrape.
#[derive(Debug)]
struct Now {
    leadership: watch::Receiver<Leadership>,
    network: TcpStatsHandle,
    recorded: Arc<Recorded>,
}

impl Collector for Now {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let leadership = *self.leadership.borrow();
        let remaining = leadership
            .lease_until
            .filter(|_| leadership.has_lease())
            .map_or(0.0, |until| {
                until
                    .saturating_duration_since(Instant::now())
                    .as_secs_f64()
            });
        let has_lease = i64::from(leadership.has_lease());
        let help = "Whether this node leads and holds the leader lease (--leader-lease)";
        let metric = encoder.encode_descriptor("has_lease", help, None, MetricType::Gauge)?;
        ConstGauge::new(has_lease).encode(metric)?;
        let help = "How long the leader lease still holds, by this node's clock";
        let metric =
            encoder.encode_descriptor("lease_remaining_seconds", help, None, MetricType::Gauge)?;
        ConstGauge::new(remaining).encode(metric)?;
        let stats = self.network.snapshot();
        let help = "Whether this node's connection to each peer is up";
        let mut family =
            encoder.encode_descriptor("peer_connected", help, None, MetricType::Gauge)?;
        for (peer, peer_stats) in &stats.peers {
            let labels = [("peer", peer.0.to_string())];
            ConstGauge::new(i64::from(peer_stats.connected))
                .encode(family.encode_family(&labels)?)?;
        }
        let help = "Peer connections this node refused: a stranger, no or a wrong certificate, \
                    bad input, a stall, or over its limit";
        let mut family =
            encoder.encode_descriptor("rejected_connections", help, None, MetricType::Counter)?;
        for (cause, count) in &stats.refusals {
            let labels = [("cause", cause.name())];
            ConstCounter::new(*count).encode(family.encode_family(&labels)?)?;
        }
        let dropped: u64 = stats.peers.values().map(|p| p.dropped).sum();
        let undeliverable = self.recorded.undeliverable.load(Ordering::Relaxed);
        let help = "Messages lost inside this node: a full queue to a peer, a full inbox, a send \
                    the transport refused";
        let mut family =
            encoder.encode_descriptor("dropped_messages", help, None, MetricType::Counter)?;
        for (cause, count) in [
            ("peer_queue_full", dropped),
            ("inbox_full", stats.inbox_full),
            ("undeliverable", undeliverable),
        ] {
            ConstCounter::new(count).encode(family.encode_family(&[("cause", cause)])?)?;
        }
        Ok(())
    }
}

/// The registry a scrape encodes: `recorded`'s metrics and those of the
/// moment, read from `leadership` and `network`.
pub(super) fn registry(
    recorded: &Arc<Recorded>,
    leadership: watch::Receiver<Leadership>,
    network: TcpStatsHandle,
) -> Registry {
    let mut registry = Registry::with_prefix("raft_election");
    let r = recorded;
    let gauges = [
        ("is_leader", "Whether this node leads", &r.is_leader),
        (
            "has_leader",
            "Whether this node knows a leader of its term",
            &r.has_leader,
        ),
        ("term", "This node's current term", &r.term),
        (
            "program_running",
            "Whether the --run-while-leader program runs",
            &r.program_running,
        ),
        (
            "program_last_exit_code",
            "The last exit code of the --run-while-leader program (-1: killed by a signal)",
            &r.program_last_exit_code,
        ),
    ];
    for (name, help, metric) in gauges {
        registry.register(name, help, metric.clone());
    }
    let help = "Leaders this node learned: each election won or heard of";
    registry.register("leader_changes_seen", help, r.leader_changes.clone());
    let help = "Elections this node started, by kind: timeout, pre-vote (after a won pre-vote), \
                transfer (told to by its leader)";
    registry.register("elections_started", help, r.elections.clone());
    let help = "Heartbeat round trips this node measured as leader";
    registry.register("heartbeat_round_trip_seconds", help, r.round_trips.clone());
    let help = "Saves of the state file until durable (the write and its fsyncs)";
    registry.register("state_save_duration_seconds", help, r.saves.clone());
    let help = "Times the --run-while-leader program was started";
    registry.register("program_starts", help, r.program_starts.clone());
    registry.register_collector(Box::new(Now {
        leadership,
        network,
        recorded: Arc::clone(recorded),
    }));
    registry
}

/// The registry in the format the client accepts: OpenMetrics if its
/// Accept header names it (Prometheus does), else the Prometheus text
/// format. Returns the text and its content type.
pub(super) fn encode(registry: &Registry, accept: &str) -> (String, &'static str) {
    let mut text = String::new();
    // Writing to a String cannot fail.
    if accept.contains("application/openmetrics-text") {
        let _ = prometheus_client::encoding::text::encode(&mut text, registry);
        (
            text,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    } else {
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, registry);
        (
            text,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_election::{Change, HardState, NodeId, Summary, Term, Timer};
    use std::time::Duration;

    fn stepped(input: Input, role: Role, from: Option<Role>, term_moved: bool) -> Record {
        Record::Stepped {
            input,
            after: Summary {
                current_term: Term(3),
                voted_for: Some(NodeId(1)),
                role,
                leader_id: (role == Role::Leader).then_some(NodeId(1)),
            },
            change: Change {
                term_from: term_moved.then_some(Term(2)),
                role_from: from,
                ..Change::default()
            },
        }
    }

    #[test]
    fn elections_are_told_apart_by_what_started_them() {
        let timeout = Input::Timeout(Timer::Election);
        let now = Input::Receive {
            from: NodeId(2),
            message: Message::TimeoutNow { term: Term(2) },
        };
        let granted = Input::Receive {
            from: NodeId(2),
            message: Message::PreVoteResponse {
                term: Term(3),
                vote_granted: true,
            },
        };
        let follower = Some(Role::Follower);
        let cases = [
            (
                stepped(timeout, Role::Candidate, follower, true),
                Some("timeout"),
            ),
            (
                stepped(timeout, Role::Candidate, None, true),
                Some("timeout"),
            ),
            (
                stepped(now, Role::Candidate, follower, true),
                Some("transfer"),
            ),
            (
                stepped(granted, Role::Candidate, Some(Role::PreCandidate), true),
                Some("pre-vote"),
            ),
            (stepped(timeout, Role::PreCandidate, follower, false), None),
            (
                stepped(timeout, Role::Leader, Some(Role::Candidate), false),
                None,
            ),
        ];
        for (record, kind) in cases {
            assert_eq!(election_kind(&record), kind, "{record}");
        }
    }

    #[test]
    fn a_scrape_says_what_the_records_said() {
        let recorded = Recorded::default();
        let started = Record::Started(HardState {
            current_term: Term(2),
            voted_for: None,
        });
        recorded.note(&Noted {
            record: &started,
            delivery: None,
            took: None,
            round_trip: None,
        });
        let won = stepped(
            Input::Timeout(Timer::Election),
            Role::Leader,
            Some(Role::Candidate),
            true,
        );
        let saved = Record::Saved(HardState::default());
        recorded.note(&Noted {
            record: &won,
            delivery: None,
            took: None,
            round_trip: Some(Duration::from_micros(300)),
        });
        recorded.note(&Noted {
            record: &saved,
            delivery: None,
            took: Some(Duration::from_millis(2)),
            round_trip: None,
        });
        assert_eq!(recorded.is_leader.get(), 1);
        assert_eq!(recorded.term.get(), 3);
        let mut registry = Registry::with_prefix("raft_election");
        registry.register("saves", "saves", recorded.saves.clone());
        let (text, content_type) = encode(&registry, "*/*");
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        assert!(text.contains("raft_election_saves_count 1"), "{text}");
        let (text, _) = encode(&registry, "application/openmetrics-text; version=1.0.0");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
