//! The HTML of the enterprise's pages, in Chinese: pure functions from what the service knows
//! to markup. maud escapes every value it splices in; free text and credentials also pass
//! through [`redact`] so that no full phone or ID number reaches the page.

use super::redact::redact;
use super::STYLESHEET_PATH;
use chrono::{DateTime, NaiveDate, Utc};
use maud::{html, Markup, DOCTYPE};
use saoma_domain::inspection::{ScanRefusal, ValidityState, MAX_TEXT_CHARS};
use saoma_projections::code_view::CodeView;
use std::borrow::Cow;

/// What opening the page did, shown at its top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Banner {
    /// This opening recorded the enterprise's scan.
    Scanned,
    /// The enterprise had scanned this code before; nothing new was recorded.
    Verified,
    /// The scan was refused; the attempt is in the audit trail.
    Refused(ScanRefusal),
}

/// The satisfaction levels of the rating form, best first.
const LEVELS: [(u8, &str); 5] = [
    (5, "非常满意"),
    (4, "满意"),
    (3, "基本满意"),
    (2, "不满意"),
    (1, "非常不满意"),
];

pub(super) fn level_label(level: u8) -> &'static str {
    LEVELS
        .iter()
        .find(|(l, _)| *l == level)
        .map_or("", |(_, label)| *label)
}

/// An instant as read in China: `2026年12月03日 14:05`.
pub fn shanghai_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y年%m月%d日 %H:%M")
        .to_string()
}

fn chinese_date(d: NaiveDate) -> String {
    d.format("%Y年%m月%d日").to_string()
}

/// 未生效 / 有效期至 … / 已过期, or 已作废.
pub fn validity_line(view: &CodeView) -> String {
    if view.revoked {
        return "已作废".to_string();
    }
    match view.validity {
        ValidityState::NotYetValid => {
            format!("未生效（{} 起生效）", shanghai_time(view.valid_from))
        }
        ValidityState::Valid => format!("有效期至 {}", shanghai_time(view.valid_until)),
        ValidityState::Expired => {
            format!("已过期（有效期至 {}）", shanghai_time(view.valid_until))
        }
    }
}

/// An officer's credential as shown: `("执法证号", "ZF630100001")` or `("警号", "123456")`.
fn credential(key: &str) -> (&'static str, Cow<'_, str>) {
    match key.strip_prefix('警') {
        Some(badge) => ("警号", redact(badge)),
        None => ("执法证号", redact(key)),
    }
}

/// The page frame: mobile viewport, the service's own stylesheet, no script.
pub fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                meta name="robots" content="noindex, nofollow";
                title { (title) " · 扫码入企" }
                link rel="stylesheet" href=(STYLESHEET_PATH);
            }
            body {
                header.top { "扫码入企 · 涉企行政检查" }
                main { (body) }
                footer {
                    "扫码、评价等记录均由系统签名存证，任何人无法事后篡改。"
                }
            }
        }
    }
}

fn banner(b: Banner) -> Markup {
    let (class, title, text) = match b {
        Banner::Scanned => (
            "banner ok",
            "检查码真实有效",
            "本次扫码已记录。请核对下列检查主体、执法人员和检查事项是否与现场一致。",
        ),
        Banner::Verified => (
            "banner ok",
            "检查码真实",
            "您已扫码核验过此检查码，扫码记录已留存。",
        ),
        Banner::Refused(reason) => (
            "banner bad",
            reason.message(),
            match reason {
                ScanRefusal::NotYetValid => {
                    "尚未到检查码所列的执法时间，现在不能凭此码入企检查，您有权拒绝检查。本次扫码已记录在案。"
                }
                ScanRefusal::Expired => {
                    "此检查码已超过有效期，不能凭此码入企检查，您有权拒绝检查。本次扫码已记录在案。"
                }
                ScanRefusal::Revoked => {
                    "此检查码已被执法机关作废，不能凭此码入企检查，您有权拒绝检查。本次扫码已记录在案。"
                }
                ScanRefusal::ForgedToken | ScanRefusal::WrongEnterprise => {
                    "此检查码未通过核验，您有权拒绝检查。本次扫码已记录在案。"
                }
            },
        ),
    };
    html! {
        section class=(class) role="status" {
            h1 { (title) }
            p { (text) }
        }
    }
}

