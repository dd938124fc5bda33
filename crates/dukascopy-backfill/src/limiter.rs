//! Bounded, adaptive concurrency for the requests to Dukascopy (additive increase,
//! multiplicative decrease, like TCP's congestion window).
//!
//! - At most `limit` requests are in flight; `limit` starts at `initial` and stays within
//!   `[min, max]`.
//! - Every `limit` successful requests raise it by one.
//! - A throttling answer (429, 503, a timeout, an HTML block page) halves it, at most once per
//!   [`DECREASE_EVERY`] (a burst of refusals from one overload is one signal), and pauses every
//!   new request until the given instant: the server asked us to back off, so nobody asks again
//!   before then.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::metrics::Metrics;

/// The shortest time between two decreases.
pub const DECREASE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct State {
    limit: usize,
    in_flight: usize,
    successes: usize,
    paused_until: Option<Instant>,
    last_decrease: Option<Instant>,
}

/// The shared limit. Clone the `Arc`.
#[derive(Debug)]
pub struct Limiter {
    state: Mutex<State>,
    released: Notify,
    min: usize,
    max: usize,
    metrics: Metrics,
}

/// One request's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<Limiter>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let in_flight = {
            let mut s = self.limiter.lock();
            s.in_flight = s.in_flight.saturating_sub(1);
            s.in_flight
        };
        self.limiter.metrics.concurrency.set(gauge(in_flight));
        self.limiter.released.notify_waiters();
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Limiter {
    /// A limiter starting at `initial` within `[min, max]` (`min` at least 1).
    pub fn new(initial: usize, min: usize, max: usize, metrics: Metrics) -> Arc<Self> {
        let min = min.max(1);
        let max = max.max(min);
        let limit = initial.clamp(min, max);
        metrics.concurrency_limit.set(gauge(limit));
        Arc::new(Self {
            state: Mutex::new(State {
                limit,
                in_flight: 0,
                successes: 0,
                paused_until: None,
                last_decrease: None,
            }),
            released: Notify::new(),
            min,
            max,
            metrics,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.lock().limit
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    /// Waits for a slot (and for the end of a pause).
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let wait_until = {
                let mut s = self.lock();
                match s.paused_until {
                    Some(until) if until > Instant::now() => Some(until),
                    _ => {
                        s.paused_until = None;
                        if s.in_flight < s.limit {
                            s.in_flight += 1;
                            let n = s.in_flight;
                            drop(s);
                            self.metrics.concurrency.set(gauge(n));
                            return Permit {
                                limiter: self.clone(),
                            };
                        }
                        None
                    }
                }
            };
            match wait_until {
                Some(until) => tokio::time::sleep_until(until).await,
                None => released.await,
            }
        }
    }

    /// A request succeeded.
    pub fn success(&self) {
        let mut s = self.lock();
        s.successes += 1;
        if s.successes >= s.limit {
            s.successes = 0;
            if s.limit < self.max {
                s.limit += 1;
                let limit = s.limit;
                drop(s);
                self.metrics.concurrency_limit.set(gauge(limit));
                self.released.notify_waiters();
            }
        }
    }

    /// The server throttled us: halve the limit (once per [`DECREASE_EVERY`]) and pause new
    /// requests for `pause`.
    pub fn throttled(&self, pause: Duration) {
        let now = Instant::now();
        let mut s = self.lock();
        s.successes = 0;
        if s.last_decrease
            .is_none_or(|t| now.duration_since(t) >= DECREASE_EVERY)
        {
            s.limit = (s.limit / 2).max(self.min);
            s.last_decrease = Some(now);
        }
        let until = now + pause;
        if s.paused_until.is_none_or(|p| p < until) {
            s.paused_until = Some(until);
        }
        let limit = s.limit;
        drop(s);
        self.metrics.concurrency_limit.set(gauge(limit));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn it_grows_by_one_per_window_of_successes_and_halves_on_throttling() {
        let l = Limiter::new(2, 1, 8, Metrics::default());
        assert_eq!(l.limit(), 2);
        l.success();
        assert_eq!(l.limit(), 2);
        l.success();
        assert_eq!(l.limit(), 3, "two successes at limit 2 add one");
        for _ in 0..3 {
            l.success();
        }
        assert_eq!(l.limit(), 4);
        l.throttled(Duration::from_millis(100));
        assert_eq!(l.limit(), 2);
        l.throttled(Duration::from_millis(100));
        assert_eq!(l.limit(), 2, "a burst of refusals is one signal");
        tokio::time::advance(DECREASE_EVERY).await;
        l.throttled(Duration::ZERO);
        assert_eq!(l.limit(), 1);
        l.throttled(Duration::ZERO);
        tokio::time::advance(DECREASE_EVERY).await;
        l.throttled(Duration::ZERO);
        assert_eq!(l.limit(), 1, "never below min");
        for _ in 0..100 {
            l.success();
        }
        assert_eq!(l.limit(), 8, "never above max");
    }

    #[tokio::test(start_paused = true)]
    async fn it_bounds_the_requests_in_flight_and_waits_out_a_pause() {
        let l = Limiter::new(2, 1, 2, Metrics::default());
        let a = l.acquire().await;
        let b = l.acquire().await;
        assert_eq!(l.in_flight(), 2);
        let waiter = tokio::spawn({
            let l = l.clone();
            async move {
                let _p = l.acquire().await;
                Instant::now()
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "the third waits for a slot");
        drop(a);
        waiter.await.unwrap();
        drop(b);

        let start = Instant::now();
        l.throttled(Duration::from_secs(5));
        let _c = l.acquire().await;
        assert!(
            Instant::now() - start >= Duration::from_secs(5),
            "the pause holds new requests"
        );
    }
}
