//! A node's [`Record`]s as log lines: one `tracing` event per record, its
//! words in the message and the record itself, typed, in a field.
//!
//! Each line's `record` field holds the record as JSON text ([`Json`]), and
//! a send's line holds what became of the message in `delivery`; a peer
//! connection that ended badly is one line with a [`ConnectionEnded`] in
//! its `connection` field, and the count of such lines held back by the
//! rate limit one line with a [`Suppressed`] in `suppressed`. So a
//! reader deserializes the very values the driver reported instead of
//! parsing words back. A JSON log format embeds those fields as JSON
//! (`raft-election node --log-format json`); a text format leaves them out,
//! since the message already says the same in words.
//!
//! Levels follow what a reader wants at each verbosity: a start and every
//! step that changed the node's term, role, vote or leader (and the inputs
//! that start an election or a hand-over) at info; other messages, sent and
//! received, and durable saves at debug; heartbeats and their answers, and
//! the other timers, at trace. Every line has the target
//! [`RECORD_LOG_TARGET`], so a filter can ask for all of them at once (the
//! node's `--log-steps`), which is what a replay through the model needs.

use crate::transport::Delivery;
use raft_election::{HardState, Input, Message, NodeId, Record, Timer};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tracing::{Level, debug, info, trace, warn};

/// The tracing target of every record line. Enabled at trace level, it
/// logs every step, save and send: what trace validation replays.
pub const RECORD_LOG_TARGET: &str = "raft_election::records";

/// The names of the fields whose values are JSON text ([`Json`]): `record`
/// (a [`Record`]), `delivery` (a [`Delivery`]), `connection` (a
/// [`ConnectionEnded`]) and `suppressed` (a [`Suppressed`]).
pub const JSON_FIELDS: [&str; 4] = ["record", "delivery", "connection", "suppressed"];

/// A peer's connection to this node that ended other than normally,
/// logged once per connection with its address.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConnectionEnded {
    /// Where the connection came from.
    pub address: SocketAddr,
    /// The peer its hello named, if it said one.
    pub peer: Option<NodeId>,
    /// How it ended.
    pub end: ConnectionEnd,
    /// Why.
    pub reason: String,
}

/// How a peer's connection ended, when it did not end normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionEnd {
    /// The node closed it, for this cause. A warning, rate-limited per
    /// cause and address.
    Refused(Refusal),
    /// The peer stopped answering (keepalive or unacknowledged data timed
    /// out): it vanished without closing. Said at info level.
    Lost,
}

/// Why a node closed a connection: one cause per kind of refusal, so that
/// tests, the status output and metrics count them without reading words.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// From an address that is no configured peer's: closed before it
    /// takes any slot.
    UnknownAddress,
    /// Its address has as many connections in their handshake as it may.
    TooManyPending,
    /// No certificate (TLS): the peer sent none, or spoke no TLS at all.
    NoCertificate,
    /// A certificate this node's CA did not sign, or not one for a peer
    /// connection.
    UntrustedCertificate,
    /// A certificate that expired, or is not valid yet.
    ExpiredCertificate,
    /// Any other failure of the TLS handshake.
    TlsHandshake,
    /// Another identity than its certificate or its address proves: a
    /// certificate naming no peer of this cluster, a hello naming another
    /// node than its certificate, or a peer's hello from another peer's
    /// address.
    WrongIdentity,
    /// No finished handshake, hello or frame within the handshake timeout.
    Stalled,
    /// Bytes that are no frame of this cluster's protocol: garbage, an
    /// oversized or unknown frame, another cluster, a spoofed sender.
    BadFrame,
    /// A message of a term above the term ceiling.
    AboveCeiling,
}

impl Refusal {
    /// Every cause, in a fixed order.
    pub const ALL: [Self; 10] = [
        Self::UnknownAddress,
        Self::TooManyPending,
        Self::NoCertificate,
        Self::UntrustedCertificate,
        Self::ExpiredCertificate,
        Self::TlsHandshake,
        Self::WrongIdentity,
        Self::Stalled,
        Self::BadFrame,
        Self::AboveCeiling,
    ];

    /// Its position in [`Self::ALL`].
    #[must_use]
    pub fn index(self) -> usize {
        self as usize
    }

    /// Its name, as the status output and the logs write it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::UnknownAddress => "unknown_address",
            Self::TooManyPending => "too_many_pending",
            Self::NoCertificate => "no_certificate",
            Self::UntrustedCertificate => "untrusted_certificate",
            Self::ExpiredCertificate => "expired_certificate",
            Self::TlsHandshake => "tls_handshake",
            Self::WrongIdentity => "wrong_identity",
            Self::Stalled => "stalled",
            Self::BadFrame => "bad_frame",
            Self::AboveCeiling => "above_ceiling",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Refusals of one cause from one address that the rate limit kept out of
/// the log, reported on one line once the limit allows it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Suppressed {
    /// Their cause.
    pub cause: Refusal,
    /// Where they came from.
    pub address: IpAddr,
    /// How many.
    pub count: u64,
}

impl fmt::Display for Suppressed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "suppressed {} more: {} from {}",
            self.count, self.cause, self.address
        )
    }
}

/// Logs `suppressed` as one warning, typed in its `suppressed` field.
pub fn log_suppressed(suppressed: &Suppressed) {
    warn!(suppressed = %Json(suppressed), "{suppressed}");
}

