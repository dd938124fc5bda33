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
//! - the publisher (`tickflow_ingest::publisher`): the bounded queue's consumer, producers per
//!   symbol, receipts and retries; shared with the other ingesters.
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
pub mod session;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use prometheus_client::registry::Registry;
use tickflow_ingest::config::LoadedControl;
use tickflow_ingest::{DesiredSymbols, Publisher, control};
use tickflow_pulsar::{PulsarClient, PulsarError};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::admin::{AdminError, AdminServer, Health};
use tickflow_runtime::supervisor::{Supervisor, SupervisorError};
use tickflow_schema::{Source, Symbol, SymbolError, TickKind};
use tokio::sync::{mpsc, watch};

pub use tickflow_ingest::Handover;

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
    desired: DesiredSymbols,
    handovers: mpsc::Sender<Handover>,
    board: StatusBoard,
    admin_addr: SocketAddr,
}

impl IngesterHandle {
    /// Replaces the whole symbol set (what the control plane's assignment stream sends).
    /// Added symbols are subscribed and removed ones unsubscribed on the live connection;
    /// the others are not touched.
    pub fn set_symbols(&self, symbols: impl IntoIterator<Item = Symbol>) {
        self.desired.set(symbols);
    }

    /// Adds one symbol.
    pub fn add(&self, symbol: Symbol) {
        self.desired.add(symbol);
    }

    /// Removes one symbol.
    pub fn remove(&self, symbol: &Symbol) {
        self.desired.remove(symbol);
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
        self.desired.get()
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

/// What the board says of each symbol, as the control plane's status report wants it.
fn status_reports(board: &StatusBoard) -> Vec<tickflow_control::proto::SymbolReport> {
    board
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|(symbol, s)| tickflow_control::proto::SymbolReport {
            symbol: symbol.to_string(),
            last_tick_ns: s.last_tick_at.map_or(0, |t| t.0),
            ticks: s.ticks,
            last_error: s.last_error.clone().unwrap_or_default(),
        })
        .collect()
}

/// A built, not yet running ingester.
#[derive(Debug)]
pub struct Ingester {
    cfg: Config,
    control: Option<LoadedControl>,
    desired_set: DesiredSymbols,
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
        control::ensure_layout(&cfg.pulsar.admin_url).await;
        let admin =
            AdminServer::bind(cfg.runtime.admin.listen, Arc::new(registry), health.clone()).await?;
        let control = cfg.control.load().map_err(StartError::Config)?;
        let desired_set = DesiredSymbols::new(symbols);
        let desired = desired_set.subscribe();
        let (handovers_tx, handovers) = mpsc::channel(1024);
        let board: StatusBoard = Arc::new(Mutex::new(Default::default()));
        let handle = IngesterHandle {
            desired: desired_set.clone(),
            handovers: handovers_tx.clone(),
            board: board.clone(),
            admin_addr: admin.local_addr(),
        };
        Ok((
            Self {
                cfg,
                control,
                desired_set,
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
        let publisher = Publisher::new(
            self.pulsar,
            Source::Kraken,
            &[TickKind::Trade, TickKind::Quote],
            self.metrics.publisher.clone(),
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
        if let Some(control) = self.control {
            let instance_id = control::instance_id(Source::Kraken);
            let board = reports_board;
            supervisor.spawn(
                "status reports",
                control::report_status(
                    reports_pulsar,
                    Source::Kraken,
                    instance_id.clone(),
                    move || status_reports(&board),
                    shutdown.clone(),
                ),
            );
            supervisor.spawn(
                "assignment watch",
                control::follow_assignments(
                    control,
                    Source::Kraken,
                    instance_id,
                    self.cfg.reconnect.clone(),
                    self.desired_set,
                    self.handovers_tx,
                    shutdown.clone(),
                ),
            );
        }
        supervisor.wait_until(shutdown.cancelled_owned()).await
    }
}
