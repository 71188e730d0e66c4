//! Key material: the notary signing key and the code-token key, created on first start in the
//! data dir (mode 0600) or loaded from a configured path. Only this module reads key files.

use anyhow::{bail, Context as _};
use ed25519_dalek::SigningKey;
use rand::RngCore as _;
use std::io::Write as _;
use std::path::Path;

/// Reads a 32-byte secret stored as 64 hex characters, creating it with fresh randomness
/// when `create` is set and the file does not exist.
pub fn load_or_create_secret(path: &Path, create: bool) -> anyhow::Result<[u8; 32]> {
    if !path.exists() {
        if !create {
            bail!("key file {} does not exist", path.display());
        }
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        write_private(path, hex::encode(secret).as_bytes())?;
        tracing::info!(path = %path.display(), "created a new key");
        return Ok(secret);
    }
    check_permissions(path)?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut out)
        .with_context(|| format!("{} must hold 64 hex characters", path.display()))?;
    Ok(out)
}

pub fn load_or_create_signing_key(path: &Path, create: bool) -> anyhow::Result<SigningKey> {
    Ok(SigningKey::from_bytes(&load_or_create_secret(
        path, create,
    )?))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        bail!(
            "key file {} is readable by others (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_with_mode_0600_and_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/notary.key");
        let a = load_or_create_signing_key(&path, true).unwrap();
        let b = load_or_create_signing_key(&path, true).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn a_missing_key_is_an_error_when_creation_is_off() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_or_create_signing_key(&dir.path().join("none.key"), false).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_world_readable_key_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        std::fs::write(&path, hex::encode([1u8; 32])).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_or_create_secret(&path, true).is_err());
    }
}