impl fmt::Display for ConnectionEnded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let peer = self
            .peer
            .map_or_else(|| "an unknown peer".to_owned(), |id| id.to_string());
        match self.end {
            ConnectionEnd::Refused(cause) => write!(
                f,
                "closed the connection of {peer} from {} ({cause}): {}",
                self.address, self.reason
            ),
            ConnectionEnd::Lost => write!(
                f,
                "lost the connection of {peer} from {}: {}",
                self.address, self.reason
            ),
        }
    }
}

/// Logs `ended` as one line, typed in its `connection` field.
pub fn log_connection(ended: &ConnectionEnded) {
    match ended.end {
        ConnectionEnd::Refused(_) => warn!(connection = %Json(ended), "{ended}"),
        ConnectionEnd::Lost => info!(connection = %Json(ended), "{ended}"),
    }
}

/// A value written as its JSON text (serde's encoding), for a log field a
/// reader deserializes back into the same type.
#[derive(Clone, Copy, Debug)]
pub struct Json<'a, T>(pub &'a T);

impl<T: serde::Serialize> fmt::Display for Json<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Records and deliveries are plain data: encoding cannot fail.
        let text = serde_json::to_string(self.0).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

/// The level a record is logged at (see the module documentation).
#[must_use]
pub fn level_of(record: &Record) -> Level {
    match record {
        Record::Started(_) => Level::INFO,
        Record::Saved(_) => Level::DEBUG,
        Record::Sent { message, .. } => message_level(message),
        Record::Stepped { input, change, .. } => match input {
            _ if !change.is_empty() => Level::INFO,
            Input::Timeout(Timer::Election) | Input::TransferLeadership { .. } => Level::INFO,
            Input::Receive { message, .. } => message_level(message),
            Input::Start | Input::Timeout(_) => Level::TRACE,
        },
    }
}

/// Heartbeats and their answers at trace, every other message at debug.
fn message_level(message: &Message) -> Level {
    if message.is_heartbeat() {
        Level::TRACE
    } else {
        Level::DEBUG
    }
}

/// Logs a save of `hard_state` that took `took` as one line: the record,
/// and the duration in microseconds in its `took_us` field.
pub fn log_saved(hard_state: HardState, took: Duration) {
    let record = Record::Saved(hard_state);
    let took_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    debug!(target: RECORD_LOG_TARGET, record = %Json(&record), took_us, "{record}");
}

/// Logs `record` (and for a send, its `delivery`) as one line.
pub fn log_record(record: &Record, delivery: Option<Delivery>) {
    macro_rules! line {
        ($macro:ident) => {
            match delivery {
                Some(delivery) if delivery != Delivery::Delivered => $macro!(
                    target: RECORD_LOG_TARGET,
                    record = %Json(record),
                    delivery = %Json(&delivery),
                    "{record} ({delivery})"
                ),
                Some(delivery) => $macro!(
                    target: RECORD_LOG_TARGET,
                    record = %Json(record),
                    delivery = %Json(&delivery),
                    "{record}"
                ),
                None => $macro!(target: RECORD_LOG_TARGET, record = %Json(record), "{record}"),
            }
        };
    }
    match level_of(record) {
        Level::INFO => line!(info),
        Level::DEBUG => line!(debug),
        _ => line!(trace),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_election::{Change, NodeId, Role, Summary, Term};

    fn stepped(input: Input, change: Change) -> Record {
        Record::Stepped {
            input,
            after: Summary {
                current_term: Term(2),
                voted_for: None,
                role: Role::Follower,
                leader_id: None,
            },
            change,
        }
    }

    #[test]
    fn a_change_is_logged_at_info_a_vote_message_at_debug_and_a_heartbeat_at_trace() {
        let heartbeat = Message::AppendEntries {
            term: Term(2),
            leader_id: NodeId(1),
            round: 0,
        };
        let vote = Message::RequestVote {
            term: Term(2),
            candidate_id: NodeId(1),
            last_log_index: 0,
            last_log_term: Term(0),
            leadership_transfer: false,
        };
        let receive = |message| Input::Receive {
            from: NodeId(1),
            message,
        };
        let learned = Change {
            leader: Some(NodeId(1)),
            ..Change::default()
        };
        assert_eq!(level_of(&stepped(receive(heartbeat), learned)), Level::INFO);
        assert_eq!(
            level_of(&stepped(receive(heartbeat), Change::default())),
            Level::TRACE
        );
        assert_eq!(
            level_of(&stepped(receive(vote), Change::default())),
            Level::DEBUG
        );
        let election = Input::Timeout(Timer::Election);
        assert_eq!(level_of(&stepped(election, Change::default())), Level::INFO);
        assert_eq!(
            level_of(&Record::Sent {
                to: NodeId(2),
                message: heartbeat
            }),
            Level::TRACE
        );
        assert_eq!(level_of(&Record::Saved(HardState::default())), Level::DEBUG);
    }

    #[test]
    fn a_record_written_as_json_reads_back_as_the_same_record() {
        let record = stepped(
            Input::Timeout(Timer::CheckQuorum),
            Change {
                role_from: Some(Role::Leader),
                ..Change::default()
            },
        );
        let text = Json(&record).to_string();
        let read: Record = serde_json::from_str(&text).expect("a record's own JSON");
        assert_eq!(read, record);
        let delivery: Delivery =
            serde_json::from_str(&Json(&Delivery::QueueFull).to_string()).expect("its JSON");
        assert_eq!(delivery, Delivery::QueueFull);
    }
}
