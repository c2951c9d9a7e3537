//! Where a peer listens: an IP address, or a host name looked up again at
//! every connection attempt, so a peer that comes back at a new address
//! (a replaced machine, a rescheduled pod) is reached without restarting
//! anyone.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// A peer's address: `IP:PORT`, or `HOST:PORT` resolved (DNS, the hosts
/// file) each time it is needed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PeerAddress {
    /// An IP address and port.
    Ip(SocketAddr),
    /// A host name and port.
    Name {
        /// The host name, as given.
        host: String,
        /// The port.
        port: u16,
    },
}

/// Text that is neither `IP:PORT` nor `HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is neither IP:PORT nor HOST:PORT")]
pub struct BadPeerAddress(pub String);

impl FromStr for PeerAddress {
    type Err = BadPeerAddress;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Self::Ip(addr));
        }
        let bad = || BadPeerAddress(text.to_owned());
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let port = port.parse::<u16>().map_err(|_| bad())?;
        // An IPv6 literal needs brackets; anything else with a colon, a
        // space or nothing at all is no host name.
        let name_like = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_';
        if host.is_empty() || !host.chars().all(name_like) {
            return Err(bad());
        }
        Ok(Self::Name {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(addr) => write!(f, "{addr}"),
            Self::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl From<SocketAddr> for PeerAddress {
    fn from(addr: SocketAddr) -> Self {
        Self::Ip(addr)
    }
}

impl PeerAddress {
    /// The socket addresses it stands for now: itself, or what the name
    /// resolves to at this moment.
    pub async fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        match self {
            Self::Ip(addr) => Ok(vec![*addr]),
            Self::Name { host, port } => {
                let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), *port))
                    .await?
                    .collect();
                if found.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{host} resolves to no address"),
                    ));
                }
                Ok(found)
            }
        }
    }

    /// Its IP address if it is one: a name has none until resolved.
    #[must_use]
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Self::Ip(addr) => Some(addr.ip()),
            Self::Name { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_a_bracketed_ipv6_and_a_host_name_parse_and_print_back() {
        for text in [
            "127.0.0.1:7001",
            "[::1]:7001",
            "node2.internal:7001",
            "localhost:1",
        ] {
            let address: PeerAddress = text.parse().expect(text);
            assert_eq!(address.to_string(), text);
        }
        assert!(matches!(
            "node2.internal:7001".parse(),
            Ok(PeerAddress::Name { port: 7001, .. })
        ));
    }

    #[test]
    fn text_without_a_port_or_with_a_bad_host_is_refused() {
        for text in [
            "node2",
            ":7001",
            "node 2:7001",
            "::1:7001",
            "node2:70000",
            "a/b:1",
        ] {
            assert_eq!(
                text.parse::<PeerAddress>(),
                Err(BadPeerAddress(text.to_owned())),
                "{text}"
            );
        }
    }

    #[tokio::test]
    async fn localhost_resolves_to_a_loopback_address() {
        let address: PeerAddress = "localhost:7001".parse().unwrap();
        let found = address.resolve().await.expect("localhost resolves");
        assert!(
            found
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 7001),
            "{found:?}"
        );
    }
}
