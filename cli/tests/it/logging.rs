//! The logs of a small deterministic run (Tokio's paused clock, a seeded
//! cluster), as `--log-format json` writes them. A test binary of its own:
//! tracing caches which call sites are enabled, and a test running beside
//! this one without a subscriber could make it cache "never".

use raft_election_runtime::spawn_cluster;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn every_line_a_node_logs_carries_its_id_term_and_role_as_span_fields() {
    let log = tempfile::NamedTempFile::new().expect("a temporary log file");
    let writer = Arc::new(log.reopen().expect("the log file, reopened"));
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter("raft_election=trace")
        .with_writer(writer)
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    // The subscriber is this thread's, and the current-thread runtime polls
    // every node task here.
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let config = raft_election_runtime::ClusterConfig::seeded(3, 4);
            let cluster = spawn_cluster(config).expect("a cluster");
            let wait = Duration::from_secs(5);
            let (leader, term) = cluster.wait_for_leader(wait).await.expect("a leader");
            cluster.crash(leader).await.expect("crash");
            cluster
                .wait_for_leader_after(term, wait)
                .await
                .expect("a new leader");
            cluster.restart(leader).await.expect("restart");
            cluster.heal();
            tokio::time::sleep(Duration::from_millis(200)).await;
            cluster.shutdown().await.expect("clean shutdown");
        });
    });
    let bytes = std::fs::read(log.path()).expect("the log file");
    let text = String::from_utf8(bytes).expect("UTF-8");
    let mut in_spans = 0;
    for line in text.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {e}: {line}"));
        let target = value["target"].as_str().unwrap_or_default();
        match value.get("span") {
            Some(span) => {
                in_spans += 1;
                assert_eq!(span["name"], "node", "{line}");
                let node = span["node"].as_str().unwrap_or_default();
                assert!(["n0", "n1", "n2"].contains(&node), "{line}");
                assert!(span["term"].is_u64(), "{line}");
                let role = span["role"].as_str().unwrap_or_default();
                assert!(
                    ["follower", "candidate", "leader"].contains(&role),
                    "{line}"
                );
            }
            // Only the fault controls (the cluster module itself, not its
            // observer or narration) log outside a node's step.
            None => assert_eq!(
                target, "raft_election_runtime::cluster",
                "a line outside any node span: {line}"
            ),
        }
    }
    assert!(
        in_spans > 20,
        "only {in_spans} lines inside node spans:\n{text}"
    );
}
