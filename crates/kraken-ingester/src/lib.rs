//! `kraken-ingester`: Kraken spot WebSocket v2 → Pulsar.
//!
//! Every trade becomes a trade tick on `persistent://market-data/realtime/kraken.<slug>.trade`
//! and every ticker update (best bid and offer with quantities) a quote tick on `….quote`, with
//! the canonical symbol, exact decimals from the JSON number text, Kraken's event time and our
//! receive time. Every interval in which data may have been missed is published as a gap message
//! on the same topics.
//!
//! # Layout
//!
//! - [`kraken`]: the venue: wire types, frame parser
//!   ([`kraken::parse`], pure, fuzzed) and pair names ([`kraken::symbols`]).
//! - [`session`]: subscription state per symbol and channel, reply routing by `req_id`, gap
//!   bookkeeping, duplicate filtering and quote numbering. Pure.
//! - `feed`: the socket handler and reconnect loop (watchdogs, pings, backoff).
//! - `publisher`: the bounded queue's consumer, producers per symbol, receipts and retries.
//! - [`config`], [`metrics`].
//! - [`Ingester`]: [`Ingester::build`] binds the admin server and connects to Pulsar,
//!   [`Ingester::run`] runs until shutdown; [`IngesterHandle`] changes the symbol set on the live
//!   connection.
//!
//! # Data flow and its bounds
//!
//! socket → parse → session → queue (`queue.capacity`, full ⇒ the reader waits) → publisher
//! (`queue.max_in_flight` unacknowledged sends, full ⇒ it stops taking) → Pulsar.

pub mod config;
mod feed;
pub mod kraken;
pub mod metrics;
mod publisher;
pub mod session;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use prometheus_client::registry::Registry;
use tickflow_pulsar::admin::AdminClient;
use tickflow_pulsar::{PulsarClient, PulsarError};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::admin::{AdminError, AdminServer, Health};
use tickflow_runtime::supervisor::{Supervisor, SupervisorError};
use tickflow_schema::{Symbol, SymbolError};
use tokio::sync::{mpsc, watch};

pub use config::Config;
pub use metrics::Metrics;
pub use session::{StatusBoard, SymbolStatus};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A configured symbol is not valid.
    #[error("invalid symbol in kraken.symbols: {0}")]
    Symbol(#[from] SymbolError),
    /// Pulsar is unreachable or refused us.
    #[error(transparent)]
    Pulsar(#[from] PulsarError),
    /// The admin server could not bind.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// A setting is unusable.
    #[error("invalid setting: {0}")]
    Config(String),
}

/// Changes what the running ingester subscribes, and reports per-symbol status.
#[derive(Debug, Clone)]
pub struct IngesterHandle {
    desired: Arc<watch::Sender<BTreeSet<Symbol>>>,
    handovers: mpsc::Sender<Handover>,
    board: StatusBoard,
    admin_addr: SocketAddr,
}

impl IngesterHandle {
    /// Replaces the whole symbol set (what the control plane's assignment stream sends).
    /// Added symbols are subscribed and removed ones unsubscribed on the live connection;
    /// the others are not touched.
    pub fn set_symbols(&self, symbols: impl IntoIterator<Item = Symbol>) {
        let set: BTreeSet<Symbol> = symbols.into_iter().collect();
        self.desired.send_if_modified(|current| {
            if *current == set {
                false
            } else {
                *current = set;
                true
            }
        });
    }

    /// Adds one symbol.
    pub fn add(&self, symbol: Symbol) {
        self.desired.send_if_modified(|s| s.insert(symbol));
    }

    /// Removes one symbol.
    pub fn remove(&self, symbol: &Symbol) {
        self.desired.send_if_modified(|s| s.remove(symbol));
    }

    /// Notes a symbol taken over from another replica: its data may be missing since `since`,
    /// and a HANDOVER gap is recorded up to this replica's first data for it.
    pub fn note_handover(
        &self,
        symbol: Symbol,
        since: tickflow_schema::UnixNanos,
        previous_owner: String,
    ) {
        if self
            .handovers
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

    /// The wanted symbol set.
    pub fn symbols(&self) -> BTreeSet<Symbol> {
        self.desired.borrow().clone()
    }

    /// What is known about one symbol (subscription states, last error, last tick). A legacy
    /// name (`XBT/EUR`) finds its canonical entry (`BTC/EUR`).
    pub fn status(&self, symbol: &Symbol) -> Option<SymbolStatus> {
        let symbol = kraken::symbols::canonical(symbol.as_str()).unwrap_or_else(|_| symbol.clone());
        self.board
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&symbol)
            .cloned()
    }

    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }
}