fn details(view: &CodeView) -> Markup {
    html! {
        section.card {
            h2 { "检查信息" }
            dl {
                dt { "检查主体" }
                dd { (view.agency.name) }
                dt { "检查对象" }
                dd {
                    (view.enterprise.name)
                    br;
                    span.muted { "统一社会信用代码 " (view.enterprise.code) }
                }
                dt { "检查类型" }
                dd { (view.kind) "：" (redact(&view.kind_detail)) }
                dt { "执法时间" }
                dd { (chinese_date(view.date)) }
                dt { "检查码状态" }
                @let usable = !view.revoked && view.validity == ValidityState::Valid;
                dd class=(if usable { "state ok" } else { "state bad" }) {
                    (validity_line(view))
                }
                dt { "联合检查" }
                dd {
                    @if view.joint_partners.is_empty() {
                        "否"
                    } @else {
                        "是，联合单位："
                        @for (i, p) in view.joint_partners.iter().enumerate() {
                            @if i > 0 { "、" }
                            (p.name)
                        }
                    }
                }
                dt { "两码互核" }
                dd { @if view.mutual_verified { "已完成" } @else { "未完成" } }
            }
        }
        section.card {
            h2 { "执法人员" }
            ul.plain {
                @for o in &view.officers {
                    @let (label, number) = credential(&o.credential);
                    li {
                        strong { (o.name) }
                        br;
                        span.muted { (label) " " (number) }
                    }
                }
            }
            @if view.officers.len() < 2 {
                p.note { "依法应由两名以上执法人员实施检查，本次检查码所列执法人员不足两名。" }
            }
        }
        section.card {
            h2 { "检查事项及依据" }
            ol {
                @for item in &view.items {
                    li {
                        strong { (item.name) }
                        br;
                        span.muted { "依据：" (redact(&item.legal_basis)) }
                    }
                }
            }
        }
    }
}

fn result(view: &CodeView) -> Markup {
    html! {
        section.card {
            h2 { "检查结果" }
            @match &view.result {
                Some(r) => {
                    @if r.problems_found {
                        p { strong { "发现问题" } }
                        @if let Some(feedback) = &r.feedback {
                            p.text { (redact(feedback)) }
                        }
                    } @else {
                        p { strong { "未发现问题" } }
                    }
                    p.muted { "执法人员反馈于 " (shanghai_time(r.at)) }
                },
                None => { p.muted { "执法人员尚未反馈检查结果。" } },
            }
        }
    }
}

fn rating(view: &CodeView, token: &str, form_tag: &str) -> Markup {
    html! {
        section.card id="rating" {
            h2 { "评价本次检查" }
            @if let Some(r) = &view.rating {
                p.done { strong { "已提交" } }
                p { "您的评价：" (r.level) "分（" (level_label(r.level)) "）" }
                @if let Some(comment) = &r.comment {
                    p.text { (redact(comment)) }
                }
                p.muted { "提交于 " (shanghai_time(r.at)) "。每次检查只能评价一次。" }
            } @else if view.scanned && !view.revoked {
                form method="post" action={ "/c/" (token) "/rating" } {
                    input type="hidden" name="csrf" value=(form_tag);
                    fieldset {
                        legend { "满意度" }
                        @for (level, text) in LEVELS {
                            label.choice {
                                input type="radio" name="level" value=(level) required[level == 5];
                                " " (text)
                            }
                        }
                    }
                    label.comment {
                        "意见或建议（选填）"
                        textarea name="comment" rows="4" maxlength=(MAX_TEXT_CHARS) {}
                    }
                    p.muted { "每次检查只能评价一次，提交后不能修改。" }
                    button type="submit" { "提交评价" }
                }
            } @else {
                p.muted { "扫码核验通过后，可在检查结束后对本次检查进行评价。" }
            }
        }
    }
}

