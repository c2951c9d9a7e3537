//! The node's TLS flags as an operator meets them: `raft-election certs`,
//! the secure default off loopback, SIGHUP reloading the certificates, and
//! the refusals counted in the status output.

use crate::common::{BIN, Cluster, History, get_status};
use crate::run_while_leader::signal;
use raft_election::NodeId;
use raft_election_cli::log_lines::NodeEvent;
use std::net::SocketAddr;
use std::process::Command;

/// The first event of `id` that `pick` picks.
fn event<T>(history: &History, id: NodeId, pick: impl Fn(&NodeEvent) -> Option<T>) -> Option<T> {
    history.nodes.get(&id)?.events().find_map(|(_, e)| pick(e))
}

#[test]
fn certs_writes_a_ca_and_node_certificates_keys_for_their_owner_alone_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let run = || {
        Command::new(BIN)
            .args([
                "certs",
                "--dir",
                &certs.display().to_string(),
                "--nodes",
                "1,2",
            ])
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{first:?}");
    let written = String::from_utf8_lossy(&first.stdout);
    for name in [
        "ca.pem",
        "ca.key",
        "node1.pem",
        "node1.key",
        "node2.pem",
        "node2.key",
    ] {
        let path = certs.join(name);
        assert!(written.contains(&path.display().to_string()), "{written}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            let expected = if name.ends_with(".key") { 0o600 } else { 0o644 };
            assert_eq!(mode, expected, "{name}: {mode:o}");
        }
    }
    let again = run();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("ca.pem"));
}

#[test]
fn a_node_off_loopback_needs_certificates_or_insecure_plaintext_which_it_warns_of() {
    let mut cluster = Cluster::new(57, 2, None);
    let n1 = NodeId(1);
    let mut args = cluster.args(n1);
    let listen = args.iter().position(|a| a == "--listen").unwrap() + 1;
    // Every address of the machine: not loopback.
    args[listen] = "0.0.0.0:0".into();
    args.insert(1, "--init".into());
    let (status, said) = cluster.run_to_end(&args);
    assert!(!status.success(), "{said}");
    assert!(said.contains("is not a loopback address"), "{said}");
    args.push("--insecure-plaintext".into());
    cluster.start_with(n1, &args);
    let warned = cluster.wait_for("the plaintext warning", |h| {
        event(h, n1, |e| match e {
            NodeEvent::InsecurePlaintext { listen } => Some(*listen),
            _ => None,
        })
    });
    assert_eq!(warned, "0.0.0.0:0".parse::<SocketAddr>().unwrap());
}

#[test]
fn sighup_reloads_the_certificates_a_failed_reload_keeps_them_and_the_status_counts_refusals() {
    let mut cluster = Cluster::new(58, 2, None).with_tls();
    let n1 = NodeId(1);
    let addr = cluster.addrs()[&n1];
    let status = cluster.start_with_status(n1);
    signal(cluster.pid(n1), "HUP");
    cluster.wait_for("a reload", |h| {
        event(h, n1, |e| {
            matches!(e, NodeEvent::TlsReloaded { .. }).then_some(())
        })
    });
    let key = cluster.tls_dir().unwrap().join("node1.key");
    std::fs::write(&key, "no key").unwrap();
    signal(cluster.pid(n1), "HUP");
    let reason = cluster.wait_for("a failed reload", |h| {
        event(h, n1, |e| match e {
            NodeEvent::TlsReloadFailed { reason } => Some(reason.clone()),
            _ => None,
        })
    });
    assert!(reason.contains("node1.key"), "{reason}");
    // Still serving, with the old material: a stranger is refused and
    // counted by cause.
    let stranger = crate::attacks::connect_from([127, 58, 0, 9].into(), addr).unwrap();
    drop(stranger);
    let answer = cluster.wait_for("the refusal in the status", |_| {
        let answer = get_status(status);
        answer.contains("\"unknown_address\":1").then_some(answer)
    });
    assert!(answer.contains("\"rejected_connections\":1"), "{answer}");
}