/// Makes sure the `market-data` tenant and its namespaces exist (idempotent, best effort), so
/// that the ingester works on a fresh Pulsar before the control plane (which owns the layout)
/// is deployed. A failure is logged, not fatal: producers retry until the layout appears.
async fn ensure_layout(admin_url: &str) {
    let result = match AdminClient::new(admin_url) {
        Ok(admin) => {
            tokio::time::timeout(std::time::Duration::from_secs(30), admin.provision_layout())
                .await
                .map_err(|_| "timed out".to_owned())
                .and_then(|r| r.map_err(|e| e.to_string()))
        }
        Err(e) => Err(e.to_string()),
    };
    if let Err(error) = result {
        tracing::warn!(%admin_url, %error, "could not check the Pulsar tenant and namespaces; producers will retry until they exist");
    }
}

/// A few random hex digits, so that two processes with the same pid (two containers) differ.
fn rand_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:08x}", nanos ^ std::process::id().rotate_left(16))
}

/// Every 5 s, what this replica knows of its symbols, for the control plane
/// (`control/ingester-status`). A failed report is logged and the next one tried.
async fn report_status(
    pulsar: PulsarClient,
    board: StatusBoard,
    instance_id: String,
    shutdown: CancellationToken,
) -> Result<(), std::convert::Infallible> {
    use prost::Message as _;
    let mut producer = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
        }
        if producer.is_none() {
            let Ok(topic) = tickflow_pulsar::TopicName::control(tickflow_control::status::TOPIC)
            else {
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
        let symbols = board
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(symbol, s)| tickflow_control::proto::SymbolReport {
                symbol: symbol.to_string(),
                last_tick_ns: s.last_tick_at.map_or(0, |t| t.0),
                ticks: s.ticks,
                last_error: s.last_error.clone().unwrap_or_default(),
            })
            .collect();
        let report = tickflow_control::proto::IngesterStatus {
            source: "kraken".to_owned(),
            instance_id: instance_id.clone(),
            at_ns: tickflow_schema::UnixNanos::now().0,
            symbols,
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

/// A symbol taken over from another replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    /// The symbol.
    pub symbol: Symbol,
    /// Data may be missing since.
    pub since: tickflow_schema::UnixNanos,
    /// Who had it.
    pub previous_owner: String,
}

/// A built, not yet running ingester.
#[derive(Debug)]
pub struct Ingester {
    cfg: Config,
    ca_cert: Option<Vec<u8>>,
    desired_tx: Arc<watch::Sender<BTreeSet<Symbol>>>,
    handovers_tx: mpsc::Sender<Handover>,
    handovers: mpsc::Receiver<Handover>,
    admin: AdminServer,
    health: Health,
    pulsar: PulsarClient,
    metrics: Metrics,
    desired: watch::Receiver<BTreeSet<Symbol>>,
    board: StatusBoard,
}

impl Ingester {
    /// Validates the config, connects to Pulsar (bounded: an unreachable broker is an error
    /// that says so) and binds the admin server (port 0 picks a free port: see
    /// [`IngesterHandle::admin_addr`]).
    pub async fn build(cfg: Config) -> Result<(Self, IngesterHandle), StartError> {
        let symbols: BTreeSet<Symbol> = cfg.kraken.symbols()?.into_iter().collect();
        if cfg.queue.capacity == 0 {
            return Err(StartError::Config(
                "queue.capacity must be at least 1".into(),
            ));
        }
        let url = cfg.kraken.ws_url.as_str();
        if !(url.starts_with("wss://") || url.starts_with("ws://")) {
            return Err(StartError::Config(format!(
                "kraken.ws_url must be a ws:// or wss:// URL, not {url:?}"
            )));
        }
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let health = Health::new();
        let pulsar = PulsarClient::connect(&cfg.pulsar, "kraken-ingester").await?;
        ensure_layout(&cfg.pulsar.admin_url).await;
        let admin =
            AdminServer::bind(cfg.runtime.admin.listen, Arc::new(registry), health.clone()).await?;
        let ca_cert = match &cfg.control.ca_cert {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                StartError::Config(format!("control.ca_cert {}: {e}", path.display()))
            })?),
            None => None,
        };
        if cfg.control.url.is_some() && cfg.control.token.is_none() {
            return Err(StartError::Config(
                "control.url is set but no token: give TICKFLOW_API_TOKEN".to_owned(),
            ));
        }
        let (tx, desired) = watch::channel(symbols);
        let desired_tx = Arc::new(tx);
        let (handovers_tx, handovers) = mpsc::channel(1024);
        let board: StatusBoard = Arc::new(Mutex::new(Default::default()));
        let handle = IngesterHandle {
            desired: Arc::clone(&desired_tx),
            handovers: handovers_tx.clone(),
            board: board.clone(),
            admin_addr: admin.local_addr(),
        };
        Ok((
            Self {
                cfg,
                ca_cert,
                desired_tx,
                handovers_tx,
                handovers,
                admin,
                health,
                pulsar,
                metrics,
                desired,
                board,
            },
            handle,
        ))
    }

    /// Runs until `shutdown` is cancelled (then drains: every queued tick is published and
    /// acknowledged, or the drain deadline passes) or a task fails.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), SupervisorError> {
        let feed_ready = self.health.register("kraken connection subscribed");
        let publisher_ready = self.health.register("pulsar producers");
        let (queue_tx, queue_rx) = mpsc::channel(self.cfg.queue.capacity);
        let mut supervisor = Supervisor::new(shutdown.clone())
            .with_drain_timeout(self.cfg.runtime.shutdown.drain_timeout());
        supervisor.spawn("admin server", self.admin.serve(shutdown.clone()));
        // The status reporter (when a control plane is configured) shares the client and board.
        let (reports_pulsar, reports_board) = (self.pulsar.clone(), self.board.clone());
        let publisher = publisher::Publisher::new(
            self.pulsar,
            self.metrics.clone(),
            publisher_ready,
            self.cfg.queue.max_in_flight,
            shutdown.clone(),
        );
        supervisor.spawn("pulsar publisher", publisher.run(queue_rx));
        let cfg = Arc::new(self.cfg.kraken);
        let feed = feed::Feed {
            session: session::Session::new(cfg.clone(), self.metrics.clone(), self.board),
            cfg,
            backoff: self.cfg.reconnect.clone(),
            desired: self.desired,
            handovers: self.handovers,
            queue: queue_tx,
            metrics: self.metrics,
            ready: feed_ready,
            shutdown: shutdown.clone(),
        };
        supervisor.spawn("kraken feed", feed.run());
        if let (Some(url), Some(token)) =
            (self.cfg.control.url.clone(), self.cfg.control.token.clone())
        {
            let instance_id = format!("kraken-{}-{}", std::process::id(), rand_suffix());
            supervisor.spawn(
                "status reports",
                report_status(
                    reports_pulsar,
                    reports_board,
                    instance_id.clone(),
                    shutdown.clone(),
                ),
            );
            let desired = self.desired_tx;
            let notes = self.handovers_tx;
            let watch_cfg = tickflow_control::watch::WatchConfig {
                url,
                token,
                source: tickflow_schema::Source::Kraken,
                instance_id,
                backoff: self.cfg.reconnect.clone(),
                ca_cert: self.ca_cert.clone(),
            };
            supervisor.spawn(
                "assignment watch",
                tickflow_control::watch::follow(watch_cfg, shutdown.clone(), move |assigned| {
                    for (symbol, since, previous_owner) in assigned.handovers {
                        let _ = notes.try_send(Handover {
                            symbol,
                            since,
                            previous_owner,
                        });
                    }
                    let set = assigned.symbols;
                    desired.send_if_modified(|current| {
                        let changed = *current != set;
                        if changed {
                            *current = set;
                        }
                        changed
                    });
                }),
            );
        }
        supervisor.wait_until(shutdown.cancelled_owned()).await
    }
}
