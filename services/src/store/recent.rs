//! The tail of the global log that this process appended itself, kept in memory so that the
//! log's followers (events out, the tree, the views) read what was just written without
//! reading it back from the store.
//!
//! Only rows whose positions are known for certain enter it: those the PostgreSQL append gave
//! positions in its own transaction, after that transaction committed, with their payload text
//! exactly as stored (a `json` column keeps its input text). The tail holds one run of
//! consecutive positions; a run that does not continue it (another process or the sequencer
//! gave the positions between) starts a new one. A read is answered from the tail only when the
//! tail holds the very next position, and then with the consecutive rows it holds from there,
//! which are exactly the rows the store would return first; anything else goes to the store.

use super::LoggedRow;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Rows kept: a few seconds of ingest at full speed, about 2 KB each.
pub(super) const CAPACITY: usize = 8192;

/// Consecutive log rows, the newest this process appended.
#[derive(Debug, Default)]
pub(super) struct RecentLog {
    rows: Mutex<VecDeque<LoggedRow>>,
}

impl RecentLog {
    /// Remembers committed rows that hold consecutive positions from `rows[0].position`.
    pub fn record(&self, rows: Vec<LoggedRow>) {
        let Some(first) = rows.first().map(|r| r.position) else {
            return;
        };
        debug_assert!(rows.iter().zip(first..).all(|(r, p)| r.position == p));
        let mut tail = self.rows.lock().expect("recent log lock");
        if tail.back().is_some_and(|last| last.position + 1 != first) {
            tail.clear();
        }
        tail.extend(rows);
        let excess = tail.len().saturating_sub(CAPACITY);
        tail.drain(..excess);
    }

    /// Up to `limit` rows from position `after + 1` on, when the tail holds that position.
    pub fn after(&self, after: u64, limit: u64) -> Option<Vec<LoggedRow>> {
        let tail = self.rows.lock().expect("recent log lock");
        let first = tail.front()?.position;
        let start = usize::try_from((after + 1).checked_sub(first)?).ok()?;
        if start >= tail.len() || limit == 0 {
            return None;
        }
        let end = tail.len().min(start.saturating_add(limit as usize));
        Some(tail.range(start..end).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(positions: std::ops::RangeInclusive<u64>) -> Vec<LoggedRow> {
        positions
            .map(|position| LoggedRow {
                position,
                aggregate_type: "Inspection".into(),
                aggregate_id: format!("stream-{position}"),
                sequence: 1,
                event_type: "CodeIssued".into(),
                payload_text: format!("{{\"n\":{position}}}"),
            })
            .collect()
    }

    fn positions(rows: Option<Vec<LoggedRow>>) -> Option<Vec<u64>> {
        rows.map(|r| r.into_iter().map(|r| r.position).collect())
    }

    #[test]
    fn answers_only_from_the_next_position_and_only_consecutive_rows() {
        let recent = RecentLog::default();
        assert_eq!(positions(recent.after(0, 10)), None, "empty");
        recent.record(rows(5..=9));
        assert_eq!(positions(recent.after(4, 10)), Some(vec![5, 6, 7, 8, 9]));
        assert_eq!(positions(recent.after(6, 2)), Some(vec![7, 8]));
        assert_eq!(
            positions(recent.after(3, 10)),
            None,
            "position 4 is not held"
        );
        assert_eq!(
            positions(recent.after(9, 10)),
            None,
            "nothing after 9 is held"
        );
        assert_eq!(positions(recent.after(4, 0)), None);
        recent.record(rows(10..=11));
        assert_eq!(positions(recent.after(8, 10)), Some(vec![9, 10, 11]));
        // Positions 12..=14 went to another process: the tail starts again at 15.
        recent.record(rows(15..=16));
        assert_eq!(positions(recent.after(8, 10)), None);
        assert_eq!(positions(recent.after(11, 10)), None);
        assert_eq!(positions(recent.after(14, 10)), Some(vec![15, 16]));
        let row = recent.after(14, 1).unwrap().remove(0);
        assert_eq!(row, rows(15..=15).remove(0), "the rows as recorded");
    }

    #[test]
    fn keeps_the_newest_rows_up_to_its_capacity() {
        let recent = RecentLog::default();
        let n = CAPACITY as u64;
        recent.record(rows(1..=n));
        recent.record(rows(n + 1..=n + 10));
        assert_eq!(positions(recent.after(9, 1)), None, "1..=10 evicted");
        assert_eq!(positions(recent.after(10, 1)), Some(vec![11]));
        assert_eq!(
            positions(recent.after(n + 5, 100)),
            Some((n + 6..=n + 10).collect())
        );
    }
}
