//! A cluster's CA and its nodes' certificates, made with rcgen, each
//! naming its node the way peers check it ([`identity_name`]): for
//! `raft-election certs` and for tests. An existing PKI can issue the same
//! instead (docs/operations.md, "Peer authentication").

use super::tls::identity_name;
use raft_election::{ClusterId, NodeId};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::time::Duration;
use time::OffsetDateTime;

/// How long a CA made here is valid: ten years.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Certificates are valid from this long before they are made, so a peer
/// whose clock is a little behind still takes them.
const CLOCK_SKEW: Duration = Duration::from_secs(3600);

/// A cluster's certificate authority: its certificate and its key.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    cluster: ClusterId,
    pem: String,
    key_pem: String,
}

/// A certificate and its key, in PEM.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate.
    pub cert: String,
    /// Its private key.
    pub key: String,
}

fn rcgen_error(what: &str) -> impl Fn(rcgen::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// `at` moved by `by`, later or earlier; `at` itself past the ends of time.
fn shifted(at: OffsetDateTime, by: Duration, later: bool) -> OffsetDateTime {
    let by = time::Duration::try_from(by).unwrap_or(time::Duration::MAX);
    let moved = if later {
        at.checked_add(by)
    } else {
        at.checked_sub(by)
    };
    moved.unwrap_or(at)
}

impl Authority {
    /// A new CA for `cluster`, valid for ten years.
    pub fn new(cluster: ClusterId) -> Result<Self, String> {
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(rcgen_error("the CA's parameters"))?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(DnType::CommonName, format!("raft-election {cluster} CA"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = shifted(now, CLOCK_SKEW, false);
        params.not_after = shifted(now, CA_VALIDITY, true);
        let key = KeyPair::generate().map_err(rcgen_error("the CA's key"))?;
        let cert = params
            .self_signed(&key)
            .map_err(rcgen_error("the CA's certificate"))?;
        Ok(Self {
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
            cluster,
        })
    }

    /// The CA's certificate, in PEM.
    #[must_use]
    pub fn cert_pem(&self) -> &str {
        &self.pem
    }

    /// The CA's private key, in PEM.
    #[must_use]
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A certificate naming node `named` of the CA's cluster, valid from
    /// (an hour before) `from` for `days`.
    pub fn node(&self, named: NodeId, from: OffsetDateTime, days: u32) -> Result<Issued, String> {
        let name = identity_name(self.cluster, named);
        let mut params =
            CertificateParams::new(vec![name]).map_err(rcgen_error("a node's parameters"))?;
        params.distinguished_name.push(
            DnType::CommonName,
            format!("raft-election {} {named}", self.cluster),
        );
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // Every node is a server to its peers and a client of them.
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = shifted(from, CLOCK_SKEW, false);
        params.not_after = shifted(from, Duration::from_secs(u64::from(days) * 86_400), true);
        let key = KeyPair::generate().map_err(rcgen_error("a node's key"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(rcgen_error("a node's certificate"))?;
        Ok(Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}
