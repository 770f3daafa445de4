//! Deadlines from configured durations.

use std::time::{Duration, Instant};

/// `after` from `at`. A configured duration too long to add to the clock
/// (say `Duration::MAX`, for "no limit") means about never: a century on,
/// not a panic.
pub(crate) fn later(at: Instant, after: Duration) -> Instant {
    at.checked_add(after).or_else(|| at.checked_add(Duration::from_secs(100 * 365 * 86_400))).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_duration_is_a_century() {
        #[expect(clippy::disallowed_methods, reason = "one real instant to add to")]
        let now = Instant::now();
        assert_eq!(later(now, Duration::from_secs(5)), now + Duration::from_secs(5));
        assert!(later(now, Duration::MAX) > now + Duration::from_secs(99 * 365 * 86_400));
    }
}
