//! Per-region warning rule sets (预警规则集): every threshold the warning rules use, read from
//! TOML (`deploy/rules/regions.toml`), validated, and chosen for each visit by the longest
//! prefix of the enterprise's six-digit region code (行政区划代码).
//!
//! A rule book holds one `[default]` rule set and any number of `[regions.<name>]` rule sets,
//! each complete (no inheritance: a supervisor reading one section sees every rule in force).
//! Changing a threshold is an edit of the TOML file, never of code.

use crate::visit::Visit;
use chrono::{DateTime, Utc, Weekday};
use saoma_domain::inspection::{InspectionKind, Trigger, ValidityRule};
use saoma_domain::registry::EnforcementDomain;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The rule book shipped in `deploy/rules/regions.toml`.
pub const SHIPPED_RULES: &str = include_str!("../../deploy/rules/regions.toml");

/// Why a rule book was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// Not TOML, or not the shape of a rule book (unknown or missing field, wrong type).
    #[error("rule book is not valid: {0}")]
    Parse(String),
    /// A value outside its range, or an inconsistent book.
    #[error("rule set `{set}`: `{field}` {problem}")]
    Invalid {
        set: String,
        field: String,
        problem: String,
    },
}

fn invalid(set: &str, field: &str, problem: impl Into<String>) -> RulesError {
    RulesError::Invalid {
        set: set.to_string(),
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// The four kinds of code, as named in rule files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KindName {
    /// 计划检查
    Planned,
    /// 补录
    Supplementary,
    /// 非计划检查
    Unplanned,
    /// 非检查类入企
    NonInspection,
}

impl KindName {
    pub fn of(kind: &InspectionKind) -> KindName {
        match kind {
            InspectionKind::Planned { .. } => KindName::Planned,
            InspectionKind::Supplementary { .. } => KindName::Supplementary,
            InspectionKind::Unplanned { .. } => KindName::Unplanned,
            InspectionKind::NonInspection { .. } => KindName::NonInspection,
        }
    }
}

/// A day of the week, as named in rule files (`"monday"` … `"sunday"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayName {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl DayName {
    pub fn weekday(self) -> Weekday {
        match self {
            DayName::Monday => Weekday::Mon,
            DayName::Tuesday => Weekday::Tue,
            DayName::Wednesday => Weekday::Wed,
            DayName::Thursday => Weekday::Thu,
            DayName::Friday => Weekday::Fri,
            DayName::Saturday => Weekday::Sat,
            DayName::Sunday => Weekday::Sun,
        }
    }
}

/// Which visits a rule looks at: the kinds it counts, minus unplanned visits with an exempt
/// trigger, minus visits whose items all lie in exempt enforcement domains (the agency's own
/// domain stands in when a code names no items).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub kinds: &'a [KindName],
    pub exempt_triggers: &'a [Trigger],
    pub exempt_domains: &'a [EnforcementDomain],
}

impl Scope<'_> {
    pub fn covers(&self, visit: &Visit) -> bool {
        if !self.kinds.contains(&KindName::of(&visit.kind)) {
            return false;
        }
        if let InspectionKind::Unplanned { trigger, .. } = &visit.kind {
            if self.exempt_triggers.contains(trigger) {
                return false;
            }
        }
        !self.exempt_by_domain(visit)
    }

    fn exempt_by_domain(&self, visit: &Visit) -> bool {
        if self.exempt_domains.is_empty() {
            return false;
        }
        if visit.items.is_empty() {
            return self.exempt_domains.contains(&visit.agency.domain);
        }
        visit
            .items
            .iter()
            .all(|i| self.exempt_domains.contains(&i.domain))
    }
}

macro_rules! scoped {
    ($t:ty) => {
        impl $t {
            pub fn scope(&self) -> Scope<'_> {
                Scope {
                    kinds: &self.kinds,
                    exempt_triggers: &self.exempt_triggers,
                    exempt_domains: &self.exempt_domains,
                }
            }
        }
    };
}

