//! Logs and traces: one [`init`] call at the start of `main`.
//!
//! - Logs go to stdout as JSON lines by default (one object per event, with the current span and
//!   its parents), or in tracing-subscriber's human `pretty` or `compact` format.
//! - The filter uses `RUST_LOG` syntax (`info`, `info,tickflow_ingest=debug`) and comes from
//!   [`TelemetryConfig::log_filter`]; [`TelemetryConfig::apply_standard_env`] lets `RUST_LOG`
//!   override it.
//! - When [`TelemetryConfig::otlp_endpoint`] is set (typically from
//!   `OTEL_EXPORTER_OTLP_ENDPOINT`), spans are also exported over OTLP/gRPC to a collector, in
//!   batches, with the `service.name` resource set. An unreachable collector costs dropped spans
//!   and debug-level export errors, never a crash or a stalled service.
//!
//! The returned [`TelemetryGuard`] flushes pending spans when it is shut down or dropped: keep it
//! alive in `main` until the service has stopped.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use serde::{Deserialize, Serialize};
use tracing::Subscriber;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, Registry};

/// Targets whose spans are never exported: the exporter's own gRPC stack. Exporting the spans
/// of an export would feed the exporter forever.
const NOT_EXPORTED: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
];

/// Set once [`init`] has installed the global subscriber.
static INITIALIZED: AtomicBool = AtomicBool::new(false);

/// How log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line: what log shippers want. The default.
    #[default]
    Json,
    /// Multi-line, human-readable output for a developer's terminal.
    Pretty,
    /// One human-readable line per event.
    Compact,
}

/// Telemetry settings, usually the `telemetry` section of a service's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Log line format. Default: `json`.
    pub log_format: LogFormat,
    /// Which events and spans to keep, in `RUST_LOG` syntax. Default: `info`.
    pub log_filter: String,
    /// OTLP/gRPC collector endpoint, e.g. `http://otel-collector:4317`. `None` (the default)
    /// exports no traces.
    pub otlp_endpoint: Option<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Json,
            log_filter: "info".to_owned(),
            otlp_endpoint: None,
        }
    }
}

impl TelemetryConfig {
    /// Applies the standard variables, read through `lookup` (in `main`:
    /// `|name| std::env::var(name).ok()`): a non-empty `RUST_LOG` replaces
    /// [`log_filter`](Self::log_filter) and a non-empty `OTEL_EXPORTER_OTLP_ENDPOINT` replaces
    /// [`otlp_endpoint`](Self::otlp_endpoint).
    pub fn apply_standard_env(&mut self, lookup: impl Fn(&str) -> Option<String>) {
        if let Some(filter) = lookup("RUST_LOG").filter(|v| !v.trim().is_empty()) {
            self.log_filter = filter;
        }
        if let Some(endpoint) =
            lookup("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|v| !v.trim().is_empty())
        {
            self.otlp_endpoint = Some(endpoint);
        }
    }
}

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter does not parse.
    #[error(
        "invalid log filter {filter:?}: {reason}; use RUST_LOG syntax such as `info` or \
         `info,tickflow_ingest=debug`"
    )]
    InvalidFilter {
        /// The filter as given.
        filter: String,
        /// What the parser said.
        reason: String,
    },
    /// A global subscriber is already installed, by an earlier `init` or by someone else.
    #[error(
        "telemetry is already initialized in this process; call telemetry::init once, at the \
         start of main"
    )]
    AlreadyInitialized,
    /// OTLP export was asked for outside a tokio runtime.
    #[error(
        "OTLP export to {endpoint} needs a tokio runtime: call telemetry::init inside the runtime \
         (e.g. in an async main under #[tokio::main])"
    )]
    NoRuntime {
        /// The configured endpoint.
        endpoint: String,
    },
    /// The OTLP endpoint is not a plain-text gRPC URL.
    #[error(
        "invalid OTLP endpoint {endpoint:?}: {reason}; expected http://host:port, e.g. \
         http://otel-collector:4317"
    )]
    InvalidEndpoint {
        /// The configured endpoint.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Flushing spans at shutdown failed (they are lost; the service itself is unaffected).
    #[error("flushing traces to the OTLP collector at shutdown failed: {0}")]
    Flush(String),
}

/// Keeps the trace exporter alive; flushes and stops it on [`shutdown`](Self::shutdown) or drop.
#[derive(Debug)]
#[must_use = "dropping the guard stops trace export; keep it alive until main returns"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether spans are being exported over OTLP.
    pub fn is_exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes pending spans and stops the exporter, waiting on a blocking thread so the
    /// runtime's own threads (which carry the exporter's network I/O) keep running. Waits at most
    /// five seconds.
    pub async fn shutdown(mut self) -> Result<(), TelemetryError> {
        let Some(provider) = self.provider.take() else {
            return Ok(());
        };
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(TelemetryError::Flush(error.to_string())),
            Err(join) => Err(TelemetryError::Flush(join.to_string())),
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            shutdown_blocking(provider);
        }
    }
}

