//! `tickctl`: the control plane from the command line.
//!
//! ```text
//! tickctl symbols add BTC/USD --source kraken
//! tickctl symbols add EUR/USD --source oanda --source dukascopy --since 2024-01-01
//! tickctl symbols list | show BTC/USD | remove BTC/USD
//! tickctl backfill start EUR/USD --from 2024-01-01 --to 2024-02-01
//! tickctl backfill status <id> [--watch] | list | cancel <id>
//! tickctl backfill fill-gaps EUR/USD --from 2024-01-01 --to 2024-02-01
//! ```
//!
//! Tables for people, `--json` for scripts. Exit codes: 0 done, 2 bad input (the server's
//! `INVALID_ARGUMENT`, or a usage error), 3 not found, 4 unauthenticated, 5 unavailable, 1
//! anything else.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tickflow_control::proto;
use tickflow_control::proto::backfill_service_client::BackfillServiceClient;
use tickflow_control::proto::symbol_service_client::SymbolServiceClient;
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// tickflow's command-line client.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The control plane's gRPC endpoint.
    #[arg(
        long,
        env = "TICKFLOW_ENDPOINT",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    endpoint: String,
    /// The API token (never printed).
    #[arg(
        long,
        env = "TICKFLOW_API_TOKEN",
        hide_env_values = true,
        global = true
    )]
    token: Option<String>,
    /// The control plane's HTTP endpoint (live ticks for `tail`).
    #[arg(
        long,
        env = "TICKFLOW_HTTP_ENDPOINT",
        default_value = "http://127.0.0.1:9100",
        global = true
    )]
    http_endpoint: String,
    /// PEM certificate authority to trust for an `https://` endpoint (default: the web PKI).
    #[arg(long, env = "TICKFLOW_CA_CERT", global = true)]
    ca_cert: Option<std::path::PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Symbols: add, remove, list, show.
    #[command(subcommand)]
    Symbols(Symbols),
    /// Backfills: start, status, list, cancel, fill-gaps.
    #[command(subcommand)]
    Backfill(Backfill),
    /// Live ticks of a symbol as they arrive.
    Tail {
        symbol: String,
        /// Only this source (default: the live ones).
        #[arg(long)]
        source: Option<String>,
        /// Stop after this many ticks.
        #[arg(long)]
        count: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
enum Symbols {
    /// Register a symbol for sources; its topics are created and an ingester picks it up.
    Add {
        symbol: String,
        /// kraken, oanda, dukascopy (repeat for several).
        #[arg(long = "source", required = true)]
        sources: Vec<String>,
        /// History start (YYYY-MM-DD) for sources with history.
        #[arg(long)]
        since: Option<String>,
    },
    /// Stop ingesting a symbol (from the given sources, or all). Stored data stays.
    Remove {
        symbol: String,
        #[arg(long = "source")]
        sources: Vec<String>,
    },
    /// Every registered symbol, with the replica serving it.
    List {
        /// Only symbols of this source.
        #[arg(long)]
        source: Option<String>,
    },
    /// One symbol in detail.
    Show { symbol: String },
}

#[derive(Debug, Subcommand)]
enum Backfill {
    /// Queue a backfill of [from, to).
    Start {
        symbol: String,
        #[arg(long, default_value = "dukascopy")]
        source: String,
        /// YYYY-MM-DD or RFC 3339.
        #[arg(long)]
        from: String,
        /// YYYY-MM-DD or RFC 3339 (exclusive).
        #[arg(long)]
        to: String,
    },
    /// A job's progress; `--watch` follows it with a progress bar until it ends.
    Status {
        id: String,
        #[arg(long)]
        watch: bool,
    },
    /// Jobs, newest first.
    List {
        #[arg(long)]
        symbol: Option<String>,
    },
    /// Cancel a job.
    Cancel { id: String },
    /// Queue again exactly the hours of [from, to) whose coverage is `missing`.
    FillGaps {
        symbol: String,
        /// A source with history.
        #[arg(long, default_value = "dukascopy")]
        source: String,
        /// YYYY-MM-DD or RFC 3339.
        #[arg(long)]
        from: String,
        /// YYYY-MM-DD or RFC 3339 (exclusive).
        #[arg(long)]
        to: String,
    },
}

type Injector =
    Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>;

struct Clients {
    symbols: SymbolServiceClient<InterceptedService<Channel, Injector>>,
    backfills: BackfillServiceClient<InterceptedService<Channel, Injector>>,
}

async fn connect(cli: &Cli) -> Result<Clients, Failure> {
    let token = cli.token.clone().unwrap_or_default();
    let value: MetadataValue<_> = format!("Bearer {token}")
        .parse()
        .map_err(|_| Failure::usage("the token holds characters a header cannot carry"))?;
    let mut endpoint = Channel::from_shared(cli.endpoint.clone())
        .map_err(|e| Failure::usage(format!("bad endpoint {:?}: {e}", cli.endpoint)))?
        .connect_timeout(Duration::from_secs(5));
    if cli.endpoint.starts_with("https://") {
        let mut tls = tonic::transport::ClientTlsConfig::new().with_webpki_roots();
        if let Some(path) = &cli.ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| Failure::usage(format!("TLS settings: {e}")))?;
    }
    let channel = endpoint.connect().await.map_err(|e| Failure {
        code: 5,
        message: format!("cannot reach the control plane at {}: {e}", cli.endpoint),
    })?;
    let inject = |value: MetadataValue<_>| -> Injector {
        Box::new(move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert("authorization", value.clone());
            Ok(r)
        })
    };
    Ok(Clients {
        symbols: SymbolServiceClient::with_interceptor(channel.clone(), inject(value.clone())),
        backfills: BackfillServiceClient::with_interceptor(channel, inject(value)),
    })
}