/// 年度检查频次上限: one agency's visits to one enterprise in a calendar year (Asia/Shanghai).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnualCapRule {
    pub enabled: bool,
    /// More visits than this in one year is a warning (1 to 366).
    pub max_per_year: u32,
    pub kinds: Vec<KindName>,
    pub exempt_triggers: Vec<Trigger>,
    pub exempt_domains: Vec<EnforcementDomain>,
}
scoped!(AnnualCapRule);

/// 检查计划超出频次: planned and supplementary visits beyond a plan's allowed visits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFrequencyRule {
    pub enabled: bool,
}

/// 多头检查: several agencies, not joint partners of each other, at one enterprise within a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiHeadRule {
    pub enabled: bool,
    /// Visits whose days differ by less than this many days are in one window (1 to 366).
    pub window_days: u32,
    /// This many separate agencies (or joint groups) in one window is a warning (2 to 50).
    pub min_agencies: u32,
    pub kinds: Vec<KindName>,
    pub exempt_triggers: Vec<Trigger>,
    pub exempt_domains: Vec<EnforcementDomain>,
}
scoped!(MultiHeadRule);

/// 多层级重复检查: the same item at the same enterprise by agencies of different levels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatedItemRule {
    pub enabled: bool,
    /// Visits whose days differ by less than this many days are compared (1 to 366).
    pub window_days: u32,
    pub kinds: Vec<KindName>,
    pub exempt_triggers: Vec<Trigger>,
    pub exempt_domains: Vec<EnforcementDomain>,
}
scoped!(RepeatedItemRule);

/// 宁静日: days on which routine inspections may not enter enterprises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietDaysRule {
    pub enabled: bool,
    pub weekdays: Vec<DayName>,
    pub kinds: Vec<KindName>,
    pub exempt_triggers: Vec<Trigger>,
    pub exempt_domains: Vec<EnforcementDomain>,
}
scoped!(QuietDaysRule);

/// 检查码未扫码 / 未两码互核, judged when the validity window closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanningRule {
    pub enabled: bool,
    /// Also warn when only one of the two codes was scanned (两码互核).
    pub require_mutual_verification: bool,
}

/// 检查结果反馈超时.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultDeadlineRule {
    pub enabled: bool,
    /// The result is due this many hours after the validity window closes (1 to 720).
    pub hours_after_validity: u32,
}

impl ResultDeadlineRule {
    /// When the result of a visit whose validity window closes at `close` is due.
    pub fn due(&self, close: DateTime<Utc>) -> DateTime<Utc> {
        close + chrono::Duration::hours(i64::from(self.hours_after_validity))
    }
}

/// 执法人员不少于两人.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficersRule {
    pub enabled: bool,
    /// Fewer officers than this on an inspection is a warning (1 to 10).
    pub min_officers: u32,
}

/// 补录过多: one agency's supplementary visits in a calendar month (Asia/Shanghai).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplementaryRule {
    pub enabled: bool,
    /// More supplementary visits than this in a month is a warning (0 to 100000).
    pub max_per_month: u32,
    /// More supplementary visits with the standard reason 未报送涉企行政检查计划 than this in a
    /// month is a warning (0 to 100000).
    pub max_standard_reason_per_month: u32,
    /// At the month's end, a supplementary share of the agency's inspections above this
    /// percentage is a warning (0 to 100)…
    pub max_share_percent: u32,
    /// …when the agency made at least this many inspections that month (1 to 100000).
    pub min_visits_for_share: u32,
}

/// 以非检查名义变相检查: non-inspection visits (观摩, 督导, 考察, 服务, 普法, 法治体检) used as
/// inspections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisguisedVisitRule {
    pub enabled: bool,
    /// More non-inspection visits of one agency to one enterprise than this within the window
    /// is a warning (0 to 1000).
    pub max_visits: u32,
    /// Visits whose days differ by less than this many days are in one window (1 to 366).
    pub window_days: u32,
    /// A non-inspection visit that reports problems found is a warning.
    pub problems_found: bool,
}

/// 企业评价不满意: one rating at or below a level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LowRatingRule {
    pub enabled: bool,
    /// A rating at or below this level (1 to 4; 1 非常不满意 … 5 非常满意) is a warning.
    pub max_level: u8,
}

