//! Folds the global log, in position order, into every view: the visits (history), the
//! warnings and (read off the visits) the satisfaction figures. The live projection in
//! `services` and `saoma replay` both drive this one state machine, so they cannot disagree.
//!
//! Time: before an event is applied, the clock advances to the time the service recorded it,
//! so a deadline that passed before an event arrived fires before that event is seen, whether
//! the log is followed live or replayed years later. Between events the live driver advances
//! the clock itself; a replay advances it to its as-of time at the end.
//!
//! Memory: with a retention set, a visit is let go ([`Projector::settle`]) once every
//! deadline the rules set for it has been judged and the retention has passed since, so what
//! the projector holds depends on the visits of the last weeks, not on the length of the log.
//! A later event of a visit let go needs it back first ([`Projector::missing`],
//! [`Projector::restore`]); the driver keeps settled visits wherever it likes (the view
//! tables, a replay's scratch store) and the outcome is the same as if none had been let go.

use crate::rules::RuleBook;
use crate::visit::{event_id, Visit};
use crate::warnings::{Warning, WarningEngine};
use chrono::{DateTime, Utc};
use saoma_domain::inspection::InspectionEvent;
use saoma_domain::registry::RegistryEvent;
use saoma_domain::seal::Sealed;
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

/// One entry of the global log, parsed.
#[derive(Debug, Clone)]
pub enum LogEvent {
    Inspection(Sealed<InspectionEvent>),
    Registry(Sealed<RegistryEvent>),
}

impl LogEvent {
    pub fn recorded_at(&self) -> DateTime<Utc> {
        match self {
            LogEvent::Inspection(e) => e.meta.recorded_at,
            LogEvent::Registry(e) => e.meta.recorded_at,
        }
    }
}

/// Why an entry could not be applied. The log is then not what the service writes; the
/// projection stops there rather than guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectError {
    #[error("position {position}: {event} belongs to inspection {inspection} which has no CodeIssued before it")]
    NotIssued {
        position: u64,
        event: String,
        inspection: String,
    },
    #[error("position {position}: a second CodeIssued for inspection {inspection}")]
    IssuedTwice { position: u64, inspection: String },
    #[error("position {position} follows position {last}: the log must be applied in order")]
    OutOfOrder { position: u64, last: u64 },
}

/// A visit the projector let go, as it was last: its history row and figures are final unless
/// a later event brings it back.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    /// The log position of its `CodeIssued`.
    pub issued_position: u64,
    pub visit: Visit,
}

/// What one step changed: the visits to store again and the warnings that fired.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Changes {
    pub visits: Vec<Uuid>,
    pub warnings: Vec<Warning>,
}

impl Changes {
    fn touch(&mut self, id: Uuid) {
        if !self.visits.contains(&id) {
            self.visits.push(id);
        }
    }
}

pub struct Projector {
    visits: HashMap<Uuid, Visit>,
    /// Position at which each visit was issued, for a stable order of history.
    issued_at_position: HashMap<Uuid, u64>,
    /// How long a visit is held after its last deadline; `None`: for ever.
    retention: Option<chrono::Duration>,
    /// (when a held visit may be let go, which), with a retention only.
    settling: BTreeSet<(DateTime<Utc>, Uuid)>,
    warnings: WarningEngine,
    position: u64,
    clock: Option<DateTime<Utc>>,
}

impl Projector {
    pub fn new(book: RuleBook) -> Self {
        Projector {
            visits: HashMap::new(),
            issued_at_position: HashMap::new(),
            retention: None,
            settling: BTreeSet::new(),
            warnings: WarningEngine::new(book),
            position: 0,
            clock: None,
        }
    }

