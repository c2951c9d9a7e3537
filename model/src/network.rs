//! The messages in flight, packed for speed.
//!
//! The checker clones, compares and hashes every state it generates, and on a
//! duplicating network the in-flight set is most of a state. So each message
//! is packed into one `u64` and the set is a sorted vector of them: cloning is
//! one copy, hashing a few words, lookup a binary search. The packing is exact
//! (no two envelopes share a code) within [`Network::fits`] and
//! [`Network::holds_terms`]; the model refuses bounds outside them.

use raft_election::Envelope;
use raft_election::{Message, NodeId, Term};

/// Bits per node id, per term and per log index in a packed envelope.
const ID_BITS: u32 = 4;
const NUMBER_BITS: u32 = 16;
/// Bits of the message kind: seven kinds.
const KIND_BITS: u32 = 3;
/// Bits of one packed envelope (see [`pack`]): three numbers, three ids, the
/// flag and the kind. The packing is exact only if they fit one `u64`.
const PACKED_BITS: u32 = 3 * NUMBER_BITS + 3 * ID_BITS + 1 + KIND_BITS;
const _: () = assert!(PACKED_BITS <= u64::BITS);

/// Message kinds, as packed.
const REQUEST_VOTE: u64 = 0;
const REQUEST_VOTE_RESPONSE: u64 = 1;
const APPEND_ENTRIES: u64 = 2;
const APPEND_ENTRIES_RESPONSE: u64 = 3;
const PRE_VOTE: u64 = 4;
const PRE_VOTE_RESPONSE: u64 = 5;
const TIMEOUT_NOW: u64 = 6;
const _: () = assert!(TIMEOUT_NOW < 1 << KIND_BITS, "every kind fits its bits");

/// SplitMix64's finalizer: spreads `value` so that sums of digests rarely
/// collide (a collision only costs symmetry reduction some tie-breaking).
fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A set of envelopes in flight.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct Network(Vec<u64>);

/// Room a copy keeps for messages to come: a state is copied to take one
/// step, which sends a few, and inserting into a vector copied to exactly
/// its length reallocates at once.
const SPARE: usize = 4;

impl Clone for Network {
    fn clone(&self) -> Self {
        let mut codes = Vec::with_capacity(self.0.len() + SPARE);
        codes.extend_from_slice(&self.0);
        Self(codes)
    }
}

/// Appends `value` of `bits` bits to `code`.
fn push(code: &mut u64, value: u64, bits: u32) {
    debug_assert!(value < 1 << bits, "{value} does not fit {bits} bits");
    *code = (*code << bits) | value;
}

/// Takes the last `bits` bits off `code`.
fn pop(code: &mut u64, bits: u32) -> u64 {
    let value = *code & ((1 << bits) - 1);
    *code >>= bits;
    value
}

fn pop_id(code: &mut u64) -> NodeId {
    NodeId(u8::try_from(pop(code, ID_BITS)).expect("ids are 4 bits"))
}

/// Terms pack into [`NUMBER_BITS`] bits in two windows of the term space,
/// half the codes each: its bottom, terms `0..WINDOW`, and its top, the
/// `WINDOW` terms up to one past [`Term::CEILING`], where the portfolio's
/// configuration near the ceiling runs ([`crate::Bounds::term_offset`]).
/// One past it, so that a core that passes the ceiling is still a state
/// the model can hold, and check.
const WINDOW: u64 = 1 << (NUMBER_BITS - 1);
/// The term of the top window's first code.
const TOP_WINDOW: u64 = Term::CEILING.0 + 2 - WINDOW;

fn pack_term(term: Term) -> u64 {
    debug_assert!(
        term.0 < WINDOW || (TOP_WINDOW..TOP_WINDOW + WINDOW).contains(&term.0),
        "{term} is in neither window"
    );
    if term.0 < WINDOW {
        term.0
    } else {
        term.0 - TOP_WINDOW + WINDOW
    }
}

fn pop_term(code: &mut u64) -> Term {
    let packed = pop(code, NUMBER_BITS);
    if packed < WINDOW {
        Term(packed)
    } else {
        Term(packed - WINDOW + TOP_WINDOW)
    }
}

