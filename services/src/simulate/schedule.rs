//! When the scenarios of a backfill happen: the working days (Monday to Friday) of one year in
//! order, each with an equal share of the scenarios, started evenly through the working day in
//! Asia/Shanghai, so that a year of traffic reads like a year of inspections.

use chrono::{
    DateTime, Datelike as _, Duration, NaiveDate, NaiveTime, TimeZone as _, Utc, Weekday,
};
use chrono_tz::Asia::Shanghai;
use std::ops::Range;

/// The first scenario of a day starts at this local time…
const FIRST_START: (u32, u32) = (8, 30);
/// …and the others within this long after it.
const STARTS_WITHIN: Duration = Duration::hours(7);

pub struct Schedule {
    /// The working days, in order.
    dates: Vec<NaiveDate>,
    /// Scenario indices per working day.
    days: Vec<Range<usize>>,
}

impl Schedule {
    pub fn new(year: i32, scenarios: usize) -> Schedule {
        let dates: Vec<NaiveDate> = NaiveDate::from_ymd_opt(year, 1, 1)
            .expect("a year chrono knows")
            .iter_days()
            .take_while(|d| d.year() == year)
            .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
            .collect();
        let share = |day: usize| day * scenarios / dates.len();
        let days = (0..dates.len()).map(|d| share(d)..share(d + 1)).collect();
        Schedule { dates, days }
    }

    /// Scenario indices of each working day, in order (a day may have none).
    pub fn days(&self) -> Vec<Range<usize>> {
        self.days
            .iter()
            .filter(|r| !r.is_empty())
            .cloned()
            .collect()
    }

    /// When scenario `i` starts.
    pub fn start(&self, i: usize) -> DateTime<Utc> {
        let day = self.days.partition_point(|r| r.end <= i);
        let range = &self.days[day];
        let (h, m) = FIRST_START;
        let first = local(
            self.dates[day],
            NaiveTime::from_hms_opt(h, m, 0).expect("a time"),
        );
        let k = i32::try_from(i - range.start).expect("scenarios per day fit");
        let n = i32::try_from(range.len()).expect("scenarios per day fit");
        first + STARTS_WITHIN * k / n
    }

    /// When the registries are imported: the evening before the first working day.
    pub fn registered_at(&self) -> DateTime<Utc> {
        let eve = self.dates[0].pred_opt().expect("a day before");
        local(eve, NaiveTime::from_hms_opt(20, 0, 0).expect("a time"))
    }
}

fn local(date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    Shanghai
        .from_local_datetime(&date.and_time(time))
        .single()
        .expect("Asia/Shanghai has no daylight saving time")
        .with_timezone(&Utc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::driver::STEP;
    use crate::simulate::population::Population;
    use crate::simulate::traffic::Traffic;
    use saoma_domain::inspection::shanghai_date;

    #[test]
    fn every_scenario_is_on_one_working_day_and_the_days_follow_each_other() {
        let population = Population::generate(3, 3_000, 2025);
        let traffic = Traffic::generate(&population, 3, 3_000, 0.5);
        let schedule = Schedule::new(2025, traffic.scenarios.len());
        let days = schedule.days();
        assert_eq!(days.len(), 261, "working days of 2025");
        assert_eq!(days.first().unwrap().start, 0);
        assert_eq!(days.last().unwrap().end, traffic.scenarios.len());
        assert!(days.windows(2).all(|w| w[0].end == w[1].start));
        assert!(schedule.registered_at() < schedule.start(0));
        let mut previous = schedule.registered_at();
        for (i, scenario) in traffic.scenarios.iter().enumerate() {
            let start = schedule.start(i);
            assert!(start >= previous, "scenario {i} starts before {previous}");
            previous = start;
            let steps: i32 = scenario
                .inspections
                .iter()
                .map(|v| v.steps.len() as i32)
                .sum();
            let end = start + STEP * (steps - 1);
            let local = start.with_timezone(&Shanghai);
            assert!(!matches!(local.weekday(), Weekday::Sat | Weekday::Sun));
            assert_eq!(shanghai_date(end), shanghai_date(start), "scenario {i}");
            assert!(
                end.with_timezone(&Shanghai).time() < NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
                "scenario {i} ends at {end}"
            );
        }
    }

    #[test]
    fn fewer_scenarios_than_days_leave_days_empty() {
        let schedule = Schedule::new(2024, 10);
        let days = schedule.days();
        assert_eq!(days.len(), 10);
        assert!(days.iter().all(|r| r.len() == 1));
        assert_eq!(shanghai_date(schedule.start(9)).year(), 2024);
    }
}
