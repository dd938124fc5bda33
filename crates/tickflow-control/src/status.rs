//! Ingester status reports on `persistent://market-data/control/ingester-status`: replicas
//! publish what they know about their symbols; the control plane keeps the latest per symbol.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prost::Message as _;
use tickflow_schema::UnixNanos;

use crate::proto;

/// The topic's local name in the `control` namespace.
pub const TOPIC: &str = "ingester-status";

/// What the control plane knows of one (source, symbol).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    /// Replica that reported last.
    pub instance: String,
    /// Receive time of the last tick.
    pub last_tick: Option<UnixNanos>,
    /// Ticks per second over the last two reports.
    pub ticks_per_second: f64,
    /// The venue's last error.
    pub last_error: String,
    ticks: u64,
    at: i64,
}

/// The latest reports, by (source, symbol).
#[derive(Debug, Clone, Default)]
pub struct LiveBoard {
    inner: Arc<Mutex<HashMap<(String, String), Live>>>,
}

impl LiveBoard {
    /// Takes one encoded report; a payload that is not one is ignored.
    pub fn apply(&self, payload: &[u8]) {
        let Ok(report) = proto::IngesterStatus::decode(payload) else {
            return;
        };
        let mut map = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for s in report.symbols {
            let key = (report.source.clone(), s.symbol.clone());
            let entry = map.entry(key).or_default();
            let dt_ns = report.at_ns - entry.at;
            let rate =
                if entry.instance == report.instance_id && dt_ns > 0 && s.ticks >= entry.ticks {
                    // Integer ticks per millisecond scaled, then one division in f64 for display.
                    let per_second = (s.ticks - entry.ticks).saturating_mul(1_000_000)
                        / u64::try_from(dt_ns / 1_000).unwrap_or(1).max(1);
                    Some(per_second)
                } else {
                    None
                };
            entry.instance = report.instance_id.clone();
            entry.last_tick = (s.last_tick_ns > 0).then_some(UnixNanos(s.last_tick_ns));
            if let Some(per) = rate {
                entry.ticks_per_second = per as f64;
            }
            entry.last_error = s.last_error;
            entry.ticks = s.ticks;
            entry.at = report.at_ns;
        }
    }

    /// The latest for one (source, symbol).
    pub fn get(&self, source: &str, symbol: &str) -> Option<Live> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(source.to_owned(), symbol.to_owned()))
            .cloned()
    }
}
