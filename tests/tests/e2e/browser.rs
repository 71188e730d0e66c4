//! The enterprise's page in a real headless Chromium on a phone-sized viewport (see
//! `saoma_tests::browser`): an enterprise checks a valid code, rates the visit once by tapping
//! and typing, cannot rate twice, and sees the officer's result; an expired and a forged code
//! get an honest page; every page fits the phone without sideways scrolling and loads nothing
//! from outside the service. An officer signs in and finds an inspection by a fragment of the
//! enterprise's name; a supervisor follows a simulated warning to its evidence and verifies an
//! inclusion proof. Screenshots of every step are saved as test artefacts.

use crate::lifecycle::{assert_trace_verifies, issue, pair};
use crate::pages::{forge, issued, service_visit};
use crate::signed_in::{officer_account, spawn, PASSWORD};
use crate::supervision::{inspection_of, province, simulated, supervisor_account};
use crate::support::*;
use fantoccini::Locator;
use saoma_domain::inspection::{
    InspectionKind, OfficerCommand, Outcome, SupplementReason, Trigger, STANDARD_SUPPLEMENT_REASON,
};
use saoma_tests::browser::PHONE;
use saoma_tests::Browser;
use uuid::Uuid;

/// The enterprise's phone: a headless Chromium, or `None` when it is not installed (and not
/// required; see `Browser::start_or_skip`).
async fn phone(test: &str) -> Option<Browser> {
    Browser::start_or_skip(test).await
}

async fn submit(app: &TestApp, device: &saoma_services::client::Device, cmd: OfficerCommand) {
    let reply = app.client.submit(&signed(device, &cmd)).await.unwrap();
    assert_eq!(reply.status, 201, "{cmd:?}: {:?}", reply.body);
}

async fn trace_types(app: &TestApp, id: Uuid) -> Vec<String> {
    types(&assert_trace_verifies(app, id).await)
}

/// The text of the `dd` after the `dt` labelled `label` in the inspection's details.
async fn detail(browser: &Browser, label: &str) -> String {
    let xpath = format!("//dt[normalize-space(.)='{label}']/following-sibling::dd[1]");
    browser
        .client()
        .find(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("no detail {label:?}: {e}"))
        .text()
        .await
        .unwrap()
}

fn assert_has(text: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(text.contains(w), "missing {w:?} in the page:\n{text}");
    }
}

fn assert_lacks(text: &str, unwanted: &[&str]) {
    for u in unwanted {
        assert!(!text.contains(u), "{u:?} shown in the page:\n{text}");
    }
}

/// The checks every page must pass on the phone: it is laid out for the phone's width (the
/// viewport tag works) with no sideways scrolling, it loaded nothing but the service's own
/// document and stylesheet, the stylesheet applied (the CSP let it through), and the console
/// reports no problem other than the document's own error status.
async fn assert_fits_the_phone(browser: &Browser, app: &TestApp) {
    let layout = browser.layout().await.unwrap();
    assert_eq!(
        layout.inner_width,
        u64::from(PHONE.0),
        "the page is not laid out at the phone's width: {layout:?}"
    );
    assert!(
        layout.scroll_width <= layout.inner_width,
        "the page scrolls sideways on a phone: {layout:?}"
    );
    let urls = browser.loaded_urls().await.unwrap();
    let origin = format!("{}/", app.base);
    assert!(
        urls.iter().all(|u| u.starts_with(&origin)),
        "a request outside the service: {urls:?}"
    );
    assert!(
        urls.iter().any(|u| u.ends_with("/static/saoma.css")),
        "the stylesheet was not loaded: {urls:?}"
    );
    // The stylesheet's red title bar, so it was not blocked (e.g. by the page's own CSP).
    let bar = browser
        .find("header.top")
        .await
        .unwrap()
        .css_value("background-color")
        .await
        .unwrap();
    assert_eq!(bar, "rgba(183, 28, 28, 1)", "the stylesheet did not apply");
    let status = browser.status().await.unwrap();
    let problems: Vec<_> = browser
        .console()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.level == "SEVERE" || e.level == "WARNING")
        // The browser reports a page served with an error status, as it should be served.
        .filter(|e| !e.message.contains(&format!("status of {status}")))
        .collect();
    assert!(problems.is_empty(), "console: {problems:?}");
}

