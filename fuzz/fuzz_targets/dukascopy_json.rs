//! Any bytes as an answer of Dukascopy's JSON tick API for EUR/USD 2026-07-13 12:00 UTC (the
//! fixture's hour): the decoder never panics, and every quote it accepts is inside the hour, in
//! sequence, with non-negative prices at EUR/USD's scale and non-negative sizes.
#![no_main]

use dukascopy_backfill::jetta;
use libfuzzer_sys::fuzz_target;
use tickflow_schema::{Symbol, UnixNanos};

/// 2026-07-13T12:00:00Z.
const HOUR: UnixNanos = UnixNanos(1_783_944_000_000_000_000);
const NANOS_PER_HOUR: i64 = 3_600_000_000_000;
/// Far above any real hour the fuzzer can write in `-max_len` bytes, far below the default.
const MAX_TICKS: usize = 100_000;

fuzz_target!(|data: &[u8]| {
    let eurusd = Symbol::parse("EUR/USD").expect("a valid symbol");
    match jetta::quotes(data, &eurusd, "EUR-USD", HOUR, UnixNanos(0), MAX_TICKS) {
        Ok(quotes) => {
            assert!(quotes.len() <= MAX_TICKS);
            for (i, q) in quotes.iter().enumerate() {
                assert!(q.event_time.0 >= HOUR.0 && q.event_time.0 < HOUR.0 + NANOS_PER_HOUR);
                assert_eq!(q.sequence, i as u64);
                assert_eq!((q.ask.scale(), q.bid.scale()), (5, 5));
                assert!(!q.ask.is_sign_negative() && !q.bid.is_sign_negative());
                assert!(!q.ask_size.is_sign_negative() && !q.bid_size.is_sign_negative());
            }
        }
        Err(e) => assert!(e.to_string().len() < 400, "error text is bounded"),
    }
});
