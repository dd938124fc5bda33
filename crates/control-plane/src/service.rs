//! The gRPC services: symbols and assignments.
//!
//! `AddSymbol` validates, creates the Pulsar topics of every requested source, and only then
//! writes the rows: if Pulsar's admin API is down the call fails with `UNAVAILABLE` and nothing
//! is written (the reconcile loop re-creates topics that go missing later). Errors map to gRPC
//! codes in one place, [`status`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::Stream;
use tickflow_pulsar::admin::{AdminClient, AdminError};
use tickflow_pulsar::{Namespace, TopicName};
use tickflow_schema::{Source, Symbol, TickKind};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::proto;
use crate::store::{Store, StoreError, SymbolRow};
use crate::validate;

/// The topics a (symbol, source) needs.
pub fn topics_of(symbol: &Symbol, source: Source) -> Vec<TopicName> {
    let kinds: &[(Namespace, TickKind)] = match source {
        Source::Kraken => &[
            (Namespace::Realtime, TickKind::Trade),
            (Namespace::Realtime, TickKind::Quote),
        ],
        Source::Oanda => &[(Namespace::Realtime, TickKind::Quote)],
        Source::Dukascopy => &[(Namespace::Historical, TickKind::Quote)],
    };
    kinds
        .iter()
        .filter_map(|(ns, kind)| TopicName::data(*ns, source, symbol, *kind).ok())
        .collect()
}

/// Internal errors → gRPC status, in one place.
pub fn status(e: impl Into<ServiceError>) -> Status {
    match e.into() {
        ServiceError::Store(StoreError::Database(e)) => {
            tracing::warn!(error = %e, "database error");
            Status::unavailable(format!("the control plane's database is unavailable: {e}"))
        }
        ServiceError::Store(e) => Status::internal(e.to_string()),
        ServiceError::Pulsar(e) => Status::unavailable(format!(
            "Pulsar's admin API is unavailable, nothing was changed: {e}"
        )),
    }
}

/// What a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Pulsar's admin API.
    #[error(transparent)]
    Pulsar(#[from] AdminError),
}

/// Per source: the registered symbols and the replicas holding a `Watch` stream.
#[derive(Debug, Default)]
struct SourceState {
    symbols: BTreeSet<Symbol>,
    watchers: BTreeMap<String, watch::Sender<proto::Assignment>>,
    generation: u64,
    /// The owner of every symbol as last pushed.
    owners: BTreeMap<String, String>,
    /// Replicas whose lease ended, and when (ns).
    left: BTreeMap<String, i64>,
}

/// How long a replica may have been dead before its stream was noticed closed (HTTP/2
/// keepalive every 2 s with a 2 s timeout): a handover gap starts this much before.
const DETECTION_NS: i64 = 4_000_000_000;

/// Who owns what, for every source; pushes a replica's full set whenever it changes.
#[derive(Debug, Default)]
pub struct Assignments {
    sources: Mutex<HashMap<Source, SourceState>>,
}

impl Assignments {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Source, SourceState>> {
        self.sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the symbol set of a source and pushes the new assignments.
    pub fn set_symbols(&self, source: Source, symbols: BTreeSet<Symbol>) {
        let mut all = self.lock();
        let state = all.entry(source).or_default();
        if state.symbols != symbols {
            state.symbols = symbols;
            push(state);
        }
    }

    /// Changes a source's symbol set in place (add or remove) and pushes if it changed.
    pub fn update(&self, source: Source, change: impl FnOnce(&mut BTreeSet<Symbol>) -> bool) {
        let mut all = self.lock();
        let state = all.entry(source).or_default();
        if change(&mut state.symbols) {
            push(state);
        }
    }

    /// The owner of a symbol for a source, if a replica is live.
    pub fn owner(&self, source: Source, symbol: &Symbol) -> Option<String> {
        let all = self.lock();
        let state = all.get(&source)?;
        crate::assign::owner(symbol.as_str(), state.watchers.keys().map(String::as_str))
            .map(str::to_owned)
    }

