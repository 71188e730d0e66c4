//! Typed settings: defaults, then an optional TOML file, then `SAOMA_*` environment variables.
//! Secrets never print.

use anyhow::{bail, Context as _};
use saoma_domain::envelope::TimePolicy;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A string that is never written to logs or debug output.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "Secret(<empty>)"
        } else {
            "Secret(***)"
        })
    }
}

/// Every setting, each with a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the embedded store and the keys live.
    pub data_dir: PathBuf,
    /// HTTP listen address.
    pub http_addr: SocketAddr,
    /// Base of the URLs encoded in QR codes (`{public_base_url}/c/{token}`); `http://{http_addr}`
    /// when empty.
    pub public_base_url: Option<String>,
    /// A PostgreSQL URL; the embedded SQLite store is used when empty.
    pub database_url: Option<Secret>,
    /// A NATS URL; NATS ingest is off when empty.
    pub nats_url: Option<String>,
    /// Bearer token for the admin and supervision endpoints. Generated into the data dir on
    /// first start when empty.
    pub admin_token: Option<Secret>,
    /// Notary key file (32-byte ed25519 seed, hex); `{data_dir}/keys/notary.key` when empty.
    pub notary_key_path: Option<PathBuf>,
    /// Minutes a device clock may run ahead of the service.
    pub max_clock_ahead_minutes: i64,
    /// Minutes after which a command is marked late.
    pub late_after_minutes: i64,
    /// Hours after which a command is refused as too late.
    pub max_delay_hours: i64,
    /// Largest accepted request body for commands, bytes.
    pub max_command_bytes: usize,
    /// Largest accepted registry import body, bytes.
    pub max_import_bytes: usize,
    /// Log format: "text" or "json".
    pub log_format: String,
    /// Milliseconds between rounds of the global log's sequencer, which gives committed events
    /// their positions (and so bounds how late an event enters the log and the NATS stream).
    pub sequence_interval_ms: u64,
    /// Longest time, in milliseconds, between an event's entry into the log's Merkle tree and
    /// a signed checkpoint that covers it.
    pub checkpoint_interval_ms: u64,
    /// The origin line of the log's checkpoints, which names this log to its verifiers
    /// (e.g. `saoma.sft.example.gov.cn/log`); `{host of public_base_url}/log` when empty. Set
    /// it once: checkpoints of one log must keep one origin.
    pub log_origin: Option<String>,
    /// The warning rule book (TOML, as in `deploy/rules/`); the rule sets shipped in
    /// `deploy/rules/` when empty.
    pub rules_path: Option<PathBuf>,
    /// Seconds the live views wait past a deadline before firing its time-based warnings, so
    /// that an event recorded just before the deadline but positioned just after is seen first.
    pub deadline_grace_seconds: u64,
    /// Whether this process keeps the live views (history, warnings, satisfaction). With
    /// several processes on one PostgreSQL only one keeps them at a time anyway; turn it off
    /// on nodes that should only ingest.
    pub live_views: bool,
    /// Requests a minute one client address may send to the public endpoints (`/c/…`,
    /// `/e/…`, `/api/v1/codes/…`, `/login`); 0 turns the limit off.
    pub rate_limit_per_minute: u32,
    /// How many of them may come at once.
    pub rate_limit_burst: u32,
    /// Whether clients on the loopback address are limited too (off: tools on the same host).
    pub rate_limit_loopback: bool,
    /// Behind a reverse proxy: the header whose last address is the client's (e.g.
    /// `X-Forwarded-For`); the connection's peer address when empty.
    pub client_ip_header: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("saoma-data"),
            http_addr: "127.0.0.1:8080".parse().expect("valid default address"),
            public_base_url: None,
            database_url: None,
            nats_url: None,
            admin_token: None,
            notary_key_path: None,
            max_clock_ahead_minutes: 5,
            late_after_minutes: 10,
            max_delay_hours: 72,
            max_command_bytes: 64 * 1024,
            max_import_bytes: 16 * 1024 * 1024,
            log_format: "text".into(),
            sequence_interval_ms: 100,
            checkpoint_interval_ms: 1_000,
            log_origin: None,
            rules_path: None,
            deadline_grace_seconds: 60,
            live_views: true,
            rate_limit_per_minute: 60,
            rate_limit_burst: 20,
            rate_limit_loopback: false,
            client_ip_header: None,
        }
    }
}

