//! `tickctl` as a user runs it, against a control plane on port 0 (real PostgreSQL and Pulsar):
//! outputs, `--json`, and exit codes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

#[path = "../../control-plane/tests/common/mod.rs"]
mod common;

use std::process::Output;

use common::*;

fn tickctl(endpoint: &str, token: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tickctl"))
        .env("TICKFLOW_ENDPOINT", endpoint)
        .env("TICKFLOW_API_TOKEN", token)
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symbols_commands_outputs_and_exit_codes() {
    let p = plane(&env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080")).await;
    let _ = channel(&p.url).await; // the server is up
    let s = unique("T");
    let url = p.url.clone();
    let run = move |token: &'static str, args: Vec<String>| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                tickctl(&url, token, &args)
            })
            .await
            .unwrap()
        }
    };
    let args = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();

    let o = run(TOKEN, args(&["symbols", "add", &s, "--source", "kraken"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("added"), "{}", text(&o));
    assert!(
        text(&o).contains(".trade"),
        "lists the topics: {}",
        text(&o)
    );

    let o = run(
        TOKEN,
        args(&["symbols", "add", &s.to_lowercase(), "--source", "kraken"]),
    )
    .await;
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).contains("already registered"), "{}", text(&o));

    let o = run(TOKEN, args(&["--json", "symbols", "list"])).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["symbol"], s.as_str());
    assert_eq!(v[0]["sources"][0]["source"], "kraken");

    let o = run(TOKEN, args(&["symbols", "list"])).await;
    assert!(
        text(&o).contains("SYMBOL") && text(&o).contains(&s),
        "{}",
        text(&o)
    );

    let o = run(
        TOKEN,
        args(&["symbols", "add", "BTC/USD", "--source", "binance"]),
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "bad input: {}", text(&o));
    assert!(text(&o).contains("unknown source"), "{}", text(&o));

    let o = run(TOKEN, args(&["symbols", "show", "NOPE/USD"])).await;
    assert_eq!(o.status.code(), Some(3), "not found: {}", text(&o));

    let o = run("wrong-token", args(&["symbols", "list"])).await;
    assert_eq!(o.status.code(), Some(4), "unauthenticated: {}", text(&o));
    assert!(!text(&o).contains(TOKEN), "the token is never printed");

    let o =
        tokio::task::spawn_blocking(|| tickctl("http://127.0.0.1:1", TOKEN, &["symbols", "list"]))
            .await
            .unwrap();
    assert_eq!(o.status.code(), Some(5), "unavailable: {}", text(&o));

    let o = run(TOKEN, args(&["symbols", "remove", &s])).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(TOKEN, args(&["symbols", "remove", &s])).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_fill_gaps_and_history_outputs_and_exit_codes() {
    let p = plane(&env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080")).await;
    let _ = channel(&p.url).await; // the server is up
    let s = unique("G");
    let url = p.url.clone();
    let run = move |args: Vec<String>| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                tickctl(&url, TOKEN, &args)
            })
            .await
            .unwrap()
        }
    };
    let args = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();

    // A history start starts a backfill, and the output says which.
    let since = (chrono::Utc::now().date_naive() - chrono::Days::new(2)).to_string();
    let o = run(args(&[
        "symbols",
        "add",
        &s,
        "--source",
        "dukascopy",
        "--since",
        &since,
    ]))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("history backfill started: job "),
        "{}",
        text(&o)
    );
    let other = unique("G");
    let o = run(args(&[
        "--json",
        "symbols",
        "add",
        &other,
        "--source",
        "dukascopy",
        "--since",
        &since,
    ]))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let job = v["backfill_job_id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&job).is_ok(), "{v}");
    let o = run(args(&["backfill", "status", &job])).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains(&job), "{}", text(&o));

    // Coverage as the sink writes it: three missing hours in two runs, one complete.
    let db = sqlx::PgPool::connect(&p.db_url).await.unwrap();
    timescale_sink::schema::prepare(&db).await.unwrap();
    for (hour, status) in [
        ("2024-01-01T03:00:00Z", "missing"),
        ("2024-01-01T04:00:00Z", "missing"),
        ("2024-01-01T05:00:00Z", "complete"),
        ("2024-01-01T10:00:00Z", "missing"),
    ] {
        sqlx::query(
            "INSERT INTO public.coverage (source, symbol, kind, hour, status, ticks, detail, \
             recorded_at) VALUES ('dukascopy', $1, 'quote', $2::timestamptz, $3, 0, '', now())",
        )
        .bind(&s)
        .bind(hour)
        .bind(status)
        .execute(&db)
        .await
        .unwrap();
    }
    let o = run(args(&[
        "backfill",
        "fill-gaps",
        &s,
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-02",
    ]))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("enqueued 3 missing hours"), "{out}");
    assert!(out.contains("FROM") && out.contains("TO"), "{out}");
    for line in [
        "2024-01-01T03:00:00Z   2024-01-01T05:00:00Z",
        "2024-01-01T10:00:00Z   2024-01-01T11:00:00Z",
    ] {
        assert!(out.contains(line), "{line} in {out}");
    }
    let o = run(args(&[
        "--json",
        "backfill",
        "fill-gaps",
        &s,
        "--source",
        "dukascopy",
        "--from",
        "2024-01-01T04:00:00Z",
        "--to",
        "2024-01-01T11:00:00Z",
    ]))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["hours"], 2);
    assert!(
        v["job_id"].as_str().unwrap().starts_with("fill-gaps-"),
        "{v}"
    );
    assert_eq!(
        v["ranges"],
        serde_json::json!([
            {"from": "2024-01-01T04:00:00Z", "to": "2024-01-01T05:00:00Z"},
            {"from": "2024-01-01T10:00:00Z", "to": "2024-01-01T11:00:00Z"},
        ])
    );
    // Nothing missing: nothing queued, still a success.
    let o = run(args(&[
        "backfill",
        "fill-gaps",
        &s,
        "--from",
        "2024-01-02",
        "--to",
        "2024-01-03",
    ]))
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("enqueued 0 missing hours"),
        "{}",
        text(&o)
    );

    // Exit codes: bad input 2 (a live venue, a bad date, an unregistered symbol).
    for bad in [
        args(&[
            "backfill",
            "fill-gaps",
            &s,
            "--source",
            "kraken",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-02",
        ]),
        args(&[
            "backfill",
            "fill-gaps",
            &s,
            "--from",
            "soon",
            "--to",
            "2024-01-02",
        ]),
        args(&[
            "backfill",
            "fill-gaps",
            "NOPE/USD",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-02",
        ]),
        args(&["backfill", "fill-gaps", &s, "--from", "2024-01-01"]),
    ] {
        let o = run(bad.clone()).await;
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", text(&o));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_shows_live_ticks() {
    use tickflow_pulsar::{Namespace, PulsarClient, TopicName};
    use tickflow_runtime::admin::{AdminServer, Health};
    use tickflow_schema::{Decimal, Side, Source, Symbol, Tick, TickKind, Trade, UnixNanos};

    let pulsar = PulsarClient::connect(&pulsar_config(), "tickctl-test")
        .await
        .unwrap();
    let http = AdminServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        Default::default(),
        Health::new(),
    )
    .await
    .unwrap()
    .with_routes(control_plane::tail::routes(
        pulsar.clone(),
        tickflow_runtime::config::SecretString::new(TOKEN.to_owned()),
    ));
    let http_url = format!("http://{}", http.local_addr());
    let stop = tickflow_runtime::CancellationToken::new();
    tokio::spawn(http.serve(stop.clone()));

    let symbol = Symbol::parse(&unique("L")).unwrap();
    let topic = TopicName::data(
        Namespace::Realtime,
        Source::Kraken,
        &symbol,
        TickKind::Trade,
    )
    .unwrap();
    let mut producer = pulsar.tick_producer(&topic).await.unwrap();
    let sym = symbol.to_string();
    let url = http_url.clone();
    let tail = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tickctl"))
            .env("TICKFLOW_HTTP_ENDPOINT", url)
            .env("TICKFLOW_API_TOKEN", TOKEN)
            .args(["--json", "tail", &sym, "--source", "kraken", "--count", "2"])
            .output()
            .unwrap()
    });
    let mut i = 0u64;
    while !tail.is_finished() {
        i += 1;
        assert!(i < 200, "tail did not show two ticks");
        let t = Tick::Trade(Trade {
            source: Source::Kraken,
            symbol: symbol.clone(),
            venue_symbol: symbol.as_str().into(),
            event_time: UnixNanos::now(),
            received_at: UnixNanos::now(),
            price: Decimal::from_str_exact("101.50").unwrap(),
            size: Decimal::from_str_exact("0.25000000").unwrap(),
            side: Side::Buy,
            trade_id: i.to_string().into(),
        });
        producer.send(&t).await.unwrap().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let out = tail.await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["kind"], "trade");
    assert_eq!(lines[0]["price"], "101.50", "exact decimals");
    assert_eq!(lines[0]["size"], "0.25000000");

    // Without the token: refused, exit code 4.
    let url = http_url.clone();
    let sym = symbol.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tickctl"))
            .env("TICKFLOW_HTTP_ENDPOINT", url)
            .env("TICKFLOW_API_TOKEN", "nope")
            .args(["tail", &sym, "--count", "1"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talks_tls_to_a_control_plane_with_a_certificate() {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = generated.cert.pem();
    let key = generated.key_pair.serialize_pem();
    let p = plane(&env("PULSAR_ADMIN_URL", "http://127.0.0.1:8080")).await;
    let state = control_plane::service::State {
        store: p.store.clone(),
        admin: tickflow_pulsar::admin::AdminClient::new(&env(
            "PULSAR_ADMIN_URL",
            "http://127.0.0.1:8080",
        ))
        .unwrap(),
        assignments: Default::default(),
        jobs: None,
        live: Default::default(),
        follow: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = tickflow_runtime::CancellationToken::new();
    tokio::spawn(control_plane::server::serve_tls(
        state,
        tickflow_runtime::config::SecretString::new(TOKEN.to_owned()),
        listener,
        Some(control_plane::server::Tls {
            cert: cert.clone().into_bytes(),
            key: key.into_bytes(),
        }),
        stop.clone(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert).unwrap();
    let endpoint = format!("https://127.0.0.1:{port}");
    let out = tokio::task::spawn_blocking(move || {
        let mut last = None;
        for _ in 0..20 {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_tickctl"))
                .env("TICKFLOW_ENDPOINT", &endpoint)
                .env("TICKFLOW_API_TOKEN", TOKEN)
                .env("TICKFLOW_CA_CERT", &ca)
                .args(["--json", "symbols", "list"])
                .output()
                .unwrap();
            if o.status.success() {
                return o;
            }
            last = Some(o);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        last.unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    stop.cancel();
}
