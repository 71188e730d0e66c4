//! `report.html`: one self-contained page in Chinese — no script, no font, no request to any
//! network — with SVG bar charts of inspections per month, warnings per rule and per agency,
//! and satisfaction per agency. Deterministic: the same figures give the same bytes.

use crate::replay::Summary;
use saoma_projections::satisfaction::{Dimension, Satisfaction};
use saoma_projections::warnings::{Rule, Warning};
use std::fmt::Write as _;

/// Agencies shown in the chart of warnings per agency.
const TOP_AGENCIES: usize = 20;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The widths of a bar chart's columns, in pixels of 12 px text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChartSize {
    label: usize,
    bar: usize,
    value: usize,
}

/// The report's charts, for a wide screen or paper.
const REPORT_CHART: ChartSize = ChartSize {
    label: 220,
    bar: 460,
    value: 140,
};

/// The service's pages' charts, narrow enough to read on a phone.
pub(crate) const PAGE_CHART: ChartSize = ChartSize {
    label: 156,
    bar: 150,
    value: 110,
};

/// `label` cut to what fits in `width` pixels of 12 px text, with an ellipsis when cut.
fn fitted(label: &str, width: usize) -> String {
    // CJK characters are 12 px wide; others about half that.
    let room = width.saturating_sub(6) * 2 / 12;
    let mut used = 0;
    let mut out = String::new();
    for c in label.chars() {
        used += if c.is_ascii() { 1 } else { 2 };
        if used > room.saturating_sub(2) {
            out.push('…');
            return out;
        }
        out.push(c);
    }
    out
}

/// A horizontal bar chart: one labelled bar per `(label, value, shown value)`.
pub(crate) fn bar_chart(title: &str, bars: &[(String, f64, String)], size: ChartSize) -> String {
    const ROW: usize = 22;
    let ChartSize { label, bar, value } = size;
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max);
    let height = ROW * bars.len().max(1) + 10;
    let width = label + bar + value;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" \
         width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" aria-label=\"{}\">",
        escape(title),
        escape(title)
    );
    if bars.is_empty() {
        svg.push_str("<text x=\"0\" y=\"16\">无数据</text>");
    }
    for (i, (name, v, shown)) in bars.iter().enumerate() {
        let y = i * ROW + 4;
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let w = if max > 0.0 {
            ((v / max) * bar as f64).round() as usize
        } else {
            0
        };
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\"><title>{}</title>{}</text>\
             <rect x=\"{label}\" y=\"{y}\" width=\"{w}\" height=\"{}\" fill=\"#2f6fb0\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            label - 6,
            y + 14,
            escape(name),
            escape(&fitted(name, label)),
            ROW - 6,
            label + w + 6,
            y + 14,
            escape(shown)
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

fn count_bars<'a>(
    items: impl IntoIterator<Item = (&'a String, &'a u64)>,
) -> Vec<(String, f64, String)> {
    #[allow(clippy::cast_precision_loss)]
    items
        .into_iter()
        .map(|(k, v)| (k.clone(), *v as f64, v.to_string()))
        .collect()
}

