//! A service binary run as its own process (benchmarks and end-to-end tests), and reading its
//! Prometheus text.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running service process; killed when dropped.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Child,
    /// `http://127.0.0.1:PORT` of its admin server.
    pub admin: String,
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on 127.0.0.1 (for a child's admin server).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The path of workspace binary `name` (`control-plane`, `tickctl`, ...) built beside the running
/// test (`target/<profile>/<name>`). `cargo test --workspace` builds every binary before it runs a
/// test; panics with what to run when the binary is missing.
pub fn workspace_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` (or the whole `cargo test --workspace`) first",
        path.display()
    );
    path
}

impl ServiceProcess {
    /// Starts `binary` with `env` (plus `RUST_LOG=warn`); `admin_port` is where the caller told
    /// it to serve `/readyz`. Waits until ready, at most 60 s.
    pub async fn start(binary: &str, env: &[(&str, String)], admin_port: u16) -> Self {
        let mut command = Command::new(binary);
        command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().unwrap();
        let service = Self {
            child,
            admin: format!("http://127.0.0.1:{admin_port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = reqwest::get(format!("{}/readyz", service.admin))
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "{binary} not ready within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        service
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it the way an orchestrator does (`SIGTERM`, then `SIGKILL` after `grace`); returns
    /// whether it exited within the grace period.
    pub async fn terminate(mut self, grace: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Its `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// (VmRSS, VmHWM) in KiB: resident memory now and at its peak.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Polls the metric line starting with `prefix` until it reaches `target`, at most `limit`;
    /// returns when it did.
    pub async fn wait_metric(&self, prefix: &str, target: f64, limit: Duration) -> Instant {
        let deadline = Instant::now() + limit;
        loop {
            if value(&self.metrics().await, prefix) >= target {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "{prefix} did not reach {target} within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The value of the line of Prometheus text `metrics` that starts with `prefix`, or 0.
pub fn value(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The cumulative buckets of histogram `name` (`…_seconds`): (upper bound, count).
pub fn buckets(metrics: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    metrics
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

/// The upper bound of the bucket holding the 99th percentile of what was observed between two
/// readings of the same histogram, and how many observations that was.
pub fn p99(before: &[(f64, f64)], after: &[(f64, f64)]) -> (f64, f64) {
    let diff: Vec<(f64, f64)> = after
        .iter()
        .zip(before)
        .map(|((le, a), (_, b))| (*le, a - b))
        .collect();
    let total = diff.last().map_or(0.0, |(_, c)| *c);
    let bound = diff
        .iter()
        .find(|(_, c)| *c >= total * 0.99)
        .map_or(f64::NAN, |(le, _)| *le);
    (bound, total)
}

/// The anchor of the ingesters' end-to-end benchmarks: `count` ticks made by `make(i)`
/// published straight to `topics[i % topics.len()]` with tickflow's producer (no venue, no
/// parsing, no queue), at most 20,000 awaiting receipts. Returns ticks per second.
pub async fn direct_publish(
    topics: &[tickflow_pulsar::TopicName],
    count: u64,
    mut make: impl FnMut(u64) -> tickflow_schema::Tick,
) -> f64 {
    use futures::StreamExt;
    use futures::stream::FuturesUnordered;

    let client = tickflow_pulsar::PulsarClient::connect(&crate::pulsar_config(), "bench-anchor")
        .await
        .unwrap();
    let mut producers = Vec::new();
    for topic in topics {
        producers.push(client.tick_producer(topic).await.unwrap());
    }
    let mut in_flight = FuturesUnordered::new();
    let start = Instant::now();
    for i in 0..count {
        let idx = usize::try_from(i).unwrap() % producers.len();
        in_flight.push(producers[idx].send(&make(i)).await.unwrap());
        while in_flight.len() >= 20_000 {
            in_flight.next().await.unwrap().unwrap();
        }
    }
    while let Some(r) = in_flight.next().await {
        r.unwrap();
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    for p in producers {
        p.close().await.unwrap();
    }
    rate
}

/// A synthetic Kraken trade for the anchors of the end-to-end benchmarks: trade `id` of `symbol`,
/// stamped now, with a price and size that vary with `id`.
pub fn synthetic_trade(symbol: &tickflow_schema::Symbol, id: u64) -> tickflow_schema::Tick {
    use tickflow_schema::{Decimal, Side, Source, Tick, Trade, UnixNanos};
    Tick::Trade(Trade {
        source: Source::Kraken,
        symbol: symbol.clone(),
        venue_symbol: symbol.as_str().into(),
        event_time: UnixNanos::now(),
        received_at: UnixNanos::now(),
        price: Decimal::from_str_exact(&format!("{}.{}", 108_000 + id % 997, id % 10)).unwrap(),
        size: Decimal::from_str_exact(&format!("0.{:08}", 1 + id * 7_919 % 99_999_999)).unwrap(),
        side: Side::Buy,
        trade_id: id.to_string().into(),
    })
}
