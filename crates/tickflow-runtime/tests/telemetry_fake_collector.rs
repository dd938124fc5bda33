//! Spans reach a (fake, in-process) OTLP/gRPC collector with the `service.name` resource, and
//! the exporter's own gRPC stack is not exported.
//!
//! One test per file: the global subscriber can be installed once per process.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use tickflow_runtime::telemetry::{self, TelemetryConfig};
use tokio::sync::mpsc;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// Accepts every export and hands the request to the test.
struct FakeCollector {
    received: mpsc::Sender<ExportTraceServiceRequest>,
}

#[tonic::async_trait]
impl TraceService for FakeCollector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.received
            .send(request.into_inner())
            .await
            .map_err(|_| Status::unavailable("test is gone"))?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn string_attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_with_the_service_name() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (received_tx, mut received_rx) = mpsc::channel(64);
    let collector = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(FakeCollector {
                received: received_tx,
            }))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );

    let config = TelemetryConfig {
        otlp_endpoint: Some(format!("http://{addr}")),
        ..TelemetryConfig::default()
    };
    let guard =
        telemetry::init_with_writer("tickflow-collector-test", &config, std::io::sink, false)
            .unwrap();
    {
        let span = tracing::info_span!("publish batch", venue = "kraken");
        let _entered = span.enter();
        tracing::info!(ticks = 12, "published");
    }
    // Shutdown flushes the batch now instead of after the batch delay.
    tokio::time::timeout(Duration::from_secs(30), guard.shutdown())
        .await
        .expect("flush finishes")
        .expect("flush to a live collector succeeds");

    let request = tokio::time::timeout(Duration::from_secs(10), received_rx.recv())
        .await
        .expect("the collector got an export")
        .unwrap();
    let mut names = Vec::new();
    for resource_spans in &request.resource_spans {
        let resource = resource_spans.resource.as_ref().unwrap();
        assert_eq!(
            string_attr(&resource.attributes, "service.name"),
            Some("tickflow-collector-test")
        );
        for scope_spans in &resource_spans.scope_spans {
            for span in &scope_spans.spans {
                names.push(span.name.clone());
                if span.name == "publish batch" {
                    assert_eq!(string_attr(&span.attributes, "venue"), Some("kraken"));
                }
            }
        }
    }
    assert_eq!(
        names,
        ["publish batch"],
        "only our span, none of the exporter's own"
    );
    collector.abort();
}