    fn join(
        self: &Arc<Self>,
        source: Source,
        instance: String,
    ) -> watch::Receiver<proto::Assignment> {
        let (tx, rx) = watch::channel(proto::Assignment::default());
        {
            let mut all = self.lock();
            let state = all.entry(source).or_default();
            // A replica reconnecting with the same id replaces its old stream.
            state.watchers.insert(instance.clone(), tx.clone());
            push(state);
        }
        tracing::info!(%source, %instance, "replica joined");
        let me = Arc::clone(self);
        tokio::spawn(async move {
            tx.closed().await;
            let mut all = me.lock();
            if let Some(state) = all.get_mut(&source) {
                // Only if this stream is still the registered one.
                if state
                    .watchers
                    .get(&instance)
                    .is_some_and(|t| t.same_channel(&tx))
                {
                    state.watchers.remove(&instance);
                    state
                        .left
                        .insert(instance.clone(), tickflow_schema::UnixNanos::now().0);
                    push(state);
                    tracing::info!(%source, %instance, "replica left; its symbols move");
                }
            }
        });
        rx
    }
}

/// Recomputes a source's assignment and sends every replica its set (a replica whose set did
/// not change is not woken).
fn push(state: &mut SourceState) {
    state.generation += 1;
    let now = tickflow_schema::UnixNanos::now().0;
    let replicas: BTreeSet<String> = state.watchers.keys().cloned().collect();
    let sets = crate::assign::assign(state.symbols.iter().map(Symbol::as_str), &replicas);
    let live: Vec<String> = replicas.iter().cloned().collect();
    // Symbols whose owner changed: the new owner records a handover gap.
    let mut handovers: BTreeMap<String, Vec<proto::Handover>> = BTreeMap::new();
    let mut owners = BTreeMap::new();
    for (instance, symbols) in &sets {
        for symbol in symbols {
            if let Some(previous) = state.owners.get(symbol)
                && previous != instance
            {
                let since = match state.left.get(previous) {
                    Some(left_at) => left_at - DETECTION_NS,
                    None => now,
                };
                handovers
                    .entry(instance.clone())
                    .or_default()
                    .push(proto::Handover {
                        symbol: symbol.clone(),
                        since_ns: since,
                        previous_owner: previous.clone(),
                    });
            }
            owners.insert(symbol.clone(), instance.clone());
        }
    }
    state.owners = owners;
    state.left.retain(|_, at| now - *at < 60_000_000_000);
    for (instance, tx) in &state.watchers {
        let symbols: Vec<String> = sets
            .get(instance)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        let handed = handovers.remove(instance).unwrap_or_default();
        let generation = state.generation;
        tx.send_if_modified(|a| {
            let changed = a.symbols != symbols || a.replicas != live || a.generation == 0;
            if changed {
                *a = proto::Assignment {
                    symbols: symbols.clone(),
                    generation,
                    replicas: live.clone(),
                    handovers: handed.clone(),
                };
            }
            changed
        });
    }
}

/// Shared by the services.
#[derive(Debug, Clone)]
pub struct State {
    /// The database.
    pub store: Store,
    /// Pulsar's admin API.
    pub admin: AdminClient,
    /// Live assignments.
    pub assignments: Arc<Assignments>,
    /// Where backfill tasks go (`None`: backfills are refused as unavailable).
    pub jobs: Option<crate::backfill::JobQueue>,
    /// What the ingesters last reported per symbol.
    pub live: tickflow_control::status::LiveBoard,
    /// Follow mode's settings and what was queued lately (the loop is [`crate::follow::run`]).
    pub follow: Arc<crate::follow::Follow>,
}

impl State {
    /// Loads every source's symbols into the assignments (at start).
    pub async fn load(&self) -> Result<(), StoreError> {
        for source in [Source::Kraken, Source::Oanda, Source::Dukascopy] {
            let symbols = self.store.symbols_of(source).await?;
            self.assignments.set_symbols(source, symbols);
        }
        Ok(())
    }

