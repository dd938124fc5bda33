//! Any bytes as a Kraken v2 frame: the parser never panics, and every tick it accepts survives
//! the tick codec unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickflow_schema::{Tick, UnixNanos};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut ticks = Vec::new();
    let mut bad = Vec::new();
    let _ = kraken_ingester::kraken::parse::parse_frame(text, UnixNanos(0), &mut ticks, &mut bad);
    for tick in &ticks {
        let decoded = Tick::decode(&tick.encode()).expect("an accepted tick encodes");
        assert_eq!(&decoded, tick);
    }
    for e in &bad {
        assert!(e.to_string().len() < 400, "error text is bounded");
    }
});
