//! What officers sign (`OfficerCommand`, the wire contract) and what the aggregate receives
//! (`InspectionRequest`: the command plus the facts the service looked up for it).

use crate::ids::{AgencyCode, CreditCode, ItemCode, OfficerRef, PlanId};
use crate::inspection::validity::ValidityRule;
use crate::registry::{Agency, Enterprise, Item, OfficerStatus, Plan};
use crate::schema::string_schema;
use crate::seal::EventMeta;
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use uuid::Uuid;

/// The standard supplementary reason, counted separately by the statistics.
pub const STANDARD_SUPPLEMENT_REASON: &str = "未报送涉企行政检查计划";

/// A supplementary inspection's reason (补录原因): 1 to 200 characters.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SupplementReason(String);

impl SupplementReason {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(s: &str) -> Result<Self, crate::inspection::InspectionError> {
        use crate::inspection::InspectionError;
        let s = s.trim();
        match s.chars().count() {
            0 => Err(InspectionError::ReasonRequired),
            n if n > Self::MAX_CHARS => Err(InspectionError::ReasonTooLong),
            _ => Ok(SupplementReason(s.to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_standard(&self) -> bool {
        self.0 == STANDARD_SUPPLEMENT_REASON
    }
}

impl<'de> Deserialize<'de> for SupplementReason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SupplementReason::parse(&s).map_err(|e| serde::de::Error::custom(e.code()))
    }
}

string_schema!(SupplementReason, "SupplementReason", {
    "description": "补录原因: 1 to 200 characters, not only white space",
    "minLength": 1,
    "maxLength": 200,
    "pattern": "\\S"
});

impl fmt::Debug for SupplementReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SupplementReason({:?})", self.0)
    }
}

/// Why an unplanned inspection takes place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// 投诉
    Complaint,
    /// 举报
    Report,
    /// 媒体曝光
    MediaExposure,
    /// 上级交办
    SuperiorAssignment,
    /// 突发事件
    Emergency,
    /// 转办、数据监测等其他线索
    Referral,
}

/// Visits that are not inspections but still need a code (非检查类入企).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VisitPurpose {
    /// 观摩
    Observation,
    /// 督导
    Supervision,
    /// 考察
    Study,
    /// 服务
    Service,
    /// 普法
    LegalEducation,
    /// 法治体检
    LegalCheckup,
}

/// The four kinds of code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum InspectionKind {
    /// 计划检查: must be in an approved plan, under its frequency.
    Planned { plan: PlanId },
    /// 补录: recorded after the fact with a reason.
    Supplementary { reason: SupplementReason },
    /// 非计划检查: triggered by a complaint, report, media exposure, assignment or emergency.
    Unplanned { trigger: Trigger, basis: String },
    /// 非检查类入企.
    NonInspection { purpose: VisitPurpose },
}

/// What the officer found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    NoProblems,
    ProblemsFound { feedback: String },
}

/// The code an officer asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueCode {
    /// Chosen by the officer's app, so that a re-sent command cannot create a second inspection.
    pub inspection_id: Uuid,
    pub kind: InspectionKind,
    pub agency: AgencyCode,
    pub enterprise: CreditCode,
    pub items: Vec<ItemCode>,
    pub officers: Vec<OfficerRef>,
    /// 执法时间: the inspection date.
    pub date: NaiveDate,
    /// 联合检查: partner agencies; empty when not a joint inspection.
    #[serde(default)]
    pub joint_partners: Vec<AgencyCode>,
}

/// Commands signed by an officer's device: the wire contract of `schemas/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum OfficerCommand {
    IssueCode(IssueCode),
    ShowCode {
        inspection_id: Uuid,
    },
    /// The officer scans the enterprise's own code (企业码) for the two-code check.
    ScanEnterpriseCode {
        inspection_id: Uuid,
        enterprise: CreditCode,
    },
    ReportResult {
        inspection_id: Uuid,
        outcome: Outcome,
    },
    RevokeCode {
        inspection_id: Uuid,
        reason: String,
    },
}

impl OfficerCommand {
    pub fn inspection_id(&self) -> Uuid {
        match self {
            OfficerCommand::IssueCode(c) => c.inspection_id,
            OfficerCommand::ShowCode { inspection_id }
            | OfficerCommand::ScanEnterpriseCode { inspection_id, .. }
            | OfficerCommand::ReportResult { inspection_id, .. }
            | OfficerCommand::RevokeCode { inspection_id, .. } => *inspection_id,
        }
    }
}

/// An officer on a code as the registry knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficerFact {
    pub key: String,
    pub name: String,
    pub agency: AgencyCode,
    pub status: OfficerStatus,
}

/// The plan named by a planned code and how many of its visits this enterprise has used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanUse {
    pub plan: Plan,
    pub used: u32,
}

