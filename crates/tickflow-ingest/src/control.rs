//! An ingester and the control plane: the assignment it follows, the status it reports, and
//! the Pulsar layout it makes sure of at start.

use std::time::Duration;

use prost::Message as _;
use tickflow_control::proto::{IngesterStatus, SymbolReport};
use tickflow_control::watch::{WatchConfig, follow};
use tickflow_pulsar::admin::AdminClient;
use tickflow_pulsar::{PulsarClient, TopicName};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::backoff::BackoffConfig;
use tickflow_schema::{Source, UnixNanos};
use tokio::sync::mpsc;

use crate::config::LoadedControl;
use crate::{DesiredSymbols, Handover};

/// How often a replica reports its symbols.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(5);

/// Makes sure the `market-data` tenant and its namespaces exist (idempotent, best effort), so
/// that an ingester works on a fresh Pulsar before the control plane (which owns the layout)
/// is deployed. A failure is logged, not fatal: producers retry until the layout appears.
pub async fn ensure_layout(admin_url: &str) {
    let result = match AdminClient::new(admin_url) {
        Ok(admin) => tokio::time::timeout(Duration::from_secs(30), admin.provision_layout())
            .await
            .map_err(|_| "timed out".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string())),
        Err(e) => Err(e.to_string()),
    };
    if let Err(error) = result {
        tracing::warn!(%admin_url, %error, "could not check the Pulsar tenant and namespaces; producers will retry until they exist");
    }
}

/// A replica's identity for the control plane: `<source>-<pid>-<random hex>`, so that two
/// processes with the same pid (two containers) differ.
pub fn instance_id(source: Source) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let suffix = nanos ^ std::process::id().rotate_left(16);
    format!("{}-{}-{suffix:08x}", source.as_str(), std::process::id())
}

/// Every [`STATUS_INTERVAL`], what this replica knows of its symbols (from `snapshot`), for the
/// control plane (`control/ingester-status`). A failed report is logged and the next one tried.
pub async fn report_status(
    pulsar: PulsarClient,
    source: Source,
    instance_id: String,
    snapshot: impl Fn() -> Vec<SymbolReport> + Send,
    shutdown: CancellationToken,
) -> Result<(), std::convert::Infallible> {
    let mut producer = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(STATUS_INTERVAL) => {}
        }
        if producer.is_none() {
            let Ok(topic) = TopicName::control(tickflow_control::status::TOPIC) else {
                return Ok(());
            };
            match pulsar.raw_producer(&topic).await {
                Ok(p) => producer = Some(p),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot create the status producer yet");
                    continue;
                }
            }
        }
        let report = IngesterStatus {
            source: source.as_str().to_owned(),
            instance_id: instance_id.clone(),
            at_ns: UnixNanos::now().0,
            symbols: snapshot(),
        };
        if let Some(p) = producer.as_mut() {
            let message = pulsar::producer::Message {
                payload: report.encode_to_vec(),
                partition_key: Some(instance_id.clone()),
                ..Default::default()
            };
            if let Err(e) = p.send_non_blocking(message).await {
                tracing::warn!(error = %e, "status report not sent");
            }
        }
    }
}

/// Follows the control plane's assignments for `source` until `shutdown`: each assignment
/// replaces `desired`, and each handover in it is passed to `handovers` (so the feed records a
/// HANDOVER gap up to its first data for that symbol).
pub async fn follow_assignments(
    control: LoadedControl,
    source: Source,
    instance_id: String,
    backoff: BackoffConfig,
    desired: DesiredSymbols,
    handovers: mpsc::Sender<Handover>,
    shutdown: CancellationToken,
) -> Result<(), std::convert::Infallible> {
    let cfg = WatchConfig {
        url: control.url,
        token: control.token,
        source,
        instance_id,
        backoff,
        ca_cert: control.ca_cert,
    };
    follow(cfg, shutdown, move |assigned| {
        for (symbol, since, previous_owner) in assigned.handovers {
            if handovers
                .try_send(Handover {
                    symbol,
                    since,
                    previous_owner,
                })
                .is_err()
            {
                tracing::warn!("handover notes are backing up; one was not recorded");
            }
        }
        desired.set(assigned.symbols);
    })
    .await
}
