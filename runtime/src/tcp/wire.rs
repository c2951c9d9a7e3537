//! What goes over a peer connection, and the one decoder of it.
//!
//! A connection is a stream of frames, each a 2-byte big-endian length and
//! that many bytes (tokio-util's `LengthDelimitedCodec`, at most
//! [`MAX_FRAME_LENGTH`]). A frame's first byte is the wire version
//! ([`WIRE_VERSION`]); the rest is a [`Frame`] in postcard: the cluster id,
//! the sender's id and a [`Body`]. The first frame of every connection is a
//! [`Body::Hello`] naming the node it meant to reach; every later one carries
//! one Raft message.
//!
//! Why postcard: the messages derive serde (the core's `serde` feature), so
//! a new message variant needs no hand-written code, and postcard's varints
//! keep a heartbeat to about 9 bytes. It is stable (1.0 wire format),
//! `no_std`-grade strict, and decodes only what the types allow. Why the
//! version byte in front rather than inside: a node meeting a newer peer
//! reads one byte, closes the connection and logs "wire version 3, but this
//! node speaks version 2" with the peer's address, instead of failing
//! somewhere in the body. Nothing is sent back (a connection carries frames
//! one way only): the newer peer sees its connection closed and retries
//! with backoff, and its operator reads the reason in this node's log.
//!
//! The receiving side (`Inbound`, inside this crate) is a state machine
//! over bytes, with no I/O: the connection task feeds it what the socket
//! gave, and the fuzz target `frame` ([`super::fuzzing`]) feeds it anything
//! at all.

use crate::record_log::Refusal;
use bytes::{Bytes, BytesMut};
use raft_election::{ClusterId, Config, Message, NodeId, Term};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

/// The wire version this build speaks. Change it whenever the encoding of
/// [`Frame`] changes other than by new enum variants at the end (a peer
/// that does not know a variant closes the connection, as it should).
pub const WIRE_VERSION: u8 = 3;

/// The longest frame accepted, in bytes after the length prefix. A frame
/// today is at most 56 bytes (an AppendEntriesResponse with every number
/// at its largest); the room is for messages yet to come, and the
/// limit is what a garbage length prefix can make a receiver buffer.
pub const MAX_FRAME_LENGTH: usize = 256;

/// Bytes of the length prefix.
const LENGTH_FIELD: usize = 2;

/// One frame after the version byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The cluster the sender belongs to.
    pub cluster: ClusterId,
    /// The sender.
    pub from: NodeId,
    /// What it says.
    pub body: Body,
}

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// The first frame of a connection: the node the sender meant to reach.
    Hello {
        /// The intended receiver.
        to: NodeId,
    },
    /// A Raft message.
    Message(Message),
}

/// The length-delimited codec of peer connections, with its size limit.
#[must_use]
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(LENGTH_FIELD)
        .max_frame_length(MAX_FRAME_LENGTH)
        .new_codec()
}

/// Appends `frame`, length prefix included, to `out`.
pub fn encode(frame: &Frame, out: &mut BytesMut) {
    let mut payload = Vec::with_capacity(32);
    payload.push(WIRE_VERSION);
    // A frame is a few ids and integers: serializing it into a Vec cannot fail.
    let payload = postcard::to_extend(frame, payload).unwrap_or_default();
    // Under the limit by construction (checked by a test); an oversized
    // frame would be refused by the codec and is then not sent.
    let _ = codec().encode(Bytes::from(payload), out);
}

/// Takes one length-prefixed frame from the front of `bytes` and decodes
/// it: `None` if no whole frame is there yet.
pub(crate) fn codec_decode(bytes: &mut BytesMut) -> Option<Result<Frame, FrameError>> {
    match codec().decode(bytes) {
        Ok(Some(payload)) => Some(decode(&payload)),
        Ok(None) => None,
        Err(_) => Some(Err(FrameError::TooLong)),
    }
}

/// Decodes one frame's bytes (after the length prefix).
pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
    let (&version, rest) = bytes.split_first().ok_or(FrameError::Empty)?;
    if version != WIRE_VERSION {
        return Err(FrameError::UnknownVersion(version));
    }
    match postcard::take_from_bytes::<Frame>(rest) {
        Ok((frame, [])) => Ok(frame),
        Ok((_, trailing)) => Err(FrameError::Trailing(trailing.len())),
        Err(e) => Err(FrameError::Garbage(e.to_string())),
    }
}

