//! The `.bi5` container (LZMA "alone") and its fixed-size big-endian records.
//!
//! See PROTOCOLS.md §3.2–3.4. A body is one LZMA1 stream with the 13-byte legacy header: props
//! byte `0x5d`, a little-endian 4-byte dictionary size (4 MiB) and a little-endian 8-byte
//! uncompressed size, which Dukascopy always fills in. A 0-byte body (weekend, holiday, no
//! ticks) has no header at all and means "no records".

use crate::Bi5Error;

/// Length of the LZMA "alone" header.
pub const LZMA_HEADER_LEN: usize = 13;

/// How every Dukascopy body starts: props `0x5d` and the low bytes of the 4 MiB dictionary size.
pub const MAGIC: [u8; 3] = [0x5d, 0x00, 0x00];

/// A generous cap for one file: 32 MiB is 1.6 million ticks in an hour (the fixtures' busiest
/// hour has 8523, 170 kB) or 1.4 million candles.
pub const DEFAULT_MAX_OUTPUT: usize = 32 << 20;

/// Bytes in one tick record.
pub const TICK_RECORD_LEN: usize = 20;

/// Bytes in one candle record.
pub const CANDLE_RECORD_LEN: usize = 24;

/// Milliseconds in an hour: a tick's offset is below this.
pub const MS_PER_HOUR: u32 = 3_600_000;

/// Largest preallocation, whatever the header declares: a lying header must not reserve memory.
const MAX_PREALLOCATION: usize = 4 << 20;

