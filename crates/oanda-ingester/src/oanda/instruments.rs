//! OANDA instrument names and tickflow's canonical symbols (`PROTOCOLS.md` §2.1).
//!
//! OANDA names every instrument `BASE_QUOTE` with one underscore: currency pairs (`EUR_USD`),
//! metals (`XAU_USD`) and CFDs (`SPX500_USD`). The canonical symbol replaces the underscore with
//! a slash (`EUR/USD`, `XAU/USD`, `SPX500/USD`); there is no alias table. Anything without
//! exactly one underscore is refused rather than guessed at.

use smol_str::SmolStr;
use tickflow_schema::{MAX_SYMBOL_LEN, Symbol, SymbolError};

/// Why an instrument name or a symbol cannot be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstrumentError {
    /// Not `BASE_QUOTE` with exactly one `_`.
    #[error("OANDA instrument {0:?} is not BASE_QUOTE with exactly one '_' (e.g. EUR_USD)")]
    Shape(String),
    /// `BASE/QUOTE` is not a valid canonical symbol (bad characters, too long, empty part).
    #[error("OANDA instrument {instrument:?}: {source}")]
    Symbol {
        /// The instrument, shortened.
        instrument: String,
        /// What the symbol check refused.
        source: SymbolError,
    },
    /// A canonical symbol that is not a `BASE/QUOTE` pair names no OANDA instrument.
    #[error("symbol {0} is not a BASE/QUOTE pair, so it names no OANDA instrument")]
    NotAPair(String),
}

/// At most this many characters of outside input in an error.
const SHOWN: usize = 40;

fn shown(text: &str) -> String {
    let mut s: String = text.chars().take(SHOWN).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

/// The canonical symbol of an OANDA instrument: `EUR_USD` → `EUR/USD`, `XAU_USD` → `XAU/USD`,
/// `SPX500_USD` → `SPX500/USD`. Lower case is upper-cased, as [`Symbol::parse`] does.
pub fn canonical(instrument: &str) -> Result<Symbol, InstrumentError> {
    let bytes = instrument.as_bytes();
    let mut underscores = 0;
    for &b in bytes {
        underscores += usize::from(b == b'_');
        if b == b'/' {
            return Err(InstrumentError::Shape(shown(instrument)));
        }
    }
    if underscores != 1 {
        return Err(InstrumentError::Shape(shown(instrument)));
    }
    let symbol_error = |source| InstrumentError::Symbol {
        instrument: shown(instrument),
        source,
    };
    if bytes.len() > MAX_SYMBOL_LEN {
        // Let the symbol check say what is wrong, with the name as the user would write it.
        return Symbol::parse(&instrument.replace('_', "/")).map_err(symbol_error);
    }
    // Swap the underscore in a stack buffer: no allocation on the per-line path.
    let mut buf = [0u8; MAX_SYMBOL_LEN];
    for (slot, &b) in buf.iter_mut().zip(bytes) {
        *slot = if b == b'_' { b'/' } else { b };
    }
    // Replacing one ASCII byte by another keeps the text UTF-8.
    let text = std::str::from_utf8(&buf[..bytes.len()])
        .map_err(|_| InstrumentError::Shape(shown(instrument)))?;
    Symbol::parse(text).map_err(symbol_error)
}

/// The OANDA instrument name of a canonical symbol: `EUR/USD` → `EUR_USD`. A symbol without a
/// quote currency (`AAPL`) is an error.
pub fn venue_name(symbol: &Symbol) -> Result<SmolStr, InstrumentError> {
    match symbol.as_str().split_once('/') {
        Some((base, quote)) if !base.is_empty() && !quote.is_empty() => {
            let mut buf = [0u8; MAX_SYMBOL_LEN];
            let len = symbol.as_str().len().min(MAX_SYMBOL_LEN);
            for (slot, &b) in buf.iter_mut().zip(symbol.as_str().as_bytes()) {
                *slot = if b == b'/' { b'_' } else { b };
            }
            std::str::from_utf8(&buf[..len])
                .map(SmolStr::new)
                .map_err(|_| InstrumentError::NotAPair(shown(symbol.as_str())))
        }
        _ => Err(InstrumentError::NotAPair(shown(symbol.as_str()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways() {
        for (venue, canon) in [
            ("EUR_USD", "EUR/USD"),
            ("EUR_JPY", "EUR/JPY"),
            ("XAU_USD", "XAU/USD"),
            ("SPX500_USD", "SPX500/USD"),
            ("NAS100_USD", "NAS100/USD"),
        ] {
            let symbol = canonical(venue).unwrap();
            assert_eq!(symbol.as_str(), canon);
            assert_eq!(venue_name(&symbol).unwrap(), venue);
        }
        assert_eq!(canonical("eur_usd").unwrap().as_str(), "EUR/USD");
    }

    #[test]
    fn exactly_one_underscore() {
        for bad in ["EURUSD", "EUR_USD_X", "EUR__USD", "", "EUR/USD", "EUR_US/D"] {
            assert!(
                matches!(canonical(bad), Err(InstrumentError::Shape(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn what_is_no_symbol_is_refused_with_the_reason() {
        for bad in ["_USD", "EUR_", "EUR_U SD", "EUR_ÜSD", "EUR-X_USD"] {
            assert!(
                matches!(canonical(bad), Err(InstrumentError::Symbol { .. })),
                "{bad:?}"
            );
        }
        let long = format!("{}_USD", "A".repeat(40));
        let e = canonical(&long).unwrap_err();
        assert!(e.to_string().contains("at most 32"), "{e}");
        // The longest name that fits.
        let max = format!("{}_USD", "A".repeat(MAX_SYMBOL_LEN - 4));
        assert_eq!(canonical(&max).unwrap().as_str().len(), MAX_SYMBOL_LEN);
    }

    #[test]
    fn a_ticker_is_no_instrument() {
        let aapl = Symbol::parse("AAPL").unwrap();
        assert_eq!(
            venue_name(&aapl).unwrap_err(),
            InstrumentError::NotAPair("AAPL".into())
        );
    }
}
