//! Damaged, hostile and random input: clear errors, a hard output cap, never a panic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "test code"
)]

mod common;

use common::*;
use dukascopy_backfill::Bi5Error;
use dukascopy_backfill::bi5::{self, DEFAULT_MAX_OUTPUT, TickRecord};
use dukascopy_backfill::candles::bid_minute_candles;
use dukascopy_backfill::ticks::{quotes, volume_units};
use proptest::prelude::*;
use tickflow_schema::{Decimal, Symbol, UnixNanos};

const HOUR: &str = "EURUSD/2019/01/04/13h_ticks.bi5";

fn lzma(data: &[u8], declare_size: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let options = lzma_rs::compress::Options {
        unpacked_size: lzma_rs::compress::UnpackedSize::WriteToHeader(
            declare_size.then_some(data.len() as u64),
        ),
    };
    lzma_rs::lzma_compress_with_options(&mut &data[..], &mut out, &options).unwrap();
    out
}

fn record(ms: u32, ask: u32, bid: u32, ask_volume: f32, bid_volume: f32) -> Vec<u8> {
    let mut r = Vec::with_capacity(20);
    r.extend_from_slice(&ms.to_be_bytes());
    r.extend_from_slice(&ask.to_be_bytes());
    r.extend_from_slice(&bid.to_be_bytes());
    r.extend_from_slice(&ask_volume.to_be_bytes());
    r.extend_from_slice(&bid_volume.to_be_bytes());
    r
}

#[test]
fn truncated_lzma_is_an_error() {
    let body = fixture(HOUR);
    for cut in [body.len() - 1, body.len() / 2, 100, 14] {
        let err = bi5::decompress(&body[..cut], DEFAULT_MAX_OUTPUT).unwrap_err();
        assert!(matches!(err, Bi5Error::Lzma(_)), "cut at {cut}: {err}");
        assert!(
            err.to_string()
                .starts_with("corrupt or truncated LZMA stream"),
            "{err}"
        );
    }
    for cut in [1, 2, 3, 12, 13] {
        let err = bi5::decompress(&body[..cut], DEFAULT_MAX_OUTPUT).unwrap_err();
        assert!(
            matches!(err, Bi5Error::HeaderTooShort { .. } | Bi5Error::Lzma(_)),
            "cut at {cut}: {err}"
        );
    }
    assert_eq!(
        bi5::decompress(&body[..7], DEFAULT_MAX_OUTPUT)
            .unwrap_err()
            .to_string(),
        "LZMA body is 7 bytes, shorter than the 13-byte header: truncated download"
    );
}

#[test]
fn corrupt_lzma_is_an_error() {
    let mut body = fixture(HOUR);
    for i in (200..body.len()).step_by(97) {
        body[i] ^= 0x55;
    }
    let err = bi5::decompress(&body, DEFAULT_MAX_OUTPUT).unwrap_err();
    assert!(matches!(err, Bi5Error::Lzma(_)), "{err}");
}

#[test]
fn a_page_that_is_not_lzma_is_named() {
    let html = b"<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title>";
    let err = bi5::decompress(html, DEFAULT_MAX_OUTPUT).unwrap_err();
    assert_eq!(
        err.to_string(),
        "not a Dukascopy LZMA body: it starts with 3c 21 44 4f 43 54 59 50 … instead of 5d 00 00 \
         (an HTML or JSON error page, or a damaged download?)"
    );
    // XZ is not LZMA-alone either.
    let err = bi5::decompress(&[0xfd, b'7', b'z', b'X', b'Z', 0], DEFAULT_MAX_OUTPUT).unwrap_err();
    assert!(matches!(err, Bi5Error::NotLzma { .. }), "{err}");
}

