//! The harness of the cargo-fuzz target `frame`, shared with its corpus
//! replay (`tests/frame_corpus.rs`), so the fuzzer and `cargo test` run the
//! very same code: the bytes one peer connection could carry, fed to the
//! decoder that every accepted connection runs ([`Inbound`]).

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

/// Feeds `bytes` to a connection accepted by n1 of a 3-node cluster, whole
/// and then split in two at a point the first byte picks (a frame cut by
/// TCP must decode the same), and checks what must hold whatever the bytes:
/// no panic, both feedings agree, and every accepted frame re-encodes to
/// a frame that decodes to itself. The error names the broken property.
pub fn run_frames(bytes: &[u8]) -> Result<FrameOutcome, String> {
    let whole = feed(&[bytes])?;
    let split = usize::from(bytes.first().copied().unwrap_or(0)).min(bytes.len());
    let (head, tail) = bytes.split_at(split);
    let halves = feed(&[head, tail])?;
    if whole != halves {
        return Err(format!(
            "split at {split}, the bytes decode otherwise: {whole:?} whole, {halves:?} in two"
        ));
    }
    Ok(whole)
}

fn feed(chunks: &[&[u8]]) -> Result<FrameOutcome, String> {
    // A valid configuration by construction.
    let config = Config::new(
        NodeId(1),
        [NodeId(1), NodeId(2), NodeId(3)],
        Timing::default(),
    )
    .map_err(|e| e.to_string())?;
    let mut inbound = Inbound::new(&config, CLUSTER);
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
