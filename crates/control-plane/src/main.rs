//! `control-plane`: see the library docs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use control_plane::config::Config;
use control_plane::service::{Assignments, State};
use control_plane::store::Store;
use tickflow_pulsar::admin::AdminClient;
use tickflow_runtime::admin::{AdminServer, Health};
use tickflow_runtime::config::SecretString;
use tickflow_runtime::prometheus_client::registry::Registry;
use tickflow_runtime::supervisor::{Supervisor, cancel_on_signal};
use tickflow_runtime::{config, telemetry};

/// tickflow's control plane.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file (optional).
    #[arg(long, env = "CONTROL_PLANE_CONFIG")]
    config: Option<PathBuf>,
    /// PostgreSQL URL (never logged).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Pulsar admin URL.
    #[arg(long, env = "PULSAR_ADMIN_URL")]
    pulsar_admin_url: Option<String>,
    /// Pulsar service URL (backfill jobs).
    #[arg(long, env = "PULSAR_URL")]
    pulsar_url: Option<String>,
    /// The API bearer token (never logged).
    #[arg(long, env = "TICKFLOW_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// gRPC address.
    #[arg(long, env = "CONTROL_PLANE_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Admin HTTP address (`/healthz`, `/readyz`, `/metrics`).
    #[arg(long, env = "CONTROL_PLANE_ADMIN_LISTEN")]
    admin_listen: Option<std::net::SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut cfg: Config = config::Loader::new("control-plane")
        .file(args.config.as_deref())
        .env_prefix("CONTROL_PLANE")
        .ignore_env("CONTROL_PLANE_CONFIG")
        .ignore_env("CONTROL_PLANE_LISTEN")
        .ignore_env("CONTROL_PLANE_ADMIN_LISTEN")
        .load()?;
    if let Some(url) = args.database_url {
        cfg.database_url = Some(SecretString::new(url));
    } else if let Some(url) = SecretString::from_env("DATABASE_URL")? {
        cfg.database_url = Some(url);
    }
    if let Some(token) = args.api_token {
        cfg.api_token = Some(SecretString::new(token));
    } else if let Some(token) = SecretString::from_env("TICKFLOW_API_TOKEN")? {
        cfg.api_token = Some(token);
    }
    if let Some(url) = args.pulsar_admin_url {
        cfg.pulsar.admin_url = url;
    }
    if let Some(url) = args.pulsar_url {
        cfg.pulsar.url = url;
    }
    if let Some(addr) = args.listen {
        cfg.listen = addr;
    }
    if let Some(addr) = args.admin_listen {
        cfg.runtime.admin.listen = addr;
    }
    cfg.runtime
        .telemetry
        .apply_standard_env(|name| std::env::var(name).ok());
    let telemetry = telemetry::init("control-plane", &cfg.runtime.telemetry)?;
    let Some(db) = cfg.database_url.clone() else {
        bail!("control-plane: DATABASE_URL is not set");
    };
    let Some(token) = cfg.api_token.clone() else {
        bail!("control-plane: TICKFLOW_API_TOKEN is not set: every call needs a bearer token");
    };
    if token.expose().len() < 16 {
        bail!("control-plane: TICKFLOW_API_TOKEN is shorter than 16 characters");
    }

    let store = Store::connect(db.expose(), Duration::from_secs(5))
        .await
        .context("control-plane cannot reach its database")?;
    let admin = AdminClient::new(&cfg.pulsar.admin_url)?;
    let pulsar = tickflow_pulsar::PulsarClient::connect(&cfg.pulsar, "control-plane")
        .await
        .context("control-plane cannot reach Pulsar")?;
    // The tenant and namespaces before anything uses them: the job producer below needs
    // `market-data/control` (on a fresh Pulsar it does not exist yet), and so does the first call.
    // The reconcile loop keeps them there.
    if let Err(e) = admin.provision_layout().await {
        tracing::warn!(error = %e, "Pulsar admin unavailable at start; the reconcile loop retries");
    }
    let jobs = control_plane::backfill::JobQueue::new(&pulsar)
        .await
        .map_err(|s| anyhow::anyhow!("cannot create the backfill job producer: {}", s.message()))?;
    let state = State {
        store,
        admin: admin.clone(),
        assignments: Arc::new(Assignments::default()),
        jobs: Some(jobs),
        live: Default::default(),
        follow: Arc::new(control_plane::follow::Follow::new(cfg.follow())),
    };
    state.load().await?;
    let state_live = state.live.clone();
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let health = Health::new();
    let mut registry = Registry::default();
    let follow_metrics = control_plane::follow::FollowMetrics::register(&mut registry);
    // The admin server also serves the live tail (`/v1/tail`, bearer token) that `tickctl tail` reads.
    let admin_http = AdminServer::bind(cfg.runtime.admin.listen, Arc::new(registry), health)
        .await?
        .with_routes(control_plane::tail::routes(pulsar.clone(), token.clone()));
    tracing::info!(grpc = %listener.local_addr()?, admin = %admin_http.local_addr(), "control-plane started");

    let token_root = cancel_on_signal()?;
    let mut supervisor = Supervisor::new(token_root.clone())
        .with_drain_timeout(cfg.runtime.shutdown.drain_timeout());
    supervisor.spawn("admin server", admin_http.serve(token_root.clone()));
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(cert), Some(key)) => Some(control_plane::server::Tls {
            cert: std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?,
            key: std::fs::read(key).with_context(|| format!("reading {}", key.display()))?,
        }),
        (None, None) => None,
        _ => bail!("control-plane: give both tls_cert and tls_key, or neither"),
    };
    supervisor.spawn(
        "grpc server",
        control_plane::server::serve_tls(state.clone(), token, listener, tls, token_root.clone()),
    );
    supervisor.spawn(
        "follow",
        control_plane::follow::run(state.clone(), follow_metrics, token_root.clone()),
    );
    supervisor.spawn(
        "reconcile",
        control_plane::server::reconcile(
            state,
            admin,
            Duration::from_millis(cfg.reconcile_interval_ms.max(1_000)),
            token_root.clone(),
        ),
    );
    supervisor.spawn(
        "ingester status",
        control_plane::server::follow_status(pulsar, state_live, token_root.clone()),
    );
    let result = supervisor.wait_until(token_root.cancelled_owned()).await;
    telemetry.shutdown().await?;
    Ok(result?)
}
