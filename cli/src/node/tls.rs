//! The node's TLS flags, its secure default and its reload on SIGHUP.

use clap::Args;
use raft_election::{ClusterId, NodeId};
use raft_election_cli::certs::node_files;
use raft_election_cli::log_lines::{NodeEvent, log_event};
use raft_election_runtime::tcp::tls::{PeerTls, TlsFiles};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Mutual TLS between peers.
#[derive(Clone, Debug, Args, Serialize, Deserialize)]
#[command(next_help_heading = "Peer authentication")]
#[serde(default, rename_all = "kebab-case")]
pub(crate) struct TlsArgs {
    /// Mutual TLS with the files `raft-election certs` writes: DIR/ca.pem,
    /// DIR/node<ID>.pem and DIR/node<ID>.key (--tls-ca, --tls-cert and
    /// --tls-key name other files).
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_dir: Option<PathBuf>,
    /// The cluster's CA certificate (PEM): the only issuer a peer's
    /// certificate may chain to.
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_ca: Option<PathBuf>,
    /// This node's certificate (PEM, then any intermediates), naming it as
    /// node<ID>.cluster<CLUSTER>.raft-election.invalid.
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert: Option<PathBuf>,
    /// This node's private key (PEM). The three files are read again on
    /// SIGHUP; a reload that fails keeps the material in use.
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key: Option<PathBuf>,
    /// Run without TLS although --listen is not a loopback address: any
    /// process that reaches the port from a peer's address can then speak
    /// for that peer (docs/operations.md, "What plaintext does not protect
    /// against"). Logged as a warning at start.
    #[arg(long, conflicts_with_all = ["tls_dir", "tls_ca", "tls_cert", "tls_key"])]
    insecure_plaintext: bool,
}

impl TlsArgs {
    /// The files given, each from its own flag or else from --tls-dir;
    /// `None` if no TLS flag was given.
    fn files(&self, id: NodeId) -> Result<Option<TlsFiles>, String> {
        let defaults = self.tls_dir.as_deref().map(|dir| node_files(dir, id));
        let pick = |given: &Option<PathBuf>, default: Option<PathBuf>, flag: &str| {
            given
                .clone()
                .or(default)
                .ok_or_else(|| format!("{flag} is needed with the other TLS flags (or --tls-dir)"))
        };
        let any = defaults.is_some()
            || self.tls_ca.is_some()
            || self.tls_cert.is_some()
            || self.tls_key.is_some();
        if !any {
            return Ok(None);
        }
        Ok(Some(TlsFiles {
            ca: pick(
                &self.tls_ca,
                defaults.as_ref().map(|d| d.ca.clone()),
                "--tls-ca",
            )?,
            cert: pick(
                &self.tls_cert,
                defaults.as_ref().map(|d| d.cert.clone()),
                "--tls-cert",
            )?,
            key: pick(&self.tls_key, defaults.map(|d| d.key), "--tls-key")?,
        }))
    }

    /// The node's TLS material, loaded and checked, or `None` for
    /// plaintext: allowed on a loopback `listen` address, elsewhere only
    /// with --insecure-plaintext, which says so at start.
    fn load(
        &self,
        listen: SocketAddr,
        cluster: ClusterId,
        id: NodeId,
    ) -> Result<Option<Arc<PeerTls>>, String> {
        let files = self.files(id)?;
        if files.is_some() && self.insecure_plaintext {
            // Clap refuses the pair on the command line; a --config file
            // can still hold both.
            return Err("--insecure-plaintext and the TLS flags exclude each other".into());
        }
        if let Some(files) = files {
            let tls = PeerTls::load(files, cluster, id).map_err(|e| format!("TLS: {e}"))?;
            return Ok(Some(Arc::new(tls)));
        }
        if self.insecure_plaintext {
            log_event(&NodeEvent::InsecurePlaintext { listen });
        } else if !listen.ip().is_loopback() {
            return Err(format!(
                "--listen {listen} is not a loopback address: give the node its certificates \
                 (--tls-dir, made by `raft-election certs`), or --insecure-plaintext to run \
                 without authentication"
            ));
        }
        Ok(None)
    }

    /// [`Self::load`], and with TLS a task that reloads the material at
    /// every SIGHUP. Inside the node's Tokio runtime.
    pub(crate) fn start(
        &self,
        listen: SocketAddr,
        cluster: ClusterId,
        id: NodeId,
    ) -> Result<Option<Arc<PeerTls>>, String> {
        let tls = self.load(listen, cluster, id)?;
        if let Some(material) = &tls {
            tokio::spawn(reload_on_hangup(Arc::clone(material)));
        }
        Ok(tls)
    }
}

/// Reads the TLS files again at every SIGHUP, for the process's life; a
/// reload that fails keeps the material in use and says why.
async fn reload_on_hangup(tls: Arc<PeerTls>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            return;
        };
        // One turn per SIGHUP; ends with the process.
        while hangups.recv().await.is_some() {
            let event = match tls.reload() {
                Ok(()) => NodeEvent::TlsReloaded {
                    cert: tls.files().cert.clone(),
                },
                Err(e) => NodeEvent::TlsReloadFailed {
                    reason: e.to_string(),
                },
            };
            log_event(&event);
        }
    }
    #[cfg(not(unix))]
    drop(tls);
}
