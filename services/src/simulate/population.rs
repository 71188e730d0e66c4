//! The simulated population: agencies at four levels across five regions, their officers with
//! device keys, enterprises with valid credit codes, inspection items and approved plans, all
//! drawn from the seed; and the registry import files (CSV) that register them.

use super::catalogue::{self, AgencyTemplate, CityDef, CountyDef, ProvinceDef};
use crate::client::Device;
use ed25519_dalek::SigningKey;
use rand::seq::SliceRandom as _;
use rand::Rng as _;
use rand_chacha::rand_core::SeedableRng as _;
use rand_chacha::ChaCha8Rng;
use saoma_domain::ids::{
    AgencyCode, BadgeNo, CertificateNo, CreditCode, ItemCode, OfficerRef, PlanId, RegionCode,
};
use saoma_domain::registry::{
    Agency, AgencyLevel, CreditGrade, Enterprise, EnterpriseStatus, Item, OfficerProfile, Plan,
};
use serde::Serialize;
use std::collections::HashSet;

/// Characters of GB 32100 credit codes (no I, O, S, V, Z).
const CREDIT_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Largest number of enterprises the simulator registers, whatever the traffic.
pub const MAX_ENTERPRISES: usize = 20_000;

/// Independent random streams, so that e.g. a larger traffic leaves the agencies unchanged.
#[derive(Clone, Copy)]
pub enum Stream {
    Agencies = 1,
    Enterprises = 2,
    Plans = 3,
    Traffic = 4,
}

pub fn rng(seed: u64, stream: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    rng
}

pub struct SimAgency {
    pub agency: Agency,
    /// Region-code prefix of the enterprises it may inspect (2, 4 or 6 digits).
    pub jurisdiction: String,
    /// Indices into `Population::officers`.
    pub officers: Vec<usize>,
    /// Items it inspects, indices into `Population::items`.
    pub items: Vec<usize>,
    /// Active enterprises in its jurisdiction, indices into `Population::enterprises`.
    pub enterprises: Vec<usize>,
}

pub struct SimOfficer {
    pub profile: OfficerProfile,
    pub phone: String,
    key: [u8; 32],
}

impl SimOfficer {
    pub fn device(&self) -> Device {
        Device::new(
            self.profile.credential.clone(),
            SigningKey::from_bytes(&self.key),
        )
    }
}

pub struct Population {
    pub year: i32,
    pub agencies: Vec<SimAgency>,
    pub officers: Vec<SimOfficer>,
    pub enterprises: Vec<Enterprise>,
    pub items: Vec<Item>,
    pub plans: Vec<Plan>,
}

/// How many enterprises a traffic of `inspections` gets.
pub fn enterprise_count(inspections: usize) -> usize {
    (inspections / 2).clamp(50, MAX_ENTERPRISES)
}

fn credit_code(rng: &mut ChaCha8Rng, prefix: &str, used: &mut HashSet<String>) -> CreditCode {
    loop {
        let body: String = (0..9)
            .map(|_| CREDIT_ALPHABET[rng.gen_range(0..CREDIT_ALPHABET.len())] as char)
            .collect();
        let code = CreditCode::with_check_digit(&format!("{prefix}{body}"))
            .expect("17 characters of the GB 32100 alphabet");
        if used.insert(code.as_str().to_string()) {
            return code;
        }
    }
}

fn person_name(rng: &mut ChaCha8Rng, province: &str) -> String {
    if (province == "630000" || province == "620000") && rng.gen_bool(0.12) {
        return catalogue::TIBETAN_NAMES
            .choose(rng)
            .expect("names")
            .to_string();
    }
    let surname = catalogue::SURNAMES.choose(rng).expect("surnames");
    let given: String = (0..rng.gen_range(1..=2))
        .map(|_| *catalogue::GIVEN.choose(rng).expect("given names"))
        .collect();
    format!("{surname}{given}")
}

fn phone(rng: &mut ChaCha8Rng) -> String {
    const PREFIXES: &[&str] = &[
        "133", "135", "138", "139", "150", "153", "158", "177", "186", "189",
    ];
    format!(
        "{}{:08}",
        PREFIXES.choose(rng).expect("prefixes"),
        rng.gen_range(0..100_000_000u32)
    )
}

/// A level's templates: the core ones always, each other one with probability `p`.
fn pick_templates<'t>(
    rng: &mut ChaCha8Rng,
    templates: &'t [AgencyTemplate],
    p: f64,
) -> Vec<&'t AgencyTemplate> {
    templates
        .iter()
        .filter(|t| t.core || rng.gen_bool(p))
        .collect()
}

