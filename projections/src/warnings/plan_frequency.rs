//! 检查计划超出频次: visits of a plan's agency to one of its enterprises in the plan year beyond
//! the plan's `allowed_visits`. Counted against a plan: planned visits naming it, and
//! supplementary visits of its agency to a plan enterprise whose items are all plan items, dated
//! (执法时间) in the plan year, as the aggregate checks planned codes. Plans are learnt from
//! `PlanApproved` and `PlanAmended` (an amendment changes the allowance for later visits); a
//! plan is forgotten once its year has ended plus the late margin.

use super::{
    agency_label, enterprise_label, kind_label, visit_warning, Confirmation, Rule, Warning,
};
use crate::visit::EventId;
use chrono::{DateTime, Datelike, Utc};
use saoma_domain::ids::ItemCode;
use saoma_domain::inspection::InspectionKind;
use saoma_domain::registry::Plan;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

#[derive(Debug, Clone)]
struct Known {
    plan: Plan,
    /// The registry event that set the plan's current terms.
    event: EventId,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    plans: BTreeMap<String, Known>,
    /// (agency, plan id).
    by_agency: BTreeSet<(String, String)>,
    /// (plan id, enterprise) → visits counted against it.
    counted: BTreeMap<(String, String), Vec<(Uuid, EventId)>>,
}

impl State {
    /// Learns a plan or its amendment; true when the plan is new.
    pub(crate) fn learn(&mut self, plan: &Plan, event_id: &str) -> bool {
        let id = plan.id.to_string();
        let new = match self.plans.get(&id) {
            Some(old) => {
                self.by_agency
                    .remove(&(old.plan.agency.to_string(), id.clone()));
                false
            }
            None => true,
        };
        self.by_agency.insert((plan.agency.to_string(), id.clone()));
        self.plans.insert(
            id,
            Known {
                plan: plan.clone(),
                event: event_id.to_string(),
            },
        );
        new
    }