/// Why bytes from a peer are not a frame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than [`MAX_FRAME_LENGTH`] bytes.
    #[error("a frame longer than {MAX_FRAME_LENGTH} bytes")]
    TooLong,
    /// A frame of zero bytes.
    #[error("an empty frame")]
    Empty,
    /// A version this build does not speak.
    #[error("wire version {0}, but this node speaks version {WIRE_VERSION}")]
    UnknownVersion(u8),
    /// The body does not decode.
    #[error("garbage ({0})")]
    Garbage(String),
    /// The body decodes but bytes are left over.
    #[error("{0} bytes after the frame")]
    Trailing(usize),
}

/// Why a connection is closed: the one line logged for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Bytes that are no frame.
    #[error("{0}")]
    Frame(#[from] FrameError),
    /// A frame of another cluster.
    #[error("a frame of {theirs}, but this node is in {ours}")]
    WrongCluster {
        /// The cluster the frame names.
        theirs: ClusterId,
        /// This node's.
        ours: ClusterId,
    },
    /// A sender that is not a voter, or is this node itself.
    #[error("sender {0} is not a peer of this node")]
    UnknownSender(NodeId),
    /// A hello meant for another node (a wrong address in its configuration).
    #[error("a hello for {to}, but this is {me}")]
    NotForMe {
        /// Whom the sender meant to reach.
        to: NodeId,
        /// This node.
        me: NodeId,
    },
    /// A message before the hello.
    #[error("a message before the hello")]
    NoHello,
    /// A second hello on one connection.
    #[error("a second hello")]
    SecondHello,
    /// A hello from a peer, but not from the IP address configured for it.
    #[error("a hello from {peer}, whose address is {expected}, but from {actual}")]
    WrongAddress {
        /// The peer the hello named.
        peer: NodeId,
        /// Its configured IP address.
        expected: IpAddr,
        /// Where the connection comes from.
        actual: IpAddr,
    },
    /// A hello from a peer configured by host name, from an IP address the
    /// name does not resolve to now.
    #[error("a hello from {peer}, whose address is {name}, but from {actual}: {why}")]
    WrongHost {
        /// The peer the hello named.
        peer: NodeId,
        /// Its configured name and port.
        name: String,
        /// Where the connection comes from.
        actual: IpAddr,
        /// What the lookup found, or why it failed.
        why: String,
    },
    /// A message of a term above the [`Term::CEILING`]. No correct node
    /// sends one (no node passes the ceiling), and the core would drop it.
    #[error(
        "{kind} of {term}, above the term ceiling {ceiling}",
        ceiling = Term::CEILING
    )]
    AboveCeiling {
        /// The message's kind.
        kind: &'static str,
        /// Its term.
        term: Term,
    },
    /// A frame whose sender is not the one the hello named.
    #[error("a frame from {claimed} on the connection of {peer}")]
    SpoofedSender {
        /// The sender the hello named.
        peer: NodeId,
        /// The sender the frame names.
        claimed: NodeId,
    },
    /// A hello naming another node than the connection's certificate.
    #[error("a hello from {claimed} on a connection whose certificate names {certified}")]
    NotItsCertificate {
        /// The sender the hello named.
        claimed: NodeId,
        /// The peer the certificate names.
        certified: NodeId,
    },
}

impl Rejection {
    /// Its cause, as the refusal counts and the rate limit key it.
    #[must_use]
    pub fn refusal(&self) -> Refusal {
        match self {
            Self::WrongAddress { .. } | Self::WrongHost { .. } | Self::NotItsCertificate { .. } => {
                Refusal::WrongIdentity
            }
            Self::AboveCeiling { .. } => Refusal::AboveCeiling,
            Self::Frame(_)
            | Self::WrongCluster { .. }
            | Self::UnknownSender(_)
            | Self::NotForMe { .. }
            | Self::NoHello
            | Self::SecondHello
            | Self::SpoofedSender { .. } => Refusal::BadFrame,
        }
    }
}