struct AgencyBuilder {
    rng: ChaCha8Rng,
    agencies: Vec<SimAgency>,
    officers: Vec<SimOfficer>,
    codes: HashSet<String>,
    credentials: HashSet<String>,
}

impl AgencyBuilder {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        province: &ProvinceDef,
        name: String,
        level: AgencyLevel,
        region: &str,
        jurisdiction: &str,
        domain: saoma_domain::registry::EnforcementDomain,
        police: bool,
    ) {
        let code = credit_code(&mut self.rng, &format!("11{region}"), &mut self.codes);
        let agency = Agency {
            code: AgencyCode::parse(code.as_str()).expect("a credit code is a valid agency code"),
            name,
            level,
            region: RegionCode::parse(region).expect("catalogue region codes are six digits"),
            domain,
        };
        let count = if level == AgencyLevel::Township {
            self.rng.gen_range(2..=3)
        } else {
            self.rng.gen_range(2..=6)
        };
        let mut officers = Vec::with_capacity(count);
        for _ in 0..count {
            let name = person_name(&mut self.rng, province.code);
            let credential = loop {
                let candidate = if police {
                    let badge = format!("{:06}", self.rng.gen_range(0..1_000_000u32));
                    OfficerRef::Police {
                        badge_no: BadgeNo::parse(&badge).expect("six digits"),
                        name: name.clone(),
                    }
                } else {
                    let cert = format!("ZF{region}{:05}", self.rng.gen_range(0..100_000u32));
                    OfficerRef::Certificate(
                        CertificateNo::parse(&cert).expect("ZF and eleven digits"),
                    )
                };
                if self.credentials.insert(candidate.key()) {
                    break candidate;
                }
            };
            let phone = phone(&mut self.rng);
            let key: [u8; 32] = self.rng.gen();
            officers.push(self.officers.len());
            self.officers.push(SimOfficer {
                profile: OfficerProfile {
                    credential,
                    name,
                    agency: agency.code.clone(),
                    phone: Some(phone.clone()),
                },
                phone,
                key,
            });
        }
        self.agencies.push(SimAgency {
            agency,
            jurisdiction: jurisdiction.to_string(),
            officers,
            items: vec![],
            enterprises: vec![],
        });
    }
}

fn county_agencies(
    b: &mut AgencyBuilder,
    province: &ProvinceDef,
    city: &CityDef,
    county: &CountyDef,
) {
    let full = county.full_name(city);
    for t in pick_templates(&mut b.rng, catalogue::COUNTY_AGENCIES, 0.45) {
        let name = catalogue::fill(t.pattern, province.name, city.name, &full, county.short);
        b.add(
            province,
            name,
            AgencyLevel::County,
            county.code,
            county.code,
            t.domain,
            t.police,
        );
    }
    for town in county.towns {
        if b.rng.gen_bool(0.6) {
            let office = if town.ends_with('镇') {
                "人民政府"
            } else {
                "办事处"
            };
            let name = format!("{full}{town}{office}");
            let domain = saoma_domain::registry::EnforcementDomain::Other;
            b.add(
                province,
                name,
                AgencyLevel::Township,
                county.code,
                county.code,
                domain,
                false,
            );
        }
    }
}

fn place_name(province: &ProvinceDef, city: &CityDef) -> String {
    let name = if province.municipality {
        province.name
    } else {
        city.name
    };
    name.trim_end_matches('市').to_string()
}