/// A failed command: what to print and the exit code.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        let code = match s.code() {
            Code::InvalidArgument | Code::FailedPrecondition => 2,
            Code::NotFound => 3,
            Code::Unauthenticated | Code::PermissionDenied => 4,
            Code::Unavailable | Code::DeadlineExceeded => 5,
            _ => 1,
        };
        Self {
            code,
            message: s.message().to_owned(),
        }
    }
}

fn symbol_json(s: &proto::SymbolInfo) -> serde_json::Value {
    serde_json::json!({
        "symbol": s.symbol,
        "created_at": s.created_at,
        "sources": s.sources.iter().map(|x| serde_json::json!({
            "source": x.source,
            "owner": x.owner,
            "history_start": x.history_start,
            "last_tick_at": x.last_tick_at,
            "last_error": x.last_error,
        })).collect::<Vec<_>>(),
    })
}

fn job_json(j: &proto::BackfillJob) -> serde_json::Value {
    serde_json::json!({
        "id": j.id, "symbol": j.symbol, "source": j.source, "from": j.from, "to": j.to,
        "state": state_name(j.state), "hours_total": j.hours_total, "hours_done": j.hours_done,
        "hours_failed": j.hours_failed, "hours_missing": j.hours_missing,
        "eta_seconds": j.eta_seconds, "created_at": j.created_at,
    })
}

fn state_name(s: i32) -> &'static str {
    match proto::BackfillState::try_from(s) {
        Ok(proto::BackfillState::Queued) => "queued",
        Ok(proto::BackfillState::Running) => "running",
        Ok(proto::BackfillState::Done) => "done",
        Ok(proto::BackfillState::Cancelled) => "cancelled",
        Ok(proto::BackfillState::Failed) => "failed",
        _ => "unknown",
    }
}

fn print_symbols(symbols: &[proto::SymbolInfo]) {
    println!(
        "{:<24} {:<10} {:<32} {:<12}",
        "SYMBOL", "SOURCE", "OWNER", "HISTORY"
    );
    for s in symbols {
        for x in &s.sources {
            let owner = if x.owner.is_empty() { "-" } else { &x.owner };
            let history = if x.history_start.is_empty() {
                "-"
            } else {
                &x.history_start
            };
            println!(
                "{:<24} {:<10} {:<32} {:<12}",
                s.symbol, x.source, owner, history
            );
        }
    }
}

/// One job, as JSON or as a line.
fn show_job(json: bool, j: &proto::BackfillJob) {
    if json {
        println!("{}", job_json(j));
    } else {
        print_job(j);
    }
}

fn print_job(j: &proto::BackfillJob) {
    println!(
        "{}  {} {}  {} .. {}  {}  {}/{} hours done, {} missing, {} failed{}",
        j.id,
        j.symbol,
        j.source,
        j.from,
        j.to,
        state_name(j.state),
        j.hours_done,
        j.hours_total,
        j.hours_missing,
        j.hours_failed,
        if j.eta_seconds > 0 {
            format!(", ETA {}s", j.eta_seconds)
        } else {
            String::new()
        }
    );
}