/// Decompresses one `.bi5` body, producing at most `max_output` bytes.
///
/// - An empty body (0 bytes) is an empty hour: `Ok(vec![])`, the decoder is not called.
/// - A body that does not start with `5d 00 00` (an HTML block page, a JSON error) is
///   [`Bi5Error::NotLzma`]; one shorter than the header is [`Bi5Error::HeaderTooShort`].
/// - A header declaring more than `max_output` bytes is refused before decoding
///   ([`Bi5Error::DeclaredOverCap`]); a stream of unknown size (`0xFF…FF`, end marker) that
///   decodes past the cap is stopped ([`Bi5Error::OutputOverCap`]). Neither holds more than
///   about twice `max_output` bytes in memory (the output and the decoder's window).
/// - A truncated or corrupt stream, or one whose length differs from the declared size, is
///   [`Bi5Error::Lzma`].
/// - One body is one stream: bytes after the stream's end are ignored (every fixture ends
///   exactly there). Bodies glued together, as duka does for a day, are not supported: only the
///   first would be decoded.
///
/// The decoder is liblzma's LZMA-alone decoder (`xz2`), about twice as fast as the pure-Rust
/// `lzma-rs` on the fixtures (see `benches/decode.rs`). Its window is the header's dictionary
/// size clamped to what the stream can reference: the declared size, or the cap when the size
/// is unknown (a match can only reach back into output already produced, so the result is the
/// same while a hostile 4 GiB dictionary allocates nothing).
pub fn decompress(bytes: &[u8], max_output: usize) -> Result<Vec<u8>, Bi5Error> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    if !bytes.starts_with(&MAGIC) {
        // A short body that agrees with the magic as far as it goes is a truncated stream.
        if bytes.len() < MAGIC.len() && MAGIC.starts_with(bytes) {
            return Err(Bi5Error::HeaderTooShort { len: bytes.len() });
        }
        return Err(Bi5Error::NotLzma {
            starts_with: hex_prefix(bytes),
        });
    }
    let (Some(header), Some(stream)) = (
        bytes
            .get(..LZMA_HEADER_LEN)
            .and_then(|h| <[u8; LZMA_HEADER_LEN]>::try_from(h).ok()),
        bytes.get(LZMA_HEADER_LEN..),
    ) else {
        return Err(Bi5Error::HeaderTooShort { len: bytes.len() });
    };
    let [_, d0, d1, d2, d3, s0, s1, s2, s3, s4, s5, s6, s7] = header;
    let declared = u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]);
    // All ones: size unknown, the stream ends with an end marker.
    let declared = (declared != u64::MAX).then_some(declared);
    if let Some(declared) = declared
        && usize::try_from(declared).map_or(true, |d| d > max_output)
    {
        return Err(Bi5Error::DeclaredOverCap {
            declared,
            cap: max_output,
        });
    }
    // The most output the stream may produce: the declared size, or the cap. One byte more
    // fits in the buffer so that an unknown-size stream going past the cap is seen.
    let bound = declared
        .and_then(|d| usize::try_from(d).ok())
        .unwrap_or(max_output);
    let limit = bound.saturating_add(1);

    let dict = u32::from_le_bytes([d0, d1, d2, d3]);
    let window = u32::try_from(bound)
        .unwrap_or(u32::MAX)
        .clamp(MIN_WINDOW, dict.max(MIN_WINDOW));
    let mut header = header;
    if let Some(field) = header.get_mut(1..5) {
        field.copy_from_slice(&window.to_le_bytes());
    }

    let mut decoder = xz2::stream::Stream::new_lzma_decoder(u64::MAX).map_err(lzma_error)?;
    let mut out = Vec::with_capacity(
        declared
            .map_or(FIRST_CHUNK, |_| bound.saturating_add(1))
            .min(limit)
            .min(MAX_PREALLOCATION),
    );
    // The header (with the clamped window), then the stream.
    // The whole body is here: the stream's part is the last input.
    for (input, action) in [
        (&header[..], xz2::stream::Action::Run),
        (stream, xz2::stream::Action::Finish),
    ] {
        let mut input = input;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= limit {
                    return Err(Bi5Error::OutputOverCap { cap: max_output });
                }
                let grow = out.len().max(FIRST_CHUNK).min(limit - out.len());
                out.reserve_exact(grow);
            }
            let before = decoder.total_in();
            let status = decoder
                .process_vec(input, &mut out, action)
                .map_err(lzma_error)?;
            let consumed = usize::try_from(decoder.total_in() - before).unwrap_or(usize::MAX);
            input = input.get(consumed..).unwrap_or_default();
            if out.len() > max_output {
                return Err(Bi5Error::OutputOverCap { cap: max_output });
            }
            if status == xz2::stream::Status::StreamEnd {
                return Ok(out);
            }
            // The decoder stops early only when it needs more input or more room.
            if out.len() < out.capacity() {
                if input.is_empty() {
                    break;
                }
                if consumed == 0 {
                    // No progress with input and room left: cannot happen with liblzma, but
                    // never loop forever.
                    return Err(Bi5Error::Lzma("the decoder made no progress".into()));
                }
            }
        }
    }
    Err(Bi5Error::Lzma(
        "unexpected end of input (truncated download)".into(),
    ))
}

/// liblzma's smallest window.
const MIN_WINDOW: u32 = 4096;

/// The first output chunk when the size is unknown, and the least the buffer grows by.
const FIRST_CHUNK: usize = 64 << 10;

fn lzma_error(e: xz2::stream::Error) -> Bi5Error {
    Bi5Error::Lzma(e.to_string())
}

/// The first few bytes as hex, for an error message.
fn hex_prefix(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 8 { " …" } else { "" };
    format!("{}{more}", shown.join(" "))
}

/// One tick as stored: 20 bytes, big-endian, **ask before bid**.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TickRecord {
    /// Milliseconds since the start of the file's UTC hour (0..=3_599_999).
    pub ms_in_hour: u32,
    /// Best ask in points (price = points / 10^scale, see [`crate::instruments`]).
    pub ask_points: u32,
    /// Best bid in points.
    pub bid_points: u32,
    /// Volume at the ask, float32, in millions of base currency for FX.
    pub ask_volume: f32,
    /// Volume at the bid, float32, in millions of base currency for FX.
    pub bid_volume: f32,
}