#[test]
fn the_cap_applies_to_real_files_too() {
    let body = fixture(HOUR);
    assert_eq!(bi5::decompress(&body, 155_260).unwrap().len(), 155_260);
    assert_eq!(
        bi5::decompress(&body, 155_259).unwrap_err(),
        Bi5Error::DeclaredOverCap {
            declared: 155_260,
            cap: 155_259
        }
    );
}

#[test]
fn a_bomb_is_stopped_at_the_cap() {
    let zeros = vec![0u8; 2 << 20];
    let cap = 1 << 20;

    // Size declared in the header: refused before decoding.
    let declared = lzma(&zeros, true);
    // lzma-rs compresses with literals only (about 40:1 on zeros, where real LZMA reaches
    // thousands to one): the cap does not depend on the ratio.
    assert!(
        declared.len() < zeros.len() / 30,
        "{} bytes",
        declared.len()
    );
    let err = bi5::decompress(&declared, cap).unwrap_err();
    assert_eq!(
        err,
        Bi5Error::DeclaredOverCap {
            declared: 2 << 20,
            cap
        }
    );
    assert!(
        err.to_string().contains("over the cap of 1048576 bytes"),
        "{err}"
    );

    // Size unknown (all ones, end marker): decoding stops at the cap. Here the window (8 MiB
    // in lzma-rs's header) is larger than the cap, so the window's memory limit stops it...
    let unknown = lzma(&zeros, false);
    assert_eq!(&unknown[5..13], &[0xff; 8]);
    assert_eq!(&unknown[1..5], &0x0080_0000u32.to_le_bytes());
    let err = bi5::decompress(&unknown, cap).unwrap_err();
    assert_eq!(err, Bi5Error::OutputOverCap { cap });
    assert_eq!(
        err.to_string(),
        "LZMA stream decompresses to more than the cap of 1048576 bytes: stopped (decompression bomb)"
    );
    // ...and with a 64 KiB window (zeros only ever need distance 1, so the stream stays
    // valid) the output is flushed window by window until the sink refuses it.
    let mut small_window = unknown.clone();
    small_window[1..5].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    let err = bi5::decompress(&small_window, cap).unwrap_err();
    assert_eq!(err, Bi5Error::OutputOverCap { cap });

    // The same streams within the cap decode.
    for body in [&declared, &unknown, &small_window] {
        assert_eq!(bi5::decompress(body, 2 << 20).unwrap(), zeros);
    }
    // One byte short is over.
    assert_eq!(
        bi5::decompress(&small_window, (2 << 20) - 1).unwrap_err(),
        Bi5Error::OutputOverCap { cap: (2 << 20) - 1 }
    );
}

#[test]
fn a_record_length_not_a_multiple_of_20_is_an_error() {
    let raw = raw(HOUR);
    let err = bi5::tick_records(&raw[..raw.len() - 7]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "decompressed tick data is 155253 bytes, not a multiple of the 20-byte record (13 bytes left over): truncated or not tick data"
    );
    assert!(bi5::tick_records(&raw[..19]).is_err());
    let candles = raw_candles();
    let err = bi5::candle_records(&candles[..candles.len() - 4]).unwrap_err();
    assert!(
        matches!(
            err,
            Bi5Error::RecordLength {
                kind: "candle",
                record_len: 24,
                remainder: 20,
                ..
            }
        ),
        "{err}"
    );
    // A tick file read as candles (155260 = 24 × 6469 + 4) is refused too.
    assert!(bi5::candle_records(&raw).is_err());
}

fn raw_candles() -> Vec<u8> {
    raw("EURUSD/2019/01/04/BID_candles_min_1.bi5")
}