    fn info(&self, row: &SymbolRow) -> proto::SymbolInfo {
        proto::SymbolInfo {
            symbol: row.symbol.to_string(),
            sources: row
                .sources
                .iter()
                .map(|s| {
                    let live = self
                        .live
                        .get(s.source.as_str(), row.symbol.as_str())
                        .unwrap_or_default();
                    proto::SourceStatus {
                        source: s.source.as_str().to_owned(),
                        owner: self
                            .assignments
                            .owner(s.source, &row.symbol)
                            .unwrap_or_default(),
                        history_start: s.history_start.map(|d| d.to_string()).unwrap_or_default(),
                        last_tick_at: live
                            .last_tick
                            .map(|t| t.format_rfc3339(6))
                            .unwrap_or_default(),
                        ticks_per_second: live.ticks_per_second,
                        last_error: live.last_error,
                    }
                })
                .collect(),
            created_at: row.created_at.to_rfc3339(),
        }
    }
}

#[tonic::async_trait]
impl proto::symbol_service_server::SymbolService for State {
    async fn add_symbol(
        &self,
        request: Request<proto::AddSymbolRequest>,
    ) -> Result<Response<proto::AddSymbolResponse>, Status> {
        let r = request.into_inner();
        let symbol = validate::symbol(&r.symbol)?;
        let sources = validate::sources(&r.sources)?;
        let history_start = validate::history_start(&r.history_start)?;
        if history_start.is_some() && !sources.contains(&Source::Dukascopy) {
            return Err(Status::invalid_argument(
                "history_start needs a source with history: add dukascopy",
            ));
        }
        // A history start dukascopy did not have, or an earlier one, starts a backfill.
        let backfill_from = match history_start {
            Some(start) if sources.contains(&Source::Dukascopy) => {
                let before = self
                    .store
                    .get(&symbol)
                    .await
                    .map_err(status)?
                    .and_then(|row| {
                        row.sources
                            .into_iter()
                            .find(|s| s.source == Source::Dukascopy)
                    })
                    .and_then(|s| s.history_start);
                before.is_none_or(|b| start < b).then_some(start)
            }
            _ => None,
        };
        // Topics first: if Pulsar is away, nothing is written.
        let mut topics = Vec::new();
        for source in &sources {
            for topic in topics_of(&symbol, *source) {
                self.admin.create_topic(&topic).await.map_err(status)?;
                topics.push(topic.to_string());
            }
        }
        // Then the backfill (before the rows: if it cannot be queued the call fails and a retry
        // still sees the history start as new).
        let mut backfill_job_id = String::new();
        if let Some(start) = backfill_from {
            let lo = crate::follow::history_origin(Some(start), chrono::Utc::now());
            let hi = crate::follow::horizon_end(chrono::Utc::now(), self.follow.config.delay);
            if lo < hi {
                let job = self.enqueue_job(&symbol, Source::Dukascopy, lo, hi).await?;
                self.follow
                    .note(&symbol, (lo..hi).step_by(3_600), std::time::Instant::now());
                backfill_job_id = job.id.to_string();
            }
        }
        let already_existed = self
            .store
            .add(&symbol, &sources, history_start)
            .await
            .map_err(status)?;
        for source in &sources {
            self.assignments
                .update(*source, |set| set.insert(symbol.clone()));
        }
        let row = self
            .store
            .get(&symbol)
            .await
            .map_err(status)?
            .ok_or_else(|| Status::internal("the symbol vanished while being added"))?;
        tracing::info!(symbol = %symbol, ?sources, already_existed, backfill_job = %backfill_job_id, "symbol added");
        Ok(Response::new(proto::AddSymbolResponse {
            symbol: Some(self.info(&row)),
            already_existed,
            topics,
            backfill_job_id,
        }))
    }