/// What a whole frame from a peer amounted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// The hello was accepted: the connection is `peer`'s.
    Hello {
        /// The peer.
        peer: NodeId,
    },
    /// A Raft message from the connection's peer.
    Message {
        /// The peer, as its hello named it.
        from: NodeId,
        /// The message.
        message: Message,
    },
}

/// The receiving side of one peer connection: the codec, the handshake and
/// the checks every frame must pass. No I/O: feed it bytes.
#[derive(Debug)]
pub(crate) struct Inbound {
    me: NodeId,
    cluster: ClusterId,
    config: Config,
    /// The peer its hello named, once accepted.
    peer: Option<NodeId>,
    /// The peer its TLS certificate names, if it has one: its hello must
    /// name the same.
    certified: Option<NodeId>,
    codec: LengthDelimitedCodec,
    /// The codec took a frame's length prefix out of the buffer and waits
    /// for its body.
    prefix_taken: bool,
}

impl Inbound {
    /// A connection accepted by node `config.id()` of `cluster`.
    #[must_use]
    pub(crate) fn new(config: &Config, cluster: ClusterId) -> Self {
        Self {
            me: config.id(),
            cluster,
            config: config.clone(),
            peer: None,
            certified: None,
            codec: codec(),
            prefix_taken: false,
        }
    }

    /// Whether a frame has begun and is not whole yet: bytes of it wait in
    /// `buffer`, or its length prefix was taken from it already.
    #[must_use]
    pub(crate) fn mid_frame(&self, buffer: &BytesMut) -> bool {
        self.prefix_taken || !buffer.is_empty()
    }

    /// The peer, once its hello was accepted.
    #[must_use]
    pub(crate) fn peer(&self) -> Option<NodeId> {
        self.peer
    }

    /// The connection's TLS certificate names `peer`: a hello must name it
    /// too.
    pub(crate) fn certified(&mut self, peer: NodeId) {
        self.certified = Some(peer);
    }

