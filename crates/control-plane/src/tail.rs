//! `GET /v1/tail?symbol=BTC/USD[&source=kraken]` on the control plane's HTTP port: the live
//! ticks of a symbol as Server-Sent Events, one JSON object per event (what `tickctl tail`
//! shows). Needs the same bearer token as the gRPC API. Each request reads the symbol's topics
//! with a non-durable reader from now on: nothing is left on the broker when it ends.

use std::collections::HashMap;
use std::convert::Infallible;

use futures::Stream;
use tickflow_pulsar::PulsarClient;
use tickflow_runtime::axum::Router;
use tickflow_runtime::axum::extract::{Query, State as AxumState};
use tickflow_runtime::axum::http::{HeaderMap, StatusCode};
use tickflow_runtime::axum::response::sse::{Event, KeepAlive, Sse};
use tickflow_runtime::axum::response::{IntoResponse, Response};
use tickflow_runtime::axum::routing::get;
use tickflow_runtime::config::SecretString;
use tickflow_schema::{Side, Source, Tick};

use crate::service::topics_of;
use crate::validate;

#[derive(Clone)]
struct TailState {
    pulsar: PulsarClient,
    token: SecretString,
}

/// The routes to merge into the admin server.
pub fn routes(pulsar: PulsarClient, token: SecretString) -> Router {
    Router::new()
        .route("/v1/tail", get(tail))
        .with_state(TailState { pulsar, token })
}

/// One tick as the JSON of a tail event.
pub fn tick_json(tick: &Tick) -> serde_json::Value {
    match tick {
        Tick::Trade(t) => serde_json::json!({
            "kind": "trade", "source": t.source.as_str(), "symbol": t.symbol.as_str(),
            "time": t.event_time.format_rfc3339(6), "price": t.price.to_string(),
            "size": t.size.to_string(),
            "side": match t.side { Side::Buy => "buy", Side::Sell => "sell", Side::Unknown => "unknown" },
            "trade_id": t.trade_id.as_str(),
        }),
        Tick::Quote(q) => serde_json::json!({
            "kind": "quote", "source": q.source.as_str(), "symbol": q.symbol.as_str(),
            "time": q.event_time.format_rfc3339(6), "bid": q.bid.to_string(), "ask": q.ask.to_string(),
            "bid_size": q.bid_size.to_string(), "ask_size": q.ask_size.to_string(),
        }),
        Tick::Gap(g) => serde_json::json!({
            "kind": "gap", "source": g.source.as_str(), "symbol": g.symbol.as_str(),
            "from": g.from.format_rfc3339(6), "to": g.to.format_rfc3339(6), "detail": g.detail,
        }),
        Tick::Coverage(c) => serde_json::json!({
            "kind": "coverage", "source": c.source.as_str(), "symbol": c.symbol.as_str(),
            "hour": c.hour.format_rfc3339(0), "status": c.status.as_str(), "ticks": c.ticks,
        }),
    }
}

async fn tail(
    AxumState(state): AxumState<TailState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| crate::server::token_matches(t, &state.token));
    if !authorized {
        return (StatusCode::UNAUTHORIZED, "a bearer token is required\n").into_response();
    }
    let symbol = match validate::symbol(params.get("symbol").map_or("", String::as_str)) {
        Ok(s) => s,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{}\n", e.message())).into_response(),
    };
    let sources: Vec<Source> = match params.get("source") {
        Some(s) => match validate::source(s) {
            Ok(s) => vec![s],
            Err(e) => {
                return (StatusCode::BAD_REQUEST, format!("{}\n", e.message())).into_response();
            }
        },
        None => vec![Source::Kraken, Source::Oanda],
    };
    let topics = sources
        .iter()
        .flat_map(|s| topics_of(&symbol, *s))
        .collect();
    let reader = match state.pulsar.tick_reader(topics).await {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read from Pulsar: {e}\n"),
            )
                .into_response();
        }
    };
    let events = futures::stream::unfold(reader, |mut reader| async move {
        loop {
            match reader.next().await? {
                Ok(d) => match &d.tick {
                    Ok(tick) => {
                        let event = Event::default().data(tick_json(tick).to_string());
                        return Some((Ok::<Event, Infallible>(event), reader));
                    }
                    Err(_) => continue,
                },
                Err(_) => continue,
            }
        }
    });
    sse(events).into_response()
}

fn sse(
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + Send + 'static> {
    Sse::new(events).keep_alive(KeepAlive::default())
}