fn fill_gaps_json(r: &proto::FillGapsResponse) -> serde_json::Value {
    serde_json::json!({
        "job_id": r.job_id,
        "hours": r.hours,
        "ranges": r.ranges.iter().map(|x| serde_json::json!({"from": x.from, "to": x.to}))
            .collect::<Vec<_>>(),
    })
}

fn print_fill_gaps(r: &proto::FillGapsResponse) {
    let plural = if r.hours == 1 { "" } else { "s" };
    if r.job_id.is_empty() {
        println!("enqueued {} missing hour{plural}", r.hours);
        return;
    }
    println!(
        "enqueued {} missing hour{plural} (job {})",
        r.hours, r.job_id
    );
    println!("{:<22} {:<22}", "FROM", "TO");
    for x in &r.ranges {
        println!("{:<22} {:<22}", x.from, x.to);
    }
}

/// One tick event as a line for people.
fn tick_line(v: &serde_json::Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
    match v["kind"].as_str() {
        Some("trade") => format!(
            "{}  {} {:<6} trade {:<4} {} @ {}  #{}",
            s("time"),
            s("symbol"),
            s("source"),
            s("side"),
            s("size"),
            s("price"),
            s("trade_id")
        ),
        Some("quote") => format!(
            "{}  {} {:<6} quote {} x {}  /  {} x {}",
            s("time"),
            s("symbol"),
            s("source"),
            s("bid"),
            s("bid_size"),
            s("ask"),
            s("ask_size")
        ),
        Some("gap") => format!(
            "GAP {} .. {}  {} {}: {}",
            s("from"),
            s("to"),
            s("symbol"),
            s("source"),
            s("detail")
        ),
        _ => v.to_string(),
    }
}

