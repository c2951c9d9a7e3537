//! The harness of the cargo-fuzz target `frame`, shared with its corpus
//! replay (`tests/frame_corpus.rs`), so the fuzzer and `cargo test` run the
//! very same code: the bytes one peer connection could carry, fed to the
//! decoder that every accepted connection runs (`wire::Inbound`, private to
//! this crate, which is why the harness lives here).

use super::wire::{self, Body, Frame, Inbound, Received, Rejection};
use bytes::BytesMut;
use raft_election::{ClusterId, Config, NodeId, Timing};

/// The cluster the harness's node belongs to.
pub const CLUSTER: ClusterId = ClusterId(1);

/// What a connection's bytes amounted to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameOutcome {
    /// Hellos accepted (at most one).
    pub hellos: usize,
    /// Messages handed to the node.
    pub messages: usize,
    /// Why the connection was closed, if it was.
    pub rejection: Option<Rejection>,
}

/// Cuts beyond which a long input is cut at evenly spread points only:
/// each cut feeds the whole input again.
const MAX_CUTS: usize = 512;

/// Feeds `bytes` to a connection accepted by n1 of a 3-node cluster: whole,
/// one byte at a time, and in two pieces at every cut (at 512
/// points spread over a longer input), since TCP may deliver a stream cut
/// anywhere, inside a length prefix, inside a body or between frames. Checks
/// what must hold whatever the bytes: no panic, every feeding gives the
/// same outcome, and every accepted frame re-encodes to a frame that
/// decodes to itself. The error names the broken property.
pub fn run_frames(bytes: &[u8]) -> Result<FrameOutcome, String> {
    agrees_however_cut(bytes, feed)
}

/// `feed` gives the same outcome for `bytes` however they are cut.
fn agrees_however_cut(
    bytes: &[u8],
    feed: impl Fn(&[&[u8]]) -> Result<FrameOutcome, String>,
) -> Result<FrameOutcome, String> {
    let whole = feed(&[bytes])?;
    let same = |how: &str, outcome: FrameOutcome| {
        if outcome == whole {
            Ok(())
        } else {
            Err(format!(
                "{how}, the bytes decode otherwise: {whole:?} whole, {outcome:?} cut"
            ))
        }
    };
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    same("a byte at a time", feed(&singles)?)?;
    let step = bytes.len().div_ceil(MAX_CUTS).max(1);
    for cut in (1..bytes.len()).step_by(step) {
        let (head, tail) = bytes.split_at(cut);
        same(&format!("cut at {cut}"), feed(&[head, tail])?)?;
    }
    Ok(whole)
}

/// The receiving node's configuration: n1 of n1, n2, n3.
fn receiver() -> Result<Config, String> {
    Config::new(
        NodeId(1),
        [NodeId(1), NodeId(2), NodeId(3)],
        Timing::default(),
    )
    .map_err(|e| e.to_string())
}

fn feed(chunks: &[&[u8]]) -> Result<FrameOutcome, String> {
    let mut inbound = Inbound::new(&receiver()?, CLUSTER);
    let mut outcome = FrameOutcome::default();
    let mut buffer = BytesMut::new();
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        // Each turn consumes a whole frame (at least its 2-byte prefix) or ends.
        loop {
            match inbound.decode(&mut buffer) {
                Ok(Some(received)) => {
                    round_trip(received)?;
                    match received {
                        Received::Hello { .. } => outcome.hellos += 1,
                        Received::Message { .. } => outcome.messages += 1,
                    }
                }
                Ok(None) => break,
                Err(rejection) => {
                    outcome.rejection = Some(rejection);
                    return Ok(outcome);
                }
            }
        }
    }
    Ok(outcome)
}

/// An accepted frame, encoded again, decodes to itself.
fn round_trip(received: Received) -> Result<(), String> {
    let frame = match received {
        Received::Hello { peer } => Frame {
            cluster: CLUSTER,
            from: peer,
            body: Body::Hello { to: NodeId(1) },
        },
        Received::Message { from, message } => Frame {
            cluster: CLUSTER,
            from,
            body: Body::Message(message),
        },
    };
    let mut bytes = BytesMut::new();
    wire::encode(&frame, &mut bytes);
    let decoded = wire::codec_decode(&mut bytes);
    if decoded != Some(Ok(frame)) {
        return Err(format!(
            "{frame} encodes to bytes that decode to {decoded:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_election::{Message, Term};

    fn stream() -> Vec<u8> {
        let mut bytes = BytesMut::new();
        let frame = |body| Frame {
            cluster: CLUSTER,
            from: NodeId(2),
            body,
        };
        wire::encode(&frame(Body::Hello { to: NodeId(1) }), &mut bytes);
        for term in [1, 300] {
            let message = Message::AppendEntries {
                term: Term(term),
                leader_id: NodeId(2),
                round: 0,
            };
            wire::encode(&frame(Body::Message(message)), &mut bytes);
        }
        bytes.to_vec()
    }

    #[test]
    fn a_valid_stream_is_two_messages_however_it_is_cut() {
        let outcome = run_frames(&stream()).unwrap();
        assert_eq!(
            outcome,
            FrameOutcome {
                hellos: 1,
                messages: 2,
                rejection: None
            }
        );
    }

    /// A decoder that loses whatever part of a frame a read left over, as
    /// one that assumed every read ends on a frame boundary would: the
    /// harness must catch it on a valid stream, whose first byte (the high
    /// byte of a short frame's length) is always 0.
    #[test]
    fn the_harness_catches_a_decoder_that_loses_a_frame_cut_in_two() {
        let careless = |chunks: &[&[u8]]| {
            let mut inbound = Inbound::new(&receiver()?, CLUSTER);
            let mut outcome = FrameOutcome::default();
            for chunk in chunks {
                let mut buffer = BytesMut::from(*chunk);
                while let Ok(Some(received)) = inbound.decode(&mut buffer) {
                    match received {
                        Received::Hello { .. } => outcome.hellos += 1,
                        Received::Message { .. } => outcome.messages += 1,
                    }
                }
            }
            Ok(outcome)
        };
        let bytes = stream();
        assert_eq!(bytes[0], 0);
        let caught = agrees_however_cut(&bytes, careless).unwrap_err();
        assert!(caught.contains("decode otherwise"), "{caught}");
    }
}
