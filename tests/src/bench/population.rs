//! A compact registry population — agencies, items, enterprises and officers with device keys —
//! registered through the admin CSV import, and complete officer lifecycles (IssueCode,
//! ShowCode, ScanEnterpriseCode, ReportResult) signed before any timing starts.
//!
//! The simulator's population (`saoma_services::simulate`) is private to that module, so the
//! benchmark builds its own through the same public endpoints.

use anyhow::{bail, ensure, Context as _, Result};
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::SigningKey;
use saoma_domain::ids::{AgencyCode, CertificateNo, CreditCode, ItemCode, OfficerRef};
use saoma_domain::inspection::{
    shanghai_date, InspectionKind, IssueCode, OfficerCommand, Outcome, Trigger, VisitPurpose,
};
use saoma_services::client::{Client, Device};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// Region of every agency and enterprise (株洲市荷塘区).
const REGION: &str = "430202";
/// Rows per import request, well within the service's request limit.
const IMPORT_ROWS: usize = 1000;

/// Steps of one lifecycle; each is one signed command that commits one event.
pub const STEPS: usize = 4;

/// One signed envelope, ready to publish.
#[derive(Clone)]
pub struct Signed {
    pub command_id: Uuid,
    pub payload: Vec<u8>,
}

/// The signed commands of one inspection, in the order they must be executed.
pub struct Lifecycle {
    pub steps: Vec<Signed>,
}

struct Officer {
    credential: OfficerRef,
    name: String,
    agency: usize,
    device: Device,
}

/// Who and what the lifecycles name.
pub struct Population {
    agencies: Vec<AgencyCode>,
    officers_per_agency: usize,
    officers: Vec<Officer>,
    enterprises: Vec<CreditCode>,
    items: Vec<ItemCode>,
}

impl Population {
    /// `agencies` agencies with `officers_per_agency` officers each, `enterprises` enterprises
    /// and four items; keys derived from `seed`.
    pub fn new(seed: u64, agencies: usize, officers_per_agency: usize, enterprises: usize) -> Self {
        let agency_codes = (0..agencies)
            .map(|a| AgencyCode::parse(&format!("BENCH-SCJ-{a:03}")).expect("a valid code"))
            .collect();
        let officers = (0..agencies * officers_per_agency)
            .map(|i| {
                let credential = OfficerRef::Certificate(
                    CertificateNo::parse(&format!("ZF{REGION}{i:05}")).expect("ZF and digits"),
                );
                let key: [u8; 32] =
                    Sha256::digest(format!("saoma-bench officer {seed} {i}").as_bytes()).into();
                Officer {
                    device: Device::new(credential.clone(), SigningKey::from_bytes(&key)),
                    credential,
                    name: format!("执法员{i:04}"),
                    agency: i / officers_per_agency,
                }
            })
            .collect();
        let enterprises = (0..enterprises)
            .map(|e| {
                CreditCode::with_check_digit(&format!("91{REGION}{e:09}"))
                    .expect("17 characters of the GB 32100 alphabet")
            })
            .collect();
        let items = (1..=4)
            .map(|i| ItemCode::parse(&format!("BENCH-ITEM-{i}")).expect("a valid code"))
            .collect();
        Population {
            agencies: agency_codes,
            officers_per_agency,
            officers,
            enterprises,
            items,
        }
    }

    pub fn officer_count(&self) -> usize {
        self.officers.len()
    }

    pub fn enterprise_count(&self) -> usize {
        self.enterprises.len()
    }

    pub fn agency_count(&self) -> usize {
        self.agencies.len()
    }

    /// The CSV import bodies, in the order they must be imported.
    fn import_files(&self) -> Vec<(&'static str, Vec<String>)> {
        let agencies = self.agencies.iter().enumerate().map(|(a, code)| {
            format!("{code},株洲市荷塘区第{a}市场监督管理所,county,{REGION},market_regulation")
        });
        let items = self.items.iter().enumerate().map(|(i, code)| {
            format!("{code},食品经营检查事项{i},《中华人民共和国食品安全法》第八十七条,market_regulation")
        });
        let enterprises =
            self.enterprises.iter().enumerate().map(|(e, code)| {
                format!("{code},株洲荷塘基准食品有限公司{e:05},{REGION},A,active")
            });
        let officers = self.officers.iter().map(|o| {
            format!(
                "{},,{},{},13800000000,{}",
                o.credential.key(),
                o.name,
                self.agencies[o.agency],
                o.device.public_key().to_base64()
            )
        });
        vec![
            (
                "agencies",
                chunks("code,name,level,region,domain", agencies),
            ),
            ("items", chunks("code,name,legal_basis,domain", items)),
            (
                "enterprises",
                chunks("credit_code,name,region,credit_grade,status", enterprises),
            ),
            (
                "officers",
                chunks(
                    "certificate_no,badge_no,name,agency,phone,public_key",
                    officers,
                ),
            ),
        ]
    }

