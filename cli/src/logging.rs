//! The one logging setup of every binary: the format, the filter, and where
//! lines go.
//!
//! - [`init_logging`], for the demo and the benchmarks, where many nodes
//!   share a process: the runtime logs every step of a node inside a `node`
//!   span whose fields are the node's id, its current term and its role,
//!   kept current. The text format (the story) leaves them out, its
//!   sentences name node and term; JSON writes them under `span`.
//!   (tracing-subscriber's plain text formats append a recorded field
//!   instead of replacing it, so a changing term would be written as
//!   `term=1 term=2`: no such format is offered.)
//! - [`init_node_logging`], for a node process, which logs for one node:
//!   every line starts with that node's id, term and role as they are when
//!   the line is written, in text or in JSON (one flat object a line: `ts`
//!   in seconds since the Unix epoch, `level`, `node`, `term`, `role`,
//!   `target`, `message` and the event's own fields; a typed fact, the
//!   runtime's `record` or the process's `event`, is embedded as JSON:
//!   see [`crate::log_lines`]). An event field never replaces one of the
//!   line's own keys: a clash is written as `event_<name>`. In text, the
//!   typed facts are left out: the message says them in words. Colours
//!   only when standard error is a terminal.

use crate::log_lines::JSON_FIELDS;
use raft_election::{NodeId, Role, Term};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::fmt;
use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, Uptime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines look.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For a person. The demo: seconds since start and the message, the
    /// story, whose narration names the node and term in its words. A node
    /// process: the time, the level, the node's id, term and role, and the
    /// message with its fields.
    #[default]
    Text,
    /// One JSON object per line, for tools. The demo: the wall-clock time
    /// (RFC 3339, so lines of several processes merge), the node's span
    /// (node, term, role) under `span`, and the message and fields under
    /// `fields`. A node process: one flat object (see the module docs).
    Json,
}

/// Logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// Another subscriber was installed first.
    #[error("a logger is already installed: {0}")]
    AlreadySet(String),
}

/// Installs the process's logger: `format`, to standard output, filtered by
/// `RUST_LOG` if set and by `default_filter` otherwise (an `EnvFilter`
/// directive such as `raft_election=info`, which covers every crate whose
/// name starts with `raft_election`). Colours only on a terminal. Call once.
pub fn init_logging(format: LogFormat, default_filter: &str) -> Result<(), LoggingError> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        // A closed stdout (`| head`) is not worth a complaint per line.
        .log_internal_errors(false);
    let installed = match format {
        LogFormat::Text => builder.event_format(Story(Uptime::default())).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| LoggingError::AlreadySet(e.to_string()))
}

/// The story's lines: seconds since start, then the message and its fields,
/// without level, target or spans; the clock starts when logging is set up.
struct Story(Uptime);

impl<S, N> FormatEvent<S, N> for Story
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        self.0.format_time(&mut writer)?;
        writer.write_char(' ')?;
        context.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// A node's term and role right now, for the start of each line.
pub type NodeState = Arc<dyn Fn() -> (Term, Role) + Send + Sync>;

/// Where a node process's lines get their term and role: set once the
/// node runs (lines before say `-`).
#[derive(Clone)]
pub struct NodeContext {
    id: NodeId,
    state: Arc<OnceLock<NodeState>>,
}

impl NodeContext {
    /// The context of node `id`, its state not known yet.
    #[must_use]
    pub fn new(id: NodeId) -> Self {
        Self {
            id,
            state: Arc::default(),
        }
    }

    /// From now on, lines read the node's term and role from `state`.
    pub fn set(&self, state: NodeState) {
        let _ = self.state.set(state);
    }

    fn now(&self) -> (NodeId, Option<(Term, Role)>) {
        (self.id, self.state.get().map(|state| state()))
    }
}

