//! Deterministic, realistic-looking Dukascopy tick hours for tests and benchmarks.
//!
//! Everything is integer arithmetic on a SplitMix64 stream seeded from `(seed, sym, hour)`, so the
//! same arguments give the same ticks on every platform. Volumes are chosen as decimal text and
//! parsed into `f32`, so they are exactly the `f32`s Dukascopy's own decimals would give.

use super::codec::{HOUR_MS, SimTick};

/// `HOUR_MS` as the `u32` range of `ms_in_hour`.
const HOUR_MS_U32: u32 = 3_600_000;
const MINUTE_MS: u32 = 60_000;
/// Highest mid (in half-points) the walk may reach, so `ask` never overflows.
const MAX_MID2: u64 = (u32::MAX as u64 - 64) * 2;

/// Generates one hour of ticks: a random walk of the mid starting at `base_points` (in points at
/// `scale`), deterministic in all arguments (the same arguments always give the same ticks).
///
/// * About `mean_ticks` ticks (uniformly within ±20%; `0` gives an empty hour).
/// * `ms_in_hour` offsets are non-decreasing and below 3 600 000. Ticks come in bursts (clusters a
///   few milliseconds apart, sometimes in the same millisecond) with busy minutes, quiet minutes and
///   sometimes a silent stretch of several minutes.
/// * The spread is mostly 1–3 points, sometimes up to 6; `ask_points >= bid_points + 1` always. The
///   mid moves by 0–2 points a tick with occasional jumps of up to 8, and stays within
///   `1..u32::MAX - 64`.
/// * Volumes are `f32` millions as in Dukascopy's FX files: mostly 0.9 and 1.8, otherwise multiples
///   of 0.45 (0.45, 1.35, 2.25, 2.7, ...) and now and then a multiple of 0.09. For `scale <= 2`
///   (Dukascopy's crypto, e.g. BTCUSD at 10 points per unit) volumes are tiny instead, like the
///   BTCUSD fixtures: multiples of 0.000001 up to 0.000013, sometimes 0.0.
///
/// `sym` and `hour_start_ms` only seed the generator, so different symbols and hours differ.
pub fn generate_hour(
    sym: &str,
    hour_start_ms: i64,
    scale: u32,
    base_points: u32,
    seed: u64,
    mean_ticks: u32,
) -> Vec<SimTick> {
    let mut walk = Walk::new(base_points);
    walk.hour(sym, hour_start_ms, scale, seed, mean_ticks)
}

/// Generates `hours` consecutive hours from `from_hour_ms` (which should be the start of an hour):
/// each hour as [`generate_hour`] would make it, except that the walk continues from where the
/// previous hour ended instead of restarting at `base_points`. Hours for which `closed(hour_ms)` is
/// true (e.g. a forex-weekend predicate) are empty and leave the price where it was.
///
/// The first hour equals `generate_hour(sym, from_hour_ms, scale, base_points, seed, mean_ticks)`
/// (if open).
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors generate_hour's arguments plus the range and the closed-hours predicate"
)]
pub fn generate_hours(
    sym: &str,
    from_hour_ms: i64,
    hours: usize,
    scale: u32,
    base_points: u32,
    seed: u64,
    mean_ticks: u32,
    closed: impl Fn(i64) -> bool,
) -> Vec<(i64, Vec<SimTick>)> {
    let mut walk = Walk::new(base_points);
    let mut out = Vec::with_capacity(hours);
    let mut hour_ms = from_hour_ms;
    for _ in 0..hours {
        let ticks = if closed(hour_ms) {
            Vec::new()
        } else {
            walk.hour(sym, hour_ms, scale, seed, mean_ticks)
        };
        out.push((hour_ms, ticks));
        hour_ms = hour_ms.saturating_add(HOUR_MS);
    }
    out
}

/// The price state carried from tick to tick and hour to hour.
#[derive(Debug, Clone, Copy)]
struct Walk {
    /// Twice the mid, in points (half-point resolution keeps odd spreads centred).
    mid2: u64,
    spread: u32,
}

impl Walk {
    fn new(base_points: u32) -> Self {
        Self {
            mid2: (u64::from(base_points) * 2).clamp(16, MAX_MID2),
            spread: 2,
        }
    }

