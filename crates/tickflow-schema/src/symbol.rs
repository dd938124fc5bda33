use std::fmt;

use smol_str::SmolStr;

/// The longest canonical symbol accepted, in bytes.
pub const MAX_SYMBOL_LEN: usize = 32;

/// A canonical instrument symbol: `BASE/QUOTE` (`BTC/USD`, `EUR/USD`) or a plain ticker (`AAPL`).
///
/// Both parts are ASCII letters and digits only, upper case (lower case input is upper-cased), at
/// most [`MAX_SYMBOL_LEN`] bytes in all, with at most one `/`. Anything else, whitespace, `..`,
/// a second `/`, `-`, `_`, `.` or a non-ASCII character, is rejected with a [`SymbolError`] saying
/// what is wrong. The alphabet is chosen so that the symbol is safe inside a Pulsar topic name,
/// a URL path and a SQL literal, and so that two symbols never share a slug.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Symbol(SmolStr);

/// What is wrong with a symbol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    /// Nothing was given.
    #[error("symbol is empty")]
    Empty,
    /// Longer than [`MAX_SYMBOL_LEN`].
    #[error("symbol {shown} is {len} bytes long; at most {MAX_SYMBOL_LEN} are allowed", shown = Shown(.symbol))]
    TooLong {
        /// What was given (shown shortened).
        symbol: String,
        /// Its length in bytes.
        len: usize,
    },
    /// Contains whitespace anywhere.
    #[error("symbol {} contains whitespace", Shown(.0))]
    Whitespace(String),
    /// Contains `..`.
    #[error("symbol {} contains '..'", Shown(.0))]
    DotDot(String),
    /// More than one `/`.
    #[error("symbol {} has more than one '/': use BASE/QUOTE", Shown(.0))]
    TooManySeparators(String),
    /// `/` with nothing before or after it.
    #[error("symbol {} has an empty base or quote: use BASE/QUOTE", Shown(.0))]
    EmptyPart(String),
    /// A character outside ASCII letters, digits and the one `/`.
    #[error("symbol {shown} contains {ch:?}: only ASCII letters and digits, and one '/' between base and quote, are allowed", shown = Shown(.symbol))]
    InvalidChar {
        /// What was given.
        symbol: String,
        /// The first offending character.
        ch: char,
    },
}

/// Displays user input in an error message quoted and cut to a sane length.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 40;
        if self.0.chars().count() > MAX {
            let cut: String = self.0.chars().take(MAX).collect();
            write!(f, "{:?}...", cut)
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

impl Symbol {
    /// Validates and canonicalises (upper-cases) a symbol.
    pub fn parse(input: &str) -> Result<Self, SymbolError> {
        // Fast path, one pass over the bytes: ASCII alphanumerics with at most one inner '/'.
        let bytes = input.as_bytes();
        if !bytes.is_empty() && bytes.len() <= MAX_SYMBOL_LEN {
            let mut upper = [0u8; MAX_SYMBOL_LEN];
            let mut slash = None;
            let mut ok = true;
            for (i, &b) in bytes.iter().enumerate() {
                if b == b'/' {
                    ok &= slash.is_none() && i > 0 && i + 1 < bytes.len();
                    slash = Some(i);
                } else {
                    ok &= b.is_ascii_alphanumeric();
                }
                upper[i] = b.to_ascii_uppercase();
            }
            if ok && let Ok(text) = std::str::from_utf8(&upper[..bytes.len()]) {
                // Inline (no allocation) up to SmolStr's 23 bytes; `new_inline` panics beyond.
                return Ok(Self(SmolStr::new(text)));
            }
        }
        Self::reject(input)
    }

    /// Says what is wrong with a symbol the fast path refused.
    fn reject(input: &str) -> Result<Self, SymbolError> {
        if input.is_empty() {
            return Err(SymbolError::Empty);
        }
        if input.chars().any(char::is_whitespace) {
            return Err(SymbolError::Whitespace(input.to_owned()));
        }
        if input.len() > MAX_SYMBOL_LEN {
            return Err(SymbolError::TooLong {
                symbol: input.to_owned(),
                len: input.len(),
            });
        }
        if input.contains("..") {
            return Err(SymbolError::DotDot(input.to_owned()));
        }
        let mut parts = input.split('/');
        let base = parts.next().unwrap_or_default();
        let quote = parts.next();
        if parts.next().is_some() {
            return Err(SymbolError::TooManySeparators(input.to_owned()));
        }
        if base.is_empty() || quote.is_some_and(str::is_empty) {
            return Err(SymbolError::EmptyPart(input.to_owned()));
        }
        if let Some(ch) = input
            .chars()
            .find(|c| *c != '/' && !c.is_ascii_alphanumeric())
        {
            return Err(SymbolError::InvalidChar {
                symbol: input.to_owned(),
                ch,
            });
        }
        // Only reachable if the fast path and these checks disagree: refuse rather than accept.
        Err(SymbolError::InvalidChar {
            symbol: input.to_owned(),
            ch: '?',
        })
    }

    /// The canonical text, `BTC/USD`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The base currency or the ticker: `BTC` of `BTC/USD`.
    pub fn base(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }

    /// The quote currency, if the symbol is a pair: `USD` of `BTC/USD`.
    pub fn quote(&self) -> Option<&str> {
        self.0.split_once('/').map(|(_, q)| q)
    }

    /// The symbol as it appears in topic names: lower case, `/` turned into `-` (`btc-usd`).
    pub fn slug(&self) -> String {
        self.0.to_ascii_lowercase().replace('/', "-")
    }

    /// The inverse of [`Symbol::slug`].
    pub fn from_slug(slug: &str) -> Result<Self, SymbolError> {
        if slug.matches('-').count() > 1 {
            return Err(SymbolError::TooManySeparators(slug.to_owned()));
        }
        Self::parse(&slug.replace('-', "/"))
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.0)
    }
}

