//! The whole of tickflow as separate processes, for the end-to-end test and benchmark: the
//! `control-plane`, `timescale-sink`, `dukascopy-backfill`, `kraken-ingester` (any number of
//! replicas) and `oanda-ingester` binaries of this workspace, started the way `make up` starts
//! them, against the real Pulsar and PostgreSQL of `make infra` and venues the caller provides
//! (the simulators of `venue-sim`). `tickctl` drives it, as a user would.
//!
//! Each [`Stack`] has a database of its own (`tickflow_test_e2e…`, dropped by the next `make
//! test`), a sink subscription and a backfill subscription of its own (created at the end of
//! their topics, so nothing another run left behind is read), and only sees the topics its
//! [`StackConfig::sink_pattern`] names.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a failed setup should stop the run loudly"
)]

use std::process::Output;
use std::time::Duration;

use tickflow_pulsar::{
    ConsumerSpec, InitialPosition, PulsarClient, SubscriptionType, TopicName, TopicSelection,
};
use tickflow_testkit::process::{ServiceProcess, free_port, workspace_binary};

/// The API token every process of a stack shares.
pub const TOKEN: &str = "e2e-token-0123456789";

/// Where the venues are and which topics the sink stores.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Kraken WebSocket v2 URL.
    pub kraken_url: String,
    /// OANDA stream base URL.
    pub oanda_url: String,
    /// Dukascopy base URL.
    pub dukascopy_url: String,
    /// The sink's topic pattern.
    pub sink_pattern: String,
    /// Topics the sink's subscription is created on at their end before it starts (shared
    /// topics other runs wrote to).
    pub sink_skip_backlog: Vec<TopicName>,
    /// Kraken replicas to start with.
    pub kraken_replicas: usize,
    /// `RUST_LOG` of the services (`warn` unless set).
    pub log: String,
}

/// Five services as processes, and the database they write.
#[derive(Debug)]
pub struct Stack {
    /// The stack's own database.
    pub db_url: String,
    /// A pool on it.
    pub db: sqlx::PgPool,
    /// `http://127.0.0.1:PORT` of the control plane's gRPC API.
    pub grpc: String,
    /// The control plane.
    pub control: ServiceProcess,
    /// The sink.
    pub sink: ServiceProcess,
    /// The backfill worker.
    pub backfill: ServiceProcess,
    /// The OANDA ingester.
    pub oanda: ServiceProcess,
    /// Kraken ingester replicas, oldest first.
    pub kraken: Vec<ServiceProcess>,
    cfg: StackConfig,
    control_admin: String,
}

/// `PULSAR_URL` and `PULSAR_ADMIN_URL` (the defaults of `make infra`).
pub fn pulsar_env() -> (String, String) {
    let url = std::env::var("PULSAR_URL").unwrap_or_else(|_| "pulsar://127.0.0.1:6650".into());
    let admin =
        std::env::var("PULSAR_ADMIN_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    (url, admin)
}

/// A short random id for names of this run.
pub fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..6].to_owned()
}

/// Creates `subscription` on `topic` at its end, so a consumer joining it skips the backlog.
pub async fn subscribe_at_end(topic: TopicName, subscription: &str, sub_type: SubscriptionType) {
    let (url, admin_url) = pulsar_env();
    let config = tickflow_pulsar::PulsarConfig {
        url,
        admin_url,
        ..Default::default()
    };
    let client = PulsarClient::connect(&config, "e2e-setup").await.unwrap();
    let consumer = client
        .tick_consumer(ConsumerSpec {
            topics: TopicSelection::Topics(vec![topic]),
            subscription: subscription.to_owned(),
            sub_type,
            initial_position: InitialPosition::Latest,
            consumer_name: None,
        })
        .await
        .unwrap();
    consumer.close().await.unwrap();
}

async fn database() -> String {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://tickflow@127.0.0.1:55432/tickflow".to_owned());
    let admin = sqlx::PgPool::connect(&base)
        .await
        .expect("is PostgreSQL running? (make infra)");
    let name = format!("tickflow_test_e2e{}", run_id());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (server, _) = base.rsplit_once('/').unwrap();
    format!("{server}/{name}")
}

fn bin(name: &str) -> String {
    workspace_binary(name).to_str().unwrap().to_owned()
}

