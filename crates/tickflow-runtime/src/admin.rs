//! The admin HTTP server: `/healthz`, `/readyz` and `/metrics` on a port of its own.
//!
//! - `GET /healthz`: `200 ok` whenever the process answers at all. It is served by the same
//!   runtime as the service, so a wedged event loop fails it.
//! - `GET /readyz`: `200` when every check registered with [`Health`] is ready, otherwise `503`
//!   with one line per check that is not, and why. No checks means ready.
//! - `GET /metrics`: the [`Registry`] in the OpenMetrics text format
//!   ([`OPENMETRICS_CONTENT_TYPE`]), which Prometheus scrapes natively.
//!
//! The registry is passed in, never global: register every metric on it, then wrap it in an
//! [`Arc`] and bind the server. Metric handles (`Counter`, `Family`, …) are shared, so
//! components keep updating them after the registry is frozen.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The content type of `/metrics`: what `prometheus_client::encoding::text::encode` writes.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Admin server settings, usually the `admin` section of a service's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address to listen on. Default `0.0.0.0:9464`; port 0 picks a free port.
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 9464)),
        }
    }
}

/// Why the admin server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The listen address cannot be bound.
    #[error(
        "cannot bind the admin server to {addr}: {source}; pick a free port (admin.listen) or \
         stop the process holding it"
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Accepting connections failed.
    #[error("the admin server on {addr} failed: {source}")]
    Serve {
        /// The address it was serving on.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The readiness checks of one process. Cloning it gives another handle to the same checks.
#[derive(Debug, Clone, Default)]
pub struct Health {
    checks: Arc<Mutex<Vec<Check>>>,
}

#[derive(Debug)]
struct Check {
    id: u64,
    name: String,
    status: Status,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Ready,
    NotReady(String),
}

impl Health {
    /// No checks yet (and so ready).
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a check named `name` (shown in `/readyz`). It starts not ready; the component
    /// calls [`Readiness::set_ready`] once it can do its work, and
    /// [`Readiness::set_not_ready`] when it no longer can (a lost connection, say).
    ///
    /// Dropping the handle (its last clone) marks the check not ready for good: a component
    /// that is gone is not doing its work. Names need not be unique, but unique names make
    /// `/readyz` readable.
    pub fn register(&self, name: impl Into<String>) -> Readiness {
        let mut checks = self.lock();
        let id = checks.iter().map(|c| c.id + 1).max().unwrap_or(0);
        checks.push(Check {
            id,
            name: name.into(),
            status: Status::NotReady("starting".to_owned()),
        });
        Readiness {
            inner: Arc::new(ReadinessInner {
                health: self.clone(),
                id,
            }),
        }
    }

    /// Every check's current state, in registration order.
    pub fn report(&self) -> ReadinessReport {
        let checks = self
            .lock()
            .iter()
            .map(|check| CheckReport {
                name: check.name.clone(),
                not_ready_reason: match &check.status {
                    Status::Ready => None,
                    Status::NotReady(reason) => Some(reason.clone()),
                },
            })
            .collect();
        ReadinessReport { checks }
    }

    fn set(&self, id: u64, status: Status) {
        if let Some(check) = self.lock().iter_mut().find(|c| c.id == id) {
            check.status = status;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Check>> {
        // The data is plain state; a panic elsewhere while holding the lock cannot corrupt it.
        self.checks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One component's readiness check; see [`Health::register`]. Clones share the check (for a
/// component with several tasks); it reports "stopped" once the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Readiness {
    inner: Arc<ReadinessInner>,
}

#[derive(Debug)]
struct ReadinessInner {
    health: Health,
    id: u64,
}

impl Readiness {
    /// The component can do its work.
    pub fn set_ready(&self) {
        self.inner.health.set(self.inner.id, Status::Ready);
    }

    /// The component cannot do its work; `reason` is shown in `/readyz` (one line).
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        let reason = reason.into().replace(['\n', '\r'], " ");
        self.inner
            .health
            .set(self.inner.id, Status::NotReady(reason));
    }
}

impl Drop for ReadinessInner {
    fn drop(&mut self) {
        self.health.set(
            self.id,
            Status::NotReady("stopped (its readiness handle was dropped)".to_owned()),
        );
    }
}

/// A snapshot of every readiness check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessReport {
    /// The checks, in registration order.
    pub checks: Vec<CheckReport>,
}

/// One check in a [`ReadinessReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The name it was registered with.
    pub name: String,
    /// `None` when ready, else why not.
    pub not_ready_reason: Option<String>,
}

impl ReadinessReport {
    /// Whether every check is ready (true when there are none).
    pub fn is_ready(&self) -> bool {
        self.checks.iter().all(|c| c.not_ready_reason.is_none())
    }
}

/// The `/readyz` body: `ready` or `not ready`, then one line per check (when not ready, only
/// the checks that are not, with their reasons).
impl fmt::Display for ReadinessReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ready() {
            writeln!(f, "ready")?;
            for check in &self.checks {
                writeln!(f, "{}: ready", check.name)?;
            }
        } else {
            writeln!(f, "not ready")?;
            for check in &self.checks {
                if let Some(reason) = &check.not_ready_reason {
                    writeln!(f, "{}: {reason}", check.name)?;
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct AppState {
    registry: Arc<Registry>,
    health: Health,
}

/// A bound, not yet serving admin server. Bind first to learn the port (tests bind port 0),
/// then [`serve`](Self::serve).
#[derive(Debug)]
pub struct AdminServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
}

impl AdminServer {
    /// Binds `addr` and prepares the routes over `registry` and `health`.
    pub async fn bind(
        addr: SocketAddr,
        registry: Arc<Registry>,
        health: Health,
    ) -> Result<Self, AdminError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| AdminError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| AdminError::Bind { addr, source })?;
        let router = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(AppState { registry, health });
        Ok(Self {
            listener,
            local_addr,
            router,
        })
    }

    /// Adds a service's own routes (for example the control plane's live tick stream) beside
    /// `/healthz`, `/readyz` and `/metrics`.
    pub fn with_routes(mut self, routes: Router) -> Self {
        self.router = self.router.merge(routes);
        self
    }

    /// The address actually bound (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` is cancelled, then stops accepting and finishes the requests in
    /// flight.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), AdminError> {
        let addr = self.local_addr;
        tracing::info!(%addr, "admin server listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .map_err(|source| AdminError::Serve { addr, source })
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    let report = state.health.report();
    let status = if report.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, report.to_string()).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], body).into_response(),
        Err(error) => {
            tracing::error!(%error, "encoding the metrics registry failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding metrics failed\n",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_start_not_ready_and_follow_their_handles() {
        let health = Health::new();
        assert!(health.report().is_ready(), "no checks is ready");

        let pulsar = health.register("pulsar producer");
        let db = health.register("database");
        let report = health.report();
        assert!(!report.is_ready());
        assert_eq!(
            report.to_string(),
            "not ready\npulsar producer: starting\ndatabase: starting\n"
        );

        pulsar.set_ready();
        db.set_not_ready("connecting to\npostgres://db:5432");
        assert_eq!(
            health.report().to_string(),
            "not ready\ndatabase: connecting to postgres://db:5432\n"
        );

        db.set_ready();
        assert!(health.report().is_ready());
        assert_eq!(
            health.report().to_string(),
            "ready\npulsar producer: ready\ndatabase: ready\n"
        );

        let db_clone = db.clone();
        drop(db);
        assert!(health.report().is_ready(), "a clone keeps the check alive");
        drop(db_clone);
        let report = health.report();
        assert!(!report.is_ready());
        assert!(report.to_string().contains("database: stopped"), "{report}");
    }

    #[test]
    fn clones_share_checks() {
        let health = Health::new();
        let clone = health.clone();
        let check = clone.register("kraken feed");
        check.set_ready();
        assert_eq!(health.report().checks.len(), 1);
        assert!(health.report().is_ready());
    }
}