fn rights() -> Markup {
    html! {
        section.card.rights {
            h2 { "您的权利" }
            ul {
                li {
                    strong { "无码可拒：" }
                    "执法人员入企检查，应当出示本次检查的有效检查码。未出示检查码，或检查码未生效、已过期、已作废、核验不通过的，您有权拒绝检查。"
                }
                li {
                    strong { "陈述权、申辩权：" }
                    "对检查中发现的问题和拟作出的处理，您有权陈述事实、说明理由并进行申辩，执法人员应当听取并记录。"
                }
                li {
                    strong { "救济权：" }
                    "对检查行为或据此作出的处理决定不服的，您有权依法申请行政复议或者提起行政诉讼，也可以向行政执法监督机构投诉、举报。"
                }
                li {
                    strong { "评价权：" }
                    "检查结束后，您可以在检查码页面对本次检查作出评价，每次检查可评价一次。"
                }
            }
        }
    }
}

/// The page of a genuine code: what opening it did, the inspection, its result, the rating
/// (form or "已提交") and the enterprise's rights.
pub fn code_page(view: &CodeView, b: Banner, token: &str, form_tag: &str) -> Markup {
    layout(
        "检查码核验",
        html! {
            (banner(b))
            (details(view))
            (result(view))
            (rating(view, token, form_tag))
            (rights())
        },
    )
}

/// A page that explains why nothing (else) can be shown or done, with an optional way back.
pub fn problem_page(title: &str, text: &str, back: Option<&str>) -> Markup {
    layout(
        title,
        html! {
            section.banner.bad role="alert" {
                h1 { (title) }
                p { (text) }
            }
            @if let Some(href) = back {
                p { a href=(href) { "返回检查码页面" } }
            }
            (rights())
        },
    )
}