pub fn render(summary: &Summary, satisfaction: &Satisfaction, warnings: &[Warning]) -> String {
    let mut html = String::new();
    html.push_str(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>涉企行政检查报告</title><style>\
         body{font-family:system-ui,\"PingFang SC\",\"Microsoft YaHei\",\"Noto Sans CJK SC\",sans-serif;margin:2em;color:#222}\
         table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}\
         th:first-child,td:first-child{text-align:left}figure{margin:1.5em 0}figcaption{font-weight:bold;margin-bottom:.5em}\
         svg text{font-size:12px}</style></head><body>\n",
    );
    let _ = write!(
        html,
        "<h1>涉企行政检查报告</h1>\n<p>数据截至 {}，日志位置 {}，共 {} 条事件。{}</p>\n",
        escape(&summary.as_of),
        summary.log_position,
        summary.checked.events,
        if summary.signatures_checked {
            format!(
                "每条事件的哈希、哈希链与签名均已校验（公证签名 {} 个，执法人员签名 {} 个）。",
                summary.checked.notary_signatures, summary.checked.officer_signatures
            )
        } else {
            "已校验每条事件的哈希与哈希链（未校验签名）。".to_string()
        }
    );
    let _ = write!(
        html,
        "<h2>概况</h2>\n<table><tr><th>项目</th><th>数量</th></tr>\
         <tr><td>检查（含非检查类入企）</td><td>{}</td></tr>\
         <tr><td>预警</td><td>{}</td></tr></table>\n",
        summary.inspections, summary.warnings
    );

    html.push_str("<h2>年度检查频次</h2>\n<table><tr><th>年份</th><th>检查次数</th><th>受检企业数</th><th>企业年均受检次数</th><th>同比</th></tr>");
    for y in &summary.years {
        let change = y
            .change
            .map(|c| format!("{:+.1}%", c * 100.0))
            .unwrap_or_else(|| "—".into());
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{change}</td></tr>",
            y.year, y.inspections, y.enterprises, y.per_enterprise
        );
    }
    html.push_str("</table>\n");

    html.push_str(&bar_chart(
        "每月检查次数",
        &count_bars(&summary.inspections_by_month),
        REPORT_CHART,
    ));
    let by_rule: Vec<(String, f64, String)> = count_bars(&summary.warnings_by_rule)
        .into_iter()
        .map(|(code, v, shown)| {
            let title = Rule::ALL
                .iter()
                .find(|r| r.code() == code)
                .map_or(code.clone(), |r| r.title().to_string());
            (title, v, shown)
        })
        .collect();
    html.push_str(&bar_chart("各类预警数量", &by_rule, REPORT_CHART));
    let agencies = satisfaction.totals(Dimension::Agency);
    let names: std::collections::BTreeMap<&str, &str> = agencies
        .iter()
        .map(|(code, name, _)| (code.as_str(), name.as_str()))
        .collect();
    // The agencies with the most warnings, by name where known.
    let mut by_agency: Vec<(&String, &u64)> = summary.warnings_by_agency.iter().collect();
    by_agency.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    by_agency.truncate(TOP_AGENCIES);
    let by_agency: Vec<(String, f64, String)> = count_bars(by_agency)
        .into_iter()
        .map(|(code, v, shown)| {
            let label = names
                .get(code.as_str())
                .map_or(code.clone(), |n| n.to_string());
            (label, v, shown)
        })
        .collect();
    html.push_str(&bar_chart(
        &format!("预警最多的执法主体（前 {TOP_AGENCIES} 个）"),
        &by_agency,
        REPORT_CHART,
    ));

    // The least satisfying agencies first: what a supervisor looks at.
    let mut rated: Vec<(&String, &String, f64, u64)> = agencies
        .iter()
        .filter_map(|(code, name, t)| t.satisfaction_rate().map(|r| (code, name, r, t.ratings)))
        .collect();
    rated.sort_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(b.0)));
    rated.truncate(TOP_AGENCIES);
    let sat_bars: Vec<(String, f64, String)> = rated
        .into_iter()
        .map(|(_, name, r, ratings)| {
            (
                name.clone(),
                r,
                format!("{:.1}%（{ratings} 条评价）", r * 100.0),
            )
        })
        .collect();
    html.push_str(&bar_chart(
        &format!("满意率最低的执法主体（前 {TOP_AGENCIES} 个）"),
        &sat_bars,
        REPORT_CHART,
    ));

    html.push_str("<h2>满意度（按执法主体）</h2>\n<table><tr><th>执法主体</th><th>扫码检查</th><th>评价数</th><th>平均分</th><th>满意率</th><th>评价率</th></tr>");
    let pct = |x: Option<f64>| {
        x.map(|x| format!("{:.1}%", x * 100.0))
            .unwrap_or_else(|| "—".into())
    };
    for (code, name, t) in &agencies {
        let _ = write!(
            html,
            "<tr><td>{}（{}）</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            escape(code),
            t.scanned,
            t.ratings,
            t.mean()
                .map(|m| format!("{m:.2}"))
                .unwrap_or_else(|| "—".into()),
            pct(t.satisfaction_rate()),
            pct(t.response_rate())
        );
    }
    html.push_str("</table>\n");

    html.push_str("<h2>评价最低的检查</h2>\n<table><tr><th>日期</th><th>执法主体</th><th>企业</th><th>评分</th><th>意见</th></tr>");
    for w in satisfaction.worst(20) {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&w.date),
            escape(&w.agency_name),
            escape(&w.enterprise_name),
            w.level,
            escape(&w.comment)
        );
    }
    html.push_str("</table>\n");

    html.push_str("<h2>最近的预警</h2>\n<table><tr><th>时间</th><th>规则</th><th>说明</th></tr>");
    for w in warnings.iter().rev().take(50) {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&saoma_projections::history::time(w.at)),
            escape(w.rule.title()),
            escape(&w.detail)
        );
    }
    html.push_str("</table>\n</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn a_bar_chart_scales_bars_to_the_largest_value() {
        let svg = bar_chart(
            "t",
            &[("a".into(), 1.0, "1".into()), ("b".into(), 2.0, "2".into())],
            REPORT_CHART,
        );
        assert!(svg.contains("width=\"230\""), "{svg}");
        assert!(svg.contains("width=\"460\""), "{svg}");
        assert!(!svg.contains("http://") || svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    }

    #[test]
    fn long_labels_are_cut_to_their_column_and_kept_whole_in_a_tooltip() {
        assert_eq!(fitted("株洲市交通运输局", 156), "株洲市交通运输局");
        assert_eq!(
            fitted("株洲市芦淞区人力资源和社会保障局", 156),
            "株洲市芦淞区人力资源和…"
        );
        assert_eq!(fitted("2026-12", 156), "2026-12");
        let svg = bar_chart(
            "t",
            &[("株洲市芦淞区人力资源和社会保障局".into(), 1.0, "1".into())],
            PAGE_CHART,
        );
        assert!(
            svg.contains("<title>株洲市芦淞区人力资源和社会保障局</title>株洲市芦淞区人力资源和…"),
            "{svg}"
        );
    }
}
