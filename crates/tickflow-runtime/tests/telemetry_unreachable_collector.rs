//! `telemetry::init` with an OTLP endpoint where nothing listens: init succeeds, logs flow,
//! export failures stay harmless, and a second init is refused without panicking.
//!
//! One test per file: the global subscriber can be installed once per process.

mod common;

use common::Capture;
use std::time::{Duration, Instant};

use tickflow_runtime::telemetry::{self, TelemetryConfig, TelemetryError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_does_not_break_logging() {
    // A port with nothing listening: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = TelemetryConfig {
        otlp_endpoint: Some(format!("http://127.0.0.1:{port}")),
        ..TelemetryConfig::default()
    };
    let logs = Capture::default();
    let writer = logs.clone();
    let guard =
        telemetry::init_with_writer("tickflow-test", &config, move || writer.clone(), false)
            .expect("init succeeds although the collector is down");
    assert!(guard.is_exporting());

    for n in 0..50 {
        let span = tracing::info_span!("ingest", venue = "kraken", batch = n);
        let _entered = span.enter();
        tracing::info!(ticks = n, "batch published");
    }

    let second = telemetry::init("tickflow-test", &TelemetryConfig::default());
    assert!(
        matches!(second, Err(TelemetryError::AlreadyInitialized)),
        "{second:?}"
    );

    // Dropping the guard flushes: it tries the dead collector and gives up, without hanging
    // or panicking (the async `shutdown` is covered by the fake collector test).
    let started = Instant::now();
    drop(guard);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    tracing::info!("still logging after the exporter stopped");

    let text = logs.text();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let published: Vec<_> = lines
        .iter()
        .filter(|line| line["message"] == "batch published")
        .collect();
    assert_eq!(published.len(), 50, "{text}");
    assert_eq!(published[7]["ticks"], 7);
    assert_eq!(published[7]["span"]["name"], "ingest");
    assert_eq!(published[7]["span"]["venue"], "kraken");
    assert!(
        lines
            .iter()
            .any(|line| line["message"] == "still logging after the exporter stopped"),
        "{text}"
    );
    // The export was attempted, failed, and was merely logged.
    assert!(
        lines.iter().any(|line| line["level"] == "ERROR"
            && line["target"] == "opentelemetry_sdk"
            && line["name"] == "BatchSpanProcessor.ExportError"),
        "{text}"
    );
}
