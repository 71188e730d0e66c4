//! What happened to an inspection: the event bodies. `event_type` is the variant name and never
//! changes; `event_version` is explicit.

use crate::ids::{CreditCode, OfficerRef};
use crate::inspection::command::{InspectionKind, Outcome};
use crate::inspection::validity::ValidityWindow;
use crate::registry::{Agency, Item};
use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An officer as named on a code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OfficerOnCode {
    pub id: OfficerRef,
    pub name: String,
}

/// The enterprise as it stood in the registry when the code was issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnterpriseOnCode {
    pub credit_code: CreditCode,
    pub name: String,
    pub region: String,
}

/// Who scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scanner {
    /// The enterprise scanned the officer's inspection code.
    Enterprise,
    /// The officer scanned the enterprise's code (企业码).
    Officer,
}

/// Why a scan was refused (and recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScanRefusal {
    NotYetValid,
    Expired,
    Revoked,
    ForgedToken,
    WrongEnterprise,
}

impl ScanRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            ScanRefusal::NotYetValid => "code_not_yet_valid",
            ScanRefusal::Expired => "code_expired",
            ScanRefusal::Revoked => "code_revoked",
            ScanRefusal::ForgedToken => "forged_token",
            ScanRefusal::WrongEnterprise => "wrong_enterprise",
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            ScanRefusal::NotYetValid => "检查码尚未生效",
            ScanRefusal::Expired => "检查码已过期",
            ScanRefusal::Revoked => "检查码已作废",
            ScanRefusal::ForgedToken => "检查码无效，可能为伪造",
            ScanRefusal::WrongEnterprise => "企业码与检查对象不符",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
// `CodeIssued` (once per stream) carries the whole code; boxing it would only make building
// and matching events clumsier.
#[allow(clippy::large_enum_variant)]
pub enum InspectionEvent {
    /// 赋码
    CodeIssued {
        inspection_id: Uuid,
        kind: InspectionKind,
        agency: Agency,
        enterprise: EnterpriseOnCode,
        items: Vec<Item>,
        officers: Vec<OfficerOnCode>,
        date: NaiveDate,
        joint_partners: Vec<Agency>,
        validity: ValidityWindow,
    },
    /// 亮码
    CodeShown {
        #[serde(deserialize_with = "crate::time::utc")]
        at: DateTime<Utc>,
    },
    /// 扫码; `mutual` once both the enterprise's and the officer's scans are present (两码互核).
    CodeScanned {
        by: Scanner,
        #[serde(deserialize_with = "crate::time::utc")]
        at: DateTime<Utc>,
        mutual: bool,
    },
    /// A refused scan attempt, kept in the trail.
    ScanRefused {
        by: Scanner,
        #[serde(deserialize_with = "crate::time::utc")]
        at: DateTime<Utc>,
        reason: ScanRefusal,
    },
    /// 评价
    RatingGiven {
        #[schemars(range(min = 1, max = 5))]
        level: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
        #[serde(deserialize_with = "crate::time::utc")]
        at: DateTime<Utc>,
    },
    /// 结果反馈
    ResultReported {
        outcome: Outcome,
        #[serde(deserialize_with = "crate::time::utc")]
        at: DateTime<Utc>,
    },
    /// 作废
    CodeRevoked {
        reason: String,
        #[serde(deserialize_with = "crate::time::utc")]
        at: DateTime<Utc>,
    },
    /// 企业意见
    FeedbackGiven {
        text: String,
        #[serde(deserialize_with = "crate::time::utc")]
        at: DateTime<Utc>,
    },
}

impl DomainEvent for InspectionEvent {
    fn event_type(&self) -> String {
        let s = match self {
            InspectionEvent::CodeIssued { .. } => "CodeIssued",
            InspectionEvent::CodeShown { .. } => "CodeShown",
            InspectionEvent::CodeScanned { .. } => "CodeScanned",
            InspectionEvent::ScanRefused { .. } => "ScanRefused",
            InspectionEvent::RatingGiven { .. } => "RatingGiven",
            InspectionEvent::ResultReported { .. } => "ResultReported",
            InspectionEvent::CodeRevoked { .. } => "CodeRevoked",
            InspectionEvent::FeedbackGiven { .. } => "FeedbackGiven",
        };
        s.to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
