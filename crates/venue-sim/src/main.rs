//! `venue-sim`: the three simulated venues in one process, with a live market (`make demo`, the
//! docker-compose `demo` profile, the Kubernetes dev overlay).
//!
//! * Kraken spot WebSocket v2 at `ws://HOST:KRAKEN_PORT/v2`: trades and tickers for every symbol a
//!   client subscribes to.
//! * OANDA v20 pricing stream at `http://HOST:OANDA_PORT`: prices for every instrument a stream asks
//!   for while the forex week is open (any token and account are accepted).
//! * Dukascopy at `http://HOST:DUKASCOPY_PORT` (`/datafeed/..` and `/v1/ticks/..`): the last
//!   `HISTORY_DAYS` days of generated ticks for EUR/USD, USD/JPY, GBP/USD, BTC/USD and ETH/USD, and
//!   each new hour as it ends.
//! * `/healthz` and `/metrics` (messages sent, by venue, kind and symbol) at `http://HOST:ADMIN_PORT`.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use venue_sim::dukascopy::DukascopySim;
use venue_sim::kraken::KrakenSim;
use venue_sim::market::{self, HISTORY_INSTRUMENTS, MarketConfig, Sent};
use venue_sim::oanda::OandaSim;

/// The simulated venues with a live market.
#[derive(Debug, Parser)]
#[command(name = "venue-sim", version)]
struct Args {
    /// Address to serve on (`0.0.0.0` in a container).
    #[arg(long, env = "VENUE_SIM_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// `/healthz` and `/metrics`.
    #[arg(long, env = "VENUE_SIM_ADMIN_PORT", default_value_t = 9200)]
    admin_port: u16,
    /// Kraken WebSocket v2 (`ws://HOST:PORT/v2`).
    #[arg(long, env = "VENUE_SIM_KRAKEN_PORT", default_value_t = 9201)]
    kraken_port: u16,
    /// OANDA pricing stream (`http://HOST:PORT`).
    #[arg(long, env = "VENUE_SIM_OANDA_PORT", default_value_t = 9202)]
    oanda_port: u16,
    /// Dukascopy datafeed and JSON API (`http://HOST:PORT`).
    #[arg(long, env = "VENUE_SIM_DUKASCOPY_PORT", default_value_t = 9203)]
    dukascopy_port: u16,
    /// Messages a second per symbol on average (bursts go 8 times higher).
    #[arg(long, env = "VENUE_SIM_RATE", default_value_t = 5.0)]
    rate: f64,
    /// Seeds every price walk: the same seed gives the same prices.
    #[arg(long, env = "VENUE_SIM_SEED", default_value_t = 42)]
    seed: u64,
    /// Days of Dukascopy history before today.
    #[arg(long, env = "VENUE_SIM_HISTORY_DAYS", default_value_t = 3)]
    history_days: u32,
    /// Ticks per generated Dukascopy hour, on average.
    #[arg(
        long,
        env = "VENUE_SIM_HISTORY_TICKS_PER_HOUR",
        default_value_t = 1_500
    )]
    history_ticks_per_hour: u32,
    /// Send OANDA prices at the weekend too (the real stream carries heartbeats only).
    #[arg(long, env = "VENUE_SIM_FOREX_ALWAYS_OPEN")]
    forex_always_open: bool,
    /// No bursts: a steady rate.
    #[arg(long, env = "VENUE_SIM_NO_BURSTS")]
    no_bursts: bool,
}

struct Admin {
    sent: Arc<Sent>,
    history_hours: Arc<AtomicU64>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    if !(args.rate.is_finite() && args.rate >= 0.0) {
        eprintln!("venue-sim: VENUE_SIM_RATE must be a non-negative number");
        std::process::exit(2);
    }
    let at = |port| SocketAddr::new(args.host, port);
    let kraken = Arc::new(KrakenSim::start_on(at(args.kraken_port)).await?);
    let oanda = Arc::new(OandaSim::start_on(at(args.oanda_port)).await?);
    let dukascopy = DukascopySim::start_on(at(args.dukascopy_port)).await?;
    let cfg = MarketConfig {
        seed: args.seed,
        rate: args.rate,
        bursts: !args.no_bursts,
        forex_hours: !args.forex_always_open,
        ..MarketConfig::default()
    };
    let shutdown = CancellationToken::new();
    let sent = Sent::counting();
    let history_hours = Arc::new(AtomicU64::new(0));
    tokio::spawn(market::run_kraken(
        Arc::clone(&kraken),
        cfg.clone(),
        Arc::clone(&sent),
        shutdown.clone(),
    ));
    tokio::spawn(market::run_oanda(
        Arc::clone(&oanda),
        cfg.clone(),
        Arc::clone(&sent),
        shutdown.clone(),
    ));
    tokio::spawn(market::run_history(
        dukascopy.clone(),
        HISTORY_INSTRUMENTS.to_vec(),
        args.history_days,
        args.seed,
        args.history_ticks_per_hour,
        Arc::clone(&history_hours),
        shutdown.clone(),
    ));

    let admin = Arc::new(Admin {
        sent,
        history_hours,
    });
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .route("/metrics", get(metrics))
        .with_state(admin);
    let listener = tokio::net::TcpListener::bind(at(args.admin_port)).await?;
    println!(
        "venue-sim: kraken {}  oanda {}  dukascopy {}  admin http://{}  ({} msg/s per symbol, seed {})",
        kraken.url(),
        oanda.url(),
        dukascopy.base_url(),
        listener.local_addr()?,
        args.rate,
        args.seed,
    );
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    #[cfg(unix)]
    {
        let stop = shutdown.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::spawn(async move {
            term.recv().await;
            stop.cancel();
        });
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await?;
    // Let the market loops see the cancellation before the servers drop.
    tokio::time::sleep(Duration::from_millis(20)).await;
    Ok(())
}

async fn metrics(State(admin): State<Arc<Admin>>) -> String {
    let mut out = String::from(
        "# TYPE venue_sim_messages_sent counter\n# HELP venue_sim_messages_sent Messages sent, by kind and symbol.\n",
    );
    for ((kind, symbol), n) in admin.sent.counts() {
        let _ = writeln!(
            out,
            "venue_sim_messages_sent_total{{kind=\"{kind}\",symbol=\"{symbol}\"}} {n}"
        );
    }
    let _ = write!(
        out,
        "# TYPE venue_sim_history_hours_published counter\nvenue_sim_history_hours_published_total {}\n# EOF\n",
        admin.history_hours.load(Ordering::Relaxed)
    );
    out
}
