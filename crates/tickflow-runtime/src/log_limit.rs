//! Rate-limited logging for per-message problems: a venue that sends a million bad frames must
//! not produce a million log lines, and the lines it does produce say how many were suppressed.

use std::time::{Duration, Instant};

/// Allows one event per interval and counts the rest.
///
/// ```
/// # use std::time::Duration;
/// # use tickflow_runtime::log_limit::LogLimiter;
/// let mut limit = LogLimiter::new(Duration::from_secs(10));
/// if let Some(suppressed) = limit.check() {
///     tracing::warn!(suppressed, "malformed frame");
/// }
/// ```
#[derive(Debug, Clone)]
pub struct LogLimiter {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    /// At most one event per `every`.
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when this event should be logged, `n` being how many were suppressed since the
    /// last one that was; `None` when it should be skipped (and is counted).
    pub fn check(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < self.every => {
                self.suppressed = self.suppressed.saturating_add(1);
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_passes_then_counts_until_the_interval_is_over() {
        let mut l = LogLimiter::new(Duration::from_secs(3600));
        assert_eq!(l.check(), Some(0));
        for _ in 0..1000 {
            assert_eq!(l.check(), None);
        }
        l.last = Instant::now().checked_sub(Duration::from_secs(3601));
        assert_eq!(l.check(), Some(1000));
        assert_eq!(l.check(), None);
    }

    #[test]
    fn zero_interval_logs_everything() {
        let mut l = LogLimiter::new(Duration::ZERO);
        assert_eq!(l.check(), Some(0));
        assert_eq!(l.check(), Some(0));
    }
}