#[test]
fn a_millisecond_outside_the_hour_is_an_error() {
    let mut raw = record(0, 114_476, 114_475, 1.5, 5.7);
    raw.extend(record(3_599_999, 114_476, 114_475, 1.5, 5.7));
    assert_eq!(bi5::tick_records(&raw).unwrap().len(), 2);
    raw.extend(record(3_600_000, 114_476, 114_475, 1.5, 5.7));
    let err = bi5::tick_records(&raw).unwrap_err();
    assert_eq!(
        err,
        Bi5Error::TimestampOutsideHour {
            index: 2,
            ms_in_hour: 3_600_000
        }
    );
    assert_eq!(
        err.to_string(),
        "tick 2: timestamp outside the hour (3600000 ms after the hour start; an hour has 0..=3599999)"
    );
    // The same check guards records built by hand.
    let bad = TickRecord {
        ms_in_hour: u32::MAX,
        ask_points: 1,
        bid_points: 1,
        ask_volume: 1.0,
        bid_volume: 1.0,
    };
    let eurusd = Symbol::parse("EUR/USD").unwrap();
    let hour = at("2019-02-04T13:00:00Z");
    assert!(matches!(
        quotes(&eurusd, "EURUSD", hour, &[bad], UnixNanos(0)),
        Err(Bi5Error::TimestampOutsideHour { index: 0, .. })
    ));
}

#[test]
fn quotes_refuse_unknown_instruments_misaligned_hours_and_unusable_volumes() {
    let records = ticks(HOUR);
    let hour = at("2019-02-04T13:00:00Z");
    let eurusd = Symbol::parse("EUR/USD").unwrap();
    let err = quotes(
        &Symbol::parse("AAPL").unwrap(),
        "AAPLUSUSD",
        hour,
        &records,
        UnixNanos(0),
    )
    .unwrap_err();
    assert_eq!(err, Bi5Error::UnknownInstrument("AAPL".into()));
    let err = quotes(
        &eurusd,
        "EURUSD",
        UnixNanos(hour.0 + 1),
        &records,
        UnixNanos(0),
    )
    .unwrap_err();
    assert!(
        err.to_string().ends_with("is not on a UTC hour boundary"),
        "{err}"
    );
    for (v, reason) in [
        (f32::NAN, "not a finite number"),
        (f32::INFINITY, "not a finite number"),
        (-1.5, "negative"),
        (f32::MAX, "its decimal text does not fit a decimal exactly"),
        (1e-40, "its decimal text does not fit a decimal exactly"),
    ] {
        let r = TickRecord {
            ms_in_hour: 5,
            ask_points: 114_476,
            bid_points: 114_475,
            ask_volume: 1.0,
            bid_volume: v,
        };
        let err = quotes(&eurusd, "EURUSD", hour, &[r], UnixNanos(0)).unwrap_err();
        match &err {
            Bi5Error::Volume {
                what, reason: r, ..
            } => {
                assert_eq!(what, "tick 0 bid volume");
                assert_eq!(*r, reason, "{v}");
            }
            other => panic!("{v}: {other}"),
        }
    }
}

#[test]
fn volumes_are_exact_units_from_the_shortest_text() {
    for (v, units) in [
        (1.5f32, "1500000"),
        (5.7, "5700000"),
        (2.06, "2060000"),
        (0.75, "750000"),
        (0.0, "0"),
        (-0.0, "0"),
        (1e-6, "1"),
        (1.3e-5, "13"),
        (293.76, "293760000"),
        (0.123_456_79, "123456.79"),
        (16_777_217.0, "16777216000000"),
    ] {
        let d = volume_units(v).unwrap();
        assert_eq!(d.to_string(), units, "{v}");
        assert!(!d.is_sign_negative(), "{v}");
    }
    assert_eq!(volume_units(1.5).unwrap().scale(), 0);
    assert_eq!(volume_units(1e-7).unwrap(), Decimal::new(1, 1));
}

