//! The process: gRPC server (symbols, assignments, `grpc.health.v1`, reflection) with a bearer
//! token on every call but health and reflection, and the reconcile loop.

use std::net::SocketAddr;
use std::time::Duration;

use tickflow_pulsar::admin::AdminClient;
use tickflow_runtime::CancellationToken;
use tickflow_runtime::config::SecretString;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Status};

use crate::proto;
use crate::service::{State, topics_of};

/// Compares without an early exit, so the time taken says nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

/// Whether `given` is the token (constant time).
pub fn token_matches(given: &str, token: &SecretString) -> bool {
    constant_time_eq(given.as_bytes(), token.expose().as_bytes())
}

/// The interceptor: `authorization: Bearer <token>` must match.
#[derive(Clone)]
pub struct Auth {
    token: SecretString,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

impl Auth {
    /// Requires `token`.
    pub fn new(token: SecretString) -> Self {
        Self { token }
    }

    /// Checks one request.
    #[allow(clippy::result_large_err, reason = "tonic's interceptor signature")]
    pub fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Status::unauthenticated(
                    "missing `authorization: Bearer <token>` (TICKFLOW_API_TOKEN)",
                )
            })?;
        if constant_time_eq(given.as_bytes(), self.token.expose().as_bytes()) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("wrong token"))
        }
    }
}

/// A PEM certificate (chain) and key for TLS.
#[derive(Clone)]
pub struct Tls {
    /// PEM certificate chain.
    pub cert: Vec<u8>,
    /// PEM private key.
    pub key: Vec<u8>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

/// Serves until `shutdown`; `listener` is already bound (port 0 in tests).
pub async fn serve(
    state: State,
    token: SecretString,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    serve_tls(state, token, listener, None, shutdown).await
}

/// [`serve`], over TLS when `tls` is given.
pub async fn serve_tls(
    state: State,
    token: SecretString,
    listener: tokio::net::TcpListener,
    tls: Option<Tls>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<proto::symbol_service_server::SymbolServiceServer<State>>()
        .await;
    health
        .set_serving::<proto::assignment_service_server::AssignmentServiceServer<State>>()
        .await;
    health
        .set_serving::<proto::backfill_service_server::BackfillServiceServer<State>>()
        .await;
    // Reflection in both versions: v1, and v1alpha that many clients (grpcio-reflection,
    // older grpcurl) still speak.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1();
    let reflection_v1alpha = reflection().build_v1alpha();
    let auth = Auth::new(token);
    let symbols = {
        let auth = auth.clone();
        proto::symbol_service_server::SymbolServiceServer::with_interceptor(
            state.clone(),
            move |r| auth.check(r),
        )
    };
    let backfills = {
        let auth = auth.clone();
        proto::backfill_service_server::BackfillServiceServer::with_interceptor(
            state.clone(),
            move |r| auth.check(r),
        )
    };
    let assignments = proto::assignment_service_server::AssignmentServiceServer::with_interceptor(
        state,
        move |r| auth.check(r),
    );
    let mut builder = Server::builder()
        // A replica that dies without closing its stream is noticed within about 4 s.
        .http2_keepalive_interval(Some(Duration::from_secs(2)))
        .http2_keepalive_timeout(Some(Duration::from_secs(2)));
    if let Some(tls) = tls {
        builder = builder.tls_config(
            tonic::transport::ServerTlsConfig::new()
                .identity(tonic::transport::Identity::from_pem(tls.cert, tls.key)),
        )?;
    }
    let router = builder
        .add_service(health_service)
        .add_service(symbols)
        .add_service(backfills)
        .add_service(assignments);
    let router = match (reflection_v1, reflection_v1alpha) {
        (Ok(v1), Ok(v1alpha)) => router.add_service(v1).add_service(v1alpha),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "server reflection unavailable");
            router
        }
    };
    router
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown.cancelled_owned())
        .await
}

/// Every `every`: the tenant, namespaces and every registered symbol's topics exist (a wiped
/// Pulsar heals itself), and the assignments match the database.
pub async fn reconcile(
    state: State,
    admin: AdminClient,
    every: Duration,
    shutdown: CancellationToken,
) -> Result<(), std::convert::Infallible> {
    loop {
        match admin.provision_layout().await {
            Ok(()) => match state.store.all_pairs().await {
                Ok(pairs) => {
                    for (symbol, source) in pairs {
                        for topic in topics_of(&symbol, source) {
                            if let Err(e) = admin.create_topic(&topic).await {
                                tracing::warn!(%topic, error = %e, "reconcile: cannot create topic");
                            }
                        }
                    }
                    if let Err(e) = state.load().await {
                        tracing::warn!(error = %e, "reconcile: cannot load symbols");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reconcile: database unavailable"),
            },
            Err(e) => tracing::warn!(error = %e, "reconcile: Pulsar admin unavailable"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Follows `control/ingester-status` from now on and keeps the latest report per symbol.
pub async fn follow_status(
    pulsar: tickflow_pulsar::PulsarClient,
    live: tickflow_control::status::LiveBoard,
    shutdown: CancellationToken,
) -> Result<(), std::convert::Infallible> {
    let Ok(topic) = tickflow_pulsar::TopicName::control(tickflow_control::status::TOPIC) else {
        return Ok(());
    };
    loop {
        match pulsar.tick_reader(vec![topic.clone()]).await {
            Ok(mut reader) => loop {
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    next = reader.next() => match next {
                        Some(Ok(d)) => live.apply(d.payload()),
                        Some(Err(e)) => tracing::warn!(error = %e, "ingester status: receive failed"),
                        None => break,
                    },
                }
            },
            Err(e) => tracing::warn!(error = %e, "ingester status: cannot subscribe yet"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// The address the gRPC server listens on by default.
pub fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50051))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"secret"));
        assert!(!constant_time_eq(b"secret", b""));
    }
}