/// Packs `envelope`: term, log term, log index, id, flag, kind, to, from
/// from the highest bits down ([`PACKED_BITS`] = 3 x 16 + 4 + 1 + 3 + 4 + 4 =
/// 64 bits in all). Each kind uses the fields it has: the flag is a
/// RequestVote's leadership transfer, a response's verdict; the log numbers
/// are a request's candidate log or an AppendEntriesResponse's follower log.
/// Heartbeat rounds are not packed: the model runs no leader lease, so they
/// are always 0.
fn pack(envelope: &Envelope) -> u64 {
    let (kind, id, flag, log_term, log_index) = match envelope.message {
        Message::RequestVote {
            candidate_id,
            last_log_index,
            last_log_term,
            leadership_transfer,
            ..
        } => (
            REQUEST_VOTE,
            candidate_id.0,
            leadership_transfer,
            last_log_term.0,
            last_log_index,
        ),
        Message::RequestVoteResponse { vote_granted, .. } => {
            (REQUEST_VOTE_RESPONSE, 0, vote_granted, 0, 0)
        }
        Message::AppendEntries { leader_id, .. } => (APPEND_ENTRIES, leader_id.0, false, 0, 0),
        Message::AppendEntriesResponse {
            success,
            last_log_index,
            last_log_term,
            ..
        } => (
            APPEND_ENTRIES_RESPONSE,
            0,
            success,
            last_log_term.0,
            last_log_index,
        ),
        Message::PreVote {
            candidate_id,
            last_log_index,
            last_log_term,
            ..
        } => (
            PRE_VOTE,
            candidate_id.0,
            false,
            last_log_term.0,
            last_log_index,
        ),
        Message::PreVoteResponse { vote_granted, .. } => (PRE_VOTE_RESPONSE, 0, vote_granted, 0, 0),
        Message::TimeoutNow { .. } => (TIMEOUT_NOW, 0, false, 0, 0),
    };
    let mut code = 0;
    push(&mut code, pack_term(envelope.message.term()), NUMBER_BITS);
    push(&mut code, pack_term(Term(log_term)), NUMBER_BITS);
    push(&mut code, log_index, NUMBER_BITS);
    push(&mut code, u64::from(id), ID_BITS);
    push(&mut code, u64::from(flag), 1);
    push(&mut code, kind, KIND_BITS);
    push(&mut code, u64::from(envelope.to.0), ID_BITS);
    push(&mut code, u64::from(envelope.from.0), ID_BITS);
    code
}

/// The inverse of [`pack`].
fn unpack(mut code: u64) -> Envelope {
    let from = pop_id(&mut code);
    let to = pop_id(&mut code);
    let kind = pop(&mut code, KIND_BITS);
    let flag = pop(&mut code, 1) == 1;
    let id = pop_id(&mut code);
    let last_log_index = pop(&mut code, NUMBER_BITS);
    let last_log_term = pop_term(&mut code);
    let term = pop_term(&mut code);
    let message = match kind {
        REQUEST_VOTE => Message::RequestVote {
            term,
            candidate_id: id,
            last_log_index,
            last_log_term,
            leadership_transfer: flag,
        },
        REQUEST_VOTE_RESPONSE => Message::RequestVoteResponse {
            term,
            vote_granted: flag,
        },
        APPEND_ENTRIES => Message::AppendEntries {
            term,
            leader_id: id,
            round: 0,
        },
        APPEND_ENTRIES_RESPONSE => Message::AppendEntriesResponse {
            term,
            success: flag,
            last_log_index,
            last_log_term,
            round: 0,
        },
        PRE_VOTE => Message::PreVote {
            term,
            candidate_id: id,
            last_log_index,
            last_log_term,
        },
        PRE_VOTE_RESPONSE => Message::PreVoteResponse {
            term,
            vote_granted: flag,
        },
        _ => Message::TimeoutNow { term },
    };
    Envelope { from, to, message }
}

