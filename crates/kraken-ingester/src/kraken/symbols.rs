//! Kraken's pair names and tickflow's canonical symbols (`PROTOCOLS.md` §1.10).
//!
//! WebSocket v2 names pairs ISO-style (`BTC/USD`), which is tickflow's canonical form. Kraken's
//! older APIs (WebSocket v1, REST `AssetPairs.wsname`) use legacy asset codes, `XBT` for bitcoin
//! and `XDG` for dogecoin; v2 refuses them ("Currency pair not supported XBT/USD"). The mapping
//! is an explicit table of whole asset codes, never a prefix rule: `XBTC` or `XDGX` are not
//! aliases of anything.

use smol_str::SmolStr;
use tickflow_schema::{Symbol, SymbolError};

/// Kraken legacy asset code → ISO code. Whole codes only.
pub const ASSET_ALIASES: &[(&str, &str)] = &[("XBT", "BTC"), ("XDG", "DOGE")];

fn iso_asset(code: &str) -> &str {
    ASSET_ALIASES
        .iter()
        .find(|(legacy, _)| legacy.eq_ignore_ascii_case(code))
        .map_or(code, |(_, iso)| iso)
}

/// The canonical symbol of a Kraken pair name, v2 (`BTC/USD`) or legacy (`XBT/USD`).
pub fn canonical(venue: &str) -> Result<Symbol, SymbolError> {
    match venue.split_once('/') {
        Some((base, quote)) => {
            let (b, q) = (iso_asset(base), iso_asset(quote));
            if b.len() == base.len() && q.len() == quote.len() && b == base && q == quote {
                Symbol::parse(venue)
            } else {
                let mut joined = String::with_capacity(b.len() + q.len() + 1);
                joined.push_str(b);
                joined.push('/');
                joined.push_str(q);
                Symbol::parse(&joined)
            }
        }
        None => Symbol::parse(iso_asset(venue)),
    }
}

/// The name to send in a v2 subscribe request for a canonical symbol. Canonical symbols are
/// already ISO-style; a legacy code that slipped through (`XBT/USD`) is translated, because v2
/// would refuse it.
pub fn venue_name(symbol: &Symbol) -> SmolStr {
    match canonical(symbol.as_str()) {
        Ok(iso) => SmolStr::new(iso.as_str()),
        Err(_) => SmolStr::new(symbol.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_codes_map_through_the_table() {
        assert_eq!(canonical("XBT/USD").unwrap().as_str(), "BTC/USD");
        assert_eq!(canonical("KSM/XBT").unwrap().as_str(), "KSM/BTC");
        assert_eq!(canonical("XDG/USD").unwrap().as_str(), "DOGE/USD");
        assert_eq!(canonical("xbt/eur").unwrap().as_str(), "BTC/EUR");
        assert_eq!(canonical("BTC/USD").unwrap().as_str(), "BTC/USD");
        assert_eq!(canonical("ETH/CHF").unwrap().as_str(), "ETH/CHF");
    }

    #[test]
    fn no_prefix_rule() {
        // Codes that merely start with an alias are left alone.
        assert_eq!(canonical("XBTC/USD").unwrap().as_str(), "XBTC/USD");
        assert_eq!(canonical("XDGX/USD").unwrap().as_str(), "XDGX/USD");
        assert_eq!(canonical("AXBT/USD").unwrap().as_str(), "AXBT/USD");
    }

    #[test]
    fn venue_names_are_iso() {
        let s = Symbol::parse("XBT/USD").unwrap();
        assert_eq!(venue_name(&s), "BTC/USD");
        assert_eq!(venue_name(&Symbol::parse("ETH/USD").unwrap()), "ETH/USD");
    }

    #[test]
    fn bad_names_are_errors() {
        assert!(canonical("").is_err());
        assert!(canonical("BTC/USD/EUR").is_err());
        assert!(canonical("../etc").is_err());
    }
}