impl Population {
    /// The population for `seed`, sized for `inspections`, with plans for `year`.
    pub fn generate(seed: u64, inspections: usize, year: i32) -> Population {
        let mut b = AgencyBuilder {
            rng: rng(seed, Stream::Agencies),
            agencies: vec![],
            officers: vec![],
            codes: HashSet::new(),
            credentials: HashSet::new(),
        };
        for province in catalogue::PROVINCES {
            let templates = if province.municipality {
                catalogue::MUNICIPALITY_AGENCIES
            } else {
                catalogue::PROVINCE_AGENCIES
            };
            for t in pick_templates(&mut b.rng, templates, 0.5) {
                let name = catalogue::fill(t.pattern, province.name, "", "", "");
                b.add(
                    province,
                    name,
                    AgencyLevel::Province,
                    province.code,
                    &province.code[..2],
                    t.domain,
                    t.police,
                );
            }
            for city in province.cities {
                if !province.municipality {
                    for t in pick_templates(&mut b.rng, catalogue::CITY_AGENCIES, 0.6) {
                        let name = catalogue::fill(t.pattern, province.name, city.name, "", "");
                        b.add(
                            province,
                            name,
                            AgencyLevel::City,
                            city.code,
                            &city.code[..4],
                            t.domain,
                            t.police,
                        );
                    }
                }
                for county in city.counties {
                    county_agencies(&mut b, province, city, county);
                }
            }
        }
        let AgencyBuilder {
            mut agencies,
            officers,
            codes: mut used_codes,
            ..
        } = b;

        let items: Vec<Item> = catalogue::ITEMS
            .iter()
            .map(|d| Item {
                code: ItemCode::parse(d.code).expect("catalogue item codes are valid"),
                name: d.name.to_string(),
                legal_basis: d.legal_basis.to_string(),
                domain: d.domain,
            })
            .collect();
        for a in &mut agencies {
            let domains = catalogue::item_domains(a.agency.domain);
            a.items = (0..items.len())
                .filter(|&i| domains.contains(&items[i].domain))
                .collect();
        }

        let enterprises =
            generate_enterprises(seed, enterprise_count(inspections), &mut used_codes);
        for a in &mut agencies {
            a.enterprises = (0..enterprises.len())
                .filter(|&e| {
                    enterprises[e].status == EnterpriseStatus::Active
                        && enterprises[e].region.as_str().starts_with(&a.jurisdiction)
                })
                .collect();
        }

        let plans = generate_plans(seed, inspections, year, &agencies, &enterprises);
        Population {
            year,
            agencies,
            officers,
            enterprises,
            items,
            plans,
        }
    }

    pub fn agency_index(&self, code: &AgencyCode) -> Option<usize> {
        self.agencies.iter().position(|a| &a.agency.code == code)
    }

    /// The registry import files, in the order they must be imported, each split into
    /// bodies of at most `rows` data rows.
    pub fn import_files(&self, rows: usize) -> Vec<(&'static str, Vec<String>)> {
        let officers = self.officers.iter().map(|o| {
            let (certificate_no, badge_no) = match &o.profile.credential {
                OfficerRef::Certificate(c) => (c.as_str().to_string(), String::new()),
                OfficerRef::Police { badge_no, .. } => {
                    (String::new(), badge_no.as_str().to_string())
                }
            };
            OfficerRow {
                certificate_no,
                badge_no,
                name: o.profile.name.clone(),
                agency: o.profile.agency.as_str().to_string(),
                phone: o.phone.clone(),
                public_key: o.device().public_key().to_base64(),
            }
        });
        let plans = self.plans.iter().map(|p| PlanRow {
            id: p.id.as_str().to_string(),
            agency: p.agency.as_str().to_string(),
            year: p.year,
            enterprises: p
                .enterprises
                .iter()
                .map(CreditCode::as_str)
                .collect::<Vec<_>>()
                .join(";"),
            items: p
                .items
                .iter()
                .map(ItemCode::as_str)
                .collect::<Vec<_>>()
                .join(";"),
            allowed_visits: p.allowed_visits,
        });
        vec![
            (
                "agencies",
                csv_chunks(self.agencies.iter().map(|a| &a.agency), rows),
            ),
            ("items", csv_chunks(self.items.iter(), rows)),
            ("enterprises", csv_chunks(self.enterprises.iter(), rows)),
            ("officers", csv_chunks(officers, rows)),
            ("plans", csv_chunks(plans, rows)),
        ]
    }
}

