//! `spawn_app()`: the service on a free port with a fresh store, and a realistic population.

use chrono::{DateTime, NaiveDate, Utc};
use ed25519_dalek::SigningKey;
use saoma_domain::ids::{
    AgencyCode, CertificateNo, CreditCode, ItemCode, OfficerRef, PlanId, RegionCode,
};
use saoma_domain::inspection::{shanghai_date, OfficerCommand};
use saoma_domain::registry::{
    Agency, AgencyLevel, CreditGrade, EnforcementDomain, Enterprise, EnterpriseStatus, Item,
    OfficerProfile, Plan, RegistryCommand,
};
use saoma_services::client::{Client, Device, Reply};
use saoma_services::config::{Secret, Settings};
use saoma_services::http::{router, SharedState};
use serde_json::{json, Value};
use uuid::Uuid;

pub const ADMIN_TOKEN: &str = "test-admin-token";

pub enum Backend {
    Sqlite,
    Postgres(String),
}

/// A running service: in this process (`spawn_app`) or a `saoma serve` child process.
pub struct TestApp {
    pub client: Client,
    pub public: Client,
    pub base: String,
    /// The settings the service runs with, for tests that open its store beside it (`None`
    /// for a service this process does not own).
    pub settings: Option<Settings>,
    _dir: Option<tempfile::TempDir>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let expected_store = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres(_) => "postgres",
    };
    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        admin_token: Some(Secret::new(ADMIN_TOKEN)),
        database_url: match backend {
            Backend::Sqlite => None,
            Backend::Postgres(url) => Some(Secret::new(url)),
        },
        ..Settings::default()
    };
    let state: SharedState = saoma_services::serve::build_state(&settings, None)
        .await
        .expect("state");
    assert_eq!(state.app.store().backend_name(), expected_store);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(state.clone(), settings.max_command_bytes);
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("server");
    });
    TestApp {
        client: Client::new(&base, Some(ADMIN_TOKEN.into())),
        public: Client::new(&base, None),
        base,
        settings: Some(settings.clone()),
        _dir: Some(dir),
        server: Some(server),
    }
}

/// [`spawn_app`] plus what `saoma serve` runs beside HTTP: the global log's sequencer, and with
/// a NATS URL the command ingest and the committed-events publisher. They stop with the app.
pub async fn spawn_app_with(backend: Backend, nats_url: Option<String>) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        admin_token: Some(Secret::new(ADMIN_TOKEN)),
        database_url: match backend {
            Backend::Sqlite => None,
            Backend::Postgres(url) => Some(Secret::new(url)),
        },
        nats_url,
        ..Settings::default()
    };
    let state: SharedState = saoma_services::serve::build_state(&settings, None)
        .await
        .expect("state");
    let ingest = saoma_services::nats::start(state.clone(), &settings);
    let book = saoma_services::rules::load(&settings).expect("rule book");
    let log = saoma_services::log::start(&state.app, &settings, book);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(state, settings.max_command_bytes);
    let server = tokio::spawn(async move {
        // Owned by the server task: aborting it (dropping the app) aborts them too.
        let _background = (ingest, log);
        axum::serve(listener, app).await.expect("server");
    });
    TestApp {
        client: Client::new(&base, Some(ADMIN_TOKEN.into())),
        public: Client::new(&base, None),
        base,
        settings: Some(settings.clone()),
        _dir: Some(dir),
        server: Some(server),
    }
}

impl TestApp {
    /// A service at `base` that some other owner runs (e.g. a child process).
    pub fn at(base: &str, admin_token: &str) -> Self {
        TestApp {
            client: Client::new(base, Some(admin_token.into())),
            public: Client::new(base, None),
            base: base.to_string(),
            settings: None,
            _dir: None,
            server: None,
        }
    }

    pub async fn event_count(&self) -> i64 {
        let stats = self.client.get("/api/v1/admin/stats").await.expect("stats");
        assert_eq!(stats.status, 200, "{:?}", stats.body);
        stats.body["events"].as_i64().expect("event count")
    }

    pub async fn register(&self, command: RegistryCommand) -> Reply {
        self.client
            .post_json(
                "/api/v1/admin/registry",
                &serde_json::to_value(command).unwrap(),
            )
            .await
            .unwrap()
    }
}

/// A small, realistic population: two agencies, three officers with device keys, two
/// enterprises, items and a plan for this year.
pub struct World {
    pub market: AgencyCode,
    pub safety: AgencyCode,
    pub wang: Device,
    pub li: Device,
    pub zhao: Device,
    pub suspended: Device,
    pub enterprise: CreditCode,
    pub other_enterprise: CreditCode,
    pub closed_enterprise: CreditCode,
    pub food_item: ItemCode,
    pub safety_item: ItemCode,
    pub plan: PlanId,
}

pub fn today() -> NaiveDate {
    shanghai_date(Utc::now())
}

fn cert(s: &str) -> OfficerRef {
    OfficerRef::Certificate(CertificateNo::parse(s).unwrap())
}

fn device(cert_no: &str, seed: u8) -> Device {
    Device::new(cert(cert_no), SigningKey::from_bytes(&[seed; 32]))
}