/// Shuts the provider down from synchronous code without starving the exporter's I/O.
fn shutdown_blocking(provider: SdkTracerProvider) {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let result = match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| provider.shutdown())
        }
        Ok(_) => {
            // A current-thread runtime: blocking its one thread would stall the export we wait
            // for. Flush on a thread of its own, best effort.
            let spawned = std::thread::Builder::new()
                .name("otel-shutdown".to_owned())
                .spawn(move || provider.shutdown());
            if let Err(error) = spawned {
                tracing::warn!(%error, "could not start a thread to flush traces");
            }
            return;
        }
        Err(_) => provider.shutdown(),
    };
    if let Err(error) = result {
        tracing::warn!(%error, "flushing traces to the OTLP collector at shutdown failed");
    }
}

/// Installs the global subscriber: logs to stdout and, if configured, OTLP trace export.
///
/// Call it once, early in `main`, inside the tokio runtime when OTLP export is configured. A
/// second call returns [`TelemetryError::AlreadyInitialized`] and changes nothing.
pub fn init(
    service_name: &str,
    config: &TelemetryConfig,
) -> Result<TelemetryGuard, TelemetryError> {
    init_with_writer(
        service_name,
        config,
        std::io::stdout,
        std::io::stdout().is_terminal(),
    )
}

/// [`init`] with logs going to `writer` instead of stdout, with or without ANSI colours (used
/// by the human formats only). Tests use it to capture log lines.
pub fn init_with_writer<W>(
    service_name: &str,
    config: &TelemetryConfig,
    writer: W,
    ansi: bool,
) -> Result<TelemetryGuard, TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    if INITIALIZED.load(Ordering::SeqCst) {
        return Err(TelemetryError::AlreadyInitialized);
    }
    // Validate everything before starting exporter threads.
    let log_filter = parse_filter(&config.log_filter)?;
    let provider = match &config.otlp_endpoint {
        Some(endpoint) => Some(otlp_provider(service_name, endpoint)?),
        None => None,
    };
    let tracer = provider
        .as_ref()
        .map(|provider| provider.tracer(service_name.to_owned()));
    let subscriber = build_subscriber(config, log_filter, writer, ansi, tracer)?;

    if subscriber.try_init().is_err() {
        if let Some(provider) = provider {
            shutdown_blocking(provider);
        }
        return Err(TelemetryError::AlreadyInitialized);
    }
    INITIALIZED.store(true, Ordering::SeqCst);
    if let Some(provider) = &provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    }
    tracing::debug!(
        service = service_name,
        format = ?config.log_format,
        filter = %config.log_filter,
        otlp_endpoint = config.otlp_endpoint.as_deref().unwrap_or("none"),
        "telemetry initialized"
    );
    Ok(TelemetryGuard { provider })
}

fn parse_filter(filter: &str) -> Result<EnvFilter, TelemetryError> {
    EnvFilter::builder()
        .parse(filter)
        .map_err(|error| TelemetryError::InvalidFilter {
            filter: filter.to_owned(),
            reason: error.to_string(),
        })
}

/// The trace filter: the log filter, minus the exporter's own stack.
fn trace_filter(filter: &str) -> Result<EnvFilter, TelemetryError> {
    let mut trace_filter = parse_filter(filter)?;
    for target in NOT_EXPORTED {
        let directive = format!("{target}=off").parse().map_err(
            |error: tracing_subscriber::filter::ParseError| TelemetryError::InvalidFilter {
                filter: format!("{target}=off"),
                reason: error.to_string(),
            },
        )?;
        trace_filter = trace_filter.add_directive(directive);
    }
    Ok(trace_filter)
}

fn otlp_provider(service_name: &str, endpoint: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let invalid = |reason: &str| TelemetryError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return Err(invalid(
            "only plain-text http:// endpoints are supported (this build has no TLS for OTLP); \
             run the collector as a sidecar or on the cluster network",
        ));
    };
    if rest.trim_end_matches('/').is_empty() {
        return Err(invalid("the host is missing"));
    }
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(TelemetryError::NoRuntime {
            endpoint: endpoint.to_owned(),
        });
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|error| invalid(&error.to_string()))?;
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The subscriber [`init`] installs, without installing it (tests scope it with
/// `tracing::subscriber::with_default`).
fn build_subscriber<W>(
    config: &TelemetryConfig,
    log_filter: EnvFilter,
    writer: W,
    ansi: bool,
    tracer: Option<SdkTracer>,
) -> Result<impl Subscriber + for<'s> LookupSpan<'s> + Send + Sync + 'static, TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt_layer = fmt_layer(config.log_format, writer, ansi).with_filter(log_filter);
    let otel_layer = match tracer {
        Some(tracer) => Some(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(trace_filter(&config.log_filter)?),
        ),
        None => None,
    };
    Ok(tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer))
}