/// Splits a decompressed tick file into records.
///
/// A length that is not a multiple of 20 is [`Bi5Error::RecordLength`]; an offset of 3 600 000
/// ms or more is [`Bi5Error::TimestampOutsideHour`]. Offsets are not required to increase or
/// to be unique (they do in every fixture; Dukascopy does not promise it).
pub fn tick_records(raw: &[u8]) -> Result<Vec<TickRecord>, Bi5Error> {
    let (records, rest) = raw.as_chunks::<TICK_RECORD_LEN>();
    if !rest.is_empty() {
        return Err(Bi5Error::RecordLength {
            kind: "tick",
            len: raw.len(),
            record_len: TICK_RECORD_LEN,
            remainder: rest.len(),
        });
    }
    records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let [
                t0,
                t1,
                t2,
                t3,
                a0,
                a1,
                a2,
                a3,
                b0,
                b1,
                b2,
                b3,
                av0,
                av1,
                av2,
                av3,
                bv0,
                bv1,
                bv2,
                bv3,
            ] = *record;
            let ms_in_hour = u32::from_be_bytes([t0, t1, t2, t3]);
            if ms_in_hour >= MS_PER_HOUR {
                return Err(Bi5Error::TimestampOutsideHour { index, ms_in_hour });
            }
            Ok(TickRecord {
                ms_in_hour,
                ask_points: u32::from_be_bytes([a0, a1, a2, a3]),
                bid_points: u32::from_be_bytes([b0, b1, b2, b3]),
                ask_volume: f32::from_be_bytes([av0, av1, av2, av3]),
                bid_volume: f32::from_be_bytes([bv0, bv1, bv2, bv3]),
            })
        })
        .collect()
}

/// One bar as stored: 24 bytes, big-endian, in the order **open, close, low, high** (not OHLC).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CandleRecord {
    /// Seconds since the start of the file's period (the day for `min_1`, the month for
    /// `hour_1`, the year for `day_1`).
    pub secs_from_start: u32,
    /// Open, in points.
    pub open: u32,
    /// Close, in points (stored second).
    pub close: u32,
    /// Low, in points (stored third).
    pub low: u32,
    /// High, in points (stored fourth).
    pub high: u32,
    /// Volume, float32, in millions of base currency for FX; 0 for the flat bars that fill
    /// closed-market slots.
    pub volume: f32,
}

