//! 多头检查: `multi_head.min_agencies` or more separate agencies at one enterprise whose visit
//! days differ by less than `multi_head.window_days`. Agencies on one joint inspection (lead and
//! partners, on any code in the window) count as one. The visit that brings in a new separate
//! agency, once there are enough, is the warning's subject; the other visits in the window are
//! its evidence.

use super::{days_apart, enterprise_label, push_unique, Confirmation, Rule, Warning};
use crate::visit::EventId;
use chrono::{Duration, NaiveDate};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

#[derive(Debug, Clone)]
struct Entry {
    day: NaiveDate,
    agency: String,
    agency_name: String,
    partners: Vec<String>,
    inspection: Uuid,
    issued: EventId,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    by_enterprise: BTreeMap<String, Vec<Entry>>,
    /// (last day an entry can matter, enterprise, inspection).
    expiry: BTreeSet<(NaiveDate, String, Uuid)>,
}

/// How many separate heads: agencies, joined when one lists the other as joint partner.
fn heads(entries: &[&Entry]) -> usize {
    let agencies: BTreeSet<&str> = entries.iter().map(|e| e.agency.as_str()).collect();
    let index: BTreeMap<&str, usize> = agencies.iter().enumerate().map(|(i, a)| (*a, i)).collect();
    let mut parent: Vec<usize> = (0..agencies.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for e in entries {
        let a = index[e.agency.as_str()];
        for p in &e.partners {
            if let Some(&b) = index.get(p.as_str()) {
                let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
                parent[ra] = rb;
            }
        }
    }
    (0..agencies.len())
        .filter(|&i| root(&mut parent, i) == i)
        .count()
}

impl State {
    pub(crate) fn on_confirmed(&mut self, c: &Confirmation<'_>, out: &mut Vec<Warning>) {
        let rule = &c.rules.multi_head;
        let v = c.visit;
        if !rule.enabled || !rule.scope().covers(v) {
            return;
        }
        let enterprise = v.enterprise.credit_code.to_string();
        let entries = self.by_enterprise.entry(enterprise.clone()).or_default();
        if entries.iter().any(|e| e.inspection == v.inspection_id) {
            return;
        }
        let window = i64::from(rule.window_days);
        let mine = Entry {
            day: c.day,
            agency: v.agency.code.to_string(),
            agency_name: v.agency.name.clone(),
            partners: v
                .joint_partners
                .iter()
                .map(|p| p.code.to_string())
                .collect(),
            inspection: v.inspection_id,
            issued: v.issued.event.clone(),
        };
        let mut near: Vec<&Entry> = entries
            .iter()
            .filter(|e| days_apart(e.day, c.day) < window)
            .collect();
        let before = heads(&near);
        near.push(&mine);
        let after = heads(&near);
        if after >= rule.min_agencies as usize && after > before {
            near.sort_by_key(|a| (a.day, a.inspection));
            let mut agencies: Vec<String> = near.iter().map(|e| e.agency.clone()).collect();
            agencies.sort();
            agencies.dedup();
            let mut names: Vec<String> = Vec::new();
            for e in &near {
                let label = format!("{}（{}）", e.agency_name, e.day);
                push_unique(&mut names, &label);
            }
            let mut evidence: Vec<EventId> = Vec::new();
            for e in &near {
                if e.inspection != v.inspection_id {
                    push_unique(&mut evidence, &e.issued);
                }
            }
            for e in &c.evidence {
                push_unique(&mut evidence, e);
            }
            let detail = format!(
                "{}在{}天内接受{}个检查主体分别检查：{}",
                enterprise_label(&v.enterprise),
                rule.window_days,
                after,
                names.join("、")
            );
            let mut w = super::visit_warning(
                Rule::MultiHeadInspection,
                &[&enterprise, &v.inspection_id.to_string()],
                v,
                c.at,
                evidence,
                detail,
            );
            w.agencies = agencies;
            out.push(w);
        }
        let last = c.day + Duration::days(window);
        self.expiry.insert((last, enterprise, v.inspection_id));
        entries.push(mine);
    }

    /// Forgets visits that no visit on `day` or later can share a window with.
    pub(crate) fn prune(&mut self, day: NaiveDate) {
        while self.expiry.first().is_some_and(|(last, _, _)| *last < day) {
            let Some((_, enterprise, id)) = self.expiry.pop_first() else {
                break;
            };
            if let Some(entries) = self.by_enterprise.get_mut(&enterprise) {
                entries.retain(|e| e.inspection != id);
                if entries.is_empty() {
                    self.by_enterprise.remove(&enterprise);
                }
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_enterprise.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::Rule;
    use saoma_domain::inspection::Trigger;
    use saoma_domain::registry::AgencyLevel;

    const R: Rule = Rule::MultiHeadInspection;

    fn visit(sim: &mut Sim, c: Code) -> uuid::Uuid {
        let d = c.date;
        let id = sim.issue(c);
        sim.show(id, &format!("{d} 10:00:00"));
        id
    }

    #[test]
    fn a_second_agency_within_the_window_is_multi_head() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let b = agency("ZZ-XFJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        let first = visit(&mut sim, code(&a, &e, "2026-03-02"));
        let second = visit(&mut sim, code(&b, &e, "2026-03-08"));
        let ws = sim.of(R);
        assert_eq!(ws.len(), 1, "{ws:#?}");
        assert_eq!(ws[0].agencies, ["ZZ-SCJ", "ZZ-XFJ"]);
        assert_eq!(ws[0].evidence[0], sim.visits[&first].issued.event);
        assert_eq!(ws[0].evidence[1], sim.visits[&second].issued.event);
        assert_eq!(ws[0].at, shanghai("2026-03-08 10:00:00"));
        assert!(
            ws[0].detail.contains("7天内") && ws[0].detail.contains("2个"),
            "{}",
            ws[0].detail
        );
    }

    #[test]
    fn the_window_is_exclusive_at_its_length() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let b = agency("ZZ-XFJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        visit(&mut sim, code(&a, &e, "2026-03-02"));
        visit(&mut sim, code(&b, &e, "2026-03-09"));
        assert!(
            sim.of(R).is_empty(),
            "7 days apart is outside a 7-day window"
        );
    }

    #[test]
    fn joint_partners_are_one_head_whichever_code_names_them() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let b = agency("ZZ-XFJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        visit(
            &mut sim,
            code(&a, &e, "2026-03-02").partners(vec![b.clone()]),
        );
        visit(&mut sim, code(&b, &e, "2026-03-03"));
        assert!(sim.of(R).is_empty(), "{:#?}", sim.of(R));
        let mut sim = Sim::new(rules());
        visit(&mut sim, code(&a, &e, "2026-03-02"));
        visit(
            &mut sim,
            code(&b, &e, "2026-03-02").partners(vec![a.clone()]),
        );
        assert!(sim.of(R).is_empty());
    }

    #[test]
    fn the_same_agency_again_is_no_new_head_and_a_third_one_warns_again() {
        let mut r = rules();
        r.annual_cap.enabled = false;
        let mut sim = Sim::new(r);
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let b = agency("ZZ-XFJ", AgencyLevel::City);
        let c = agency("ZZ-SWJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        visit(&mut sim, code(&a, &e, "2026-03-02"));
        visit(&mut sim, code(&a, &e, "2026-03-03"));
        assert!(sim.of(R).is_empty());
        visit(&mut sim, code(&b, &e, "2026-03-04"));
        visit(&mut sim, code(&a, &e, "2026-03-05"));
        assert_eq!(sim.of(R).len(), 1);
        visit(&mut sim, code(&c, &e, "2026-03-06"));
        assert_eq!(sim.of(R).len(), 2);
        assert_eq!(sim.of(R)[1].agencies.len(), 3);
    }

    #[test]
    fn a_higher_minimum_needs_more_agencies() {
        let mut r = rules();
        r.multi_head.min_agencies = 3;
        let mut sim = Sim::new(r);
        let e = enterprise(1, "430202");
        for (i, code_) in ["A1", "A2", "A3"].iter().enumerate() {
            let ag = agency(code_, AgencyLevel::City);
            visit(&mut sim, code(&ag, &e, &format!("2026-03-0{}", i + 2)));
            assert_eq!(sim.of(R).len(), usize::from(i == 2));
        }
    }

    #[test]
    fn emergencies_and_other_enterprises_do_not_count() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let b = agency("ZZ-XFJ", AgencyLevel::City);
        let e1 = enterprise(1, "430202");
        let e2 = enterprise(2, "430202");
        visit(&mut sim, code(&a, &e1, "2026-03-02"));
        visit(
            &mut sim,
            code(&b, &e1, "2026-03-03").kind(unplanned(Trigger::Emergency)),
        );
        visit(&mut sim, code(&b, &e2, "2026-03-03"));
        assert!(sim.of(R).is_empty());
    }

    #[test]
    fn a_revoked_code_is_no_head() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let b = agency("ZZ-XFJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        visit(&mut sim, code(&a, &e, "2026-03-02"));
        let revoked = sim.issue(code(&b, &e, "2026-03-04"));
        sim.revoke(revoked, "2026-03-03 12:00:00");
        sim.advance("2026-03-20 00:00:00");
        assert!(sim.of(R).is_empty());
    }

    #[test]
    fn old_visits_are_forgotten() {
        let mut sim = Sim::new(rules());
        let a = agency("ZZ-SCJ", AgencyLevel::City);
        let e = enterprise(1, "430202");
        visit(&mut sim, code(&a, &e, "2026-03-02"));
        assert_eq!(sim.engine.multi_head.len(), 1);
        sim.advance("2026-04-30 00:00:00");
        assert_eq!(sim.engine.multi_head.len(), 0);
    }
}