pub async fn populate(app: &TestApp) -> World {
    let w = World {
        market: AgencyCode::parse("QH-SCJ").unwrap(),
        safety: AgencyCode::parse("XN-YJJ").unwrap(),
        wang: device("ZF630100001", 11),
        li: device("ZF630100002", 12),
        zhao: device("ZF630100003", 13),
        suspended: device("ZF630100004", 14),
        enterprise: CreditCode::with_check_digit("91630100MA7F3XKQ1").unwrap(),
        other_enterprise: CreditCode::with_check_digit("91630100MA7F3XKQ2").unwrap(),
        closed_enterprise: CreditCode::with_check_digit("91630100MA7F3XKQ3").unwrap(),
        food_item: ItemCode::parse("SC-SP-001").unwrap(),
        safety_item: ItemCode::parse("YJ-AQ-001").unwrap(),
        plan: PlanId::parse("QH-SCJ-PLAN-1").unwrap(),
    };
    let region = RegionCode::parse("630100").unwrap();
    let mut commands = vec![
        RegistryCommand::RegisterAgency {
            agency: Agency {
                code: w.market.clone(),
                name: "青海省市场监督管理局".into(),
                level: AgencyLevel::Province,
                region: RegionCode::parse("630000").unwrap(),
                domain: EnforcementDomain::MarketRegulation,
            },
        },
        RegistryCommand::RegisterAgency {
            agency: Agency {
                code: w.safety.clone(),
                name: "西宁市应急管理局".into(),
                level: AgencyLevel::City,
                region: region.clone(),
                domain: EnforcementDomain::WorkSafety,
            },
        },
        RegistryCommand::RegisterItem {
            item: Item {
                code: w.food_item.clone(),
                name: "食品经营许可事项检查".into(),
                legal_basis: "《中华人民共和国食品安全法》第一百一十条".into(),
                domain: EnforcementDomain::FoodDrug,
            },
        },
        RegistryCommand::RegisterItem {
            item: Item {
                code: w.safety_item.clone(),
                name: "安全生产条件检查".into(),
                legal_basis: "《中华人民共和国安全生产法》第六十五条".into(),
                domain: EnforcementDomain::WorkSafety,
            },
        },
    ];
    for (code, name, status) in [
        (
            &w.enterprise,
            "西宁华创食品有限公司",
            EnterpriseStatus::Active,
        ),
        (
            &w.other_enterprise,
            "西宁高原机械有限公司",
            EnterpriseStatus::Active,
        ),
        (
            &w.closed_enterprise,
            "西宁旧城贸易有限公司",
            EnterpriseStatus::Deregistered,
        ),
    ] {
        commands.push(RegistryCommand::RegisterEnterprise {
            enterprise: Enterprise {
                credit_code: code.clone(),
                name: name.into(),
                region: region.clone(),
                credit_grade: CreditGrade::B,
                status,
            },
        });
    }
    for (d, name, agency) in [
        (&w.wang, "王海", &w.market),
        (&w.li, "李娜", &w.market),
        (&w.zhao, "赵强", &w.safety),
        (&w.suspended, "孙立", &w.market),
    ] {
        commands.push(RegistryCommand::RegisterOfficer {
            officer: OfficerProfile {
                credential: d.officer.clone(),
                name: name.into(),
                agency: agency.clone(),
                phone: Some("13800138000".into()),
            },
        });
        commands.push(RegistryCommand::RegisterDeviceKey {
            officer: d.officer.clone(),
            public_key: d.public_key(),
        });
    }
    commands.push(RegistryCommand::SetOfficerStatus {
        officer: w.suspended.officer.clone(),
        status: saoma_domain::registry::OfficerStatus::Suspended,
    });
    commands.push(RegistryCommand::ApprovePlan {
        plan: Plan {
            id: w.plan.clone(),
            agency: w.market.clone(),
            year: chrono::Datelike::year(&today()),
            enterprises: vec![w.enterprise.clone()],
            items: vec![w.food_item.clone()],
            allowed_visits: 1,
        },
    });
    let body = serde_json::to_value(&commands).unwrap();
    let reply = app
        .client
        .post_json("/api/v1/admin/import/commands", &body)
        .await
        .unwrap();
    assert!(reply.ok(), "import failed: {:?}", reply.body);
    assert_eq!(reply.body["refused"], json!([]), "{:?}", reply.body);
    // Keys are valid from their registration time; commands below are signed after it.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    w
}

/// A command signed now with a fresh command id.
pub fn signed(device: &Device, command: &OfficerCommand) -> Value {
    device.sign(command, now(), Uuid::new_v4())
}

pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// The `type` of every event in a trace.
pub fn types(trace: &Value) -> Vec<String> {
    trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["type"].as_str().unwrap().to_string())
        .collect()
}

/// Two services over one store and one set of keys (as two `saoma serve` processes sharing a
/// PostgreSQL, or a data dir), each with its own writer and cache.
pub async fn spawn_twins(backend: Backend) -> (TestApp, TestApp) {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        admin_token: Some(Secret::new(ADMIN_TOKEN)),
        database_url: match backend {
            Backend::Sqlite => None,
            Backend::Postgres(url) => Some(Secret::new(url)),
        },
        ..Settings::default()
    };
    let mut twins = Vec::new();
    for _ in 0..2 {
        let state: SharedState = saoma_services::serve::build_state(&settings, None)
            .await
            .expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = router(state, settings.max_command_bytes);
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("server");
        });
        twins.push(TestApp {
            client: Client::new(&base, Some(ADMIN_TOKEN.into())),
            public: Client::new(&base, None),
            base,
            settings: Some(settings.clone()),
            _dir: None,
            server: Some(server),
        });
    }
    let second = twins.pop().unwrap();
    let mut first = twins.pop().unwrap();
    first._dir = Some(dir);
    (first, second)
}