impl Settings {
    /// Loads `file` (or `$SAOMA_CONFIG`, or `./saoma.toml` if it exists), then applies the
    /// environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env)
    }

    pub fn load_from(file: Option<&Path>, env: &[(String, String)]) -> anyhow::Result<Self> {
        let var = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| var("SAOMA_CONFIG").map(PathBuf::from))
            .or_else(|| Some(PathBuf::from("saoma.toml")).filter(|p| p.exists()));
        let mut s: Settings = match &file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => Settings::default(),
        };
        for (name, value) in env {
            let Some(key) = name.strip_prefix("SAOMA_") else {
                continue;
            };
            let parse_err = || format!("environment variable {name} has an invalid value");
            match key {
                "DATA_DIR" => s.data_dir = value.into(),
                "HTTP_ADDR" => s.http_addr = value.parse().with_context(parse_err)?,
                "PUBLIC_BASE_URL" => {
                    s.public_base_url = Some(value.clone()).filter(|v| !v.is_empty())
                }
                "DATABASE_URL" => {
                    s.database_url = Some(Secret::new(value.clone())).filter(|v| !v.0.is_empty())
                }
                "NATS_URL" => s.nats_url = Some(value.clone()).filter(|v| !v.is_empty()),
                "ADMIN_TOKEN" => {
                    s.admin_token = Some(Secret::new(value.clone())).filter(|v| !v.0.is_empty())
                }
                "NOTARY_KEY_PATH" => s.notary_key_path = Some(value.into()),
                "MAX_CLOCK_AHEAD_MINUTES" => {
                    s.max_clock_ahead_minutes = value.parse().with_context(parse_err)?
                }
                "LATE_AFTER_MINUTES" => {
                    s.late_after_minutes = value.parse().with_context(parse_err)?
                }
                "MAX_DELAY_HOURS" => s.max_delay_hours = value.parse().with_context(parse_err)?,
                "MAX_COMMAND_BYTES" => {
                    s.max_command_bytes = value.parse().with_context(parse_err)?
                }
                "MAX_IMPORT_BYTES" => s.max_import_bytes = value.parse().with_context(parse_err)?,
                "LOG_FORMAT" => s.log_format = value.clone(),
                "SEQUENCE_INTERVAL_MS" => {
                    s.sequence_interval_ms = value.parse().with_context(parse_err)?
                }
                "CHECKPOINT_INTERVAL_MS" => {
                    s.checkpoint_interval_ms = value.parse().with_context(parse_err)?
                }
                "LOG_ORIGIN" => s.log_origin = Some(value.clone()).filter(|v| !v.is_empty()),
                "RULES_PATH" => {
                    s.rules_path =
                        Some(value.into()).filter(|p: &PathBuf| !p.as_os_str().is_empty())
                }
                "LIVE_VIEWS" => s.live_views = value.parse().with_context(parse_err)?,
                "DEADLINE_GRACE_SECONDS" => {
                    s.deadline_grace_seconds = value.parse().with_context(parse_err)?
                }
                "RATE_LIMIT_PER_MINUTE" => {
                    s.rate_limit_per_minute = value.parse().with_context(parse_err)?
                }
                "RATE_LIMIT_BURST" => s.rate_limit_burst = value.parse().with_context(parse_err)?,
                "RATE_LIMIT_LOOPBACK" => {
                    s.rate_limit_loopback = value.parse().with_context(parse_err)?
                }
                "CLIENT_IP_HEADER" => {
                    s.client_ip_header = Some(value.clone()).filter(|v| !v.is_empty())
                }
                // Read by the test harness and other tools, not by the service (`SAOMA_BIN`:
                // which `saoma` the tests and benchmarks run).
                "CONFIG" | "REQUIRE_SERVICES" | "LOG" | "BIN" => {}
                _ => bail!("unknown setting {name}"),
            }
        }
        if !(1..=60_000).contains(&s.sequence_interval_ms) {
            bail!(
                "sequence_interval_ms must be 1 to 60000, not {}",
                s.sequence_interval_ms
            );
        }
        if !(1..=3_600_000).contains(&s.checkpoint_interval_ms) {
            bail!(
                "checkpoint_interval_ms must be 1 to 3600000, not {}",
                s.checkpoint_interval_ms
            );
        }
        if let Some(origin) = &s.log_origin {
            if origin.trim() != origin || origin.contains(char::is_control) {
                bail!("log_origin must be one line without surrounding spaces, not {origin:?}");
            }
        }
        Ok(s)
    }

    /// The origin line of the log's checkpoints.
    pub fn log_origin(&self) -> String {
        match &self.log_origin {
            Some(origin) => origin.clone(),
            None => {
                let base = self.public_base_url();
                let host = base
                    .split_once("://")
                    .map_or(base.as_str(), |(_, rest)| rest);
                format!("{host}/log")
            }
        }
    }

    pub fn public_base_url(&self) -> String {
        match &self.public_base_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.http_addr),
        }
    }

    pub fn time_policy(&self) -> TimePolicy {
        TimePolicy {
            max_clock_ahead: chrono::Duration::minutes(self.max_clock_ahead_minutes),
            late_after: chrono::Duration::minutes(self.late_after_minutes),
            max_delay: chrono::Duration::hours(self.max_delay_hours),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_file_and_no_environment() {
        let s = Settings::load_from(None, &[]).unwrap();
        assert_eq!(s.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.data_dir, PathBuf::from("saoma-data"));
        assert!(s.database_url.is_none());
        assert_eq!(s.public_base_url(), "http://127.0.0.1:8080");
        assert_eq!(s.sequence_interval_ms, 100);
    }

    #[test]
    fn the_sequence_interval_comes_from_the_environment() {
        let s = Settings::load_from(None, &env(&[("SAOMA_SEQUENCE_INTERVAL_MS", "250")])).unwrap();
        assert_eq!(s.sequence_interval_ms, 250);
    }

    #[test]
    fn the_public_rate_limit_is_on_by_default_and_set_from_the_environment() {
        let s = Settings::load_from(None, &[]).unwrap();
        assert_eq!((s.rate_limit_per_minute, s.rate_limit_burst), (60, 20));
        assert!(!s.rate_limit_loopback && s.client_ip_header.is_none());
        let s = Settings::load_from(
            None,
            &env(&[
                ("SAOMA_RATE_LIMIT_PER_MINUTE", "0"),
                ("SAOMA_RATE_LIMIT_BURST", "5"),
                ("SAOMA_RATE_LIMIT_LOOPBACK", "true"),
                ("SAOMA_CLIENT_IP_HEADER", "X-Forwarded-For"),
            ]),
        )
        .unwrap();
        assert_eq!((s.rate_limit_per_minute, s.rate_limit_burst), (0, 5));
        assert!(s.rate_limit_loopback);
        assert_eq!(s.client_ip_header.as_deref(), Some("X-Forwarded-For"));
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("saoma.toml");
        std::fs::write(&f, "max_delay_hours = 48\nhttp_addr = \"127.0.0.1:9000\"\n").unwrap();
        let s =
            Settings::load_from(Some(&f), &env(&[("SAOMA_HTTP_ADDR", "127.0.0.1:9001")])).unwrap();
        assert_eq!(s.max_delay_hours, 48);
        assert_eq!(s.http_addr.to_string(), "127.0.0.1:9001");
    }

    #[test]
    fn unknown_settings_and_bad_values_are_refused() {
        assert!(Settings::load_from(None, &env(&[("SAOMA_HTTP_ADR", "x")])).is_err());
        assert!(Settings::load_from(None, &env(&[("SAOMA_MAX_DELAY_HOURS", "x")])).is_err());
        assert!(
            Settings::load_from(None, &env(&[("SAOMA_VALIDITY_HOURS", "24")])).is_err(),
            "code validity comes from the region's rule set, not a global setting"
        );
        assert!(Settings::load_from(None, &env(&[("SAOMA_SEQUENCE_INTERVAL_MS", "0")])).is_err());
    }

    #[test]
    fn the_example_config_in_deploy_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/saoma.example.toml");
        let s = Settings::load_from(Some(&path), &[]).unwrap();
        assert_eq!(s.public_base_url(), "https://saoma.example.gov.cn");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Settings::load_from(
            None,
            &env(&[("SAOMA_DATABASE_URL", "postgres://u:pw@h/db")]),
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("pw"));
    }
}
