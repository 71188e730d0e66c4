//! The pure parts of web sign-in: roles, what a login and a password must look like, argon2id
//! password hashes, session tokens and their cookie, and when failed sign-ins lock a login or
//! an address. The handlers are in `session`, the tables in `crate::store::accounts`.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use std::sync::OnceLock;

pub const SESSION_COOKIE: &str = "saoma_session";
/// How long a session lasts.
pub const SESSION_HOURS: i64 = 8;
/// Failed sign-ins count for this long.
pub const FAILURE_WINDOW_MINUTES: i64 = 15;
/// Failures within the window after which a login is locked.
pub const MAX_FAILURES_PER_LOGIN: u64 = 5;
/// Failures within the window after which an address is locked.
pub const MAX_FAILURES_PER_IP: u64 = 20;
pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 128;
pub const MAX_LOGIN_CHARS: usize = 64;

/// What an account may see: one officer's inspections, or one region's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Bound to the registry's officer key (certificate number, or 警 + badge number).
    Officer { officer: String },
    /// Bound to a six-digit region code.
    Supervisor { region: String },
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Officer { .. } => "officer",
            Role::Supervisor { .. } => "supervisor",
        }
    }

    /// The officer key or the region code.
    pub fn scope(&self) -> &str {
        match self {
            Role::Officer { officer } => officer,
            Role::Supervisor { region } => region,
        }
    }

    /// The role as stored (`role`, `scope` columns); `None` for anything else.
    pub fn from_stored(role: &str, scope: &str) -> Option<Role> {
        match role {
            "officer" => Some(Role::Officer {
                officer: scope.to_string(),
            }),
            "supervisor" => Some(Role::Supervisor {
                region: scope.to_string(),
            }),
            _ => None,
        }
    }

    /// Where this role lands after signing in.
    pub fn home(&self) -> &'static str {
        match self {
            Role::Officer { .. } => "/officer",
            Role::Supervisor { .. } => "/supervision",
        }
    }
}

/// A login: 1 to 64 ASCII letters, digits, `.`, `_`, `-` or `@`.
pub fn valid_login(login: &str) -> bool {
    !login.is_empty()
        && login.len() <= MAX_LOGIN_CHARS
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}

/// A six-digit region code.
pub fn valid_region(region: &str) -> bool {
    region.len() == 6 && region.bytes().all(|b| b.is_ascii_digit())
}

/// Why `password` may not be used, if it may not.
pub fn password_problem(password: &str) -> Option<String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        Some(format!("at least {MIN_PASSWORD_CHARS} characters"))
    } else if n > MAX_PASSWORD_CHARS {
        Some(format!("at most {MAX_PASSWORD_CHARS} characters"))
    } else if password.trim() != password {
        Some("no leading or trailing spaces".to_string())
    } else {
        None
    }
}

/// An argon2id hash (default parameters, random salt) as a PHC string.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashes any password of a valid length")
        .to_string()
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Spends the time of one verification, so that an unknown login answers as slowly as a
/// wrong password.
pub fn verify_nothing(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let hash = DUMMY.get_or_init(|| hash_password("not a password of anyone"));
    let _ = verify_password(password, hash);
}

/// A new session: the token for the cookie (32 random bytes, base64url) and the hex SHA-256
/// the server keeps.
pub fn new_session() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = B64.encode(bytes);
    let digest = token_digest(&token).expect("a fresh token has the shape of one");
    (token, digest)
}

/// The hex SHA-256 of a token of the right shape (43 base64url characters).
pub fn token_digest(token: &str) -> Option<String> {
    let decoded = B64.decode(token.as_bytes()).ok()?;
    (decoded.len() == 32).then(|| hex::encode(Sha256::digest(token.as_bytes())))
}

/// The `Set-Cookie` value of a new session.
pub fn session_cookie(token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    let age = SESSION_HOURS * 3600;
    format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={age}{secure}")
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}")
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim())
    })
}

/// The reason a sign-in is refused before its password is checked: too many failures for the
/// login or from the address within the window.
pub fn locked(by_login: u64, by_ip: u64) -> Option<&'static str> {
    if by_login >= MAX_FAILURES_PER_LOGIN {
        Some("login_locked")
    } else if by_ip >= MAX_FAILURES_PER_IP {
        Some("address_locked")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_argon2id_hash_only() {
        let hash = hash_password("correct horse battery");
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password(
            "correct horse battery",
            "not a phc string"
        ));
        assert_ne!(hash, hash_password("correct horse battery"), "random salt");
    }

    #[test]
    fn logins_regions_and_passwords_are_checked() {
        assert!(valid_login("wang.hai@qh-scj"));
        for bad in ["", "王海", "a b", "x;y", &"a".repeat(65)] {
            assert!(!valid_login(bad), "{bad:?}");
        }
        assert!(valid_region("630100"));
        assert!(!valid_region("63010") && !valid_region("63010A"));
        assert!(password_problem("ten chars!").is_none());
        assert!(password_problem("short").is_some());
        assert!(password_problem(" padded password").is_some());
        assert!(password_problem(&"x".repeat(129)).is_some());
    }

    #[test]
    fn session_tokens_are_random_and_only_their_digest_is_kept() {
        let (token, digest) = new_session();
        assert_eq!(token.len(), 43);
        assert_eq!(digest.len(), 64);
        assert_eq!(token_digest(&token).as_deref(), Some(digest.as_str()));
        assert!(!digest.contains(&token));
        assert_ne!(new_session().0, token);
        assert_eq!(token_digest("short"), None);
        assert_eq!(token_digest(&format!("{token}A")), None);
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let c = session_cookie("abc", true);
        assert_eq!(
            c,
            "saoma_session=abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=28800; Secure"
        );
        assert!(!session_cookie("abc", false).contains("Secure"));
        assert!(cleared_cookie(false).contains("Max-Age=0"));
        assert_eq!(
            cookie("a=1; saoma_session=xyz; b=2", SESSION_COOKIE),
            Some("xyz")
        );
        assert_eq!(cookie("saoma_sessionx=1", SESSION_COOKIE), None);
    }

    #[test]
    fn five_failures_lock_a_login_and_twenty_an_address() {
        assert_eq!(locked(4, 19), None);
        assert_eq!(locked(5, 0), Some("login_locked"));
        assert_eq!(locked(0, 20), Some("address_locked"));
    }

    #[test]
    fn roles_round_trip_through_their_stored_form() {
        let r = Role::Officer {
            officer: "警123456".into(),
        };
        assert_eq!(Role::from_stored(r.name(), r.scope()), Some(r));
        assert_eq!(Role::from_stored("admin", "x"), None);
    }
}