    /// Registers everything through `POST /api/v1/admin/import/{kind}`; fails on any refused row.
    pub async fn import(&self, admin: &Client) -> Result<()> {
        for (kind, bodies) in self.import_files() {
            for body in bodies {
                let reply = admin
                    .import_csv(kind, body)
                    .await
                    .with_context(|| format!("importing {kind}"))?;
                ensure!(
                    reply.ok(),
                    "importing {kind}: HTTP {} {}",
                    reply.status,
                    reply.body
                );
                let refused = reply.body.get("refused").and_then(Value::as_array);
                if let Some(first) = refused.and_then(|r| r.first()) {
                    bail!("importing {kind}: a row was refused: {first}");
                }
            }
        }
        Ok(())
    }

    /// When the service registered the device keys (the last officer's, imported last), by
    /// the service's clock: device times must not be earlier.
    pub async fn keys_registered_at(&self, admin: &Client) -> Result<DateTime<Utc>> {
        let officer = self.officers.last().context("no officers")?;
        let key = officer.credential.key();
        let reply = admin
            .get(&format!("/api/v1/admin/registry/officers/{key}"))
            .await?;
        ensure!(
            reply.ok(),
            "officer {key} is not registered: HTTP {} {}",
            reply.status,
            reply.body
        );
        let key_id = officer.device.public_key().key_id();
        reply
            .body
            .get("keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|k| k.get("key_id").and_then(Value::as_str) == Some(key_id.0.as_str()))
            .and_then(|k| k.get("registered_at"))
            .and_then(|t| serde_json::from_value(t.clone()).ok())
            .with_context(|| format!("the device key of officer {key} is not registered"))
    }

    /// Signs `count` lifecycles, numbered from `first` (so that two sets share no inspection),
    /// with device times from `device_time` on, spread over the machine's cores.
    pub fn sign_lifecycles(
        &self,
        first: usize,
        count: usize,
        device_time: DateTime<Utc>,
    ) -> Vec<Lifecycle> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per_thread = count.div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..count)
                .step_by(per_thread)
                .map(|start| {
                    let end = (start + per_thread).min(count);
                    scope.spawn(move || {
                        (start..end)
                            .map(|i| self.lifecycle(first + i, device_time))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("a signing thread panicked"))
                .collect()
        })
    }

    /// Inspection `n`: issued by one officer of its agency with a colleague, a non-inspection
    /// visit or an unplanned inspection (neither needs a plan), for today in Asia/Shanghai.
    fn lifecycle(&self, n: usize, device_time: DateTime<Utc>) -> Lifecycle {
        let agency = n % self.agencies.len();
        let round = n / self.agencies.len();
        let first_officer = agency * self.officers_per_agency;
        let issuer = &self.officers[first_officer + round % self.officers_per_agency];
        let colleague = &self.officers[first_officer + (round + 1) % self.officers_per_agency];
        let enterprise = self.enterprises[(n * 7 + round) % self.enterprises.len()].clone();
        let inspection_id = Uuid::new_v4();
        let kind = if n & 1 == 0 {
            InspectionKind::NonInspection {
                purpose: VisitPurpose::Service,
            }
        } else {
            InspectionKind::Unplanned {
                trigger: Trigger::Complaint,
                basis: "群众投诉举报线索（基准测试）".into(),
            }
        };
        let commands = [
            OfficerCommand::IssueCode(IssueCode {
                inspection_id,
                kind,
                agency: self.agencies[agency].clone(),
                enterprise: enterprise.clone(),
                items: vec![self.items[n % self.items.len()].clone()],
                officers: vec![issuer.credential.clone(), colleague.credential.clone()],
                date: shanghai_date(device_time),
                joint_partners: vec![],
            }),
            OfficerCommand::ShowCode { inspection_id },
            OfficerCommand::ScanEnterpriseCode {
                inspection_id,
                enterprise,
            },
            OfficerCommand::ReportResult {
                inspection_id,
                outcome: Outcome::NoProblems,
            },
        ];
        let steps = commands
            .iter()
            .enumerate()
            .map(|(k, command)| {
                let command_id = Uuid::new_v4();
                let at = device_time + Duration::milliseconds(k as i64);
                let envelope = issuer.device.sign(command, at, command_id);
                Signed {
                    command_id,
                    payload: serde_json::to_vec(&envelope).expect("JSON values serialise"),
                }
            })
            .collect();
        Lifecycle { steps }
    }
}

/// CSV bodies of at most [`IMPORT_ROWS`] rows, each with the header.
fn chunks(header: &str, rows: impl Iterator<Item = String>) -> Vec<String> {
    let rows: Vec<String> = rows.collect();
    rows.chunks(IMPORT_ROWS)
        .map(|chunk| {
            let mut body = format!("{header}\n");
            for row in chunk {
                body.push_str(row);
                body.push('\n');
            }
            body
        })
        .collect()
}
