//! Which bytes of a sent message the peer's success REPORTs cover.
//!
//! RFC 4975 s.7.1.3: a success REPORT's Byte-Range "indicates the range of
//! bytes received"; the receiver "MUST send a success report or reports
//! covering all bytes that are received successfully". A message is
//! delivered once its REPORTs, together, cover every byte of it; one REPORT
//! for `1-1000/2000` is half a delivery, not a whole one.

/// Disjoint, sorted, non-adjacent ranges of 1-based positions (inclusive).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Coverage {
    ranges: Vec<(u64, u64)>,
    /// A REPORT came (an empty message's `1-0/0` covers no byte).
    reported: bool,
}

/// Disjoint ranges kept at most: a peer that reports thousands of separate
/// slivers gains nothing by it (a REPORT that would pass this is ignored).
const MAX_RANGES: usize = 32;

impl Coverage {
    /// Adds `[start, end]`. Returns `false` (and changes nothing) when the
    /// range is empty or keeping it would pass [`MAX_RANGES`].
    pub(crate) fn add(&mut self, start: u64, end: u64) -> bool {
        if start == 0 {
            return false;
        }
        self.reported = true;
        if end < start {
            return false;
        }
        let (mut start, mut end) = (start, end);
        // Ranges that touch or overlap the new one merge into it.
        let first = self.ranges.partition_point(|&(_, e)| e.saturating_add(1) < start);
        let last = self.ranges.partition_point(|&(s, _)| s <= end.saturating_add(1));
        if first >= last && self.ranges.len() >= MAX_RANGES {
            return false;
        }
        if let Some(&(s, _)) = self.ranges.get(first).filter(|_| first < last) {
            start = start.min(s);
        }
        if let Some(&(_, e)) = last.checked_sub(1).filter(|&i| i >= first).and_then(|i| self.ranges.get(i)) {
            end = end.max(e);
        }
        self.ranges.splice(first..last, [(start, end)]);
        true
    }

    /// Whether every byte of a `total`-byte message is covered (an empty
    /// message by any REPORT).
    pub(crate) fn covers(&self, total: u64) -> bool {
        self.reported && (total == 0 || self.ranges.first().is_some_and(|&(s, e)| s == 1 && e >= total))
    }
}

#[cfg(test)]
mod tests {
    use super::Coverage;

    #[test]
    fn ranges_merge_until_the_whole_message_is_covered() {
        let mut coverage = Coverage::default();
        assert!(coverage.add(1001, 2000));
        assert!(!coverage.covers(2000));
        assert!(coverage.add(1, 500));
        assert!(!coverage.covers(2000), "501-1000 is missing");
        assert!(coverage.add(501, 1000), "adjacent on both sides");
        assert_eq!(coverage.ranges, vec![(1, 2000)]);
        assert!(coverage.covers(2000));
        assert!(!coverage.covers(2001));
        assert!(!Coverage::default().covers(0), "no REPORT yet");
        let mut empty = Coverage::default();
        assert!(!empty.add(1, 0));
        assert!(empty.covers(0), "1-0/0 reports an empty message");
    }

    #[test]
    fn overlaps_merge_and_bad_ranges_are_refused() {
        let mut coverage = Coverage::default();
        assert!(coverage.add(10, 20));
        assert!(coverage.add(30, 40));
        assert!(coverage.add(15, 35));
        assert_eq!(coverage.ranges, vec![(10, 40)]);
        assert!(coverage.add(5, 50));
        assert_eq!(coverage.ranges, vec![(5, 50)]);
        assert!(!coverage.add(0, 3), "positions count from 1");
        assert!(!coverage.add(9, 8));
        assert!(coverage.add(u64::MAX - 1, u64::MAX));
        assert_eq!(coverage.ranges.len(), 2);
    }

    #[test]
    fn slivers_are_capped() {
        let mut coverage = Coverage::default();
        for i in 0..100u64 {
            let at = 1 + i * 10;
            let kept = coverage.add(at, at);
            assert_eq!(kept, i < 32, "sliver {i}");
        }
        assert_eq!(coverage.ranges.len(), 32);
        assert!(coverage.add(1, 1_000), "a range merging slivers is always taken");
        assert_eq!(coverage.ranges, vec![(1, 1_000)]);
    }
}
