//! Shared helpers: a control plane on port 0 with a database of its own, and clients.
#![allow(dead_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::sync::Arc;
use std::time::Duration;

use control_plane::proto::AddSymbolRequest;
use control_plane::proto::assignment_service_client::AssignmentServiceClient;
use control_plane::proto::symbol_service_client::SymbolServiceClient;
use control_plane::service::{Assignments, State};
use control_plane::store::Store;
use tickflow_pulsar::admin::AdminClient;
use tickflow_runtime::CancellationToken;
use tickflow_runtime::config::SecretString;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

pub const TOKEN: &str = "test-token-1234";

pub fn pulsar_config() -> tickflow_pulsar::PulsarConfig {
    tickflow_pulsar::PulsarConfig {
        url: env("PULSAR_URL", "pulsar://127.0.0.1:6650"),
        admin_url: env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080"),
        ..Default::default()
    }
}

pub fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

pub struct Plane {
    pub url: String,
    pub db_url: String,
    pub shutdown: CancellationToken,
    pub store: Store,
}

impl Drop for Plane {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A control plane on port 0 with a database of its own; `admin_url` may point nowhere.
/// Follow mode has its default settings but its loop does not run.
pub async fn plane(admin_url: &str) -> Plane {
    plane_with(
        admin_url,
        control_plane::follow::FollowConfig::default(),
        false,
    )
    .await
}

/// [`plane`] with follow mode set to `follow`, its loop running when `run_follow`.
pub async fn plane_with(
    admin_url: &str,
    follow: control_plane::follow::FollowConfig,
    run_follow: bool,
) -> Plane {
    let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let base = env(
        "DATABASE_URL",
        "postgres://tickflow@127.0.0.1:55432/tickflow",
    );
    let admin_db = sqlx::PgPool::connect(&base)
        .await
        .expect("is PostgreSQL running?");
    sqlx::query(&format!("CREATE DATABASE tickflow_test_cp{id}"))
        .execute(&admin_db)
        .await
        .unwrap();
    let (server, _) = base.rsplit_once('/').unwrap();
    let db_url = format!("{server}/tickflow_test_cp{id}");
    let store = Store::connect(&db_url, Duration::from_secs(5))
        .await
        .unwrap();
    // What the control plane does at start (and its reconcile loop keeps doing).
    if let Ok(admin) = AdminClient::new(admin_url) {
        let _ = admin.provision_layout().await;
    }
    let live = tickflow_control::status::LiveBoard::default();
    let state = State {
        store: store.clone(),
        admin: AdminClient::new(admin_url).unwrap(),
        assignments: Arc::new(Assignments::default()),
        jobs: match tickflow_pulsar::PulsarClient::connect(&pulsar_config(), "control-plane-test")
            .await
        {
            Ok(client) => control_plane::backfill::JobQueue::new(&client).await.ok(),
            Err(_) => None,
        },
        live: live.clone(),
        follow: Arc::new(control_plane::follow::Follow::new(follow)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    if let Ok(client) = tickflow_pulsar::PulsarClient::connect(&pulsar_config(), "cp-status").await
    {
        tokio::spawn(control_plane::server::follow_status(
            client,
            live,
            shutdown.clone(),
        ));
    }
    if run_follow {
        tokio::spawn(control_plane::follow::run(
            state.clone(),
            control_plane::follow::FollowMetrics::default(),
            shutdown.clone(),
        ));
    }
    tokio::spawn(control_plane::server::serve(
        state,
        SecretString::new(TOKEN.to_owned()),
        listener,
        shutdown.clone(),
    ));
    Plane {
        url: format!("http://{addr}"),
        db_url,
        shutdown,
        store,
    }
}

/// Adds `authorization: Bearer <token>` to every call.
pub type Injector =
    Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>;
pub type Authed = tonic::service::interceptor::InterceptedService<Channel, Injector>;

pub fn bearer(token: &str) -> Injector {
    let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    Box::new(move |mut r: tonic::Request<()>| {
        r.metadata_mut().insert("authorization", value.clone());
        Ok(r)
    })
}

pub async fn channel(url: &str) -> Channel {
    for _ in 0..50 {
        if let Ok(c) = Channel::from_shared(url.to_owned())
            .unwrap()
            .connect()
            .await
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("control plane not reachable at {url}");
}

pub async fn symbols(url: &str, token: &str) -> SymbolServiceClient<Authed> {
    SymbolServiceClient::with_interceptor(channel(url).await, bearer(token))
}

pub async fn assignments(url: &str) -> AssignmentServiceClient<Authed> {
    AssignmentServiceClient::with_interceptor(channel(url).await, bearer(TOKEN))
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}/USD",
        &uuid::Uuid::new_v4().simple().to_string()[..8].to_uppercase()
    )
}

pub fn add(symbol: &str, sources: &[&str]) -> AddSymbolRequest {
    AddSymbolRequest {
        symbol: symbol.to_owned(),
        sources: sources.iter().map(|s| (*s).to_owned()).collect(),
        history_start: String::new(),
    }
}
