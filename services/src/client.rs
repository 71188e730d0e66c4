//! A small client for officers' apps and tools: signs commands with a device key and submits
//! them over HTTP. The simulator and the end-to-end tests use it.

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use saoma_domain::envelope::sign_envelope;
use saoma_domain::ids::OfficerRef;
use saoma_domain::inspection::OfficerCommand;
use saoma_domain::keys::PublicKey;
use serde_json::Value;
use uuid::Uuid;

/// An officer's device: who signs, and with which key.
#[derive(Clone)]
pub struct Device {
    pub officer: OfficerRef,
    pub key: SigningKey,
}

impl Device {
    pub fn new(officer: OfficerRef, key: SigningKey) -> Self {
        Device { officer, key }
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }

    /// A signed envelope for `command`, as the officer's app would send it.
    pub fn sign(
        &self,
        command: &OfficerCommand,
        device_time: DateTime<Utc>,
        command_id: Uuid,
    ) -> Value {
        sign_envelope(command, &self.officer, device_time, command_id, &self.key)
    }
}

/// What the service answered.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The machine-readable reason of a refusal.
    pub fn error_code(&self) -> Option<&str> {
        self.body.get("error")?.get("code")?.as_str()
    }
}

/// HTTP client for one `saoma serve`.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    admin_token: Option<String>,
}

impl Client {
    pub fn new(base: &str, admin_token: Option<String>) -> Self {
        Client {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("HTTP client"),
            base: base.trim_end_matches('/').to_string(),
            admin_token,
        }
    }

    async fn reply(response: reqwest::Response) -> anyhow::Result<Reply> {
        let status = response.status().as_u16();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Reply { status, body })
    }

    pub async fn submit(&self, envelope: &Value) -> anyhow::Result<Reply> {
        Self::reply(
            self.http
                .post(format!("{}/api/v1/commands", self.base))
                .json(envelope)
                .send()
                .await?,
        )
        .await
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Reply> {
        let mut req = self.http.get(format!("{}{}", self.base, path));
        if let Some(t) = &self.admin_token {
            req = req.bearer_auth(t);
        }
        Self::reply(req.send().await?).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        let mut req = self.http.post(format!("{}{}", self.base, path)).json(body);
        if let Some(t) = &self.admin_token {
            req = req.bearer_auth(t);
        }
        Self::reply(req.send().await?).await
    }

    /// Uploads a registry import (`kind` as in `/api/v1/admin/import/{kind}`).
    pub async fn import_csv(&self, kind: &str, csv: String) -> anyhow::Result<Reply> {
        let mut req = self
            .http
            .post(format!("{}/api/v1/admin/import/{kind}", self.base))
            .header("content-type", "text/csv")
            .body(csv);
        if let Some(t) = &self.admin_token {
            req = req.bearer_auth(t);
        }
        Self::reply(req.send().await?).await
    }
}