/// Splits a decompressed candle file into records (24 bytes each, O C L H order).
///
/// A length that is not a multiple of 24 is [`Bi5Error::RecordLength`]. Offsets are checked
/// against their period by the caller that knows the period ([`crate::candles`]).
pub fn candle_records(raw: &[u8]) -> Result<Vec<CandleRecord>, Bi5Error> {
    let (records, rest) = raw.as_chunks::<CANDLE_RECORD_LEN>();
    if !rest.is_empty() {
        return Err(Bi5Error::RecordLength {
            kind: "candle",
            len: raw.len(),
            record_len: CANDLE_RECORD_LEN,
            remainder: rest.len(),
        });
    }
    Ok(records
        .iter()
        .map(|record| {
            let [
                s0,
                s1,
                s2,
                s3,
                o0,
                o1,
                o2,
                o3,
                c0,
                c1,
                c2,
                c3,
                l0,
                l1,
                l2,
                l3,
                h0,
                h1,
                h2,
                h3,
                v0,
                v1,
                v2,
                v3,
            ] = *record;
            CandleRecord {
                secs_from_start: u32::from_be_bytes([s0, s1, s2, s3]),
                open: u32::from_be_bytes([o0, o1, o2, o3]),
                close: u32::from_be_bytes([c0, c1, c2, c3]),
                low: u32::from_be_bytes([l0, l1, l2, l3]),
                high: u32::from_be_bytes([h0, h1, h2, h3]),
                volume: f32::from_be_bytes([v0, v1, v2, v3]),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    //! liblzma (what [`decompress`] uses) against the pure-Rust `lzma-rs` (what it used before):
    //! the same bytes for every stream either accepts within the cap.

    #![allow(clippy::unwrap_used, reason = "test code")]

    use lzma_rs::decompress::{Options, UnpackedSize};
    use proptest::prelude::*;

    use super::*;

    /// The previous decoder: lzma-rs with its window limited to the cap.
    fn reference(bytes: &[u8], max_output: usize) -> Option<Vec<u8>> {
        let options = Options {
            unpacked_size: UnpackedSize::ReadFromHeader,
            memlimit: Some(max_output),
            allow_incomplete: false,
        };
        let mut out = Vec::new();
        lzma_rs::lzma_decompress_with_options(&mut &bytes[..], &mut out, &options).ok()?;
        (out.len() <= max_output).then_some(out)
    }

    fn compress(data: &[u8], declare_size: bool, dict: Option<u32>) -> Vec<u8> {
        let mut out = Vec::new();
        let options = lzma_rs::compress::Options {
            unpacked_size: lzma_rs::compress::UnpackedSize::WriteToHeader(
                declare_size.then_some(data.len() as u64),
            ),
        };
        lzma_rs::lzma_compress_with_options(&mut &data[..], &mut out, &options).unwrap();
        if let Some(dict) = dict {
            out[1..5].copy_from_slice(&dict.to_le_bytes());
        }
        out
    }

    /// Repetitive data, like tick records.
    fn data() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..3000),
            proptest::collection::vec(0u8..4, 0..20_000),
            (proptest::collection::vec(any::<u8>(), 1..40), 1usize..400)
                .prop_map(|(unit, n)| unit.repeat(n)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn valid_streams_decode_the_same(
            data in data(),
            declare in any::<bool>(),
            // Any window the magic allows (its low 16 bits are the magic's `00 00`).
            dict in prop_oneof![
                Just(None),
                Just(Some(0x0040_0000u32)),
                Just(Some(0)),
                Just(Some(0xffff_0000)),
                any::<u16>().prop_map(|high| Some(u32::from(high) << 16)),
            ],
            slack in 0usize..64,
        ) {
            let body = compress(&data, declare, dict);
            let got = decompress(&body, data.len() + slack).unwrap();
            prop_assert_eq!(&got, &data);
            prop_assert_eq!(reference(&body, data.len() + slack).unwrap(), data);
        }

        #[test]
        fn damaged_streams_agree_when_both_accept(
            data in data(),
            declare in any::<bool>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
            cap in prop_oneof![Just(usize::MAX), 0usize..30_000],
        ) {
            let mut body = compress(&data, declare, None);
            for (at, byte) in flips {
                // Leave the magic alone: past it both decoders see the damage.
                let i = at.index(body.len() - 3) + 3;
                body[i] ^= byte;
            }
            body.truncate(cut.index(body.len() + 1).max(3));
            let got = decompress(&body, cap);
            if let Ok(out) = &got {
                prop_assert!(out.len() <= cap);
            }
            if let (Ok(a), Some(b)) = (&got, reference(&body, cap)) {
                prop_assert_eq!(a, &b);
            }
        }
    }

    #[test]
    fn a_truncated_stream_says_so() {
        let body = compress(&vec![7u8; 5000], true, None);
        for cut in [
            LZMA_HEADER_LEN,
            LZMA_HEADER_LEN + 1,
            body.len() / 2,
            body.len() - 1,
        ] {
            let err = decompress(&body[..cut], DEFAULT_MAX_OUTPUT).unwrap_err();
            assert!(matches!(err, Bi5Error::Lzma(_)), "{cut}: {err}");
        }
        assert_eq!(decompress(&body, 5000).unwrap(), vec![7u8; 5000]);
    }
}
