//! Which part of the log a filtered export holds: whole inspections of one agency, one
//! enterprise and/or a range of inspection dates, with the registry streams of the officers who
//! signed their commands (the device keys their signatures are checked with). Streams are taken
//! whole, from their first event, so that every chain link in the bundle can be checked.

use crate::store::{Store, StoreError};
use chrono::NaiveDate;
use saoma_domain::ids::OfficerRef;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashSet;

/// What a filtered export selects; every given condition must hold. Dates are the inspection's
/// date (its `CodeIssued`'s `date`, a calendar day in the agency's time zone), both inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
pub struct Filter {
    /// Only the inspections of this agency (its code).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    /// Only the inspections of this enterprise (its unified social credit code).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise: Option<String>,
    /// Only the inspections dated on or after this day (YYYY-MM-DD).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
    /// Only the inspections dated on or before this day (YYYY-MM-DD).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<NaiveDate>,
}

impl Filter {
    /// Whether it selects everything: the bundle is then the whole log.
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether an inspection issued with these details is selected.
    pub fn selects(&self, agency: &str, enterprise: &str, date: NaiveDate) -> bool {
        self.agency.as_deref().is_none_or(|a| a == agency)
            && self.enterprise.as_deref().is_none_or(|e| e == enterprise)
            && self.from.is_none_or(|from| date >= from)
            && self.to.is_none_or(|to| date <= to)
    }
}

/// The streams a filtered export writes, by `{aggregate type}/{aggregate id}`.
#[derive(Debug, Default)]
pub struct Selection {
    streams: HashSet<String>,
    pub inspections: u64,
}

impl Selection {
    pub fn holds(&self, aggregate_type: &str, aggregate_id: &str) -> bool {
        self.streams
            .contains(&stream_name(aggregate_type, aggregate_id))
    }
}

fn stream_name(aggregate_type: &str, aggregate_id: &str) -> String {
    format!("{aggregate_type}/{aggregate_id}")
}

/// What selection reads of a stored inspection event (the rest is skipped).
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow, default)]
    event: Option<PeekIssued<'a>>,
    #[serde(default)]
    command: Option<PeekCommand>,
}

#[derive(Deserialize)]
struct PeekIssued<'a> {
    #[serde(borrow, default)]
    agency: Option<PeekCode<'a>>,
    #[serde(borrow, default)]
    enterprise: Option<PeekEnterprise<'a>>,
    #[serde(default)]
    date: Option<NaiveDate>,
}

#[derive(Deserialize)]
struct PeekCode<'a> {
    #[serde(borrow)]
    code: Cow<'a, str>,
}

#[derive(Deserialize)]
struct PeekEnterprise<'a> {
    #[serde(borrow)]
    credit_code: Cow<'a, str>,
}

#[derive(Deserialize)]
struct PeekCommand {
    officer: OfficerRef,
}

/// Reads the log's first `size` events once and selects what `filter` asks for. An event
/// that cannot be read is not selected here; the export writes what is stored, and the
/// verifier reports it.
pub async fn select(store: &Store, size: u64, filter: &Filter) -> Result<Selection, StoreError> {
    let mut selection = Selection::default();
    let mut after = 0;
    while after < size {
        let rows = store
            .events_after(after, (super::PAGE as u64).min(size - after))
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.position;
        for row in rows.iter().filter(|r| r.aggregate_type == "Inspection") {
            let issued = row.event_type == "CodeIssued";
            let stream = stream_name(&row.aggregate_type, &row.aggregate_id);
            if !issued && !selection.streams.contains(&stream) {
                continue;
            }
            let Ok(peek) = serde_json::from_str::<Peek>(&row.payload_text) else {
                continue;
            };
            if issued {
                let selected =
                    peek.event
                        .as_ref()
                        .is_some_and(|e| match (&e.agency, &e.enterprise, e.date) {
                            (Some(a), Some(en), Some(date)) => {
                                filter.selects(&a.code, &en.credit_code, date)
                            }
                            _ => false,
                        });
                if !selected || !selection.streams.insert(stream) {
                    continue;
                }
                selection.inspections += 1;
            }
            if let Some(command) = peek.command {
                selection
                    .streams
                    .insert(format!("Registry/officer:{}", command.officer.key()));
            }
        }
    }
    Ok(selection)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn every_condition_given_must_hold_and_dates_are_inclusive() {
        let all = Filter::default();
        assert!(all.is_empty());
        assert!(all.selects("A", "E", day("2026-01-01")));
        let march = Filter {
            agency: Some("A".into()),
            from: Some(day("2026-03-01")),
            to: Some(day("2026-03-31")),
            ..Filter::default()
        };
        assert!(!march.is_empty());
        assert!(march.selects("A", "E", day("2026-03-01")));
        assert!(march.selects("A", "F", day("2026-03-31")));
        assert!(!march.selects("A", "E", day("2026-02-28")));
        assert!(!march.selects("A", "E", day("2026-04-01")));
        assert!(!march.selects("B", "E", day("2026-03-15")));
        let one = Filter {
            enterprise: Some("E".into()),
            ..Filter::default()
        };
        assert!(one.selects("B", "E", day("2020-01-01")));
        assert!(!one.selects("B", "F", day("2020-01-01")));
    }
}
