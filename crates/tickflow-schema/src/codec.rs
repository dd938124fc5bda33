//! The hot-path codec: `Tick` straight to protobuf bytes and back, without building the
//! intermediate prost structs (whose owned strings cost an allocation each).
//!
//! The bytes are exactly what prost produces for the same `TickMessage` (fields in number order,
//! zero values omitted), and decoding follows protobuf's rules (unknown fields skipped, last value
//! of a repeated scalar wins, repeated messages merge). The tests hold both directions against the
//! prost-generated types as the oracle.

use prost::encoding::{DecodeContext, WireType, encoded_len_varint, skip_field};
use rust_decimal::Decimal;
use smol_str::SmolStr;

use crate::{
    Coverage, CoverageStatus, Gap, GapReason, Quote, SchemaError, Side, Source, Symbol, Tick,
    TickKind, Trade, UnixNanos,
};

// ---------------------------------------------------------------------------------------------
// Encoding

// Every field number here is below 16, so every key is one byte.
const fn key(tag: u8, wt: u8) -> u8 {
    (tag << 3) | wt
}
const VARINT: u8 = 0;
const LEN: u8 = 2;

fn len_varint_field(v: u64) -> usize {
    if v == 0 { 0 } else { 1 + encoded_len_varint(v) }
}

fn len_str_field(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        1 + encoded_len_varint(s.len() as u64) + s.len()
    }
}

fn decimal_parts(d: &Decimal) -> (u64, u64, u64, bool) {
    let m = d.mantissa().unsigned_abs();
    // The low 64 and the high 32 bits of the 96-bit coefficient.
    (
        m as u64,
        (m >> 64) as u64,
        u64::from(d.scale()),
        d.is_sign_negative(),
    )
}

fn decimal_body_len(d: &Decimal) -> usize {
    let (lo, hi, scale, neg) = decimal_parts(d);
    len_varint_field(lo) + len_varint_field(hi) + len_varint_field(scale) + if neg { 2 } else { 0 }
}

fn len_decimal_field(d: &Decimal) -> usize {
    let body = decimal_body_len(d);
    1 + encoded_len_varint(body as u64) + body
}

/// A varint straight into the Vec (prost's generic `BufMut` path is slower here).
#[inline]
fn encode_varint(mut v: u64, buf: &mut Vec<u8>) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_varint(buf: &mut Vec<u8>, tag: u8, v: u64) {
    if v != 0 {
        buf.push(key(tag, VARINT));
        encode_varint(v, buf);
    }
}

fn put_str(buf: &mut Vec<u8>, tag: u8, s: &str) {
    if !s.is_empty() {
        buf.push(key(tag, LEN));
        encode_varint(s.len() as u64, buf);
        buf.extend_from_slice(s.as_bytes());
    }
}

fn put_decimal(buf: &mut Vec<u8>, tag: u8, d: &Decimal) {
    buf.push(key(tag, LEN));
    encode_varint(decimal_body_len(d) as u64, buf);
    let (lo, hi, scale, neg) = decimal_parts(d);
    put_varint(buf, 1, lo);
    put_varint(buf, 2, hi);
    put_varint(buf, 3, scale);
    put_varint(buf, 4, u64::from(neg));
}

// int64 and enum values are varints of their two's complement 64-bit pattern.
fn i64_bits(v: i64) -> u64 {
    v as u64
}

fn side_value(s: Side) -> u64 {
    match s {
        Side::Unknown => 0,
        Side::Buy => 1,
        Side::Sell => 2,
    }
}

fn kind_value(k: TickKind) -> u64 {
    match k {
        TickKind::Trade => 1,
        TickKind::Quote => 2,
    }
}

fn reason_value(r: GapReason) -> u64 {
    match r {
        GapReason::Unspecified => 0,
        GapReason::Disconnect => 1,
        GapReason::VenueError => 2,
        GapReason::Handover => 3,
        GapReason::Dropped => 4,
        GapReason::Unavailable => 5,
    }
}

