//! tickflow's table of the Dukascopy instruments it supports, with their point values.
//!
//! Dukascopy stores prices as integer points; the point value (the "decimal factor") depends on
//! the instrument and does not follow a rule of thumb: most FX pairs have 5 decimals, JPY pairs
//! and metals 3, BTC and ETH 1, USD/CZK 4, USD/HUF 3, USD/SAR 2 (PROTOCOLS.md §3.5). A
//! downloader that assumes 5 everywhere gets JPY pairs 100× wrong. So the scale comes from this
//! table only, and a test checks every row against `instrument_decimal_factors.csv` (derived
//! from dukascopy-node's instrument metadata).
//!
//! The table holds the G10 majors and crosses, the common USD and EUR emerging/Scandinavian
//! pairs, gold and silver in USD and EUR, and the main crypto pairs (BTC/USD and the other ones
//! the fixtures and the CSV support). Indices, commodities and stock CFDs are left out until
//! tickflow decides their canonical symbols.

use rust_decimal::Decimal;
use tickflow_schema::Symbol;

use crate::Bi5Error;

/// One supported instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instrument {
    /// tickflow's canonical symbol, `EUR/USD`.
    pub symbol: &'static str,
    /// The datafeed's symbol, as in the URL: `EURUSD`.
    pub datafeed_symbol: &'static str,
    /// Decimal places of a price: price = points / 10^scale.
    pub scale: u32,
}

const fn inst(symbol: &'static str, datafeed_symbol: &'static str, scale: u32) -> Instrument {
    Instrument {
        symbol,
        datafeed_symbol,
        scale,
    }
}

/// Every supported instrument.
pub const INSTRUMENTS: &[Instrument] = &[
    // G10 majors and crosses.
    inst("EUR/USD", "EURUSD", 5),
    inst("GBP/USD", "GBPUSD", 5),
    inst("USD/JPY", "USDJPY", 3),
    inst("USD/CHF", "USDCHF", 5),
    inst("AUD/USD", "AUDUSD", 5),
    inst("USD/CAD", "USDCAD", 5),
    inst("NZD/USD", "NZDUSD", 5),
    inst("EUR/GBP", "EURGBP", 5),
    inst("EUR/JPY", "EURJPY", 3),
    inst("EUR/CHF", "EURCHF", 5),
    inst("EUR/AUD", "EURAUD", 5),
    inst("EUR/CAD", "EURCAD", 5),
    inst("EUR/NZD", "EURNZD", 5),
    inst("GBP/JPY", "GBPJPY", 3),
    inst("GBP/CHF", "GBPCHF", 5),
    inst("GBP/AUD", "GBPAUD", 5),
    inst("GBP/CAD", "GBPCAD", 5),
    inst("GBP/NZD", "GBPNZD", 5),
    inst("CHF/JPY", "CHFJPY", 3),
    inst("AUD/JPY", "AUDJPY", 3),
    inst("CAD/JPY", "CADJPY", 3),
    inst("NZD/JPY", "NZDJPY", 3),
    inst("AUD/CHF", "AUDCHF", 5),
    inst("AUD/CAD", "AUDCAD", 5),
    inst("AUD/NZD", "AUDNZD", 5),
    inst("CAD/CHF", "CADCHF", 5),
    inst("NZD/CAD", "NZDCAD", 5),
    inst("NZD/CHF", "NZDCHF", 5),
    // USD and EUR against Scandinavian and emerging-market currencies.
    inst("USD/NOK", "USDNOK", 5),
    inst("USD/SEK", "USDSEK", 5),
    inst("USD/DKK", "USDDKK", 5),
    inst("USD/PLN", "USDPLN", 5),
    inst("USD/CZK", "USDCZK", 4),
    inst("USD/HUF", "USDHUF", 3),
    inst("USD/TRY", "USDTRY", 5),
    inst("USD/ZAR", "USDZAR", 5),
    inst("USD/MXN", "USDMXN", 5),
    inst("USD/SGD", "USDSGD", 5),
    inst("USD/HKD", "USDHKD", 5),
    inst("USD/CNH", "USDCNH", 5),
    inst("USD/THB", "USDTHB", 4),
    inst("USD/ILS", "USDILS", 5),
    inst("USD/RON", "USDRON", 5),
    inst("USD/SAR", "USDSAR", 2),
    inst("USD/AED", "USDAED", 2),
    inst("EUR/NOK", "EURNOK", 5),
    inst("EUR/SEK", "EURSEK", 5),
    inst("EUR/DKK", "EURDKK", 5),
    inst("EUR/PLN", "EURPLN", 5),
    inst("EUR/CZK", "EURCZK", 4),
    inst("EUR/HUF", "EURHUF", 3),
    inst("EUR/TRY", "EURTRY", 5),
    inst("EUR/ZAR", "EURZAR", 5),
    // Metals.
    inst("XAU/USD", "XAUUSD", 3),
    inst("XAG/USD", "XAGUSD", 3),
    inst("XAU/EUR", "XAUEUR", 3),
    inst("XAG/EUR", "XAGEUR", 3),
    // Crypto.
    inst("BTC/USD", "BTCUSD", 1),
    inst("ETH/USD", "ETHUSD", 1),
    inst("LTC/USD", "LTCUSD", 1),
    inst("BCH/USD", "BCHUSD", 1),
    inst("BTC/EUR", "BTCEUR", 1),
    inst("ETH/EUR", "ETHEUR", 1),
];

/// The instrument of a canonical symbol.
pub fn lookup(symbol: &Symbol) -> Option<&'static Instrument> {
    INSTRUMENTS.iter().find(|i| i.symbol == symbol.as_str())
}

/// The instrument of a datafeed symbol (`EURUSD`; upper case, as in the URL).
pub fn by_datafeed_symbol(datafeed_symbol: &str) -> Option<&'static Instrument> {
    INSTRUMENTS
        .iter()
        .find(|i| i.datafeed_symbol == datafeed_symbol)
}

/// The number of decimal places of the symbol's prices (price = points / 10^scale), or `None`
/// if tickflow does not support the instrument.
pub fn price_scale(symbol: &Symbol) -> Option<u32> {
    lookup(symbol).map(|i| i.scale)
}

/// An exact price from points: `Decimal::new(points, scale)`, `114476` at 5 → `1.14476`.
pub fn price(points: u32, scale: u32) -> Result<Decimal, Bi5Error> {
    Decimal::try_new(i64::from(points), scale).map_err(|_| Bi5Error::Price { points, scale })
}

/// [`price_scale`], or [`Bi5Error::UnknownInstrument`].
pub(crate) fn require_scale(symbol: &Symbol) -> Result<u32, Bi5Error> {
    price_scale(symbol).ok_or_else(|| Bi5Error::UnknownInstrument(symbol.as_str().to_owned()))
}