pub async fn an_enterprise_on_a_phone_checks_the_code_rates_once_and_sees_the_result(app: TestApp) {
    let Some(mut phone) = phone("enterprise_rates_once").await else {
        return;
    };
    let w = populate(&app).await;
    let mut cmd = issue(
        &w,
        InspectionKind::Unplanned {
            trigger: Trigger::Complaint,
            basis: "12315投诉：销售过期食品，投诉人电话13912345678".into(),
        },
        pair(&w),
    );
    cmd.joint_partners = vec![w.safety.clone()];
    let id = cmd.inspection_id;
    let (token, _) = issued(&app, &w, cmd).await;
    let url = format!("{}/c/{token}", app.base);
    // 亮码: the officer shows the code; the enterprise scans it with the phone.
    submit(&app, &w.li, OfficerCommand::ShowCode { inspection_id: id }).await;

    phone.open(&url).await.unwrap();
    assert_eq!(phone.status().await.unwrap(), 200);
    assert_eq!(
        phone.client().title().await.unwrap(),
        "检查码核验 · 扫码入企"
    );
    assert_eq!(phone.text(".banner h1").await.unwrap(), "检查码真实有效");
    assert_eq!(detail(&phone, "检查主体").await, "青海省市场监督管理局");
    assert_has(
        &detail(&phone, "检查对象").await,
        &["西宁华创食品有限公司", "统一社会信用代码 91630100MA7F3XKQ1"],
    );
    assert_eq!(
        detail(&phone, "检查类型").await,
        "非计划检查：投诉：12315投诉：销售过期食品，投诉人电话139****5678"
    );
    let validity = detail(&phone, "检查码状态").await;
    assert!(validity.starts_with("有效期至 "), "{validity}");
    let validity_class = phone
        .find("dd.state")
        .await
        .unwrap()
        .attr("class")
        .await
        .unwrap();
    assert_eq!(validity_class.as_deref(), Some("state ok"));
    assert_eq!(
        detail(&phone, "联合检查").await,
        "是，联合单位：西宁市应急管理局"
    );
    assert_eq!(detail(&phone, "两码互核").await, "未完成");

    let officers = phone
        .client()
        .find_all(Locator::Css("ul.plain li"))
        .await
        .unwrap();
    let mut lines = Vec::new();
    for o in &officers {
        lines.push(o.text().await.unwrap().replace('\n', " "));
    }
    assert_eq!(
        lines,
        ["王海 执法证号 ZF630100001", "李娜 执法证号 ZF630100002"]
    );
    assert_eq!(
        phone.text("ol li").await.unwrap().replace('\n', " "),
        "食品经营许可事项检查 依据：《中华人民共和国食品安全法》第一百一十条"
    );
    let rights = phone.text(".rights").await.unwrap();
    assert_has(
        &rights,
        &["您的权利", "陈述权、申辩权", "救济权", "您有权拒绝检查"],
    );
    let text = phone.page_text().await.unwrap();
    assert_has(&text, &["执法人员尚未反馈检查结果", "评价本次检查"]);
    // Neither the officers' phone numbers (in the registry) nor the complainant's, anywhere.
    let source = phone.client().source().await.unwrap();
    assert_lacks(&source, &["13800138000", "13912345678"]);
    assert_eq!(phone.count("form").await.unwrap(), 1);
    assert_eq!(
        phone.count("script").await.unwrap(),
        0,
        "the page needs no script"
    );
    assert_fits_the_phone(&phone, &app).await;
    phone.screenshot("scanned").await.unwrap();
    assert_eq!(
        trace_types(&app, id).await,
        ["CodeIssued", "CodeShown", "CodeScanned"]
    );

    // The enterprise keeps a second tab with the form open (e.g. a colleague's).
    let first_tab = phone.client().window().await.unwrap();
    let second_tab = phone.client().new_window(true).await.unwrap().handle;
    phone
        .client()
        .switch_to_window(second_tab.clone())
        .await
        .unwrap();
    phone.open(&url).await.unwrap();
    assert_eq!(phone.text(".banner h1").await.unwrap(), "检查码真实");
    assert_has(
        &phone.text(".banner").await.unwrap(),
        &["您已扫码核验过此检查码"],
    );
    phone.client().switch_to_window(first_tab).await.unwrap();

    // The visit: the officer scans the enterprise's code (两码互核) and reports the result.
    submit(
        &app,
        &w.wang,
        OfficerCommand::ScanEnterpriseCode {
            inspection_id: id,
            enterprise: w.enterprise.clone(),
        },
    )
    .await;
    submit(
        &app,
        &w.wang,
        OfficerCommand::ReportResult {
            inspection_id: id,
            outcome: Outcome::ProblemsFound {
                feedback: "后厨消防通道堆放杂物，已责令当场整改".into(),
            },
        },
    )
    .await;

    phone.client().refresh().await.unwrap();
    assert_eq!(detail(&phone, "两码互核").await, "已完成");
    let result = phone
        .client()
        .find(Locator::XPath("//section[h2='检查结果']"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_has(
        &result,
        &[
            "发现问题",
            "后厨消防通道堆放杂物，已责令当场整改",
            "执法人员反馈于 ",
        ],
    );
    phone.screenshot("result-reported").await.unwrap();

    // Rating: tap 满意 (level 4) by its label, type a comment, submit.
    phone
        .click("#rating label.choice:nth-of-type(2)")
        .await
        .unwrap();
    let chosen = phone
        .find("input[name=level]:checked")
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap();
    assert_eq!(chosen.as_deref(), Some("4"), "tapping 满意 chose level 4");
    assert_eq!(
        phone
            .text("#rating label.choice:nth-of-type(2)")
            .await
            .unwrap(),
        "满意"
    );
    let comment = "检查规范，态度很好，整改要求讲得清楚";
    phone
        .type_into("textarea[name=comment]", comment)
        .await
        .unwrap();
    let typed = phone
        .find("textarea[name=comment]")
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(typed.as_deref(), Some(comment));
    assert_fits_the_phone(&phone, &app).await;
    phone.screenshot("rating-filled").await.unwrap();
    phone.click("#rating button[type=submit]").await.unwrap();

    let done = phone.wait_for("#rating .done").await.unwrap();
    assert_eq!(done.text().await.unwrap(), "已提交");
    let current = phone.client().current_url().await.unwrap();
    assert_eq!(current.path(), format!("/c/{token}"), "redirected back");
    assert_eq!(phone.status().await.unwrap(), 200);
    assert_has(
        &phone.text("#rating").await.unwrap(),
        &["您的评价：4分（满意）", comment, "每次检查只能评价一次"],
    );
    assert_eq!(phone.count("form").await.unwrap(), 0, "the form is gone");
    assert_has(
        &phone.page_text().await.unwrap(),
        &["发现问题", "后厨消防通道堆放杂物，已责令当场整改"],
    );
    assert_fits_the_phone(&phone, &app).await;
    phone.screenshot("rated").await.unwrap();
    let events = app.event_count().await;

    // The second tab still shows the form: its rating is refused, and says why.
    phone.client().switch_to_window(second_tab).await.unwrap();
    phone
        .click("#rating label.choice:nth-of-type(5)")
        .await
        .unwrap();
    phone.click("#rating button[type=submit]").await.unwrap();
    let refused = phone.wait_for(".banner.bad h1").await.unwrap();
    assert_eq!(refused.text().await.unwrap(), "评价未提交");
    assert_eq!(phone.status().await.unwrap(), 409);
    assert_has(
        &phone.text(".banner").await.unwrap(),
        &["已评价，不能重复评价"],
    );
    assert_fits_the_phone(&phone, &app).await;
    phone.screenshot("second-rating-refused").await.unwrap();
    phone
        .client()
        .find(Locator::LinkText("返回检查码页面"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    phone.wait_for("#rating .done").await.unwrap();
    assert_has(
        &phone.text("#rating").await.unwrap(),
        &["已提交", "您的评价：4分（满意）"],
    );

    assert_eq!(
        app.event_count().await,
        events,
        "the refusal changed nothing"
    );
    let view = app
        .public
        .get(&format!("/api/v1/codes/{token}"))
        .await
        .unwrap();
    assert_eq!(view.body["rating"]["level"], 4);
    assert_eq!(view.body["rating"]["comment"], comment);
    assert_eq!(
        trace_types(&app, id).await,
        [
            "CodeIssued",
            "CodeShown",
            "CodeScanned",
            "CodeScanned",
            "ResultReported",
            "RatingGiven"
        ]
    );
    phone.close().await.unwrap();
}

pub async fn an_expired_code_shows_an_honest_page_on_the_phone(app: TestApp) {
    let Some(mut phone) = phone("expired_code").await else {
        return;
    };
    let w = populate(&app).await;
    let mut late = issue(
        &w,
        InspectionKind::Supplementary {
            reason: SupplementReason::parse(STANDARD_SUPPLEMENT_REASON).unwrap(),
        },
        pair(&w),
    );
    late.date = today().pred_opt().unwrap();
    let id = late.inspection_id;
    let (token, _) = issued(&app, &w, late).await;

    phone
        .open(&format!("{}/c/{token}", app.base))
        .await
        .unwrap();
    assert_eq!(phone.status().await.unwrap(), 410);
    assert_eq!(phone.text(".banner h1").await.unwrap(), "检查码已过期");
    assert_has(
        &phone.text(".banner").await.unwrap(),
        &[
            "此检查码已超过有效期，不能凭此码入企检查，您有权拒绝检查",
            "本次扫码已记录在案",
        ],
    );
    let validity = detail(&phone, "检查码状态").await;
    assert!(validity.starts_with("已过期（有效期至 "), "{validity}");
    let class = phone
        .find("dd.state")
        .await
        .unwrap()
        .attr("class")
        .await
        .unwrap();
    assert_eq!(class.as_deref(), Some("state bad"));
    assert_has(&detail(&phone, "检查对象").await, &["西宁华创食品有限公司"]);
    assert_has(
        &phone.text("#rating").await.unwrap(),
        &["扫码核验通过后，可在检查结束后对本次检查进行评价"],
    );
    assert_eq!(
        phone.count("form").await.unwrap(),
        0,
        "no rating without a scan"
    );
    assert_has(
        &phone.text(".rights").await.unwrap(),
        &["陈述权、申辩权", "救济权", "您有权拒绝检查"],
    );
    assert_fits_the_phone(&phone, &app).await;
    phone.screenshot("expired").await.unwrap();
    assert_eq!(trace_types(&app, id).await, ["CodeIssued", "ScanRefused"]);
    phone.close().await.unwrap();
}

pub async fn a_forged_or_unknown_code_shows_an_honest_page_on_the_phone(app: TestApp) {
    let Some(mut phone) = phone("forged_code").await else {
        return;
    };
    let w = populate(&app).await;
    let cmd = service_visit(&w);
    let id = cmd.inspection_id;
    let (token, _) = issued(&app, &w, cmd).await;

    phone
        .open(&format!("{}/c/{}", app.base, forge(&token)))
        .await
        .unwrap();
    assert_eq!(phone.status().await.unwrap(), 403);
    assert_eq!(
        phone.client().title().await.unwrap(),
        "检查码核验未通过 · 扫码入企"
    );
    assert_eq!(phone.text(".banner h1").await.unwrap(), "检查码核验未通过");
    assert_has(
        &phone.text(".banner").await.unwrap(),
        &[
            "此检查码未通过真实性核验，可能是伪造或被篡改的",
            "您有权拒绝检查",
            "本次扫码已记录在案",
        ],
    );
    let text = phone.page_text().await.unwrap();
    assert_has(&text, &["陈述权、申辩权", "救济权"]);
    // A forged token learns nothing about the inspection it names.
    assert_lacks(
        &text,
        &[
            "西宁华创食品有限公司",
            "王海",
            "李娜",
            "青海省市场监督管理局",
        ],
    );
    assert_eq!(phone.count("form").await.unwrap(), 0);
    assert_fits_the_phone(&phone, &app).await;
    phone.screenshot("forged").await.unwrap();
    assert_eq!(trace_types(&app, id).await, ["CodeIssued", "ScanRefused"]);

    // A URL mangled beyond a token (a bad photo of the QR code, a truncated link).
    let before = app.event_count().await;
    phone
        .open(&format!("{}/c/{}", app.base, &token[..20]))
        .await
        .unwrap();
    assert_eq!(phone.status().await.unwrap(), 404);
    assert_eq!(phone.text(".banner h1").await.unwrap(), "检查码无效");
    assert_has(
        &phone.text(".banner").await.unwrap(),
        &["未找到与此二维码对应的检查码", "您有权拒绝检查"],
    );
    assert_fits_the_phone(&phone, &app).await;
    phone.screenshot("unknown").await.unwrap();
    assert_eq!(app.event_count().await, before);
    phone.close().await.unwrap();
}

pub async fn long_unbroken_text_does_not_widen_the_page_on_a_phone(app: TestApp) {
    let Some(mut phone) = phone("long_text").await else {
        return;
    };
    let w = populate(&app).await;
    // Free text as officers and enterprises really type it: links, numbers and Latin runs
    // with no place to break a line.
    let link = format!(
        "https://www.12315.cn/complaint/detail?id={}",
        "Qx".repeat(30)
    );
    let cmd = issue(
        &w,
        InspectionKind::Unplanned {
            trigger: Trigger::Complaint,
            basis: format!("投诉材料见{link}"),
        },
        pair(&w),
    );
    let id = cmd.inspection_id;
    let (token, _) = issued(&app, &w, cmd).await;
    let url = format!("{}/c/{token}", app.base);
    phone.open(&url).await.unwrap();
    assert_has(&detail(&phone, "检查类型").await, &[&link]);
    assert_fits_the_phone(&phone, &app).await;
    phone.screenshot("long-basis").await.unwrap();

    submit(
        &app,
        &w.wang,
        OfficerCommand::ReportResult {
            inspection_id: id,
            outcome: Outcome::ProblemsFound {
                feedback: format!("整改通知书编号{}", "QHSCJ2026".repeat(12)),
            },
        },
    )
    .await;
    phone.client().refresh().await.unwrap();
    phone.click("#rating label.choice").await.unwrap();
    let comment = format!("详见{}", "ABCDEFGHIJ".repeat(15));
    phone
        .type_into("textarea[name=comment]", &comment)
        .await
        .unwrap();
    phone.click("#rating button[type=submit]").await.unwrap();
    phone.wait_for("#rating .done").await.unwrap();
    assert_has(
        &phone.text("#rating").await.unwrap(),
        &["您的评价：5分（非常满意）", &comment],
    );
    assert_fits_the_phone(&phone, &app).await;
    phone.screenshot("long-result-and-comment").await.unwrap();

    // The enterprise's own code page, and a refusal page whose way back is shown.
    phone
        .open(&format!("{}/e/{}", app.base, w.enterprise.as_str()))
        .await
        .unwrap();
    assert_eq!(phone.text(".banner h1").await.unwrap(), "企业码");
    assert_fits_the_phone(&phone, &app).await;
    phone.screenshot("enterprise-code").await.unwrap();
    phone.close().await.unwrap();
}

/// Signs in through the form, as a person does.
async fn sign_in_as(browser: &Browser, app: &TestApp, login: &str) {
    browser.open(&format!("{}/login", app.base)).await.unwrap();
    browser.type_into("input[name=login]", login).await.unwrap();
    browser
        .type_into("input[name=password]", PASSWORD)
        .await
        .unwrap();
    browser.follow("button[type=submit]").await.unwrap();
    // Every signed-in page says who is signed in.
    let who = browser.wait_for("nav.session span").await.unwrap();
    assert_eq!(who.text().await.unwrap(), format!("已登录：{login}"));
}

/// A provincial supervisor signs in, sees a warning the simulator's rule-breaking produced,
/// follows it to its evidence and verifies an evidence event's inclusion proof; then looks at
/// the satisfaction charts.
pub async fn a_supervisor_follows_a_simulated_warning_to_its_evidence_and_proof(backend: Backend) {
    let Some(mut browser) = phone("supervisor_follows_a_warning").await else {
        return;
    };
    let web = spawn(backend, |_| {}).await;
    let app = &web.app;
    let warnings = simulated(app).await;
    let first = warnings
        .iter()
        .find(|w| inspection_of(w).is_some())
        .expect("a warning about an inspection");
    let ours = province(first["region"].as_str().unwrap());
    let own: Vec<_> = warnings
        .iter()
        .filter(|w| w["region"].as_str().unwrap().starts_with(ours))
        .collect();
    supervisor_account(app, "jiandu.sheng", &format!("{ours}0000")).await;
    app.client
        .post_json("/api/v1/admin/log/checkpoint", &serde_json::json!({}))
        .await
        .unwrap();

    sign_in_as(&browser, app, "jiandu.sheng").await;
    assert_eq!(browser.client().title().await.unwrap(), "预警 · 扫码入企");
    assert_eq!(
        browser.count("li.card.warning").await.unwrap(),
        own.len().min(20)
    );
    assert_has(
        &browser.text("li.card.warning").await.unwrap(),
        &[own[0]["detail"].as_str().unwrap()],
    );
    assert_fits_the_phone(&browser, app).await;
    browser.screenshot("warnings").await.unwrap();

    // Filter by the chosen warning's rule, with the form (folded until tapped).
    let rule = first["rule"].as_str().unwrap();
    browser.click("details.filters summary").await.unwrap();
    browser
        .click(&format!("select[name=rule] option[value={rule}]"))
        .await
        .unwrap();
    browser
        .follow("details.filters button[type=submit]")
        .await
        .unwrap();
    let url = browser.client().current_url().await.unwrap();
    assert!(url.as_str().contains(&format!("rule={rule}")), "{url}");
    let shown = browser.count("li.card.warning").await.unwrap();
    let of_rule = own.iter().filter(|w| w["rule"] == rule).count();
    assert_eq!(shown, of_rule.min(20));

    // Follow the chosen warning to its evidence.
    let id = first["id"].as_str().unwrap();
    browser
        .open(&format!(
            "{}/supervision/warnings/{}",
            app.base,
            crate::views::urlencode(id)
        ))
        .await
        .unwrap();
    assert_eq!(browser.text("main h1").await.unwrap(), "预警详情");
    assert_has(
        &browser.page_text().await.unwrap(),
        &[first["detail"].as_str().unwrap(), "查看此检查的全程记录"],
    );
    assert_fits_the_phone(&browser, app).await;
    browser.screenshot("warning-evidence").await.unwrap();

    // An evidence event's inclusion proof, checked against the signed checkpoint.
    browser
        .follow("ol.trace a[href^='/supervision/proof']")
        .await
        .unwrap();
    assert_eq!(browser.text("section.banner h1").await.unwrap(), "验证通过");
    assert_eq!(browser.count("ol.steps li.ok").await.unwrap(), 4);
    assert_fits_the_phone(&browser, app).await;
    browser.screenshot("inclusion-proof").await.unwrap();

    // The inspection's whole trace.
    let inspection = inspection_of(first).unwrap();
    browser
        .open(&format!(
            "{}/supervision/inspections/{inspection}",
            app.base
        ))
        .await
        .unwrap();
    assert_eq!(browser.status().await.unwrap(), 200);
    assert!(browser.count("ol.trace li").await.unwrap() >= 1);
    assert_fits_the_phone(&browser, app).await;

    // The satisfaction charts, drawn on the server, fit the screen.
    browser
        .open(&format!("{}/supervision/satisfaction", app.base))
        .await
        .unwrap();
    assert_eq!(browser.count("section.chart svg").await.unwrap(), 2);
    assert_fits_the_phone(&browser, app).await;
    browser.screenshot("satisfaction").await.unwrap();
    browser.close().await.unwrap();
}

/// An officer signs in and finds an own inspection by a fragment of the enterprise's name,
/// then opens it.
pub async fn an_officer_signs_in_and_finds_an_inspection_by_a_name_fragment(backend: Backend) {
    let Some(mut browser) = phone("officer_finds_an_inspection").await else {
        return;
    };
    let web = spawn(backend, |_| {}).await;
    let app = &web.app;
    simulated(app).await;
    let rows = app
        .client
        .get("/api/v1/history?limit=50")
        .await
        .unwrap()
        .body;
    let row = rows["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["enterprise_name"].as_str().unwrap().chars().count() > 4)
        .expect("an inspection")
        .clone();
    let officer = row["officers"].as_str().unwrap().split(';').next().unwrap();
    officer_account(app, "zhifa.yi", officer).await;
    let name = row["enterprise_name"].as_str().unwrap();
    let fragment: String = name.chars().skip(2).take(3).collect();

    sign_in_as(&browser, app, "zhifa.yi").await;
    assert_eq!(
        browser.client().title().await.unwrap(),
        "我的检查 · 扫码入企"
    );
    browser.type_into("input[name=q]", &fragment).await.unwrap();
    browser
        .follow("form.search button[type=submit]")
        .await
        .unwrap();
    let cards = browser.page_text().await.unwrap();
    assert_has(&cards, &[name]);
    assert_fits_the_phone(&browser, app).await;
    browser.screenshot("search").await.unwrap();

    browser
        .follow(&format!(
            "a[href='/officer/inspections/{}']",
            row["inspection_id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert_eq!(browser.text("main h1").await.unwrap(), name);
    assert_has(
        &browser.page_text().await.unwrap(),
        &["全程记录", "企业评价"],
    );
    assert_fits_the_phone(&browser, app).await;
    browser.screenshot("inspection").await.unwrap();
    browser.close().await.unwrap();
}
