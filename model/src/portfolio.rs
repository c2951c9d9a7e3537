//! The configurations `check` runs by default, chosen so that every rule is
//! exercised where a bug in it can show, within a minute on two cores.
//!
//! No single bound covers everything cheaply: three nodes cannot tell a
//! candidate that counts one voter twice from a legal winner (the candidate
//! plus any one vote is a majority), equal logs cannot tell §5.4.1 from a
//! comparison of lengths, and the election features multiply the states of
//! every configuration they join. So the default is a portfolio of small
//! configurations, each aimed at a class of bugs, and [`deep`] holds the
//! larger bounds of the nightly run.

use crate::{Bounds, FEATURE_REACHABILITY, REACHABILITY, StartingLogs};
use raft_election::{Features, Term};

/// One configuration of a portfolio.
#[derive(Clone, Debug)]
pub struct Entry {
    /// A short label for the table.
    pub name: String,
    /// What the configuration is there to catch, in a few words.
    pub aim: &'static str,
    /// Its bounds.
    pub bounds: Bounds,
    /// The reachability properties it must reach: those its bounds allow
    /// (a split vote needs two terms, a replaced leader two leaders, ...).
    pub required: Vec<&'static str>,
}

impl Entry {
    fn new(aim: &'static str, bounds: Bounds, required: Vec<&'static str>) -> Self {
        let name = label(&bounds);
        Self {
            name,
            aim,
            bounds,
            required,
        }
    }
}

/// `bounds` in a few words: nodes, terms, crashes, logs and features.
#[must_use]
pub fn label(bounds: &Bounds) -> String {
    let logs = match logs_profile(bounds) {
        Some(StartingLogs::Ahead) => "n0 ahead",
        Some(StartingLogs::Equal) => "equal logs",
        Some(StartingLogs::LongerOlder) => "longer-older",
        None => "custom logs",
    };
    let features = if bounds.features == Features::NONE {
        "Figure 2".to_owned()
    } else if bounds.features == Features::default() {
        "production".to_owned()
    } else if bounds.features == Features::ALL {
        "all features".to_owned()
    } else {
        Features::NAMES
            .iter()
            .zip(bounds.features.switches())
            .filter_map(|(name, on)| on.then_some(*name))
            .collect::<Vec<_>>()
            .join("+")
    };
    format!(
        "{features}, {}n {} c{}, {logs}",
        bounds.nodes,
        terms(bounds),
        bounds.max_crashes
    )
}

/// The terms `bounds` explores: `t<=2`, or near the ceiling `t from
/// ceiling-1` (the bound is one past the ceiling there).
fn terms(bounds: &Bounds) -> String {
    if bounds.term_offset == 0 {
        return format!("t<={}", bounds.max_term.0);
    }
    let first = bounds.term_offset.saturating_add(
        bounds
            .logs
            .iter()
            .map(|log| log.last_log_term.0)
            .min()
            .unwrap_or_default(),
    );
    match Term::CEILING.0.checked_sub(first) {
        Some(0) => "t from ceiling".to_owned(),
        Some(below) => format!("t from ceiling-{below}"),
        None => format!("t from ceiling+{}", first - Term::CEILING.0),
    }
}

/// The profile whose logs `bounds` holds, if any.
fn logs_profile(bounds: &Bounds) -> Option<StartingLogs> {
    [
        StartingLogs::Ahead,
        StartingLogs::Equal,
        StartingLogs::LongerOlder,
    ]
    .into_iter()
    .find(|&profile| Bounds::with_logs(bounds.nodes, profile).logs == bounds.logs)
}

fn bounds(
    nodes: u8,
    max_term: u64,
    max_crashes: u8,
    logs: StartingLogs,
    features: Features,
) -> Bounds {
    let mut bounds = Bounds::with_logs(nodes, logs).with_features(features);
    bounds.max_term = Term(max_term);
    bounds.max_crashes = max_crashes;
    bounds
}

/// The production features ([`Features::default`]) without one switch, or
/// with Pre-Vote added: the combinations that matter beside Figure 2 alone.
fn feature_sets() -> [Features; 6] {
    let production = Features::default();
    [
        production,
        Features::ALL,
        Features {
            pre_vote: true,
            ..Features::NONE
        },
        Features {
            pre_vote: true,
            check_quorum: true,
            ..Features::NONE
        },
        Features {
            lease_guarded_votes: true,
            ..Features::NONE
        },
        Features {
            leadership_transfer: true,
            ..Features::NONE
        },
    ]
}

