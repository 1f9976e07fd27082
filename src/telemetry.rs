//! Tracing set-up: structured logs, once per process.

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt};

use crate::config::{LogFormat, TelemetrySettings};

static INIT: OnceLock<()> = OnceLock::new();

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSink {
    /// Standard output.
    Stdout,
    /// Nowhere: tests stay quiet unless `TEST_LOG` is set.
    Discard,
}

/// Installs the global subscriber. Later calls do nothing, so tests may call
/// it from every test.
pub fn init(settings: &TelemetrySettings, sink: LogSink) {
    INIT.get_or_init(|| {
        let filter = EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new(&settings.filter))
            .unwrap_or_else(|_| EnvFilter::new("info"));
        let registry = Registry::default().with(filter);
        let result = match (settings.format, sink) {
            (_, LogSink::Discard) => registry.with(fmt::layer().with_writer(std::io::sink)).try_init(),
            (LogFormat::Json, LogSink::Stdout) => registry
                .with(fmt::layer().json().flatten_event(true).with_current_span(true))
                .try_init(),
            (LogFormat::Pretty, LogSink::Stdout) => registry.with(fmt::layer()).try_init(),
        };
        // Another subscriber may already be installed (e.g. by a test
        // harness); keeping it is the right thing to do.
        drop(result);
    });
}
