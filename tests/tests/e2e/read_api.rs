//! The supervision bureau's read API over the live views, against what the test itself
//! submitted: each history filter (officer, agency, region) and each kind of fuzzy search
//! (credit code, certificate number, officer name, item) answers exactly the inspections it
//! should; an officer's unexpired codes leave out revoked and expired ones; the worst-rated
//! visits come per agency, officer, region and month, worst first.

use crate::lifecycle::issue;
use crate::support::*;
use crate::views::{caught_up, urlencode};
use chrono::{Duration, NaiveDate};
use ed25519_dalek::SigningKey;
use saoma_domain::ids::{AgencyCode, BadgeNo, CreditCode, ItemCode, OfficerRef, RegionCode};
use saoma_domain::inspection::{
    InspectionKind, IssueCode, OfficerCommand, SupplementReason, Trigger, VisitPurpose,
    STANDARD_SUPPLEMENT_REASON,
};
use saoma_domain::registry::{
    Agency, AgencyLevel, CreditGrade, EnforcementDomain, Enterprise, EnterpriseStatus, Item,
    OfficerProfile, RegistryCommand,
};
use saoma_services::client::Device;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// What [`populate`] registers, plus a police agency with a police officer (whose key is
/// 警 + badge number) and an enterprise in another region (海东, 632100).
struct Population {
    w: World,
    police: AgencyCode,
    fire_item: ItemCode,
    haidong: CreditCode,
    ma: Device,
}

impl Population {
    /// The officers the tests send: Wang and Li, Zhao of the other agency, Ma of the police.
    fn officers(&self) -> (OfficerRef, OfficerRef, OfficerRef, OfficerRef) {
        let w = &self.w;
        (
            w.wang.officer.clone(),
            w.li.officer.clone(),
            w.zhao.officer.clone(),
            self.ma.officer.clone(),
        )
    }
}

const HAIDONG: &str = "632100";
const MA_KEY: &str = "警630123";

async fn populate_more(app: &TestApp) -> Population {
    let w = populate(app).await;
    let police = AgencyCode::parse("HD-GAJ").unwrap();
    let fire_item = ItemCode::parse("GA-XF-001").unwrap();
    let haidong = CreditCode::with_check_digit("91632100MA7H5Y2B3").unwrap();
    let ma = Device::new(
        OfficerRef::Police {
            badge_no: BadgeNo::parse("630123").unwrap(),
            name: "马明".into(),
        },
        SigningKey::from_bytes(&[21; 32]),
    );
    let region = RegionCode::parse(HAIDONG).unwrap();
    let commands = vec![
        RegistryCommand::RegisterAgency {
            agency: Agency {
                code: police.clone(),
                name: "海东市公安局".into(),
                level: AgencyLevel::City,
                region: region.clone(),
                domain: EnforcementDomain::PublicSafety,
            },
        },
        RegistryCommand::RegisterItem {
            item: Item {
                code: fire_item.clone(),
                name: "消防安全检查".into(),
                legal_basis: "《中华人民共和国消防法》第五十三条".into(),
                domain: EnforcementDomain::FireSafety,
            },
        },
        RegistryCommand::RegisterEnterprise {
            enterprise: Enterprise {
                credit_code: haidong.clone(),
                name: "海东湟水牧业有限公司".into(),
                region,
                credit_grade: CreditGrade::A,
                status: EnterpriseStatus::Active,
            },
        },
        RegistryCommand::RegisterOfficer {
            officer: OfficerProfile {
                credential: ma.officer.clone(),
                name: "马明".into(),
                agency: police.clone(),
                phone: None,
            },
        },
        RegistryCommand::RegisterDeviceKey {
            officer: ma.officer.clone(),
            public_key: ma.public_key(),
        },
    ];
    let reply = app
        .client
        .post_json(
            "/api/v1/admin/import/commands",
            &serde_json::to_value(&commands).unwrap(),
        )
        .await
        .unwrap();
    assert!(reply.ok(), "import failed: {:?}", reply.body);
    assert_eq!(reply.body["refused"], json!([]), "{:?}", reply.body);
    // Keys are valid from their registration time; commands below are signed after it.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    Population {
        w,
        police,
        fire_item,
        haidong,
        ma,
    }
}

/// An unplanned (complaint) code of `agency` at `enterprise`, dated today.
fn complaint(
    w: &World,
    agency: &AgencyCode,
    enterprise: &CreditCode,
    item: &ItemCode,
    officers: Vec<OfficerRef>,
) -> IssueCode {
    let mut cmd = issue(
        w,
        InspectionKind::Unplanned {
            trigger: Trigger::Complaint,
            basis: "12345热线投诉".into(),
        },
        officers,
    );
    cmd.agency = agency.clone();
    cmd.enterprise = enterprise.clone();
    cmd.items = vec![item.clone()];
    cmd
}

