//! `oanda-ingester`: OANDA v20 pricing stream → Pulsar, aware of the forex week.
//!
//! Every `PRICE` line becomes a quote tick on
//! `persistent://market-data/realtime/oanda.<slug>.quote`: the best bid and ask with their
//! liquidity, exact decimals from OANDA's strings, OANDA's time with its nanoseconds, our
//! receive time, and a unique key (time plus a sequence among distinct prices at that time).
//! Prices OANDA flags as not tradeable are kept and marked indicative. Every interval of an
//! outage during market hours is published as a gap message on the same topic.
//!
//! # Layout
//!
//! - [`oanda`]: the venue: wire types, the line parser ([`oanda::parse`], pure, fuzzed) and
//!   instrument names ([`oanda::instruments`]).
//! - [`lines`]: reassembling lines from HTTP chunks, with a length cap.
//! - [`session`]: quotes numbered and repeats dropped, gaps clipped to market hours, status. Pure.
//! - `feed`: the HTTP stream and its replacement for ever (coalesced instrument changes,
//!   make-before-break switches, stale watchdog, 401/403/429/400/5xx handling, backoff).
//! - the publisher (`tickflow_ingest::publisher`, shared with the Kraken ingester).
//! - [`config`], [`metrics`].
//!
//! # Data flow and its bounds
//!
//! stream → lines → parse → session → queue (`queue.capacity`, full ⇒ the reader waits) →
//! publisher (`queue.max_in_flight` unacknowledged sends) → Pulsar.

pub mod config;
mod feed;
pub mod lines;
pub mod metrics;
pub mod oanda;
pub mod session;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use prometheus_client::registry::Registry;
use tickflow_calendar::{ForexCalendar, MarketHours};
use tickflow_ingest::config::LoadedControl;
use tickflow_ingest::{DesiredSymbols, Handover, Publisher, control};
use tickflow_pulsar::{PulsarClient, PulsarError};
use tickflow_runtime::CancellationToken;
use tickflow_runtime::admin::{AdminError, AdminServer, Health};
use tickflow_runtime::supervisor::{Supervisor, SupervisorError};
use tickflow_schema::{Source, Symbol, SymbolError, TickKind, UnixNanos};
use tokio::sync::mpsc;

pub use config::Config;
pub use metrics::Metrics;
pub use session::{StatusBoard, SymbolStatus};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A configured instrument is not valid.
    #[error("invalid instrument in oanda.instruments: {0}")]
    Symbol(#[from] SymbolError),
    /// Pulsar is unreachable or refused us.
    #[error(transparent)]
    Pulsar(#[from] PulsarError),
    /// The admin server could not bind.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// A setting is missing or unusable.
    #[error("invalid setting: {0}")]
    Config(String),
}

/// Changes what the running ingester streams, and reports per-instrument status.
#[derive(Debug, Clone)]
pub struct IngesterHandle {
    desired: DesiredSymbols,
    handovers: mpsc::Sender<Handover>,
    board: StatusBoard,
    admin_addr: SocketAddr,
}

impl IngesterHandle {
    /// Replaces the whole instrument set (what the control plane's assignment stream sends).
    /// Changes arriving within `oanda.coalesce_ms` of each other cost one stream switch.
    pub fn set_symbols(&self, symbols: impl IntoIterator<Item = Symbol>) {
        self.desired.set(symbols);
    }

    /// Adds one instrument.
    pub fn add(&self, symbol: Symbol) {
        self.desired.add(symbol);
    }

    /// Removes one instrument.
    pub fn remove(&self, symbol: &Symbol) {
        self.desired.remove(symbol);
    }

    /// Notes an instrument taken over from another replica: its data may be missing since
    /// `since`, and a HANDOVER gap is recorded (for market hours) up to this replica's stream.
    pub fn note_handover(&self, symbol: Symbol, since: UnixNanos, previous_owner: String) {
        let note = Handover {
            symbol,
            since,
            previous_owner,
        };
        if self.handovers.try_send(note).is_err() {
            tracing::warn!("handover notes are backing up; one was not recorded");
        }
    }

    /// The wanted instrument set.
    pub fn symbols(&self) -> BTreeSet<Symbol> {
        self.desired.get()
    }

    /// What is known about one instrument.
    pub fn status(&self, symbol: &Symbol) -> Option<SymbolStatus> {
        self.board
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(symbol)
            .cloned()
    }

    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }
}

/// What the board says of each instrument, as the control plane's status report wants it.
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
    endpoint: feed::Endpoint,
    client: reqwest::Client,
    control: Option<LoadedControl>,
    desired_set: DesiredSymbols,
    handovers_tx: mpsc::Sender<Handover>,
    handovers: mpsc::Receiver<Handover>,
    admin: AdminServer,
    health: Health,
    pulsar: PulsarClient,
    metrics: Metrics,
    board: StatusBoard,
    calendar: MarketHours,
}

