//! Parsed identifiers: a value of these types is valid by construction.

use crate::schema::string_schema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Why an identifier was refused. `code()` is the stable machine-readable reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("统一社会信用代码应为18位")]
    CreditCodeLength,
    #[error("统一社会信用代码含有非法字符")]
    CreditCodeCharacter,
    #[error("统一社会信用代码校验位错误")]
    CreditCodeCheckDigit,
    #[error("执法证件编号格式错误")]
    CertificateNo,
    #[error("警号格式错误")]
    BadgeNo,
    #[error("编码格式错误")]
    Code,
}

impl IdError {
    pub fn code(&self) -> &'static str {
        match self {
            IdError::CreditCodeLength => "credit_code_length",
            IdError::CreditCodeCharacter => "credit_code_character",
            IdError::CreditCodeCheckDigit => "credit_code_check_digit",
            IdError::CertificateNo => "certificate_no_invalid",
            IdError::BadgeNo => "badge_no_invalid",
            IdError::Code => "code_invalid",
        }
    }
}

/// The 31 characters of GB 32100-2015, in value order (no I, O, Z, S, V).
const CREDIT_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// An 18-character unified social credit code (统一社会信用代码) with a valid GB 32100 check digit.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CreditCode(String);

impl CreditCode {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim().to_ascii_uppercase();
        if s.chars().count() != 18 {
            return Err(IdError::CreditCodeLength);
        }
        let values = s
            .bytes()
            .map(|b| {
                CREDIT_ALPHABET
                    .iter()
                    .position(|&c| c == b)
                    .map(|p| p as u32)
            })
            .collect::<Option<Vec<u32>>>()
            .ok_or(IdError::CreditCodeCharacter)?;
        if values[17] != Self::check_value(&values[..17]) {
            return Err(IdError::CreditCodeCheckDigit);
        }
        Ok(CreditCode(s))
    }

    fn check_value(body: &[u32]) -> u32 {
        let sum: u32 = body.iter().zip(CREDIT_WEIGHTS).map(|(v, w)| v * w).sum();
        (31 - sum % 31) % 31
    }

    /// Completes 17 valid characters with their check digit (used by the simulator and tests).
    pub fn with_check_digit(first17: &str) -> Result<Self, IdError> {
        if first17.len() != 17 {
            return Err(IdError::CreditCodeLength);
        }
        let values = first17
            .bytes()
            .map(|b| {
                CREDIT_ALPHABET
                    .iter()
                    .position(|&c| c == b)
                    .map(|p| p as u32)
            })
            .collect::<Option<Vec<u32>>>()
            .ok_or(IdError::CreditCodeCharacter)?;
        let check = CREDIT_ALPHABET[Self::check_value(&values) as usize] as char;
        Self::parse(&format!("{first17}{check}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The six-digit administrative region code (positions 3 to 8).
    pub fn region(&self) -> &str {
        &self.0[2..8]
    }
}

macro_rules! parsed_string {
    ($(#[$m:meta])* $name:ident, $err:expr, $valid:expr) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, IdError> {
                let s = s.trim();
                let valid: fn(&str) -> bool = $valid;
                if valid(s) {
                    Ok($name(s.to_string()))
                } else {
                    Err($err)
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

fn is_code(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

parsed_string!(
    /// An enforcement certificate number (执法证件编号): 6 to 32 letters, digits or dashes.
    CertificateNo,
    IdError::CertificateNo,
    |s| (6..=32).contains(&s.len()) && is_code(s, 32)
);
parsed_string!(
    /// A police badge number (警号): 6 to 8 digits.
    BadgeNo,
    IdError::BadgeNo,
    |s| (6..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
);
parsed_string!(
    /// An agency code (检查主体编码), e.g. its own credit code or an internal code.
    AgencyCode,
    IdError::Code,
    |s| is_code(s, 40)
);
parsed_string!(
    /// An inspection item code (检查事项编码).
    ItemCode,
    IdError::Code,
    |s| is_code(s, 40)
);
parsed_string!(
    /// An approved inspection plan id.
    PlanId,
    IdError::Code,
    |s| is_code(s, 64)
);
parsed_string!(
    /// A six-digit administrative region code (行政区划代码).
    RegionCode,
    IdError::Code,
    |s| s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())
);

string_schema!(CreditCode, "CreditCode", {
    "description": "统一社会信用代码: 18 characters of GB 32100-2015 (no I, O, Z, S, V), the last a check digit",
    "pattern": "^[0-9A-HJ-NPQRTUWXY]{18}$"
});
string_schema!(CertificateNo, "CertificateNo", {
    "description": "执法证件编号: 6 to 32 letters, digits, '-', '_' or '.'",
    "pattern": "^[A-Za-z0-9._-]{6,32}$"
});
string_schema!(BadgeNo, "BadgeNo", {
    "description": "警号: 6 to 8 digits",
    "pattern": "^[0-9]{6,8}$"
});
string_schema!(AgencyCode, "AgencyCode", {
    "description": "检查主体编码: 1 to 40 letters, digits, '-', '_' or '.'",
    "pattern": "^[A-Za-z0-9._-]{1,40}$"
});
string_schema!(ItemCode, "ItemCode", {
    "description": "检查事项编码: 1 to 40 letters, digits, '-', '_' or '.'",
    "pattern": "^[A-Za-z0-9._-]{1,40}$"
});
string_schema!(PlanId, "PlanId", {
    "description": "检查计划编号: 1 to 64 letters, digits, '-', '_' or '.'",
    "pattern": "^[A-Za-z0-9._-]{1,64}$"
});
string_schema!(RegionCode, "RegionCode", {
    "description": "行政区划代码: six digits",
    "pattern": "^[0-9]{6}$"
});

impl<'de> Deserialize<'de> for CreditCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CreditCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CreditCode({:?})", self.0)
    }
}

/// How an officer is identified: the certificate number, or for police the badge number and name.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(untagged)]
pub enum OfficerRef {
    Certificate(CertificateNo),
    Police { badge_no: BadgeNo, name: String },
}

impl OfficerRef {
    /// The registry key: the certificate number, or `警<badge>` for police.
    pub fn key(&self) -> String {
        match self {
            OfficerRef::Certificate(c) => c.as_str().to_string(),
            OfficerRef::Police { badge_no, .. } => format!("警{}", badge_no.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_credit_code_is_accepted() {
        // Examples in the public format, check digits computed by GB 32100-2015.
        for code in [
            "91350100M000100Y43",
            "91110000600037341L",
            "11100000000013127D",
        ] {
            assert!(CreditCode::parse(code).is_ok(), "{code}");
        }
    }

    #[test]
    fn a_credit_code_with_a_wrong_check_digit_is_refused() {
        assert_eq!(
            CreditCode::parse("91350100M000100Y44"),
            Err(IdError::CreditCodeCheckDigit)
        );
    }

    #[test]
    fn a_credit_code_of_the_wrong_length_or_alphabet_is_refused() {
        assert_eq!(CreditCode::parse("9135010"), Err(IdError::CreditCodeLength));
        assert_eq!(
            CreditCode::parse("91350100M000100I43"),
            Err(IdError::CreditCodeCharacter)
        );
    }

    #[test]
    fn with_check_digit_completes_a_valid_code() {
        let c = CreditCode::with_check_digit("91350100M000100Y4").unwrap();
        assert_eq!(c.as_str(), "91350100M000100Y43");
        assert_eq!(c.region(), "350100");
    }

    #[test]
    fn lower_case_credit_codes_are_normalised() {
        assert_eq!(
            CreditCode::parse("91350100m000100y43").unwrap().as_str(),
            "91350100M000100Y43"
        );
    }

    #[test]
    fn identifiers_refuse_bad_shapes() {
        assert!(CertificateNo::parse("12345").is_err());
        assert!(CertificateNo::parse("ZF-63010012").is_ok());
        assert!(BadgeNo::parse("12a456").is_err());
        assert!(RegionCode::parse("63010").is_err());
        assert!(AgencyCode::parse("a b").is_err());
    }

    #[test]
    fn officer_refs_deserialise_from_either_shape() {
        let c: OfficerRef = serde_json::from_str(r#""ZF63010012""#).unwrap();
        assert_eq!(c.key(), "ZF63010012");
        let p: OfficerRef = serde_json::from_str(r#"{"badge_no":"012345","name":"张三"}"#).unwrap();
        assert_eq!(p.key(), "警012345");
    }
}