/// Every reachability property a model of `features` checks.
fn every_property(features: Features) -> Vec<&'static str> {
    REACHABILITY
        .into_iter()
        .chain(
            FEATURE_REACHABILITY
                .into_iter()
                .zip(features.switches())
                .filter_map(|(name, on)| on.then_some(name)),
        )
        .collect()
}

/// The default portfolio, `check` with no options. Figure 2 rows first,
/// the largest first of them; then the features; then the features'
/// decisions on unequal logs.
#[must_use]
pub fn portfolio() -> Vec<Entry> {
    use StartingLogs::{Ahead, Equal, LongerOlder};
    let mut entries = vec![
        Entry::new(
            "every Figure 2 rule with a crash: votes survive restarts, stale votes and stale leaders",
            bounds(3, 2, 1, Ahead, Features::NONE),
            REACHABILITY.to_vec(),
        ),
        Entry::new(
            "majorities of 3 of 5: a vote counted twice, a wrong quorum formula",
            bounds(5, 1, 0, Ahead, Features::NONE),
            vec![REACHABILITY[0]],
        ),
        Entry::new(
            "majorities of 3 of 4 over two terms: a 2-2 split, an even count, votes of two campaigns",
            bounds(4, 2, 1, Ahead, Features::NONE),
            REACHABILITY.to_vec(),
        ),
        Entry::new(
            "§5.4.1 against a comparison of lengths: a longer log of an older term",
            bounds(3, 2, 1, LongerOlder, Features::NONE),
            vec![REACHABILITY[0], REACHABILITY[2], REACHABILITY[3]],
        ),
        Entry::new(
            "lease-guarded votes among three: a RequestVote meets a lease",
            bounds(
                3,
                2,
                0,
                Ahead,
                Features {
                    lease_guarded_votes: true,
                    ..Features::NONE
                },
            ),
            vec![
                REACHABILITY[0],
                REACHABILITY[1],
                REACHABILITY[2],
                REACHABILITY[3],
                FEATURE_REACHABILITY[2],
            ],
        ),
        Entry::new(
            "the production features among three, one term, a crash",
            bounds(3, 1, 1, Ahead, Features::default()),
            vec![REACHABILITY[0], FEATURE_REACHABILITY[1]],
        ),
        Entry::new(
            "every feature among three, one term, a crash",
            bounds(3, 1, 1, Ahead, Features::ALL),
            vec![
                REACHABILITY[0],
                FEATURE_REACHABILITY[0],
                FEATURE_REACHABILITY[1],
            ],
        ),
    ];
    for features in feature_sets() {
        entries.push(Entry::new(
            "every property of these features, two nodes, two terms, a crash",
            bounds(2, 2, 1, Equal, features),
            every_property(features),
        ));
    }
    entries.extend(decisions_on_unequal_logs());
    entries.push(near_the_ceiling());
    entries.push(check_quorum_over_two_terms());
    entries
}

/// Leadership transfer alone.
const TRANSFER: Features = Features {
    leadership_transfer: true,
    ..Features::NONE
};

/// Pre-Vote alone.
const PRE_VOTE: Features = Features {
    pre_vote: true,
    ..Features::NONE
};

/// The features' decisions that read a log, where the logs differ and a
/// second term follows the first, so a node's term is not its last log
/// entry's. With n0 one entry ahead, a transfer to n0 completes and one
/// from n0 is refused (§3.10; the acknowledgement's rule), and a PreVote
/// carries a log that its sender's term no longer matches (§9.6). Three
/// nodes: with two, a node behind never leads, so no transfer is decided
/// both ways.
fn decisions_on_unequal_logs() -> [Entry; 2] {
    use StartingLogs::Ahead;
    [
        Entry::new(
            "a transfer decided on unequal logs over two terms: completed to a target ahead, refused to one behind, a crash",
            bounds(3, 2, 1, Ahead, TRANSFER),
            every_property(TRANSFER),
        ),
        Entry::new(
            "Pre-Vote on unequal logs over two terms: a PreVote's log, not its sender's term, decides",
            bounds(3, 2, 0, Ahead, PRE_VOTE),
            every_property(PRE_VOTE),
        ),
    ]
}

