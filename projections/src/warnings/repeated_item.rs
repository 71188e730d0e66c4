//! 多层级重复检查: a visit that checks an item which an agency of a different level (省/市/县/乡)
//! already checked at the same enterprise, their visit days differing by less than
//! `repeated_item.window_days`. Joint partners (either code naming the other agency) are not
//! repeats. One warning per visit, naming every repeated item.

use super::{days_apart, enterprise_label, push_unique, Confirmation, Rule, Warning};
use crate::visit::EventId;
use chrono::{Duration, NaiveDate};
use saoma_domain::registry::AgencyLevel;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

#[derive(Debug, Clone)]
struct Entry {
    day: NaiveDate,
    agency: String,
    agency_name: String,
    level: AgencyLevel,
    partners: Vec<String>,
    items: Vec<String>,
    inspection: Uuid,
    issued: EventId,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    by_enterprise: BTreeMap<String, Vec<Entry>>,
    expiry: BTreeSet<(NaiveDate, String, Uuid)>,
}

fn level_label(l: AgencyLevel) -> &'static str {
    match l {
        AgencyLevel::Province => "省级",
        AgencyLevel::City => "市级",
        AgencyLevel::County => "县级",
        AgencyLevel::Township => "乡级",
    }
}

impl State {
    pub(crate) fn on_confirmed(&mut self, c: &Confirmation<'_>, out: &mut Vec<Warning>) {
        let rule = &c.rules.repeated_item;
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
            level: v.agency.level,
            partners: v
                .joint_partners
                .iter()
                .map(|p| p.code.to_string())
                .collect(),
            items: v.items.iter().map(|i| i.code.to_string()).collect(),
            inspection: v.inspection_id,
            issued: v.issued.event.clone(),
        };
        let mut earlier: Vec<&Entry> = entries
            .iter()
            .filter(|e| {
                days_apart(e.day, c.day) < window
                    && e.level != mine.level
                    && e.agency != mine.agency
                    && !e.partners.contains(&mine.agency)
                    && !mine.partners.contains(&e.agency)
                    && e.items.iter().any(|i| mine.items.contains(i))
            })
            .collect();
        if !earlier.is_empty() {
            earlier.sort_by_key(|a| (a.day, a.inspection));
            let mut agencies = vec![mine.agency.clone()];
            let mut evidence: Vec<EventId> = Vec::new();
            let mut items: Vec<String> = Vec::new();
            let mut by: Vec<String> = Vec::new();
            for e in &earlier {
                push_unique(&mut agencies, &e.agency);
                push_unique(&mut evidence, &e.issued);
                push_unique(
                    &mut by,
                    &format!("{}{}（{}）", level_label(e.level), e.agency_name, e.day),
                );
                for i in v
                    .items
                    .iter()
                    .filter(|i| e.items.contains(&i.code.to_string()))
                {
                    push_unique(&mut items, &format!("{}（{}）", i.name, i.code));
                }
            }
            agencies.sort();
            for e in &c.evidence {
                push_unique(&mut evidence, e);
            }
            let detail = format!(
                "{}{}于{}对{}检查的事项{}，{}天内已由{}检查",
                level_label(mine.level),
                super::agency_label(&v.agency),
                c.day,
                enterprise_label(&v.enterprise),
                items.join("、"),
                rule.window_days,
                by.join("、")
            );
            let mut w = super::visit_warning(
                Rule::RepeatedInspection,
                &[&enterprise, &v.inspection_id.to_string()],
                v,
                c.at,
                evidence,
                detail,
            );
            w.agencies = agencies;
            out.push(w);
        }
        self.expiry
            .insert((c.day + Duration::days(window), enterprise, v.inspection_id));
        entries.push(mine);
    }

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
    use saoma_domain::registry::{AgencyLevel, EnforcementDomain};

    const R: Rule = Rule::RepeatedInspection;

    fn visit(sim: &mut Sim, c: Code) -> uuid::Uuid {
        let d = c.date;
        let id = sim.issue(c);
        sim.show(id, &format!("{d} 10:00:00"));
        id
    }

    #[test]
    fn the_same_item_by_a_city_and_a_county_agency_is_repeated() {
        let mut sim = Sim::new(rules());
        let city = agency("ZZ-SCJ", AgencyLevel::City);
        let county = agency("LS-SCJ", AgencyLevel::County);
        let e = enterprise(1, "430202");
        let first = visit(&mut sim, code(&city, &e, "2026-03-02"));
        let second = visit(&mut sim, code(&county, &e, "2026-03-20"));
        let ws = sim.of(R);
        assert_eq!(ws.len(), 1, "{ws:#?}");
        assert_eq!(ws[0].agencies, ["LS-SCJ", "ZZ-SCJ"]);
        assert_eq!(ws[0].evidence[0], sim.visits[&first].issued.event);
        assert_eq!(ws[0].evidence[1], sim.visits[&second].issued.event);
        assert!(ws[0].detail.contains("事项SC-001"), "{}", ws[0].detail);
        assert!(ws[0].detail.contains("市级"), "{}", ws[0].detail);
    }

    #[test]
    fn same_level_other_items_or_outside_the_window_are_not_repeated() {
        let mut sim = Sim::new(rules());
        let city = agency("ZZ-SCJ", AgencyLevel::City);
        let city2 = agency("ZZ-XFJ", AgencyLevel::City);
        let county = agency("LS-SCJ", AgencyLevel::County);
        let e = enterprise(1, "430202");
        visit(&mut sim, code(&city, &e, "2026-03-02"));
        visit(&mut sim, code(&city2, &e, "2026-03-03"));
        visit(
            &mut sim,
            code(&county, &e, "2026-03-04")
                .items(vec![item("XF-9", EnforcementDomain::FireSafety)]),
        );
        // 30 days after the first: outside a 30-day window; the city2 visit is 29 days back.
        let mut sim2 = Sim::new(rules());
        visit(&mut sim2, code(&city, &e, "2026-03-02"));
        visit(&mut sim2, code(&county, &e, "2026-04-01"));
        assert!(sim.of(R).is_empty(), "{:#?}", sim.of(R));
        assert!(sim2.of(R).is_empty(), "{:#?}", sim2.of(R));
    }

    #[test]
    fn joint_partners_and_exempt_triggers_are_not_repeats() {
        let mut sim = Sim::new(rules());
        let city = agency("ZZ-SCJ", AgencyLevel::City);
        let county = agency("LS-SCJ", AgencyLevel::County);
        let e = enterprise(1, "430202");
        visit(
            &mut sim,
            code(&city, &e, "2026-03-02").partners(vec![county.clone()]),
        );
        visit(&mut sim, code(&county, &e, "2026-03-05"));
        visit(
            &mut sim,
            code(&county, &e, "2026-03-06").kind(unplanned(Trigger::Complaint)),
        );
        assert!(sim.of(R).is_empty(), "{:#?}", sim.of(R));
    }

    #[test]
    fn a_revoked_code_is_not_repeated() {
        let mut sim = Sim::new(rules());
        let city = agency("ZZ-SCJ", AgencyLevel::City);
        let county = agency("LS-SCJ", AgencyLevel::County);
        let e = enterprise(1, "430202");
        let first = sim.issue(code(&city, &e, "2026-03-02"));
        sim.revoke(first, "2026-03-01 20:00:00");
        visit(&mut sim, code(&county, &e, "2026-03-05"));
        assert!(sim.of(R).is_empty());
    }
}
