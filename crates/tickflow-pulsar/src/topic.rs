//! Topic names: `persistent://market-data/<namespace>/<source>.<symbol-slug>.<kind>`.

use std::fmt;

use tickflow_schema::{Source, Symbol, SymbolError, TickKind};

/// The Pulsar tenant every tickflow topic lives in.
pub const TENANT: &str = "market-data";

/// The namespaces of [`TENANT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    /// Live ticks from the ingesters.
    Realtime,
    /// Backfilled ticks.
    Historical,
    /// Backfill jobs, dead letters, events.
    Control,
}

impl Namespace {
    /// Every namespace.
    pub const ALL: [Namespace; 3] = [
        Namespace::Realtime,
        Namespace::Historical,
        Namespace::Control,
    ];

    /// The namespace's own name, `realtime`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Namespace::Realtime => "realtime",
            Namespace::Historical => "historical",
            Namespace::Control => "control",
        }
    }

    /// `market-data/realtime`, as the admin API and regex lookups want it.
    pub fn qualified(self) -> String {
        format!("{TENANT}/{}", self.as_str())
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == s)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a topic name could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The symbol is not a canonical symbol.
    #[error(transparent)]
    Symbol(#[from] SymbolError),
    /// Data topics live in `realtime` or `historical`, never in `control`.
    #[error("data topics live in the realtime or historical namespace, not {0}")]
    NotADataNamespace(Namespace),
    /// A control topic name outside the safe alphabet (`a-z`, `0-9`, `-`, at most 64 bytes).
    #[error("control topic name {0:?} must be 1 to 64 characters of a-z, 0-9 and '-'")]
    BadControlName(String),
    /// The text is not a tickflow topic name.
    #[error(
        "{0:?} is not a tickflow topic (persistent://market-data/<namespace>/<source>.<slug>.<kind>)"
    )]
    NotATickflowTopic(String),
}

/// A fully qualified tickflow topic name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName {
    namespace: Namespace,
    local: String,
    data: Option<(Source, Symbol, TickKind)>,
}

impl TopicName {
    /// The data topic for (namespace, source, symbol, kind):
    /// `persistent://market-data/realtime/kraken.btc-usd.trade`.
    pub fn data(
        namespace: Namespace,
        source: Source,
        symbol: &Symbol,
        kind: TickKind,
    ) -> Result<Self, TopicError> {
        if namespace == Namespace::Control {
            return Err(TopicError::NotADataNamespace(namespace));
        }
        Ok(Self {
            namespace,
            local: format!("{}.{}.{}", source.as_str(), symbol.slug(), kind.as_str()),
            data: Some((source, symbol.clone(), kind)),
        })
    }

    /// Like [`TopicName::data`], validating the symbol text first.
    pub fn for_symbol(
        namespace: Namespace,
        source: Source,
        symbol: &str,
        kind: TickKind,
    ) -> Result<Self, TopicError> {
        Self::data(namespace, source, &Symbol::parse(symbol)?, kind)
    }

