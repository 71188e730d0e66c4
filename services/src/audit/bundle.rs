//! Export bundles: the log in a folder that can be checked offline (`saoma verify DIR`), with
//! nothing but the files in it and, ideally, the notary key obtained some other way.
//!
//! - `events.jsonl`: one line per event in position order, `{"position":N,"event":{…}}`, the
//!   event exactly as stored;
//! - `checkpoints.jsonl`: every signed checkpoint, `{"tree_size":N,"note":"…"}`, by size;
//! - `keys.json`: the log's origin and the notary key. The officers' device keys are in the
//!   log itself, as the registry events that registered and revoked them;
//! - `manifest.json`: format, counts and the tree size the bundle's events end at.
//!
//! Layout and checks are specified in `schemas/VERIFY.md`.

use super::{check, pages, progress, Checkpoints, Finding, Report, Row, PAGE};
use crate::log::tree::LogTree;
use crate::store::Store;
use anyhow::{bail, Context as _};
use indicatif::ProgressBar;
use saoma_domain::keys::{KeyId, PublicKey};
use serde::{Deserialize, Serialize};
use std::io::{BufRead as _, BufWriter, Write as _};
use std::path::Path;

pub const FORMAT: &str = "saoma-bundle/1";

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub origin: String,
    pub events: u64,
    pub checkpoints: u64,
    /// The largest checkpoint's size: the bundle holds exactly the events it covers.
    pub tree_size: u64,
    pub exported_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Keys {
    pub origin: String,
    pub notary_keys: Vec<NotaryKey>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NotaryKey {
    pub key_id: KeyId,
    pub public_key: PublicKey,
}

#[derive(Serialize, Deserialize)]
struct CheckpointLine {
    tree_size: u64,
    note: String,
}

/// Signs a checkpoint of everything committed, then writes the log up to it into `out`.
pub async fn export(tree: &LogTree, store: &Store, out: &Path) -> anyhow::Result<Manifest> {
    let latest = tree
        .checkpoint_now()
        .await?
        .context("the log is empty: nothing to export")?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let file = |name: &str| -> anyhow::Result<BufWriter<std::fs::File>> {
        let path = out.join(name);
        Ok(BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        ))
    };

    let mut events = file("events.jsonl")?;
    let (mut after, mut written) = (0, 0u64);
    while after < latest.tree_size {
        let rows = store
            .events_after(after, (PAGE as u64).min(latest.tree_size - after))
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.position;
        for row in rows {
            // The stored text verbatim: the bundle is the store's bytes, not ours.
            writeln!(
                events,
                "{{\"position\":{},\"event\":{}}}",
                row.position, row.payload_text
            )?;
            written += 1;
        }
    }
    events.flush()?;
    if written != latest.tree_size {
        bail!(
            "the store holds {written} positioned events, fewer than checkpoint {} covers",
            latest.tree_size
        );
    }

    // Checkpoints signed meanwhile by a running service cover events not exported: left out.
    let mut stored = store.checkpoints(0, latest.tree_size).await?;
    stored.retain(|c| c.tree_size <= latest.tree_size);
    let mut notes = file("checkpoints.jsonl")?;
    for c in &stored {
        serde_json::to_writer(
            &mut notes,
            &CheckpointLine {
                tree_size: c.tree_size,
                note: c.note.clone(),
            },
        )?;
        writeln!(notes)?;
    }
    notes.flush()?;

    let key = tree.public_key();
    let keys = Keys {
        origin: tree.origin().to_string(),
        notary_keys: vec![NotaryKey {
            key_id: key.key_id(),
            public_key: key,
        }],
    };
    std::fs::write(out.join("keys.json"), serde_json::to_vec_pretty(&keys)?)?;
    let manifest = Manifest {
        format: FORMAT.into(),
        origin: tree.origin().to_string(),
        events: written,
        checkpoints: stored.len() as u64,
        tree_size: latest.tree_size,
        exported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    Ok(manifest)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text)
        .with_context(|| format!("{} is not what a bundle holds", path.display()))
}

/// `saoma verify DIR`: checks a bundle offline. `trusted` is the notary key to hold it to;
/// without one, the bundle's own `keys.json` is used (and should be compared with a key
/// obtained elsewhere).
pub async fn verify(
    dir: &Path,
    trusted: Option<PublicKey>,
    show_progress: bool,
) -> anyhow::Result<Result<Report, Finding>> {
    let manifest: Manifest = read_json(&dir.join("manifest.json"))?;
    if manifest.format != FORMAT {
        bail!(
            "{} is a {:?} bundle; this saoma reads {FORMAT}",
            dir.display(),
            manifest.format
        );
    }
    let keys: Keys = read_json(&dir.join("keys.json"))?;
    let notary = match trusted {
        Some(key) => key,
        None => match keys.notary_keys.as_slice() {
            [one] => one.public_key,
            _ => bail!("keys.json must hold exactly one notary key"),
        },
    };
    let path = dir.join("checkpoints.jsonl");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let lines = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str::<CheckpointLine>(line).with_context(|| {
                format!("{} line {}: not a checkpoint line", path.display(), i + 1)
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let checkpoints = Checkpoints::open(
        lines.iter().map(|l| (l.tree_size, l.note.as_str())),
        &notary,
        Some(&keys.origin),
    );
    let bar = if show_progress {
        progress(manifest.events, "验证")
    } else {
        ProgressBar::hidden()
    };
    let (sender, received) = pages();
    let events = dir.join("events.jsonl");
    let file =
        std::fs::File::open(&events).with_context(|| format!("opening {}", events.display()))?;
    // Lines are read on a thread of their own, a page at a time, ahead of the checks.
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::with_capacity(1 << 20, file).lines();
        let mut line_no = 0u64;
        loop {
            let mut page = Vec::with_capacity(PAGE);
            for line in lines.by_ref().take(PAGE) {
                line_no += 1;
                match line {
                    Ok(text) => page.push(Row::Line {
                        line: line_no,
                        text,
                    }),
                    Err(e) => {
                        let _ = sender.blocking_send(Err(anyhow::anyhow!(
                            "reading events.jsonl line {line_no}: {e}"
                        )));
                        return;
                    }
                }
            }
            if page.is_empty() || sender.blocking_send(Ok(page)).is_err() {
                return;
            }
        }
    });
    check(received, notary, checkpoints, None, bar).await
}
