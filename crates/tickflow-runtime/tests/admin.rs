//! The admin server, started for real on port 0 and queried over HTTP.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tickflow_runtime::CancellationToken;
use tickflow_runtime::admin::{AdminError, AdminServer, Health, OPENMETRICS_CONTENT_TYPE};
use tokio::task::JoinHandle;

struct TestAdmin {
    base: String,
    shutdown: CancellationToken,
    server: JoinHandle<Result<(), AdminError>>,
}

async fn spawn_admin(registry: Registry, health: Health) -> TestAdmin {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = AdminServer::bind(addr, Arc::new(registry), health)
        .await
        .unwrap();
    let local = server.local_addr();
    assert_eq!(local.ip(), addr.ip());
    assert_ne!(local.port(), 0, "the real port is reported");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(server.serve(shutdown.clone()));
    TestAdmin {
        base: format!("http://{local}"),
        shutdown,
        server,
    }
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, Option<String>, String) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn healthz_readyz_and_metrics_over_http() {
    let mut registry = Registry::default();
    let received = Counter::<u64>::default();
    registry.register(
        "ticks_received",
        "Ticks received from the venue",
        received.clone(),
    );
    received.inc_by(3);
    let health = Health::new();
    let producer = health.register("pulsar producer");

    let admin = spawn_admin(registry, health.clone()).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", admin.base);

    let (status, _, body) = get(&client, &url("/healthz")).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    // Registered checks start not ready.
    let (status, _, body) = get(&client, &url("/readyz")).await;
    assert_eq!(status, 503);
    assert_eq!(body, "not ready\npulsar producer: starting\n");

    producer.set_not_ready("connecting to pulsar://broker:6650");
    let late = health.register("database");
    late.set_ready();
    let (status, content_type, body) = get(&client, &url("/readyz")).await;
    assert_eq!(status, 503);
    assert!(content_type.unwrap().starts_with("text/plain"));
    assert_eq!(
        body,
        "not ready\npulsar producer: connecting to pulsar://broker:6650\n"
    );

    producer.set_ready();
    let (status, _, body) = get(&client, &url("/readyz")).await;
    assert_eq!(status, 200);
    assert_eq!(body, "ready\npulsar producer: ready\ndatabase: ready\n");

    let (status, content_type, body) = get(&client, &url("/metrics")).await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some(OPENMETRICS_CONTENT_TYPE));
    assert!(
        body.contains("# HELP ticks_received Ticks received from the venue.\n"),
        "{body}"
    );
    assert!(body.contains("# TYPE ticks_received counter\n"), "{body}");
    assert!(body.contains("\nticks_received_total 3\n"), "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");

    // Handles keep working after the registry was frozen into the server.
    received.inc();
    let (_, _, body) = get(&client, &url("/metrics")).await;
    assert!(body.contains("\nticks_received_total 4\n"), "{body}");

    let (status, _, _) = get(&client, &url("/nope")).await;
    assert_eq!(status, 404);

    drop(client);
    admin.shutdown.cancel();
    let served = tokio::time::timeout(Duration::from_secs(10), admin.server)
        .await
        .expect("the server stops once cancelled")
        .unwrap();
    assert!(served.is_ok(), "{served:?}");
}

#[tokio::test]
async fn no_checks_is_ready() {
    let admin = spawn_admin(Registry::default(), Health::new()).await;
    let client = reqwest::Client::new();
    let (status, _, body) = get(&client, &format!("{}/readyz", admin.base)).await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    let (status, _, body) = get(&client, &format!("{}/metrics", admin.base)).await;
    assert_eq!((status, body.as_str()), (200, "# EOF\n"));
    admin.shutdown.cancel();
}

#[tokio::test]
async fn binding_a_taken_port_names_the_address() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let err = AdminServer::bind(addr, Arc::new(Registry::default()), Health::new())
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::Bind { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("cannot bind the admin server to {addr}: ")),
        "{err}"
    );
}
