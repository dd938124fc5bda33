//! Reconnect pacing for every venue connection: capped, jittered exponential backoff that never
//! gives up and is interrupted by shutdown.
//!
//! The pain points it exists for: collectors that give up after N attempts (cryptofeed stops after
//! 10), retry in lock-step without jitter (a fleet of replicas hammers the venue at the same
//! instants), or reset their backoff on a connection that dies a second later (a tight reconnect
//! loop that gets the IP banned: Kraken's Cloudflare front allows about 150 connects per 10
//! minutes).
//!
//! - The delay before attempt *n* (0-based) is drawn uniformly from `[d/2, d]` with
//!   `d = min(max, initial · multiplier^n)` ("equal jitter": never zero, never in lock-step).
//! - The attempt count only resets once a connection has stayed up for
//!   [`BackoffConfig::reset_after_ms`]: see [`Backoff::connection_ended`].
//! - [`Backoff::wait`] returns early, with `false`, when the shutdown token is cancelled.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Backoff settings, usually a `reconnect` section of a service's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackoffConfig {
    /// Upper bound of the first delay. Default 250 ms.
    pub initial_ms: u64,
    /// The cap. Default 30 s.
    pub max_ms: u64,
    /// Growth per attempt. Default 2.
    pub multiplier: u32,
    /// A connection that lasted this long resets the attempt count. Default 60 s.
    pub reset_after_ms: u64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial_ms: 250,
            max_ms: 30_000,
            multiplier: 2,
            reset_after_ms: 60_000,
        }
    }
}

/// The state of one reconnecting connection.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
}

impl Backoff {
    /// Starts at attempt 0.
    pub fn new(config: BackoffConfig) -> Self {
        Self { config, attempt: 0 }
    }

    /// How many delays were handed out since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Forgets past failures.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Tells the backoff that a connection ended after being up for `lasted`: a long enough
    /// life resets the attempt count, a short one does not (so a server that accepts and
    /// immediately drops us is retried ever more slowly, not in a tight loop).
    pub fn connection_ended(&mut self, lasted: Duration) {
        if lasted >= Duration::from_millis(self.config.reset_after_ms) {
            self.reset();
        }
    }

    /// The upper bound of the next delay, before jitter.
    pub fn ceiling(&self) -> Duration {
        let initial = self.config.initial_ms.max(1);
        let max = self.config.max_ms.max(initial);
        let mut d = initial;
        for _ in 0..self.attempt {
            d = d.saturating_mul(u64::from(self.config.multiplier.max(1)));
            if d >= max {
                break;
            }
        }
        Duration::from_millis(d.min(max))
    }

    /// The next delay, jittered in `[ceiling/2, ceiling]`, and counts the attempt.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = u64::try_from(self.ceiling().as_millis()).unwrap_or(u64::MAX);
        let floor = ceiling / 2;
        let ms = rand::rng().random_range(floor..=ceiling);
        self.attempt = self.attempt.saturating_add(1);
        Duration::from_millis(ms)
    }

    /// Sleeps for [`Backoff::next_delay`]. Returns `false` at once if `shutdown` is (or gets)
    /// cancelled: the caller should stop instead of reconnecting.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            biased;
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BackoffConfig {
        BackoffConfig {
            initial_ms: 100,
            max_ms: 5_000,
            multiplier: 2,
            reset_after_ms: 60_000,
        }
    }

    #[test]
    fn grows_exponentially_to_the_cap_and_stays_there_for_ever() {
        let mut b = Backoff::new(cfg());
        let mut ceilings = Vec::new();
        for _ in 0..10_000 {
            let ceiling = b.ceiling();
            let d = b.next_delay();
            assert!(
                d <= ceiling && d >= ceiling / 2,
                "{d:?} outside [{ceiling:?}/2, {ceiling:?}]"
            );
            ceilings.push(ceiling.as_millis());
        }
        assert_eq!(
            &ceilings[..8],
            &[100, 200, 400, 800, 1600, 3200, 5000, 5000]
        );
        assert_eq!(ceilings[9_999], 5000, "never gives up, never overflows");
        assert_eq!(b.attempt(), 10_000);
    }

    #[test]
    fn delays_are_jittered() {
        let mut b = Backoff::new(cfg());
        let delays: std::collections::HashSet<_> = (0..50)
            .map(|_| {
                b.reset();
                for _ in 0..6 {
                    b.next_delay();
                }
                b.next_delay()
            })
            .collect();
        assert!(
            delays.len() > 10,
            "50 draws gave only {} values",
            delays.len()
        );
    }

    #[test]
    fn only_a_stable_connection_resets_the_count() {
        let mut b = Backoff::new(cfg());
        for _ in 0..5 {
            b.next_delay();
        }
        b.connection_ended(Duration::from_secs(1));
        assert_eq!(
            b.attempt(),
            5,
            "a connection that died after 1 s does not reset"
        );
        b.connection_ended(Duration::from_secs(61));
        assert_eq!(b.attempt(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_sleeps_the_delay_and_shutdown_interrupts_it() {
        let token = CancellationToken::new();
        let mut b = Backoff::new(BackoffConfig {
            initial_ms: 10_000,
            max_ms: 10_000,
            ..cfg()
        });
        let start = tokio::time::Instant::now();
        assert!(b.wait(&token).await);
        let slept = start.elapsed();
        assert!(slept >= Duration::from_secs(5) && slept <= Duration::from_secs(10));

        let start = tokio::time::Instant::now();
        let cancel = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            cancel.cancel();
        });
        assert!(!b.wait(&token).await, "shutdown wins");
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
