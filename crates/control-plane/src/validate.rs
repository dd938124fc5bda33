//! Validation of what clients send. Every refusal is `INVALID_ARGUMENT` with a message that says
//! what is wrong and what would be right; nothing is written before validation passed.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use tickflow_schema::{Source, Symbol};
use tonic::Status;

/// The most sources one request may name (there are three).
const MAX_SOURCES: usize = 8;

/// A canonical symbol: `BASE/QUOTE` or a plain ticker from a safe alphabet, at most 32 bytes.
/// Legacy venue spellings are not canonical (`XBT/USD` is `BTC/USD`).
pub fn symbol(input: &str) -> Result<Symbol, Status> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(Status::invalid_argument(
            "symbol is empty: give BASE/QUOTE (BTC/USD) or a ticker (AAPL)",
        ));
    }
    let symbol = Symbol::parse(trimmed)
        .map_err(|e| Status::invalid_argument(format!("invalid symbol: {e}")))?;
    for (legacy, canonical) in [("XBT", "BTC"), ("XDG", "DOGE")] {
        if symbol.base() == legacy || symbol.quote() == Some(legacy) {
            return Err(Status::invalid_argument(format!(
                "{symbol} uses the legacy code {legacy}: the canonical symbol uses {canonical}"
            )));
        }
    }
    Ok(symbol)
}

/// One source name.
pub fn source(input: &str) -> Result<Source, Status> {
    input.trim().parse::<Source>().map_err(|_| {
        Status::invalid_argument(format!(
            "unknown source {:?}: expected kraken, oanda or dukascopy",
            shown(input)
        ))
    })
}

/// A non-empty set of distinct sources.
pub fn sources(inputs: &[String]) -> Result<BTreeSet<Source>, Status> {
    if inputs.is_empty() {
        return Err(Status::invalid_argument(
            "no source given: name at least one of kraken, oanda, dukascopy",
        ));
    }
    if inputs.len() > MAX_SOURCES {
        return Err(Status::invalid_argument(format!(
            "{} sources given: there are only kraken, oanda and dukascopy",
            inputs.len()
        )));
    }
    inputs.iter().map(|s| source(s)).collect()
}

/// A UTC date `YYYY-MM-DD`, not before 2000-01-01 and not in the future. Empty is `None`.
pub fn history_start(input: &str) -> Result<Option<NaiveDate>, Status> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let date = NaiveDate::parse_from_str(trimmed, "%Y-%m-%d").map_err(|_| {
        Status::invalid_argument(format!(
            "history start {:?} is not a date: use YYYY-MM-DD",
            shown(input)
        ))
    })?;
    let earliest = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
    let today = chrono::Utc::now().date_naive();
    if date < earliest || date > today {
        return Err(Status::invalid_argument(format!(
            "history start {date} is outside 2000-01-01 ..= {today}"
        )));
    }
    Ok(Some(date))
}

/// Input shown back to the client, bounded and without control characters.
fn shown(input: &str) -> String {
    input
        .chars()
        .take(40)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn refused(r: Result<impl std::fmt::Debug, Status>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        e.message().to_owned()
    }

    #[test]
    fn good_symbols_are_canonical() {
        assert_eq!(symbol("btc/usd").unwrap().as_str(), "BTC/USD");
        assert_eq!(symbol(" EUR/USD ").unwrap().as_str(), "EUR/USD");
        assert_eq!(symbol("AAPL").unwrap().as_str(), "AAPL");
    }

    #[test]
    fn bad_symbols_say_what_is_wrong() {
        for (input, says) in [
            ("", "empty"),
            ("   ", "empty"),
            ("BTC/USD/EUR", "more than one"),
            ("../etc/passwd", "invalid"),
            ("BTC/USD'; DROP TABLE symbols;--", "invalid"),
            ("BTC USD", "whitespace"),
            (&"A".repeat(40), "long"),
            ("XBT/USD", "legacy code xbt"),
            ("BTC/\u{0}", "invalid"),
        ] {
            let msg = refused(symbol(input));
            assert!(msg.to_lowercase().contains(says), "{input:?}: {msg}");
        }
    }

    #[test]
    fn sources_must_be_known_and_present() {
        assert_eq!(
            sources(&["kraken".into(), "kraken".into()]).unwrap().len(),
            1
        );
        assert!(refused(sources(&[])).contains("no source"));
        assert!(refused(sources(&["binance".into()])).contains("unknown source"));
        assert!(refused(sources(&vec!["kraken".to_owned(); 9])).contains("9 sources"));
    }

    #[test]
    fn history_start_is_a_sane_date() {
        assert_eq!(history_start("").unwrap(), None);
        assert!(history_start("2024-01-01").unwrap().is_some());
        assert!(refused(history_start("2024-13-01")).contains("YYYY-MM-DD"));
        assert!(refused(history_start("1999-12-31")).contains("outside"));
        assert!(refused(history_start("2999-01-01")).contains("outside"));
        assert!(refused(history_start("yesterday")).contains("not a date"));
    }
}
