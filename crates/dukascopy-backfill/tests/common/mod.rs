//! Fixture access shared by the integration tests.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    dead_code,
    reason = "test code"
)]

use std::path::PathBuf;

use dukascopy_backfill::bi5::{self, CandleRecord, TickRecord};
use tickflow_schema::UnixNanos;

/// `shared/fixtures/dukascopy/`, next to the repository checkout.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/dukascopy")
}

/// The bytes of a fixture file under `shared/fixtures/dukascopy/`.
pub fn fixture(path: &str) -> Vec<u8> {
    let p = fixture_dir().join(path);
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "fixture {} is missing ({e}): the tests expect the shared fixtures at ../shared next to the repository",
            p.display()
        )
    })
}

/// A fixture decompressed with the default cap.
pub fn raw(path: &str) -> Vec<u8> {
    bi5::decompress(&fixture(path), bi5::DEFAULT_MAX_OUTPUT)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The tick records of a fixture hour.
pub fn ticks(path: &str) -> Vec<TickRecord> {
    bi5::tick_records(&raw(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The candle records of a fixture file.
pub fn candles(path: &str) -> Vec<CandleRecord> {
    bi5::candle_records(&raw(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Milliseconds since the epoch as [`UnixNanos`].
pub fn ms(ms: i64) -> UnixNanos {
    UnixNanos(ms * 1_000_000)
}

/// An RFC 3339 instant.
pub fn at(text: &str) -> UnixNanos {
    UnixNanos::parse_rfc3339(text).unwrap()
}