/// Issues `cmd`, signed by `by`: the inspection id and the code's token.
async fn issued(app: &TestApp, by: &Device, cmd: IssueCode) -> (String, String) {
    let id = cmd.inspection_id.to_string();
    let reply = app
        .client
        .submit(&signed(by, &OfficerCommand::IssueCode(cmd)))
        .await
        .unwrap();
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    (id, reply.body["token"].as_str().unwrap().to_string())
}

/// The enterprise scans the code and rates the visit.
async fn scanned_and_rated(app: &TestApp, token: &str, level: u8, comment: Option<&str>) {
    let scan = app
        .public
        .post_json(&format!("/api/v1/codes/{token}/scan"), &json!({}))
        .await
        .unwrap();
    assert_eq!(scan.status, 200, "{:?}", scan.body);
    let mut body = json!({ "level": level });
    if let Some(c) = comment {
        body["comment"] = json!(c);
    }
    let rated = app
        .public
        .post_json(&format!("/api/v1/codes/{token}/rating"), &body)
        .await
        .unwrap();
    assert_eq!(rated.status, 200, "{:?}", rated.body);
}

/// A 200 answer of the admin API.
async fn get_ok(app: &TestApp, path: &str) -> Value {
    let r = app.client.get(path).await.unwrap();
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.body
}

