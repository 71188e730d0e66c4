//! Chinese labels and small formatting shared by the signed-in pages.

use super::view::level_label;
use saoma_domain::inspection::{InspectionEvent, Outcome, Scanner};

/// Percent-encodes a query value (everything but unreserved ASCII).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn status_label(status: &str) -> &'static str {
    match status {
        "issued" => "已赋码",
        "scanned" => "已扫码",
        "reported" => "已反馈结果",
        "revoked" => "已作废",
        _ => "",
    }
}

/// One trace line: what happened, in Chinese.
pub fn event_label(event: &InspectionEvent) -> String {
    match event {
        InspectionEvent::CodeIssued { .. } => "赋码".into(),
        InspectionEvent::CodeShown { .. } => "亮码".into(),
        InspectionEvent::CodeScanned { by, mutual, .. } => {
            let who = match by {
                Scanner::Enterprise => "企业扫检查码",
                Scanner::Officer => "执法人员扫企业码",
            };
            if *mutual {
                format!("{who}（两码互核完成）")
            } else {
                who.into()
            }
        }
        InspectionEvent::ScanRefused { reason, .. } => format!("扫码被拒：{}", reason.message()),
        InspectionEvent::RatingGiven { level, .. } => format!("企业评价：{}", level_label(*level)),
        InspectionEvent::ResultReported { outcome, .. } => match outcome {
            Outcome::NoProblems => "结果反馈：未发现问题".into(),
            Outcome::ProblemsFound { .. } => "结果反馈：发现问题".into(),
        },
        InspectionEvent::CodeRevoked { .. } => "作废".into(),
        InspectionEvent::FeedbackGiven { .. } => "企业意见".into(),
    }
}

/// A warning's severity.
pub fn severity_label(severity: &str) -> &'static str {
    match severity {
        "info" => "提示",
        "warning" => "预警",
        "serious" => "严重",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("华创 a&b=c"), "%E5%8D%8E%E5%88%9B%20a%26b%3Dc");
        assert_eq!(encode("ZF-63_0.1~"), "ZF-63_0.1~");
    }

    #[test]
    fn every_event_has_a_chinese_label() {
        let at = Utc::now();
        let scanned = InspectionEvent::CodeScanned {
            by: Scanner::Enterprise,
            at,
            mutual: true,
        };
        assert_eq!(event_label(&scanned), "企业扫检查码（两码互核完成）");
        let rated = InspectionEvent::RatingGiven {
            level: 5,
            comment: None,
            at,
        };
        assert_eq!(event_label(&rated), "企业评价：非常满意");
    }
}
