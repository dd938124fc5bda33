//! OANDA v20 pricing-stream wire types, borrowed from the line text (`PROTOCOLS.md` §2.3, §2.4).
//!
//! Every line is one JSON object. `PRICE` and `HEARTBEAT` are told apart by `type`; lines recorded
//! before November 2016 have no `type` on prices, only an `instrument`. Prices are JSON *strings*
//! holding decimals, and are kept as raw JSON text so that the parser can say precisely what is
//! wrong with one and turn it into a decimal without going through `f64`. `liquidity` is an
//! integer on the wire, but captures also show it printed as an integral float (`10000000.0`),
//! so it is kept as text too. Deprecated (`quoteHomeConversionFactors`, `unitsAvailable`) and
//! unknown fields are ignored; deprecated `status` is read, because it is the only tradeability
//! flag 2016-era lines carry.
//!
//! A line is read either by serde into [`WireLine`] (the reference) or by the parser's fast
//! scanner; both produce the same [`LineFields`], which the parser then interprets.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// The fields of a line that tickflow reads, however the line was read. Values that are checked
/// afterwards (`time`, prices, liquidities) are raw JSON texts: a string keeps its quotes. A
/// JSON `null` reads as absent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LineFields<'a> {
    /// `type`.
    pub kind: Option<Cow<'a, str>>,
    /// `instrument`.
    pub instrument: Option<Cow<'a, str>>,
    /// `time`, raw.
    pub time: Option<&'a str>,
    /// `tradeable`.
    pub tradeable: Option<bool>,
    /// `status` (deprecated).
    pub status: Option<Cow<'a, str>>,
    /// `bids`: absent, or the first bucket of the array (`None` when the array is empty).
    pub bids: Option<Option<BucketText<'a>>>,
    /// `asks`: as `bids`.
    pub asks: Option<Option<BucketText<'a>>>,
}

/// The raw texts of one price bucket.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BucketText<'a> {
    /// `price`, raw (a JSON string when well formed).
    pub price: Option<&'a str>,
    /// `liquidity`, raw (a JSON number when well formed).
    pub liquidity: Option<&'a str>,
}

/// Any line of the pricing stream (or the transactions stream's heartbeat), as serde reads it:
/// the union of the fields tickflow reads.
#[derive(Debug, Deserialize)]
pub struct WireLine<'a> {
    /// `PRICE`, `HEARTBEAT`, or something newer; missing on pre-Nov-2016 prices.
    #[serde(borrow, default, rename = "type")]
    pub kind: Option<Cow<'a, str>>,
    /// `EUR_USD`.
    #[serde(borrow, default)]
    pub instrument: Option<Cow<'a, str>>,
    /// RFC 3339 with nanoseconds, or (with `Accept-Datetime-Format: UNIX`) epoch seconds as a
    /// decimal string.
    #[serde(borrow, default)]
    pub time: Option<&'a RawValue>,
    /// Whether the price can be traded now; missing in 2016-era captures.
    #[serde(default)]
    pub tradeable: Option<bool>,
    /// Deprecated: `tradeable`, `non-tradeable` or `invalid`.
    #[serde(borrow, default)]
    pub status: Option<Cow<'a, str>>,
    /// Bid buckets, best (highest) first: only the best is kept.
    #[serde(borrow, default)]
    pub bids: Option<Best<'a>>,
    /// Ask buckets, best (lowest) first: only the best is kept.
    #[serde(borrow, default)]
    pub asks: Option<Best<'a>>,
}

impl<'a> From<WireLine<'a>> for LineFields<'a> {
    fn from(w: WireLine<'a>) -> Self {
        LineFields {
            kind: w.kind,
            instrument: w.instrument,
            time: w.time.map(RawValue::get),
            tradeable: w.tradeable,
            status: w.status,
            bids: w.bids.map(|Best(first)| first.map(WireBucket::text)),
            asks: w.asks.map(|Best(first)| first.map(WireBucket::text)),
        }
    }
}

/// One `PriceBucket`: `{"price":"1.09177","liquidity":10000000}`. Only a JSON object is a
/// bucket (a derived impl would also take an array, by position).
#[derive(Debug, Default)]
pub struct WireBucket<'a> {
    /// A decimal in a JSON string.
    pub price: Option<&'a RawValue>,
    /// A JSON number: an integer, or an integral float in some captures.
    pub liquidity: Option<&'a RawValue>,
}

impl<'a> WireBucket<'a> {
    fn text(self) -> BucketText<'a> {
        BucketText {
            price: self.price.map(RawValue::get),
            liquidity: self.liquidity.map(RawValue::get),
        }
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum BucketField {
    Price,
    Liquidity,
    #[serde(other)]
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for WireBucket<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for ObjectOnly<'a> {
            type Value = WireBucket<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a price bucket object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut bucket = WireBucket::default();
                let (mut price, mut liquidity) = (false, false);
                while let Some(key) = map.next_key::<BucketField>()? {
                    match key {
                        BucketField::Price if price => {
                            return Err(A::Error::duplicate_field("price"));
                        }
                        BucketField::Price => {
                            price = true;
                            bucket.price = map.next_value()?;
                        }
                        BucketField::Liquidity if liquidity => {
                            return Err(A::Error::duplicate_field("liquidity"));
                        }
                        BucketField::Liquidity => {
                            liquidity = true;
                            bucket.liquidity = map.next_value()?;
                        }
                        BucketField::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(bucket)
            }
        }

        deserializer.deserialize_map(ObjectOnly(PhantomData))
    }
}

/// The first bucket of a `bids` or `asks` array (`None` when the array is empty). The deeper
/// buckets are skipped without being looked at beyond JSON syntax: tickflow keeps the top of
/// book only, and skipping them costs no allocation.
#[derive(Debug)]
pub struct Best<'a>(pub Option<WireBucket<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Best<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FirstOnly<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for FirstOnly<'a> {
            type Value = Best<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of price buckets")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<WireBucket<'a>>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Best(first))
            }
        }

        deserializer.deserialize_seq(FirstOnly(PhantomData))
    }
}