#[test]
fn candles_refuse_offsets_that_are_not_minutes_of_the_day() {
    let eurusd = Symbol::parse("EUR/USD").unwrap();
    let day = at("2019-02-04T00:00:00Z");
    let mut records = bi5::candle_records(&raw_candles()).unwrap();
    records[3].secs_from_start = 181;
    let err = bid_minute_candles(&eurusd, day, &records).unwrap_err();
    assert!(
        matches!(err, Bi5Error::CandleOffset { index: 3, .. }),
        "{err}"
    );
    records[3].secs_from_start = 86_400;
    assert!(bid_minute_candles(&eurusd, day, &records).is_err());
    records[3].secs_from_start = 180;
    assert!(bid_minute_candles(&eurusd, day, &records).is_ok());
    let err = bid_minute_candles(&eurusd, at("2019-02-04T13:00:00Z"), &records).unwrap_err();
    assert!(
        err.to_string().ends_with("is not on a UTC day boundary"),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(raw) = bi5::decompress(&bytes, 1 << 20) {
            let _ = bi5::tick_records(&raw);
            let _ = bi5::candle_records(&raw);
        }
        let _ = bi5::tick_records(&bytes);
        let _ = bi5::candle_records(&bytes);
    }

    #[test]
    fn random_streams_behind_a_valid_header_never_panic(
        dict in prop_oneof![Just(0x0040_0000u32), any::<u32>()],
        size in prop_oneof![Just(u64::MAX), 0u64..4096, any::<u64>()],
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        cap in 0usize..(1 << 16),
    ) {
        let mut bytes = vec![0x5d];
        bytes.extend_from_slice(&dict.to_le_bytes());
        bytes.extend_from_slice(&size.to_le_bytes());
        bytes.extend_from_slice(&body);
        if let Ok(raw) = bi5::decompress(&bytes, cap) {
            prop_assert!(raw.len() <= cap);
            let eurusd = Symbol::parse("EUR/USD").unwrap();
            if let Ok(records) = bi5::tick_records(&raw) {
                let _ = quotes(&eurusd, "EURUSD", UnixNanos(0), &records, UnixNanos(0));
            }
        }
    }

    #[test]
    fn damaged_real_files_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut body = fixture("EURUSD/2019/01/05/22h_ticks.bi5");
        for (at, x) in flips {
            let i = at.index(body.len());
            body[i] ^= x;
        }
        body.truncate(cut.index(body.len()) + 1);
        if let Ok(raw) = bi5::decompress(&body, 1 << 20) {
            prop_assert!(raw.len() <= 1 << 20);
            let _ = bi5::tick_records(&raw);
        }
    }

    #[test]
    fn any_tick_record_decodes_or_is_refused(
        ms in any::<u32>(), ask in any::<u32>(), bid in any::<u32>(),
        av in any::<f32>(), bv in any::<f32>(),
    ) {
        let raw = record(ms, ask, bid, av, bv);
        match bi5::tick_records(&raw) {
            Ok(r) => {
                prop_assert!(ms < 3_600_000);
                prop_assert_eq!(r.len(), 1);
                prop_assert_eq!(r[0].ms_in_hour, ms);
                prop_assert_eq!(r[0].ask_points, ask);
                prop_assert_eq!(r[0].bid_points, bid);
                prop_assert_eq!(r[0].ask_volume.to_bits(), av.to_bits());
                let eurusd = Symbol::parse("EUR/USD").unwrap();
                if let Ok(q) = quotes(&eurusd, "EURUSD", UnixNanos(0), &r, UnixNanos(0)) {
                    prop_assert_eq!(q[0].ask, Decimal::new(i64::from(ask), 5));
                    prop_assert_eq!(q[0].bid, Decimal::new(i64::from(bid), 5));
                }
            }
            Err(e) => prop_assert!(ms >= 3_600_000, "{}", e),
        }
    }

    #[test]
    fn finite_volumes_round_trip_through_their_text(v in any::<f32>()) {
        if let Ok(units) = volume_units(v) {
            // Back to millions, the decimal reads as the same float.
            let millions = units / Decimal::from(1_000_000);
            let back: f32 = millions.to_string().parse().unwrap();
            prop_assert_eq!(back.to_bits(), v.abs().to_bits());
        }
    }
}
