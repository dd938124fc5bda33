//! Conversions between the domain types and the `tickflow.v1` wire types.

use prost::Message;
use rust_decimal::Decimal;

use crate::proto;
use crate::{
    Coverage, CoverageStatus, Gap, GapReason, Quote, SchemaError, Side, Source, Symbol, Tick,
    TickKind, Trade, UnixNanos,
};

impl From<Decimal> for proto::Decimal {
    fn from(d: Decimal) -> Self {
        let m = d.mantissa().unsigned_abs();
        Self {
            // Truncation is the point: the low 64 bits here, the high 32 below.
            coefficient_lo: m as u64,
            coefficient_hi: (m >> 64) as u32,
            scale: d.scale(),
            negative: d.is_sign_negative(),
        }
    }
}

impl TryFrom<proto::Decimal> for Decimal {
    type Error = SchemaError;
    fn try_from(d: proto::Decimal) -> Result<Self, SchemaError> {
        crate::codec::decimal_from_parts(d.coefficient_lo, d.coefficient_hi, d.scale, d.negative)
    }
}

fn decimal(
    d: Option<proto::Decimal>,
    message: &'static str,
    field: &'static str,
) -> Result<Decimal, SchemaError> {
    d.ok_or(SchemaError::MissingField { message, field })?
        .try_into()
}

fn source(s: &str) -> Result<Source, SchemaError> {
    s.parse()
}

impl From<Side> for proto::Side {
    fn from(s: Side) -> Self {
        match s {
            Side::Unknown => proto::Side::Unspecified,
            Side::Buy => proto::Side::Buy,
            Side::Sell => proto::Side::Sell,
        }
    }
}

fn side(raw: i32) -> Side {
    match proto::Side::try_from(raw) {
        Ok(proto::Side::Buy) => Side::Buy,
        Ok(proto::Side::Sell) => Side::Sell,
        // Unknown values (a newer schema) read as "not said", per proto/README.md.
        _ => Side::Unknown,
    }
}

impl From<GapReason> for proto::GapReason {
    fn from(r: GapReason) -> Self {
        match r {
            GapReason::Unspecified => proto::GapReason::Unspecified,
            GapReason::Disconnect => proto::GapReason::Disconnect,
            GapReason::VenueError => proto::GapReason::VenueError,
            GapReason::Handover => proto::GapReason::Handover,
            GapReason::Dropped => proto::GapReason::Dropped,
            GapReason::Unavailable => proto::GapReason::Unavailable,
        }
    }
}

fn gap_reason(raw: i32) -> GapReason {
    match proto::GapReason::try_from(raw) {
        Ok(proto::GapReason::Disconnect) => GapReason::Disconnect,
        Ok(proto::GapReason::VenueError) => GapReason::VenueError,
        Ok(proto::GapReason::Handover) => GapReason::Handover,
        Ok(proto::GapReason::Dropped) => GapReason::Dropped,
        Ok(proto::GapReason::Unavailable) => GapReason::Unavailable,
        _ => GapReason::Unspecified,
    }
}

impl From<TickKind> for proto::TickKind {
    fn from(k: TickKind) -> Self {
        match k {
            TickKind::Trade => proto::TickKind::Trade,
            TickKind::Quote => proto::TickKind::Quote,
        }
    }
}

fn tick_kind(raw: i32, message: &'static str) -> Result<TickKind, SchemaError> {
    match proto::TickKind::try_from(raw) {
        Ok(proto::TickKind::Trade) => Ok(TickKind::Trade),
        Ok(proto::TickKind::Quote) => Ok(TickKind::Quote),
        _ => Err(SchemaError::MissingField {
            message,
            field: "kind",
        }),
    }
}

impl From<CoverageStatus> for proto::CoverageStatus {
    fn from(s: CoverageStatus) -> Self {
        match s {
            CoverageStatus::Unspecified => proto::CoverageStatus::Unspecified,
            CoverageStatus::Complete => proto::CoverageStatus::Complete,
            CoverageStatus::Closed => proto::CoverageStatus::Closed,
            CoverageStatus::Missing => proto::CoverageStatus::Missing,
        }
    }
}