impl std::str::FromStr for Symbol {
    type Err = SymbolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Symbol {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_length_up_to_the_maximum() {
        // Found by fuzzing the Kraken parser: 24..=32 bytes once panicked (SmolStr's inline cap).
        for len in 1..=MAX_SYMBOL_LEN {
            let text = format!("ALGO/{}", "c".repeat(len.saturating_sub(5).max(1)));
            let text = if len < 6 { "A".repeat(len) } else { text };
            let s = Symbol::parse(&text).unwrap();
            assert_eq!(s.as_str(), text.to_ascii_uppercase());
        }
        assert!(Symbol::parse(&"A".repeat(MAX_SYMBOL_LEN + 1)).is_err());
    }

    #[test]
    fn accepts_pairs_and_tickers_and_canonicalises_case() {
        assert_eq!(Symbol::parse("BTC/USD").unwrap().as_str(), "BTC/USD");
        assert_eq!(Symbol::parse("eth/usd").unwrap().as_str(), "ETH/USD");
        assert_eq!(Symbol::parse("1INCH/USD").unwrap().base(), "1INCH");
        assert_eq!(Symbol::parse("AAPL").unwrap().quote(), None);
        assert_eq!(Symbol::parse("EUR/USD").unwrap().quote(), Some("USD"));
    }

    #[test]
    fn slug_round_trips() {
        let s = Symbol::parse("BTC/USD").unwrap();
        assert_eq!(s.slug(), "btc-usd");
        assert_eq!(Symbol::from_slug("btc-usd").unwrap(), s);
        assert_eq!(Symbol::from_slug("aapl").unwrap().as_str(), "AAPL");
        assert!(Symbol::from_slug("a-b-c").is_err());
    }

    #[test]
    fn rejects_what_is_not_a_sane_symbol_with_a_reason() {
        let cases: &[(&str, SymbolError)] = &[
            ("", SymbolError::Empty),
            ("BTC /USD", SymbolError::Whitespace("BTC /USD".into())),
            ("BTC/USD\n", SymbolError::Whitespace("BTC/USD\n".into())),
            ("../etc", SymbolError::DotDot("../etc".into())),
            (
                "BTC/USD/X",
                SymbolError::TooManySeparators("BTC/USD/X".into()),
            ),
            ("/USD", SymbolError::EmptyPart("/USD".into())),
            ("BTC/", SymbolError::EmptyPart("BTC/".into())),
            (
                "BTC-USD",
                SymbolError::InvalidChar {
                    symbol: "BTC-USD".into(),
                    ch: '-',
                },
            ),
            (
                "EUR_USD",
                SymbolError::InvalidChar {
                    symbol: "EUR_USD".into(),
                    ch: '_',
                },
            ),
            (
                "A';DROP",
                SymbolError::InvalidChar {
                    symbol: "A';DROP".into(),
                    ch: '\'',
                },
            ),
            (
                "BTC/ÜSD",
                SymbolError::InvalidChar {
                    symbol: "BTC/ÜSD".into(),
                    ch: 'Ü',
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(Symbol::parse(input).unwrap_err(), *want, "input {input:?}");
        }
        let long = "A".repeat(33);
        assert_eq!(
            Symbol::parse(&long).unwrap_err().to_string(),
            format!(
                "symbol {:?} is 33 bytes long; at most 32 are allowed",
                "A".repeat(33)
            )
        );
        assert_eq!(
            Symbol::parse("BTC-USD").unwrap_err().to_string(),
            "symbol \"BTC-USD\" contains '-': only ASCII letters and digits, and one '/' between base and quote, are allowed"
        );
    }
}