    pub(crate) fn on_confirmed(&mut self, c: &Confirmation<'_>, out: &mut Vec<Warning>) {
        if !c.rules.plan_frequency.enabled {
            return;
        }
        let v = c.visit;
        let agency = v.agency.code.to_string();
        let year = v.date.year();
        let plans: Vec<&Known> = match &v.kind {
            InspectionKind::Planned { plan } => self
                .plans
                .get(plan.as_str())
                .filter(|k| k.plan.agency == v.agency.code)
                .into_iter()
                .collect(),
            InspectionKind::Supplementary { .. } => {
                let items: Vec<ItemCode> = v.items.iter().map(|i| i.code.clone()).collect();
                self.by_agency
                    .range((agency.clone(), String::new())..)
                    .take_while(|(a, _)| *a == agency)
                    .filter_map(|(_, id)| self.plans.get(id))
                    .filter(|k| {
                        k.plan.year == year
                            && k.plan
                                .covers(&v.agency.code, &v.enterprise.credit_code, &items)
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        let enterprise = v.enterprise.credit_code.to_string();
        for k in plans {
            let plan_id = k.plan.id.to_string();
            let counted = self
                .counted
                .entry((plan_id.clone(), enterprise.clone()))
                .or_default();
            if counted.iter().any(|(id, _)| *id == v.inspection_id) {
                continue;
            }
            counted.push((v.inspection_id, v.issued.event.clone()));
            let n = counted.len();
            if n <= k.plan.allowed_visits as usize {
                continue;
            }
            let mut evidence = vec![k.event.clone()];
            evidence.extend(counted[..n - 1].iter().map(|(_, e)| e.clone()));
            evidence.extend(c.evidence.iter().cloned());
            let detail = format!(
                "{}对{}在检查计划{}（{}年，每家企业{}次）内的第{}次检查（{}，{}），超出计划频次",
                agency_label(&v.agency),
                enterprise_label(&v.enterprise),
                plan_id,
                k.plan.year,
                k.plan.allowed_visits,
                n,
                kind_label(&v.kind),
                c.day
            );
            out.push(visit_warning(
                Rule::PlanFrequencyExceeded,
                &[&plan_id, &enterprise, &v.inspection_id.to_string()],
                v,
                c.at,
                evidence,
                detail,
            ));
        }
    }

    /// Forgets a plan whose year (plus the late margin) ended by `when`.
    pub(crate) fn forget(&mut self, id: &str, when: DateTime<Utc>) {
        let Some(k) = self.plans.get(id) else {
            return;
        };
        if super::year_end(k.plan.year) + super::late_margin() > when {
            return;
        }
        self.by_agency
            .remove(&(k.plan.agency.to_string(), id.to_string()));
        self.plans.remove(id);
        let keys: Vec<(String, String)> = self
            .counted
            .range((id.to_string(), String::new())..)
            .take_while(|((p, _), _)| p == id)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            self.counted.remove(&k);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.plans.len() + self.counted.values().map(Vec::len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{Rule, Severity};
    use saoma_domain::registry::{AgencyLevel, EnforcementDomain};

    const R: Rule = Rule::PlanFrequencyExceeded;

    fn setup() -> Sim {
        let mut r = rules();
        r.annual_cap.enabled = false;
        Sim::new(r)
    }

    fn visit(sim: &mut Sim, c: Code) -> uuid::Uuid {
        let d = c.date;
        let id = sim.issue(c);
        sim.show(id, &format!("{d} 10:00:00"));
        id
    }

    #[test]
    fn a_supplementary_visit_beyond_the_plans_allowance_exceeds_it() {
        let mut sim = setup();
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        sim.plan(
            plan("P-2026", &a, 2026, &[&e], &["SC-001"], 1),
            false,
            "2026-01-05 09:00:00",
        );
        visit(&mut sim, code(&a, &e, "2026-03-02").kind(planned("P-2026")));
        assert!(sim.of(R).is_empty());
        let extra = visit(&mut sim, code(&a, &e, "2026-05-06").kind(supplementary()));
        let ws = sim.of(R);
        assert_eq!(ws.len(), 1, "{ws:#?}");
        assert_eq!(ws[0].severity, Severity::Serious);
        assert_eq!(ws[0].evidence[0], "registry/plan:P-2026/1");
        assert_eq!(ws[0].evidence[2], sim.visits[&extra].issued.event);
        assert!(
            ws[0].detail.contains("P-2026") && ws[0].detail.contains("第2次"),
            "{}",
            ws[0].detail
        );
    }

    #[test]
    fn visits_outside_the_plan_do_not_count() {
        let mut sim = setup();
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let b = agency("ZZ-XFJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let other = enterprise(2, "430202");
        sim.plan(
            plan("P-2026", &a, 2026, &[&e], &["SC-001"], 1),
            false,
            "2026-01-05 09:00:00",
        );
        visit(&mut sim, code(&a, &e, "2026-03-02").kind(planned("P-2026")));
        // Another item, another agency, another enterprise, another year, an unplanned visit.
        visit(
            &mut sim,
            code(&a, &e, "2026-03-10")
                .kind(supplementary())
                .items(vec![item("XF-9", EnforcementDomain::FireSafety)]),
        );
        visit(&mut sim, code(&b, &e, "2026-03-11").kind(supplementary()));
        visit(
            &mut sim,
            code(&a, &other, "2026-03-12").kind(supplementary()),
        );
        visit(
            &mut sim,
            code(&a, &e, "2026-03-13").kind(unplanned(saoma_domain::inspection::Trigger::Report)),
        );
        visit(&mut sim, code(&a, &e, "2027-01-04").kind(supplementary()));
        assert!(sim.of(R).is_empty(), "{:#?}", sim.of(R));
    }

    #[test]
    fn an_amendment_raises_the_allowance_for_later_visits() {
        let mut sim = setup();
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        sim.plan(
            plan("P-2026", &a, 2026, &[&e], &["SC-001"], 1),
            false,
            "2026-01-05 09:00:00",
        );
        visit(&mut sim, code(&a, &e, "2026-03-02").kind(planned("P-2026")));
        sim.plan(
            plan("P-2026", &a, 2026, &[&e], &["SC-001"], 2),
            true,
            "2026-04-01 09:00:00",
        );
        visit(&mut sim, code(&a, &e, "2026-05-06").kind(supplementary()));
        assert!(sim.of(R).is_empty());
        visit(&mut sim, code(&a, &e, "2026-06-06").kind(planned("P-2026")));
        let ws = sim.of(R);
        assert_eq!(ws.len(), 1);
        assert_eq!(
            ws[0].evidence[0], "registry/plan:P-2026/2",
            "the amendment's terms"
        );
    }

    #[test]
    fn a_revoked_code_is_not_counted_against_the_plan() {
        let mut sim = setup();
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        sim.plan(
            plan("P-2026", &a, 2026, &[&e], &["SC-001"], 1),
            false,
            "2026-01-05 09:00:00",
        );
        let revoked = sim.issue(code(&a, &e, "2026-03-02").kind(planned("P-2026")));
        sim.revoke(revoked, "2026-03-01 20:00:00");
        visit(&mut sim, code(&a, &e, "2026-03-10").kind(supplementary()));
        sim.advance("2026-12-01 00:00:00");
        assert!(sim.of(R).is_empty());
    }

    #[test]
    fn plans_are_forgotten_after_their_year() {
        let mut sim = setup();
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        sim.plan(
            plan("P-2026", &a, 2026, &[&e], &["SC-001"], 1),
            false,
            "2026-01-05 09:00:00",
        );
        visit(&mut sim, code(&a, &e, "2026-03-02").kind(planned("P-2026")));
        assert_eq!(sim.engine.plan_frequency.len(), 2);
        sim.advance("2027-01-20 00:00:00");
        assert_eq!(sim.engine.plan_frequency.len(), 2);
        sim.advance("2027-02-10 00:00:00");
        assert_eq!(sim.engine.plan_frequency.len(), 0);
    }
}