fn coverage_status(raw: i32) -> CoverageStatus {
    match proto::CoverageStatus::try_from(raw) {
        Ok(proto::CoverageStatus::Complete) => CoverageStatus::Complete,
        Ok(proto::CoverageStatus::Closed) => CoverageStatus::Closed,
        Ok(proto::CoverageStatus::Missing) => CoverageStatus::Missing,
        _ => CoverageStatus::Unspecified,
    }
}

impl From<&Coverage> for proto::Coverage {
    fn from(c: &Coverage) -> Self {
        Self {
            source: c.source.as_str().to_owned(),
            symbol: c.symbol.as_str().to_owned(),
            kind: proto::TickKind::from(c.kind).into(),
            hour_start_ns: c.hour.0,
            status: proto::CoverageStatus::from(c.status).into(),
            ticks: c.ticks,
            detail: c.detail.clone(),
            recorded_at_ns: c.recorded_at.0,
        }
    }
}

impl TryFrom<proto::Coverage> for Coverage {
    type Error = SchemaError;
    fn try_from(c: proto::Coverage) -> Result<Self, SchemaError> {
        Ok(Self {
            source: source(&c.source)?,
            symbol: Symbol::parse(&c.symbol)?,
            kind: tick_kind(c.kind, "Coverage")?,
            hour: UnixNanos(c.hour_start_ns),
            status: coverage_status(c.status),
            ticks: c.ticks,
            detail: c.detail,
            recorded_at: UnixNanos(c.recorded_at_ns),
        })
    }
}

impl From<&Trade> for proto::Trade {
    fn from(t: &Trade) -> Self {
        Self {
            source: t.source.as_str().to_owned(),
            symbol: t.symbol.as_str().to_owned(),
            venue_symbol: t.venue_symbol.to_string(),
            event_time_ns: t.event_time.0,
            received_at_ns: t.received_at.0,
            price: Some(t.price.into()),
            size: Some(t.size.into()),
            side: proto::Side::from(t.side).into(),
            trade_id: t.trade_id.to_string(),
        }
    }
}

impl TryFrom<proto::Trade> for Trade {
    type Error = SchemaError;
    fn try_from(t: proto::Trade) -> Result<Self, SchemaError> {
        Ok(Self {
            source: source(&t.source)?,
            symbol: Symbol::parse(&t.symbol)?,
            venue_symbol: t.venue_symbol.into(),
            event_time: UnixNanos(t.event_time_ns),
            received_at: UnixNanos(t.received_at_ns),
            price: decimal(t.price, "Trade", "price")?,
            size: decimal(t.size, "Trade", "size")?,
            side: side(t.side),
            trade_id: t.trade_id.into(),
        })
    }
}

impl From<&Quote> for proto::Quote {
    fn from(q: &Quote) -> Self {
        Self {
            source: q.source.as_str().to_owned(),
            symbol: q.symbol.as_str().to_owned(),
            venue_symbol: q.venue_symbol.to_string(),
            event_time_ns: q.event_time.0,
            received_at_ns: q.received_at.0,
            bid: Some(q.bid.into()),
            ask: Some(q.ask.into()),
            bid_size: Some(q.bid_size.into()),
            ask_size: Some(q.ask_size.into()),
            sequence: q.sequence,
            indicative: q.indicative,
        }
    }
}

impl TryFrom<proto::Quote> for Quote {
    type Error = SchemaError;
    fn try_from(q: proto::Quote) -> Result<Self, SchemaError> {
        Ok(Self {
            source: source(&q.source)?,
            symbol: Symbol::parse(&q.symbol)?,
            venue_symbol: q.venue_symbol.into(),
            event_time: UnixNanos(q.event_time_ns),
            received_at: UnixNanos(q.received_at_ns),
            bid: decimal(q.bid, "Quote", "bid")?,
            ask: decimal(q.ask, "Quote", "ask")?,
            bid_size: decimal(q.bid_size, "Quote", "bid_size")?,
            ask_size: decimal(q.ask_size, "Quote", "ask_size")?,
            sequence: q.sequence,
            indicative: q.indicative,
        })
    }
}

impl From<&Gap> for proto::Gap {
    fn from(g: &Gap) -> Self {
        Self {
            source: g.source.as_str().to_owned(),
            symbol: g.symbol.as_str().to_owned(),
            kind: proto::TickKind::from(g.kind).into(),
            from_time_ns: g.from.0,
            to_time_ns: g.to.0,
            reason: proto::GapReason::from(g.reason).into(),
            detail: g.detail.clone(),
            detected_at_ns: g.detected_at.0,
        }
    }
}

