//! Logging for every binary of this crate, set up in one place ([`init`]).
//!
//! The demo narrates a whole cluster, so its lines carry the node in their
//! text. A node process logs for one node: every line starts with that
//! node's id, term and role as they are when the line is written, in text
//! or in JSON (one object a line: `ts` in seconds since the Unix epoch,
//! `level`, `node`, `term`, `role`, `target`, `message` and the event's own
//! fields, such as `event` = start, timeout, term, role, vote, leader,
//! receive, send, stop; see `raft_election_runtime::server`).

use raft_election::{NodeId, Role, Term};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for tools.
    Json,
}

/// A node's term and role right now, for the start of each line.
pub(crate) type NodeState = Arc<dyn Fn() -> (Term, Role) + Send + Sync>;

/// Where a node process's lines get their term and role: set once the
/// node runs (lines before say `-`).
#[derive(Clone)]
pub(crate) struct NodeContext {
    id: NodeId,
    state: Arc<OnceLock<NodeState>>,
}

impl NodeContext {
    /// The context of node `id`, its state not known yet.
    #[must_use]
    pub(crate) fn new(id: NodeId) -> Self {
        Self {
            id,
            state: Arc::default(),
        }
    }

    /// From now on, lines read the node's term and role from `state`.
    pub(crate) fn set(&self, state: NodeState) {
        let _ = self.state.set(state);
    }

    fn now(&self) -> (NodeId, Option<(Term, Role)>) {
        (self.id, self.state.get().map(|state| state()))
    }
}

/// What a binary logs, and how.
pub(crate) struct Logging {
    /// `-v` count: 0 info, 1 debug (votes, lost messages), 2 trace (heartbeats).
    pub(crate) verbose: u8,
    /// Text or JSON.
    pub(crate) format: LogFormat,
    /// A node process's context; `None` for the demo, whose lines name their nodes.
    pub(crate) node: Option<NodeContext>,
}

/// Installs the process's one subscriber. `RUST_LOG` overrides the level.
/// The demo writes to stdout beside its story; a node to stderr, which is
/// what service managers collect.
pub(crate) fn init(logging: Logging) {
    let level = match logging.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("raft_election={level}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // A closed output is not worth a complaint per event.
        .log_internal_errors(false);
    match logging.node {
        Some(context) => builder
            .event_format(NodeFormat {
                json: logging.format == LogFormat::Json,
                context: Some(context),
            })
            .with_writer(std::io::stderr)
            .init(),
        None if logging.format == LogFormat::Json => builder
            .event_format(NodeFormat {
                json: true,
                context: None,
            })
            .init(),
        None => builder
            .with_target(false)
            .with_level(false)
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init(),
    }
}

/// A node process's line: time, level, node, term, role, message, fields.
struct NodeFormat {
    json: bool,
    /// `None` for the demo's JSON lines: many nodes share its process.
    context: Option<NodeContext>,
}

impl<S, N> FormatEvent<S, N> for NodeFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now = self.context.as_ref().map(NodeContext::now);
        let metadata = event.metadata();
        if self.json {
            let mut line = Map::new();
            let ts = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            line.insert("ts".into(), ts.into());
            line.insert("level".into(), metadata.level().as_str().into());
            if let Some((id, state)) = now {
                line.insert("node".into(), id.0.into());
                if let Some((term, role)) = state {
                    line.insert("term".into(), term.0.into());
                    line.insert("role".into(), role.to_string().into());
                }
            }
            line.insert("target".into(), metadata.target().into());
            event.record(&mut JsonFields(&mut line));
            return writeln!(writer, "{}", Value::Object(line));
        }
        tracing_subscriber::fmt::time::SystemTime.format_time(&mut writer)?;
        let (id, state) = now.unwrap_or((NodeId(0), None));
        let (term, role) = state.map_or_else(
            || ("-".to_owned(), "-".to_owned()),
            |(term, role)| (term.to_string(), role.to_string()),
        );
        write!(writer, " {:>5} {id} {term} {role}: ", metadata.level())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// An event's fields as JSON values.
struct JsonFields<'a>(&'a mut Map<String, Value>);

impl Visit for JsonFields<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}