/// An OANDA account id is `{site}-{division}-{user}-{account}`: digits and dashes. Anything
/// else would change the request path.
fn valid_account(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl Ingester {
    /// Validates the config (the token and account must be set), connects to Pulsar (bounded:
    /// an unreachable broker is an error that says so) and binds the admin server (port 0
    /// picks a free port: see [`IngesterHandle::admin_addr`]).
    pub async fn build(cfg: Config) -> Result<(Self, IngesterHandle), StartError> {
        Self::build_with_calendar(cfg, MarketHours::Forex(ForexCalendar::standard())).await
    }

    /// [`build`](Self::build) with another calendar (tests: [`MarketHours::AlwaysOpen`], or a
    /// forex week they can reason about).
    pub async fn build_with_calendar(
        cfg: Config,
        calendar: MarketHours,
    ) -> Result<(Self, IngesterHandle), StartError> {
        let symbols: BTreeSet<Symbol> = cfg.oanda.instruments()?.into_iter().collect();
        for s in &symbols {
            oanda::instruments::venue_name(s).map_err(|e| StartError::Config(e.to_string()))?;
        }
        if cfg.queue.capacity == 0 {
            return Err(StartError::Config(
                "queue.capacity must be at least 1".into(),
            ));
        }
        let base = cfg.oanda.stream_url().to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(StartError::Config(format!(
                "oanda.stream_url must be an http:// or https:// URL, not {base:?}"
            )));
        }
        let token =
            cfg.oanda.token.clone().ok_or_else(|| {
                StartError::Config("no OANDA token: set OANDA_API_TOKEN".to_owned())
            })?;
        let account = cfg.oanda.account_id.clone().ok_or_else(|| {
            StartError::Config("no OANDA account: set OANDA_ACCOUNT_ID".to_owned())
        })?;
        if !valid_account(account.expose()) {
            return Err(StartError::Config(
                "OANDA_ACCOUNT_ID must look like 101-004-1234567-001 (letters, digits, dashes)"
                    .to_owned(),
            ));
        }
        let control = cfg.control.load().map_err(StartError::Config)?;
        let client = reqwest::Client::builder()
            .connect_timeout(config::OandaConfig::ms(cfg.oanda.connect_timeout_ms))
            .tcp_keepalive(std::time::Duration::from_secs(30))
            .user_agent(concat!(
                "tickflow-oanda-ingester/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| StartError::Config(format!("cannot build the HTTP client: {e}")))?;
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let health = Health::new();
        let pulsar = PulsarClient::connect(&cfg.pulsar, "oanda-ingester").await?;
        control::ensure_layout(&cfg.pulsar.admin_url).await;
        let admin =
            AdminServer::bind(cfg.runtime.admin.listen, Arc::new(registry), health.clone()).await?;
        let desired_set = DesiredSymbols::new(symbols);
        let (handovers_tx, handovers) = mpsc::channel(1024);
        let board: StatusBoard = Arc::new(Mutex::new(Default::default()));
        let handle = IngesterHandle {
            desired: desired_set.clone(),
            handovers: handovers_tx.clone(),
            board: board.clone(),
            admin_addr: admin.local_addr(),
        };
        let endpoint = feed::Endpoint {
            base,
            account,
            token,
            snapshot: cfg.oanda.snapshot,
            connect_timeout: config::OandaConfig::ms(cfg.oanda.connect_timeout_ms),
        };
        Ok((
            Self {
                cfg,
                endpoint,
                client,
                control,
                desired_set,
                handovers_tx,
                handovers,
                admin,
                health,
                pulsar,
                metrics,
                board,
                calendar,
            },
            handle,
        ))
    }

    /// Runs until `shutdown` is cancelled (then drains: every queued tick is published and
    /// acknowledged, or the drain deadline passes) or a task fails.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), SupervisorError> {
        let feed_ready = self.health.register("oanda stream");
        let publisher_ready = self.health.register("pulsar producers");
        let (queue_tx, queue_rx) = mpsc::channel(self.cfg.queue.capacity);
        let mut supervisor = Supervisor::new(shutdown.clone())
            .with_drain_timeout(self.cfg.runtime.shutdown.drain_timeout());
        supervisor.spawn("admin server", self.admin.serve(shutdown.clone()));
        let publisher = Publisher::new(
            self.pulsar.clone(),
            Source::Oanda,
            &[TickKind::Quote],
            self.metrics.publisher.clone(),
            publisher_ready,
            self.cfg.queue.max_in_flight,
            shutdown.clone(),
        );
        supervisor.spawn("pulsar publisher", publisher.run(queue_rx));
        let feed = feed::Feed {
            session: session::Session::new(self.calendar, self.metrics.clone(), self.board.clone()),
            cfg: Arc::new(self.cfg.oanda.clone()),
            endpoint: self.endpoint,
            client: self.client,
            backoff: self.cfg.reconnect.clone(),
            desired: self.desired_set.subscribe(),
            handovers: self.handovers,
            queue: queue_tx,
            metrics: self.metrics,
            ready: feed_ready,
            shutdown: shutdown.clone(),
        };
        supervisor.spawn("oanda feed", feed.run());
        if let Some(control) = self.control {
            let instance_id = control::instance_id(Source::Oanda);
            let board = self.board;
            supervisor.spawn(
                "status reports",
                control::report_status(
                    self.pulsar,
                    Source::Oanda,
                    instance_id.clone(),
                    move || status_reports(&board),
                    shutdown.clone(),
                ),
            );
            supervisor.spawn(
                "assignment watch",
                control::follow_assignments(
                    control,
                    Source::Oanda,
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
