//! What the Explorer serves, read over HTTP on loopback as the browser
//! reads it (`/.status`, `/.states/...`): compact states, sentences for
//! actions, and the path drawn as a message sequence diagram. And the same
//! diagram for a counterexample, as `check --trace-svg` writes it.

use raft_election_model::{Bounds, ElectionModel, Restarts, sequence_diagram};
use stateright::{Checker, HasDiscoveries, Model};
use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// Serves the default model's Explorer on a free loopback port, in a thread
/// that lives as long as the test process (the Explorer has no stop).
fn serve() -> SocketAddr {
    let address = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port");
    let model = ElectionModel::new(Bounds::new(3))
        .expect("valid bounds")
        .without_symmetry();
    std::thread::spawn(move || model.checker().serve(address));
    address
}

/// GETs `path` as JSON, retrying while the server starts (at most 10 s).
fn get(address: SocketAddr, path: &str) -> serde_json::Value {
    let url = format!("http://{address}{path}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match ureq::get(&url).call() {
            Ok(mut response) => {
                let body = response.body_mut().read_to_string().expect("a body");
                return serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {body}"));
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("{url}: {e}"),
        }
    }
}

/// The index of the next step whose action reads `action`, from `path`.
fn step(address: SocketAddr, path: &str, action: &str) -> (String, serde_json::Value) {
    let steps = get(address, &format!("/.states{path}"));
    let steps = steps.as_array().expect("a list of steps");
    let found = steps
        .iter()
        .find(|s| s["action"].as_str() == Some(action))
        .unwrap_or_else(|| panic!("no step '{action}' after {path}: {steps:#?}"));
    let index = found["actionIndex"].as_u64().expect("an action index");
    (format!("{path}/{index}"), found.clone())
}

#[test]
fn the_explorer_serves_compact_states_and_the_path_as_a_sequence_diagram() {
    let address = serve();
    let status = get(address, "/.status");
    assert_eq!(status["model"], "raft_election_model::ElectionModel");
    let properties = status["properties"].as_array().expect("properties");
    assert!(properties.iter().any(|p| p[1] == "election safety"));

    // The initial state: one line per node, no Rust `Debug` dump.
    let initial = get(address, "/.states");
    let text = initial[0]["state"].as_str().expect("a state");
    assert!(
        text.starts_with("n0 follower  t0 voted - log 1@t0 timer election\n"),
        "{text}"
    );
    assert!(
        text.contains("\nn2 follower  t0 voted - log 0@t0 timer election\n"),
        "{text}"
    );
    assert!(
        text.contains("in flight: 0\n") && text.contains("crashes: 0 so far"),
        "{text}"
    );
    assert!(!text.contains("current_term"), "{text}");

    // n1 campaigns; n2 votes for it; n1 wins.
    let (path, _) = step(address, "/0", "n1's election timer fires");
    let request = "n2 receives from n1: RequestVote(t1, candidate n1, log 0@t0)";
    let (path, _) = step(address, &path, request);
    let (_, won) = step(
        address,
        &path,
        "n1 receives from n2: RequestVoteResponse(t1, granted)",
    );
    let outcome = won["outcome"].as_str().expect("an outcome");
    assert!(outcome.contains("n1 leader    t1 voted n1"), "{outcome}");
    assert!(outcome.contains("leaders so far: t1 n1"), "{outcome}");
    assert!(outcome.contains("crashes: 0 so far, 1 left"), "{outcome}");
    assert!(
        outcome.contains("  n1 -> n0 RequestVote(t1, candidate n1, log 0@t0)"),
        "{outcome}"
    );

    // The path so far as a sequence diagram: three lanes, two arrows
    // delivered (the request and the vote), the rest still in flight.
    let svg = won["svg"].as_str().expect("an SVG");
    let document = roxmltree::Document::parse(svg).expect("XML");
    let marks = |class: &str, attribute: &str| -> Vec<String> {
        document
            .descendants()
            .filter(|n| n.attribute("class") == Some(class))
            .filter_map(|n| n.attribute(attribute).map(str::to_owned))
            .collect()
    };
    assert_eq!(marks("tl-lane", "data-node"), ["n0", "n1", "n2"]);
    let fates = marks("tl-message", "data-fate");
    assert_eq!(
        fates.iter().filter(|f| *f == "delivered").count(),
        2,
        "{fates:?}"
    );
    assert!(fates.iter().any(|f| f == "in-flight"), "{fates:?}");
    assert_eq!(marks("tl-timeout", "data-node"), ["n1"]);
    assert!(svg.contains(request));
}

#[test]
fn a_counterexample_is_drawn_with_an_arrow_per_delivery_and_its_crash() {
    let mut bounds = Bounds::new(3);
    bounds.restarts = Restarts::Volatile;
    let safety = raft_election::invariants::Invariant::ElectionSafety.name();
    let checker = ElectionModel::new(bounds)
        .expect("valid bounds")
        .checker()
        .finish_when(HasDiscoveries::AnyOf(BTreeSet::from([safety])))
        .spawn_bfs()
        .join();
    let path = checker.discovery(safety).expect("two leaders in one term");
    let actions = path.clone().into_actions();
    let deliveries = actions
        .iter()
        .filter(|a| matches!(a, raft_election_model::Action::Deliver(_)))
        .count();
    let svg = sequence_diagram(checker.model(), &path, "two leaders").to_svg();
    let document = roxmltree::Document::parse(&svg).expect("XML");
    let count = |class: &str, attribute: &str, value: &str| {
        document
            .descendants()
            .filter(|n| n.attribute("class") == Some(class))
            .filter(|n| n.attribute(attribute) == Some(value))
            .count()
    };
    assert_eq!(count("tl-message", "data-fate", "delivered"), deliveries);
    assert_eq!(count("tl-fault", "data-fault", "crash"), 1);
    assert_eq!(count("tl-fault", "data-fault", "restart"), 1);
    // One note per step, and the last one names the broken invariant.
    let notes: Vec<&str> = document
        .descendants()
        .filter(|n| n.attribute("class") == Some("tl-note"))
        .filter_map(|n| n.text())
        .collect();
    assert_eq!(notes.len(), actions.len() + 1);
    let last = notes.last().copied().unwrap_or_default();
    assert!(last.contains("VIOLATED election safety"), "{last}");
}