impl Stack {
    /// Starts the five services (the control plane first, the ingesters last), each ready.
    pub async fn start(cfg: StackConfig) -> Stack {
        let db_url = database().await;
        let (pulsar_url, pulsar_admin) = pulsar_env();
        let run = run_id();
        let sink_subscription = format!("e2e-sink-{run}");
        for topic in &cfg.sink_skip_backlog {
            subscribe_at_end(
                topic.clone(),
                &sink_subscription,
                SubscriptionType::KeyShared,
            )
            .await;
        }
        let jobs_subscription = format!("e2e-backfill-{run}");
        subscribe_at_end(
            TopicName::control("backfill-jobs").unwrap(),
            &jobs_subscription,
            SubscriptionType::Shared,
        )
        .await;

        let grpc_port = free_port();
        let grpc = format!("http://127.0.0.1:{grpc_port}");
        let common = |extra: &[(&'static str, String)]| {
            let mut env = vec![
                ("PULSAR_URL", pulsar_url.clone()),
                ("PULSAR_ADMIN_URL", pulsar_admin.clone()),
                ("TICKFLOW_API_TOKEN", TOKEN.to_owned()),
                ("RUST_LOG", cfg.log.clone()),
            ];
            env.extend_from_slice(extra);
            env
        };

        let port = free_port();
        let control_admin = format!("http://127.0.0.1:{port}");
        let control = ServiceProcess::start(
            &bin("control-plane"),
            &common(&[
                ("DATABASE_URL", db_url.clone()),
                ("CONTROL_PLANE_LISTEN", format!("127.0.0.1:{grpc_port}")),
                ("CONTROL_PLANE_ADMIN_LISTEN", format!("127.0.0.1:{port}")),
                // Follow mode would queue recent hours at its own pace; the test adds history
                // explicitly.
                ("CONTROL_PLANE_FOLLOW_INTERVAL_SECS", "0".into()),
            ]),
            port,
        )
        .await;

        let port = free_port();
        let sink = ServiceProcess::start(
            &bin("timescale-sink"),
            &common(&[
                ("DATABASE_URL", db_url.clone()),
                ("TIMESCALE_SINK_ADMIN_LISTEN", format!("127.0.0.1:{port}")),
                ("TIMESCALE_SINK_SUBSCRIPTION__NAME", sink_subscription),
                (
                    "TIMESCALE_SINK_SUBSCRIPTION__PATTERN",
                    cfg.sink_pattern.clone(),
                ),
                ("TIMESCALE_SINK_SUBSCRIPTION__REFRESH_MS", "500".into()),
            ]),
            port,
        )
        .await;

        let port = free_port();
        let backfill = ServiceProcess::start(
            &bin("dukascopy-backfill"),
            &common(&[
                ("DUKASCOPY_URL", cfg.dukascopy_url.clone()),
                (
                    "DUKASCOPY_BACKFILL_ADMIN_LISTEN",
                    format!("127.0.0.1:{port}"),
                ),
                ("DUKASCOPY_BACKFILL_WORKER__SUBSCRIPTION", jobs_subscription),
            ]),
            port,
        )
        .await;

        let port = free_port();
        let oanda = ServiceProcess::start(
            &bin("oanda-ingester"),
            &common(&[
                ("CONTROL_PLANE_URL", grpc.clone()),
                ("OANDA_STREAM_URL", cfg.oanda_url.clone()),
                ("OANDA_API_TOKEN", "e2e-oanda-token".into()),
                ("OANDA_ACCOUNT_ID", "101-000-0000000-001".into()),
                ("OANDA_INGESTER_ADMIN_LISTEN", format!("127.0.0.1:{port}")),
            ]),
            port,
        )
        .await;

        let db = sqlx::PgPool::connect(&db_url).await.unwrap();
        let mut stack = Stack {
            db_url,
            db,
            grpc,
            control,
            sink,
            backfill,
            oanda,
            kraken: Vec::new(),
            control_admin,
            cfg,
        };
        for _ in 0..stack.cfg.kraken_replicas {
            stack.add_kraken_replica().await;
        }
        stack
    }

    /// Starts one more kraken-ingester replica (ready, following the control plane).
    pub async fn add_kraken_replica(&mut self) {
        let (pulsar_url, pulsar_admin) = pulsar_env();
        let port = free_port();
        let replica = ServiceProcess::start(
            &bin("kraken-ingester"),
            &[
                ("PULSAR_URL", pulsar_url),
                ("PULSAR_ADMIN_URL", pulsar_admin),
                ("TICKFLOW_API_TOKEN", TOKEN.to_owned()),
                ("RUST_LOG", self.cfg.log.clone()),
                ("CONTROL_PLANE_URL", self.grpc.clone()),
                ("KRAKEN_WS_URL", self.cfg.kraken_url.clone()),
                ("KRAKEN_INGESTER_ADMIN_LISTEN", format!("127.0.0.1:{port}")),
            ],
            port,
        )
        .await;
        self.kraken.push(replica);
    }

    /// Runs `tickctl ARGS` against this stack and returns its output.
    pub async fn tickctl(&self, args: &[&str]) -> Output {
        let mut command = tokio::process::Command::new(bin("tickctl"));
        command
            .args(args)
            .env("TICKFLOW_ENDPOINT", &self.grpc)
            .env("TICKFLOW_HTTP_ENDPOINT", &self.control_admin)
            .env("TICKFLOW_API_TOKEN", TOKEN);
        tokio::time::timeout(Duration::from_secs(30), command.output())
            .await
            .expect("tickctl did not finish within 30 s")
            .unwrap()
    }

    /// [`tickctl`](Self::tickctl), asserting it succeeded; its standard output.
    pub async fn tickctl_ok(&self, args: &[&str]) -> String {
        let out = self.tickctl(args).await;
        assert!(
            out.status.success(),
            "tickctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// One `i64` from `sql` (`count(*)::bigint` and the like).
    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, Option<i64>>(sql)
            .fetch_one(&self.db)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .unwrap_or(0)
    }
}
