//! `raft-election status` and `raft-election transfer`: a cluster seen and
//! steered through its nodes' status endpoints (`node --status`).

use clap::Args;
use hyper::{Method, StatusCode};
use raft_election_cli::http::request;
use serde_json::{Value, json};
use std::process::ExitCode;
use std::time::Duration;
use tokio::time::Instant;

/// Print every node's status as one table (or JSON), asking each node's
/// status endpoint (`node --status ADDR`).
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// A node's status address (HOST:PORT), once per node.
    #[arg(long = "peer", value_name = "ADDR", required = true)]
    peers: Vec<String>,
    /// Print JSON: one object per node, its address and its status (or
    /// the error that stood in the way).
    #[arg(long)]
    json: bool,
}

/// Ask the leader to hand its leadership to a node, and wait until that
/// node leads. The leader accepts it only on a loopback status address:
/// nothing authenticates the request yet (mutual TLS will).
#[derive(Debug, Args)]
pub(crate) struct TransferArgs {
    /// The node to lead next.
    #[arg(long)]
    to: u8,
    /// A node's status address (HOST:PORT), once per node.
    #[arg(long = "peer", value_name = "ADDR", required = true)]
    peers: Vec<String>,
    /// How long to wait for the new leader, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    timeout_ms: u64,
}

/// Every node's status, or the reason it could not be read.
async fn statuses(peers: &[String]) -> Vec<(String, Result<Value, String>)> {
    let mut out = Vec::with_capacity(peers.len());
    for address in peers {
        let status = match request(address, Method::GET, "/status", None).await {
            Ok((StatusCode::OK, body)) => serde_json::from_str(&body).map_err(|e| e.to_string()),
            Ok((code, body)) => Err(format!("{code}: {}", body.trim())),
            Err(e) => Err(e),
        };
        out.push((address.clone(), status));
    }
    out
}

/// One cell: a number rounded, a missing one as `-`.
fn cell(value: &Value, unit: &str) -> String {
    match value.as_f64() {
        Some(number) if unit.is_empty() => format!("{number}"),
        Some(number) => format!("{number:.0} {unit}"),
        None => "-".to_owned(),
    }
}

/// The statuses as a table, one line per node.
fn table(statuses: &[(String, Result<Value, String>)]) -> String {
    let mut out = format!(
        "{:<4} {:<14} {:<6} {:<6} {:<9} {:<10} {:<12} {:<7} {:<5} {}\n",
        "ID",
        "ROLE",
        "TERM",
        "LEADER",
        "LEASE",
        "HEARD",
        "CONNECTED",
        "HEALTHY",
        "READY",
        "ADDRESS"
    );
    for (address, status) in statuses {
        let Ok(s) = status else {
            let error = status.as_ref().err().map_or("", String::as_str);
            out.push_str(&format!(
                "{:<4} {:<14} {:<62} {address}: {error}\n",
                "-", "unreachable", ""
            ));
            continue;
        };
        let connected: Vec<&str> = s["peers"]
            .as_object()
            .map(|peers| {
                peers
                    .iter()
                    .filter(|(_, p)| p["connected"].as_bool() == Some(true))
                    .map(|(id, _)| id.as_str())
                    .collect()
            })
            .unwrap_or_default();
        let yes = |v: &Value| {
            if v.as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            }
        };
        out.push_str(&format!(
            "{:<4} {:<14} {:<6} {:<6} {:<9} {:<10} {:<12} {:<7} {:<5} {address}\n",
            cell(&s["id"], ""),
            s["role"].as_str().unwrap_or("-"),
            cell(&s["term"], ""),
            cell(&s["leader"], ""),
            cell(&s["lease_remaining_ms"], "ms"),
            cell(&s["last_heartbeat_ms_ago"], "ms"),
            if connected.is_empty() {
                "-".to_owned()
            } else {
                connected.join(",")
            },
            yes(&s["healthy"]),
            yes(&s["ready"]),
        ));
    }
    out
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the Tokio runtime: {e}"))
}

/// Prints the cluster; exits 1 if a node could not be read.
pub(crate) fn status(args: &StatusArgs) -> ExitCode {
    let found = match runtime() {
        Ok(runtime) => runtime.block_on(statuses(&args.peers)),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        let nodes: Vec<Value> = found
            .iter()
            .map(|(address, status)| match status {
                Ok(status) => json!({"address": address, "status": status}),
                Err(error) => json!({"address": address, "error": error}),
            })
            .collect();
        println!("{}", Value::Array(nodes));
    } else {
        print!("{}", table(&found));
    }
    if found.iter().all(|(_, status)| status.is_ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The address and status of the node that says it leads, if one does.
fn leader(found: &[(String, Result<Value, String>)]) -> Option<(&str, &Value)> {
    found.iter().find_map(|(address, status)| {
        let status = status.as_ref().ok()?;
        (status["role"] == "leader").then_some((address.as_str(), status))
    })
}

async fn transfer_to(args: &TransferArgs) -> Result<String, String> {
    let found = statuses(&args.peers).await;
    let (address, status) = leader(&found).ok_or("no node says it leads")?;
    if status["id"] == args.to {
        return Ok(format!("{} leads already", args.to));
    }
    let path = format!("/transfer?to={}", args.to);
    let (code, body) = request(address, Method::POST, &path, None).await?;
    if code != StatusCode::ACCEPTED {
        return Err(format!(
            "the leader at {address} answered {code}: {}",
            body.trim()
        ));
    }
    let deadline = Instant::now() + Duration::from_millis(args.timeout_ms);
    // Each turn reads every status once, until the new leader shows.
    loop {
        let found = statuses(&args.peers).await;
        if let Some((_, status)) = leader(&found).filter(|(_, s)| s["id"] == args.to) {
            return Ok(format!("{} leads term {}", args.to, status["term"]));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} did not lead within {} ms",
                args.to, args.timeout_ms
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asks for the hand-over; exits 0 once `--to` leads.
pub(crate) fn transfer(args: &TransferArgs) -> ExitCode {
    let result = runtime().and_then(|runtime| runtime.block_on(transfer_to(args)));
    match result {
        Ok(words) => {
            println!("{words}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
