//! 以非检查名义变相检查: non-inspection visits (观摩, 督导, 考察, 服务, 普法, 法治体检) used as
//! inspections. Either more than `disguised_visit.max_visits` such visits of one agency to one
//! enterprise whose days differ by less than `window_days` (judged as each visit counts), or,
//! with `problems_found`, a non-inspection visit that reports problems found (judged when the
//! result is reported). One warning per visit.

use super::{
    agency_label, days_apart, enterprise_label, push_unique, visit_warning, Confirmation, Rule,
    Warning,
};
use crate::rules::RuleSet;
use crate::visit::{EventId, Visit};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use saoma_domain::inspection::{InspectionKind, Outcome, VisitPurpose};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// (agency, enterprise).
type Pair = (String, String);

#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    by_pair: BTreeMap<Pair, Vec<(NaiveDate, Uuid, EventId)>>,
    expiry: BTreeSet<(NaiveDate, Pair, Uuid)>,
}

fn purpose_label(p: VisitPurpose) -> &'static str {
    match p {
        VisitPurpose::Observation => "观摩",
        VisitPurpose::Supervision => "督导",
        VisitPurpose::Study => "考察",
        VisitPurpose::Service => "服务",
        VisitPurpose::LegalEducation => "普法",
        VisitPurpose::LegalCheckup => "法治体检",
    }
}

fn key(v: &Visit) -> [String; 3] {
    [
        v.agency.code.to_string(),
        v.enterprise.credit_code.to_string(),
        v.inspection_id.to_string(),
    ]
}

fn warning(v: &Visit, at: DateTime<Utc>, evidence: Vec<EventId>, detail: String) -> Warning {
    let [a, e, i] = key(v);
    visit_warning(
        Rule::DisguisedInspection,
        &[&a, &e, &i],
        v,
        at,
        evidence,
        detail,
    )
}

impl State {
    pub(crate) fn on_confirmed(&mut self, c: &Confirmation<'_>, out: &mut Vec<Warning>) {
        let rule = &c.rules.disguised_visit;
        let v = c.visit;
        let InspectionKind::NonInspection { purpose } = &v.kind else {
            return;
        };
        if !rule.enabled {
            return;
        }
        let pair: Pair = (
            v.agency.code.to_string(),
            v.enterprise.credit_code.to_string(),
        );
        let visits = self.by_pair.entry(pair.clone()).or_default();
        if visits.iter().any(|(_, id, _)| *id == v.inspection_id) {
            return;
        }
        visits.push((c.day, v.inspection_id, v.issued.event.clone()));
        let window = i64::from(rule.window_days);
        let mut near: Vec<&(NaiveDate, Uuid, EventId)> = visits
            .iter()
            .filter(|(d, _, _)| days_apart(*d, c.day) < window)
            .collect();
        if near.len() > rule.max_visits as usize {
            near.sort();
            let mut evidence = Vec::new();
            for (_, _, e) in &near {
                push_unique(&mut evidence, e);
            }
            for e in &c.evidence {
                push_unique(&mut evidence, e);
            }
            let detail = format!(
                "{}在{}天内以非检查名义进入{}{}次（本次：{}，{}），超过{}次，疑似变相检查",
                agency_label(&v.agency),
                rule.window_days,
                enterprise_label(&v.enterprise),
                near.len(),
                purpose_label(*purpose),
                c.day,
                rule.max_visits
            );
            out.push(warning(v, c.at, evidence, detail));
        }
        self.expiry
            .insert((c.day + Duration::days(window), pair, v.inspection_id));
    }

