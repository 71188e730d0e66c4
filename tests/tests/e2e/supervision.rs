//! The supervision dashboard over real HTTP, on a log the simulator wrote (rule-breaking
//! included) and the live views follow: a provincial supervisor sees exactly the warnings of
//! their province, filters them, follows one to its evidence and verifies an event's inclusion
//! proof; another province's warnings, inspections and region filter are out of reach; the
//! satisfaction figures count their province only; a changed event fails its proof; an
//! officer cannot open the dashboard.

use crate::pages::Page;
use crate::signed_in::{get, officer_account, put_account, session, spawn, PASSWORD};
use crate::support::*;
use crate::views::{caught_up, simulate, tamper, urlencode};
use serde_json::{json, Value};

/// The province (two digits) of a region code.
pub(crate) fn province(region: &str) -> &str {
    &region[..2]
}

/// The warning ids a list page links to, in order.
pub(crate) fn warning_links(page: &Page) -> Vec<String> {
    page.body
        .split("href=\"/supervision/warnings/")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].replace("%3A", ":"))
        .collect()
}

/// The log positions a page links to for their proofs.
fn proof_links(page: &Page) -> Vec<u64> {
    page.body
        .split("href=\"/supervision/proof?position=")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap())
        .collect()
}

/// Every warning the live views hold, latest first (the dashboard's order).
async fn all_warnings(app: &TestApp) -> Vec<Value> {
    let page = app.client.get("/api/v1/warnings?limit=500").await.unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body["next_offset"].is_null(), "more than one page");
    page.body["items"].as_array().unwrap().clone()
}

/// The simulated log, followed by the views: its warnings.
pub(crate) async fn simulated(app: &TestApp) -> Vec<Value> {
    simulate(app, 200, 11).await;
    caught_up(app, app.event_count().await).await;
    all_warnings(app).await
}

