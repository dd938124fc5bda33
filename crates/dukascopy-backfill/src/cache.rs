//! An optional on-disk cache of finished hours: the raw bodies that decoded cleanly, so a rerun
//! of a range does not download them again.
//!
//! - Only bodies that decoded without error are stored (never an HTML page, never a truncated
//!   download), and only for hours that ended at least `min_age` ago: never the hour in
//!   progress, nor a recent one Dukascopy may still publish or complete. An empty answer is
//!   stored only for an hour the calendar says was closed.
//! - Layout: `{dir}/{json|bi5}/{SYM}/{YYYY}/{MM}/{DD}/{HH}.{json|bi5}` with the calendar
//!   (one-based) month. Files are written to a temporary name and renamed, so a crash never
//!   leaves half a file under the final name.
//! - A cached body is decoded again when read; one that no longer decodes is deleted and the
//!   hour downloaded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Datelike as _, Timelike as _, Utc};
use tickflow_schema::UnixNanos;

use crate::config::TransportKind;
use crate::instruments::Instrument;

/// Nanoseconds in an hour.
const HOUR_NS: i64 = 3_600_000_000_000;

/// The cache directory.
#[derive(Debug, Clone)]
pub struct HourCache {
    dir: PathBuf,
    kind: TransportKind,
    min_age: Duration,
}

impl HourCache {
    /// A cache in `dir` for bodies of `kind`.
    pub fn new(dir: &Path, kind: TransportKind, min_age: Duration) -> Self {
        Self {
            dir: dir.to_owned(),
            kind,
            min_age,
        }
    }

    /// Where an hour's body lives.
    pub fn path(&self, instrument: &Instrument, hour: UnixNanos) -> PathBuf {
        let t: DateTime<Utc> = DateTime::from_timestamp_nanos(hour.0);
        self.dir
            .join(self.kind.as_str())
            .join(instrument.datafeed_symbol)
            .join(format!("{:04}", t.year()))
            .join(format!("{:02}", t.month()))
            .join(format!("{:02}", t.day()))
            .join(format!("{:02}.{}", t.hour(), self.kind.as_str()))
    }

    /// Whether an hour is old enough to be stored at `now`.
    pub fn eligible(&self, hour: UnixNanos, now: UnixNanos) -> bool {
        let min_age = i64::try_from(self.min_age.as_nanos()).unwrap_or(i64::MAX);
        hour.0.saturating_add(HOUR_NS).saturating_add(min_age) <= now.0
    }

    /// The stored body, if any.
    pub async fn get(&self, instrument: &Instrument, hour: UnixNanos) -> Option<Vec<u8>> {
        tokio::fs::read(self.path(instrument, hour)).await.ok()
    }

    /// Forgets a body (it no longer decodes).
    pub async fn remove(&self, instrument: &Instrument, hour: UnixNanos) {
        let _ = tokio::fs::remove_file(self.path(instrument, hour)).await;
    }

    /// Stores a body if its hour is old enough ([`HourCache::eligible`] now); the only way the
    /// service stores anything.
    pub async fn keep(&self, instrument: &Instrument, hour: UnixNanos, body: &[u8]) {
        if self.eligible(hour, UnixNanos::now()) {
            self.put(instrument, hour, body).await;
        }
    }

    /// Stores a body atomically, whatever its hour's age. A failure is logged and otherwise ignored: the cache is an
    /// optimisation.
    pub async fn put(&self, instrument: &Instrument, hour: UnixNanos, body: &[u8]) {
        let path = self.path(instrument, hour);
        let result = async {
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
            tokio::fs::write(&tmp, body).await?;
            tokio::fs::rename(&tmp, &path).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "cannot write to the hour cache");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;
    use crate::instruments::by_datafeed_symbol;

    #[tokio::test]
    async fn it_stores_old_hours_under_a_calendar_path_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let cache = HourCache::new(dir.path(), TransportKind::Bi5, Duration::from_secs(3600));
        let eur = by_datafeed_symbol("EURUSD").unwrap();
        let hour = UnixNanos::parse_rfc3339("2019-01-04T13:00:00Z").unwrap();
        assert!(
            cache
                .path(eur, hour)
                .ends_with("bi5/EURUSD/2019/01/04/13.bi5")
        );
        assert_eq!(cache.get(eur, hour).await, None);
        cache.put(eur, hour, b"body").await;
        assert_eq!(cache.get(eur, hour).await.as_deref(), Some(&b"body"[..]));
        cache.remove(eur, hour).await;
        assert_eq!(cache.get(eur, hour).await, None);

        let recent =
            UnixNanos(UnixNanos::now().0 - UnixNanos::now().0.rem_euclid(HOUR_NS) - HOUR_NS);
        cache.keep(eur, recent, b"recent").await;
        assert_eq!(
            cache.get(eur, recent).await,
            None,
            "an hour that ended less than min_age ago is not kept"
        );
        cache.keep(eur, hour, b"old").await;
        assert_eq!(cache.get(eur, hour).await.as_deref(), Some(&b"old"[..]));

        let end = hour.0 + HOUR_NS;
        assert!(!cache.eligible(hour, UnixNanos(end)), "just ended");
        assert!(!cache.eligible(hour, UnixNanos(end + HOUR_NS - 1)));
        assert!(cache.eligible(hour, UnixNanos(end + HOUR_NS)));
    }
}