fn trade_len(t: &Trade) -> usize {
    len_str_field(t.source.as_str())
        + len_str_field(t.symbol.as_str())
        + len_str_field(&t.venue_symbol)
        + len_varint_field(i64_bits(t.event_time.0))
        + len_varint_field(i64_bits(t.received_at.0))
        + len_decimal_field(&t.price)
        + len_decimal_field(&t.size)
        + len_varint_field(side_value(t.side))
        + len_str_field(&t.trade_id)
}

fn quote_len(q: &Quote) -> usize {
    len_str_field(q.source.as_str())
        + len_str_field(q.symbol.as_str())
        + len_str_field(&q.venue_symbol)
        + len_varint_field(i64_bits(q.event_time.0))
        + len_varint_field(i64_bits(q.received_at.0))
        + len_decimal_field(&q.bid)
        + len_decimal_field(&q.ask)
        + len_decimal_field(&q.bid_size)
        + len_decimal_field(&q.ask_size)
        + len_varint_field(q.sequence)
        + if q.indicative { 2 } else { 0 }
}

fn gap_len(g: &Gap) -> usize {
    len_str_field(g.source.as_str())
        + len_str_field(g.symbol.as_str())
        + len_varint_field(kind_value(g.kind))
        + len_varint_field(i64_bits(g.from.0))
        + len_varint_field(i64_bits(g.to.0))
        + len_varint_field(reason_value(g.reason))
        + len_str_field(&g.detail)
        + len_varint_field(i64_bits(g.detected_at.0))
}

fn coverage_status_value(s: CoverageStatus) -> u64 {
    match s {
        CoverageStatus::Unspecified => 0,
        CoverageStatus::Complete => 1,
        CoverageStatus::Closed => 2,
        CoverageStatus::Missing => 3,
    }
}

fn coverage_len(c: &Coverage) -> usize {
    len_str_field(c.source.as_str())
        + len_str_field(c.symbol.as_str())
        + len_varint_field(kind_value(c.kind))
        + len_varint_field(i64_bits(c.hour.0))
        + len_varint_field(coverage_status_value(c.status))
        + len_varint_field(c.ticks)
        + len_str_field(&c.detail)
        + len_varint_field(i64_bits(c.recorded_at.0))
}

pub(crate) fn encoded_len(tick: &Tick) -> usize {
    let body = match tick {
        Tick::Trade(t) => trade_len(t),
        Tick::Quote(q) => quote_len(q),
        Tick::Gap(g) => gap_len(g),
        Tick::Coverage(c) => coverage_len(c),
    };
    1 + encoded_len_varint(body as u64) + body
}