/// Opens a supervisor account of `region`.
pub(crate) async fn supervisor_account(app: &TestApp, login: &str, region: &str) {
    let reply = put_account(
        app,
        json!({"login": login, "role": "supervisor", "region": region, "password": PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
}

pub(crate) fn inspection_of(warning: &Value) -> Option<String> {
    warning["evidence"]
        .as_str()
        .and_then(|e| serde_json::from_str::<Vec<String>>(e).ok())?
        .iter()
        .find_map(|e| {
            Some(
                e.strip_prefix("Inspection/")?
                    .split('/')
                    .next()?
                    .to_string(),
            )
        })
}

pub async fn a_supervisor_sees_the_own_province_follows_a_warning_and_verifies_its_proof(
    backend: Backend,
) {
    let web = spawn(backend, |_| {}).await;
    let app = &web.app;
    let warnings = simulated(app).await;
    let ours = province(warnings[0]["region"].as_str().unwrap()).to_string();
    let (own, other): (Vec<&Value>, Vec<&Value>) = warnings
        .iter()
        .partition(|w| w["region"].as_str().unwrap().starts_with(&ours));
    assert!(
        !other.is_empty(),
        "the simulator warned in one province only: {warnings:?}"
    );
    supervisor_account(app, "jiandu.sheng", &format!("{ours}0000")).await;
    let cookie = session(app, "jiandu.sheng").await;

    // The list: exactly the province's warnings, in the views' order, twenty a page.
    let list = get(app, "/supervision", Some(&cookie)).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let expected: Vec<String> = own
        .iter()
        .take(20)
        .map(|w| w["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(warning_links(&list), expected);
    assert_eq!(list.body.contains("下一页"), own.len() > 20);

    // Filtered by the rule of one of them: that rule's only.
    let rule = own[0]["rule"].as_str().unwrap();
    let by_rule = get(
        app,
        &format!("/supervision?rule={rule}&agency=&region=&from=&to="),
        Some(&cookie),
    )
    .await;
    assert_eq!(by_rule.status, 200, "{}", by_rule.body);
    let expected: Vec<String> = own
        .iter()
        .filter(|w| w["rule"] == rule)
        .take(20)
        .map(|w| w["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(warning_links(&by_rule), expected);

    // A period that ends before the log begins holds nothing.
    let before = get(app, "/supervision?to=2000-01-01", Some(&cookie)).await;
    assert_eq!(before.status, 200, "{}", before.body);
    assert!(warning_links(&before).is_empty(), "{}", before.body);

    // One warning with its evidence: the events, each with a link to its proof.
    let chosen = own
        .iter()
        .find(|w| inspection_of(w).is_some())
        .expect("a warning about an inspection");
    let id = chosen["id"].as_str().unwrap();
    let detail = get(
        app,
        &format!("/supervision/warnings/{}", urlencode(id)),
        Some(&cookie),
    )
    .await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert!(
        detail.body.contains(chosen["detail"].as_str().unwrap()),
        "{}",
        detail.body
    );
    let positions = proof_links(&detail);
    assert!(
        !positions.is_empty(),
        "no evidence event linked: {}",
        detail.body
    );
    let inspection = inspection_of(chosen).unwrap();
    assert!(detail
        .body
        .contains(&format!("/supervision/inspections/{inspection}")));

    // The proof of the first evidence event verifies against the signed checkpoint.
    app.client
        .post_json("/api/v1/admin/log/checkpoint", &json!({}))
        .await
        .unwrap();
    let proof = get(
        app,
        &format!("/supervision/proof?position={}", positions[0]),
        Some(&cookie),
    )
    .await;
    assert_eq!(proof.status, 200, "{}", proof.body);
    assert!(proof.body.contains("验证通过"), "{}", proof.body);
    assert!(!proof.body.contains("✗"), "{}", proof.body);

    // The inspection's whole trace, every event linked to its proof.
    let trace = get(
        app,
        &format!("/supervision/inspections/{inspection}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(trace.status, 200, "{}", trace.body);
    let row = app
        .client
        .get(&format!("/api/v1/history/{inspection}"))
        .await
        .unwrap()
        .body;
    assert_eq!(
        proof_links(&trace).len() as u64,
        row["events"].as_u64().unwrap()
    );
    assert!(trace
        .body
        .contains(row["enterprise_name"].as_str().unwrap()));

    // Another province: its warning and inspection are not found, its region is refused.
    let theirs = other
        .iter()
        .find(|w| inspection_of(w).is_some())
        .expect("another province's warning about an inspection");
    let elsewhere = get(
        app,
        &format!(
            "/supervision/warnings/{}",
            urlencode(theirs["id"].as_str().unwrap())
        ),
        Some(&cookie),
    )
    .await;
    assert_eq!(elsewhere.status, 404, "{}", elsewhere.body);
    let their_inspection = inspection_of(theirs).unwrap();
    let elsewhere = get(
        app,
        &format!("/supervision/inspections/{their_inspection}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(elsewhere.status, 404, "{}", elsewhere.body);
    let their_region = theirs["region"].as_str().unwrap();
    for path in [
        format!("/supervision?region={their_region}"),
        format!("/supervision/history?region={their_region}"),
        format!("/supervision/satisfaction?region={their_region}"),
    ] {
        let refused = get(app, &path, Some(&cookie)).await;
        assert_eq!(refused.status, 403, "{path}: {}", refused.body);
        assert!(refused.body.contains("无权查看该地区"), "{path}");
    }
    // An enterprise of theirs has no history here.
    let their_enterprise = theirs["enterprise"].as_str().unwrap();
    if !their_enterprise.is_empty() {
        let none = get(
            app,
            &format!("/supervision/history?enterprise={their_enterprise}"),
            Some(&cookie),
        )
        .await;
        assert_eq!(none.status, 200, "{}", none.body);
        assert!(none.body.contains("没有找到检查记录"), "{}", none.body);
    }

    // Satisfaction: the province's ratings, as the read API counts them per region.
    let by_region = app
        .client
        .get("/api/v1/satisfaction?by=region")
        .await
        .unwrap()
        .body;
    let ratings: u64 = by_region["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["key"].as_str().unwrap().starts_with(&ours))
        .map(|g| g["ratings"].as_u64().unwrap())
        .sum();
    let sat = get(app, "/supervision/satisfaction", Some(&cookie)).await;
    assert_eq!(sat.status, 200, "{}", sat.body);
    assert!(
        sat.body
            .contains(&format!("评价 <strong>{ratings}</strong> 条")),
        "{ratings} ratings expected: {}",
        sat.body
    );
    assert_eq!(sat.body.matches("<svg").count(), 2, "two charts");

    // Bad filters are refused with a page that says why.
    for path in [
        "/supervision?rule=made_up",
        "/supervision?from=2026-13-01",
        "/supervision/history?to=2026-3-1",
        "/supervision?region=63",
        "/supervision/history?agency=a%20b",
        "/supervision/satisfaction?from=2026-1",
    ] {
        let refused = get(app, path, Some(&cookie)).await;
        assert_eq!(refused.status, 400, "{path}: {}", refused.body);
        assert!(refused.body.contains("查询条件无效"), "{path}");
    }

    // A changed event fails its proof, at the step that broke.
    tamper(app.settings.as_ref().unwrap(), positions[0]).await;
    let proof = get(
        app,
        &format!("/supervision/proof?position={}", positions[0]),
        Some(&cookie),
    )
    .await;
    assert!(proof.body.contains("验证未通过"), "{}", proof.body);
    assert!(
        proof
            .body
            .contains("<li class=\"bad\">✗ 事件内容与其哈希一致"),
        "{}",
        proof.body
    );

    // An officer's session does not open the dashboard.
    let officer = row["officers"].as_str().unwrap().split(';').next().unwrap();
    officer_account(app, "zhifa.yi", officer).await;
    let officer_cookie = session(app, "zhifa.yi").await;
    for path in [
        "/supervision",
        "/supervision/proof",
        "/supervision/satisfaction",
    ] {
        let refused = get(app, path, Some(&officer_cookie)).await;
        assert_eq!(refused.status, 403, "{path}: {}", refused.body);
    }
    // And no session goes to sign in.
    let anonymous = get(app, "/supervision", None).await;
    assert_eq!(anonymous.status, 303);
    assert_eq!(anonymous.header("location"), "/login");
}