    async fn remove_symbol(
        &self,
        request: Request<proto::RemoveSymbolRequest>,
    ) -> Result<Response<proto::RemoveSymbolResponse>, Status> {
        let r = request.into_inner();
        let symbol = validate::symbol(&r.symbol)?;
        let sources: BTreeSet<Source> = r
            .sources
            .iter()
            .map(|s| validate::source(s))
            .collect::<Result<_, _>>()?;
        let removed = self.store.remove(&symbol, &sources).await.map_err(status)?;
        let affected: Vec<Source> = if sources.is_empty() {
            vec![Source::Kraken, Source::Oanda, Source::Dukascopy]
        } else {
            sources.into_iter().collect()
        };
        for source in affected {
            self.assignments.update(source, |set| set.remove(&symbol));
        }
        Ok(Response::new(proto::RemoveSymbolResponse { removed }))
    }

    async fn list_symbols(
        &self,
        request: Request<proto::ListSymbolsRequest>,
    ) -> Result<Response<proto::ListSymbolsResponse>, Status> {
        let r = request.into_inner();
        let source = if r.source.is_empty() {
            None
        } else {
            Some(validate::source(&r.source)?)
        };
        let size = match r.page_size {
            0 => 1_000,
            n => n.min(10_000),
        };
        let rows = self
            .store
            .page(source, &r.page_token, size)
            .await
            .map_err(status)?;
        let next_page_token = if rows.len() == size as usize {
            rows.last()
                .map(|r| r.symbol.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(proto::ListSymbolsResponse {
            symbols: rows.iter().map(|r| self.info(r)).collect(),
            next_page_token,
        }))
    }

    async fn get_symbol(
        &self,
        request: Request<proto::GetSymbolRequest>,
    ) -> Result<Response<proto::SymbolInfo>, Status> {
        let symbol = validate::symbol(&request.into_inner().symbol)?;
        match self.store.get(&symbol).await.map_err(status)? {
            Some(row) => Ok(Response::new(self.info(&row))),
            None => Err(Status::not_found(format!("{symbol} is not registered"))),
        }
    }
}

type AssignmentStream = Pin<Box<dyn Stream<Item = Result<proto::Assignment, Status>> + Send>>;

#[tonic::async_trait]
impl proto::assignment_service_server::AssignmentService for State {
    type WatchStream = AssignmentStream;