    /// A topic of the `control` namespace: `persistent://market-data/control/dlq`.
    pub fn control(name: &str) -> Result<Self, TopicError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(TopicError::BadControlName(name.to_owned()));
        }
        Ok(Self {
            namespace: Namespace::Control,
            local: name.to_owned(),
            data: None,
        })
    }

    /// The dead-letter topic.
    pub fn dead_letters() -> Self {
        Self {
            namespace: Namespace::Control,
            local: "dlq".to_owned(),
            data: None,
        }
    }

    /// Parses a full name (as Pulsar reports it in messages and listings) back. Partition suffixes
    /// (`-partition-3`) are stripped.
    pub fn parse(full: &str) -> Result<Self, TopicError> {
        let bad = || TopicError::NotATickflowTopic(full.to_owned());
        let rest = full.strip_prefix("persistent://").ok_or_else(bad)?;
        let mut parts = rest.splitn(3, '/');
        let (tenant, ns, local) = (parts.next(), parts.next(), parts.next());
        if tenant != Some(TENANT) {
            return Err(bad());
        }
        let namespace = ns.and_then(Namespace::parse).ok_or_else(bad)?;
        let local = local.ok_or_else(bad)?;
        let local = match local.rsplit_once("-partition-") {
            Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
            _ => local,
        };
        if namespace == Namespace::Control {
            return Self::control(local).map_err(|_| bad());
        }
        let mut fields = local.split('.');
        let (src, slug, kind, extra) = (fields.next(), fields.next(), fields.next(), fields.next());
        let (Some(src), Some(slug), Some(kind), None) = (src, slug, kind, extra) else {
            return Err(bad());
        };
        let source = src.parse::<Source>().map_err(|_| bad())?;
        let kind = match kind {
            "trade" => TickKind::Trade,
            "quote" => TickKind::Quote,
            _ => return Err(bad()),
        };
        let symbol = Symbol::from_slug(slug)?;
        let topic = Self::data(namespace, source, &symbol, kind)?;
        // The slug must be the canonical one (lower case), or two names would mean one topic.
        if topic.local != local {
            return Err(bad());
        }
        Ok(topic)
    }

    /// The namespace.
    pub fn namespace(&self) -> Namespace {
        self.namespace
    }

    /// The name within the namespace: `kraken.btc-usd.trade`.
    pub fn local_name(&self) -> &str {
        &self.local
    }

    /// (source, symbol, kind) for a data topic.
    pub fn data_parts(&self) -> Option<(Source, &Symbol, TickKind)> {
        self.data.as_ref().map(|(s, sym, k)| (*s, sym, *k))
    }

    /// The admin REST path of the topic below `/admin/v2/persistent/`: `market-data/realtime/kraken.btc-usd.trade`.
    pub fn rest_path(&self) -> String {
        format!("{TENANT}/{}/{}", self.namespace.as_str(), self.local)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "persistent://{TENANT}/{}/{}",
            self.namespace.as_str(),
            self.local
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_documented_names() {
        let t = TopicName::for_symbol(
            Namespace::Realtime,
            Source::Kraken,
            "BTC/USD",
            TickKind::Trade,
        )
        .unwrap();
        assert_eq!(
            t.to_string(),
            "persistent://market-data/realtime/kraken.btc-usd.trade"
        );
        let t = TopicName::for_symbol(
            Namespace::Historical,
            Source::Dukascopy,
            "eur/usd",
            TickKind::Quote,
        )
        .unwrap();
        assert_eq!(
            t.to_string(),
            "persistent://market-data/historical/dukascopy.eur-usd.quote"
        );
        assert_eq!(
            t.rest_path(),
            "market-data/historical/dukascopy.eur-usd.quote"
        );
        assert_eq!(
            TopicName::dead_letters().to_string(),
            "persistent://market-data/control/dlq"
        );
        assert_eq!(
            TopicName::control("backfill-jobs").unwrap().to_string(),
            "persistent://market-data/control/backfill-jobs"
        );
    }

    #[test]
    fn parses_back_including_partitions() {
        for s in [
            "persistent://market-data/realtime/kraken.btc-usd.trade",
            "persistent://market-data/historical/dukascopy.eur-usd.quote",
            "persistent://market-data/realtime/oanda.aapl.quote",
            "persistent://market-data/control/dlq",
        ] {
            assert_eq!(TopicName::parse(s).unwrap().to_string(), s);
        }
        let p =
            TopicName::parse("persistent://market-data/realtime/kraken.btc-usd.trade-partition-3")
                .unwrap();
        assert_eq!(
            p.to_string(),
            "persistent://market-data/realtime/kraken.btc-usd.trade"
        );
        let (src, sym, kind) = p.data_parts().unwrap();
        assert_eq!(
            (src, sym.as_str(), kind),
            (Source::Kraken, "BTC/USD", TickKind::Trade)
        );
    }

    #[test]
    fn rejects_bad_symbols_and_foreign_names_with_typed_errors() {
        let err = TopicName::for_symbol(
            Namespace::Realtime,
            Source::Kraken,
            "BTC/../USD",
            TickKind::Trade,
        )
        .unwrap_err();
        assert!(matches!(err, TopicError::Symbol(SymbolError::DotDot(_))));
        let err = TopicName::for_symbol(
            Namespace::Realtime,
            Source::Kraken,
            "BTC/USD/EUR",
            TickKind::Trade,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            TopicError::Symbol(SymbolError::TooManySeparators(_))
        ));
        let err = TopicName::for_symbol(
            Namespace::Realtime,
            Source::Kraken,
            "BTC USD",
            TickKind::Trade,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            TopicError::Symbol(SymbolError::Whitespace(_))
        ));
        let err = TopicName::for_symbol(
            Namespace::Realtime,
            Source::Kraken,
            &"X".repeat(40),
            TickKind::Trade,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            TopicError::Symbol(SymbolError::TooLong { len: 40, .. })
        ));
        assert_eq!(
            TopicName::for_symbol(
                Namespace::Control,
                Source::Kraken,
                "BTC/USD",
                TickKind::Trade
            )
            .unwrap_err(),
            TopicError::NotADataNamespace(Namespace::Control)
        );
        assert!(TopicName::control("../x").is_err());
        for bad in [
            "persistent://public/default/kraken.btc-usd.trade",
            "non-persistent://market-data/realtime/kraken.btc-usd.trade",
            "persistent://market-data/realtime/binance.btc-usd.trade",
            "persistent://market-data/realtime/kraken.btc-usd.book",
            "persistent://market-data/realtime/kraken.BTC-usd.trade",
            "persistent://market-data/realtime/kraken.btc-usd",
            "persistent://market-data/realtime/kraken.btc-usd.trade.x",
        ] {
            assert!(TopicName::parse(bad).is_err(), "{bad}");
        }
    }
}