fn fmt_layer<W>(
    format: LogFormat,
    writer: W,
    ansi: bool,
) -> Box<dyn Layer<Registry> + Send + Sync + 'static>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
        LogFormat::Pretty => layer.pretty().with_ansi(ansi).boxed(),
        LogFormat::Compact => layer.compact().with_ansi(ansi).boxed(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects everything written, for assertions.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Capture {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Capture {
        type Writer = Capture;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    fn capture(config: &TelemetryConfig, emit: impl FnOnce()) -> String {
        let out = Capture::default();
        let filter = parse_filter(&config.log_filter).unwrap();
        let subscriber = build_subscriber(config, filter, out.clone(), false, None).unwrap();
        tracing::subscriber::with_default(subscriber, emit);
        out.text()
    }

    #[test]
    fn json_lines_carry_fields_and_spans() {
        let text = capture(&TelemetryConfig::default(), || {
            let span = tracing::info_span!("task", task = "kraken ingest");
            let _entered = span.enter();
            tracing::info!(venue = "kraken", count = 3, "connected");
        });
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "connected");
        assert_eq!(line["venue"], "kraken");
        assert_eq!(line["count"], 3);
        assert_eq!(line["span"]["name"], "task");
        assert_eq!(line["span"]["task"], "kraken ingest");
    }

    #[test]
    fn filter_drops_events_below_the_level() {
        let text = capture(&TelemetryConfig::default(), || {
            tracing::debug!("hidden");
            tracing::warn!("shown");
        });
        assert!(!text.contains("hidden"), "{text}");
        assert!(text.contains("shown"), "{text}");

        let config = TelemetryConfig {
            log_filter: "warn,tickflow_runtime=debug".to_owned(),
            ..TelemetryConfig::default()
        };
        let text = capture(&config, || tracing::debug!("per-target debug"));
        assert!(text.contains("per-target debug"), "{text}");
    }

    #[test]
    fn human_formats_are_not_json() {
        for format in [LogFormat::Pretty, LogFormat::Compact] {
            let config = TelemetryConfig {
                log_format: format,
                ..TelemetryConfig::default()
            };
            let text = capture(&config, || tracing::info!(venue = "oanda", "hello human"));
            assert!(text.contains("hello human"), "{format:?}: {text}");
            assert!(serde_json::from_str::<serde_json::Value>(&text).is_err());
            assert!(
                !text.contains('\u{1b}'),
                "no ANSI when asked for none: {text}"
            );
        }
    }

    #[test]
    fn invalid_filter_is_rejected_with_the_filter_named() {
        let config = TelemetryConfig {
            log_filter: "info,tickflow=notalevel".to_owned(),
            ..TelemetryConfig::default()
        };
        let err = init("tickflow-test", &config).unwrap_err();
        assert!(matches!(err, TelemetryError::InvalidFilter { .. }));
        assert!(err.to_string().contains("tickflow=notalevel"), "{err}");
    }

    #[test]
    fn endpoints_must_be_plain_http() {
        for endpoint in ["https://collector:4317", "collector:4317", "http://"] {
            let err = otlp_provider("tickflow-test", endpoint).unwrap_err();
            assert!(
                matches!(err, TelemetryError::InvalidEndpoint { .. }),
                "{endpoint}: {err}"
            );
        }
    }

    #[test]
    fn otlp_needs_a_runtime() {
        let err = otlp_provider("tickflow-test", "http://127.0.0.1:4317").unwrap_err();
        assert!(matches!(err, TelemetryError::NoRuntime { .. }), "{err}");
    }

    #[test]
    fn standard_env_overrides_the_config() {
        let mut config = TelemetryConfig::default();
        config.apply_standard_env(|name| match name {
            "RUST_LOG" => Some("debug".to_owned()),
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4317".to_owned()),
            _ => None,
        });
        assert_eq!(config.log_filter, "debug");
        assert_eq!(
            config.otlp_endpoint.as_deref(),
            Some("http://collector:4317")
        );

        let mut config = TelemetryConfig::default();
        config.apply_standard_env(|_| Some(" ".to_owned()));
        assert_eq!(config, TelemetryConfig::default());
    }
}
