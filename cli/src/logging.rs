//! The one logging setup of every binary: the format, the filter, and where
//! lines go.
//!
//! The runtime logs every step of a node inside a `node` span whose fields
//! are the node's id, its current term and its role, kept current, so each
//! line can be traced to the node and the term it belongs to. The story
//! format leaves them out (its sentences name node and term); JSON writes
//! them under `span`. (tracing-subscriber's plain text formats append a
//! recorded field instead of replacing it, so a changing term would be
//! written as `term=1 term=2`: no such format is offered.)

use std::fmt;
use std::io::IsTerminal;
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, Uptime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Seconds since start and the message, for a person reading the story:
    /// the narration names the node and term in its words.
    #[default]
    Story,
    /// One JSON object per line: the wall-clock time (RFC 3339, so lines of
    /// several processes merge), the node's span (node, term, role) under
    /// `span`, and the message and fields under `fields`. For tools.
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
        LogFormat::Story => builder.event_format(Story(Uptime::default())).try_init(),
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