/// Every inspection id on every page of a history-shaped listing (`path` without paging),
/// checked to come latest date first, then latest issued.
async fn ids(app: &TestApp, path: &str) -> BTreeSet<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let page = get_ok(app, &format!("{path}{sep}limit=500")).await;
    assert_eq!(
        page["next_offset"],
        Value::Null,
        "{path}: one page holds all"
    );
    let items = page["items"].as_array().unwrap();
    let order: Vec<(String, u64)> = items
        .iter()
        .map(|h| {
            (
                h["date"].as_str().unwrap().to_string(),
                h["issued_position"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(order, sorted, "{path}: latest first");
    let set: BTreeSet<String> = items
        .iter()
        .map(|h| h["inspection_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(set.len(), items.len(), "{path}: an inspection listed twice");
    set
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).clone()).collect()
}

/// Answers 422 `invalid_query` naming `param`.
async fn refused(app: &TestApp, path: &str, param: &str) {
    let r = app.client.get(path).await.unwrap();
    assert_eq!(r.status, 422, "{path}: {}", r.body);
    assert_eq!(r.body["error"]["code"], "invalid_query", "{path}");
    assert!(
        r.body["error"]["detail"]
            .as_str()
            .unwrap()
            .starts_with(param),
        "{path}: {}",
        r.body
    );
}

/// The history API's officer, agency and region filters, its fuzzy search by credit code,
/// certificate number, officer name and item, and an officer's unexpired codes, each against
/// the exact inspections submitted.
pub async fn history_filters_and_searches_answer_exactly_the_submitted_inspections(
    backend: Backend,
) {
    let app = spawn_app_with(backend, None).await;
    let p = populate_more(&app).await;
    let w = &p.w;
    let (wang, li, zhao, ma) = p.officers();
    let market = &w.market;
    // a: Wang and Li at 华创 (630100). b: Zhao of the other agency at 高原机械 (630100).
    // c: Wang alone at 湟水牧业 (632100). d: the police officer at 湟水牧业.
    let (a, _) = issued(
        &app,
        &w.wang,
        complaint(
            w,
            market,
            &w.enterprise,
            &w.food_item,
            vec![wang.clone(), li.clone()],
        ),
    )
    .await;
    let (b, _) = issued(
        &app,
        &w.zhao,
        complaint(
            w,
            &w.safety,
            &w.other_enterprise,
            &w.safety_item,
            vec![zhao.clone()],
        ),
    )
    .await;
    let (c, _) = issued(
        &app,
        &w.wang,
        complaint(w, market, &p.haidong, &w.food_item, vec![wang.clone()]),
    )
    .await;
    let (d, _) = issued(
        &app,
        &p.ma,
        complaint(w, &p.police, &p.haidong, &p.fire_item, vec![ma.clone()]),
    )
    .await;
    // e: Li alone at 华创, tomorrow: not yet valid, but not expired either.
    let mut tomorrow = complaint(w, market, &w.enterprise, &w.food_item, vec![li.clone()]);
    tomorrow.date = today() + Duration::days(1);
    let (e, _) = issued(&app, &w.li, tomorrow).await;
    // f: Wang and Li at 高原机械, revoked.
    let revoke = complaint(
        w,
        market,
        &w.other_enterprise,
        &w.food_item,
        vec![wang.clone(), li.clone()],
    );
    let f_id = revoke.inspection_id;
    let (f, _) = issued(&app, &w.wang, revoke).await;
    let revoked = app
        .client
        .submit(&signed(
            &w.wang,
            &OfficerCommand::RevokeCode {
                inspection_id: f_id,
                reason: "企业已停产，检查取消".into(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(revoked.status, 201, "{:?}", revoked.body);
    // g: Wang at 华创 two days ago, entered afterwards (补录): its window has closed.
    let mut late = complaint(w, market, &w.enterprise, &w.food_item, vec![wang.clone()]);
    late.kind = InspectionKind::Supplementary {
        reason: SupplementReason::parse(STANDARD_SUPPLEMENT_REASON).unwrap(),
    };
    late.date = today() - Duration::days(2);
    let (g, _) = issued(&app, &w.wang, late).await;
    caught_up(&app, app.event_count().await).await;

    let all = set(&[&a, &b, &c, &d, &e, &f, &g]);
    assert_eq!(ids(&app, "/api/v1/history").await, all);

    let police_key = urlencode(MA_KEY);
    let expected: [(String, BTreeSet<String>); 14] = [
        // Officers, by certificate number or 警 + badge number.
        (format!("officer={}", wang.key()), set(&[&a, &c, &f, &g])),
        (format!("officer={}", li.key()), set(&[&a, &e, &f])),
        (format!("officer={}", zhao.key()), set(&[&b])),
        (format!("officer={police_key}"), set(&[&d])),
        (
            "officer=ZF630100004".to_string(),
            BTreeSet::new(), // registered (suspended), on no code
        ),
        // Agencies.
        (format!("agency={market}"), set(&[&a, &c, &e, &f, &g])),
        (format!("agency={}", w.safety), set(&[&b])),
        (format!("agency={}", p.police), set(&[&d])),
        // Regions: the enterprise's, not the agency's (the market agency is 630000's).
        (format!("region={HAIDONG}"), set(&[&c, &d])),
        ("region=630100".to_string(), set(&[&a, &b, &e, &f, &g])),
        ("region=630000".to_string(), BTreeSet::new()),
        // Combined, all must hold.
        (format!("agency={market}&region={HAIDONG}"), set(&[&c])),
        (
            format!("officer={}&agency={market}&region=630100", li.key()),
            set(&[&a, &e, &f]),
        ),
        (
            format!("officer={police_key}&agency={market}"),
            BTreeSet::new(),
        ),
    ];
    for (query, want) in expected {
        assert_eq!(
            ids(&app, &format!("/api/v1/history?{query}")).await,
            want,
            "{query}"
        );
    }

    // Fuzzy search: fragments, any case, of each searched field.
    let q = |s: &str| format!("/api/v1/history?q={}", urlencode(s));
    let searches: [(&str, BTreeSet<String>); 13] = [
        // Credit code (海东's), lower case.
        ("ma7h5y2b", set(&[&c, &d])),
        // The whole credit code of 高原机械.
        (w.other_enterprise.as_str(), set(&[&b, &f])),
        // Certificate numbers: Zhao's whole, lower case; a fragment of Li's.
        ("zf630100003", set(&[&b])),
        ("630100002", set(&[&a, &e, &f])),
        // The police officer's badge number.
        ("630123", set(&[&d])),
        // Officer names.
        ("李娜", set(&[&a, &e, &f])),
        ("赵强", set(&[&b])),
        ("马明", set(&[&d])),
        // Items: by name, and by a lower-case fragment of the code.
        ("安全生产", set(&[&b])),
        ("消防", set(&[&d])),
        ("sc-sp", set(&[&a, &c, &e, &f, &g])),
        // LIKE's own characters are matched literally: no field holds them.
        ("%", BTreeSet::new()),
        ("_", BTreeSet::new()),
    ];
    for (fragment, want) in searches {
        assert_eq!(ids(&app, &q(fragment)).await, want, "q={fragment}");
    }
    // A search narrowed by a filter.
    assert_eq!(
        ids(&app, &format!("{}&region={HAIDONG}", q("王海"))).await,
        set(&[&c])
    );
    // The police officer's row names the officer by 警 + badge number.
    let rows = get_ok(&app, &format!("/api/v1/history?officer={police_key}")).await;
    assert_eq!(rows["items"][0]["officers"], MA_KEY);
    assert_eq!(rows["items"][0]["officer_names"], "马明");

    // Unexpired codes: not revoked (f) and not past their window (g); tomorrow's (e) is.
    let unexpired = |key: &str| format!("/api/v1/officers/{}/unexpired-codes", urlencode(key));
    for (key, want) in [
        (wang.key(), set(&[&a, &c])),
        (li.key(), set(&[&a, &e])),
        (zhao.key(), set(&[&b])),
        (MA_KEY.to_string(), set(&[&d])),
        ("ZF630100004".to_string(), BTreeSet::new()),
    ] {
        assert_eq!(ids(&app, &unexpired(&key)).await, want, "{key}");
    }
    // Paged: one at a time, the same codes.
    let first = get_ok(&app, &format!("{}?limit=1", unexpired(&wang.key()))).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    assert_eq!(first["next_offset"], 1);
    let second = get_ok(
        &app,
        &format!("{}?limit=1&offset=1", unexpired(&wang.key())),
    )
    .await;
    assert_eq!(second["next_offset"], Value::Null);
    let paged: BTreeSet<String> = [&first, &second]
        .iter()
        .map(|p| p["items"][0]["inspection_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(paged, set(&[&a, &c]));

    for (path, param) in [
        ("/api/v1/history?officer=ZF%20001", "officer"),
        ("/api/v1/history?agency=QH%27SCJ", "agency"),
        ("/api/v1/history?region=63010", "region"),
        ("/api/v1/officers/ZF%25001/unexpired-codes", "officer"),
        (
            "/api/v1/officers/ZF630100001/unexpired-codes?limit=501",
            "limit",
        ),
        ("/api/v1/officers/ZF630100001/unexpired-codes?q=x", "query"),
    ] {
        refused(&app, path, param).await;
    }
    let r = app.public.get(&unexpired(&wang.key())).await.unwrap();
    assert_eq!(r.status, 401, "unexpired codes need the admin token");
}

/// The worst-rated visits with their comments, per agency, officer, region and month, worst
/// first then earliest then by id; revoked codes, non-inspection visits and unrated visits
/// are not among them.
pub async fn the_worst_rated_visits_come_per_agency_officer_region_and_month(backend: Backend) {
    let app = spawn_app_with(backend, None).await;
    let p = populate_more(&app).await;
    let w = &p.w;
    let (wang, li, zhao, ma) = p.officers();
    let market = &w.market;
    let rated = |level: u8, comment: Option<&'static str>| (level, comment);
    let mut visits = Vec::new();
    // (who issues, the code, level and comment)
    for (by, cmd, rating) in [
        (
            &w.wang,
            complaint(
                w,
                market,
                &w.enterprise,
                &w.food_item,
                vec![wang.clone(), li.clone()],
            ),
            rated(1, Some("态度生硬，检查时间过长")),
        ),
        (
            &w.zhao,
            complaint(
                w,
                &w.safety,
                &w.other_enterprise,
                &w.safety_item,
                vec![zhao.clone()],
            ),
            rated(2, Some("未出示执法证件")),
        ),
        (
            &w.wang,
            complaint(w, market, &p.haidong, &w.food_item, vec![wang.clone()]),
            rated(1, None),
        ),
        (
            &p.ma,
            complaint(w, &p.police, &p.haidong, &p.fire_item, vec![ma.clone()]),
            rated(3, Some("一般")),
        ),
        (
            &w.li,
            complaint(
                w,
                market,
                &w.other_enterprise,
                &w.food_item,
                vec![li.clone()],
            ),
            rated(5, Some("检查规范，态度很好")),
        ),
    ] {
        let (id, token) = issued(&app, by, cmd).await;
        scanned_and_rated(&app, &token, rating.0, rating.1).await;
        visits.push((id, rating));
    }
    // Not counted: a service visit (非检查类入企) rated 1, and a scanned visit left unrated.
    let service = issue(
        w,
        InspectionKind::NonInspection {
            purpose: VisitPurpose::Service,
        },
        vec![wang.clone(), li.clone()],
    );
    let (_, token) = issued(&app, &w.wang, service).await;
    scanned_and_rated(&app, &token, 1, Some("服务走过场")).await;
    let (_, token) = issued(
        &app,
        &w.wang,
        complaint(w, market, &w.enterprise, &w.food_item, vec![wang.clone()]),
    )
    .await;
    let scan = app
        .public
        .post_json(&format!("/api/v1/codes/{token}/scan"), &json!({}))
        .await
        .unwrap();
    assert_eq!(scan.status, 200, "{:?}", scan.body);
    caught_up(&app, app.event_count().await).await;

    let [v1, v2, v3, v4, v5] = [0, 1, 2, 3, 4].map(|i| visits[i].0.clone());
    // Level 1 twice on the same date: the lower inspection id first.
    let (first, second) = if v1 < v3 { (&v1, &v3) } else { (&v3, &v1) };
    let month = &today().to_string()[..7];
    let last_month = {
        let first_day = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").unwrap();
        (first_day - Duration::days(1)).format("%Y-%m").to_string()
    };
    let worst = |query: String| {
        let app = &app;
        async move {
            let page = get_ok(app, &format!("/api/v1/satisfaction/worst?{query}")).await;
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["inspection_id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let ordered = |ids: &[&String]| ids.iter().map(|s| (*s).clone()).collect::<Vec<_>>();
    for (query, want) in [
        (String::new(), ordered(&[first, second, &v2, &v4, &v5])),
        (format!("agency={market}"), ordered(&[first, second, &v5])),
        (format!("agency={}", w.safety), ordered(&[&v2])),
        (format!("officer={}", li.key()), ordered(&[&v1, &v5])),
        (format!("officer={}", wang.key()), ordered(&[first, second])),
        (format!("officer={}", urlencode(MA_KEY)), ordered(&[&v4])),
        (format!("region={HAIDONG}"), ordered(&[&v3, &v4])),
        ("region=630100".into(), ordered(&[&v1, &v2, &v5])),
        (
            format!("month={month}"),
            ordered(&[first, second, &v2, &v4, &v5]),
        ),
        (format!("month={last_month}"), vec![]),
        (
            format!("agency={market}&region={HAIDONG}&month={month}"),
            ordered(&[&v3]),
        ),
        (
            format!("officer={}&region=630100", zhao.key()),
            ordered(&[&v2]),
        ),
        (
            format!("agency={}&officer={}", w.safety, wang.key()),
            vec![],
        ),
    ] {
        assert_eq!(worst(query.clone()).await, want, "?{query}");
    }

    // Paged, in the same order.
    let page = get_ok(&app, "/api/v1/satisfaction/worst?limit=2").await;
    assert_eq!(page["next_offset"], 2);
    let page = get_ok(&app, "/api/v1/satisfaction/worst?limit=2&offset=4").await;
    assert_eq!(page["next_offset"], Value::Null);
    assert_eq!(page["items"][0]["inspection_id"], v5.as_str());

    // What a row says.
    let rows = get_ok(
        &app,
        &format!("/api/v1/satisfaction/worst?agency={}", w.safety),
    )
    .await;
    assert_eq!(
        rows["items"][0],
        json!({
            "level": 2,
            "comment": "未出示执法证件",
            "inspection_id": v2,
            "agency_code": w.safety.as_str(),
            "agency_name": "西宁市应急管理局",
            "enterprise_code": w.other_enterprise.as_str(),
            "enterprise_name": "西宁高原机械有限公司",
            "region": "630100",
            "officers": zhao.key(),
            "officer_names": "赵强",
            "date": today().to_string(),
            "rated_at": rows["items"][0]["rated_at"],
        })
    );
    assert!(
        rows["items"][0]["rated_at"]
            .as_str()
            .is_some_and(|t| t.len() == 20 && t.ends_with('Z')),
        "{rows}"
    );
    let rows = get_ok(
        &app,
        &format!("/api/v1/satisfaction/worst?region={HAIDONG}"),
    )
    .await;
    assert_eq!(
        (
            &rows["items"][0]["level"],
            &rows["items"][0]["comment"],
            &rows["items"][0]["enterprise_name"]
        ),
        (&json!(1), &json!(""), &json!("海东湟水牧业有限公司")),
        "a rating without a comment"
    );

    for (path, param) in [
        ("/api/v1/satisfaction/worst?month=2026-13", "month"),
        ("/api/v1/satisfaction/worst?month=march", "month"),
        ("/api/v1/satisfaction/worst?month=2026-03-01", "month"),
        ("/api/v1/satisfaction/worst?agency=a%20b", "agency"),
        ("/api/v1/satisfaction/worst?officer=ZF%27001", "officer"),
        ("/api/v1/satisfaction/worst?region=6301", "region"),
        ("/api/v1/satisfaction/worst?limit=0", "limit"),
        ("/api/v1/satisfaction/worst?limit=501", "limit"),
        ("/api/v1/satisfaction/worst?level=1", "query"),
        ("/api/v1/satisfaction/worst?offset=-1", "query"),
    ] {
        refused(&app, path, param).await;
    }
    let r = app.public.get("/api/v1/satisfaction/worst").await.unwrap();
    assert_eq!(r.status, 401, "the worst-rated visits need the admin token");
}