/// 月度满意率偏低: one agency's satisfaction rate in a calendar month (Asia/Shanghai).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SatisfactionRateRule {
    pub enabled: bool,
    /// Ratings at or above this level count as satisfied (2 to 5).
    pub satisfied_level: u8,
    /// A satisfied share below this percentage is a warning (1 to 100)…
    pub min_rate_percent: u32,
    /// …when the agency received at least this many ratings that month (1 to 100000).
    pub min_ratings: u32,
}

/// One region's rules: every threshold the warnings use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// Shown to supervisors, e.g. "株洲市（营商码）".
    pub name: String,
    /// Region-code prefixes this set applies to (1 to 6 digits); empty for the default set.
    pub prefixes: Vec<String>,
    /// Hours a code stays valid from 00:00 Asia/Shanghai on its date (1 to 720).
    pub validity_hours: u32,
    /// Time-based rules are judged this many minutes after their deadline (0 to 4320), so that
    /// an event signed before the deadline but recorded a little later still counts.
    pub deadline_grace_minutes: u32,
    pub annual_cap: AnnualCapRule,
    pub plan_frequency: PlanFrequencyRule,
    pub multi_head: MultiHeadRule,
    pub repeated_item: RepeatedItemRule,
    pub quiet_days: QuietDaysRule,
    pub scanning: ScanningRule,
    pub result_deadline: ResultDeadlineRule,
    pub officers: OfficersRule,
    pub supplementary: SupplementaryRule,
    pub disguised_visit: DisguisedVisitRule,
    pub low_rating: LowRatingRule,
    pub satisfaction_rate: SatisfactionRateRule,
}

impl RuleSet {
    /// The validity rule codes of this region are issued with.
    pub fn validity_rule(&self) -> ValidityRule {
        ValidityRule {
            hours: self.validity_hours,
        }
    }

    /// The grace period of time-based rules.
    pub fn deadline_grace(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.deadline_grace_minutes))
    }

    /// Checks every value against its range.
    pub fn validate(&self, set: &str) -> Result<(), RulesError> {
        if self.name.trim().is_empty() {
            return Err(invalid(set, "name", "must not be empty"));
        }
        for p in &self.prefixes {
            if p.is_empty() || p.len() > 6 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    set,
                    "prefixes",
                    format!("holds {p:?}; a prefix is 1 to 6 digits of a region code"),
                ));
            }
        }
        range(set, "validity_hours", self.validity_hours, 1, 720)?;
        range(
            set,
            "deadline_grace_minutes",
            self.deadline_grace_minutes,
            0,
            4320,
        )?;

        let a = &self.annual_cap;
        range(set, "annual_cap.max_per_year", a.max_per_year, 1, 366)?;
        scope(set, "annual_cap", a.enabled, a.scope())?;

        let m = &self.multi_head;
        range(set, "multi_head.window_days", m.window_days, 1, 366)?;
        range(set, "multi_head.min_agencies", m.min_agencies, 2, 50)?;
        scope(set, "multi_head", m.enabled, m.scope())?;

        let r = &self.repeated_item;
        range(set, "repeated_item.window_days", r.window_days, 1, 366)?;
        scope(set, "repeated_item", r.enabled, r.scope())?;

        let q = &self.quiet_days;
        scope(set, "quiet_days", q.enabled, q.scope())?;
        if q.enabled && q.weekdays.is_empty() {
            return Err(invalid(
                set,
                "quiet_days.weekdays",
                "must name at least one day when the rule is enabled",
            ));
        }
        distinct(set, "quiet_days.weekdays", &q.weekdays)?;

        range(
            set,
            "result_deadline.hours_after_validity",
            self.result_deadline.hours_after_validity,
            1,
            720,
        )?;
        range(
            set,
            "officers.min_officers",
            self.officers.min_officers,
            1,
            10,
        )?;

        let s = &self.supplementary;
        range(
            set,
            "supplementary.max_per_month",
            s.max_per_month,
            0,
            100_000,
        )?;
        range(
            set,
            "supplementary.max_standard_reason_per_month",
            s.max_standard_reason_per_month,
            0,
            100_000,
        )?;
        range(
            set,
            "supplementary.max_share_percent",
            s.max_share_percent,
            0,
            100,
        )?;
        range(
            set,
            "supplementary.min_visits_for_share",
            s.min_visits_for_share,
            1,
            100_000,
        )?;

        let d = &self.disguised_visit;
        range(set, "disguised_visit.max_visits", d.max_visits, 0, 1000)?;
        range(set, "disguised_visit.window_days", d.window_days, 1, 366)?;

        range(
            set,
            "low_rating.max_level",
            u32::from(self.low_rating.max_level),
            1,
            4,
        )?;
        let sr = &self.satisfaction_rate;
        range(
            set,
            "satisfaction_rate.satisfied_level",
            u32::from(sr.satisfied_level),
            2,
            5,
        )?;
        range(
            set,
            "satisfaction_rate.min_rate_percent",
            sr.min_rate_percent,
            1,
            100,
        )?;
        range(
            set,
            "satisfaction_rate.min_ratings",
            sr.min_ratings,
            1,
            100_000,
        )?;
        Ok(())
    }
}