    fn hour(
        &mut self,
        sym: &str,
        hour_start_ms: i64,
        scale: u32,
        seed: u64,
        mean_ticks: u32,
    ) -> Vec<SimTick> {
        let mut rng = Rng::for_hour(seed, sym, hour_start_ms);
        let n = if mean_ticks == 0 {
            0
        } else {
            // mean ± 20%, at least one tick.
            let pct = 80 + rng.below(41);
            usize::try_from((u64::from(mean_ticks) * pct / 100).max(1)).unwrap_or(usize::MAX)
        };
        let times = tick_times(&mut rng, n);
        let crypto = scale <= 2;
        times
            .into_iter()
            .map(|ms_in_hour| {
                self.step(&mut rng);
                let (bid_points, ask_points) = self.quote();
                SimTick {
                    ms_in_hour,
                    ask_points,
                    bid_points,
                    ask_volume: volume(&mut rng, crypto),
                    bid_volume: volume(&mut rng, crypto),
                }
            })
            .collect()
    }

    /// Moves the mid and maybe the spread.
    fn step(&mut self, rng: &mut Rng) {
        let delta2: i64 = if rng.chance(20) {
            // A jump of 3..=8 points.
            let size = i64::try_from(3 + rng.below(6)).unwrap_or(3) * 2;
            if rng.chance(500) { size } else { -size }
        } else {
            rng.pick(&[(2, -4), (6, -2), (5, -1), (6, 0), (5, 1), (6, 2), (2, 4)])
        };
        let lowest = u64::from(self.spread) + 16;
        let moved = i64::try_from(self.mid2).unwrap_or(i64::MAX) + delta2;
        // Clamp to the bounds; the next steps move it away again.
        self.mid2 = u64::try_from(moved).unwrap_or(0).max(lowest).min(MAX_MID2);
        if rng.chance(300) {
            self.spread = rng.pick(&[(30, 1), (40, 2), (20, 3), (5, 4), (3, 5), (2, 6)]);
        }
    }

    /// `(bid, ask)` in points: `bid = (mid2 - spread) / 2`, `ask = bid + spread`.
    fn quote(&self) -> (u32, u32) {
        let bid = self.mid2.saturating_sub(u64::from(self.spread)) / 2;
        let bid = u32::try_from(bid).unwrap_or(u32::MAX - 64).max(1);
        (bid, bid.saturating_add(self.spread))
    }
}

/// `n` non-decreasing offsets in `0..HOUR_MS`, in bursts spread over minutes of varying activity.
fn tick_times(rng: &mut Rng, n: usize) -> Vec<u32> {
    if n == 0 {
        return Vec::new();
    }
    // Activity weight per minute: quiet, normal or busy.
    let mut weights: Vec<u64> = (0..60)
        .map(|_| rng.pick(&[(15, 1), (65, 10), (20, 30)]))
        .collect();
    // Sometimes a silent stretch of 3–8 minutes.
    if rng.chance(400) {
        let start = usize::try_from(rng.below(55)).unwrap_or(0);
        let len = usize::try_from(3 + rng.below(6)).unwrap_or(3);
        for w in weights.iter_mut().skip(start).take(len) {
            *w = 0;
        }
    }
    let total: u64 = weights.iter().sum();
    let mut times = Vec::with_capacity(n);
    while times.len() < n {
        let remaining = n - times.len();
        let size = if rng.chance(750) {
            1
        } else {
            usize::try_from(2 + rng.below(5))
                .unwrap_or(2)
                .min(remaining)
        };
        let mut t = cluster_start(rng, &weights, total);
        for i in 0..size {
            if i > 0 {
                // 0–5 ms apart inside a burst, sometimes the same millisecond.
                t = (t + u32::try_from(rng.below(6)).unwrap_or(0)).min(HOUR_MS_U32 - 1);
            }
            times.push(t);
        }
    }
    times.sort_unstable();
    times
}

/// A random instant of the hour, in a minute drawn by activity weight.
fn cluster_start(rng: &mut Rng, weights: &[u64], total: u64) -> u32 {
    let minute = if total == 0 {
        rng.below(60)
    } else {
        let mut target = rng.below(total);
        let mut minute = 0;
        for (i, w) in weights.iter().enumerate() {
            if target < *w {
                minute = i;
                break;
            }
            target -= w;
        }
        u64::try_from(minute).unwrap_or(0)
    };
    let ms = minute * u64::from(MINUTE_MS) + rng.below(u64::from(MINUTE_MS));
    u32::try_from(ms).unwrap_or(0).min(HOUR_MS_U32 - 1)
}

/// A volume in the `.bi5` unit (see [`generate_hour`]).
fn volume(rng: &mut Rng, crypto: bool) -> f32 {
    let text = if crypto {
        let millionths = if rng.chance(50) { 0 } else { 1 + rng.below(13) };
        format!("0.{millionths:06}")
    } else {
        let hundredths: u64 = if rng.chance(20) {
            // A multiple of 0.09 (0.09 ..= 3.6).
            9 * (1 + rng.below(40))
        } else {
            rng.pick(&[
                (500, 90),
                (220, 180),
                (60, 270),
                (20, 450),
                (20, 135),
                (20, 225),
                (12, 720),
                (12, 630),
                (12, 45),
                (11, 540),
                (10, 315),
                (5, 360),
                (3, 765),
                (3, 675),
                (2, 810),
                (1, 1449),
            ])
        };
        format!("{}.{:02}", hundredths / 100, hundredths % 100)
    };
    // The text is always a well-formed decimal.
    text.parse().unwrap_or(0.0)
}