pub(crate) fn encode_into(tick: &Tick, buf: &mut Vec<u8>) {
    match tick {
        Tick::Trade(t) => {
            let body = trade_len(t);
            buf.reserve(1 + encoded_len_varint(body as u64) + body);
            buf.push(key(1, LEN));
            encode_varint(body as u64, buf);
            put_str(buf, 1, t.source.as_str());
            put_str(buf, 2, t.symbol.as_str());
            put_str(buf, 3, &t.venue_symbol);
            put_varint(buf, 4, i64_bits(t.event_time.0));
            put_varint(buf, 5, i64_bits(t.received_at.0));
            put_decimal(buf, 6, &t.price);
            put_decimal(buf, 7, &t.size);
            put_varint(buf, 8, side_value(t.side));
            put_str(buf, 9, &t.trade_id);
        }
        Tick::Quote(q) => {
            let body = quote_len(q);
            buf.reserve(1 + encoded_len_varint(body as u64) + body);
            buf.push(key(2, LEN));
            encode_varint(body as u64, buf);
            put_str(buf, 1, q.source.as_str());
            put_str(buf, 2, q.symbol.as_str());
            put_str(buf, 3, &q.venue_symbol);
            put_varint(buf, 4, i64_bits(q.event_time.0));
            put_varint(buf, 5, i64_bits(q.received_at.0));
            put_decimal(buf, 6, &q.bid);
            put_decimal(buf, 7, &q.ask);
            put_decimal(buf, 8, &q.bid_size);
            put_decimal(buf, 9, &q.ask_size);
            put_varint(buf, 10, q.sequence);
            put_varint(buf, 11, u64::from(q.indicative));
        }
        Tick::Gap(g) => {
            let body = gap_len(g);
            buf.reserve(1 + encoded_len_varint(body as u64) + body);
            buf.push(key(3, LEN));
            encode_varint(body as u64, buf);
            put_str(buf, 1, g.source.as_str());
            put_str(buf, 2, g.symbol.as_str());
            put_varint(buf, 3, kind_value(g.kind));
            put_varint(buf, 4, i64_bits(g.from.0));
            put_varint(buf, 5, i64_bits(g.to.0));
            put_varint(buf, 6, reason_value(g.reason));
            put_str(buf, 7, &g.detail);
            put_varint(buf, 8, i64_bits(g.detected_at.0));
        }
        Tick::Coverage(c) => {
            let body = coverage_len(c);
            buf.reserve(1 + encoded_len_varint(body as u64) + body);
            buf.push(key(4, LEN));
            encode_varint(body as u64, buf);
            put_str(buf, 1, c.source.as_str());
            put_str(buf, 2, c.symbol.as_str());
            put_varint(buf, 3, kind_value(c.kind));
            put_varint(buf, 4, i64_bits(c.hour.0));
            put_varint(buf, 5, coverage_status_value(c.status));
            put_varint(buf, 6, c.ticks);
            put_str(buf, 7, &c.detail);
            put_varint(buf, 8, i64_bits(c.recorded_at.0));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

fn malformed(what: &'static str) -> SchemaError {
    SchemaError::Malformed(what)
}

/// A varint off the front of `buf`, with prost's rules (at most 10 bytes, the 10th at most 1).
#[inline]
fn decode_varint(buf: &mut &[u8]) -> Result<u64, SchemaError> {
    let bytes = *buf;
    if let Some(&first) = bytes.first()
        && first < 0x80
    {
        *buf = &bytes[1..];
        return Ok(u64::from(first));
    }
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            if i == 9 && byte > 1 {
                break;
            }
            *buf = &bytes[i + 1..];
            return Ok(value);
        }
    }
    Err(malformed("invalid varint"))
}

/// A field key: (field number, wire type), with prost's checks.
#[inline]
fn decode_key(buf: &mut &[u8]) -> Result<(u32, WireType), SchemaError> {
    let key = decode_varint(buf)?;
    if key > u64::from(u32::MAX) {
        return Err(malformed("invalid field key"));
    }
    let wire_type = WireType::try_from(key & 0x07).map_err(|_| malformed("invalid wire type"))?;
    let tag = (key >> 3) as u32;
    if tag == 0 {
        return Err(malformed("field number 0"));
    }
    Ok((tag, wire_type))
}

/// Short text into a SmolStr without SmolStr::new's whitespace special-casing.
#[inline]
fn smol(s: &str) -> SmolStr {
    if s.len() <= 23 {
        SmolStr::new_inline(s)
    } else {
        SmolStr::new(s)
    }
}

/// Takes a length-delimited field's bytes off the front of `buf`.
fn take_len<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], SchemaError> {
    let len = decode_varint(buf)?;
    let len = usize::try_from(len).map_err(|_| malformed("length out of range"))?;
    if len > buf.len() {
        return Err(malformed("length past the end of the message"));
    }
    let (head, tail) = buf.split_at(len);
    *buf = tail;
    Ok(head)
}

fn take_str<'a>(buf: &mut &'a [u8]) -> Result<&'a str, SchemaError> {
    std::str::from_utf8(take_len(buf)?).map_err(|_| malformed("a string field is not UTF-8"))
}

fn expect(wt: WireType, want: WireType) -> Result<(), SchemaError> {
    if wt == want {
        Ok(())
    } else {
        Err(malformed("a known field has the wrong wire type"))
    }
}

/// The one place a `Decimal` is built from its wire parts (coefficient low 64 and high 32 bits).
pub(crate) fn decimal_from_parts(
    lo: u64,
    hi: u32,
    scale: u32,
    negative: bool,
) -> Result<Decimal, SchemaError> {
    if scale > 28 {
        return Err(SchemaError::DecimalScale(scale));
    }
    Ok(Decimal::from_parts(
        lo as u32,
        (lo >> 32) as u32,
        hi,
        negative,
        scale,
    ))
}

