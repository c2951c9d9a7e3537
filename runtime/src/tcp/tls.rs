//! Mutual TLS 1.3 on peer connections (rustls, with the `ring` provider).
//!
//! Every node holds its cluster's CA certificate, its own certificate and
//! its key. Each connection is authenticated both ways: the connecting
//! node checks that the accepting node's certificate chains to the CA and
//! names the peer it meant to reach; the accepting node checks that the
//! connecting node's certificate chains to the CA, then finds which peer it
//! names, and the connection's hello must name that same peer
//! ([`super::wire`]). A certificate names a node by a DNS name in its
//! subject alternative names, [`identity_name`]: `node2.cluster1.raft-election.invalid`
//! for node 2 of cluster 1. Why a DNS name: every PKI issues them, and
//! rustls checks them with its own name matching, so this crate parses no
//! X.509; `.invalid` (RFC 2606) is a top-level domain that never resolves,
//! so no public certificate and no real host can carry the name.
//!
//! The material is read from files, and [`PeerTls::reload`] reads them again
//! for the connections that follow (a `SIGHUP` to the node process): a
//! reload that fails keeps the material in use and says why.

use raft_election::{ClusterId, NodeId};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig, ServerConnection};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::record_log::Refusal;

/// The DNS name in the certificate of node `id` of `cluster`.
#[must_use]
pub fn identity_name(cluster: ClusterId, id: NodeId) -> String {
    format!("node{}.cluster{}.raft-election.invalid", id.0, cluster.0)
}

/// Where a node's TLS material is: PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The cluster's CA certificate (or several): the only issuer trusted.
    pub ca: PathBuf,
    /// This node's certificate, then any intermediate certificates.
    pub cert: PathBuf,
    /// This node's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why TLS material cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file that cannot be read or holds no PEM object of its kind.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The node's own certificate is not one its peers would accept.
    #[error("{path}: {reason}")]
    OwnCertificate {
        /// The certificate's file.
        path: PathBuf,
        /// Why its peers would refuse it.
        reason: String,
    },
    /// rustls refused the material (a key that does not match the
    /// certificate, say).
    #[error("the TLS material is refused: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The configurations built from one reading of the files.
struct Material {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

/// A node's TLS material for its peer connections, reloadable. Shared by
/// the transport's tasks; every new connection uses the material loaded
/// last.
pub struct PeerTls {
    files: TlsFiles,
    cluster: ClusterId,
    me: NodeId,
    current: RwLock<Arc<Material>>,
}

impl fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerTls")
            .field("files", &self.files)
            .field("identity", &identity_name(self.cluster, self.me))
            .finish_non_exhaustive()
    }
}

impl PeerTls {
    /// Reads the material of node `me` of `cluster` from `files`, and
    /// checks that the node's own certificate is one its peers will accept:
    /// signed by the CA, valid now, naming this node.
    pub fn load(files: TlsFiles, cluster: ClusterId, me: NodeId) -> Result<Self, TlsError> {
        let material = build(&files, cluster, me)?;
        Ok(Self {
            files,
            cluster,
            me,
            current: RwLock::new(Arc::new(material)),
        })
    }

    /// Reads the files again; new connections use what they hold from now
    /// on. On an error the material in use stays, and the error says why.
    pub fn reload(&self) -> Result<(), TlsError> {
        let material = build(&self.files, self.cluster, self.me)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(material);
        Ok(())
    }

    /// The files it reads.
    #[must_use]
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    fn material(&self) -> Arc<Material> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The acceptor of the next inbound connection.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.material().acceptor.clone()
    }

    /// The connector of the next outbound connection.
    pub(crate) fn connector(&self) -> TlsConnector {
        self.material().connector.clone()
    }

    /// The name the certificate of peer `peer` must carry.
    pub(crate) fn server_name(&self, peer: NodeId) -> ServerName<'static> {
        ServerName::try_from(identity_name(self.cluster, peer))
            .expect("node<id>.cluster<id>.raft-election.invalid is a DNS name")
    }

    /// The peer an accepted connection's certificate names (rustls checked
    /// already that the CA signed it and that it is valid now): exactly
    /// one of `peers`, or the reason the connection is refused.
    pub(crate) fn certified_peer(
        &self,
        connection: &ServerConnection,
        peers: impl Iterator<Item = NodeId>,
    ) -> Result<NodeId, String> {
        let Some(certificate) = connection.peer_certificates().and_then(<[_]>::first) else {
            return Err("no certificate".into());
        };
        let parsed = ParsedCertificate::try_from(certificate).map_err(|e| e.to_string())?;
        let named: Vec<NodeId> = peers
            .filter(|&peer| verify_server_name(&parsed, &self.server_name(peer)).is_ok())
            .collect();
        match named.as_slice() {
            [peer] => Ok(*peer),
            [] => Err(format!(
                "its certificate names no peer of {} (node<id>.cluster{}.raft-election.invalid)",
                self.cluster, self.cluster.0
            )),
            _ => Err(format!("its certificate names several peers: {named:?}")),
        }
    }
}

