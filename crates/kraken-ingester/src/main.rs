//! `kraken-ingester`: see the library docs. Flags and well-known variables override the config
//! file and `KRAKEN_INGESTER_*` variables.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use kraken_ingester::{Config, Ingester};
use tickflow_runtime::supervisor::cancel_on_signal;
use tickflow_runtime::{config, telemetry};

/// Kraken spot WebSocket v2 → Pulsar.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file (optional).
    #[arg(long, env = "KRAKEN_INGESTER_CONFIG")]
    config: Option<PathBuf>,
    /// Symbols to subscribe, comma separated (`BTC/USD,ETH/USD`).
    #[arg(long, env = "KRAKEN_SYMBOLS", value_delimiter = ',')]
    symbols: Option<Vec<String>>,
    /// Kraken WebSocket v2 URL.
    #[arg(long, env = "KRAKEN_WS_URL")]
    ws_url: Option<String>,
    /// Pulsar service URL.
    #[arg(long, env = "PULSAR_URL")]
    pulsar_url: Option<String>,
    /// The control plane's gRPC URL; when set, symbols come from its assignments.
    #[arg(long, env = "CONTROL_PLANE_URL")]
    control_plane_url: Option<String>,
    /// The control plane's bearer token (never logged).
    #[arg(long, env = "TICKFLOW_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Admin HTTP address (`/healthz`, `/readyz`, `/metrics`).
    #[arg(long, env = "KRAKEN_INGESTER_ADMIN_LISTEN")]
    admin_listen: Option<std::net::SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut cfg: Config = config::Loader::new("kraken-ingester")
        .file(args.config.as_deref())
        .env_prefix("KRAKEN_INGESTER")
        .ignore_env("KRAKEN_INGESTER_CONFIG")
        .ignore_env("KRAKEN_INGESTER_ADMIN_LISTEN")
        .load()?;
    if let Some(symbols) = args.symbols {
        cfg.kraken.symbols = symbols;
    }
    if let Some(url) = args.ws_url {
        cfg.kraken.ws_url = url;
    }
    if let Some(url) = args.pulsar_url {
        cfg.pulsar.url = url;
    }
    if let Some(url) = args.control_plane_url {
        cfg.control.url = Some(url);
    }
    if let Some(token) = args.api_token {
        cfg.control.token = Some(tickflow_runtime::config::SecretString::new(token));
    } else if let Some(token) =
        tickflow_runtime::config::SecretString::from_env("TICKFLOW_API_TOKEN")?
    {
        cfg.control.token = Some(token);
    }
    if let Some(addr) = args.admin_listen {
        cfg.runtime.admin.listen = addr;
    }
    cfg.runtime
        .telemetry
        .apply_standard_env(|name| std::env::var(name).ok());
    let telemetry = telemetry::init("kraken-ingester", &cfg.runtime.telemetry)?;

    let (ingester, handle) = Ingester::build(cfg)
        .await
        .context("kraken-ingester cannot start")?;
    tracing::info!(admin = %handle.admin_addr(), symbols = handle.symbols().len(), "kraken-ingester started");
    let result = ingester.run(cancel_on_signal()?).await;
    telemetry.shutdown().await?;
    Ok(result?)
}