/// A Decimal as read so far (messages merge when repeated).
#[derive(Default, Clone, Copy)]
struct DecimalParts {
    lo: u64,
    hi: u32,
    scale: u32,
    negative: bool,
}

impl DecimalParts {
    fn merge(mut self, mut buf: &[u8]) -> Result<Self, SchemaError> {
        while !buf.is_empty() {
            let (tag, wt) = decode_key(&mut buf)?;
            match tag {
                1 => {
                    expect(wt, WireType::Varint)?;
                    self.lo = decode_varint(&mut buf)?;
                }
                2 => {
                    expect(wt, WireType::Varint)?;
                    self.hi = decode_varint(&mut buf)? as u32;
                }
                3 => {
                    expect(wt, WireType::Varint)?;
                    self.scale = decode_varint(&mut buf)? as u32;
                }
                4 => {
                    expect(wt, WireType::Varint)?;
                    self.negative = decode_varint(&mut buf)? != 0;
                }
                _ => skip_field(wt, tag, &mut buf, DecodeContext::default())?,
            }
        }
        Ok(self)
    }

    fn finish(self) -> Result<Decimal, SchemaError> {
        decimal_from_parts(self.lo, self.hi, self.scale, self.negative)
    }
}

fn required<T>(v: Option<T>, message: &'static str, field: &'static str) -> Result<T, SchemaError> {
    v.ok_or(SchemaError::MissingField { message, field })
}

fn source(s: &str) -> Result<Source, SchemaError> {
    match s {
        "kraken" => Ok(Source::Kraken),
        "oanda" => Ok(Source::Oanda),
        "dukascopy" => Ok(Source::Dukascopy),
        other => Err(SchemaError::UnknownSource(other.to_owned())),
    }
}

/// The fields every body shares, as read so far.
#[derive(Default)]
struct Common<'a> {
    source: &'a str,
    symbol: &'a str,
}

#[derive(Default)]
struct TradeParts<'a> {
    c: Common<'a>,
    venue_symbol: &'a str,
    event: i64,
    received: i64,
    price: Option<DecimalParts>,
    size: Option<DecimalParts>,
    side: u64,
    trade_id: &'a str,
}

#[derive(Default)]
struct QuoteParts<'a> {
    c: Common<'a>,
    venue_symbol: &'a str,
    event: i64,
    received: i64,
    decimals: [Option<DecimalParts>; 4],
    sequence: u64,
    indicative: bool,
}

#[derive(Default)]
struct GapParts<'a> {
    c: Common<'a>,
    kind: u64,
    from: i64,
    to: i64,
    reason: u64,
    detail: &'a str,
    detected: i64,
}

#[derive(Default)]
struct CoverageParts<'a> {
    c: Common<'a>,
    kind: u64,
    hour: i64,
    status: u64,
    ticks: u64,
    detail: &'a str,
    recorded: i64,
}

enum Body<'a> {
    None,
    Trade(TradeParts<'a>),
    Quote(QuoteParts<'a>),
    Gap(GapParts<'a>),
    Coverage(CoverageParts<'a>),
}

fn merge_decimal(
    slot: &mut Option<DecimalParts>,
    buf: &mut &[u8],
    wt: WireType,
) -> Result<(), SchemaError> {
    expect(wt, WireType::LengthDelimited)?;
    *slot = Some(slot.unwrap_or_default().merge(take_len(buf)?)?);
    Ok(())
}

fn varint(buf: &mut &[u8], wt: WireType) -> Result<u64, SchemaError> {
    expect(wt, WireType::Varint)?;
    decode_varint(buf)
}

fn string<'a>(buf: &mut &'a [u8], wt: WireType) -> Result<&'a str, SchemaError> {
    expect(wt, WireType::LengthDelimited)?;
    take_str(buf)
}

fn merge_trade<'a>(p: &mut TradeParts<'a>, mut buf: &'a [u8]) -> Result<(), SchemaError> {
    while !buf.is_empty() {
        let (tag, wt) = decode_key(&mut buf)?;
        match tag {
            1 => p.c.source = string(&mut buf, wt)?,
            2 => p.c.symbol = string(&mut buf, wt)?,
            3 => p.venue_symbol = string(&mut buf, wt)?,
            4 => p.event = varint(&mut buf, wt)? as i64,
            5 => p.received = varint(&mut buf, wt)? as i64,
            6 => merge_decimal(&mut p.price, &mut buf, wt)?,
            7 => merge_decimal(&mut p.size, &mut buf, wt)?,
            8 => p.side = varint(&mut buf, wt)?,
            9 => p.trade_id = string(&mut buf, wt)?,
            _ => skip_field(wt, tag, &mut buf, DecodeContext::default())?,
        }
    }
    Ok(())
}

