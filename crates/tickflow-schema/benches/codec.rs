//! Tick encode and decode cost, in ns per tick (target: under 200 ns for both together).
//!
//! Anchor: `anchor/copy_bytes`, a plain copy of the encoded bytes into a reused buffer, so the
//! ratio printed by `scripts/bench-report.sh` says how many memcpy-equivalents a codec round costs.

use std::hint::black_box;
use std::str::FromStr;

use criterion::{Criterion, criterion_group, criterion_main};
use tickflow_schema::{Decimal, Quote, Side, Source, Symbol, Tick, Trade, UnixNanos};

fn trade() -> Tick {
    Tick::Trade(Trade {
        source: Source::Kraken,
        symbol: Symbol::parse("BTC/USD").unwrap(),
        venue_symbol: "BTC/USD".into(),
        event_time: UnixNanos(1_753_000_000_123_456_000),
        received_at: UnixNanos(1_753_000_000_125_000_000),
        price: Decimal::from_str("108000.1").unwrap(),
        size: Decimal::from_str("0.00012340").unwrap(),
        side: Side::Buy,
        trade_id: "83424531".into(),
    })
}

fn quote() -> Tick {
    Tick::Quote(Quote {
        source: Source::Oanda,
        symbol: Symbol::parse("EUR/USD").unwrap(),
        venue_symbol: "EUR_USD".into(),
        event_time: UnixNanos(1_753_000_000_123_456_789),
        received_at: UnixNanos(1_753_000_000_125_000_000),
        bid: Decimal::from_str("1.17421").unwrap(),
        ask: Decimal::from_str("1.17436").unwrap(),
        bid_size: Decimal::from_str("1000000").unwrap(),
        ask_size: Decimal::from_str("1000000").unwrap(),
        sequence: 0,
        indicative: false,
    })
}

fn bench(c: &mut Criterion) {
    for (name, tick) in [("trade", trade()), ("quote", quote())] {
        let bytes = tick.encode();
        let mut buf = Vec::with_capacity(256);
        c.bench_function(&format!("anchor/copy_bytes/{name}"), |b| {
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(black_box(&bytes));
                black_box(&buf);
            })
        });
        c.bench_function(&format!("encode/{name}"), |b| {
            b.iter(|| {
                buf.clear();
                black_box(&tick).encode_into(&mut buf);
                black_box(&buf);
            })
        });
        c.bench_function(&format!("decode/{name}"), |b| {
            b.iter(|| Tick::decode(black_box(&bytes)).unwrap())
        });
        c.bench_function(&format!("roundtrip/{name}"), |b| {
            b.iter(|| {
                buf.clear();
                black_box(&tick).encode_into(&mut buf);
                Tick::decode(black_box(&buf)).unwrap()
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
