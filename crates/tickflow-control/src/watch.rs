//! Following an assignment: an ingester replica holds `AssignmentService.Watch` open (the open
//! stream is its lease) and applies every full set it receives. While the control plane is away
//! the replica keeps serving its last assignment and reconnects with capped, jittered backoff.

use std::collections::BTreeSet;
use std::time::Duration;

use tickflow_runtime::CancellationToken;
use tickflow_runtime::backoff::{Backoff, BackoffConfig};
use tickflow_runtime::config::SecretString;
use tickflow_schema::{Source, Symbol, UnixNanos};
use tonic::metadata::MetadataValue;
use tonic::transport::Endpoint;

use crate::proto;

/// Where and who.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// `http://control-plane:50051`.
    pub url: String,
    /// The bearer token.
    pub token: SecretString,
    /// The source this replica ingests.
    pub source: Source,
    /// Unique per replica and process start.
    pub instance_id: String,
    /// Reconnect pacing.
    pub backoff: BackoffConfig,
    /// PEM certificate authority for an `https://` URL (`None`: the web PKI).
    pub ca_cert: Option<Vec<u8>>,
}

/// One assignment as the replica applies it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assigned {
    /// Every symbol this replica owns.
    pub symbols: BTreeSet<Symbol>,
    /// Symbols just taken over: (symbol, data may be missing since, previous owner).
    pub handovers: Vec<(Symbol, UnixNanos, String)>,
}

/// Runs until `shutdown`: calls `apply` with every assignment received. Symbols that are not
/// canonical are skipped with a warning.
pub async fn follow(
    cfg: WatchConfig,
    shutdown: CancellationToken,
    mut apply: impl FnMut(Assigned) + Send,
) -> Result<(), std::convert::Infallible> {
    let mut backoff = Backoff::new(cfg.backoff.clone());
    loop {
        let started = std::time::Instant::now();
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            r = session(&cfg, &mut apply) => r,
        };
        match outcome {
            Ok(()) => {
                tracing::warn!(url = %cfg.url, "the control plane closed the assignment stream; keeping the last assignment and reconnecting")
            }
            Err(e) => {
                tracing::warn!(url = %cfg.url, error = %e, "no assignment stream; keeping the last assignment and reconnecting")
            }
        }
        backoff.connection_ended(started.elapsed());
        if !backoff.wait(&shutdown).await {
            return Ok(());
        }
    }
}

async fn session(
    cfg: &WatchConfig,
    apply: &mut (impl FnMut(Assigned) + Send),
) -> Result<(), String> {
    let mut endpoint = Endpoint::from_shared(cfg.url.clone())
        .map_err(|e| format!("bad control-plane URL: {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(2))
        .keep_alive_timeout(Duration::from_secs(2));
    if cfg.url.starts_with("https://") {
        let mut tls = tonic::transport::ClientTlsConfig::new().with_webpki_roots();
        if let Some(pem) = &cfg.ca_cert {
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem.clone()));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| format!("TLS settings: {e}"))?;
    }
    let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
    let value: MetadataValue<_> = format!("Bearer {}", cfg.token.expose())
        .parse()
        .map_err(|_| "the token is not a valid header value".to_owned())?;
    let mut client = proto::assignment_service_client::AssignmentServiceClient::with_interceptor(
        channel,
        move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert("authorization", value.clone());
            Ok(r)
        },
    );
    let mut stream = client
        .watch(proto::WatchRequest {
            source: cfg.source.as_str().to_owned(),
            instance_id: cfg.instance_id.clone(),
        })
        .await
        .map_err(|s| format!("{}: {}", s.code(), s.message()))?
        .into_inner();
    while let Some(assignment) = stream
        .message()
        .await
        .map_err(|s| format!("{}: {}", s.code(), s.message()))?
    {
        let symbols: BTreeSet<Symbol> = assignment
            .symbols
            .iter()
            .filter_map(|s| match Symbol::parse(s) {
                Ok(sym) => Some(sym),
                Err(e) => {
                    tracing::warn!(symbol = %s, error = %e, "assignment holds a symbol that is not canonical; skipped");
                    None
                }
            })
            .collect();
        tracing::info!(
            symbols = symbols.len(),
            generation = assignment.generation,
            replicas = assignment.replicas.len(),
            "assignment received"
        );
        let handovers = assignment
            .handovers
            .iter()
            .filter_map(|h| {
                Symbol::parse(&h.symbol)
                    .ok()
                    .map(|s| (s, UnixNanos(h.since_ns), h.previous_owner.clone()))
            })
            .collect();
        apply(Assigned { symbols, handovers });
    }
    Ok(())
}
