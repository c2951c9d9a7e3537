//! The packaging in deploy/ and the Dockerfile, checked as far as this
//! machine can: the Kubernetes manifests parsed as YAML and held to the
//! endpoints and flags the node has (their configuration loaded by the
//! node itself), the systemd unit through `systemd-analyze verify`, the
//! Dockerfile's stages against the workspace. Nothing here runs a
//! container engine or a cluster: there is none on this machine.

use crate::common::BIN;
use std::path::{Path, PathBuf};
use std::process::Command;
use yaml_rust2::{Yaml, YamlLoader};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ is in the repository")
        .to_owned()
}

fn text(path: &str) -> String {
    let path = repository().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `raft-election node --config FILE ARGS --print-config`: the node's own
/// reading of a configuration; panics with its error.
fn print_config(config: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(&path, config).unwrap();
    let output = Command::new(BIN)
        .args(["node", "--config"])
        .arg(&path)
        .args(args)
        .arg("--print-config")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{config}\n{err}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The document of `kind` in `docs`.
fn kind<'a>(docs: &'a [Yaml], kind: &str) -> &'a Yaml {
    docs.iter()
        .find(|doc| doc["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn the_kubernetes_manifests_probe_the_endpoints_and_flags_the_node_has() {
    let docs = YamlLoader::load_from_str(&text("deploy/kubernetes/raft-election.yaml"))
        .expect("the manifests are YAML");
    let service = kind(&docs, "Service");
    assert!(matches!(&service["spec"]["clusterIP"], Yaml::String(s) if s == "None"));
    assert_eq!(
        service["spec"]["publishNotReadyAddresses"].as_bool(),
        Some(true)
    );
    let set = kind(&docs, "StatefulSet");
    assert_eq!(set["spec"]["replicas"].as_i64(), Some(3));
    assert_eq!(
        set["spec"]["serviceName"].as_str(),
        service["metadata"]["name"].as_str()
    );
    let pod = &set["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    let status_port = container["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|port| port["name"].as_str() == Some("status"))
        .and_then(|port| port["containerPort"].as_i64())
        .expect("a status port");
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(
        annotations["prometheus.io/port"].as_str(),
        Some(status_port.to_string().as_str())
    );
    assert_eq!(annotations["prometheus.io/path"].as_str(), Some("/metrics"));
    // What every pod's node reads, with what its shell adds for pod 0.
    let config = kind(&docs, "ConfigMap")["data"]["node.toml"]
        .as_str()
        .unwrap();
    let printed = print_config(
        config,
        &[
            "--id",
            "0",
            "--peer",
            "1=raft-election-1.raft-election:7001",
            "--peer",
            "2=raft-election-2.raft-election:7001",
        ],
    );
    assert!(
        printed.contains(&format!("status = \"0.0.0.0:{status_port}\"")),
        "{printed}"
    );
    // Off loopback, a node needs its certificates: the Secret's mount.
    assert!(
        printed.contains("tls-dir = \"/etc/raft-election-tls\""),
        "{printed}"
    );
    let mounts = container["volumeMounts"].as_vec().unwrap();
    assert!(
        mounts
            .iter()
            .any(|mount| mount["mountPath"].as_str() == Some("/etc/raft-election-tls")),
        "{mounts:?}"
    );
    let args = container["args"][0].as_str().unwrap();
    assert!(
        args.contains("--config /etc/raft-election/node.toml"),
        "{args}"
    );
}

/// The pod's shell starts its node with `--init` only when the ConfigMap
/// says this is a new cluster's first rollout and the volume holds no
/// state file: a pod handed a fresh volume otherwise refuses to start,
/// rather than voting again at term 0.
#[test]
fn a_kubernetes_pod_initializes_its_node_only_when_told_the_nodes_are_new() {
    let docs = YamlLoader::load_from_str(&text("deploy/kubernetes/raft-election.yaml"))
        .expect("the manifests are YAML");
    let data = &kind(&docs, "ConfigMap")["data"];
    assert_eq!(
        data["init-new-nodes"].as_str(),
        Some("no"),
        "off by default"
    );
    let set = kind(&docs, "StatefulSet");
    let script = set["spec"]["template"]["spec"]["containers"][0]["args"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    // The script with its volume in a directory of the test's, and a
    // `raft-election` that prints the flags it was given.
    let volume = dir.path().join("data");
    std::fs::create_dir(&volume).unwrap();
    let script = script
        .replace("/data/", &format!("{}/", volume.display()))
        .replace("exec raft-election", "exec echo");
    let started = |switch: &str| -> String {
        let output = Command::new("sh")
            .args(["-c", &script])
            .env("POD_INDEX", "0")
            .env("INIT_NEW_NODES", switch)
            .output()
            .expect("sh runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(!started("no").contains("--init"), "{}", started("no"));
    let new = started("yes-these-are-new-nodes");
    assert!(new.contains("--init"), "{new}");
    std::fs::write(volume.join("node-0.state"), b"voted").unwrap();
    let restarted = started("yes-these-are-new-nodes");
    assert!(!restarted.contains("--init"), "{restarted}");
}

#[test]
fn the_systemd_unit_verifies_and_its_example_configuration_loads() {
    let printed = print_config(&text("deploy/systemd/node.toml.example"), &[]);
    assert!(
        printed.contains("peer = [\"2=node2.internal:7001\""),
        "{printed}"
    );
    let unit = text("deploy/systemd/raft-election@.service");
    assert!(unit.contains("Type=notify") && unit.contains("KillMode=mixed"));
    // Off loopback, a node needs its certificates: the unit's credentials.
    assert!(
        unit.contains("--tls-dir \"$CREDENTIALS_DIRECTORY\"")
            && unit.contains("LoadCredential=node%i.key:"),
        "{unit}"
    );
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("RAFT_ELECTION_REQUIRE_SYSTEMD_ANALYZE").is_none(),
            "systemd-analyze is required here but missing"
        );
        eprintln!("skipped: no systemd-analyze to verify the unit");
        return;
    }
    // The unit as installed, its binary the one under test.
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("raft-election@.service");
    std::fs::write(&template, unit.replace("/usr/local/bin/raft-election", BIN)).unwrap();
    let instance = dir.path().join("raft-election@1.service");
    std::os::unix::fs::symlink(&template, &instance).unwrap();
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&instance)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
}

#[test]
fn the_dockerfile_builds_the_binary_with_the_workspace_toolchain_in_a_first_stage() {
    let dockerfile = text("Dockerfile");
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(
        stages.len(),
        2,
        "a build stage and a runtime stage: {stages:?}"
    );
    let manifest: toml::Table = toml::from_str(&text("Cargo.toml")).unwrap();
    let rust_version = manifest["workspace"]["package"]["rust-version"]
        .as_str()
        .expect("the workspace's rust-version");
    assert!(
        stages[0].contains(&format!("rust:{rust_version}")),
        "{}",
        stages[0]
    );
    assert!(dockerfile.contains("COPY --from=build /src/target/release/raft-election"));
    assert!(text(".dockerignore").lines().any(|l| l == "target"));
}