/// The page a phone opens from an enterprise's own code (企业码).
pub fn enterprise_page(name: &str, credit_code: &str) -> Markup {
    layout(
        "企业码",
        html! {
            section.banner.ok {
                h1 { "企业码" }
                p { (name) br; span.muted { "统一社会信用代码 " (credit_code) } }
            }
            section.card {
                h2 { "这是什么" }
                p {
                    "这是本企业的企业码，供执法人员入企检查时用执法终端扫描，与执法人员出示的检查码相互核验（两码互核）。"
                }
                p {
                    "企业核验执法人员身份，请扫描执法人员出示的检查码。"
                }
            }
            (rights())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;
    use saoma_projections::code_view::{ItemLine, NamedParty, OfficerLine, RatingLine, ResultLine};
    use uuid::Uuid;

    fn view() -> CodeView {
        CodeView {
            inspection_id: Uuid::from_u128(1),
            kind: "非计划检查",
            kind_detail: "投诉：投诉人电话13912345678反映销售过期食品".into(),
            agency: NamedParty {
                code: "QH-SCJ".into(),
                name: "青海省市场监督管理局".into(),
            },
            enterprise: NamedParty {
                code: "91630100MA7F3XKQ1X".into(),
                name: "<script>alert(\"x\")</script>西宁&华创".into(),
            },
            officers: vec![
                OfficerLine {
                    name: "王海".into(),
                    credential: "ZF43020000001".into(),
                },
                OfficerLine {
                    name: "李娜".into(),
                    credential: "63010219900101123X".into(),
                },
                OfficerLine {
                    name: "张警官".into(),
                    credential: "警012345".into(),
                },
            ],
            items: vec![ItemLine {
                name: "食品经营许可事项检查".into(),
                legal_basis: "《中华人民共和国食品安全法》第一百一十条".into(),
            }],
            joint_partners: vec![NamedParty {
                code: "XN-YJJ".into(),
                name: "西宁市应急管理局".into(),
            }],
            date: NaiveDate::from_ymd_opt(2026, 12, 3).unwrap(),
            valid_from: Utc.with_ymd_and_hms(2026, 12, 2, 16, 0, 0).unwrap(),
            valid_until: Utc.with_ymd_and_hms(2026, 12, 3, 16, 0, 0).unwrap(),
            validity: ValidityState::Valid,
            revoked: false,
            scanned: true,
            mutual_verified: false,
            rating: None,
            result: None,
        }
    }

    fn render(view: &CodeView, b: Banner) -> String {
        code_page(view, b, "TOKEN", "TAG").into_string()
    }

    #[test]
    fn a_hostile_enterprise_name_is_escaped() {
        let page = render(&view(), Banner::Scanned);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;西宁&amp;华创"));
    }

    #[test]
    fn the_page_shows_agency_officers_items_partners_and_validity_in_chinese() {
        let page = render(&view(), Banner::Scanned);
        for text in [
            "lang=\"zh-CN\"",
            "name=\"viewport\"",
            "青海省市场监督管理局",
            "王海",
            "执法证号 ZF43020000001",
            "警号 012345",
            "食品经营许可事项检查",
            "依据：《中华人民共和国食品安全法》第一百一十条",
            "非计划检查",
            "是，联合单位：西宁市应急管理局",
            "2026年12月03日",
            "有效期至 2026年12月04日 00:00",
            "陈述权、申辩权",
            "救济权",
            "您有权拒绝检查",
            "检查码真实有效",
        ] {
            assert!(page.contains(text), "missing {text:?} in {page}");
        }
        assert!(!page.contains("<script"), "the page needs no script");
    }

    #[test]
    fn phone_and_id_numbers_in_the_code_are_masked() {
        let page = render(&view(), Banner::Scanned);
        assert!(!page.contains("13912345678"), "{page}");
        assert!(page.contains("139****5678"));
        assert!(!page.contains("63010219900101123X"));
        assert!(page.contains("执法证号 630***********123X"));
    }

    #[test]
    fn the_validity_reads_not_yet_valid_valid_until_or_expired_in_shanghai_time() {
        let mut v = view();
        v.validity = ValidityState::NotYetValid;
        assert_eq!(validity_line(&v), "未生效（2026年12月03日 00:00 起生效）");
        v.validity = ValidityState::Valid;
        assert_eq!(validity_line(&v), "有效期至 2026年12月04日 00:00");
        v.validity = ValidityState::Expired;
        assert_eq!(validity_line(&v), "已过期（有效期至 2026年12月04日 00:00）");
        v.revoked = true;
        assert_eq!(validity_line(&v), "已作废");
    }

    #[test]
    fn a_scanned_unrated_code_offers_the_rating_form_with_its_tag() {
        let page = render(&view(), Banner::Verified);
        assert!(page.contains("action=\"/c/TOKEN/rating\""), "{page}");
        assert!(page.contains("name=\"csrf\" value=\"TAG\""));
        assert!(page.contains("非常满意") && page.contains("非常不满意"));
        assert!(!page.contains("已提交"));
    }

    #[test]
    fn a_rated_code_shows_submitted_and_no_form_and_the_reported_result() {
        let mut v = view();
        v.rating = Some(RatingLine {
            level: 4,
            comment: Some("态度很好，回电13800138000".into()),
            at: Utc.with_ymd_and_hms(2026, 12, 3, 3, 0, 0).unwrap(),
        });
        v.result = Some(ResultLine {
            problems_found: true,
            feedback: Some("消防通道堆放杂物，已责令整改".into()),
            at: Utc.with_ymd_and_hms(2026, 12, 3, 2, 30, 0).unwrap(),
        });
        let page = render(&v, Banner::Verified);
        assert!(page.contains("已提交"));
        assert!(page.contains("4分（满意）"));
        assert!(page.contains("138****8000") && !page.contains("13800138000"));
        assert!(!page.contains("<form"), "{page}");
        assert!(page.contains("发现问题") && page.contains("消防通道堆放杂物，已责令整改"));
        assert!(page.contains("执法人员反馈于 2026年12月03日 10:30"));
    }

    #[test]
    fn a_code_never_scanned_offers_no_rating_form() {
        let mut v = view();
        v.scanned = false;
        v.validity = ValidityState::Expired;
        let page = render(&v, Banner::Refused(ScanRefusal::Expired));
        assert!(page.contains("检查码已过期"));
        assert!(page.contains("已过期（有效期至"));
        assert!(!page.contains("<form"));
    }

    #[test]
    fn a_problem_page_escapes_its_way_back() {
        let page = problem_page("检查码无效", "说明", Some("/c/\"><b>x")).into_string();
        assert!(page.contains("href=\"/c/&quot;&gt;&lt;b&gt;x\""), "{page}");
    }
}