async fn tail(
    cli: &Cli,
    symbol: &str,
    source: Option<&str>,
    count: Option<u64>,
) -> Result<(), Failure> {
    use futures::StreamExt as _;
    use reqwest_eventsource::{Event, EventSource};
    let mut url = reqwest::Url::parse(&format!(
        "{}/v1/tail",
        cli.http_endpoint.trim_end_matches('/')
    ))
    .map_err(|e| Failure::usage(format!("bad HTTP endpoint {:?}: {e}", cli.http_endpoint)))?;
    url.query_pairs_mut().append_pair("symbol", symbol);
    if let Some(source) = source {
        url.query_pairs_mut().append_pair("source", source);
    }
    let request = reqwest::Client::new()
        .get(url)
        .bearer_auth(cli.token.clone().unwrap_or_default());
    let mut events =
        EventSource::new(request).map_err(|e| Failure::usage(format!("cannot stream: {e}")))?;
    let mut seen = 0u64;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Open) => {}
            Ok(Event::Message(m)) => {
                if cli.json {
                    println!("{}", m.data);
                } else {
                    let v: serde_json::Value = serde_json::from_str(&m.data).unwrap_or_default();
                    println!("{}", tick_line(&v));
                }
                seen += 1;
                if count.is_some_and(|n| seen >= n) {
                    events.close();
                    return Ok(());
                }
            }
            Err(reqwest_eventsource::Error::InvalidStatusCode(code, _)) => {
                events.close();
                return Err(Failure {
                    code: match code.as_u16() {
                        400 => 2,
                        401 | 403 => 4,
                        404 => 3,
                        _ => 5,
                    },
                    message: format!("the control plane answered {code}"),
                });
            }
            Err(e) => {
                events.close();
                return Err(Failure {
                    code: 5,
                    message: format!("the live stream ended: {e}"),
                });
            }
        }
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Tail {
        symbol,
        source,
        count,
    } = &cli.command
    {
        return tail(&cli, symbol, source.as_deref(), *count).await;
    }
    let mut c = connect(&cli).await?;
    match &cli.command {
        Command::Symbols(Symbols::Add {
            symbol,
            sources,
            since,
        }) => {
            let r = c
                .symbols
                .add_symbol(proto::AddSymbolRequest {
                    symbol: symbol.clone(),
                    sources: sources.clone(),
                    history_start: since.clone().unwrap_or_default(),
                })
                .await?
                .into_inner();
            if cli.json {
                let info = r.symbol.as_ref().map(symbol_json).unwrap_or_default();
                println!(
                    "{}",
                    serde_json::json!({
                        "symbol": info, "already_existed": r.already_existed, "topics": r.topics,
                        "backfill_job_id": r.backfill_job_id,
                    })
                );
            } else {
                if r.already_existed {
                    println!(
                        "{} was already registered for {}",
                        symbol.to_uppercase(),
                        sources.join(", ")
                    );
                } else {
                    println!(
                        "added {} for {}; topics:",
                        symbol.to_uppercase(),
                        sources.join(", ")
                    );
                    for t in &r.topics {
                        println!("  {t}");
                    }
                }
                if !r.backfill_job_id.is_empty() {
                    println!(
                        "history backfill started: job {} (tickctl backfill status {} --watch)",
                        r.backfill_job_id, r.backfill_job_id
                    );
                }
            }
        }
        Command::Symbols(Symbols::Remove { symbol, sources }) => {
            let r = c
                .symbols
                .remove_symbol(proto::RemoveSymbolRequest {
                    symbol: symbol.clone(),
                    sources: sources.clone(),
                })
                .await?
                .into_inner();
            if cli.json {
                println!("{}", serde_json::json!({"removed": r.removed}));
            } else if r.removed {
                println!("removed {}", symbol.to_uppercase());
            } else {
                return Err(Failure {
                    code: 3,
                    message: format!("{} was not registered", symbol.to_uppercase()),
                });
            }
        }
        Command::Symbols(Symbols::List { source }) => {
            let mut all = Vec::new();
            let mut token = String::new();
            loop {
                let page = c
                    .symbols
                    .list_symbols(proto::ListSymbolsRequest {
                        source: source.clone().unwrap_or_default(),
                        page_size: 10_000,
                        page_token: token.clone(),
                    })
                    .await?
                    .into_inner();
                all.extend(page.symbols);
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
            if cli.json {
                println!(
                    "{}",
                    serde_json::Value::Array(all.iter().map(symbol_json).collect())
                );
            } else {
                print_symbols(&all);
            }
        }
        Command::Symbols(Symbols::Show { symbol }) => {
            let s = c
                .symbols
                .get_symbol(proto::GetSymbolRequest {
                    symbol: symbol.clone(),
                })
                .await?
                .into_inner();
            if cli.json {
                println!("{}", symbol_json(&s));
            } else {
                print_symbols(std::slice::from_ref(&s));
            }
        }
        Command::Backfill(Backfill::Start {
            symbol,
            source,
            from,
            to,
        }) => {
            let j = c
                .backfills
                .start_backfill(proto::StartBackfillRequest {
                    symbol: symbol.clone(),
                    source: source.clone(),
                    from: from.clone(),
                    to: to.clone(),
                })
                .await?
                .into_inner();
            show_job(cli.json, &j);
        }
        Command::Backfill(Backfill::Status { id, watch }) => {
            let get = proto::GetBackfillRequest { id: id.clone() };
            let mut j = c.backfills.get_backfill(get.clone()).await?.into_inner();
            if *watch && !cli.json {
                let bar = indicatif::ProgressBar::new(u64::from(j.hours_total));
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{msg} [{bar:40}] {pos}/{len} hours, ETA {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                loop {
                    bar.set_position(u64::from(j.hours_done + j.hours_missing + j.hours_failed));
                    bar.set_message(format!("{} {}", j.symbol, state_name(j.state)));
                    if !matches!(state_name(j.state), "queued" | "running") {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    j = c.backfills.get_backfill(get.clone()).await?.into_inner();
                }
                bar.finish();
            }
            show_job(cli.json, &j);
        }
        Command::Backfill(Backfill::List { symbol }) => {
            let r = c
                .backfills
                .list_backfills(proto::ListBackfillsRequest {
                    symbol: symbol.clone().unwrap_or_default(),
                })
                .await?
                .into_inner();
            if cli.json {
                println!(
                    "{}",
                    serde_json::Value::Array(r.jobs.iter().map(job_json).collect())
                );
            } else {
                for j in &r.jobs {
                    print_job(j);
                }
            }
        }
        Command::Backfill(Backfill::FillGaps {
            symbol,
            source,
            from,
            to,
        }) => {
            let r = c
                .backfills
                .fill_gaps(proto::FillGapsRequest {
                    symbol: symbol.clone(),
                    source: source.clone(),
                    from: from.clone(),
                    to: to.clone(),
                })
                .await?
                .into_inner();
            if cli.json {
                println!("{}", fill_gaps_json(&r));
            } else {
                print_fill_gaps(&r);
            }
        }
        Command::Tail { .. } => {}
        Command::Backfill(Backfill::Cancel { id }) => {
            let j = c
                .backfills
                .cancel_backfill(proto::CancelBackfillRequest { id: id.clone() })
                .await?
                .into_inner();
            show_job(cli.json, &j);
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("tickctl: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
