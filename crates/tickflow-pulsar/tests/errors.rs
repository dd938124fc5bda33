//! Clear, single-line errors when the broker is not there or the URL is wrong.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and benchmark code: a failed setup should stop the run loudly"
)]

use std::time::Duration;

use tickflow_pulsar::{PulsarClient, PulsarConfig, PulsarError};

#[tokio::test]
async fn a_broker_that_is_down_gives_one_clear_line() {
    // A port nothing listens on: bind one, note it, free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = PulsarConfig {
        url: format!("pulsar://127.0.0.1:{port}"),
        connect_timeout_ms: 1_500,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let err = PulsarClient::connect(&cfg, "test").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "connect did not give up in time"
    );
    assert!(matches!(err, PulsarError::Unreachable { .. }));
    assert!(err.is_retryable());
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "{msg}");
    assert!(
        msg.starts_with(&format!(
            "cannot reach Pulsar at pulsar://127.0.0.1:{port} within 1s ("
        )),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
    assert!(
        msg.ends_with("check that the broker runs (`make infra`) and that the Pulsar URL is right"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_bad_url_says_what_is_expected() {
    for url in [
        "http://127.0.0.1:6650",
        "127.0.0.1:6650",
        "pulsar://",
        "pulsar://h:1/x",
    ] {
        let cfg = PulsarConfig {
            url: url.into(),
            ..Default::default()
        };
        let err = PulsarClient::connect(&cfg, "test").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid Pulsar URL {url:?}: expected pulsar://host:port or pulsar+ssl://host:port"
            )
        );
        assert!(!err.is_retryable());
    }
}

#[tokio::test]
async fn an_admin_api_that_is_down_gives_one_clear_line() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let admin =
        tickflow_pulsar::admin::AdminClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let err = admin.clusters().await.unwrap_err();
    assert!(err.is_retryable());
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "cannot reach the Pulsar admin API at http://127.0.0.1:{port}/admin/v2/clusters: "
        )),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "{msg}");
}