impl Network {
    /// Whether every envelope among `nodes` nodes, with log indices up to
    /// `largest_index`, packs exactly (given terms it holds,
    /// [`Self::holds_terms`]).
    #[must_use]
    pub fn fits(nodes: u8, largest_index: u64) -> bool {
        u32::from(nodes) <= 1 << ID_BITS && largest_index < 1 << NUMBER_BITS
    }

    /// Whether every term from `first` to `last` packs exactly: all of them
    /// in the bottom of the term space (below 32,768) or all at its top
    /// (the 32,768 terms up to one past [`Term::CEILING`]).
    #[must_use]
    pub fn holds_terms(first: Term, last: Term) -> bool {
        let top = TOP_WINDOW..TOP_WINDOW + WINDOW;
        first <= last && (last.0 < WINDOW || (top.contains(&first.0) && top.contains(&last.0)))
    }

    /// Adds `envelope` unless an identical one is already in flight.
    pub fn insert(&mut self, envelope: &Envelope) {
        let code = pack(envelope);
        if let Err(index) = self.0.binary_search(&code) {
            self.0.insert(index, code);
        }
    }

    /// Removes `envelope` if it is in flight.
    pub fn remove(&mut self, envelope: &Envelope) {
        if let Ok(index) = self.0.binary_search(&pack(envelope)) {
            self.0.remove(index);
        }
    }