    /// Lets visits go `retention` after their last deadline (see [`Projector::settle`]).
    pub fn with_retention(mut self, retention: chrono::Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// How many visits are held.
    pub fn held(&self) -> usize {
        self.visits.len()
    }

    /// The inspection `entry` belongs to when its visit was let go and must be restored
    /// before `entry` is applied.
    pub fn missing(&self, entry: &LogEvent) -> Option<Uuid> {
        let LogEvent::Inspection(e) = entry else {
            return None;
        };
        if matches!(e.event, InspectionEvent::CodeIssued { .. }) {
            return None;
        }
        let id: Uuid = stream_key(e).parse().ok()?;
        (!self.visits.contains_key(&id)).then_some(id)
    }

    /// Takes back a visit let go earlier, for a later event of it; held for the retention
    /// from now.
    pub fn restore(&mut self, settled: Settled) {
        let id = settled.visit.inspection_id;
        if self.visits.contains_key(&id) {
            return;
        }
        self.issued_at_position.insert(id, settled.issued_position);
        self.visits.insert(id, settled.visit);
        if let (Some(retention), Some(clock)) = (self.retention, self.clock) {
            self.settling.insert((clock + retention, id));
        }
    }

    /// Lets go of the visits whose last deadline is more than the retention ago, in the order
    /// they settle; nothing without a retention.
    pub fn settle(&mut self) -> Vec<Settled> {
        let mut out = Vec::new();
        let Some(clock) = self.clock else { return out };
        while let Some(&(at, id)) = self.settling.first() {
            if at > clock {
                break;
            }
            // One entry per held visit: made when it is issued or restored.
            self.settling.pop_first();
            if let (Some(visit), Some(issued_position)) =
                (self.visits.remove(&id), self.issued_at_position.remove(&id))
            {
                out.push(Settled {
                    issued_position,
                    visit,
                });
            }
        }
        out
    }

    /// Lets go of every visit still held, in the order they were issued (the end of a
    /// replay).
    pub fn settle_all(&mut self) -> Vec<Settled> {
        self.settling.clear();
        let mut out: Vec<Settled> = self
            .visits
            .drain()
            .filter_map(|(id, visit)| {
                let issued_position = self.issued_at_position.remove(&id)?;
                Some(Settled {
                    issued_position,
                    visit,
                })
            })
            .collect();
        out.sort_by_key(|s| s.issued_position);
        out
    }

    /// The last position applied; 0 before the first.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The time the projection has advanced to.
    pub fn clock(&self) -> Option<DateTime<Utc>> {
        self.clock
    }

    pub fn visit(&self, id: &Uuid) -> Option<&Visit> {
        self.visits.get(id)
    }

    /// The log position of a visit's `CodeIssued`.
    pub fn issued_position(&self, id: &Uuid) -> Option<u64> {
        self.issued_at_position.get(id).copied()
    }

    /// Every visit in the order it was issued.
    pub fn visits_in_order(&self) -> Vec<&Visit> {
        let mut all: Vec<(&u64, &Visit)> = self
            .visits
            .iter()
            .map(|(id, v)| (&self.issued_at_position[id], v))
            .collect();
        all.sort_by_key(|(p, _)| **p);
        all.into_iter().map(|(_, v)| v).collect()
    }

    /// Lets time pass to `now` (never backwards) and fires the deadlines that passed.
    pub fn advance(&mut self, now: DateTime<Utc>) -> Vec<Warning> {
        if self.clock.is_some_and(|c| c >= now) {
            return Vec::new();
        }
        self.clock = Some(now);
        self.warnings.advance(now, &self.visits)
    }

    /// Applies the entry at `position`, which must be the next one.
    pub fn apply(&mut self, position: u64, entry: &LogEvent) -> Result<Changes, ProjectError> {
        if position <= self.position {
            return Err(ProjectError::OutOfOrder {
                position,
                last: self.position,
            });
        }
        let mut changes = Changes {
            visits: Vec::new(),
            warnings: self.advance(entry.recorded_at()),
        };
        match entry {
            LogEvent::Registry(e) => changes
                .warnings
                .extend(self.warnings.on_registry(&e.event, &event_id(e))),
            LogEvent::Inspection(e) => {
                let id = self.apply_inspection(position, e)?;
                let visit = &self.visits[&id];
                changes
                    .warnings
                    .extend(self.warnings.on_event(visit, &e.event, &event_id(e)));
                changes.touch(id);
            }
        }
        self.position = position;
        Ok(changes)
    }

    fn apply_inspection(
        &mut self,
        position: u64,
        e: &Sealed<InspectionEvent>,
    ) -> Result<Uuid, ProjectError> {
        let stream_id = stream_key(e);
        if let Some(issued) = Visit::issued(e) {
            let id = issued.inspection_id;
            if self.visits.contains_key(&id) {
                return Err(ProjectError::IssuedTwice {
                    position,
                    inspection: id.to_string(),
                });
            }
            if let Some(retention) = self.retention {
                let at = self.warnings.settles_at(&issued) + retention;
                self.settling.insert((at, id));
            }
            self.visits.insert(id, issued);
            self.issued_at_position.insert(id, position);
            return Ok(id);
        }
        let not_issued = || ProjectError::NotIssued {
            position,
            event: event_id(e),
            inspection: stream_id.to_string(),
        };
        let id: Uuid = stream_id.parse().map_err(|_| not_issued())?;
        let visit = self.visits.get_mut(&id).ok_or_else(not_issued)?;
        visit.apply(e);
        Ok(id)
    }
}

/// The last part of an event's stream name: the inspection id for `Inspection/{id}`.
fn stream_key<E>(e: &Sealed<E>) -> &str {
    e.stream.rsplit('/').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Status;
    use crate::satisfaction::{Dimension, Satisfaction};
    use crate::warnings::fixtures::{self as fx, shanghai};
    use crate::warnings::Rule;
    use saoma_domain::inspection::{Outcome, Scanner, ValidityRule, VisitPurpose};
    use saoma_domain::registry::{Agency, AgencyLevel};

    /// A small log: entries with their positions, built like the service would store them.
    struct Log {
        entries: Vec<(u64, LogEvent)>,
        sequences: HashMap<Uuid, u64>,
    }

    impl Log {
        fn new() -> Log {
            Log {
                entries: Vec::new(),
                sequences: HashMap::new(),
            }
        }

        fn push(&mut self, id: Uuid, at: DateTime<Utc>, event: InspectionEvent) {
            let seq = self.sequences.entry(id).or_default();
            *seq += 1;
            let e = fx::sealed(format!("Inspection/{id}"), *seq, at, event);
            let position = self.entries.len() as u64 + 1;
            self.entries.push((position, LogEvent::Inspection(e)));
        }

        fn issue(&mut self, n: u128, code: fx::Code) -> Uuid {
            let id = Uuid::from_u128(n);
            let officers = (0..code.officers)
                .map(|i| saoma_domain::inspection::OfficerOnCode {
                    id: saoma_domain::ids::OfficerRef::Certificate(
                        saoma_domain::ids::CertificateNo::parse(&format!("ZF{n:04}{i:02}"))
                            .unwrap(),
                    ),
                    name: format!("执法人员{n}-{i}"),
                })
                .collect();
            let event = InspectionEvent::CodeIssued {
                inspection_id: id,
                kind: code.kind,
                agency: code.agency,
                enterprise: code.enterprise,
                items: code.items,
                officers,
                date: code.date,
                joint_partners: code.partners,
                validity: ValidityRule { hours: code.hours }.window(code.date),
            };
            self.push(id, code.issued_at, event);
            id
        }

        fn scan(&mut self, id: Uuid, at: &str) {
            let at = shanghai(at);
            let by = Scanner::Enterprise;
            self.push(
                id,
                at,
                InspectionEvent::CodeScanned {
                    by,
                    at,
                    mutual: false,
                },
            );
        }

        fn rate(&mut self, id: Uuid, at: &str, level: u8, comment: Option<&str>) {
            let at = shanghai(at);
            let comment = comment.map(str::to_string);
            self.push(id, at, InspectionEvent::RatingGiven { level, comment, at });
        }

        fn report(&mut self, id: Uuid, at: &str) {
            let at = shanghai(at);
            let outcome = Outcome::NoProblems;
            self.push(id, at, InspectionEvent::ResultReported { outcome, at });
        }

        fn revoke(&mut self, id: Uuid, at: &str) {
            let at = shanghai(at);
            let reason = "行程取消".to_string();
            self.push(id, at, InspectionEvent::CodeRevoked { reason, at });
        }

        /// Applies every entry; returns the projector and all warnings, sorted by id.
        fn project(&self, until: Option<DateTime<Utc>>) -> (Projector, Vec<Warning>) {
            let book = RuleBook::single(fx::rules()).unwrap();
            let mut p = Projector::new(book);
            let mut warnings = Vec::new();
            for (position, e) in &self.entries {
                warnings.extend(p.apply(*position, e).unwrap().warnings);
            }
            if let Some(t) = until {
                warnings.extend(p.advance(t));
            }
            warnings.sort_by(|a, b| a.id.cmp(&b.id));
            (p, warnings)
        }
    }

    fn market() -> Agency {
        fx::agency("ZZ-SCJ", AgencyLevel::City)
    }

    #[test]
    fn a_lifecycle_folds_into_one_history_row() {
        let mut log = Log::new();
        let e = fx::enterprise(1, "430200");
        // Thursday 2026-03-05: not a quiet day in the test rules.
        let id = log.issue(1, fx::code(&market(), &e, "2026-03-05"));
        log.scan(id, "2026-03-05 10:00:00");
        log.report(id, "2026-03-05 11:00:00");
        log.rate(id, "2026-03-05 12:00:00", 5, Some("规范"));
        let (p, _) = log.project(None);
        assert_eq!(p.position(), 4);
        let row = p.visit(&id).unwrap().history_row();
        assert_eq!(row.status, Status::Reported.as_str());
        assert_eq!(row.enterprise_code, e.credit_code.to_string());
        assert_eq!(row.date, "2026-03-05");
        assert_eq!(row.month, "2026-03");
        assert_eq!(row.enterprise_scanned_at, "2026-03-05T02:00:00Z");
        assert_eq!(row.valid_from, "2026-03-04T16:00:00Z", "00:00 in Shanghai");
        assert_eq!((row.rating, row.rating_comment.as_str()), (Some(5), "规范"));
        assert_eq!(row.result, "no_problems");
        assert_eq!(row.events, 4);
        assert!(!row.mutual_verified);
        assert_eq!(p.issued_position(&id), Some(1));
        assert_eq!(p.visit(&id).unwrap().stream(), format!("Inspection/{id}"));
    }

    #[test]
    fn entries_out_of_order_or_without_their_code_are_refused_and_change_nothing() {
        let mut log = Log::new();
        let id = log.issue(
            1,
            fx::code(&market(), &fx::enterprise(1, "430200"), "2026-03-05"),
        );
        let book = RuleBook::single(fx::rules()).unwrap();
        let mut p = Projector::new(book);
        p.apply(1, &log.entries[0].1).unwrap();
        assert!(matches!(
            p.apply(1, &log.entries[0].1),
            Err(ProjectError::OutOfOrder {
                position: 1,
                last: 1
            })
        ));
        let mut other = Log::new();
        let stray = Uuid::from_u128(99);
        other.scan(stray, "2026-03-05 10:00:00");
        assert!(matches!(
            p.apply(2, &other.entries[0].1),
            Err(ProjectError::NotIssued { position: 2, .. })
        ));
        let mut again = Log::new();
        again.issue(
            1,
            fx::code(&market(), &fx::enterprise(1, "430200"), "2026-03-05"),
        );
        assert!(matches!(
            p.apply(2, &again.entries[0].1),
            Err(ProjectError::IssuedTwice { position: 2, .. })
        ));
        assert_eq!(p.position(), 1);
        assert_eq!(p.visit(&id).unwrap().events.len(), 1);
    }

    #[test]
    fn time_based_warnings_fire_when_time_passes_and_a_replay_gives_the_same_ones() {
        let mut log = Log::new();
        let e = fx::enterprise(1, "430200");
        let never_scanned = log.issue(1, fx::code(&market(), &e, "2026-03-05"));
        let revoked = log.issue(
            2,
            fx::code(&market(), &fx::enterprise(2, "430200"), "2026-03-05"),
        );
        log.revoke(revoked, "2026-03-04 18:00:00");
        // Before the window closes nothing about scanning has fired.
        let (_, before) = log.project(Some(shanghai("2026-03-05 23:59:00")));
        assert!(before.iter().all(|w| w.rule != Rule::CodeNotScanned));
        // The window closes at 00:00 on the 6th; no event arrives, the clock alone fires it.
        let (mut p, after) = log.project(Some(shanghai("2026-03-06 00:30:00")));
        let unscanned: Vec<&Warning> = after
            .iter()
            .filter(|w| w.rule == Rule::CodeNotScanned)
            .collect();
        assert_eq!(unscanned.len(), 1, "{after:#?}");
        assert_eq!(
            unscanned[0].evidence[0],
            format!("Inspection/{never_scanned}/1")
        );
        assert_eq!(
            unscanned[0].at,
            shanghai("2026-03-06 00:00:00"),
            "at = the deadline"
        );
        assert!(
            p.advance(shanghai("2026-03-06 00:40:00")).is_empty(),
            "fired once"
        );
        // Clocks never go backwards.
        assert!(p.advance(shanghai("2026-03-01 00:00:00")).is_empty());
        assert_eq!(p.clock(), Some(shanghai("2026-03-06 00:40:00")));
        // The same log replayed gives the same warnings, byte for byte.
        let (_, again) = log.project(Some(shanghai("2026-03-06 00:30:00")));
        assert_eq!(after, again);
    }

    #[test]
    fn visits_let_go_and_restored_for_late_events_give_what_holding_them_all_gives() {
        let mut log = Log::new();
        let (e1, e2) = (fx::enterprise(1, "430200"), fx::enterprise(2, "430200"));
        let v1 = log.issue(1, fx::code(&market(), &e1, "2026-03-05"));
        log.scan(v1, "2026-03-05 10:00:00");
        let v2 = log.issue(2, fx::code(&market(), &e2, "2026-03-12"));
        log.scan(v2, "2026-03-12 10:00:00");
        log.report(v2, "2026-03-12 11:00:00");
        let v3 = log.issue(3, fx::code(&market(), &e1, "2026-05-19"));
        // Months after v1's deadlines: v1 has been let go and must come back for these.
        log.report(v1, "2026-05-20 09:00:00");
        log.rate(v1, "2026-05-20 10:00:00", 1, Some("拖延"));
        log.scan(v3, "2026-05-19 10:00:00");
        let until = shanghai("2026-08-01 00:00:00");
        let (all, expected) = log.project(Some(until));

        let book = RuleBook::single(fx::rules()).unwrap();
        let mut p = Projector::new(book).with_retention(chrono::Duration::zero());
        let mut kept: HashMap<Uuid, Settled> = HashMap::new();
        let mut warnings = Vec::new();
        let mut restored = Vec::new();
        for (position, e) in &log.entries {
            if let Some(id) = p.missing(e) {
                restored.push(id);
                p.restore(kept.remove(&id).expect("let go earlier"));
            }
            warnings.extend(p.apply(*position, e).unwrap().warnings);
            kept.extend(p.settle().into_iter().map(|s| (s.visit.inspection_id, s)));
        }
        warnings.extend(p.advance(until));
        kept.extend(p.settle().into_iter().map(|s| (s.visit.inspection_id, s)));
        warnings.sort_by(|a, b| a.id.cmp(&b.id));

        // With no retention at all v1 is let go again after each of its two late events.
        assert_eq!(
            restored,
            vec![v1, v1],
            "only v1 had events after letting go"
        );
        assert_eq!(p.held(), 0, "every deadline is past at the end");
        assert_eq!(warnings, expected);
        assert!(!expected.is_empty());
        let mut settled: Vec<Settled> = kept.into_values().collect();
        settled.sort_by_key(|s| s.issued_position);
        let held: Vec<(u64, &Visit)> = all
            .visits_in_order()
            .into_iter()
            .map(|v| (all.issued_position(&v.inspection_id).unwrap(), v))
            .collect();
        let let_go: Vec<(u64, &Visit)> = settled
            .iter()
            .map(|s| (s.issued_position, &s.visit))
            .collect();
        assert_eq!(let_go, held);
        assert_eq!(let_go[0].1.rating.as_ref().map(|r| r.level), Some(1));
    }

    #[test]
    fn satisfaction_counts_inspections_ratings_and_years() {
        let mut log = Log::new();
        let (a, b) = (market(), fx::agency("ZZ-YJJ", AgencyLevel::County));
        let e1 = fx::enterprise(1, "430200");
        let e2 = fx::enterprise(2, "430200");
        let v1 = log.issue(1, fx::code(&a, &e1, "2025-03-05"));
        log.scan(v1, "2025-03-05 10:00:00");
        let v2 = log.issue(2, fx::code(&a, &e1, "2026-03-05"));
        log.scan(v2, "2026-03-05 10:00:00");
        log.rate(v2, "2026-03-05 12:00:00", 2, Some("态度生硬"));
        let v3 = log.issue(3, fx::code(&a, &e2, "2026-03-12"));
        log.scan(v3, "2026-03-12 10:00:00");
        log.rate(v3, "2026-03-12 12:00:00", 5, None);
        let v4 = log.issue(4, fx::code(&b, &e2, "2026-03-12"));
        log.revoke(v4, "2026-03-11 12:00:00");
        let visit =
            fx::code(&b, &e1, "2026-03-13").kind(fx::non_inspection(VisitPurpose::LegalEducation));
        let v5 = log.issue(5, visit);
        log.scan(v5, "2026-03-13 10:00:00");
        let (p, _) = log.project(None);
        let mut s = Satisfaction::default();
        for v in p.visits_in_order() {
            s.add(v);
        }
        let agencies = s.totals(Dimension::Agency);
        assert_eq!(
            agencies.len(),
            1,
            "revoked and non-inspection visits count nowhere"
        );
        let (code, _, t) = &agencies[0];
        assert_eq!(code, "ZZ-SCJ");
        assert_eq!((t.scanned, t.ratings, t.level_sum), (3, 2, 7));
        assert_eq!(t.distribution, [0, 1, 0, 0, 1]);
        assert_eq!(t.mean(), Some(3.5));
        assert_eq!(t.satisfaction_rate(), Some(0.5));
        assert_eq!(t.response_rate(), Some(2.0 / 3.0));
        let march: Vec<_> = s
            .rows()
            .into_iter()
            .filter(|r| r.dimension == Dimension::Agency && r.month == "2026-03")
            .collect();
        assert_eq!(march.len(), 1);
        assert_eq!(march[0].tally.ratings, 2);
        let worst = s.worst(1);
        assert_eq!((worst[0].level, worst[0].comment.as_str()), (2, "态度生硬"));
        let years = s.years();
        assert_eq!(years.len(), 2);
        assert_eq!(
            (years[0].year, years[0].inspections, years[0].change),
            (2025, 1, None)
        );
        assert_eq!(
            (years[1].year, years[1].inspections, years[1].enterprises),
            (2026, 2, 2)
        );
        assert_eq!(
            years[1].change,
            Some(1.0),
            "twice as many as the year before"
        );
        assert_eq!(years[1].per_enterprise, 1.0);
        let e1_years: Vec<_> = s
            .enterprise_years()
            .into_iter()
            .filter(|y| y.enterprise_code == e1.credit_code.to_string())
            .map(|y| (y.year, y.inspections, y.previous_year))
            .collect();
        assert_eq!(e1_years, [(2025, 1, 0), (2026, 1, 1)]);
        // Officers: both of the code's officers carry its rating.
        let officers = s.totals(Dimension::Officer);
        assert_eq!(officers.len(), 6);
        assert!(officers.iter().all(|(_, _, t)| t.ratings <= 1));
    }
}
