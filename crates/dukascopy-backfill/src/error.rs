use tickflow_schema::UnixNanos;

/// What is wrong with a Dukascopy body, its records, or the request to turn them into ticks.
///
/// None of the decoding errors is worth retrying on the same bytes; a truncated or non-LZMA
/// body ([`Bi5Error::NotLzma`], [`Bi5Error::HeaderTooShort`], [`Bi5Error::Lzma`]) is worth
/// downloading again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Bi5Error {
    /// The body does not start like a Dukascopy LZMA stream (`5d 00 00`).
    #[error(
        "not a Dukascopy LZMA body: it starts with {starts_with} instead of 5d 00 00 (an HTML or JSON error page, or a damaged download?)"
    )]
    NotLzma {
        /// The first bytes, in hex.
        starts_with: String,
    },
    /// Fewer bytes than the 13-byte LZMA header.
    #[error("LZMA body is {len} bytes, shorter than the 13-byte header: truncated download")]
    HeaderTooShort {
        /// The body's length.
        len: usize,
    },
    /// The header declares more output than the cap allows.
    #[error(
        "LZMA header declares {declared} decompressed bytes, over the cap of {cap} bytes: refused before decoding (decompression bomb or wrong file)"
    )]
    DeclaredOverCap {
        /// The uncompressed size in the header.
        declared: u64,
        /// The cap given to [`crate::bi5::decompress`].
        cap: usize,
    },
    /// Decoding produced more output than the cap allows.
    #[error(
        "LZMA stream decompresses to more than the cap of {cap} bytes: stopped (decompression bomb)"
    )]
    OutputOverCap {
        /// The cap given to [`crate::bi5::decompress`].
        cap: usize,
    },
    /// The LZMA decoder refused the stream.
    #[error("corrupt or truncated LZMA stream: {0}")]
    Lzma(String),
    /// The decompressed data is not a whole number of records.
    #[error(
        "decompressed {kind} data is {len} bytes, not a multiple of the {record_len}-byte record ({remainder} bytes left over): truncated or not {kind} data"
    )]
    RecordLength {
        /// `tick` or `candle`.
        kind: &'static str,
        /// The data's length.
        len: usize,
        /// The record size.
        record_len: usize,
        /// `len % record_len`.
        remainder: usize,
    },
    /// A tick's millisecond offset is not inside its hour.
    #[error(
        "tick {index}: timestamp outside the hour ({ms_in_hour} ms after the hour start; an hour has 0..=3599999)"
    )]
    TimestampOutsideHour {
        /// The record's position in the hour (0-based).
        index: usize,
        /// The offset it carries.
        ms_in_hour: u32,
    },
    /// A candle's offset is not a slot of its period.
    #[error("candle {index}: {secs_from_start} s after the period start is not {expected}")]
    CandleOffset {
        /// The record's position (0-based).
        index: usize,
        /// The offset it carries.
        secs_from_start: u32,
        /// What it should be, e.g. `a whole minute of the day (0..86340, step 60)`.
        expected: &'static str,
    },
    /// A period start that is not on the boundary the file covers.
    #[error("{what} {at} is not on a UTC {boundary} boundary")]
    NotAligned {
        /// Which argument, e.g. `hour_start`.
        what: &'static str,
        /// Its value.
        at: UnixNanos,
        /// `hour` or `day`.
        boundary: &'static str,
    },
    /// The symbol is not in [`crate::instruments`], so its point value is unknown.
    #[error(
        "no price scale for {0}: not in tickflow's Dukascopy instrument table (add it with its decimal factor from the datafeed's metadata)"
    )]
    UnknownInstrument(String),
    /// A float32 volume that cannot be an exact, non-negative size.
    #[error("{what}: volume {value} is not a usable size: {reason}")]
    Volume {
        /// Which record and field, e.g. `tick 12 ask volume`.
        what: String,
        /// The float32 as text.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// A price that does not fit a decimal (cannot happen with the table's scales).
    #[error("price of {points} points at scale {scale} does not fit a decimal")]
    Price {
        /// The raw points.
        points: u32,
        /// The decimal places.
        scale: u32,
    },
    /// A timestamp beyond the range of [`UnixNanos`].
    #[error("{what}: time out of range")]
    TimeOutOfRange {
        /// Which record.
        what: String,
    },
}