    /// Keeps only the envelopes for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&Envelope) -> bool) {
        self.0.retain(|&code| keep(&unpack(code)));
    }

    /// Whether `envelope` is in flight.
    #[must_use]
    pub fn contains(&self, envelope: &Envelope) -> bool {
        self.0.binary_search(&pack(envelope)).is_ok()
    }

    /// The messages in flight, in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = Envelope> + '_ {
        self.0.iter().map(|&code| unpack(code))
    }

    /// Sender and receiver of each message in flight, without unpacking it.
    pub fn endpoints(&self) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
        self.0.iter().map(|&code| {
            let mut code = code;
            let from = pop_id(&mut code);
            (from, pop_id(&mut code))
        })
    }

    /// For each of `nodes` nodes, a digest of the messages it has in flight
    /// (sent and received) that names no node: symmetry reduction orders
    /// nodes by it. Equal for nodes whose messages differ only by ids.
    #[must_use]
    pub fn signatures(&self, nodes: usize) -> Vec<u64> {
        let mut signatures = vec![0_u64; nodes];
        for &code in &self.0 {
            let mut rest = code;
            let from = pop(&mut rest, ID_BITS);
            let to = pop(&mut rest, ID_BITS);
            let kind = pop(&mut rest, KIND_BITS);
            let flag = pop(&mut rest, 1);
            let id = pop(&mut rest, ID_BITS);
            // Requests name a node (the candidate, the leader): keep only
            // whether it is the sender, which survives renaming.
            let names_sender =
                matches!(kind, REQUEST_VOTE | APPEND_ENTRIES | PRE_VOTE) && id == from;
            let content = (((rest << KIND_BITS | kind) << 1 | flag) << 1) | u64::from(names_sender);
            let index = |id: u64| usize::try_from(id).expect("4 bits");
            for (node, direction) in [(index(from), 0), (index(to), 1)] {
                if let Some(signature) = signatures.get_mut(node) {
                    *signature = signature.wrapping_add(mix(content << 1 | direction));
                }
            }
        }
        signatures
    }

    /// This set with every node id renamed by `rename`, a permutation of the
    /// ids (for symmetry reduction). Renames in the packed form: the same
    /// as unpacking, renaming each envelope with [`Message::map_ids`] and
    /// packing again, without building any envelope.
    #[must_use]
    pub fn map_ids(&self, rename: impl Fn(NodeId) -> NodeId) -> Self {
        let id_mask: u64 = (1 << ID_BITS) - 1;
        let rename_bits = |bits: u64| {
            let id = NodeId(u8::try_from(bits).expect("ids are 4 bits"));
            u64::from(rename(id).0)
        };
        // From the lowest bits up (see `pack`): from, to, kind, flag, id.
        let to_shift = ID_BITS;
        let kind_shift = 2 * ID_BITS;
        let id_shift = 2 * ID_BITS + KIND_BITS + 1;
        let mut codes: Vec<u64> = self
            .0
            .iter()
            .map(|&code| {
                let from = rename_bits(code & id_mask);
                let to = rename_bits((code >> to_shift) & id_mask);
                let kind = (code >> kind_shift) & ((1 << KIND_BITS) - 1);
                let mut renamed = code & !(id_mask | id_mask << to_shift);
                renamed |= from | to << to_shift;
                // Only requests name a node; the others pack 0 there.
                if matches!(kind, REQUEST_VOTE | APPEND_ENTRIES | PRE_VOTE) {
                    let id = rename_bits((code >> id_shift) & id_mask);
                    renamed = (renamed & !(id_mask << id_shift)) | id << id_shift;
                }
                renamed
            })
            .collect();
        // A permutation keeps codes distinct.
        codes.sort_unstable();
        Self(codes)
    }

    /// How many messages are in flight.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no message is in flight.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Envelope> for Network {
    fn from_iter<I: IntoIterator<Item = Envelope>>(envelopes: I) -> Self {
        let mut codes: Vec<u64> = envelopes.into_iter().map(|e| pack(&e)).collect();
        codes.sort_unstable();
        codes.dedup();
        Self(codes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_pack_at_the_bottom_of_the_term_space_or_up_to_one_past_the_ceiling() {
        let past = Term(Term::CEILING.0 + 1);
        assert!(Network::holds_terms(Term(0), Term(32_767)));
        assert!(!Network::holds_terms(Term(0), Term(32_768)));
        assert!(Network::holds_terms(Term(Term::CEILING.0 - 32_766), past));
        assert!(!Network::holds_terms(Term(Term::CEILING.0 - 32_767), past));
        assert!(!Network::holds_terms(
            Term::CEILING,
            Term(Term::CEILING.0 + 2)
        ));
        assert!(!Network::holds_terms(Term(2), Term::CEILING));
        for term in [0, 32_767, Term::CEILING.0 - 32_766, Term::CEILING.0, past.0] {
            let mut code = pack_term(Term(term));
            assert_eq!(pop_term(&mut code), Term(term));
        }
    }

    #[test]
    fn every_kind_of_envelope_survives_packing() {
        let envelopes = [
            Message::RequestVote {
                term: Term(32_767),
                candidate_id: NodeId(15),
                last_log_index: 65_535,
                last_log_term: Term(7),
                leadership_transfer: true,
            },
            Message::RequestVoteResponse {
                term: Term(3),
                vote_granted: true,
            },
            Message::AppendEntries {
                term: Term(2),
                leader_id: NodeId(4),
                round: 0,
            },
            Message::AppendEntriesResponse {
                term: Term(1),
                success: false,
                last_log_index: 65_535,
                last_log_term: Term::CEILING,
                round: 0,
            },
            Message::PreVote {
                term: Term(Term::CEILING.0 + 1),
                candidate_id: NodeId(9),
                last_log_index: 3,
                last_log_term: Term(32_767),
            },
            Message::PreVoteResponse {
                term: Term(Term::CEILING.0 + 2 - 32_768),
                vote_granted: true,
            },
            Message::TimeoutNow {
                term: Term::CEILING,
            },
        ]
        .map(|message| Envelope {
            from: NodeId(15),
            to: NodeId(3),
            message,
        });
        for envelope in envelopes {
            assert_eq!(unpack(pack(&envelope)), envelope);
        }
        // Renaming packed codes is renaming the envelopes.
        let rename = |id: NodeId| NodeId(15 - id.0);
        let renamed: Network = envelopes
            .iter()
            .map(|e| Envelope {
                from: rename(e.from),
                to: rename(e.to),
                message: e.message.map_ids(rename),
            })
            .collect();
        let packed: Network = envelopes.into_iter().collect();
        assert_eq!(packed.map_ids(rename), renamed);
        let network: Network = envelopes.into_iter().chain(envelopes).collect();
        assert_eq!(network.len(), envelopes.len());
        assert!(envelopes.iter().all(|e| network.contains(e)));
    }
}
