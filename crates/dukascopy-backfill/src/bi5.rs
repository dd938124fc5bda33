//! The `.bi5` container (LZMA "alone") and its fixed-size big-endian records.
//!
//! See PROTOCOLS.md §3.2–3.4. A body is one LZMA1 stream with the 13-byte legacy header: props
//! byte `0x5d`, a little-endian 4-byte dictionary size (4 MiB) and a little-endian 8-byte
//! uncompressed size, which Dukascopy always fills in. A 0-byte body (weekend, holiday, no
//! ticks) has no header at all and means "no records".

use std::io;

use lzma_rs::decompress::{Options, UnpackedSize};

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
///   about `max_output` bytes in memory.
/// - A truncated or corrupt stream, or one whose length differs from the declared size, is
///   [`Bi5Error::Lzma`].
/// - One body is one stream: bytes after the stream's end are ignored (every fixture ends
///   exactly there). Bodies glued together, as duka does for a day, are not supported: only the
///   first would be decoded.
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
    let declared = match bytes.get(5..LZMA_HEADER_LEN).map(<[u8; 8]>::try_from) {
        Some(Ok(size)) => u64::from_le_bytes(size),
        _ => return Err(Bi5Error::HeaderTooShort { len: bytes.len() }),
    };
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
    let capacity = declared
        .and_then(|d| usize::try_from(d).ok())
        .unwrap_or(0)
        .min(max_output)
        .min(MAX_PREALLOCATION);
    let mut out = CappedWriter {
        buf: Vec::with_capacity(capacity),
        cap: max_output,
        overflowed: false,
    };
    let options = Options {
        unpacked_size: UnpackedSize::ReadFromHeader,
        // The decoder's window grows with the output up to the dictionary size (4 MiB for
        // Dukascopy, up to 4 GiB in a hostile header): never beyond the cap.
        memlimit: Some(max_output),
        allow_incomplete: false,
    };
    let mut input = bytes;
    match lzma_rs::lzma_decompress_with_options(&mut input, &mut out, &options) {
        Ok(()) => Ok(out.buf),
        Err(_) if out.overflowed => Err(Bi5Error::OutputOverCap { cap: max_output }),
        // The window hit `memlimit`: the output (which the window holds until the first flush)
        // went past the cap. lzma-rs 0.3 says so only in its message.
        Err(lzma_rs::error::Error::LzmaError(msg)) if msg.starts_with("exceeded memory limit") => {
            Err(Bi5Error::OutputOverCap { cap: max_output })
        }
        Err(e) => Err(Bi5Error::Lzma(e.to_string())),
    }
}

/// The first few bytes as hex, for an error message.
fn hex_prefix(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 8 { " …" } else { "" };
    format!("{}{more}", shown.join(" "))
}

/// A `Vec` sink that refuses to grow past `cap`.
struct CappedWriter {
    buf: Vec<u8>,
    cap: usize,
    overflowed: bool,
}

impl io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > self.cap {
            self.overflowed = true;
            return Err(io::Error::other("decompressed output over the cap"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
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
