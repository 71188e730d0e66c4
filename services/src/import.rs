//! Bulk registry import: CSV (one file per kind, a header row naming the columns) or JSON (an
//! array of registry commands). Every row is parsed before anything is stored, so a bad file
//! changes nothing.

use saoma_domain::ids::{
    AgencyCode, BadgeNo, CertificateNo, CreditCode, ItemCode, OfficerRef, PlanId,
};
use saoma_domain::keys::PublicKey;
use saoma_domain::registry::{Agency, Enterprise, Item, OfficerProfile, Plan, RegistryCommand};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The kinds of file `import` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    Agencies,
    Officers,
    Enterprises,
    Items,
    Plans,
    DeviceKeys,
    /// JSON only: an array of registry commands of any kind.
    Commands,
}

impl std::str::FromStr for ImportKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(s.to_string()))
            .map_err(|_| format!("unknown import kind {s}"))
    }
}

/// A row that could not be parsed (1-based data row number; the header is row 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub row: usize,
    pub error: String,
}

#[derive(Deserialize)]
struct OfficerRow {
    #[serde(default)]
    certificate_no: String,
    #[serde(default)]
    badge_no: String,
    name: String,
    agency: String,
    #[serde(default)]
    phone: String,
    /// Optional: a device key registered with the officer.
    #[serde(default)]
    public_key: String,
}

#[derive(Deserialize)]
struct PlanRow {
    id: String,
    agency: String,
    year: i32,
    /// Credit codes separated by `;`.
    enterprises: String,
    /// Item codes separated by `;`.
    items: String,
    allowed_visits: u32,
}

#[derive(Deserialize)]
struct DeviceKeyRow {
    officer: String,
    #[serde(default)]
    officer_name: String,
    public_key: String,
}

fn officer_ref(key: &str, name: &str) -> Result<OfficerRef, String> {
    match key.strip_prefix('警') {
        Some(badge) => Ok(OfficerRef::Police {
            badge_no: BadgeNo::parse(badge).map_err(|e| e.to_string())?,
            name: name.to_string(),
        }),
        None => Ok(OfficerRef::Certificate(
            CertificateNo::parse(key).map_err(|e| e.to_string())?,
        )),
    }
}

fn split<T>(
    s: &str,
    parse: impl Fn(&str) -> Result<T, saoma_domain::ids::IdError>,
) -> Result<Vec<T>, String> {
    s.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| parse(p).map_err(|e| format!("{p}: {e}")))
        .collect()
}

fn csv_rows<T: DeserializeOwned>(body: &[u8]) -> Vec<Result<T, String>> {
    csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(body)
        .deserialize::<T>()
        .map(|r| r.map_err(|e| e.to_string()))
        .collect()
}

fn row_commands(kind: ImportKind, body: &[u8]) -> Vec<Result<Vec<RegistryCommand>, String>> {
    use RegistryCommand as C;
    let one = |c| Ok(vec![c]);
    match kind {
        ImportKind::Agencies => csv_rows::<Agency>(body)
            .into_iter()
            .map(|r| r.and_then(|agency| one(C::RegisterAgency { agency })))
            .collect(),
        ImportKind::Enterprises => csv_rows::<Enterprise>(body)
            .into_iter()
            .map(|r| r.and_then(|enterprise| one(C::RegisterEnterprise { enterprise })))
            .collect(),
        ImportKind::Items => csv_rows::<Item>(body)
            .into_iter()
            .map(|r| r.and_then(|item| one(C::RegisterItem { item })))
            .collect(),
        ImportKind::Officers => csv_rows::<OfficerRow>(body)
            .into_iter()
            .map(|r| {
                let row = r?;
                let credential = match (row.certificate_no.is_empty(), row.badge_no.is_empty()) {
                    (false, true) => officer_ref(&row.certificate_no, &row.name)?,
                    (true, false) => officer_ref(&format!("警{}", row.badge_no), &row.name)?,
                    _ => {
                        return Err("exactly one of certificate_no and badge_no is required".into())
                    }
                };
                let profile = OfficerProfile {
                    credential: credential.clone(),
                    name: row.name,
                    agency: AgencyCode::parse(&row.agency).map_err(|e| e.to_string())?,
                    phone: Some(row.phone).filter(|p| !p.is_empty()),
                };
                let mut commands = vec![C::RegisterOfficer { officer: profile }];
                if !row.public_key.is_empty() {
                    let public_key = PublicKey::from_base64(&row.public_key)
                        .ok_or("public_key is not a base64 ed25519 key")?;
                    commands.push(C::RegisterDeviceKey {
                        officer: credential,
                        public_key,
                    });
                }
                Ok(commands)
            })
            .collect(),
        ImportKind::Plans => csv_rows::<PlanRow>(body)
            .into_iter()
            .map(|r| {
                let row = r?;
                one(C::ApprovePlan {
                    plan: Plan {
                        id: PlanId::parse(&row.id).map_err(|e| e.to_string())?,
                        agency: AgencyCode::parse(&row.agency).map_err(|e| e.to_string())?,
                        year: row.year,
                        enterprises: split(&row.enterprises, CreditCode::parse)?,
                        items: split(&row.items, ItemCode::parse)?,
                        allowed_visits: row.allowed_visits,
                    },
                })
            })
            .collect(),
        ImportKind::DeviceKeys => csv_rows::<DeviceKeyRow>(body)
            .into_iter()
            .map(|r| {
                let row = r?;
                one(C::RegisterDeviceKey {
                    officer: officer_ref(&row.officer, &row.officer_name)?,
                    public_key: PublicKey::from_base64(&row.public_key)
                        .ok_or("public_key is not a base64 ed25519 key")?,
                })
            })
            .collect(),
        ImportKind::Commands => vec![Err("commands are imported as JSON".into())],
    }
}

