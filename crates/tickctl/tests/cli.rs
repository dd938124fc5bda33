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
