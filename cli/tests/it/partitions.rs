//! Network faults between real node processes, made by the operating
//! system, not by the nodes: each test creates a network namespace of its
//! own, runs its three nodes in it (on 127.0.0.1-3 of the namespace's own
//! loopback), and cuts links with nftables rules in a table inside it.
//! Deleting the namespace (in `Drop`, after the nodes are killed) takes the
//! table with it; no traffic leaves the namespace. The same rules make a
//! true half-open connection: a peer whose packets are all dropped before
//! it is killed vanishes without a FIN.
//!
//! Needs root, `ip` and `nft`. Without them each test says why and is
//! skipped, unless `RAFT_ELECTION_REQUIRE_NETWORK_FAULTS=1` (set by
//! `.ci/run`), which makes skipping a failure.
//!
//! This kernel has no `netem` queueing discipline ("Specified qdisc kind is
//! unknown"), so the lossy link is made by nftables too: it drops a share
//! of the link's packets at random, which TCP turns into retransmissions
//! delayed by 200 ms and more.

use crate::common::{Cluster, History, Namespace, namespace};
use raft_election::{NodeId, Role, Term};
use raft_election_cli::log_lines::LogLine;
use raft_election_runtime::ConnectionEnd;

fn cluster_in(namespace: &Namespace) -> Cluster {
    cluster_with(namespace, &[])
}

/// A cluster whose nodes all get the extra flags `args`.
fn cluster_with(namespace: &Namespace, args: &[&str]) -> Cluster {
    let mut cluster = Cluster::new(0, 3, Some(namespace.name.clone()));
    cluster.extra.extend(args.iter().map(|&arg| arg.to_owned()));
    cluster.start_all();
    cluster
}

/// §5.2 and §5.1 across a real partition: the leader is cut off from both
/// followers; the majority elects a new leader in a later term, while the
/// isolated node wins nothing; once healed, it hears the later term. It no
/// longer leads: with CheckQuorum (a default) it steps down on its own about
/// an election timeout after the cut, so about when the majority elects its
/// successor, either before or after the test looks; without it, or if it
/// still leads at the heal, it steps down on hearing the later term.
#[test]
fn an_isolated_leader_is_replaced_by_the_majority_and_steps_down_when_healed() {
    let Some(namespace) = namespace("isolate") else {
        return;
    };
    let cluster = cluster_in(&namespace);
    let (old, t1) = cluster.wait_for_leader_after(Term(0));
    for &other in cluster.ids().iter().filter(|&&id| id != old) {
        namespace.drop(cluster.addrs()[&old], cluster.addrs()[&other], false, 100);
        namespace.drop(cluster.addrs()[&other], cluster.addrs()[&old], false, 100);
    }
    let (new, t2) = cluster.wait_for_leader_after(t1);
    assert_ne!(new, old);
    let history = cluster.history();
    let stale = &history.nodes[&old];
    eprintln!(
        "{new} leads {t2}; behind the cut {old} is {} in {}",
        stale.role, stale.term
    );
    let won_behind_the_cut: Vec<Term> = history
        .leaders_by_term()
        .into_iter()
        .filter(|(term, leaders)| *term > t1 && leaders.contains(&old))
        .map(|(term, _)| term)
        .collect();
    assert!(
        won_behind_the_cut.is_empty(),
        "{old} won {won_behind_the_cut:?} with no one to vote for it"
    );

    namespace.heal();
    cluster.wait_for(
        &format!("{old} to hear a term of {t2} or later after the heal"),
        |h| {
            let log = &h.nodes[&old];
            log.terms_entered().any(|term| term >= t2).then_some(())
        },
    );
    if stale.role == Role::Leader {
        // By CheckQuorum in its own term, or on the later term after the heal.
        cluster.wait_for(&format!("{old} to step down from {}", stale.term), |h| {
            h.nodes[&old]
                .role_changes()
                .any(|(from, to, term)| {
                    from == Role::Leader && to == Role::Follower && term >= stale.term
                })
                .then_some(())
        });
    }
    cluster.wait_for_leader_after(Term(t2.0 - 1));
    cluster.history().check_safety().unwrap();
}

/// A one-way cut under Figure 2 alone (`--features none`): the leader's
/// messages no longer reach one follower, which still reaches everyone.
/// While that leader leads, the cut follower hears no heartbeat, times out
/// and campaigns in a later term, which deposes it (the paper's rules say
/// it must). So the cluster settles only under a leader the cut follower can
/// hear: a later term led by another node. Usually the cut follower wins
/// it; on a loaded machine the third node may time out first and win, and
/// the cut follower need not campaign at all: the test asserts the new
/// leader and the old one's step down, and says who campaigned.
#[test]
fn a_follower_cut_off_one_way_from_the_leader_leaves_the_cluster_to_a_leader_it_can_hear() {
    let Some(namespace) = namespace("oneway") else {
        return;
    };
    let cluster = cluster_with(&namespace, &["--features", "none"]);
    let (leader, t1) = cluster.wait_for_leader_after(Term(0));
    let cut = *cluster.ids().iter().find(|&&id| id != leader).unwrap();
    namespace.drop(cluster.addrs()[&leader], cluster.addrs()[&cut], true, 100);
    let (successor, t2) = cluster.wait_for(
        &format!("a leader other than {leader}, of a term after {t1}"),
        |h| h.leader().filter(|&(id, term)| id != leader && term > t1),
    );
    let history = cluster.history();
    let campaigned = history.nodes[&cut]
        .role_changes()
        .any(|(_, to, term)| to == Role::Candidate && term > t1);
    eprintln!(
        "{successor} leads {t2} after {leader}'s messages to {cut} were cut; {cut} {}",
        if campaigned {
            "campaigned"
        } else {
            "did not need to campaign"
        }
    );
    let stepped_down = history.nodes[&leader]
        .role_changes()
        .any(|(from, _, term)| from == Role::Leader && term > t1);
    assert!(
        stepped_down,
        "{leader} never stepped down:\n{}",
        history.tails(8)
    );
    namespace.heal();
    history.check_safety().unwrap();
}