/// Every feature among three, each node one term below the term ceiling:
/// the last election possible is into it, so the liveness property meets
/// the top of the term space (a node that cannot campaign into the
/// ceiling, or a message of it refused, elects no one), and a step past
/// it is one the model holds and checks.
fn near_the_ceiling() -> Entry {
    Entry::new(
        "every feature at the top of the term space: the last election is into the ceiling",
        bounds(3, 1, 1, StartingLogs::Ahead, Features::ALL).near_ceiling(1),
        vec![
            REACHABILITY[0],
            FEATURE_REACHABILITY[0],
            FEATURE_REACHABILITY[1],
        ],
    )
}

/// CheckQuorum alone.
const CHECK_QUORUM: Features = Features {
    check_quorum: true,
    ..Features::NONE
};

/// CheckQuorum among three over two terms, a crash: with two nodes every
/// node is in every quorum and none lags behind a later leader, and with
/// one term no leader follows an earlier leadership of its own. Here a
/// leader of term 2 can be sent an acknowledgement of its term-1
/// leadership, which its window must not count as hearing the peer. Pre-Vote
/// among three over two terms is the row before the ceiling's; with
/// CheckQuorum as well it took 259 s, so it stays in [`deep`] (with a crash).
fn check_quorum_over_two_terms() -> Entry {
    Entry::new(
        "CheckQuorum among three over two terms: a late acknowledgement of an earlier leadership",
        bounds(3, 2, 1, StartingLogs::Ahead, CHECK_QUORUM),
        every_property(CHECK_QUORUM),
    )
}

/// Pre-Vote with CheckQuorum: etcd's recommended pair.
const PRE_VOTE_AND_CHECK_QUORUM: Features = Features {
    pre_vote: true,
    check_quorum: true,
    ..Features::NONE
};

/// CheckQuorum with lease-guarded votes: the two features that read the
/// time since a leader was heard, together.
const CHECK_QUORUM_AND_LEASE: Features = Features {
    check_quorum: true,
    lease_guarded_votes: true,
    ..Features::NONE
};

/// Leadership transfer with lease-guarded votes: a TimeoutNow must get
/// past the lease that guards every other vote (thesis §3.10, §4.2.3).
const TRANSFER_AND_LEASE: Features = Features {
    leadership_transfer: true,
    lease_guarded_votes: true,
    ..Features::NONE
};

/// The larger bounds of the nightly run (`check --deep`): each is
/// exhausted, in four to six minutes in all on two cores. Every feature at
/// once with two terms is not: it ran past 15 minutes (over 15M states),
/// so the default portfolio holds it to one term, and the pairs that do
/// finish with two terms are here.
#[must_use]
pub fn deep() -> Vec<Entry> {
    use StartingLogs::{Ahead, LongerOlder};
    vec![
        Entry::new(
            "Figure 2, three elections, a crash",
            bounds(3, 3, 1, Ahead, Features::NONE),
            REACHABILITY.to_vec(),
        ),
        Entry::new(
            "Figure 2, five nodes, two terms",
            bounds(5, 2, 0, Ahead, Features::NONE),
            REACHABILITY.to_vec(),
        ),
        Entry::new(
            "Figure 2, five nodes, a longer log of an older term",
            bounds(5, 2, 1, LongerOlder, Features::NONE),
            vec![REACHABILITY[0]],
        ),
        Entry::new(
            "the production features among three, two terms, a crash",
            bounds(3, 2, 1, Ahead, Features::default()),
            every_property(Features::default()),
        ),
        Entry::new(
            "Pre-Vote beside CheckQuorum, as etcd runs them, two terms, a crash",
            bounds(3, 2, 1, Ahead, PRE_VOTE_AND_CHECK_QUORUM),
            every_property(PRE_VOTE_AND_CHECK_QUORUM),
        ),
        Entry::new(
            "CheckQuorum beside lease-guarded votes, two terms, a crash",
            bounds(3, 2, 1, Ahead, CHECK_QUORUM_AND_LEASE),
            every_property(CHECK_QUORUM_AND_LEASE),
        ),
        Entry::new(
            "leadership transfer beside lease-guarded votes, two terms, a crash",
            bounds(3, 2, 1, Ahead, TRANSFER_AND_LEASE),
            every_property(TRANSFER_AND_LEASE),
        ),
    ]
}