    /// Takes the next whole frame from the front of `buffer`: `Ok(None)` if
    /// it holds no whole frame yet, an error if the connection must close.
    /// Consumes what it read; after an error, nothing more is to be read.
    pub(crate) fn decode(&mut self, buffer: &mut BytesMut) -> Result<Option<Received>, Rejection> {
        let before = buffer.len();
        let bytes = match self.codec.decode(buffer) {
            Ok(Some(bytes)) => {
                self.prefix_taken = false;
                bytes
            }
            Ok(None) => {
                self.prefix_taken |= buffer.len() < before;
                return Ok(None);
            }
            // The codec's only error is an announced length over the limit.
            Err(_) => return Err(FrameError::TooLong.into()),
        };
        let frame = decode(&bytes)?;
        if frame.cluster != self.cluster {
            return Err(Rejection::WrongCluster {
                theirs: frame.cluster,
                ours: self.cluster,
            });
        }
        if frame.from == self.me || !self.config.is_voter(frame.from) {
            return Err(Rejection::UnknownSender(frame.from));
        }
        if let (None, Body::Hello { .. }, Some(certified)) = (self.peer, frame.body, self.certified)
        {
            if certified != frame.from {
                return Err(Rejection::NotItsCertificate {
                    claimed: frame.from,
                    certified,
                });
            }
        }
        match (self.peer, frame.body) {
            (None, Body::Hello { to }) if to == self.me => {
                self.peer = Some(frame.from);
                Ok(Some(Received::Hello { peer: frame.from }))
            }
            (None, Body::Hello { to }) => Err(Rejection::NotForMe { to, me: self.me }),
            (None, Body::Message(_)) => Err(Rejection::NoHello),
            (Some(_), Body::Hello { .. }) => Err(Rejection::SecondHello),
            (Some(peer), Body::Message(_)) if frame.from != peer => Err(Rejection::SpoofedSender {
                peer,
                claimed: frame.from,
            }),
            (Some(_), Body::Message(message)) if message.term() > Term::CEILING => {
                Err(Rejection::AboveCeiling {
                    kind: message.name(),
                    term: message.term(),
                })
            }
            (Some(peer), Body::Message(message)) => Ok(Some(Received::Message {
                from: peer,
                message,
            })),
        }
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.body {
            Body::Hello { to } => write!(f, "hello {} -> {to} ({})", self.from, self.cluster),
            Body::Message(message) => write!(f, "{} -> {message} ({})", self.from, self.cluster),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_election::Timing;

    const CLUSTER: ClusterId = ClusterId(9);

    fn config() -> Config {
        Config::new(
            NodeId(1),
            [NodeId(1), NodeId(2), NodeId(3)],
            Timing::default(),
        )
        .unwrap()
    }

    fn frame(from: u8, body: Body) -> Frame {
        Frame {
            cluster: CLUSTER,
            from: NodeId(from),
            body,
        }
    }

    fn heartbeat(term: u64, leader: u8) -> Body {
        Body::Message(Message::AppendEntries {
            term: Term(term),
            leader_id: NodeId(leader),
            round: 0,
        })
    }

    fn stream(frames: &[Frame]) -> BytesMut {
        let mut out = BytesMut::new();
        for frame in frames {
            encode(frame, &mut out);
        }
        out
    }

    fn largest_messages() -> [Message; 7] {
        let term = Term(u64::MAX);
        [
            Message::RequestVote {
                term,
                candidate_id: NodeId(u8::MAX),
                last_log_index: u64::MAX,
                last_log_term: term,
                leadership_transfer: true,
            },
            Message::RequestVoteResponse {
                term,
                vote_granted: true,
            },
            Message::AppendEntries {
                term,
                leader_id: NodeId(u8::MAX),
                round: u64::MAX,
            },
            Message::AppendEntriesResponse {
                term,
                success: true,
                last_log_index: u64::MAX,
                last_log_term: term,
                round: u64::MAX,
            },
            Message::PreVote {
                term,
                candidate_id: NodeId(u8::MAX),
                last_log_index: u64::MAX,
                last_log_term: term,
            },
            Message::PreVoteResponse {
                term,
                vote_granted: true,
            },
            Message::TimeoutNow { term },
        ]
    }

    #[test]
    fn every_message_round_trips_and_the_largest_frame_fits_the_limit() {
        for message in largest_messages() {
            let frame = Frame {
                cluster: ClusterId(u64::MAX),
                from: NodeId(u8::MAX),
                body: Body::Message(message),
            };
            let mut bytes = stream(&[frame]);
            let payload = codec().decode(&mut bytes).unwrap().unwrap();
            assert!(payload.len() <= 56, "{} bytes: {frame}", payload.len());
            assert_eq!(decode(&payload), Ok(frame));
        }
    }

    /// The encoding is the protocol: a change here breaks mixed-version
    /// clusters unless [`WIRE_VERSION`] changes with it.
    #[test]
    fn the_encoding_of_a_hello_and_a_heartbeat_is_pinned() {
        let bytes = stream(&[
            frame(2, Body::Hello { to: NodeId(1) }),
            frame(2, heartbeat(300, 2)),
        ]);
        assert_eq!(
            bytes.as_ref(),
            [0, 5, 3, 9, 2, 0, 1, 0, 9, 3, 9, 2, 1, 2, 0xac, 2, 2, 0]
        );
    }

    #[test]
    fn a_hello_then_messages_are_received_as_the_peers() {
        let mut inbound = Inbound::new(&config(), CLUSTER);
        let mut bytes = stream(&[
            frame(2, Body::Hello { to: NodeId(1) }),
            frame(2, heartbeat(3, 2)),
        ]);
        // A frame cut in two arrives whole once its second half does.
        let mut first = bytes.split_to(3);
        assert_eq!(inbound.decode(&mut first), Ok(None));
        first.unsplit(bytes);
        let mut bytes = first;
        assert_eq!(
            inbound.decode(&mut bytes),
            Ok(Some(Received::Hello { peer: NodeId(2) }))
        );
        let Ok(Some(Received::Message { from, .. })) = inbound.decode(&mut bytes) else {
            panic!("a message");
        };
        assert_eq!(from, NodeId(2));
        assert_eq!(inbound.decode(&mut bytes), Ok(None));
        assert_eq!(inbound.peer(), Some(NodeId(2)));
    }

    /// The codec takes a length prefix out of the buffer before the body
    /// arrives: the frame is still unfinished with the buffer empty.
    #[test]
    fn a_frame_is_mid_way_from_its_first_byte_to_its_last_even_once_its_prefix_is_taken() {
        let mut inbound = Inbound::new(&config(), CLUSTER);
        let whole = stream(&[frame(2, Body::Hello { to: NodeId(1) })]);
        let mut buffer = BytesMut::new();
        assert!(!inbound.mid_frame(&buffer));
        for (i, &byte) in whole.iter().enumerate() {
            buffer.extend_from_slice(&[byte]);
            let decoded = inbound.decode(&mut buffer).unwrap();
            let last = i + 1 == whole.len();
            assert_eq!(decoded.is_some(), last, "byte {i}");
            assert_eq!(inbound.mid_frame(&buffer), !last, "after byte {i}");
        }
    }

    #[test]
    fn every_bad_frame_is_a_rejection_naming_what_was_wrong() {
        let hello = frame(2, Body::Hello { to: NodeId(1) });
        let other_cluster = Frame {
            cluster: ClusterId(8),
            ..hello
        };
        let mut too_long = BytesMut::from(&[0xff, 0xff][..]);
        too_long.extend_from_slice(&[0; 64]);
        let mut unknown_version = stream(&[hello]);
        unknown_version[2] = 7;
        let cases: Vec<(&str, BytesMut, Rejection)> = vec![
            ("too long", too_long, FrameError::TooLong.into()),
            (
                "garbage",
                BytesMut::from(&[0, 3, WIRE_VERSION, 0xff, 0xff][..]),
                Rejection::Frame(FrameError::Garbage(
                    "Hit the end of buffer, expected more data".into(),
                )),
            ),
            (
                "empty",
                BytesMut::from(&[0, 0][..]),
                FrameError::Empty.into(),
            ),
            (
                "version",
                unknown_version,
                FrameError::UnknownVersion(7).into(),
            ),
            (
                "cluster",
                stream(&[other_cluster]),
                Rejection::WrongCluster {
                    theirs: ClusterId(8),
                    ours: CLUSTER,
                },
            ),
            (
                "non-member",
                stream(&[frame(7, Body::Hello { to: NodeId(1) })]),
                Rejection::UnknownSender(NodeId(7)),
            ),
            (
                "itself",
                stream(&[frame(1, Body::Hello { to: NodeId(1) })]),
                Rejection::UnknownSender(NodeId(1)),
            ),
            (
                "misdirected",
                stream(&[frame(2, Body::Hello { to: NodeId(3) })]),
                Rejection::NotForMe {
                    to: NodeId(3),
                    me: NodeId(1),
                },
            ),
            (
                "no hello",
                stream(&[frame(2, heartbeat(1, 2))]),
                Rejection::NoHello,
            ),
            (
                "second hello",
                stream(&[hello, hello]),
                Rejection::SecondHello,
            ),
            (
                "above the ceiling",
                stream(&[hello, frame(2, heartbeat(Term::CEILING.0 + 1, 2))]),
                Rejection::AboveCeiling {
                    kind: "AppendEntries",
                    term: Term(Term::CEILING.0 + 1),
                },
            ),
            (
                "spoofed",
                stream(&[hello, frame(3, heartbeat(1, 3))]),
                Rejection::SpoofedSender {
                    peer: NodeId(2),
                    claimed: NodeId(3),
                },
            ),
        ];
        let mut certified = Inbound::new(&config(), CLUSTER);
        certified.certified(NodeId(3));
        assert_eq!(
            certified.decode(&mut stream(&[hello])),
            Err(Rejection::NotItsCertificate {
                claimed: NodeId(2),
                certified: NodeId(3)
            })
        );
        for (what, mut bytes, expected) in cases {
            let mut inbound = Inbound::new(&config(), CLUSTER);
            let result = loop {
                match inbound.decode(&mut bytes) {
                    Ok(Some(_)) => {}
                    other => break other,
                }
            };
            assert_eq!(result, Err(expected), "{what}");
        }
    }

    #[test]
    fn trailing_bytes_inside_a_frame_are_refused() {
        let mut bytes = stream(&[frame(2, Body::Hello { to: NodeId(1) })]);
        let payload = codec().decode(&mut bytes).unwrap().unwrap();
        let mut longer = payload.to_vec();
        longer.push(0);
        assert_eq!(decode(&longer), Err(FrameError::Trailing(1)));
    }
}