/// The same one-way cut with the default features (lease-guarded votes,
/// thesis §4.2.3, and CheckQuorum): the third node still hears the leader,
/// so it and the leader ignore the cut follower's RequestVotes. The cut
/// follower campaigns term after term and wins none; no other node's term
/// moves. Election timeouts of 600 to 1200 ms here, so that only a stall of
/// the machine longer than 600 ms could let the third node's lease lapse.
#[test]
fn with_the_default_features_a_follower_cut_off_one_way_cannot_depose_the_leader() {
    let Some(namespace) = namespace("lease") else {
        return;
    };
    let cluster = cluster_with(
        &namespace,
        &["--election-min-ms", "600", "--election-max-ms", "1200"],
    );
    let (leader, t1) = cluster.wait_for_leader_after(Term(0));
    let cut = *cluster.ids().iter().find(|&&id| id != leader).unwrap();
    let third = *cluster
        .ids()
        .iter()
        .find(|&&id| id != leader && id != cut)
        .unwrap();
    namespace.drop(cluster.addrs()[&leader], cluster.addrs()[&cut], true, 100);
    let reached = Term(t1.0 + 2);
    cluster.wait_for(
        &format!("{cut}, cut off from {leader}'s messages, to campaign up to {reached}"),
        |h| {
            h.nodes[&cut]
                .terms_entered()
                .any(|term| term >= reached)
                .then_some(())
        },
    );
    let history = cluster.history();
    for id in [leader, third] {
        let moved: Vec<Term> = history.nodes[&id]
            .terms_entered()
            .filter(|&term| term > t1)
            .collect();
        assert!(
            moved.is_empty(),
            "{id} left {t1} for {cut}'s campaign: {moved:?}\n{}",
            history.tails(8)
        );
    }
    let won = history.nodes[&cut].wins().next().is_some();
    assert!(!won, "{cut} won an election:\n{}", history.tails(8));
    eprintln!("{leader} still leads {t1}; {cut} campaigned up to {reached} and won nothing");
    namespace.heal();
    history.check_safety().unwrap();
}

/// A lossy link: 30% of the packets between the two followers are lost
/// (delaying what TCP retransmits). The leader is killed, so the election
/// of its successor has to cross that link, and it still completes with one
/// leader per term.
#[test]
fn after_the_leader_dies_the_two_survivors_elect_across_a_lossy_link() {
    let Some(namespace) = namespace("lossy") else {
        return;
    };
    let mut cluster = cluster_in(&namespace);
    let (leader, t1) = cluster.wait_for_leader_after(Term(0));
    let rest: Vec<NodeId> = cluster.ids_but(leader);
    let (a, b) = (cluster.addrs()[&rest[0]], cluster.addrs()[&rest[1]]);
    namespace.drop(a, b, false, 30);
    namespace.drop(b, a, false, 30);
    cluster.kill(leader);
    let (successor, t2) = cluster.wait_for_leader_after(t1);
    assert!(rest.contains(&successor));
    eprintln!("{successor} leads {t2} across the lossy link");
    cluster.history().check_safety().unwrap();
}

/// A true half-open connection: a peer that said hello long ago and then
/// vanished without a FIN (a machine losing power, a firewall dropping
/// it). Every packet from and to n's address is dropped, then the process
/// is killed, so its FIN never arrives. Each survivor notices within
/// seconds (TCP keepalive and `TCP_USER_TIMEOUT` on the connection it
/// accepted from the vanished peer), closes it, says so once with the
/// peer's address, and keeps its leader.
#[test]
fn a_peer_that_vanishes_without_a_fin_is_noticed_and_its_connection_closed_once() {
    let Some(namespace) = namespace("halfopen") else {
        return;
    };
    let mut cluster = cluster_in(&namespace);
    let (leader, _) = cluster.wait_for_leader_after(Term(0));
    // A follower vanishes: the survivors keep their leader.
    let gone = *cluster.ids().iter().find(|&&id| id != leader).unwrap();
    let survivors: Vec<NodeId> = cluster.ids_but(gone);
    let gone_addr = cluster.addrs()[&gone];
    for &other in &survivors {
        namespace.drop(gone_addr, cluster.addrs()[&other], false, 100);
        namespace.drop(cluster.addrs()[&other], gone_addr, false, 100);
    }
    cluster.kill(gone);
    let lost = |h: &History, id: NodeId| -> Vec<String> {
        h.nodes[&id]
            .lines
            .iter()
            .filter_map(LogLine::connection)
            .filter(|ended| {
                ended.end == ConnectionEnd::Lost
                    && ended.peer == Some(gone)
                    && ended.address.ip() == gone_addr.ip()
            })
            .map(ToString::to_string)
            .collect()
    };
    for &id in &survivors {
        let said = cluster.wait_for(
            &format!("{id} to notice that {gone} vanished without a FIN"),
            |h| lost(h, id).into_iter().next(),
        );
        eprintln!("{id}: {said}");
    }
    let history = cluster.history();
    for &id in &survivors {
        assert_eq!(lost(&history, id).len(), 1, "{id} said it once");
    }
    let (now, _) = cluster.wait_for_leader_after(Term(0));
    assert!(survivors.contains(&now));
    namespace.heal();
    cluster.history().check_safety().unwrap();
}
