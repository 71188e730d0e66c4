//! Signing in and the officer's pages, over real HTTP as a browser uses them: accounts created
//! by the admin API, the session cookie, lockout after failed sign-ins, the form tag on
//! sign-out, an officer's own inspections only, and the public endpoints' rate limit.

use crate::lifecycle::{issue, pair};
use crate::pages::{browser, page, Page};
use crate::support::*;
use saoma_domain::inspection::{InspectionKind, OfficerCommand, Outcome, VisitPurpose};
use saoma_services::config::{Secret, Settings};
use saoma_services::http::router;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use uuid::Uuid;

pub(crate) const PASSWORD: &str = "青海执法2026-pass";

/// A service like `saoma serve` runs it: the peer address known (for the limits), the log's
/// sequencer and the live views running.
pub(crate) struct Web {
    pub app: TestApp,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Web {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub(crate) async fn spawn(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Web {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings {
        data_dir: dir.path().to_path_buf(),
        admin_token: Some(Secret::new(ADMIN_TOKEN)),
        database_url: match backend {
            Backend::Sqlite => None,
            Backend::Postgres(url) => Some(Secret::new(url)),
        },
        ..Settings::default()
    };
    tweak(&mut settings);
    let state = saoma_services::serve::build_state(&settings, None)
        .await
        .expect("state");
    let book = saoma_services::rules::load(&settings).expect("rule book");
    let log = saoma_services::log::start(&state.app, &settings, book);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(state, settings.max_command_bytes)
        .into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        let _log = log;
        axum::serve(listener, app).await.expect("server");
    });
    let mut app = TestApp::at(&base, ADMIN_TOKEN);
    app.settings = Some(settings);
    Web {
        app,
        server,
        _dir: dir,
    }
}

/// The session cookie's `name=value`, from the answer's `Set-Cookie`.
fn session_cookie(answer: &Page) -> String {
    let cookie = answer.header("set-cookie");
    assert!(cookie.starts_with("saoma_session="), "{cookie:?}");
    cookie.split(';').next().unwrap().to_string()
}

pub(crate) async fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> Page {
    let mut req = browser().get(format!("{}{path}", app.base));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    page(req.send().await.unwrap()).await
}

pub(crate) async fn post_form(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> Page {
    let mut req = browser().post(format!("{}{path}", app.base)).form(fields);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    page(req.send().await.unwrap()).await
}

pub(crate) async fn sign_in(app: &TestApp, login: &str, password: &str) -> Page {
    post_form(
        app,
        "/login",
        None,
        &[("login", login), ("password", password)],
    )
    .await
}

pub(crate) async fn put_account(app: &TestApp, body: Value) -> saoma_services::client::Reply {
    app.client
        .post_json("/api/v1/admin/accounts", &body)
        .await
        .unwrap()
}

pub(crate) async fn officer_account(app: &TestApp, login: &str, officer: &str) {
    let reply = put_account(
        app,
        json!({"login": login, "role": "officer", "officer": officer, "password": PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
}

/// Signs in and returns the cookie to send.
pub(crate) async fn session(app: &TestApp, login: &str) -> String {
    let signed_in = sign_in(app, login, PASSWORD).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    session_cookie(&signed_in)
}

/// Issues a service visit by Wang and Li at 西宁华创食品有限公司: its id and token.
async fn wangs_visit(app: &TestApp, w: &World) -> (Uuid, String) {
    let cmd = issue(
        w,
        InspectionKind::NonInspection {
            purpose: VisitPurpose::Service,
        },
        pair(w),
    );
    let id = cmd.inspection_id;
    let reply = app
        .client
        .submit(&signed(&w.wang, &OfficerCommand::IssueCode(cmd)))
        .await
        .unwrap();
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    (id, reply.body["token"].as_str().unwrap().to_string())
}

/// Issues a service visit by Zhao alone, of another agency, at another enterprise.
async fn zhaos_visit(app: &TestApp, w: &World) -> Uuid {
    let mut cmd = issue(
        w,
        InspectionKind::NonInspection {
            purpose: VisitPurpose::Service,
        },
        vec![w.zhao.officer.clone()],
    );
    cmd.agency = w.safety.clone();
    cmd.enterprise = w.other_enterprise.clone();
    cmd.items = vec![w.safety_item.clone()];
    let id = cmd.inspection_id;
    let reply = app
        .client
        .submit(&signed(&w.zhao, &OfficerCommand::IssueCode(cmd)))
        .await
        .unwrap();
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    id
}

/// The officer's list for `q`, once the live views show `expect` in it.
async fn search_until(app: &TestApp, cookie: &str, q: &str, expect: &str) -> Page {
    for _ in 0..200 {
        let page = get(app, &format!("/officer?q={q}"), Some(cookie)).await;
        assert_eq!(page.status, 200, "{}", page.body);
        if page.body.contains(expect) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/officer?q={q} never showed {expect}");
}

pub async fn accounts_are_refused_for_bad_input_and_replaced_whole(backend: Backend) {
    let web = spawn(backend, |_| {}).await;
    let app = &web.app;
    let w = populate(app).await;
    let wang = w.wang.officer.key();
    let unauthorised = app
        .public
        .post_json(
            "/api/v1/admin/accounts",
            &json!({"login": "wang", "role": "officer", "officer": wang, "password": PASSWORD}),
        )
        .await
        .unwrap();
    assert_eq!(unauthorised.status, 401);
    for (body, code) in [
        (
            json!({"login": "王海", "role": "officer", "officer": wang, "password": PASSWORD}),
            "invalid_login",
        ),
        (
            json!({"login": "wang", "role": "admin", "officer": wang, "password": PASSWORD}),
            "invalid_role",
        ),
        (
            json!({"login": "wang", "role": "officer", "officer": "ZF639999999", "password": PASSWORD}),
            "unknown_officer",
        ),
        (
            json!({"login": "wang", "role": "officer", "officer": wang, "region": "630100", "password": PASSWORD}),
            "invalid_account_scope",
        ),
        (
            json!({"login": "wang", "role": "supervisor", "password": PASSWORD}),
            "invalid_account_scope",
        ),
        (
            json!({"login": "sup", "role": "supervisor", "region": "63-100", "password": PASSWORD}),
            "invalid_region",
        ),
        (
            json!({"login": "wang", "role": "officer", "officer": wang, "password": "short"}),
            "weak_password",
        ),
        (
            json!({"login": "wang", "role": "officer", "officer": wang}),
            "invalid_request",
        ),
        (
            json!({"login": "wang", "role": "officer", "officer": wang, "password": PASSWORD, "admin": true}),
            "invalid_request",
        ),
    ] {
        let reply = put_account(app, body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {:?}", reply.body);
        assert_eq!(reply.error_code(), Some(code), "{body}: {:?}", reply.body);
    }
    let malformed = app
        .client
        .post_json("/api/v1/admin/accounts", &json!("not an object"))
        .await
        .unwrap();
    assert_eq!(malformed.status, 422, "{:?}", malformed.body);
    // Nothing refused was stored: the login does not sign in.
    assert_eq!(sign_in(app, "wang", PASSWORD).await.status, 401);

    let created = put_account(
        app,
        json!({"login": "wang", "role": "officer", "officer": wang, "password": PASSWORD}),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["officer"], json!(wang));
    assert_eq!(created.body["replaced"], json!(false));
    assert!(
        !created.body.to_string().contains(PASSWORD),
        "no password in the answer"
    );
    let cookie = session(app, "wang").await;
    assert_eq!(get(app, "/officer", Some(&cookie)).await.status, 200);

    // Replacing the account (new password) ends its sessions; the old password no longer works.
    let replaced = put_account(
        app,
        json!({"login": "wang", "role": "officer", "officer": wang, "password": "another-password-1"}),
    )
    .await;
    assert_eq!(replaced.status, 200, "{:?}", replaced.body);
    assert_eq!(replaced.body["replaced"], json!(true));
    assert_eq!(get(app, "/officer", Some(&cookie)).await.status, 303);
    assert_eq!(sign_in(app, "wang", PASSWORD).await.status, 401);
    assert_eq!(sign_in(app, "wang", "another-password-1").await.status, 303);

    // A disabled account does not sign in, even with its password.
    let disabled = put_account(
        app,
        json!({"login": "sup", "role": "supervisor", "region": "630100", "password": PASSWORD, "disabled": true}),
    )
    .await;
    assert_eq!(disabled.status, 201, "{:?}", disabled.body);
    let refused = sign_in(app, "sup", PASSWORD).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("已停用"), "{}", refused.body);
}

pub async fn wrong_passwords_look_alike_and_lock_the_login_and_the_address(backend: Backend) {
    let web = spawn(backend, |_| {}).await;
    let app = &web.app;
    let w = populate(app).await;
    officer_account(app, "wang", &w.wang.officer.key()).await;
    officer_account(app, "li", &w.li.officer.key()).await;

    let wrong = sign_in(app, "wang", "not the password").await;
    let unknown = sign_in(app, "nobody", "not the password").await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert!(wrong.body.contains("账号或密码错误"), "{}", wrong.body);
    assert_eq!(
        wrong.body, unknown.body,
        "no hint which of the two was wrong"
    );
    assert_eq!(wrong.header("set-cookie"), "");

    for _ in 0..4 {
        assert_eq!(sign_in(app, "wang", "still not it").await.status, 401);
    }
    // Five failures: even the right password is refused now, with a reason and a wait.
    let locked = sign_in(app, "wang", PASSWORD).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert_eq!(locked.header("x-saoma-reason"), "login_locked");
    assert!(locked.body.contains("login_locked") && locked.body.contains("登录失败次数过多"));
    assert!(locked.header("retry-after").parse::<u64>().unwrap() > 0);
    assert_eq!(locked.header("set-cookie"), "");
    // Another login from the same address is not locked yet (6 failures so far).
    assert_eq!(sign_in(app, "li", PASSWORD).await.status, 303);

    // Twenty failures from one address lock it, whatever the login.
    for i in 0..14 {
        let r = sign_in(app, &format!("guess{i}"), "guess").await;
        assert_eq!(r.status, 401, "attempt {i}");
    }
    let address = sign_in(app, "li", PASSWORD).await;
    assert_eq!(address.status, 429, "{}", address.body);
    assert_eq!(address.header("x-saoma-reason"), "address_locked");
}

pub async fn the_session_cookie_is_strict_and_sign_out_needs_its_form_tag(backend: Backend) {
    let web = spawn(backend, |s| {
        s.public_base_url = Some("https://saoma.example.gov.cn".into());
    })
    .await;
    let app = &web.app;
    let w = populate(app).await;
    officer_account(app, "wang", &w.wang.officer.key()).await;

    let form = get(app, "/login", None).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("登录") && form.body.contains("name=\"password\""));

    // A sign-in posted from another site's page (login CSRF) signs nobody in.
    let forged = page(
        browser()
            .post(format!("{}/login", app.base))
            .header("sec-fetch-site", "cross-site")
            .form(&[("login", "wang"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(forged.header("set-cookie"), "");

    let signed_in = sign_in(app, "wang", PASSWORD).await;
    assert_eq!(signed_in.status, 303);
    assert_eq!(signed_in.header("location"), "/officer");
    let set_cookie = signed_in.header("set-cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Secure",
        "Max-Age=28800",
    ] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} in {set_cookie}"
        );
    }
    let cookie = session_cookie(&signed_in);
    let token = cookie.trim_start_matches("saoma_session=");
    assert_eq!(token.len(), 43, "32 random bytes, base64url");

    let home = get(app, "/officer", Some(&cookie)).await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains("已登录：wang") && home.body.contains("我的检查"));
    assert_eq!(
        get(app, "/login", Some(&cookie)).await.header("location"),
        "/officer"
    );

    // Without the form tag, or with another session's, sign-out is refused and changes nothing.
    let other = session(app, "wang").await;
    let other_tag = get(app, "/officer", Some(&other)).await.form_tag();
    for fields in [
        vec![],
        vec![("csrf", other_tag.as_str())],
        vec![("csrf", "garbage")],
    ] {
        let refused = post_form(app, "/logout", Some(&cookie), &fields).await;
        assert_eq!(refused.status, 403, "{fields:?}");
        assert_eq!(get(app, "/officer", Some(&cookie)).await.status, 200);
    }
    let tag = home.form_tag();
    let out = post_form(app, "/logout", Some(&cookie), &[("csrf", &tag)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), "/login");
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    let after = get(app, "/officer", Some(&cookie)).await;
    assert_eq!(after.status, 303, "the session is over");
    assert_eq!(after.header("location"), "/login");
    assert_eq!(
        get(app, "/officer", Some(&other)).await.status,
        200,
        "the other one is not"
    );
}

pub async fn an_officer_finds_an_own_inspection_by_a_fragment_of_the_enterprise_name(
    backend: Backend,
) {
    let web = spawn(backend, |_| {}).await;
    let app = &web.app;
    let w = populate(app).await;
    let (id, token) = wangs_visit(app, &w).await;
    zhaos_visit(app, &w).await;
    officer_account(app, "wang", &w.wang.officer.key()).await;
    let cookie = session(app, "wang").await;

    let found = search_until(app, &cookie, "%E5%8D%8E%E5%88%9B", "西宁华创食品有限公司").await;
    assert!(found.body.contains(&format!("/officer/inspections/{id}")));
    assert!(
        !found.body.contains("西宁高原机械有限公司"),
        "Zhao's visit is not mine"
    );
    let none = get(app, "/officer?q=%E9%AB%98%E5%8E%9F", Some(&cookie)).await;
    assert_eq!(none.status, 200);
    assert!(none.body.contains("没有找到检查记录"), "{}", none.body);

    let codes = get(app, "/officer/codes", Some(&cookie)).await;
    assert_eq!(codes.status, 200);
    assert!(
        codes
            .body
            .contains(&format!("src=\"/api/v1/codes/{token}/qr.svg\"")),
        "{}",
        codes.body
    );
    let qr = get(app, &format!("/api/v1/codes/{token}/qr.svg"), None).await;
    assert_eq!(qr.status, 200);

    // The enterprise scans and rates; Wang reports the result.
    assert!(app
        .public
        .post_json(&format!("/api/v1/codes/{token}/scan"), &json!({}))
        .await
        .unwrap()
        .ok());
    let rated = app
        .public
        .post_json(
            &format!("/api/v1/codes/{token}/rating"),
            &json!({"level": 5, "comment": "服务周到"}),
        )
        .await
        .unwrap();
    assert!(rated.ok(), "{:?}", rated.body);
    let report = OfficerCommand::ReportResult {
        inspection_id: id,
        outcome: Outcome::NoProblems,
    };
    assert_eq!(
        app.client
            .submit(&signed(&w.wang, &report))
            .await
            .unwrap()
            .status,
        201
    );

    let detail = get(app, &format!("/officer/inspections/{id}"), Some(&cookie)).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    for text in [
        "西宁华创食品有限公司",
        "青海省市场监督管理局",
        "食品经营许可事项检查",
        "《中华人民共和国食品安全法》第一百一十条",
        "有效期至",
        "非常满意",
        "服务周到",
        "未发现问题",
        "全程记录",
        "赋码",
        "企业扫检查码",
        "结果反馈：未发现问题",
    ] {
        assert!(detail.body.contains(text), "{text} in {}", detail.body);
    }
    // Li is on the code too and may see it.
    officer_account(app, "li", &w.li.officer.key()).await;
    let li = session(app, "li").await;
    assert_eq!(
        get(app, &format!("/officer/inspections/{id}"), Some(&li))
            .await
            .status,
        200
    );
}

pub async fn another_officers_inspection_is_not_found_and_no_session_goes_to_sign_in(
    backend: Backend,
) {
    let web = spawn(backend, |_| {}).await;
    let app = &web.app;
    let w = populate(app).await;
    let zhaos = zhaos_visit(app, &w).await;
    officer_account(app, "wang", &w.wang.officer.key()).await;
    let cookie = session(app, "wang").await;

    let theirs = get(app, &format!("/officer/inspections/{zhaos}"), Some(&cookie)).await;
    let nothing = get(
        app,
        &format!("/officer/inspections/{}", Uuid::new_v4()),
        Some(&cookie),
    )
    .await;
    assert_eq!((theirs.status, nothing.status), (404, 404));
    assert_eq!(theirs.body, nothing.body, "does not reveal that it exists");
    assert!(!theirs.body.contains("西宁高原机械有限公司"));
    assert_eq!(
        get(app, "/officer/inspections/not-a-uuid", Some(&cookie))
            .await
            .status,
        404
    );

    for path in [
        "/officer",
        "/officer/codes",
        &format!("/officer/inspections/{zhaos}"),
    ] {
        for cookie in [
            None,
            Some("saoma_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ] {
            let page = get(app, path, cookie).await;
            assert_eq!(page.status, 303, "{path} {cookie:?}");
            assert_eq!(page.header("location"), "/login");
        }
    }

    // A supervisor's session does not open the officer's pages.
    let sup = put_account(
        app,
        json!({"login": "sup", "role": "supervisor", "region": "630100", "password": PASSWORD}),
    )
    .await;
    assert_eq!(sup.status, 201, "{:?}", sup.body);
    let sup = session(app, "sup").await;
    assert_eq!(get(app, "/officer", Some(&sup)).await.status, 403);
    assert_eq!(
        get(app, &format!("/officer/inspections/{zhaos}"), Some(&sup))
            .await
            .status,
        403
    );
}

pub async fn the_public_rate_limit_answers_429_when_set_low(backend: Backend) {
    let web = spawn(backend, |s| {
        s.rate_limit_per_minute = 6;
        s.rate_limit_burst = 3;
        s.rate_limit_loopback = true;
    })
    .await;
    let app = &web.app;
    let w = populate(app).await;
    let page = format!("/e/{}", w.enterprise.as_str());
    for _ in 0..3 {
        assert_eq!(get(app, &page, None).await.status, 200);
    }
    let limited = get(app, &page, None).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(limited.body.contains("请求过于频繁") && limited.body.contains("rate_limited"));
    let wait: u64 = limited.header("retry-after").parse().unwrap();
    assert!((1..=10).contains(&wait), "{wait}");

    let api = get(app, "/api/v1/codes/some-token", None).await;
    assert_eq!(api.status, 429);
    let body: Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(body["error"]["code"], json!("rate_limited"));
    assert!(api.header("retry-after").parse::<u64>().is_ok());
    assert_eq!(get(app, "/login", None).await.status, 429);

    // What is not public is not limited.
    assert_eq!(get(app, "/healthz", None).await.status, 200);
    assert_eq!(
        app.client.get("/api/v1/admin/stats").await.unwrap().status,
        200
    );
}
