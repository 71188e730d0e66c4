//! Satisfaction statistics (满意度) per agency, officer, region and month, the worst-rated
//! visits, and the headline figure the provinces publish: how often enterprises are inspected,
//! year over year.
//!
//! Months are the inspection date's (Asia/Shanghai calendar). Revoked codes and non-inspection
//! visits are not inspections and count nowhere here. Satisfied means level 4 or 5 (满意, 非常满意).

use crate::visit::Visit;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The level from which a rating counts as satisfied.
pub const SATISFIED_FROM: u8 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Agency,
    Officer,
    Region,
}

impl Dimension {
    pub const ALL: [Dimension; 3] = [Dimension::Agency, Dimension::Officer, Dimension::Region];

    pub fn as_str(&self) -> &'static str {
        match self {
            Dimension::Agency => "agency",
            Dimension::Officer => "officer",
            Dimension::Region => "region",
        }
    }

    pub fn parse(s: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// Counts from which every figure is derived; summing two tallies is the tally of the union.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Inspections the enterprise scanned (the ones it could rate).
    pub scanned: u64,
    pub ratings: u64,
    pub level_sum: u64,
    /// Ratings per level, 1 to 5.
    pub distribution: [u64; 5],
}

impl Tally {
    pub fn add_visit(&mut self, v: &Visit) {
        if v.enterprise_scan.is_some() {
            self.scanned += 1;
        }
        if let Some(r) = &v.rating {
            self.ratings += 1;
            self.level_sum += u64::from(r.level);
            if let Some(slot) = self.distribution.get_mut(usize::from(r.level) - 1) {
                *slot += 1;
            }
        }
    }

    /// Adds `other`'s counts: the tally of both groups together.
    pub fn merge(&mut self, other: &Tally) {
        self.scanned += other.scanned;
        self.ratings += other.ratings;
        self.level_sum += other.level_sum;
        for (a, b) in self.distribution.iter_mut().zip(other.distribution) {
            *a += b;
        }
    }

    pub fn satisfied(&self) -> u64 {
        self.distribution[usize::from(SATISFIED_FROM) - 1..]
            .iter()
            .sum()
    }

    /// Mean level, `None` without ratings.
    pub fn mean(&self) -> Option<f64> {
        ratio(self.level_sum, self.ratings)
    }

    /// Satisfied or better / all ratings.
    pub fn satisfaction_rate(&self) -> Option<f64> {
        ratio(self.satisfied(), self.ratings)
    }

    /// Ratings / scanned inspections.
    pub fn response_rate(&self) -> Option<f64> {
        ratio(self.ratings, self.scanned)
    }
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    // Counts stay far below 2^53, so the conversions are exact.
    #[allow(clippy::cast_precision_loss)]
    (b > 0).then(|| a as f64 / b as f64)
}

/// One group's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SatisfactionRow {
    pub dimension: Dimension,
    pub key: String,
    pub name: String,
    pub month: String,
    #[serde(flatten)]
    pub tally: Tally,
}

/// A rated visit among the worst.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorstVisit {
    pub inspection_id: String,
    pub agency_code: String,
    pub agency_name: String,
    pub enterprise_name: String,
    pub date: String,
    pub level: u8,
    pub comment: String,
    pub event: String,
}

/// Inspections of one year: how many, of how many enterprises, and the change from the year
/// before.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct YearFrequency {
    pub year: i32,
    pub inspections: u64,
    pub enterprises: u64,
    /// Inspections per inspected enterprise.
    pub per_enterprise: f64,
    /// Relative change of `inspections` from the year before (-0.25 = 25% fewer).
    pub change: Option<f64>,
}

/// One enterprise's inspections in one year, beside the year before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnterpriseYear {
    pub enterprise_code: String,
    pub enterprise_name: String,
    pub year: i32,
    pub inspections: u64,
    pub previous_year: u64,
}

/// Accumulates satisfaction figures over visits in any order; the output is sorted, so the
/// same visits always give the same figures.
#[derive(Debug, Default)]
pub struct Satisfaction {
    groups: BTreeMap<(Dimension, String, String), (String, Tally)>,
    worst: Vec<WorstVisit>,
    frequency: Frequency,
}

