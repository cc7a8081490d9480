//! Logging that can never take a thread down. The log goes to standard output, which an operator may have
//! sent to a file on a disk that fills up. tracing's formatter reports a failed write with `eprintln!`, and
//! `eprintln!` panics when standard error cannot be written either: the first error logged on a full disk
//! would kill whichever thread logged it (the writer, the indexer, a request's task). Here a line that cannot
//! be written is dropped and counted instead.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Log lines dropped because standard output refused them, since the process started.
pub fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// An error with its causes, for a log line or a stored answer: a client's own message alone ("error
/// sending request") says too little.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Standard output that never fails: what it cannot write it counts and forgets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lossy;

impl Write for Lossy {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if io::stdout().lock().write_all(buf).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stdout().lock().flush();
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lossy {
    type Writer = Lossy;

    fn make_writer(&'a self) -> Self::Writer {
        Lossy
    }
}

/// How log lines are written: `log_format` in the configuration, `HOOKPLANE_LOG_FORMAT` in the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Installs the process's logger: `filter` (or `RUST_LOG`), to standard output through [`Lossy`], with the
/// formatter's own error reports turned off.
pub fn init(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(Lossy)
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(io::stdout().is_terminal()).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init(),
    };
}