    async fn watch(
        &self,
        request: Request<proto::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let r = request.into_inner();
        let source = validate::source(&r.source)?;
        let instance = r.instance_id.trim().to_owned();
        if instance.is_empty() || instance.len() > 128 || instance.chars().any(char::is_control) {
            return Err(Status::invalid_argument(
                "instance_id must be 1 to 128 printable characters, unique per replica",
            ));
        }
        let mut rx = self.assignments.join(source, instance);
        rx.mark_changed();
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            let current = rx.borrow_and_update().clone();
            Some((Ok(current), rx))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

fn job_state(s: &str) -> proto::BackfillState {
    match s {
        "queued" => proto::BackfillState::Queued,
        "running" => proto::BackfillState::Running,
        "done" => proto::BackfillState::Done,
        "cancelled" => proto::BackfillState::Cancelled,
        "failed" => proto::BackfillState::Failed,
        _ => proto::BackfillState::Unspecified,
    }
}

fn job_id(input: &str) -> Result<uuid::Uuid, Status> {
    uuid::Uuid::parse_str(input.trim()).map_err(|_| {
        Status::invalid_argument(format!(
            "{:?} is not a backfill job id (a UUID)",
            input.chars().take(40).collect::<String>()
        ))
    })
}

/// Sources with history (dukascopy) pass; the live venues are refused.
fn history_source(source: Source) -> Result<Source, Status> {
    if source == Source::Dukascopy {
        Ok(source)
    } else {
        Err(Status::invalid_argument(format!(
            "{source} has no history to backfill: use dukascopy"
        )))
    }
}

impl State {
    /// `FAILED_PRECONDITION` unless `symbol` is registered for `source`.
    async fn require_registered(&self, symbol: &Symbol, source: Source) -> Result<(), Status> {
        let registered = self
            .store
            .get(symbol)
            .await
            .map_err(status)?
            .is_some_and(|row| row.sources.iter().any(|s| s.source == source));
        if registered {
            Ok(())
        } else {
            Err(Status::failed_precondition(format!(
                "{symbol} is not registered for {source}: tickctl symbols add {symbol} --source {source}"
            )))
        }
    }

    /// Stores a job of `[lo, hi)` (seconds, hour-aligned) and publishes its daily tasks; a job
    /// whose tasks cannot be published is marked failed.
    async fn enqueue_job(
        &self,
        symbol: &Symbol,
        source: Source,
        lo: i64,
        hi: i64,
    ) -> Result<crate::store::JobRow, Status> {
        let Some(queue) = &self.jobs else {
            return Err(Status::unavailable(
                "this control plane has no Pulsar connection for jobs",
            ));
        };
        let id = uuid::Uuid::new_v4();
        let row = crate::store::JobRow {
            id,
            symbol: symbol.to_string(),
            source: source.as_str().to_owned(),
            from_time: chrono::DateTime::from_timestamp(lo, 0).unwrap_or_default(),
            to_time: chrono::DateTime::from_timestamp(hi, 0).unwrap_or_default(),
            state: "queued".to_owned(),
            hours_total: i32::try_from((hi - lo) / 3_600).unwrap_or(i32::MAX),
            created_at: chrono::Utc::now(),
        };
        self.store.insert_job(&row).await.map_err(status)?;
        let tasks = crate::backfill::tasks(&id.to_string(), symbol, source, lo, hi);
        if let Err(e) = queue.publish(&tasks).await {
            self.store
                .set_job_state(id, "failed")
                .await
                .map_err(status)?;
            return Err(e);
        }
        tracing::info!(job = %id, symbol = %symbol, hours = row.hours_total, tasks = tasks.len(), "backfill queued");
        Ok(row)
    }

    /// A job with its progress read from the sink's `coverage` table.
    async fn job_view(&self, row: crate::store::JobRow) -> Result<proto::BackfillJob, Status> {
        let (done, missing) = crate::backfill::progress(
            self.store.pool(),
            &row.symbol,
            &row.source,
            row.from_time,
            row.to_time,
        )
        .await
        .map_err(|e| status(StoreError::Database(e)))?;
        let total = i64::from(row.hours_total);
        let mut state = row.state.clone();
        if (state == "queued" || state == "running") && done + missing >= total {
            state = "done".to_owned();
            self.store
                .set_job_state(row.id, &state)
                .await
                .map_err(status)?;
        } else if state == "queued" && done + missing > 0 {
            state = "running".to_owned();
            self.store
                .set_job_state(row.id, &state)
                .await
                .map_err(status)?;
        }
        let elapsed = (chrono::Utc::now() - row.created_at).num_seconds().max(1);
        let left = (total - done - missing).max(0);
        let eta = if state == "running" && done > 0 {
            u32::try_from(left * elapsed / done).unwrap_or(u32::MAX)
        } else {
            0
        };
        let n = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        Ok(proto::BackfillJob {
            id: row.id.to_string(),
            symbol: row.symbol,
            source: row.source,
            from: row.from_time.to_rfc3339(),
            to: row.to_time.to_rfc3339(),
            state: job_state(&state).into(),
            hours_total: n(total),
            hours_done: n(done),
            hours_failed: 0,
            hours_missing: n(missing),
            eta_seconds: eta,
            created_at: row.created_at.to_rfc3339(),
        })
    }
}

#[tonic::async_trait]
impl proto::backfill_service_server::BackfillService for State {
    async fn start_backfill(
        &self,
        request: Request<proto::StartBackfillRequest>,
    ) -> Result<Response<proto::BackfillJob>, Status> {
        let r = request.into_inner();
        let symbol = validate::symbol(&r.symbol)?;
        let source = history_source(validate::source(&r.source)?)?;
        let from = crate::backfill::instant("from", &r.from)?;
        let to = crate::backfill::instant("to", &r.to)?;
        let (lo, hi) = crate::backfill::hours(from, to)?;
        self.require_registered(&symbol, source).await?;
        let row = self.enqueue_job(&symbol, source, lo, hi).await?;
        let row = self.store.job(row.id).await.map_err(status)?.unwrap_or(row);
        Ok(Response::new(self.job_view(row).await?))
    }

    async fn get_backfill(
        &self,
        request: Request<proto::GetBackfillRequest>,
    ) -> Result<Response<proto::BackfillJob>, Status> {
        let id = job_id(&request.into_inner().id)?;
        match self.store.job(id).await.map_err(status)? {
            Some(row) => Ok(Response::new(self.job_view(row).await?)),
            None => Err(Status::not_found(format!("no backfill job {id}"))),
        }
    }

    async fn list_backfills(
        &self,
        request: Request<proto::ListBackfillsRequest>,
    ) -> Result<Response<proto::ListBackfillsResponse>, Status> {
        let r = request.into_inner();
        let symbol = if r.symbol.is_empty() {
            None
        } else {
            Some(validate::symbol(&r.symbol)?.to_string())
        };
        let rows = self.store.jobs(symbol.as_deref()).await.map_err(status)?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in rows {
            jobs.push(self.job_view(row).await?);
        }
        Ok(Response::new(proto::ListBackfillsResponse { jobs }))
    }

    async fn cancel_backfill(
        &self,
        request: Request<proto::CancelBackfillRequest>,
    ) -> Result<Response<proto::BackfillJob>, Status> {
        let id = job_id(&request.into_inner().id)?;
        let Some(row) = self.store.job(id).await.map_err(status)? else {
            return Err(Status::not_found(format!("no backfill job {id}")));
        };
        if row.state == "queued" || row.state == "running" {
            self.store
                .set_job_state(id, "cancelled")
                .await
                .map_err(status)?;
        }
        let row = self.store.job(id).await.map_err(status)?.unwrap_or(row);
        Ok(Response::new(self.job_view(row).await?))
    }

    async fn fill_gaps(
        &self,
        request: Request<proto::FillGapsRequest>,
    ) -> Result<Response<proto::FillGapsResponse>, Status> {
        let r = request.into_inner();
        let symbol = validate::symbol(&r.symbol)?;
        let source = if r.source.trim().is_empty() {
            Source::Dukascopy
        } else {
            history_source(validate::source(&r.source)?)?
        };
        let from = crate::backfill::instant("from", &r.from)?;
        let to = crate::backfill::instant("to", &r.to)?;
        let (lo, hi) = crate::backfill::hours(from, to)?;
        self.require_registered(&symbol, source).await?;
        let Some(queue) = &self.jobs else {
            return Err(Status::unavailable(
                "this control plane has no Pulsar connection for jobs",
            ));
        };
        let missing = crate::backfill::missing_hours(
            self.store.pool(),
            symbol.as_str(),
            source.as_str(),
            lo,
            hi,
        )
        .await
        .map_err(|e| status(StoreError::Database(e)))?;
        if missing.is_empty() {
            return Ok(Response::new(proto::FillGapsResponse::default()));
        }
        let runs = crate::backfill::runs(&missing);
        let job_id = format!("fill-gaps-{}", uuid::Uuid::new_v4());
        let tasks = crate::backfill::run_tasks(&job_id, &symbol, source, &runs);
        queue.publish(&tasks).await?;
        self.follow
            .note(&symbol, missing.iter().copied(), std::time::Instant::now());
        tracing::info!(job = %job_id, symbol = %symbol, hours = missing.len(), tasks = tasks.len(), "missing hours queued again");
        Ok(Response::new(proto::FillGapsResponse {
            job_id,
            hours: u32::try_from(missing.len()).unwrap_or(u32::MAX),
            ranges: runs
                .iter()
                .map(|&(a, b)| proto::HourRange {
                    from: crate::backfill::rfc3339(a),
                    to: crate::backfill::rfc3339(b),
                })
                .collect(),
        }))
    }
}