/// Installs the logger of a node process: `format`, to standard error
/// (what service managers collect), filtered by `RUST_LOG` if set and by
/// `default_filter` otherwise, every line led by `context`'s node, term and
/// role. Call once.
pub fn init_node_logging(
    format: LogFormat,
    default_filter: &str,
    context: NodeContext,
) -> Result<(), LoggingError> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only on a terminal: a log file or a service manager's
        // journal gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .log_internal_errors(false)
        .event_format(NodeFormat {
            json: format == LogFormat::Json,
            context,
        })
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| LoggingError::AlreadySet(e.to_string()))
}

/// A node process's line: time, level, node, term, role, message, fields.
struct NodeFormat {
    json: bool,
    context: NodeContext,
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
        let (id, state) = self.context.now();
        let metadata = event.metadata();
        if self.json {
            let mut line = Map::new();
            let ts = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            line.insert("ts".into(), ts.into());
            line.insert("level".into(), metadata.level().as_str().into());
            line.insert("node".into(), id.0.into());
            if let Some((term, role)) = state {
                line.insert("term".into(), term.0.into());
                line.insert("role".into(), role.to_string().into());
            }
            line.insert("target".into(), metadata.target().into());
            let taken = line.keys().cloned().collect();
            event.record(&mut JsonFields {
                line: &mut line,
                taken,
            });
            return writeln!(writer, "{}", Value::Object(line));
        }
        let _ = ctx;
        tracing_subscriber::fmt::time::SystemTime.format_time(&mut writer)?;
        let (term, role) = state.map_or_else(
            || ("-".to_owned(), "-".to_owned()),
            |(term, role)| (term.to_string(), role.to_string()),
        );
        write!(writer, " {:>5} {id} {term} {role}: ", metadata.level())?;
        let mut fields = TextFields {
            writer: writer.by_ref(),
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writeln!(writer)
    }
}

/// An event's fields as text: the message, then `name=value` for each other
/// field but the typed facts ([`JSON_FIELDS`]), whose words the message
/// already gives.
struct TextFields<'a> {
    writer: Writer<'a>,
    result: fmt::Result,
}

impl Visit for TextFields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() || JSON_FIELDS.contains(&field.name()) {
            return;
        }
        self.result = if field.name() == "message" {
            write!(self.writer, "{value:?}")
        } else {
            write!(self.writer, " {}={value:?}", field.name())
        };
    }
}

/// An event's fields as JSON values. A field named like a key the line
/// has already (its `term`, a second `message`) is written as
/// `event_<name>` rather than over it: the line's own keys always say what
/// the module docs promise.
struct JsonFields<'a> {
    line: &'a mut Map<String, Value>,
    /// Keys written so far.
    taken: BTreeSet<String>,
}

impl JsonFields<'_> {
    fn insert(&mut self, field: &Field, value: Value) {
        let name = field.name();
        let key = if self.taken.contains(name) {
            format!("event_{name}")
        } else {
            name.to_owned()
        };
        self.taken.insert(key.clone());
        self.line.insert(key, value);
    }
}

impl Visit for JsonFields<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        // A typed fact is JSON text: embedded as JSON, so a reader
        // deserializes it whole (crate::log_lines).
        let value = if JSON_FIELDS.contains(&field.name()) {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        } else {
            Value::String(text)
        };
        self.insert(field, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event field named like one of the line's own keys is kept beside
    /// it, never over it: the line's `term` is the node's, its `message`
    /// the sentence.
    #[test]
    fn a_json_line_keeps_its_own_term_and_message_whatever_the_event_fields_are_named() {
        let log = tempfile::NamedTempFile::new().expect("a temporary log file");
        let writer = Arc::new(log.reopen().expect("the log file, reopened"));
        let context = NodeContext::new(NodeId(3));
        context.set(Arc::new(|| (Term(5), Role::Candidate)));
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .event_format(NodeFormat {
                json: true,
                context,
            })
            .with_writer(writer)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(event = "timeout", term = 4_u64, "election timeout in t4");
        });
        let text = std::fs::read_to_string(log.path()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["node"], 3, "{line}");
        assert_eq!(line["term"], 5, "{line}");
        assert_eq!(line["role"], "candidate", "{line}");
        assert_eq!(line["event_term"], 4, "{line}");
        assert_eq!(line["message"], "election timeout in t4", "{line}");
    }
}