fn range(set: &str, field: &str, value: u32, min: u32, max: u32) -> Result<(), RulesError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            set,
            field,
            format!("is {value}; it must be between {min} and {max}"),
        ))
    }
}

fn distinct<T: PartialEq + std::fmt::Debug>(
    set: &str,
    field: &str,
    v: &[T],
) -> Result<(), RulesError> {
    for (i, x) in v.iter().enumerate() {
        if v[..i].contains(x) {
            return Err(invalid(set, field, format!("names {x:?} twice")));
        }
    }
    Ok(())
}

fn scope(set: &str, rule: &str, enabled: bool, s: Scope<'_>) -> Result<(), RulesError> {
    if enabled && s.kinds.is_empty() {
        return Err(invalid(
            set,
            &format!("{rule}.kinds"),
            "must name at least one kind when the rule is enabled",
        ));
    }
    distinct(set, &format!("{rule}.kinds"), s.kinds)?;
    distinct(set, &format!("{rule}.exempt_triggers"), s.exempt_triggers)?;
    distinct(set, &format!("{rule}.exempt_domains"), s.exempt_domains)
}

/// The file's shape: `[default]` and `[regions.<name>]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BookFile {
    default: RuleSet,
    #[serde(default)]
    regions: BTreeMap<String, RuleSet>,
}

/// The default rule set plus region rule sets, chosen by the longest matching prefix of a
/// region code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleBook {
    default: RuleSet,
    regions: BTreeMap<String, RuleSet>,
    /// (prefix, region name), longest prefix first.
    prefixes: Vec<(String, String)>,
}

impl RuleBook {
    /// Parses and validates a rule book (the format of `deploy/rules/regions.toml`).
    pub fn from_toml(text: &str) -> Result<RuleBook, RulesError> {
        let file: BookFile = toml::from_str(text).map_err(|e| RulesError::Parse(e.to_string()))?;
        RuleBook::new(file.default, file.regions)
    }

