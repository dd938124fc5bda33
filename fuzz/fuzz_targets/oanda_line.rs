//! Any bytes as a line of the OANDA v20 pricing stream: the parser never panics, its fast path
//! agrees with the serde reference, a price it accepts is positive with whole liquidities, its
//! instrument maps back to itself, and its quote survives the tick codec unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oanda_ingester::oanda::instruments;
use oanda_ingester::oanda::parse::{Line, parse_line, parse_line_via_serde};
use tickflow_schema::{Decimal, Tick, UnixNanos};

fuzz_target!(|data: &[u8]| {
    let line = parse_line(data);
    assert_eq!(
        line,
        parse_line_via_serde(data),
        "the fast path agrees with serde"
    );
    match line {
        Ok(Line::Price(p)) => {
            assert!(p.bid > Decimal::ZERO && p.ask > Decimal::ZERO);
            assert!(!p.bid_liquidity.is_sign_negative() && !p.ask_liquidity.is_sign_negative());
            assert_eq!((p.bid_liquidity.scale(), p.ask_liquidity.scale()), (0, 0));
            if let Ok(symbol) = instruments::canonical(&p.instrument) {
                let back = instruments::venue_name(&symbol).expect("a canonical pair has a name");
                assert_eq!(back, p.instrument.to_ascii_uppercase());
                let tick = Tick::Quote(p.to_quote(symbol, UnixNanos(0), 0));
                let mut buf = Vec::new();
                tick.encode_into(&mut buf);
                let decoded = Tick::decode(&buf).expect("an accepted quote encodes");
                assert_eq!(decoded, tick);
            }
        }
        Ok(Line::Other { kind }) => assert!(kind.len() < 400, "kind is bounded"),
        Ok(Line::Heartbeat { .. } | Line::Empty) => {}
        Err(e) => {
            assert!(e.to_string().len() < 400, "error text is bounded");
            assert!(!e.reason().is_empty());
        }
    }
});
