//! Any bytes as a Dukascopy `.bi5` tick hour: decompression (1 MiB cap), record splitting and
//! quote building never panic, the cap holds, and every quote they accept is inside its hour with
//! exact non-negative prices at BTC/USD's scale and non-negative sizes.
#![no_main]

use dukascopy_backfill::bi5;
use dukascopy_backfill::ticks;
use libfuzzer_sys::fuzz_target;
use tickflow_schema::{Decimal, Symbol, UnixNanos};

/// 1 MiB: 52428 ticks, six times the busiest fixture hour.
const CAP: usize = 1 << 20;
/// 2023-02-20T12:00:00Z, the BTCUSD fixture hour.
const HOUR: UnixNanos = UnixNanos(1_676_894_400_000_000_000);
const NANOS_PER_HOUR: i64 = 3_600_000_000_000;

fuzz_target!(|data: &[u8]| {
    let raw = match bi5::decompress(data, CAP) {
        Ok(raw) => raw,
        Err(e) => {
            assert!(e.to_string().len() < 400, "error text is bounded");
            return;
        }
    };
    assert!(raw.len() <= CAP, "the cap holds");
    let _ = bi5::candle_records(&raw);
    let records = match bi5::tick_records(&raw) {
        Ok(records) => records,
        Err(e) => {
            assert!(e.to_string().len() < 400, "error text is bounded");
            return;
        }
    };
    assert_eq!(records.len() * bi5::TICK_RECORD_LEN, raw.len());
    let btc = Symbol::parse("BTC/USD").expect("a valid symbol");
    match ticks::quotes(&btc, "BTCUSD", HOUR, &records, UnixNanos(0)) {
        Ok(quotes) => {
            assert_eq!(quotes.len(), records.len());
            for (i, (q, r)) in quotes.iter().zip(&records).enumerate() {
                assert!(q.event_time.0 >= HOUR.0 && q.event_time.0 < HOUR.0 + NANOS_PER_HOUR);
                assert_eq!(q.sequence, i as u64);
                assert_eq!((q.ask.scale(), q.bid.scale()), (1, 1));
                assert_eq!(q.ask, Decimal::new(i64::from(r.ask_points), 1));
                assert_eq!(q.bid, Decimal::new(i64::from(r.bid_points), 1));
                assert!(!q.ask_size.is_sign_negative() && !q.bid_size.is_sign_negative());
                // The cached conversion gives what the reference conversion gives.
                assert_eq!(Ok(q.ask_size), ticks::volume_units(r.ask_volume));
                assert_eq!(Ok(q.bid_size), ticks::volume_units(r.bid_volume));
            }
        }
        Err(e) => assert!(e.to_string().len() < 400, "error text is bounded"),
    }
});