/// Parses an import body. JSON (`json == true`) is an array of registry commands, or, for a
/// kind other than `commands`, an array of that kind's records. Returns every command in row
/// order, or every row error.
pub fn parse(
    kind: ImportKind,
    body: &[u8],
    json: bool,
) -> Result<Vec<RegistryCommand>, Vec<RowError>> {
    let rows: Vec<Result<Vec<RegistryCommand>, String>> = if json {
        match json_rows(kind, body) {
            Ok(rows) => rows,
            Err(e) => return Err(vec![RowError { row: 0, error: e }]),
        }
    } else {
        row_commands(kind, body)
    };
    let mut commands = Vec::new();
    let mut errors = Vec::new();
    for (i, r) in rows.into_iter().enumerate() {
        match r {
            Ok(c) => commands.extend(c),
            Err(error) => errors.push(RowError { row: i + 1, error }),
        }
    }
    if errors.is_empty() {
        Ok(commands)
    } else {
        Err(errors)
    }
}

fn json_rows(
    kind: ImportKind,
    body: &[u8],
) -> Result<Vec<Result<Vec<RegistryCommand>, String>>, String> {
    use RegistryCommand as C;
    let values: Vec<serde_json::Value> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    fn each<T: DeserializeOwned>(
        values: Vec<serde_json::Value>,
        f: impl Fn(T) -> RegistryCommand,
    ) -> Vec<Result<Vec<RegistryCommand>, String>> {
        values
            .into_iter()
            .map(|v| {
                serde_json::from_value::<T>(v)
                    .map(|t| vec![f(t)])
                    .map_err(|e| e.to_string())
            })
            .collect()
    }
    Ok(match kind {
        ImportKind::Commands => each::<RegistryCommand>(values, |c| c),
        ImportKind::Agencies => each::<Agency>(values, |agency| C::RegisterAgency { agency }),
        ImportKind::Enterprises => {
            each::<Enterprise>(values, |enterprise| C::RegisterEnterprise { enterprise })
        }
        ImportKind::Items => each::<Item>(values, |item| C::RegisterItem { item }),
        ImportKind::Plans => each::<Plan>(values, |plan| C::ApprovePlan { plan }),
        ImportKind::Officers => {
            each::<OfficerProfile>(values, |officer| C::RegisterOfficer { officer })
        }
        ImportKind::DeviceKeys => {
            return Err("device keys are imported as CSV, or as JSON commands".into())
        }
    })
}

/// What an import did, row by row.
#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    pub commands: usize,
    pub changed: usize,
    pub unchanged: usize,
    pub events: usize,
    pub refused: Vec<RefusedCommand>,
}

#[derive(Debug, Serialize)]
pub struct RefusedCommand {
    /// 1-based index of the command in the import.
    pub index: usize,
    pub code: &'static str,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agencies_parse_from_csv() {
        let csv = "code,name,level,region,domain\nQH-SCJ,青海省市场监督管理局,province,630000,market_regulation\n";
        let cmds = parse(ImportKind::Agencies, csv.as_bytes(), false).unwrap();
        assert_eq!(cmds.len(), 1);
        assert!(
            matches!(&cmds[0], RegistryCommand::RegisterAgency { agency } if agency.name == "青海省市场监督管理局")
        );
    }

    #[test]
    fn one_bad_row_refuses_the_whole_file_and_names_the_row() {
        let csv = "credit_code,name,region,credit_grade,status\n\
                   91350100M000100Y43,甲公司,350100,A,active\n\
                   91350100M000100Y44,乙公司,350100,A,active\n";
        let errors = parse(ImportKind::Enterprises, csv.as_bytes(), false).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].row, 2);
        assert!(errors[0].error.contains("校验位"), "{}", errors[0].error);
    }

    #[test]
    fn an_officer_row_with_a_key_registers_both() {
        let key =
            PublicKey(ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key()).to_base64();
        let csv = format!("certificate_no,badge_no,name,agency,phone,public_key\nZF630100001,,王五,QH-SCJ,13800000000,{key}\n,012345,张三,QH-GA,,\n");
        let cmds = parse(ImportKind::Officers, csv.as_bytes(), false).unwrap();
        assert_eq!(cmds.len(), 3);
        assert!(matches!(
            &cmds[1],
            RegistryCommand::RegisterDeviceKey { .. }
        ));
        assert!(
            matches!(&cmds[2], RegistryCommand::RegisterOfficer { officer } if officer.credential.key() == "警012345")
        );
    }

    #[test]
    fn plans_split_their_lists() {
        let csv = "id,agency,year,enterprises,items,allowed_visits\nP-2026-1,QH-SCJ,2026,91350100M000100Y43;91110000600037341L,SC-001,1\n";
        let cmds = parse(ImportKind::Plans, csv.as_bytes(), false).unwrap();
        assert!(
            matches!(&cmds[0], RegistryCommand::ApprovePlan { plan } if plan.enterprises.len() == 2)
        );
    }

    #[test]
    fn json_commands_of_any_kind_are_accepted() {
        let json = r#"[{"type":"RegisterItem","item":{"code":"SC-001","name":"食品生产许可检查","legal_basis":"《食品安全法》第一百一十条","domain":"food_drug"}}]"#;
        assert_eq!(
            parse(ImportKind::Commands, json.as_bytes(), true)
                .unwrap()
                .len(),
            1
        );
        assert!(parse(ImportKind::Commands, b"{not json", true).is_err());
    }
}