    /// Builds a rule book from rule sets, each named; checks every value and that no prefix
    /// is claimed twice.
    pub fn new(
        default: RuleSet,
        regions: BTreeMap<String, RuleSet>,
    ) -> Result<RuleBook, RulesError> {
        default.validate("default")?;
        if !default.prefixes.is_empty() {
            return Err(invalid(
                "default",
                "prefixes",
                "must be empty: the default set applies wherever no region set does",
            ));
        }
        let mut prefixes: Vec<(String, String)> = Vec::new();
        let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, set) in &regions {
            set.validate(name)?;
            if set.prefixes.is_empty() {
                return Err(invalid(name, "prefixes", "must name at least one prefix"));
            }
            for p in &set.prefixes {
                if let Some(other) = owner.insert(p, name) {
                    return Err(invalid(
                        name,
                        "prefixes",
                        format!("claims {p:?}, which rule set `{other}` claims already"),
                    ));
                }
                prefixes.push((p.clone(), name.clone()));
            }
        }
        prefixes.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Ok(RuleBook {
            default,
            regions,
            prefixes,
        })
    }

    /// A book with one rule set for every region.
    pub fn single(default: RuleSet) -> Result<RuleBook, RulesError> {
        RuleBook::new(default, BTreeMap::new())
    }

    /// The rule book shipped in `deploy/rules/regions.toml` (checked by this crate's tests).
    pub fn shipped() -> RuleBook {
        RuleBook::from_toml(SHIPPED_RULES).expect("deploy/rules/regions.toml is a valid rule book")
    }

    /// The rule set for a region code: the region set with the longest matching prefix, or
    /// the default set.
    pub fn for_region(&self, region: &str) -> &RuleSet {
        self.prefixes
            .iter()
            .find(|(p, _)| region.starts_with(p.as_str()))
            .and_then(|(_, name)| self.regions.get(name))
            .unwrap_or(&self.default)
    }

    pub fn default_set(&self) -> &RuleSet {
        &self.default
    }

    /// The region rule sets by name, in name order.
    pub fn regions(&self) -> &BTreeMap<String, RuleSet> {
        &self.regions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> RuleBook {
        RuleBook::from_toml(SHIPPED_RULES).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_shipped_rule_book_parses_and_validates() {
        let b = book();
        assert_eq!(
            b.regions().keys().collect::<Vec<_>>(),
            ["chongqing", "gansu", "qinghai", "shanghai", "zhuzhou"]
        );
        assert_eq!(b, RuleBook::shipped());
    }

    #[test]
    fn zhuzhou_caps_routine_visits_at_one_a_year_and_keeps_monday_to_wednesday_quiet() {
        let b = book();
        let z = b.for_region("430203");
        assert_eq!(z.name, b.regions()["zhuzhou"].name);
        assert!(z.annual_cap.enabled);
        assert_eq!(z.annual_cap.max_per_year, 1);
        for d in [
            EnforcementDomain::NationalSecurity,
            EnforcementDomain::PublicSafety,
            EnforcementDomain::FoodDrug,
            EnforcementDomain::WorkSafety,
            EnforcementDomain::EcologyEnvironment,
            EnforcementDomain::PublicHealth,
        ] {
            assert!(z.annual_cap.exempt_domains.contains(&d), "{d:?}");
        }
        for t in [
            Trigger::Complaint,
            Trigger::SuperiorAssignment,
            Trigger::Emergency,
        ] {
            assert!(z.annual_cap.exempt_triggers.contains(&t), "{t:?}");
        }
        assert!(z.quiet_days.enabled);
        assert_eq!(
            z.quiet_days.weekdays,
            [DayName::Monday, DayName::Tuesday, DayName::Wednesday]
        );
    }

    #[test]
    fn qinghai_codes_are_valid_24_hours_from_midnight() {
        let b = book();
        assert_eq!(b.for_region("630100").validity_hours, 24);
        assert_eq!(b.for_region("630100").validity_rule().hours, 24);
        assert_eq!(b.for_region("630100").name, b.regions()["qinghai"].name);
    }

    #[test]
    fn officers_minimum_is_two_everywhere() {
        let b = book();
        assert_eq!(b.default_set().officers.min_officers, 2);
        for set in b.regions().values() {
            assert_eq!(set.officers.min_officers, 2, "{}", set.name);
        }
    }

    #[test]
    fn the_longest_prefix_wins_and_unknown_regions_get_the_default() {
        let b = book();
        assert_eq!(b.for_region("620100").name, b.regions()["gansu"].name);
        assert_eq!(b.for_region("310000").name, b.regions()["shanghai"].name);
        assert_eq!(b.for_region("500000").name, b.regions()["chongqing"].name);
        assert_eq!(b.for_region("430200").name, b.regions()["zhuzhou"].name);
        // Changsha is in Hunan but not in Zhuzhou.
        assert_eq!(b.for_region("430100").name, b.default_set().name);
        assert_eq!(b.for_region("110000").name, b.default_set().name);

        let mut inner = b.regions()["zhuzhou"].clone();
        inner.prefixes = vec!["430202".into()];
        inner.name = "芦淞区".into();
        let mut regions = b.regions().clone();
        regions.insert("lusong".into(), inner);
        let nested = RuleBook::new(b.default_set().clone(), regions).unwrap();
        assert_eq!(nested.for_region("430202").name, "芦淞区");
        assert_eq!(
            nested.for_region("430203").name,
            b.regions()["zhuzhou"].name
        );
    }

    #[test]
    fn a_threshold_out_of_range_is_refused_with_its_field() {
        let text = SHIPPED_RULES.replacen("validity_hours = 24", "validity_hours = 721", 1);
        let e = RuleBook::from_toml(&text).unwrap_err();
        assert!(
            matches!(&e, RulesError::Invalid { set, field, .. } if set == "default" && field == "validity_hours"),
            "{e}"
        );
        assert!(e.to_string().contains("between 1 and 720"), "{e}");

        let mut set = book().default_set().clone();
        set.validity_hours = 0;
        assert!(RuleBook::single(set).is_err());
        let mut set = book().default_set().clone();
        set.low_rating.max_level = 5;
        assert!(RuleBook::single(set).is_err());
        let mut set = book().default_set().clone();
        set.multi_head.min_agencies = 1;
        assert!(RuleBook::single(set).is_err());
    }

    #[test]
    fn unknown_and_missing_fields_are_refused_clearly() {
        let text = SHIPPED_RULES.replacen(
            "validity_hours = 24",
            "validity_hours = 24\nvalidity_hour = 24",
            1,
        );
        let e = RuleBook::from_toml(&text).unwrap_err();
        assert!(matches!(e, RulesError::Parse(_)), "{e}");
        assert!(e.to_string().contains("validity_hour"), "{e}");

        let text = SHIPPED_RULES.replacen("validity_hours = 24\n", "", 1);
        let e = RuleBook::from_toml(&text).unwrap_err();
        assert!(e.to_string().contains("validity_hours"), "{e}");

        let e = RuleBook::from_toml("[default]\nname = 1").unwrap_err();
        assert!(matches!(e, RulesError::Parse(_)), "{e}");
        assert!(RuleBook::from_toml("not toml at all [").is_err());
    }

    #[test]
    fn weekday_and_domain_names_are_checked() {
        let text = SHIPPED_RULES.replacen("weekdays = [\"monday\"", "weekdays = [\"funday\"", 1);
        let e = RuleBook::from_toml(&text).unwrap_err();
        assert!(e.to_string().contains("funday"), "{e}");
        let text = SHIPPED_RULES.replacen(
            "\"public_safety\", \"food_drug\"",
            "\"public_safety\", \"food\"",
            1,
        );
        assert!(RuleBook::from_toml(&text).is_err());
    }

    #[test]
    fn a_prefix_claimed_twice_or_a_bad_prefix_is_refused() {
        let b = book();
        let mut regions = b.regions().clone();
        let mut copy = regions["qinghai"].clone();
        copy.name = "青海副本".into();
        regions.insert("qinghai2".into(), copy);
        let e = RuleBook::new(b.default_set().clone(), regions).unwrap_err();
        assert!(e.to_string().contains("claims"), "{e}");

        let mut regions = b.regions().clone();
        regions.get_mut("gansu").unwrap().prefixes = vec!["6a".into()];
        assert!(RuleBook::new(b.default_set().clone(), regions).is_err());

        let mut regions = b.regions().clone();
        regions.get_mut("gansu").unwrap().prefixes.clear();
        assert!(RuleBook::new(b.default_set().clone(), regions).is_err());

        let mut default = b.default_set().clone();
        default.prefixes = vec!["11".into()];
        assert!(RuleBook::single(default).is_err());
    }

    #[test]
    fn an_enabled_quiet_day_rule_needs_days_and_days_are_distinct() {
        let mut set = book().regions()["zhuzhou"].clone();
        set.prefixes.clear();
        set.quiet_days.weekdays.clear();
        assert!(RuleBook::single(set.clone()).is_err());
        set.quiet_days.weekdays = vec![DayName::Monday, DayName::Monday];
        assert!(RuleBook::single(set).is_err());
    }
}