/// Registry look-ups for `IssueCode`, made by the service before the aggregate decides.
/// Each `Option` is `None` when the registry does not know the entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueFacts {
    pub agency: Option<Agency>,
    pub enterprise: Option<Enterprise>,
    /// Aligned with `IssueCode::items`.
    pub items: Vec<Option<Item>>,
    /// Aligned with `IssueCode::officers`.
    pub officers: Vec<Option<OfficerFact>>,
    /// Aligned with `IssueCode::joint_partners`.
    pub partners: Vec<Option<Agency>>,
    /// Present for planned codes whose plan exists.
    pub plan: Option<PlanUse>,
    pub validity: ValidityRule,
}

/// Whether the token presented by a scanner was genuine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenCheck {
    Genuine,
    Forged,
}

/// Everything the aggregate can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
// `IssueCode` carries its registry facts; a command lives for one decision, so boxing them
// would only make building and matching it clumsier.
#[allow(clippy::large_enum_variant)]
pub enum InspectionCommand {
    IssueCode {
        command: IssueCode,
        facts: IssueFacts,
    },
    ShowCode,
    ScanEnterpriseCode {
        enterprise: CreditCode,
    },
    ReportResult {
        outcome: Outcome,
    },
    RevokeCode {
        reason: String,
    },
    /// The enterprise opens the code's URL (扫码).
    ScanCode {
        token: TokenCheck,
    },
    /// 1 (very dissatisfied) to 5 (very satisfied).
    GiveRating {
        level: u8,
        comment: Option<String>,
    },
    /// 企业意见/投诉.
    GiveFeedback {
        text: String,
    },
}

/// A command with its context: who, when, and the signed envelope it came in.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectionRequest {
    pub inspection_id: Uuid,
    pub command: InspectionCommand,
    pub meta: EventMeta,
    /// The signed envelope exactly as received, when the command came from an officer.
    pub signed: Option<Value>,
}

#[cfg(test)]
mod wire_tests {
    use super::*;
    use serde_json::json;

    fn issue_json() -> serde_json::Value {
        json!({
            "type": "IssueCode",
            "inspection_id": "6f1c1f36-3a5e-4c55-8f43-0a4c1d9b5b10",
            "kind": {"kind": "supplementary", "reason": STANDARD_SUPPLEMENT_REASON},
            "agency": "QH-SCJ",
            "enterprise": "91350100M000100Y43",
            "items": ["SC-001"],
            "officers": ["ZF630100001", {"badge_no": "012345", "name": "张三"}],
            "date": "2026-03-02"
        })
    }

    #[test]
    fn an_issue_code_command_parses_from_its_wire_shape() {
        let c: OfficerCommand = serde_json::from_value(issue_json()).unwrap();
        let OfficerCommand::IssueCode(c) = c else {
            panic!("expected IssueCode")
        };
        assert!(
            matches!(c.kind, InspectionKind::Supplementary { ref reason } if reason.is_standard())
        );
        assert_eq!(c.officers.len(), 2);
        assert!(c.joint_partners.is_empty());
    }

    #[test]
    fn unknown_fields_are_refused_at_every_level() {
        let mut v = issue_json();
        v["extra"] = json!(1);
        assert!(serde_json::from_value::<OfficerCommand>(v).is_err());
        let mut v = issue_json();
        v["kind"]["extra"] = json!(1);
        assert!(serde_json::from_value::<OfficerCommand>(v).is_err());
        let v = json!({"type": "ShowCode", "inspection_id": "6f1c1f36-3a5e-4c55-8f43-0a4c1d9b5b10", "x": 1});
        assert!(serde_json::from_value::<OfficerCommand>(v).is_err());
    }

    #[test]
    fn a_bad_credit_code_check_digit_is_refused_while_parsing() {
        let mut v = issue_json();
        v["enterprise"] = json!("91350100M000100Y44");
        let e = serde_json::from_value::<OfficerCommand>(v).unwrap_err();
        assert!(e.to_string().contains("校验位"), "{e}");
    }

    #[test]
    fn a_201_character_reason_is_refused_while_parsing() {
        let mut v = issue_json();
        v["kind"]["reason"] = json!("检".repeat(201));
        let e = serde_json::from_value::<OfficerCommand>(v).unwrap_err();
        assert!(e.to_string().contains("reason_too_long"), "{e}");
        let mut v = issue_json();
        v["kind"]["reason"] = json!("检".repeat(200));
        assert!(serde_json::from_value::<OfficerCommand>(v).is_ok());
    }

    #[test]
    fn a_result_with_problems_carries_its_feedback() {
        let v = json!({"type": "ReportResult", "inspection_id": "6f1c1f36-3a5e-4c55-8f43-0a4c1d9b5b10",
                       "outcome": {"outcome": "problems_found", "feedback": "消防通道堵塞"}});
        let c: OfficerCommand = serde_json::from_value(v).unwrap();
        assert!(matches!(
            c,
            OfficerCommand::ReportResult {
                outcome: Outcome::ProblemsFound { .. },
                ..
            }
        ));
    }
}
