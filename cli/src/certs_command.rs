//! `raft-election certs`: a CA and node certificates for a quick start.

use clap::Args;
use raft_election::{ClusterId, NodeId};
use raft_election_cli::certs;
use std::path::PathBuf;
use std::process::ExitCode;

/// Make a cluster's CA and a certificate for each node, for mutual TLS
/// between the nodes (`node --tls-dir DIR`).
#[derive(Debug, Args)]
#[command(after_help = "\
Writes DIR/ca.pem and DIR/ca.key (the CA), and DIR/node<ID>.pem and DIR/node<ID>.key per node; \
keys are written with mode 0600, and no existing file is overwritten. Each node certificate \
names its node as the DNS name node<ID>.cluster<CLUSTER>.raft-election.invalid, which its \
peers check, and is valid for both server and client authentication. Give each node ca.pem \
and its own two files only; keep ca.key offline. To use an existing PKI instead, issue \
certificates with that name (docs/operations.md, \"Peer authentication\").

Example: raft-election certs --dir /etc/raft-election/certs --nodes 1,2,3")]
pub(crate) struct CertsArgs {
    /// Directory to write the files in; created if missing.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The nodes' ids, comma-separated.
    #[arg(long, value_name = "IDS", value_delimiter = ',', required = true)]
    nodes: Vec<u8>,
    /// The cluster's id, as every node's --cluster-id.
    #[arg(long, default_value_t = 1)]
    cluster_id: u64,
    /// How long the node certificates are valid, in days (the CA: ten years).
    #[arg(long, default_value_t = 365)]
    days: u32,
}

/// Writes the files, or says why it cannot (exit 1).
pub(crate) fn main(args: &CertsArgs) -> ExitCode {
    let nodes: Vec<NodeId> = args.nodes.iter().copied().map(NodeId).collect();
    match certs::create(&args.dir, ClusterId(args.cluster_id), &nodes, args.days) {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
