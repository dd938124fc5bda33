//! Which live replica owns which symbol: rendezvous (highest random weight) hashing.
//!
//! Every (replica, symbol) pair gets a pseudo-random weight; a symbol belongs to the replica with
//! the highest weight. So every replica computes the same answer from the same inputs, load
//! spreads evenly, and when a replica joins or leaves only the symbols it gains or loses move
//! (about 1/n of them), never a reshuffle of the rest.

use std::collections::{BTreeMap, BTreeSet};

/// A stable 64-bit hash (FNV-1a, then a SplitMix64 finaliser so that similar names spread).
/// Stable across processes and versions, unlike `std`'s `DefaultHasher`.
fn weight(replica: &str, symbol: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in replica.bytes().chain([0xff]).chain(symbol.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The owner of `symbol` among `replicas` (`None` when there is no replica). Ties, which need a
/// 64-bit collision, go to the smaller replica name.
pub fn owner<'a>(symbol: &str, replicas: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    replicas
        .into_iter()
        .map(|r| (weight(r, symbol), std::cmp::Reverse(r), r))
        .max()
        .map(|(_, _, r)| r)
}

/// Every replica's symbols (replicas without any get an empty set).
pub fn assign<'a>(
    symbols: impl IntoIterator<Item = &'a str>,
    replicas: &BTreeSet<String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = replicas
        .iter()
        .map(|r| (r.clone(), BTreeSet::new()))
        .collect();
    for symbol in symbols {
        if let Some(r) = owner(symbol, replicas.iter().map(String::as_str)) {
            out.entry(r.to_owned())
                .or_default()
                .insert(symbol.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn symbols(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("SYM{i}/USD")).collect()
    }

    fn replicas(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_symbol_has_exactly_one_owner_and_load_is_even() {
        let syms = symbols(10_000);
        let rs = replicas(&["kraken-a", "kraken-b", "kraken-c"]);
        let a = assign(syms.iter().map(String::as_str), &rs);
        let total: usize = a.values().map(BTreeSet::len).sum();
        assert_eq!(total, 10_000);
        for (r, s) in &a {
            assert!(
                (3_000..=3_700).contains(&s.len()),
                "{r} has {} of 10,000",
                s.len()
            );
        }
    }

    #[test]
    fn a_leaving_replica_moves_only_its_own_symbols() {
        let syms = symbols(5_000);
        let before = assign(syms.iter().map(String::as_str), &replicas(&["a", "b", "c"]));
        let after = assign(syms.iter().map(String::as_str), &replicas(&["a", "c"]));
        for r in ["a", "c"] {
            assert!(before[r].is_subset(&after[r]), "{r} kept all it had");
        }
        let moved: usize = after.values().map(BTreeSet::len).sum::<usize>()
            - before["a"].len()
            - before["c"].len();
        assert_eq!(moved, before["b"].len(), "only b's symbols moved");
    }

    #[test]
    fn a_joining_replica_takes_about_its_share_and_nothing_else_moves() {
        let syms = symbols(5_000);
        let before = assign(syms.iter().map(String::as_str), &replicas(&["a", "b"]));
        let after = assign(syms.iter().map(String::as_str), &replicas(&["a", "b", "c"]));
        for r in ["a", "b"] {
            assert!(after[r].is_subset(&before[r]), "{r} only lost symbols");
        }
        let taken = after["c"].len();
        assert!((1_400..=1_950).contains(&taken), "c took {taken} of 5,000");
    }

    #[test]
    fn no_replica_no_owner() {
        assert_eq!(owner("BTC/USD", std::iter::empty()), None);
        assert!(assign(["BTC/USD"], &BTreeSet::new()).is_empty());
    }

    proptest! {
        #[test]
        fn the_owner_is_one_of_the_replicas_and_order_does_not_matter(
            symbol in "[A-Z]{2,6}/[A-Z]{3}",
            mut names in prop::collection::vec("[a-z0-9-]{1,12}", 1..8),
        ) {
            let first = owner(&symbol, names.iter().map(String::as_str)).map(str::to_owned);
            names.reverse();
            let second = owner(&symbol, names.iter().map(String::as_str)).map(str::to_owned);
            prop_assert_eq!(&first, &second);
            prop_assert!(names.contains(first.as_ref().unwrap()));
        }
    }
}
