//! `oanda-ingester`: see the library docs. Flags and well-known variables override the config
//! file and `OANDA_INGESTER_*` variables. Secrets (`OANDA_API_TOKEN`, `OANDA_ACCOUNT_ID`,
//! `TICKFLOW_API_TOKEN`) come from the environment or, with a `_FILE` suffix, from a file (a
//! mounted Secret); they are never logged.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use oanda_ingester::config::Environment;
use oanda_ingester::{Config, Ingester};
use tickflow_runtime::config::SecretString;
use tickflow_runtime::supervisor::cancel_on_signal;
use tickflow_runtime::{config, telemetry};

/// OANDA v20 pricing stream → Pulsar.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file (optional).
    #[arg(long, env = "OANDA_INGESTER_CONFIG")]
    config: Option<PathBuf>,
    /// Instruments to stream, comma separated (`EUR/USD,USD/JPY`).
    #[arg(long, env = "OANDA_INSTRUMENTS", value_delimiter = ',')]
    instruments: Option<Vec<String>>,
    /// `practice` or `live` (picks the stream host).
    #[arg(long, env = "OANDA_ENVIRONMENT")]
    environment: Option<String>,
    /// The stream host, overriding the environment's (`https://stream-fxpractice.oanda.com`).
    #[arg(long, env = "OANDA_STREAM_URL")]
    stream_url: Option<String>,
    /// Pulsar service URL.
    #[arg(long, env = "PULSAR_URL")]
    pulsar_url: Option<String>,
    /// The control plane's gRPC URL; when set, instruments come from its assignments.
    #[arg(long, env = "CONTROL_PLANE_URL")]
    control_plane_url: Option<String>,
    /// Admin HTTP address (`/healthz`, `/readyz`, `/metrics`).
    #[arg(long, env = "OANDA_INGESTER_ADMIN_LISTEN")]
    admin_listen: Option<std::net::SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut cfg: Config = config::Loader::new("oanda-ingester")
        .file(args.config.as_deref())
        .env_prefix("OANDA_INGESTER")
        .ignore_env("OANDA_INGESTER_CONFIG")
        .ignore_env("OANDA_INGESTER_ADMIN_LISTEN")
        .load()?;
    if let Some(instruments) = args.instruments {
        cfg.oanda.instruments = instruments;
    }
    if let Some(env) = args.environment {
        cfg.oanda.environment = match env.trim() {
            "practice" => Environment::Practice,
            "live" => Environment::Live,
            other => anyhow::bail!("OANDA_ENVIRONMENT must be practice or live, not {other:?}"),
        };
    }
    if let Some(url) = args.stream_url {
        cfg.oanda.stream_url = Some(url);
    }
    if let Some(token) = SecretString::from_env("OANDA_API_TOKEN")? {
        cfg.oanda.token = Some(token);
    }
    if let Some(account) = SecretString::from_env("OANDA_ACCOUNT_ID")? {
        cfg.oanda.account_id = Some(account);
    }
    if let Some(url) = args.pulsar_url {
        cfg.pulsar.url = url;
    }
    if let Some(url) = args.control_plane_url {
        cfg.control.url = Some(url);
    }
    if let Some(token) = SecretString::from_env("TICKFLOW_API_TOKEN")? {
        cfg.control.token = Some(token);
    }
    if let Some(addr) = args.admin_listen {
        cfg.runtime.admin.listen = addr;
    }
    cfg.runtime
        .telemetry
        .apply_standard_env(|name| std::env::var(name).ok());
    let telemetry = telemetry::init("oanda-ingester", &cfg.runtime.telemetry)?;

    let (ingester, handle) = Ingester::build(cfg)
        .await
        .context("oanda-ingester cannot start")?;
    tracing::info!(admin = %handle.admin_addr(), instruments = handle.symbols().len(), "oanda-ingester started");
    let result = ingester.run(cancel_on_signal()?).await;
    telemetry.shutdown().await?;
    Ok(result?)
}