fn merge_quote<'a>(p: &mut QuoteParts<'a>, mut buf: &'a [u8]) -> Result<(), SchemaError> {
    while !buf.is_empty() {
        let (tag, wt) = decode_key(&mut buf)?;
        match tag {
            1 => p.c.source = string(&mut buf, wt)?,
            2 => p.c.symbol = string(&mut buf, wt)?,
            3 => p.venue_symbol = string(&mut buf, wt)?,
            4 => p.event = varint(&mut buf, wt)? as i64,
            5 => p.received = varint(&mut buf, wt)? as i64,
            6..=9 => merge_decimal(&mut p.decimals[(tag - 6) as usize], &mut buf, wt)?,
            10 => p.sequence = varint(&mut buf, wt)?,
            11 => p.indicative = varint(&mut buf, wt)? != 0,
            _ => skip_field(wt, tag, &mut buf, DecodeContext::default())?,
        }
    }
    Ok(())
}

fn merge_gap<'a>(p: &mut GapParts<'a>, mut buf: &'a [u8]) -> Result<(), SchemaError> {
    while !buf.is_empty() {
        let (tag, wt) = decode_key(&mut buf)?;
        match tag {
            1 => p.c.source = string(&mut buf, wt)?,
            2 => p.c.symbol = string(&mut buf, wt)?,
            3 => p.kind = varint(&mut buf, wt)?,
            4 => p.from = varint(&mut buf, wt)? as i64,
            5 => p.to = varint(&mut buf, wt)? as i64,
            6 => p.reason = varint(&mut buf, wt)?,
            7 => p.detail = string(&mut buf, wt)?,
            8 => p.detected = varint(&mut buf, wt)? as i64,
            _ => skip_field(wt, tag, &mut buf, DecodeContext::default())?,
        }
    }
    Ok(())
}

fn merge_coverage<'a>(p: &mut CoverageParts<'a>, mut buf: &'a [u8]) -> Result<(), SchemaError> {
    while !buf.is_empty() {
        let (tag, wt) = decode_key(&mut buf)?;
        match tag {
            1 => p.c.source = string(&mut buf, wt)?,
            2 => p.c.symbol = string(&mut buf, wt)?,
            3 => p.kind = varint(&mut buf, wt)?,
            4 => p.hour = varint(&mut buf, wt)? as i64,
            5 => p.status = varint(&mut buf, wt)?,
            6 => p.ticks = varint(&mut buf, wt)?,
            7 => p.detail = string(&mut buf, wt)?,
            8 => p.recorded = varint(&mut buf, wt)? as i64,
            _ => skip_field(wt, tag, &mut buf, DecodeContext::default())?,
        }
    }
    Ok(())
}

fn tick_kind(raw: u64, message: &'static str) -> Result<TickKind, SchemaError> {
    match raw as i32 {
        1 => Ok(TickKind::Trade),
        2 => Ok(TickKind::Quote),
        _ => Err(SchemaError::MissingField {
            message,
            field: "kind",
        }),
    }
}

