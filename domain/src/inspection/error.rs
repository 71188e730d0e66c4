//! Why the `Inspection` aggregate refuses a command: a stable code and a Chinese message each.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InspectionError {
    #[error("计划检查未纳入")]
    PlanNotIncluded,
    #[error("检查计划超出频次")]
    PlanFrequencyExceeded,
    #[error("检查计划不属于该年度")]
    PlanYearMismatch,
    #[error("补录原因不能为空")]
    ReasonRequired,
    #[error("补录原因不能超过200字")]
    ReasonTooLong,
    #[error("非计划检查须注明依据")]
    BasisRequired,
    #[error("检查主体未登记")]
    UnknownAgency,
    #[error("执法人员不属于该检查主体")]
    OfficerNotInAgency,
    #[error("检查对象未登记")]
    UnknownEnterprise,
    #[error("检查对象已注销或停业")]
    EnterpriseNotActive,
    #[error("检查事项不能为空")]
    NoItems,
    #[error("检查事项未登记")]
    UnknownItem,
    #[error("执法人员不能为空")]
    NoOfficers,
    #[error("检查码所列执法人员未登记")]
    UnknownOfficerOnCode,
    #[error("检查码所列执法人员不具备执法资格")]
    OfficerOnCodeNotActive,
    #[error("检查码所列执法人员重复")]
    DuplicateOfficerOnCode,
    #[error("赋码人员须为检查码所列执法人员")]
    IssuerNotListed,
    #[error("联合检查单位无效")]
    PartnerInvalid,
    #[error("检查日期早于当前日期")]
    DateInPast,
    #[error("补录检查的日期不能晚于当前日期")]
    SupplementInFuture,
    #[error("该检查已赋码")]
    AlreadyIssued,
    #[error("指令中的检查编号不一致")]
    InspectionIdMismatch,
    #[error("该检查尚未赋码")]
    NotIssued,
    #[error("检查码已作废")]
    CodeRevoked,
    #[error("不在检查码有效期内")]
    OutsideValidity,
    #[error("无权操作该检查")]
    NotAssigned,
    #[error("企业码与检查对象不符")]
    WrongEnterprise,
    #[error("企业尚未扫码，不能评价")]
    NotScanned,
    #[error("已评价，不能重复评价")]
    AlreadyRated,
    #[error("满意度等级应为1至5")]
    RatingInvalid,
    #[error("文字内容过长")]
    TextTooLong,
    #[error("结果已反馈，不能重复反馈")]
    AlreadyReported,
    #[error("发现问题时须填写反馈内容")]
    ResultTextRequired,
    #[error("作废原因不能为空")]
    RevokeReasonRequired,
    #[error("检查码已使用，不能作废")]
    AlreadyUsed,
    #[error("内容不能为空")]
    TextRequired,
    #[error("重复提交的指令")]
    DuplicateCommand,
}

impl InspectionError {
    /// Stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        use InspectionError::*;
        match self {
            PlanNotIncluded => "plan_not_included",
            PlanFrequencyExceeded => "plan_frequency_exceeded",
            PlanYearMismatch => "plan_year_mismatch",
            ReasonRequired => "reason_required",
            ReasonTooLong => "reason_too_long",
            BasisRequired => "basis_required",
            UnknownAgency => "unknown_agency",
            OfficerNotInAgency => "officer_not_in_agency",
            UnknownEnterprise => "unknown_enterprise",
            EnterpriseNotActive => "enterprise_not_active",
            NoItems => "no_items",
            UnknownItem => "unknown_item",
            NoOfficers => "no_officers",
            UnknownOfficerOnCode => "unknown_officer_on_code",
            OfficerOnCodeNotActive => "officer_on_code_not_active",
            DuplicateOfficerOnCode => "duplicate_officer_on_code",
            IssuerNotListed => "issuer_not_listed",
            PartnerInvalid => "partner_invalid",
            DateInPast => "date_in_past",
            SupplementInFuture => "supplement_in_future",
            AlreadyIssued => "already_issued",
            InspectionIdMismatch => "inspection_id_mismatch",
            NotIssued => "not_issued",
            CodeRevoked => "code_revoked",
            OutsideValidity => "outside_validity",
            NotAssigned => "not_assigned",
            WrongEnterprise => "wrong_enterprise",
            NotScanned => "not_scanned",
            AlreadyRated => "already_rated",
            RatingInvalid => "rating_invalid",
            TextTooLong => "text_too_long",
            AlreadyReported => "already_reported",
            ResultTextRequired => "result_text_required",
            RevokeReasonRequired => "revoke_reason_required",
            AlreadyUsed => "already_used",
            TextRequired => "text_required",
            DuplicateCommand => "duplicate_command",
        }
    }
}