    pub(crate) fn prune(&mut self, day: NaiveDate) {
        while self.expiry.first().is_some_and(|(last, _, _)| *last < day) {
            let Some((_, pair, id)) = self.expiry.pop_first() else {
                break;
            };
            if let Some(visits) = self.by_pair.get_mut(&pair) {
                visits.retain(|(_, i, _)| *i != id);
                if visits.is_empty() {
                    self.by_pair.remove(&pair);
                }
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_pair.values().map(Vec::len).sum()
    }
}

/// A result reported on a non-inspection visit.
pub(crate) fn on_result(
    rules: &RuleSet,
    v: &Visit,
    outcome: &Outcome,
    at: DateTime<Utc>,
    event_id: &str,
    out: &mut Vec<Warning>,
) {
    let rule = &rules.disguised_visit;
    let (InspectionKind::NonInspection { purpose }, Outcome::ProblemsFound { feedback }) =
        (&v.kind, outcome)
    else {
        return;
    };
    if !rule.enabled || !rule.problems_found {
        return;
    }
    let detail = format!(
        "{}以{}名义进入{}，却反馈发现问题：“{}”，疑似以非检查名义开展检查",
        agency_label(&v.agency),
        purpose_label(*purpose),
        enterprise_label(&v.enterprise),
        feedback
    );
    let mut evidence = vec![v.issued.event.clone()];
    push_unique(&mut evidence, event_id);
    out.push(warning(v, at, evidence, detail));
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{Rule, Severity};
    use saoma_domain::inspection::VisitPurpose;
    use saoma_domain::registry::AgencyLevel;

    const R: Rule = Rule::DisguisedInspection;

    fn visit(sim: &mut Sim, c: Code) -> uuid::Uuid {
        let d = c.date;
        let id = sim.issue(c);
        sim.show(id, &format!("{d} 10:00:00"));
        id
    }

    #[test]
    fn a_second_service_visit_within_30_days_is_a_disguised_inspection() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let first = visit(
            &mut sim,
            code(&a, &e, "2026-03-02").kind(non_inspection(VisitPurpose::Service)),
        );
        assert!(sim.of(R).is_empty());
        let second = visit(
            &mut sim,
            code(&a, &e, "2026-03-31").kind(non_inspection(VisitPurpose::LegalCheckup)),
        );
        let ws = sim.of(R);
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0].severity, Severity::Serious);
        assert_eq!(ws[0].evidence[0], sim.visits[&first].issued.event);
        assert_eq!(ws[0].evidence[1], sim.visits[&second].issued.event);
        assert!(ws[0].detail.contains("法治体检"), "{}", ws[0].detail);
    }

    #[test]
    fn visits_30_days_apart_other_agencies_and_inspections_do_not_count() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let b = agency("ZZ-XFJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        visit(
            &mut sim,
            code(&a, &e, "2026-03-02").kind(non_inspection(VisitPurpose::Service)),
        );
        visit(
            &mut sim,
            code(&a, &e, "2026-04-01").kind(non_inspection(VisitPurpose::Service)),
        );
        visit(
            &mut sim,
            code(&b, &e, "2026-04-02").kind(non_inspection(VisitPurpose::Study)),
        );
        visit(&mut sim, code(&a, &e, "2026-04-03"));
        assert!(sim.of(R).is_empty(), "{:#?}", sim.of(R));
    }

    #[test]
    fn a_non_inspection_visit_that_finds_problems_is_a_disguised_inspection() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let id = sim
            .issue(code(&a, &e, "2026-03-02").kind(non_inspection(VisitPurpose::LegalEducation)));
        let ws = only(&sim.result(id, "2026-03-02 16:00:00", true), R);
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0].at, shanghai("2026-03-02 16:00:00"));
        assert!(
            ws[0].detail.contains("普法") && ws[0].detail.contains("消防通道堵塞"),
            "{}",
            ws[0].detail
        );
        let clean = sim.issue(
            code(&a, &enterprise(2, "430202"), "2026-03-02")
                .kind(non_inspection(VisitPurpose::Service)),
        );
        assert!(only(&sim.result(clean, "2026-03-02 16:00:00", false), R).is_empty());
        // An inspection finding problems is what inspections are for.
        let inspection = sim.issue(code(&a, &enterprise(3, "430202"), "2026-03-02"));
        assert!(only(&sim.result(inspection, "2026-03-02 16:00:00", true), R).is_empty());
    }

    #[test]
    fn both_reasons_on_one_visit_make_one_warning() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        visit(
            &mut sim,
            code(&a, &e, "2026-03-02").kind(non_inspection(VisitPurpose::Service)),
        );
        let id = sim.issue(code(&a, &e, "2026-03-05").kind(non_inspection(VisitPurpose::Service)));
        sim.result(id, "2026-03-05 16:00:00", true);
        assert_eq!(sim.of(R).len(), 1);
    }

    #[test]
    fn a_revoked_visit_does_not_count() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let revoked =
            sim.issue(code(&a, &e, "2026-03-02").kind(non_inspection(VisitPurpose::Service)));
        sim.revoke(revoked, "2026-03-01 20:00:00");
        visit(
            &mut sim,
            code(&a, &e, "2026-03-05").kind(non_inspection(VisitPurpose::Service)),
        );
        sim.advance("2026-05-20 00:00:00");
        assert!(sim.of(R).is_empty());
        assert_eq!(
            sim.engine.disguised.len(),
            0,
            "forgotten after the window and margin"
        );
    }
}