pub(crate) fn decode(mut buf: &[u8]) -> Result<Tick, SchemaError> {
    let mut body = Body::None;
    while !buf.is_empty() {
        let (tag, wt) = decode_key(&mut buf)?;
        match tag {
            1..=4 => {
                expect(wt, WireType::LengthDelimited)?;
                let bytes = take_len(&mut buf)?;
                // A repeated oneof member of the same kind merges; another kind replaces it.
                match (tag, &mut body) {
                    (1, Body::Trade(p)) => merge_trade(p, bytes)?,
                    (1, _) => {
                        let mut p = TradeParts::default();
                        merge_trade(&mut p, bytes)?;
                        body = Body::Trade(p);
                    }
                    (2, Body::Quote(p)) => merge_quote(p, bytes)?,
                    (2, _) => {
                        let mut p = QuoteParts::default();
                        merge_quote(&mut p, bytes)?;
                        body = Body::Quote(p);
                    }
                    (3, Body::Gap(p)) => merge_gap(p, bytes)?,
                    (3, _) => {
                        let mut p = GapParts::default();
                        merge_gap(&mut p, bytes)?;
                        body = Body::Gap(p);
                    }
                    (_, Body::Coverage(p)) => merge_coverage(p, bytes)?,
                    _ => {
                        let mut p = CoverageParts::default();
                        merge_coverage(&mut p, bytes)?;
                        body = Body::Coverage(p);
                    }
                }
            }
            _ => skip_field(wt, tag, &mut buf, DecodeContext::default())?,
        }
    }
    match body {
        Body::None => Err(SchemaError::UnknownBody),
        Body::Trade(p) => Ok(Tick::Trade(Trade {
            source: source(p.c.source)?,
            symbol: Symbol::parse(p.c.symbol)?,
            venue_symbol: smol(p.venue_symbol),
            event_time: UnixNanos(p.event),
            received_at: UnixNanos(p.received),
            price: required(p.price, "Trade", "price")?.finish()?,
            size: required(p.size, "Trade", "size")?.finish()?,
            side: match p.side as i32 {
                1 => Side::Buy,
                2 => Side::Sell,
                _ => Side::Unknown,
            },
            trade_id: smol(p.trade_id),
        })),
        Body::Quote(p) => {
            let [bid, ask, bid_size, ask_size] = p.decimals;
            Ok(Tick::Quote(Quote {
                source: source(p.c.source)?,
                symbol: Symbol::parse(p.c.symbol)?,
                venue_symbol: smol(p.venue_symbol),
                event_time: UnixNanos(p.event),
                received_at: UnixNanos(p.received),
                bid: required(bid, "Quote", "bid")?.finish()?,
                ask: required(ask, "Quote", "ask")?.finish()?,
                bid_size: required(bid_size, "Quote", "bid_size")?.finish()?,
                ask_size: required(ask_size, "Quote", "ask_size")?.finish()?,
                sequence: p.sequence,
                indicative: p.indicative,
            }))
        }
        Body::Gap(p) => Ok(Tick::Gap(Gap {
            source: source(p.c.source)?,
            symbol: Symbol::parse(p.c.symbol)?,
            kind: tick_kind(p.kind, "Gap")?,
            from: UnixNanos(p.from),
            to: UnixNanos(p.to),
            reason: match p.reason as i32 {
                1 => GapReason::Disconnect,
                2 => GapReason::VenueError,
                3 => GapReason::Handover,
                4 => GapReason::Dropped,
                5 => GapReason::Unavailable,
                _ => GapReason::Unspecified,
            },
            detail: p.detail.to_owned(),
            detected_at: UnixNanos(p.detected),
        })),
        Body::Coverage(p) => Ok(Tick::Coverage(Coverage {
            source: source(p.c.source)?,
            symbol: Symbol::parse(p.c.symbol)?,
            kind: tick_kind(p.kind, "Coverage")?,
            hour: UnixNanos(p.hour),
            status: match p.status as i32 {
                1 => CoverageStatus::Complete,
                2 => CoverageStatus::Closed,
                3 => CoverageStatus::Missing,
                _ => CoverageStatus::Unspecified,
            },
            ticks: p.ticks,
            detail: p.detail.to_owned(),
            recorded_at: UnixNanos(p.recorded),
        })),
    }
}