impl Satisfaction {
    pub fn add(&mut self, v: &Visit) {
        if v.revoked.is_some() || !v.is_inspection() {
            return;
        }
        let month = v.date.format("%Y-%m").to_string();
        let mut add = |dimension, key: String, name: &str| {
            let group = self
                .groups
                .entry((dimension, key, month.clone()))
                .or_insert_with(|| (name.to_string(), Tally::default()));
            // A renamed agency or officer: the least name, whatever the order of the visits
            // (the live view's SQL takes MIN too).
            if name < group.0.as_str() {
                group.0 = name.to_string();
            }
            group.1.add_visit(v)
        };
        add(Dimension::Agency, v.agency.code.to_string(), &v.agency.name);
        add(Dimension::Region, v.enterprise.region.clone(), "");
        for o in &v.officers {
            add(Dimension::Officer, o.id.key(), &o.name);
        }
        if let Some(r) = &v.rating {
            self.worst.push(WorstVisit {
                inspection_id: v.inspection_id.to_string(),
                agency_code: v.agency.code.to_string(),
                agency_name: v.agency.name.clone(),
                enterprise_name: v.enterprise.name.clone(),
                date: v.date.to_string(),
                level: r.level,
                comment: r.comment.clone().unwrap_or_default(),
                event: r.step.event.clone(),
            });
        }
        use chrono::Datelike as _;
        self.frequency.add(
            v.enterprise.credit_code.as_str(),
            &v.enterprise.name,
            v.date.year(),
            1,
        );
    }

    /// Every group, sorted by dimension, key and month.
    pub fn rows(&self) -> Vec<SatisfactionRow> {
        self.groups
            .iter()
            .map(|((dimension, key, month), (name, tally))| SatisfactionRow {
                dimension: *dimension,
                key: key.clone(),
                name: name.clone(),
                month: month.clone(),
                tally: *tally,
            })
            .collect()
    }

    /// Whole-period totals per key of one dimension, sorted by key.
    pub fn totals(&self, dimension: Dimension) -> Vec<(String, String, Tally)> {
        let mut out: BTreeMap<&str, (&str, Tally)> = BTreeMap::new();
        for ((d, key, _), (name, t)) in &self.groups {
            if *d == dimension {
                out.entry(key)
                    .or_insert((name, Tally::default()))
                    .1
                    .merge(t);
            }
        }
        out.into_iter()
            .map(|(k, (n, t))| (k.to_string(), n.to_string(), t))
            .collect()
    }

    /// The `n` lowest ratings: lowest level first, then the earliest date, then the id.
    pub fn worst(&self, n: usize) -> Vec<WorstVisit> {
        let mut all = self.worst.clone();
        all.sort_by(|a, b| {
            (a.level, &a.date, &a.inspection_id).cmp(&(b.level, &b.date, &b.inspection_id))
        });
        all.truncate(n);
        all
    }

    /// Per enterprise and year, sorted by enterprise then year.
    pub fn enterprise_years(&self) -> Vec<EnterpriseYear> {
        self.frequency.enterprise_years()
    }

    /// The headline: inspections per year and their change from the year before.
    pub fn years(&self) -> Vec<YearFrequency> {
        self.frequency.years()
    }
}

/// Inspections per enterprise and year (the counted ones: not revoked, not non-inspection
/// visits), from visits or from the live views' counts alike.
#[derive(Debug, Default)]
pub struct Frequency {
    per_enterprise_year: BTreeMap<(String, i32), (String, u64)>,
}

impl Frequency {
    /// Counts `n` more inspections of the enterprise `code` (named `name`) in `year`.
    pub fn add(&mut self, code: &str, name: &str, year: i32, n: u64) {
        self.per_enterprise_year
            .entry((code.to_string(), year))
            .or_insert_with(|| (name.to_string(), 0))
            .1 += n;
    }

    /// Per enterprise and year, sorted by enterprise then year.
    pub fn enterprise_years(&self) -> Vec<EnterpriseYear> {
        self.per_enterprise_year
            .iter()
            .map(|((code, year), (name, n))| EnterpriseYear {
                enterprise_code: code.clone(),
                enterprise_name: name.clone(),
                year: *year,
                inspections: *n,
                previous_year: self
                    .per_enterprise_year
                    .get(&(code.clone(), year - 1))
                    .map_or(0, |e| e.1),
            })
            .collect()
    }

    /// The headline: inspections per year and their change from the year before.
    pub fn years(&self) -> Vec<YearFrequency> {
        let mut by_year: BTreeMap<i32, (u64, BTreeSet<&str>)> = BTreeMap::new();
        for ((code, year), (_, n)) in &self.per_enterprise_year {
            let e = by_year.entry(*year).or_default();
            e.0 += n;
            e.1.insert(code);
        }
        let mut out: Vec<YearFrequency> = Vec::new();
        for (year, (inspections, enterprises)) in by_year {
            let enterprises = enterprises.len() as u64;
            let previous = out
                .last()
                .filter(|p| p.year == year - 1)
                .map(|p| p.inspections);
            #[allow(clippy::cast_precision_loss)]
            out.push(YearFrequency {
                year,
                inspections,
                enterprises,
                per_enterprise: ratio(inspections, enterprises).unwrap_or(0.0),
                change: previous
                    .filter(|p| *p > 0)
                    .map(|p| (inspections as f64 - p as f64) / p as f64),
            });
        }
        out
    }
}