/// SplitMix64: tiny, fast, and good enough for test data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    /// A stream for one `(seed, sym, hour)`.
    fn for_hour(seed: u64, sym: &str, hour_start_ms: i64) -> Self {
        // FNV-1a of the symbol.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in sym.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut mix = Rng(seed ^ h);
        let a = mix.next_u64();
        let mut mix = Rng(a ^ (hour_start_ms as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        Rng(mix.next_u64())
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n == 0`), by multiply-shift.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// One of `choices`, by weight.
    fn pick<T: Copy>(&mut self, choices: &[(u64, T)]) -> T {
        let total: u64 = choices.iter().map(|(w, _)| w).sum();
        let mut target = self.below(total);
        for &(w, v) in choices {
            if target < w {
                return v;
            }
            target -= w;
        }
        // Only reachable with an empty or all-zero table, which the callers never pass.
        choices[0].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 1_783_944_000_000;

    #[test]
    fn deterministic_and_well_formed() {
        let a = generate_hour("EURUSD", HOUR, 5, 114_277, 7, 3_500);
        let b = generate_hour("EURUSD", HOUR, 5, 114_277, 7, 3_500);
        assert_eq!(a, b);
        assert_ne!(a, generate_hour("EURUSD", HOUR, 5, 114_277, 8, 3_500));
        assert_ne!(a, generate_hour("GBPUSD", HOUR, 5, 114_277, 7, 3_500));
        assert!((2_800..=4_200).contains(&a.len()), "{}", a.len());
        assert!(a.windows(2).all(|w| w[0].ms_in_hour <= w[1].ms_in_hour));
        assert!(a.iter().all(|t| t.ms_in_hour < HOUR_MS_U32));
        assert!(a.iter().all(|t| t.ask_points > t.bid_points));
        // Bursts exist: some ticks within 5 ms of the previous one.
        assert!(a.windows(2).any(|w| w[1].ms_in_hour - w[0].ms_in_hour <= 5));
        assert!(generate_hour("EURUSD", HOUR, 5, 114_277, 7, 0).is_empty());
        assert_eq!(generate_hour("EURUSD", HOUR, 5, 114_277, 7, 1).len(), 1);
    }

    #[test]
    fn volumes_look_like_dukascopy() {
        let fx = generate_hour("EURUSD", HOUR, 5, 114_277, 1, 2_000);
        assert!(fx.iter().any(|t| t.ask_volume == 0.9));
        assert!(fx.iter().any(|t| t.bid_volume == 1.8));
        assert!(fx.iter().all(|t| t.ask_volume > 0.0 && t.ask_volume < 15.0));
        let btc = generate_hour("BTCUSD", HOUR, 1, 249_215, 1, 2_000);
        assert!(btc.iter().all(|t| t.ask_volume <= 0.000_013));
    }

    #[test]
    fn walk_stays_in_range_at_the_edges() {
        for t in generate_hour("LOW", HOUR, 5, 0, 3, 5_000) {
            assert!(t.bid_points >= 1 && t.ask_points > t.bid_points);
        }
        for t in generate_hour("HIGH", HOUR, 5, u32::MAX, 3, 5_000) {
            assert!(t.ask_points > t.bid_points);
        }
    }

    #[test]
    fn hours_continue_the_walk_and_skip_closed_hours() {
        let hours = generate_hours("EURUSD", HOUR, 4, 5, 114_277, 9, 500, |h| {
            h == HOUR + HOUR_MS
        });
        assert_eq!(hours.len(), 4);
        assert_eq!(hours[0].0, HOUR);
        assert_eq!(hours[3].0, HOUR + 3 * HOUR_MS);
        assert_eq!(
            hours[0].1,
            generate_hour("EURUSD", HOUR, 5, 114_277, 9, 500)
        );
        assert!(hours[1].1.is_empty());
        let last = hours[0].1.last().unwrap();
        let first = hours[2].1.first().unwrap();
        let last_mid = i64::from(last.ask_points) + i64::from(last.bid_points);
        let first_mid = i64::from(first.ask_points) + i64::from(first.bid_points);
        assert!((last_mid - first_mid).abs() <= 40, "{last_mid} {first_mid}");
    }
}
