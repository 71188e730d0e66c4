//! Export bundles: the log in a folder that can be checked offline (`saoma verify DIR`), with
//! nothing but the files in it and, ideally, the notary key obtained some other way.
//!
//! - `events.jsonl`: one line per event in position order, `{"position":N,"event":{…}}`, the
//!   event exactly as stored; in a filtered bundle only the selected streams' events, each with
//!   `"proof"`, its inclusion proof in the tree of the bundle's size;
//! - `checkpoints.jsonl`: every signed checkpoint, `{"tree_size":N,"note":"…"}`, by size; in a
//!   filtered bundle each with `"consistency"`, the proof that the bundle's tree extends it;
//! - `keys.json`: the log's origin and the notary key. The officers' device keys are in the
//!   log itself, as the registry events that registered and revoked them;
//! - `manifest.json`: format, counts, the tree size the bundle's events end at and, when
//!   filtered, the filter.
//!
//! Layout and checks are specified in `schemas/VERIFY.md`.

use super::filter::{self, Filter};
use super::{check, progress, Checkpoints, Coverage, Finding, Report, Row, PAGE};
use crate::log::tree::LogTree;
use crate::store::{LoggedRow, Store};
use anyhow::{bail, Context as _};
use indicatif::ProgressBar;
use saoma_domain::canonical::Digest;
use saoma_domain::checkpoint;
use saoma_domain::keys::{KeyId, PublicKey};
use saoma_domain::merkle;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{BufRead as _, BufWriter, Write as _};
use std::path::Path;
use tokio::sync::mpsc;

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
    /// What a filtered bundle selected; absent for the whole log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
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
    /// Filtered bundles: the consistency proof from this checkpoint to the bundle's tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consistency: Option<Vec<Digest>>,
}

