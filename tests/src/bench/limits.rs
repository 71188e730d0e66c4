//! The machine's own limits for the work the ingest does, measured in the same run: ed25519
//! signing, single `verify_strict` and ed25519-dalek's batch verification (batches of 64 and of
//! the verifier's size) on one core, SHA-256 of 500-byte messages, and PostgreSQL `COPY` of
//! event-like rows.

use super::report::{thousands, Table};
use anyhow::{ensure, Context as _, Result};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Bytes per signed or hashed message: about the size of an envelope's canonical bytes.
pub const MESSAGE_BYTES: usize = 500;
/// Signatures per `verify_batch` call.
pub const BATCH: usize = 64;
/// Signatures per batch of `saoma verify` and `saoma replay`: ed25519-dalek's `verify_batch`
/// is measured at that size too, where it is faster than at [`BATCH`].
pub const LARGE_BATCH: usize = saoma_services::replay::SIGNATURE_BATCH;
/// Rows per `COPY` statement.
const COPY_ROWS: usize = 10_000;

/// Operations per second of `op`, called in rounds of `per_round` operations for `duration`.
fn rate(duration: Duration, per_round: usize, mut op: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    let mut done = 0usize;
    let mut round = 0usize;
    while start.elapsed() < duration {
        op(round);
        done += per_round;
        round += 1;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

fn messages(n: usize) -> Vec<Vec<u8>> {
    // Distinct messages: the batch's hashes and coefficients all differ.
    (0..n)
        .map(|i| {
            let mut m = vec![0u8; MESSAGE_BYTES];
            m[..8].copy_from_slice(&(i as u64).to_le_bytes());
            m
        })
        .collect()
}

/// One-core figures, each measured for `duration`.
#[derive(Debug, Clone, Copy)]
pub struct CryptoLimits {
    pub sign_per_s: f64,
    pub verify_strict_per_s: f64,
    pub verify_batch_per_s: f64,
    /// `verify_batch` of [`LARGE_BATCH`] signatures.
    pub verify_large_batch_per_s: f64,
    pub sha256_per_s: f64,
}

impl CryptoLimits {
    /// ed25519-dalek's best batch rate on one core: the yardstick for verifying in batches.
    pub fn best_batch_per_s(&self) -> f64 {
        self.verify_batch_per_s.max(self.verify_large_batch_per_s)
    }

    /// Each figure of `self` or `other`, whichever is higher: the stricter limit of two
    /// measurements (one before and one after what is measured against them).
    pub fn higher(&self, other: &CryptoLimits) -> CryptoLimits {
        CryptoLimits {
            sign_per_s: self.sign_per_s.max(other.sign_per_s),
            verify_strict_per_s: self.verify_strict_per_s.max(other.verify_strict_per_s),
            verify_batch_per_s: self.verify_batch_per_s.max(other.verify_batch_per_s),
            verify_large_batch_per_s: self
                .verify_large_batch_per_s
                .max(other.verify_large_batch_per_s),
            sha256_per_s: self.sha256_per_s.max(other.sha256_per_s),
        }
    }

    /// The batch-verification and SHA-256 rows, as both benchmarks print them; `when` follows
    /// each name (e.g. ", before").
    pub fn batch_and_sha_rows(&self, t: &mut Table, when: &str) {
        t.row(
            format!("ed25519 verify_batch of {BATCH}, {MESSAGE_BYTES} B, one core{when}"),
            format!("{} /s", thousands(self.verify_batch_per_s)),
            "≈ 50,000 /s",
        );
        t.row(
            format!("ed25519 verify_batch of {LARGE_BATCH}, {MESSAGE_BYTES} B, one core{when}"),
            format!("{} /s", thousands(self.verify_large_batch_per_s)),
            "",
        );
        t.row(
            format!("SHA-256 of {MESSAGE_BYTES} B, one core{when}"),
            format!("{} /s", thousands(self.sha256_per_s)),
            "> 2,000,000 /s",
        );
    }
}

/// Measures on the calling thread (one core).
pub fn crypto(duration: Duration) -> Result<CryptoLimits> {
    let keys: Vec<SigningKey> = (0..BATCH as u8)
        .map(|i| SigningKey::from_bytes(&[i.wrapping_add(1); 32]))
        .collect();
    let public: Vec<VerifyingKey> = keys.iter().map(SigningKey::verifying_key).collect();
    let messages = messages(BATCH);
    let signatures: Vec<Signature> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
    for ((k, m), s) in public.iter().zip(&messages).zip(&signatures) {
        k.verify_strict(m, s)
            .context("a signature of the limits run")?;
    }

    let sign_per_s = rate(duration, 1, |i| {
        black_box(keys[i % BATCH].sign(&messages[i % BATCH]));
    });
    let verify_strict_per_s = rate(duration, 1, |i| {
        let j = i % BATCH;
        black_box(public[j].verify_strict(&messages[j], &signatures[j])).expect("valid");
    });
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    ed25519_dalek::verify_batch(&refs, &signatures, &public).context("batch verification")?;
    let verify_batch_per_s = rate(duration, BATCH, |_| {
        black_box(ed25519_dalek::verify_batch(&refs, &signatures, &public)).expect("valid");
    });
    // ed25519-dalek gains nothing from keys that repeat, so 64 keys serve any batch size.
    let large: Vec<Vec<u8>> = self::messages(LARGE_BATCH);
    let large_refs: Vec<&[u8]> = large.iter().map(Vec::as_slice).collect();
    let large_signatures: Vec<Signature> = large
        .iter()
        .enumerate()
        .map(|(i, m)| keys[i % BATCH].sign(m))
        .collect();
    let large_public: Vec<VerifyingKey> = (0..LARGE_BATCH).map(|i| public[i % BATCH]).collect();
    ed25519_dalek::verify_batch(&large_refs, &large_signatures, &large_public)
        .context("large batch verification")?;
    let verify_large_batch_per_s = rate(duration, LARGE_BATCH, |_| {
        black_box(ed25519_dalek::verify_batch(
            &large_refs,
            &large_signatures,
            &large_public,
        ))
        .expect("valid");
    });
    let sha256_per_s = rate(duration, 1, |i| {
        black_box(Sha256::digest(&messages[i % BATCH]));
    });
    Ok(CryptoLimits {
        sign_per_s,
        verify_strict_per_s,
        verify_batch_per_s,
        verify_large_batch_per_s,
        sha256_per_s,
    })
}

/// `COPY` into a fresh table `table` shaped like the events table, `COPY_ROWS` rows per
/// statement on one connection, for `duration`; every row carries `payload` (JSON text).
/// Returns rows per second.
pub async fn copy(url: &str, table: &str, payload: &str, duration: Duration) -> Result<f64> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .context("connecting for COPY")?;
    ensure!(
        table.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "{table} is not a plain table name"
    );
    sqlx::query(&format!(
        "CREATE TABLE {table} (
            aggregate_type text NOT NULL,
            aggregate_id text NOT NULL,
            sequence bigint NOT NULL,
            event_type text NOT NULL,
            event_version text NOT NULL,
            payload json NOT NULL,
            metadata json NOT NULL,
            PRIMARY KEY (aggregate_type, aggregate_id, sequence)
        )"
    ))
    .execute(&mut conn)
    .await?;
    // COPY text format: tab-separated, with `\` escaped (JSON text has no tabs or newlines once
    // serialised compactly).
    let payload = payload.replace('\\', "\\\\");
    ensure!(
        !payload.contains(['\t', '\n', '\r']),
        "the sample payload is not compact JSON"
    );
    let start = Instant::now();
    let mut rows = 0usize;
    let mut batch = 0usize;
    while start.elapsed() < duration {
        let mut data = String::with_capacity(COPY_ROWS * (payload.len() + 80));
        for i in 0..COPY_ROWS {
            data.push_str(&format!(
                "Inspection\t{batch:08}-{i:08}\t1\tCodeIssued\t1\t{payload}\t{{}}\n"
            ));
        }
        let mut copy = conn
            .copy_in_raw(&format!(
                "COPY {table} (aggregate_type, aggregate_id, sequence, event_type, \
                 event_version, payload, metadata) FROM STDIN"
            ))
            .await?;
        copy.send(data.into_bytes()).await?;
        let copied = copy.finish().await?;
        ensure!(copied as usize == COPY_ROWS, "COPY took {copied} rows");
        rows += COPY_ROWS;
        batch += 1;
    }
    Ok(rows as f64 / start.elapsed().as_secs_f64())
}
