//! The control plane's gRPC API against the real PostgreSQL and Pulsar: symbols, validation,
//! the token, Pulsar's admin API being down, and assignments moving between replicas.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use control_plane::proto::symbol_service_client::SymbolServiceClient;
use control_plane::proto::{AddSymbolRequest, GetSymbolRequest, ListSymbolsRequest, WatchRequest};
use tickflow_pulsar::admin::AdminClient;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_list_get_and_idempotence() {
    let p = plane(&env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080")).await;
    let mut c = symbols(&p.url, TOKEN).await;
    let s = unique("C");
    let r = c
        .add_symbol(add(&s, &["kraken"]))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.already_existed);
    let slug = s.to_lowercase().replace('/', "-");
    assert_eq!(
        r.topics,
        [
            format!("persistent://market-data/realtime/kraken.{slug}.trade"),
            format!("persistent://market-data/realtime/kraken.{slug}.quote"),
        ]
    );
    // The topics exist on the broker before any client touched them.
    let admin = AdminClient::new(&env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080")).unwrap();
    let listed = admin
        .list_topics(tickflow_pulsar::Namespace::Realtime)
        .await
        .unwrap();
    assert!(
        listed
            .iter()
            .any(|t| t.contains(&format!("kraken.{slug}.trade"))),
        "{listed:?}"
    );
    let again = c
        .add_symbol(add(&s, &["kraken"]))
        .await
        .unwrap()
        .into_inner();
    assert!(
        again.already_existed,
        "adding twice is idempotent and says so"
    );
    let more = c
        .add_symbol(add(&s, &["kraken", "oanda"]))
        .await
        .unwrap()
        .into_inner();
    assert!(!more.already_existed, "a new source is news");
    let info = c
        .get_symbol(GetSymbolRequest {
            symbol: s.to_lowercase(),
        })
        .await
        .unwrap()
        .into_inner();
    let sources: Vec<_> = info.sources.iter().map(|x| x.source.as_str()).collect();
    assert_eq!(sources, ["kraken", "oanda"]);
    let list = c
        .list_symbols(ListSymbolsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.symbols.len(), 1);
    let missing = c
        .get_symbol(GetSymbolRequest {
            symbol: "NOPE/USD".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_bad_tokens_are_refused_and_nothing_is_written() {
    let p = plane(&env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080")).await;
    let mut c = symbols(&p.url, TOKEN).await;
    for (req, says) in [
        (add("", &["kraken"]), "empty"),
        (add("BTC/USD", &[]), "no source"),
        (add("BTC/USD", &["binance"]), "unknown source"),
        (add("../../etc", &["kraken"]), "invalid symbol"),
        (
            add("BTC'; DROP TABLE symbols;--", &["kraken"]),
            "invalid symbol",
        ),
        (add(&"A".repeat(200), &["kraken"]), "long"),
        (add("XBT/USD", &["kraken"]), "legacy"),
        (
            AddSymbolRequest {
                symbol: "EUR/USD".into(),
                sources: vec!["oanda".into()],
                history_start: "2024-01-01".into(),
            },
            "history",
        ),
    ] {
        let e = c.add_symbol(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
        assert!(
            e.message().to_lowercase().contains(says),
            "{says}: {}",
            e.message()
        );
    }
    assert!(
        p.store.page(None, "", 100).await.unwrap().is_empty(),
        "nothing written"
    );

    let mut wrong = symbols(&p.url, "not-the-token").await;
    let e = wrong
        .add_symbol(add("BTC/USD", &["kraken"]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let mut none = SymbolServiceClient::new(channel(&p.url).await);
    let e = none
        .list_symbols(ListSymbolsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    // Health needs no token.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel(&p.url).await);
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        h.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulsar_admin_down_is_unavailable_and_writes_nothing() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let p = plane(&url).await;
    let mut c = symbols(&p.url, TOKEN).await;
    let e = c
        .add_symbol(add(&unique("D"), &["kraken"]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
    assert!(
        e.message().contains("nothing was changed"),
        "{}",
        e.message()
    );
    assert!(p.store.page(None, "", 100).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symbols_spread_over_replicas_and_move_when_one_leaves() {
    let p = plane(&env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080")).await;
    let mut c = symbols(&p.url, TOKEN).await;
    let mut all = BTreeSet::new();
    for _ in 0..20 {
        let s = unique("W");
        c.add_symbol(add(&s, &["kraken"])).await.unwrap();
        all.insert(s);
    }
    let mut a = assignments(&p.url)
        .await
        .watch(WatchRequest {
            source: "kraken".into(),
            instance_id: "replica-a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let b_client = assignments(&p.url).await;
    let mut b_client = b_client;
    let mut b = b_client
        .watch(WatchRequest {
            source: "kraken".into(),
            instance_id: "replica-b".into(),
        })
        .await
        .unwrap()
        .into_inner();
    // Read until both see two replicas.
    let mut set_a = BTreeSet::new();
    let mut set_b = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while set_a.len() + set_b.len() != 20 || set_a.is_empty() || set_b.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a {set_a:?} b {set_b:?}"
        );
        tokio::select! {
            Some(Ok(m)) = a.message().map(|r| r.transpose()) => set_a = m.symbols.into_iter().collect(),
            Some(Ok(m)) = b.message().map(|r| r.transpose()) => set_b = m.symbols.into_iter().collect(),
        }
    }
    assert!(set_a.is_disjoint(&set_b), "no symbol served twice");
    let union: BTreeSet<String> = set_a.union(&set_b).cloned().collect();
    assert_eq!(union, all, "every symbol has an owner");

    // Replica b goes away: all symbols are a's within 5 s.
    drop(b);
    drop(b_client);
    let started = tokio::time::Instant::now();
    while set_a != all {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "moved within 5 s"
        );
        if let Ok(Ok(Some(m))) = tokio::time::timeout(Duration::from_secs(5), a.message()).await {
            set_a = m.symbols.into_iter().collect();
        }
    }
}

use futures::FutureExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfills_are_split_into_daily_tasks_and_report_progress_from_coverage() {
    use control_plane::proto::backfill_service_client::BackfillServiceClient;
    use control_plane::proto::{
        BackfillState, BackfillTask, CancelBackfillRequest, GetBackfillRequest,
        StartBackfillRequest,
    };
    use prost::Message as _;
    use tickflow_pulsar::{
        ConsumerSpec, InitialPosition, SubscriptionType, TopicName, TopicSelection,
    };

    let p = plane(&env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080")).await;
    let mut c = symbols(&p.url, TOKEN).await;
    let s = unique("B");
    c.add_symbol(add(&s, &["dukascopy"])).await.unwrap();
    let client = tickflow_pulsar::PulsarClient::connect(&pulsar_config(), "cp-test")
        .await
        .unwrap();
    let mut tasks = client
        .tick_consumer(ConsumerSpec {
            topics: TopicSelection::Topics(vec![TopicName::control("backfill-jobs").unwrap()]),
            subscription: format!("test-{}", uuid::Uuid::new_v4().simple()),
            sub_type: SubscriptionType::Exclusive,
            initial_position: InitialPosition::Latest,
            consumer_name: None,
        })
        .await
        .unwrap();
    let mut b = BackfillServiceClient::with_interceptor(channel(&p.url).await, bearer(TOKEN));
    let start = |symbol: &str, source: &str, from: &str, to: &str| StartBackfillRequest {
        symbol: symbol.into(),
        source: source.into(),
        from: from.into(),
        to: to.into(),
    };
    let job = b
        .start_backfill(start(&s, "dukascopy", "2024-01-01", "2024-01-03"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.hours_total, 48);
    assert_eq!(job.state, BackfillState::Queued as i32);
    let mut got = Vec::new();
    while got.len() < 2 {
        let d = tokio::time::timeout(Duration::from_secs(30), tasks.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let t = BackfillTask::decode(d.payload()).unwrap();
        tasks.ack(&d).await.unwrap();
        if t.job_id == job.id {
            got.push(t);
        }
    }
    assert_eq!(got.iter().map(|t| t.hours).collect::<Vec<_>>(), [24, 24]);
    assert_eq!(got[0].symbol, s);

    // Progress comes from what the sink stored.
    sqlx::query(
        "CREATE TABLE public.coverage (source text, symbol text, kind text, hour timestamptz, \
         status text, ticks bigint, detail text, recorded_at timestamptz)",
    )
    .execute(p.store.pool())
    .await
    .unwrap();
    for h in 0..12 {
        let status = if h < 10 { "complete" } else { "missing" };
        sqlx::query(
            "INSERT INTO public.coverage VALUES ('dukascopy', $1, 'quote', \
             timestamptz '2024-01-01' + $2 * interval '1 hour', $3, 0, '', now())",
        )
        .bind(&s)
        .bind(f64::from(h))
        .bind(status)
        .execute(p.store.pool())
        .await
        .unwrap();
    }
    let view = b
        .get_backfill(GetBackfillRequest { id: job.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((view.hours_done, view.hours_missing), (10, 2));
    assert_eq!(view.state, BackfillState::Running as i32);
    let cancelled = b
        .cancel_backfill(CancelBackfillRequest { id: job.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state, BackfillState::Cancelled as i32);

    for (req, code) in [
        (
            start(&s, "kraken", "2024-01-01", "2024-01-02"),
            Code::InvalidArgument,
        ),
        (
            start(&s, "dukascopy", "2024-01-02", "2024-01-01"),
            Code::InvalidArgument,
        ),
        (
            start(&s, "dukascopy", "soon", "2024-01-01"),
            Code::InvalidArgument,
        ),
        (
            start("NOTREG/USD", "dukascopy", "2024-01-01", "2024-01-02"),
            Code::FailedPrecondition,
        ),
    ] {
        assert_eq!(b.start_backfill(req).await.unwrap_err().code(), code);
    }
    let e = b
        .get_backfill(GetBackfillRequest { id: "42".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = b
        .get_backfill(GetBackfillRequest {
            id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

/// The Python interpreter of the project's virtualenv (`scripts/deps.sh` makes it, with grpcio
/// and grpcio-reflection).
fn python() -> std::path::PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let venv = std::env::var("TICKFLOW_PYVENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(home).join(".cache/tickflow/pyvenv"));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make deps` (scripts/deps.sh makes the Python virtualenv)",
        python.display()
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_built_only_from_server_reflection_drives_the_api() {
    let p = plane(&env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080")).await;
    let _ = channel(&p.url).await;
    let s = unique("Y");
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/reflection_client.py");
    let endpoint = p.url.trim_start_matches("http://").to_owned();
    let symbol = s.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python())
            .arg(script)
            .arg(endpoint)
            .arg(TOKEN)
            .arg(symbol)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let services: Vec<&str> = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    for want in [
        "tickflow.control.v1.SymbolService",
        "tickflow.control.v1.BackfillService",
        "tickflow.control.v1.AssignmentService",
        "grpc.health.v1.Health",
    ] {
        assert!(services.contains(&want), "{want} in {services:?}");
    }
    assert_eq!(v["added"]["symbol"]["symbol"], s.as_str());
    assert_eq!(v["listed"]["symbols"][0]["symbol"], s.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_when_given_a_certificate_and_key() {
    use tonic::transport::{Certificate, ClientTlsConfig};
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = generated.cert.pem();
    let key = generated.key_pair.serialize_pem();
    let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let base = env(
        "DATABASE_URL",
        "postgres://tickflow@127.0.0.1:55432/tickflow",
    );
    let admin_db = sqlx::PgPool::connect(&base).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE tickflow_test_tls{id}"))
        .execute(&admin_db)
        .await
        .unwrap();
    let (server, _) = base.rsplit_once('/').unwrap();
    let store = control_plane::store::Store::connect(
        &format!("{server}/tickflow_test_tls{id}"),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let state = control_plane::service::State {
        store,
        admin: AdminClient::new(&env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080")).unwrap(),
        assignments: Default::default(),
        jobs: None,
        live: Default::default(),
        follow: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = tickflow_runtime::CancellationToken::new();
    tokio::spawn(control_plane::server::serve_tls(
        state,
        tickflow_runtime::config::SecretString::new(TOKEN.to_owned()),
        listener,
        Some(control_plane::server::Tls {
            cert: cert.clone().into_bytes(),
            key: key.into_bytes(),
        }),
        shutdown.clone(),
    ));
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(cert))
        .domain_name("localhost");
    let mut channel = None;
    for _ in 0..50 {
        if let Ok(c) = tonic::transport::Channel::from_shared(format!("https://127.0.0.1:{port}"))
            .unwrap()
            .tls_config(tls.clone())
            .unwrap()
            .connect()
            .await
        {
            channel = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut c = SymbolServiceClient::with_interceptor(channel.unwrap(), bearer(TOKEN));
    let list = c.list_symbols(ListSymbolsRequest::default()).await.unwrap();
    assert!(list.into_inner().symbols.is_empty());
    // Plain text to a TLS port fails.
    let plain = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await;
    if let Ok(plain) = plain {
        let mut c = SymbolServiceClient::with_interceptor(plain, bearer(TOKEN));
        assert!(c.list_symbols(ListSymbolsRequest::default()).await.is_err());
    }
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconcile_loop_recreates_deleted_topics() {
    let admin_url = env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080");
    let p = plane(&admin_url).await;
    let mut c = symbols(&p.url, TOKEN).await;
    let s = unique("Z");
    c.add_symbol(add(&s, &["kraken"])).await.unwrap();
    let admin = AdminClient::new(&admin_url).unwrap();
    let symbol = tickflow_schema::Symbol::parse(&s).unwrap();
    let topic = tickflow_pulsar::TopicName::data(
        tickflow_pulsar::Namespace::Realtime,
        tickflow_schema::Source::Kraken,
        &symbol,
        tickflow_schema::TickKind::Trade,
    )
    .unwrap();
    admin.delete_topic(&topic, true).await.unwrap();
    let exists = async || {
        admin
            .list_topics(tickflow_pulsar::Namespace::Realtime)
            .await
            .unwrap()
            .iter()
            .any(|t| *t == topic.to_string())
    };
    assert!(!exists().await, "deleted");
    let state = control_plane::service::State {
        store: p.store.clone(),
        admin: admin.clone(),
        assignments: Default::default(),
        jobs: None,
        live: Default::default(),
        follow: Default::default(),
    };
    let stop = tickflow_runtime::CancellationToken::new();
    tokio::spawn(control_plane::server::reconcile(
        state,
        admin.clone(),
        Duration::from_secs(1),
        stop.clone(),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !exists().await {
        assert!(tokio::time::Instant::now() < deadline, "not re-created");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
}