fn generate_enterprises(
    seed: u64,
    count: usize,
    used_codes: &mut HashSet<String>,
) -> Vec<Enterprise> {
    let mut rng = rng(seed, Stream::Enterprises);
    let counties: Vec<(&ProvinceDef, &CityDef, &CountyDef)> = catalogue::PROVINCES
        .iter()
        .flat_map(|p| {
            p.cities
                .iter()
                .flat_map(move |c| c.counties.iter().map(move |k| (p, c, k)))
        })
        .collect();
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        // Every district gets at least one enterprise, so that every agency has someone to visit.
        let (province, city, county) = if i < counties.len() {
            counties[i]
        } else {
            *counties.choose(&mut rng).expect("counties")
        };
        let place = place_name(province, city);
        let mut name = String::new();
        for attempt in 0.. {
            let brand = if rng.gen_bool(0.3) {
                province.brands.choose(&mut rng)
            } else {
                catalogue::BRANDS.choose(&mut rng)
            }
            .expect("brands");
            let (trade, form) = catalogue::INDUSTRIES.choose(&mut rng).expect("industries");
            name = match attempt {
                0..=7 => format!("{place}{brand}{trade}{form}"),
                8..=15 => format!("{place}{brand}{trade}{form}{}分公司", county.short),
                _ => format!("{place}{brand}{trade}{form}（{i}）"),
            };
            if names.insert(name.clone()) {
                break;
            }
        }
        let status = match rng.gen_range(0..100) {
            _ if i < counties.len() => EnterpriseStatus::Active,
            0..=96 => EnterpriseStatus::Active,
            97..=98 => EnterpriseStatus::Suspended,
            _ => EnterpriseStatus::Deregistered,
        };
        let credit_grade = match rng.gen_range(0..100) {
            0..=54 => CreditGrade::A,
            55..=84 => CreditGrade::B,
            85..=94 => CreditGrade::C,
            95..=98 => CreditGrade::D,
            _ => CreditGrade::E,
        };
        out.push(Enterprise {
            credit_code: credit_code(&mut rng, &format!("91{}", county.code), used_codes),
            name,
            region: RegionCode::parse(county.code).expect("catalogue region codes are six digits"),
            credit_grade,
            status,
        });
    }
    out
}

fn generate_plans(
    seed: u64,
    inspections: usize,
    year: i32,
    agencies: &[SimAgency],
    enterprises: &[Enterprise],
) -> Vec<Plan> {
    let mut rng = rng(seed, Stream::Plans);
    // Enough planned visits for the traffic, with room to spare: plans list dozens of
    // enterprises in small traffic and up to 2,000 in large.
    let target = (2 * inspections / agencies.len().max(1)).clamp(6, 2000);
    let mut plans = vec![];
    for a in agencies
        .iter()
        .filter(|a| !a.enterprises.is_empty() && !a.items.is_empty())
    {
        let count = if rng.gen_bool(0.2) { 2 } else { 1 };
        for k in 1..=count {
            let n_items = rng.gen_range(1..=a.items.len().min(3));
            let mut items: Vec<usize> = a
                .items
                .choose_multiple(&mut rng, n_items)
                .copied()
                .collect();
            items.sort_unstable();
            let size = rng
                .gen_range(target / 2..=target)
                .min(a.enterprises.len())
                .max(1);
            let mut chosen: Vec<usize> = a
                .enterprises
                .choose_multiple(&mut rng, size)
                .copied()
                .collect();
            chosen.sort_unstable();
            plans.push(Plan {
                id: PlanId::parse(&format!("JH{year}-{}-{k}", a.agency.code))
                    .expect("plan ids are short codes"),
                agency: a.agency.code.clone(),
                year,
                enterprises: chosen
                    .into_iter()
                    .map(|e| enterprises[e].credit_code.clone())
                    .collect(),
                items: items.into_iter().map(item_code).collect(),
                allowed_visits: if rng.gen_bool(0.7) { 1 } else { 2 },
            });
        }
    }
    plans
}

fn item_code(i: usize) -> ItemCode {
    ItemCode::parse(catalogue::ITEMS[i].code).expect("catalogue item codes are valid")
}

#[derive(Serialize)]
struct OfficerRow {
    certificate_no: String,
    badge_no: String,
    name: String,
    agency: String,
    phone: String,
    public_key: String,
}

#[derive(Serialize)]
struct PlanRow {
    id: String,
    agency: String,
    year: i32,
    enterprises: String,
    items: String,
    allowed_visits: u32,
}

/// CSV bodies with a header row each, at most `rows` data rows per body.
fn csv_chunks<T: Serialize>(rows: impl Iterator<Item = T>, per_body: usize) -> Vec<String> {
    let mut bodies = vec![];
    let mut writer: Option<csv::Writer<Vec<u8>>> = None;
    let mut in_body = 0;
    let finish = |w: csv::Writer<Vec<u8>>| {
        String::from_utf8(w.into_inner().expect("in-memory CSV")).expect("UTF-8 CSV")
    };
    for row in rows {
        let w = writer.get_or_insert_with(|| csv::Writer::from_writer(Vec::new()));
        w.serialize(row).expect("rows serialise to CSV");
        in_body += 1;
        if in_body == per_body {
            bodies.push(finish(writer.take().expect("a body in progress")));
            in_body = 0;
        }
    }
    if let Some(w) = writer {
        bodies.push(finish(w));
    }
    bodies
}
