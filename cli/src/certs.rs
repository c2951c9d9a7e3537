//! Certificates for a quick start (`raft-election certs`): a cluster's CA
//! and one certificate per node ([`Authority`]), written as files. An
//! existing PKI can issue the same instead (docs/operations.md, "Peer
//! authentication").

use raft_election::{ClusterId, NodeId};
use raft_election_runtime::tcp::certs::Authority;
use raft_election_runtime::tcp::tls::{PeerTls, TlsFiles};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// Writes `text` to a new file `path`, readable by its owner alone if
/// `secret` (mode 0600); an existing file is never overwritten.
pub fn write_new(path: &Path, text: &str, secret: bool) -> Result<(), String> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The files `certs` writes for node `id` in `dir`.
#[must_use]
pub fn node_files(dir: &Path, id: NodeId) -> TlsFiles {
    TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join(format!("node{}.pem", id.0)),
        key: dir.join(format!("node{}.key", id.0)),
    }
}

/// Makes a CA for `cluster` and a certificate per node of `nodes`, valid
/// for `days`, in `dir` (created if missing; no file is overwritten):
/// `ca.pem`, `ca.key`, `node<id>.pem`, `node<id>.key`, keys mode 0600.
/// Each node's files are then loaded as the node would load them. Returns
/// the files written.
pub fn create(
    dir: &Path,
    cluster: ClusterId,
    nodes: &[NodeId],
    days: u32,
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let authority = Authority::new(cluster)?;
    let ca_key = dir.join("ca.key");
    let mut written = Vec::new();
    let first = node_files(dir, NodeId(0));
    write_new(&first.ca, authority.cert_pem(), false)?;
    written.push(first.ca);
    write_new(&ca_key, authority.key_pem(), true)?;
    written.push(ca_key);
    let now = OffsetDateTime::now_utc();
    for &id in nodes {
        let files = node_files(dir, id);
        let issued = authority.node(id, now, days)?;
        write_new(&files.cert, &issued.cert, false)?;
        write_new(&files.key, &issued.key, true)?;
        PeerTls::load(files.clone(), cluster, id).map_err(|e| e.to_string())?;
        written.extend([files.cert, files.key]);
    }
    Ok(written)
}
