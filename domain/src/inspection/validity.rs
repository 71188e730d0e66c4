//! When a code may be used: from 00:00 Asia/Shanghai on the inspection date, for a configurable
//! number of hours (24 in Qinghai's rule).

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A region's validity rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidityRule {
    /// How long a code stays valid from 00:00 on its date, in hours (1 to 720).
    pub hours: u32,
}

impl Default for ValidityRule {
    fn default() -> Self {
        ValidityRule { hours: 24 }
    }
}

impl ValidityRule {
    pub fn new(hours: u32) -> Option<Self> {
        (1..=720).contains(&hours).then_some(ValidityRule { hours })
    }

    pub fn window(&self, date: NaiveDate) -> ValidityWindow {
        let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
        // Asia/Shanghai has had no DST since 1991, so local midnight is never ambiguous.
        let from = Shanghai
            .from_local_datetime(&midnight)
            .single()
            .expect("Asia/Shanghai midnight is unambiguous")
            .with_timezone(&Utc);
        ValidityWindow {
            valid_from: from,
            valid_until: from + chrono::Duration::hours(i64::from(self.hours)),
        }
    }
}

/// The half-open interval `[valid_from, valid_until)` in which a code may be shown and scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ValidityWindow {
    #[serde(deserialize_with = "crate::time::utc")]
    pub valid_from: DateTime<Utc>,
    #[serde(deserialize_with = "crate::time::utc")]
    pub valid_until: DateTime<Utc>,
}

/// Where an instant falls relative to a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidityState {
    NotYetValid,
    Valid,
    Expired,
}

impl ValidityWindow {
    pub fn state_at(&self, t: DateTime<Utc>) -> ValidityState {
        if t < self.valid_from {
            ValidityState::NotYetValid
        } else if t < self.valid_until {
            ValidityState::Valid
        } else {
            ValidityState::Expired
        }
    }
}

/// The calendar date in Asia/Shanghai of an instant.
pub fn shanghai_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&Shanghai).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_window_starts_at_shanghai_midnight_and_lasts_24_hours() {
        let w = ValidityRule::default().window(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap());
        assert_eq!(w.valid_from, t("2026-03-01T16:00:00Z"));
        assert_eq!(w.valid_until, t("2026-03-02T16:00:00Z"));
    }

    #[test]
    fn the_window_edges_are_half_open() {
        let w = ValidityRule::default().window(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap());
        assert_eq!(
            w.state_at(t("2026-03-01T15:59:59Z")),
            ValidityState::NotYetValid
        );
        assert_eq!(w.state_at(t("2026-03-01T16:00:00Z")), ValidityState::Valid);
        assert_eq!(w.state_at(t("2026-03-02T15:59:59Z")), ValidityState::Valid);
        assert_eq!(
            w.state_at(t("2026-03-02T16:00:00Z")),
            ValidityState::Expired
        );
    }

    #[test]
    fn a_rule_outside_one_to_720_hours_is_refused() {
        assert!(ValidityRule::new(0).is_none());
        assert!(ValidityRule::new(721).is_none());
        assert_eq!(ValidityRule::new(48).unwrap().hours, 48);
    }

    #[test]
    fn shanghai_date_rolls_over_at_16_utc() {
        assert_eq!(
            shanghai_date(t("2026-03-01T15:59:59Z")).to_string(),
            "2026-03-01"
        );
        assert_eq!(
            shanghai_date(t("2026-03-01T16:00:00Z")).to_string(),
            "2026-03-02"
        );
    }
}