/// The refusal cause of a failed TLS handshake of an accepted connection,
/// or `None` if the peer merely closed it.
pub(crate) fn refusal_of(error: &std::io::Error) -> Option<Refusal> {
    use rustls::{CertificateError, Error};
    let Some(rustls) = error.get_ref().and_then(|e| e.downcast_ref::<Error>()) else {
        return match error.kind() {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => None,
            _ => Some(Refusal::TlsHandshake),
        };
    };
    Some(match rustls {
        Error::NoCertificatesPresented => Refusal::NoCertificate,
        Error::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => Refusal::ExpiredCertificate,
        Error::InvalidCertificate(_) => Refusal::UntrustedCertificate,
        _ => Refusal::TlsHandshake,
    })
}

fn read_error(path: &Path, what: &str, error: impl fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        reason: format!("no {what} in it ({error})"),
    }
}

/// Reads the files and builds both sides' configurations: TLS 1.3 only, a
/// certificate required of every peer, no session tickets (a peer
/// connection lasts; resuming saves nothing).
fn build(files: &TlsFiles, cluster: ClusterId, me: NodeId) -> Result<Material, TlsError> {
    let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.ca)
        .and_then(Iterator::collect)
        .map_err(|e| read_error(&files.ca, "CA certificate", e))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect)
        .map_err(|e| read_error(&files.cert, "certificate", e))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| read_error(&files.key, "private key", e))?;
    if cas.is_empty() {
        return Err(read_error(&files.ca, "CA certificate", "empty"));
    }
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots
            .add(ca)
            .map_err(|e| read_error(&files.ca, "usable CA certificate", e))?;
    }
    let roots = Arc::new(roots);
    // The process's default provider: rustls installs it from its crate
    // features, and this crate enables `ring` alone (docs/operations.md,
    // "Peer authentication", says why).
    let verifier = WebPkiClientVerifier::builder(Arc::clone(&roots))
        .build()
        .map_err(|e| read_error(&files.ca, "usable CA certificate", e))?;
    let tls13 = &[&rustls::version::TLS13];
    let mut server = ServerConfig::builder_with_protocol_versions(tls13)
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.clone(), key.clone_key())?;
    server.send_tls13_tickets = 0;
    check_own(files, server.crypto_provider(), &roots, &chain, cluster, me)?;
    let client = ClientConfig::builder_with_protocol_versions(tls13)
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    Ok(Material {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        connector: TlsConnector::from(Arc::new(client)),
    })
}

/// The node's own certificate chains to the CA, is valid now and names
/// node `me` of `cluster`: what every peer will check.
fn check_own(
    files: &TlsFiles,
    provider: &CryptoProvider,
    roots: &RootCertStore,
    chain: &[CertificateDer<'static>],
    cluster: ClusterId,
    me: NodeId,
) -> Result<(), TlsError> {
    let refused = |reason: String| TlsError::OwnCertificate {
        path: files.cert.clone(),
        reason,
    };
    let Some((own, intermediates)) = chain.split_first() else {
        return Err(read_error(&files.cert, "certificate", "empty"));
    };
    let parsed = ParsedCertificate::try_from(own).map_err(|e| refused(e.to_string()))?;
    let algorithms = provider.signature_verification_algorithms.all;
    verify_server_cert_signed_by_trust_anchor(
        &parsed,
        roots,
        intermediates,
        UnixTime::now(),
        algorithms,
    )
    .map_err(|e| refused(format!("peers would refuse it: {e}")))?;
    let name = identity_name(cluster, me);
    let server_name =
        ServerName::try_from(name.clone()).map_err(|e| refused(format!("{name}: {e}")))?;
    verify_server_name(&parsed, &server_name).map_err(|_| {
        refused(format!(
            "it does not name this node: {name} is not among its subject alternative names"
        ))
    })
}