impl TryFrom<proto::Gap> for Gap {
    type Error = SchemaError;
    fn try_from(g: proto::Gap) -> Result<Self, SchemaError> {
        Ok(Self {
            source: source(&g.source)?,
            symbol: Symbol::parse(&g.symbol)?,
            kind: tick_kind(g.kind, "Gap")?,
            from: UnixNanos(g.from_time_ns),
            to: UnixNanos(g.to_time_ns),
            reason: gap_reason(g.reason),
            detail: g.detail,
            detected_at: UnixNanos(g.detected_at_ns),
        })
    }
}

impl From<&Tick> for proto::TickMessage {
    fn from(t: &Tick) -> Self {
        use proto::tick_message::Body;
        let body = match t {
            Tick::Trade(t) => Body::Trade(t.into()),
            Tick::Quote(q) => Body::Quote(q.into()),
            Tick::Gap(g) => Body::Gap(g.into()),
            Tick::Coverage(c) => Body::Coverage(c.into()),
        };
        Self { body: Some(body) }
    }
}

impl TryFrom<proto::TickMessage> for Tick {
    type Error = SchemaError;
    fn try_from(m: proto::TickMessage) -> Result<Self, SchemaError> {
        use proto::tick_message::Body;
        match m.body {
            Some(Body::Trade(t)) => Ok(Tick::Trade(t.try_into()?)),
            Some(Body::Quote(q)) => Ok(Tick::Quote(q.try_into()?)),
            Some(Body::Gap(g)) => Ok(Tick::Gap(g.try_into()?)),
            Some(Body::Coverage(c)) => Ok(Tick::Coverage(c.try_into()?)),
            None => Err(SchemaError::UnknownBody),
        }
    }
}