/// Signs a checkpoint of everything committed, then writes the log up to it into `out`: all
/// of it, or what `filter` selects with the proofs that tie it to that checkpoint.
pub async fn export(
    tree: &LogTree,
    store: &Store,
    out: &Path,
    filter: &Filter,
) -> anyhow::Result<Manifest> {
    let latest = tree
        .checkpoint_now()
        .await?
        .context("the log is empty: nothing to export")?;
    let size = latest.tree_size;
    let selection = if filter.is_empty() {
        None
    } else {
        Some(filter::select(store, size, filter).await?)
    };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let file = |name: &str| -> anyhow::Result<BufWriter<std::fs::File>> {
        let path = out.join(name);
        Ok(BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        ))
    };

    let mut events = file("events.jsonl")?;
    let (mut after, mut read, mut written) = (0, 0u64, 0u64);
    while after < size {
        let mut rows = store
            .events_after(after, (PAGE as u64).min(size - after))
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.position;
        read += rows.len() as u64;
        let proofs = match &selection {
            None => None,
            Some(selected) => {
                rows.retain(|r| selected.holds(&r.aggregate_type, &r.aggregate_id));
                let proofs = tree
                    .proof(|node| {
                        rows.iter()
                            .map(|r| merkle::inclusion_proof(r.position - 1, size, &mut *node))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .await?;
                Some(proofs)
            }
        };
        for (i, row) in rows.iter().enumerate() {
            // The stored text verbatim: the bundle is the store's bytes, not ours.
            write!(
                events,
                "{{\"position\":{},\"event\":{}",
                row.position, row.payload_text
            )?;
            if let Some(proofs) = &proofs {
                write!(events, ",\"proof\":{}", serde_json::to_string(&proofs[i])?)?;
            }
            writeln!(events, "}}")?;
            written += 1;
        }
    }
    events.flush()?;
    if read != size {
        bail!("the store holds {read} positioned events, fewer than checkpoint {size} covers");
    }

    // Checkpoints signed meanwhile by a running service cover events not exported: left out.
    let mut stored = store.checkpoints(0, size).await?;
    stored.retain(|c| c.tree_size <= size);
    let mut notes = file("checkpoints.jsonl")?;
    for c in &stored {
        let consistency = match selection {
            None => None,
            Some(_) if c.tree_size == size => Some(Vec::new()),
            Some(_) => Some(
                tree.proof(|node| merkle::consistency_proof(c.tree_size, size, node))
                    .await?,
            ),
        };
        serde_json::to_writer(
            &mut notes,
            &CheckpointLine {
                tree_size: c.tree_size,
                note: c.note.clone(),
                consistency,
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
        tree_size: size,
        exported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        filter: selection.is_some().then(|| filter.clone()),
    };
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    Ok(manifest)
}

/// A filtered bundle's checkpoints: the one of the bundle's size must verify, and every other
/// must verify and be consistent with it. The coverage its events are held to, or the first
/// checkpoint (by size) that does not hold.
fn proven_coverage(
    lines: &[CheckpointLine],
    size: u64,
    notary: &PublicKey,
    origin: &str,
) -> Result<Coverage, Finding> {
    let open = |line: &CheckpointLine| {
        let inconsistent = |what: String| Finding::Inconsistent {
            size: line.tree_size,
            what,
        };
        let c = checkpoint::open(&line.note, notary)
            .map_err(|e| inconsistent(format!("the note does not verify ({}): {e}", e.code())))?;
        if c.size != line.tree_size {
            return Err(inconsistent(format!("the note is of tree size {}", c.size)));
        }
        if c.origin != origin {
            return Err(inconsistent(format!(
                "the note names another log, {:?}",
                c.origin
            )));
        }
        Ok(c)
    };
    let latest = lines
        .iter()
        .find(|l| l.tree_size == size)
        .ok_or_else(|| Finding::Inconsistent {
            size,
            what: "the bundle has no checkpoint of its own tree size".into(),
        })
        .and_then(open)?;
    let mut sorted: Vec<&CheckpointLine> = lines.iter().collect();
    sorted.sort_by_key(|l| l.tree_size);
    for line in sorted {
        let c = open(line)?;
        let proof = line.consistency.as_deref().unwrap_or_default();
        if !merkle::verify_consistency(c.size, size, &c.root, &latest.root, proof) {
            return Err(Finding::Inconsistent {
                size: c.size,
                what: format!(
                    "its root {} is not proven consistent with the bundle's checkpoint of tree \
                     size {size}",
                    c.root
                ),
            });
        }
    }
    Ok(Coverage::Proven {
        size,
        root: latest.root,
        checkpoints: lines.len() as u64,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text)
        .with_context(|| format!("{} is not what a bundle holds", path.display()))
}

/// A bundle's manifest and keys, and the notary key it holds (its only one).
fn open(dir: &Path) -> anyhow::Result<(Manifest, Keys, PublicKey)> {
    let manifest: Manifest = read_json(&dir.join("manifest.json"))?;
    if manifest.format != FORMAT {
        bail!(
            "{} is a {:?} bundle; this saoma reads {FORMAT}",
            dir.display(),
            manifest.format
        );
    }
    let keys: Keys = read_json(&dir.join("keys.json"))?;
    let key = match keys.notary_keys.as_slice() {
        [one] => one.public_key,
        _ => bail!("keys.json must hold exactly one notary key"),
    };
    Ok((manifest, keys, key))
}

/// Lines of `events.jsonl`, read a page at a time on a thread of their own, ahead of whoever
/// takes them; `row` turns each line (numbered from 1) into what the caller reads. A read
/// error, or `row`'s, is sent as the last page.
fn read_lines<T: Send + 'static>(
    dir: &Path,
    row: impl Fn(u64, String) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<mpsc::Receiver<anyhow::Result<Vec<T>>>> {
    let events = dir.join("events.jsonl");
    let file =
        std::fs::File::open(&events).with_context(|| format!("opening {}", events.display()))?;
    let (sender, received) = mpsc::channel(super::READ_AHEAD);
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::with_capacity(1 << 20, file).lines();
        let mut line_no = 0u64;
        loop {
            let mut page = Vec::with_capacity(PAGE);
            for line in lines.by_ref().take(PAGE) {
                line_no += 1;
                let read = line
                    .map_err(|e| anyhow::anyhow!("reading events.jsonl line {line_no}: {e}"))
                    .and_then(|text| row(line_no, text));
                match read {
                    Ok(read) => page.push(read),
                    Err(e) => {
                        let _ = sender.blocking_send(Err(e));
                        return;
                    }
                }
            }
            if page.is_empty() || sender.blocking_send(Ok(page)).is_err() {
                return;
            }
        }
    });
    Ok(received)
}

/// A bundle's events as pages of the store's rows.
pub type LoggedPages = mpsc::Receiver<anyhow::Result<Vec<LoggedRow>>>;

/// A bundle's events as the store's rows, for a replay: its manifest, its notary key and the
/// pages. The event text is the line's as written by [`export`]; a line written otherwise is
/// parsed and its event written out again (its hash is over the canonical form either way).
pub fn logged_rows(dir: &Path) -> anyhow::Result<(Manifest, PublicKey, LoggedPages)> {
    let (manifest, _, key) = open(dir)?;
    Ok((manifest, key, read_lines(dir, logged_row)?))
}

fn logged_row(line: u64, text: String) -> anyhow::Result<LoggedRow> {
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        stream: std::borrow::Cow<'a, str>,
        sequence: u64,
        #[serde(borrow)]
        event: Type<'a>,
    }
    #[derive(Deserialize)]
    struct Type<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    let not_an_event = || format!("events.jsonl line {line}: not a bundle's event line");
    let (position, payload_text) = match exported_line(&text) {
        Some((position, event)) => (position, event.to_string()),
        None => {
            #[derive(Deserialize)]
            struct Line {
                position: u64,
                event: Value,
            }
            let l: Line = serde_json::from_str(&text).with_context(not_an_event)?;
            (l.position, l.event.to_string())
        }
    };
    let (aggregate_type, aggregate_id, sequence, event_type) = {
        let head: Head = serde_json::from_str(&payload_text).with_context(not_an_event)?;
        let (kind, id) = head
            .stream
            .split_once('/')
            .with_context(|| format!("events.jsonl line {line}: a stream without its type"))?;
        (
            kind.to_string(),
            id.to_string(),
            head.sequence,
            head.event.kind.into_owned(),
        )
    };
    Ok(LoggedRow {
        position,
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        payload_text,
    })
}

/// `{"position":N,"event":…}` exactly as [`export`] writes a whole log's line: the position
/// and the event's text.
fn exported_line(text: &str) -> Option<(u64, &str)> {
    let rest = text.strip_prefix("{\"position\":")?;
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    let position = rest[..digits].parse().ok()?;
    let event = rest[digits..]
        .strip_prefix(",\"event\":")?
        .strip_suffix('}')?;
    Some((position, event))
}

/// `saoma verify DIR`: checks a bundle offline. `trusted` is the notary key to hold it to;
/// without one, the bundle's own `keys.json` is used (and should be compared with a key
/// obtained elsewhere).
pub async fn verify(
    dir: &Path,
    trusted: Option<PublicKey>,
    show_progress: bool,
) -> anyhow::Result<Result<Report, Finding>> {
    let (manifest, keys, own) = open(dir)?;
    let notary = trusted.unwrap_or(own);
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
    let coverage = if manifest.filter.is_some() {
        match proven_coverage(&lines, manifest.tree_size, &notary, &keys.origin) {
            Ok(coverage) => coverage,
            Err(finding) => return Ok(Err(finding)),
        }
    } else {
        Coverage::Whole(Checkpoints::open(
            lines.iter().map(|l| (l.tree_size, l.note.as_str())),
            &notary,
            Some(&keys.origin),
        ))
    };
    let bar = if show_progress {
        progress(manifest.events, "验证")
    } else {
        ProgressBar::hidden()
    };
    let received = read_lines(dir, |line, text| Ok(Row::Line { line, text }))?;
    check(received, notary, coverage, None, bar).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str =
        r#"{"event":{"type":"CodeShown"},"sequence":2,"stream":"Inspection/0b5e6f3c"}"#;

    #[test]
    fn an_exported_line_gives_its_event_text_verbatim() {
        let line = format!(r#"{{"position":12,"event":{EVENT}}}"#);
        assert_eq!(exported_line(&line), Some((12, EVENT)));
        let row = logged_row(1, line).unwrap();
        assert_eq!(row.position, 12);
        assert_eq!(row.payload_text, EVENT);
        assert_eq!(
            (row.aggregate_type.as_str(), row.aggregate_id.as_str()),
            ("Inspection", "0b5e6f3c")
        );
        assert_eq!((row.sequence, row.event_type.as_str()), (2, "CodeShown"));
    }

    #[test]
    fn a_line_written_otherwise_is_read_as_json() {
        let line = format!(r#"{{ "event": {EVENT}, "position": 7, "proof": [] }}"#);
        assert_eq!(exported_line(&line), None);
        let row = logged_row(3, line).unwrap();
        assert_eq!(row.position, 7);
        let text: Value = serde_json::from_str(&row.payload_text).unwrap();
        assert_eq!(text, serde_json::from_str::<Value>(EVENT).unwrap());
        let refused = logged_row(4, r#"{"position":1}"#.into()).unwrap_err();
        assert!(refused.to_string().contains("line 4"), "{refused:#}");
    }
}
