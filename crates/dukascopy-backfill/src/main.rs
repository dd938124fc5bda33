//! `dukascopy-backfill`: see the library docs. Flags and well-known variables override the
//! config file and `DUKASCOPY_BACKFILL_*` variables.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use dukascopy_backfill::config::TransportKind;
use dukascopy_backfill::{Backfill, Config};
use tickflow_runtime::supervisor::cancel_on_signal;
use tickflow_runtime::{config, telemetry};

/// Dukascopy history → Pulsar, from backfill tasks on `control/backfill-jobs`.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file (optional).
    #[arg(long, env = "DUKASCOPY_BACKFILL_CONFIG")]
    config: Option<PathBuf>,
    /// `json` (the JSON API, default) or `bi5` (the legacy datafeed).
    #[arg(long, env = "DUKASCOPY_TRANSPORT")]
    transport: Option<TransportKind>,
    /// The Dukascopy host, overriding the transport's public one.
    #[arg(long, env = "DUKASCOPY_URL")]
    url: Option<String>,
    /// Keep finished hours in this directory.
    #[arg(long, env = "DUKASCOPY_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Pulsar service URL.
    #[arg(long, env = "PULSAR_URL")]
    pulsar_url: Option<String>,
    /// Admin HTTP address (`/healthz`, `/readyz`, `/metrics`).
    #[arg(long, env = "DUKASCOPY_BACKFILL_ADMIN_LISTEN")]
    admin_listen: Option<std::net::SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut cfg: Config = config::Loader::new("dukascopy-backfill")
        .file(args.config.as_deref())
        .env_prefix("DUKASCOPY_BACKFILL")
        .ignore_env("DUKASCOPY_BACKFILL_CONFIG")
        .ignore_env("DUKASCOPY_BACKFILL_ADMIN_LISTEN")
        .load()?;
    if let Some(t) = args.transport {
        cfg.dukascopy.transport = t;
    }
    if let Some(url) = args.url {
        cfg.dukascopy.url = Some(url);
    }
    if let Some(dir) = args.cache_dir {
        cfg.dukascopy.cache_dir = Some(dir);
    }
    if let Some(url) = args.pulsar_url {
        cfg.pulsar.url = url;
    }
    if let Some(addr) = args.admin_listen {
        cfg.runtime.admin.listen = addr;
    }
    cfg.runtime
        .telemetry
        .apply_standard_env(|name| std::env::var(name).ok());
    let telemetry = telemetry::init("dukascopy-backfill", &cfg.runtime.telemetry)?;
    let (backfill, handle) = Backfill::build(cfg)
        .await
        .context("dukascopy-backfill cannot start")?;
    tracing::info!(admin = %handle.admin_addr(), "dukascopy-backfill started");
    let result = backfill.run(cancel_on_signal()?).await;
    telemetry.shutdown().await?;
    Ok(result?)
}