impl Tick {
    /// The protobuf bytes of this tick as one `TickMessage`.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        crate::codec::encode_into(self, &mut buf);
        buf
    }

    /// Appends the protobuf bytes of this tick to `buf` (reuse a buffer on hot paths).
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        crate::codec::encode_into(self, buf);
    }

    /// The length of [`Tick::encode`]'s output, without encoding.
    pub fn encoded_len(&self) -> usize {
        crate::codec::encoded_len(self)
    }

    /// Decodes one `TickMessage` into a domain tick.
    pub fn decode(bytes: &[u8]) -> Result<Self, SchemaError> {
        crate::codec::decode(bytes)
    }

    /// Decodes through the prost-generated types: the reference [`Tick::decode`] is tested against.
    pub fn decode_via_prost(bytes: &[u8]) -> Result<Self, SchemaError> {
        proto::TickMessage::decode(bytes)?.try_into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn trade() -> Trade {
        Trade {
            source: Source::Kraken,
            symbol: Symbol::parse("BTC/USD").unwrap(),
            venue_symbol: "XBT/USD".into(),
            event_time: UnixNanos(1_690_000_000_123_456_000),
            received_at: UnixNanos(1_690_000_000_200_000_001),
            price: dec("108000.1"),
            size: dec("0.00012340"),
            side: Side::Sell,
            trade_id: "73100523".into(),
        }
    }

    #[test]
    fn known_decimals_keep_value_and_scale_on_the_wire() {
        let t = Tick::Trade(trade());
        let back = Tick::decode(&t.encode()).unwrap();
        let Tick::Trade(b) = back else {
            panic!("not a trade")
        };
        assert_eq!(b.price.to_string(), "108000.1");
        assert_eq!(b.size.to_string(), "0.00012340");
        assert_eq!(b.size.scale(), 8);
        assert_eq!(b, trade());
    }

    #[test]
    fn decimal_parts_are_what_the_schema_documents() {
        let p = proto::Decimal::from(dec("0.00012340"));
        assert_eq!(
            (p.coefficient_lo, p.coefficient_hi, p.scale, p.negative),
            (12340, 0, 8, false)
        );
        let big = dec("-79228162514264337593543950335"); // the largest 96-bit coefficient
        let p = proto::Decimal::from(big);
        assert_eq!(
            (p.coefficient_lo, p.coefficient_hi, p.negative),
            (u64::MAX, u32::MAX, true)
        );
        assert_eq!(Decimal::try_from(p).unwrap(), big);
    }

    #[test]
    fn bad_messages_give_typed_errors_not_panics() {
        assert!(matches!(
            Tick::decode(b"\xff\xff\xff"),
            Err(SchemaError::Malformed("invalid varint"))
        ));
        assert!(matches!(
            Tick::decode_via_prost(b"\xff\xff\xff"),
            Err(SchemaError::Decode(_))
        ));
        assert!(matches!(Tick::decode(b""), Err(SchemaError::UnknownBody)));
        let mut m = proto::TickMessage::from(&Tick::Trade(trade()));
        if let Some(proto::tick_message::Body::Trade(t)) = &mut m.body {
            t.price = None;
        }
        let err = Tick::decode(&m.encode_to_vec()).unwrap_err();
        assert_eq!(err.to_string(), "Trade.price is missing");
        let mut m = proto::TickMessage::from(&Tick::Trade(trade()));
        if let Some(proto::tick_message::Body::Trade(t)) = &mut m.body {
            t.source = "binance".into();
            t.price = Some(proto::Decimal {
                scale: 29,
                ..Default::default()
            });
        }
        assert!(
            matches!(Tick::decode(&m.encode_to_vec()), Err(SchemaError::UnknownSource(s)) if s == "binance")
        );
        let bad_scale = proto::Decimal {
            coefficient_lo: 1,
            scale: 40,
            ..Default::default()
        };
        assert!(matches!(
            Decimal::try_from(bad_scale),
            Err(SchemaError::DecimalScale(40))
        ));
    }

    #[test]
    fn unknown_enum_values_read_as_unspecified() {
        let mut m = proto::TickMessage::from(&Tick::Trade(trade()));
        if let Some(proto::tick_message::Body::Trade(t)) = &mut m.body {
            t.side = 99;
        }
        let Tick::Trade(t) = Tick::decode(&m.encode_to_vec()).unwrap() else {
            panic!()
        };
        assert_eq!(t.side, Side::Unknown);
    }

    /// Decimal text as venues send it: optional sign, digits, optional fraction with trailing zeros.
    fn decimal_text() -> impl Strategy<Value = String> {
        (
            any::<bool>(),
            "[1-9][0-9]{0,14}|0",
            proptest::option::of("[0-9]{1,12}"),
        )
            .prop_map(|(neg, int, frac)| {
                let mut s = String::new();
                if neg
                    && (int != "0"
                        || frac
                            .as_deref()
                            .is_some_and(|f| f.bytes().any(|b| b != b'0')))
                {
                    s.push('-');
                }
                s.push_str(&int);
                if let Some(f) = frac {
                    s.push('.');
                    s.push_str(&f);
                }
                s
            })
    }

    fn symbol() -> impl Strategy<Value = Symbol> {
        ("[A-Z0-9]{1,8}", proptest::option::of("[A-Z0-9]{1,8}")).prop_map(|(b, q)| {
            Symbol::parse(&match q {
                Some(q) => format!("{b}/{q}"),
                None => b,
            })
            .unwrap()
        })
    }

    fn source_strategy() -> impl Strategy<Value = Source> {
        prop::sample::select(Source::ALL.to_vec())
    }

    fn any_decimal() -> impl Strategy<Value = Decimal> {
        decimal_text().prop_map(|s| dec(&s))
    }

    fn tick() -> impl Strategy<Value = Tick> {
        let trade = (
            source_strategy(),
            symbol(),
            "[ -~]{0,12}",
            any::<i64>(),
            any::<i64>(),
            any_decimal(),
            any_decimal(),
            0..3u8,
            "[0-9A-Za-z-]{0,20}",
        )
            .prop_map(
                |(source, symbol, venue_symbol, e, r, price, size, side, trade_id)| {
                    Tick::Trade(Trade {
                        source,
                        symbol,
                        venue_symbol: venue_symbol.into(),
                        event_time: UnixNanos(e),
                        received_at: UnixNanos(r),
                        price,
                        size,
                        side: [Side::Unknown, Side::Buy, Side::Sell][usize::from(side)],
                        trade_id: trade_id.into(),
                    })
                },
            );
        let quote = (
            source_strategy(),
            symbol(),
            "[ -~]{0,12}",
            any::<i64>(),
            any::<i64>(),
            [any_decimal(), any_decimal(), any_decimal(), any_decimal()],
            any::<u64>(),
            any::<bool>(),
        )
            .prop_map(
                |(
                    source,
                    symbol,
                    venue_symbol,
                    e,
                    r,
                    [bid, ask, bid_size, ask_size],
                    sequence,
                    indicative,
                )| {
                    Tick::Quote(Quote {
                        source,
                        symbol,
                        venue_symbol: venue_symbol.into(),
                        event_time: UnixNanos(e),
                        received_at: UnixNanos(r),
                        bid,
                        ask,
                        bid_size,
                        ask_size,
                        sequence,
                        indicative,
                    })
                },
            );
        let gap = (
            source_strategy(),
            symbol(),
            any::<bool>(),
            any::<i64>(),
            any::<i64>(),
            0..6usize,
            ".{0,30}",
            any::<i64>(),
        )
            .prop_map(
                |(source, symbol, trade, from, to, reason, detail, detected)| {
                    Tick::Gap(Gap {
                        source,
                        symbol,
                        kind: if trade {
                            TickKind::Trade
                        } else {
                            TickKind::Quote
                        },
                        from: UnixNanos(from),
                        to: UnixNanos(to),
                        reason: [
                            GapReason::Unspecified,
                            GapReason::Disconnect,
                            GapReason::VenueError,
                            GapReason::Handover,
                            GapReason::Dropped,
                            GapReason::Unavailable,
                        ][reason],
                        detail,
                        detected_at: UnixNanos(detected),
                    })
                },
            );
        let coverage = (
            source_strategy(),
            symbol(),
            any::<bool>(),
            any::<i64>(),
            0..4usize,
            any::<u64>(),
            ".{0,30}",
            any::<i64>(),
        )
            .prop_map(
                |(source, symbol, trade, hour, status, ticks, detail, recorded)| {
                    Tick::Coverage(Coverage {
                        source,
                        symbol,
                        kind: if trade {
                            TickKind::Trade
                        } else {
                            TickKind::Quote
                        },
                        hour: UnixNanos(hour),
                        status: [
                            CoverageStatus::Unspecified,
                            CoverageStatus::Complete,
                            CoverageStatus::Closed,
                            CoverageStatus::Missing,
                        ][status],
                        ticks,
                        detail,
                        recorded_at: UnixNanos(recorded),
                    })
                },
            );
        prop_oneof![trade, quote, gap, coverage]
    }

    proptest! {
        #[test]
        fn tick_round_trips(t in tick()) {
            let bytes = t.encode();
            prop_assert_eq!(Tick::decode(&bytes).unwrap(), t.clone());
            let mut buf = vec![0xAA];
            t.encode_into(&mut buf);
            prop_assert_eq!(&buf[1..], &bytes[..]);
        }

        #[test]
        fn decimal_text_survives_the_wire_exactly(s in decimal_text()) {
            let d = dec(&s);
            let back = Decimal::try_from(proto::Decimal::from(d)).unwrap();
            prop_assert_eq!(back.to_string(), s);
            prop_assert_eq!(back.scale(), d.scale());
        }

        #[test]
        fn hand_codec_matches_prost_byte_for_byte(t in tick()) {
            let ours = t.encode();
            prop_assert_eq!(&ours, &proto::TickMessage::from(&t).encode_to_vec());
            prop_assert_eq!(ours.len(), t.encoded_len());
            prop_assert_eq!(Tick::decode(&ours).unwrap(), Tick::decode_via_prost(&ours).unwrap());
        }

        #[test]
        fn hand_decoder_agrees_with_prost_on_damaged_bytes(t in tick(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), bit in 0..8u8, extra in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut bytes = t.encode();
            let i = flip.index(bytes.len());
            bytes[i] ^= 1 << bit;
            bytes.truncate(cut.index(bytes.len() + 1));
            bytes.extend_from_slice(&extra);
            prop_assert_eq!(Tick::decode(&bytes).ok(), Tick::decode_via_prost(&bytes).ok());
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            prop_assert_eq!(Tick::decode(&bytes).ok(), Tick::decode_via_prost(&bytes).ok());
        }
    }
}
