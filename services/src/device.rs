//! `saoma device`: what an officer's app does, from the command line — make a device key and
//! sign a command with it. Used in the README's walk-through and by integration scripts.

use crate::keys::{load_or_create_secret, load_or_create_signing_key};
use anyhow::Context as _;
use saoma_domain::envelope::sign_envelope;
use saoma_domain::ids::{BadgeNo, CertificateNo, OfficerRef};
use saoma_domain::inspection::OfficerCommand;
use saoma_domain::keys::PublicKey;
use std::io::Read as _;
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum DeviceCommand {
    /// Create a device key file (mode 0600) and print its public key and key id.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a command read from standard input; print the envelope to send.
    Sign {
        #[arg(long)]
        key: PathBuf,
        /// Certificate number (执法证号), or `警<badge>` for police (then also --name).
        #[arg(long)]
        officer: String,
        /// Police officer's name, for `警<badge>`.
        #[arg(long)]
        name: Option<String>,
        /// Device time (RFC 3339); now when absent.
        #[arg(long)]
        time: Option<chrono::DateTime<chrono::Utc>>,
    },
}

pub fn run(command: DeviceCommand) -> anyhow::Result<()> {
    match command {
        DeviceCommand::Keygen { out } => {
            if out.exists() {
                anyhow::bail!("{} exists already", out.display());
            }
            load_or_create_secret(&out, true)?;
            let key = PublicKey(load_or_create_signing_key(&out, false)?.verifying_key());
            println!(
                "{}",
                serde_json::json!({ "key_id": key.key_id(), "public_key": key })
            );
            Ok(())
        }
        DeviceCommand::Sign {
            key,
            officer,
            name,
            time,
        } => {
            let signing = load_or_create_signing_key(&key, false)?;
            let officer = match officer.strip_prefix('警') {
                Some(badge) => OfficerRef::Police {
                    badge_no: BadgeNo::parse(badge)?,
                    name: name.context("--name is required for police officers")?,
                },
                None => OfficerRef::Certificate(CertificateNo::parse(&officer)?),
            };
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            let command: OfficerCommand =
                serde_json::from_str(&text).context("the command on standard input")?;
            let envelope = sign_envelope(
                &command,
                &officer,
                time.unwrap_or_else(chrono::Utc::now),
                uuid::Uuid::new_v4(),
                &signing,
            );
            println!("{}", serde_json::to_string_pretty(&envelope)?);
            Ok(())
        }
    }
}
