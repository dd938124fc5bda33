//! `timescale-sink`: see the library docs. Flags and well-known variables override the config
//! file and `TIMESCALE_SINK_*` variables.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tickflow_runtime::config::SecretString;
use tickflow_runtime::supervisor::cancel_on_signal;
use tickflow_runtime::{config, telemetry};
use timescale_sink::{Config, Sink};

/// Pulsar → TimescaleDB.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file (optional).
    #[arg(long, env = "TIMESCALE_SINK_CONFIG")]
    config: Option<PathBuf>,
    /// PostgreSQL URL (may hold a password: never logged).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Pulsar service URL.
    #[arg(long, env = "PULSAR_URL")]
    pulsar_url: Option<String>,
    /// Pulsar admin URL.
    #[arg(long, env = "PULSAR_ADMIN_URL")]
    pulsar_admin_url: Option<String>,
    /// Admin HTTP address (`/healthz`, `/readyz`, `/metrics`).
    #[arg(long, env = "TIMESCALE_SINK_ADMIN_LISTEN")]
    admin_listen: Option<std::net::SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut cfg: Config = config::Loader::new("timescale-sink")
        .file(args.config.as_deref())
        .env_prefix("TIMESCALE_SINK")
        .ignore_env("TIMESCALE_SINK_CONFIG")
        .ignore_env("TIMESCALE_SINK_ADMIN_LISTEN")
        .load()?;
    if let Some(url) = args.database_url {
        cfg.database.url = Some(SecretString::new(url));
    } else if let Some(url) = SecretString::from_env("DATABASE_URL")? {
        cfg.database.url = Some(url);
    }
    if let Some(url) = args.pulsar_url {
        cfg.pulsar.url = url;
    }
    if let Some(url) = args.pulsar_admin_url {
        cfg.pulsar.admin_url = url;
    }
    if let Some(addr) = args.admin_listen {
        cfg.runtime.admin.listen = addr;
    }
    cfg.runtime
        .telemetry
        .apply_standard_env(|name| std::env::var(name).ok());
    let telemetry = telemetry::init("timescale-sink", &cfg.runtime.telemetry)?;

    let sink = Sink::build(cfg)
        .await
        .context("timescale-sink cannot start")?;
    tracing::info!(admin = %sink.admin_addr(), engine = ?sink.engine(), "timescale-sink started");
    let result = sink.run(cancel_on_signal()?).await;
    telemetry.shutdown().await?;
    Ok(result?)
}
