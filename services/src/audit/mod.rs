//! `saoma audit` (the live store) and `saoma verify DIR` (an export bundle, offline): the log
//! read in position order and checked as `schemas/VERIFY.md` says — every event's hash, chain
//! link, notary and officer signature, the officer's key valid when it signed — while the Merkle
//! tree is rebuilt from the events and its root compared with every signed checkpoint. The
//! audit also compares each event's leaf with the leaf the service's tree recorded at that
//! position, so a row changed, deleted, inserted or moved in the database is named where it is.
//!
//! Whatever the source, the checks run as a pipeline: pages are read ahead, parsed and hashed on
//! all cores, linked in position order on one task, and their signatures verified in batches on
//! all cores beside it. The first broken position is named, whatever broke there.

pub mod bundle;
pub mod filter;

use crate::replay::verify;
use crate::store::{Store, StoredCheckpoint};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use saoma_domain::canonical::Digest;
use saoma_domain::checkpoint::{self, Checkpoint};
use saoma_domain::keys::PublicKey;
use saoma_domain::merkle::{self, Frontier};
use saoma_domain::seal::LogLeaf;
use saoma_domain::verify::{prepare, prepare_canonical, Broken, Checked, LogVerifier, Prepared};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use tokio::sync::mpsc;

/// Events per page.
pub const PAGE: usize = 4_096;
/// Pages read and parsed ahead of the checks.
const READ_AHEAD: usize = 2;
/// Pages whose signatures may still be being verified while the next ones are linked.
const VERIFY_AHEAD: usize = 2;

/// The first thing found broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Finding {
    #[error(transparent)]
    Event(#[from] Broken),
    #[error("position {position}: missing, the log skips to position {found}")]
    Missing { position: u64, found: u64 },
    #[error("position {position}: not an event: {reason}")]
    Malformed { position: u64, reason: String },
    #[error(
        "position {position} ({stream}): not the event the log's tree holds at this position \
         (a row was changed, inserted, deleted or moved)"
    )]
    NotInTree { position: u64, stream: String },
    /// A checkpoint that does not hold; every smaller one held, so what changed lies in
    /// positions `held + 1 ..= size`.
    #[error(
        "checkpoint of tree size {size}: {what} (the checkpoints up to tree size {held} hold: \
         what changed lies in positions {} to {size})", held + 1
    )]
    Checkpoint { size: u64, held: u64, what: String },
    #[error("the log ends at position {end}, but checkpoint {size} covers {size} events")]
    Truncated { end: u64, size: u64 },
    /// A filtered bundle's event whose inclusion proof does not hold.
    #[error(
        "position {position} ({stream}): its inclusion proof does not tie it to the checkpoint \
         of tree size {size}"
    )]
    NotProven {
        position: u64,
        stream: String,
        size: u64,
    },
    /// A filtered bundle's event listed out of position order.
    #[error("position {position}: listed after position {after}, out of position order")]
    OutOfOrder { position: u64, after: u64 },
    /// A filtered bundle's checkpoint that does not hold, or is not consistent with the one its
    /// events are proven in.
    #[error("checkpoint of tree size {size}: {what}")]
    Inconsistent { size: u64, what: String },
}

impl Finding {
    /// The position at which it was found.
    pub fn position(&self) -> u64 {
        match self {
            Finding::Event(b) => b.position,
            Finding::Missing { position, .. }
            | Finding::Malformed { position, .. }
            | Finding::NotInTree { position, .. }
            | Finding::NotProven { position, .. }
            | Finding::OutOfOrder { position, .. } => *position,
            Finding::Checkpoint { size, .. }
            | Finding::Truncated { size, .. }
            | Finding::Inconsistent { size, .. } => *size,
        }
    }
}

/// One stored event as read: its JSON text, and its position, or a bundle line that holds both.
pub enum Row {
    Stored {
        position: u64,
        text: String,
    },
    /// `{"position": N, "event": {…}}`, expected at `line`'s position.
    Line {
        line: u64,
        text: String,
    },
}

/// What was checked, when everything held.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub checked: Checked,
    /// Leaves of the tree rebuilt from the events.
    pub tree_size: u64,
    pub root: Digest,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// The largest of them.
    pub latest_checkpoint: Option<u64>,
    /// Events compared with the leaves of the service's stored tree (audit only).
    pub leaves_compared: u64,
    /// Inclusion proofs checked (filtered bundles only).
    pub inclusion_proofs: u64,
}

/// What the events read are held to.
pub enum Coverage {
    /// The whole log from position 1: its tree is rebuilt and held to every checkpoint.
    Whole(Checkpoints),
    /// Some of the log's events, each with its inclusion proof in the tree of `size` leaves
    /// with `root`, the root of a checkpoint that held (with `checkpoints` in all).
    Proven {
        size: u64,
        root: Digest,
        checkpoints: u64,
    },
}

/// The checkpoints to hold the log to, by tree size: each note opened with the notary key, or
/// what is wrong with it (found when the log reaches its size, in position order).
#[derive(Default)]
pub struct Checkpoints {
    by_size: BTreeMap<u64, Vec<Result<Checkpoint, String>>>,
}

impl Checkpoints {
    /// Opens every note; `origin` is the log's, when known.
    pub fn open<'a>(
        notes: impl IntoIterator<Item = (u64, &'a str)>,
        key: &PublicKey,
        origin: Option<&str>,
    ) -> Self {
        let mut by_size: BTreeMap<u64, Vec<_>> = BTreeMap::new();
        for (size, note) in notes {
            let opened = checkpoint::open(note, key)
                .map_err(|e| format!("the note does not verify ({}): {e}", e.code()))
                .and_then(|c| {
                    if c.size != size {
                        Err(format!("the note is of tree size {}", c.size))
                    } else if origin.is_some_and(|o| o != c.origin) {
                        Err(format!("the note names another log, {:?}", c.origin))
                    } else {
                        Ok(c)
                    }
                });
            by_size.entry(size).or_default().push(opened);
        }
        Checkpoints { by_size }
    }

    /// Opens the store's checkpoints, also checking the columns beside each note.
    pub fn of_store(stored: &[StoredCheckpoint], key: &PublicKey, origin: Option<&str>) -> Self {
        let mut checkpoints = Self::open(
            stored.iter().map(|c| (c.tree_size, c.note.as_str())),
            key,
            origin,
        );
        for c in stored {
            for opened in checkpoints
                .by_size
                .get_mut(&c.tree_size)
                .into_iter()
                .flatten()
            {
                if matches!(opened, Ok(o) if o.root != c.root) {
                    *opened = Err("the stored root differs from the signed note's".into());
                }
            }
        }
        checkpoints
    }

    fn largest(&self) -> Option<u64> {
        self.by_size.keys().next_back().copied()
    }
}

/// Checks pages of rows read in position order. `stored_leaves` gives, for an audit, the leaf
/// hashes the service's tree recorded for a page's positions.
pub async fn check(
    pages: mpsc::Receiver<Page>,
    notary: PublicKey,
    coverage: Coverage,
    stored_leaves: Option<Store>,
    bar: ProgressBar,
) -> anyhow::Result<Result<Report, Finding>> {
    let mut verifier = LogVerifier::new([notary], true);
    let mut frontier = Frontier::new();
    let mut created = Vec::new();
    let (checkpoints, proven) = match coverage {
        Coverage::Whole(checkpoints) => (checkpoints, None),
        Coverage::Proven {
            size,
            root,
            checkpoints,
        } => (Checkpoints::default(), Some((size, root, checkpoints))),
    };
    let mut due = checkpoints.by_size.iter().peekable();
    let mut report = Report {
        latest_checkpoint: checkpoints.largest(),
        ..Report::default()
    };
    let mut held_up_to = 0;
    // The position of the last event read.
    let mut last = 0;
    let mut verifying = VecDeque::new();
    let mut prepared_pages = prepare_ahead(pages, proven.map(|(size, root, _)| (size, root)));
    while let Some(page) = prepared_pages.recv().await {
        let page = page?;
        let recorded = match (&stored_leaves, page.first()) {
            (Some(store), Some(first)) => {
                let from = first.position.saturating_sub(1);
                Some(store.tree_leaves(from, from + page.len() as u64).await?)
            }
            _ => None,
        };
        let mut checks = Vec::new();
        let mut found = None;
        for item in page {
            let position = item.position;
            let misplaced = match proven {
                None if position != last + 1 => Some(Finding::Missing {
                    position: last + 1,
                    found: position,
                }),
                Some(_) if position <= last => Some(Finding::OutOfOrder {
                    position,
                    after: last,
                }),
                _ => None,
            };
            if misplaced.is_some() {
                found = misplaced;
                break;
            }
            last = position;
            let (prepared, stream, leaf) = match item.prepared {
                Ok(ok) => ok,
                Err(finding) => {
                    found = Some(finding);
                    break;
                }
            };
            if let Err(b) = verifier.link(prepared, &mut checks) {
                found = Some(b.into());
                break;
            }
            if let Some(recorded) = &recorded {
                if let Some(expected) = recorded.get(&(position - 1)) {
                    report.leaves_compared += 1;
                    if *expected != leaf {
                        found = Some(Finding::NotInTree { position, stream });
                        break;
                    }
                }
            }
            if proven.is_some() {
                report.inclusion_proofs += 1;
                continue;
            }
            created.clear();
            frontier.push(leaf, &mut created);
            while let Some((&size, opened)) = due.next_if(|(&size, _)| size <= frontier.size()) {
                if let Some(what) = held(opened, &frontier) {
                    found = Some(Finding::Checkpoint {
                        size,
                        held: held_up_to,
                        what,
                    });
                    break;
                }
                report.checkpoints += opened.len() as u64;
                held_up_to = size;
            }
            if found.is_some() {
                break;
            }
        }
        bar.set_position(verifier.checked().events);
        verifying.push_back(verify(checks));
        while verifying.len() > VERIFY_AHEAD || (found.is_some() && !verifying.is_empty()) {
            if let Some(earlier) = verifying.pop_front() {
                if let Err(b) = earlier.await? {
                    return Ok(Err(b.into()));
                }
            }
        }
        if let Some(finding) = found {
            return Ok(Err(finding));
        }
    }
    for earlier in verifying {
        if let Err(b) = earlier.await? {
            return Ok(Err(b.into()));
        }
    }
    if let Some((&size, _)) = due.next() {
        return Ok(Err(Finding::Truncated {
            end: frontier.size(),
            size,
        }));
    }
    bar.finish_and_clear();
    report.checked = verifier.checked();
    match proven {
        None => {
            report.tree_size = frontier.size();
            report.root = frontier.root();
        }
        Some((size, root, checkpoints)) => {
            report.tree_size = size;
            report.root = root;
            report.checkpoints = checkpoints;
            report.latest_checkpoint = Some(size);
        }
    }
    Ok(Ok(report))
}

/// What is wrong with the checkpoints of the tree `frontier` has just reached, if anything.
fn held(opened: &[Result<Checkpoint, String>], frontier: &Frontier) -> Option<String> {
    let root = frontier.root();
    opened.iter().find_map(|c| match c {
        Err(what) => Some(what.clone()),
        Ok(c) if c.root != root => Some(format!(
            "its root {} is not the root {} of the log's first {} events",
            c.root,
            root,
            frontier.size()
        )),
        Ok(_) => None,
    })
}

/// An event parsed, hashed and read as a leaf, with its stream; or what made it unreadable.
struct PreparedRow {
    position: u64,
    prepared: Result<(Prepared, String, Digest), Finding>,
}

type PreparedPage = Vec<PreparedRow>;

/// Hashes each page on all cores, one page ahead of the caller, in order. A `Broken` from
/// step 1 is kept for the linking to report in order.
fn prepare_ahead(
    mut pages: mpsc::Receiver<Page>,
    proven_in: Option<(u64, Digest)>,
) -> mpsc::Receiver<anyhow::Result<PreparedPage>> {
    let (sender, received) = mpsc::channel(1);
    tokio::spawn(async move {
        while let Some(page) = pages.recv().await {
            let page = match page {
                Ok(rows) => tokio::task::spawn_blocking(move || prepare_page(rows, proven_in))
                    .await
                    .map_err(anyhow::Error::from),
                Err(e) => Err(e),
            };
            let failed = page.is_err();
            if sender.send(page).await.is_err() || failed {
                break;
            }
        }
    });
    received
}

/// `proven_in`: the tree size and root every row's inclusion proof must show it in.
fn prepare_page(rows: Vec<Row>, proven_in: Option<(u64, Digest)>) -> PreparedPage {
    rows.into_par_iter()
        .map(|row| prepare_row(row, proven_in))
        .collect()
}

fn prepare_row(row: Row, proven_in: Option<(u64, Digest)>) -> PreparedRow {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        position: u64,
        #[serde(borrow)]
        event: &'a RawValue,
        #[serde(default)]
        proof: Option<Vec<Digest>>,
    }
    let (position, text, proof) = match &row {
        Row::Stored { position, text } => (*position, Ok(text.as_str()), None),
        Row::Line { line, text } => match serde_json::from_str::<Line>(text) {
            Ok(l) => (l.position, Ok(l.event.get()), l.proof),
            Err(e) => (*line, Err(e), None),
        },
    };
    let malformed = |reason: String| Finding::Malformed { position, reason };
    let prepared = text
        .map_err(|e| malformed(format!("not JSON: {e}")))
        .and_then(|text| match prepare_canonical(position, text) {
            Some(prepared) => Ok(prepared),
            // Not in the form the service writes: parsed, so that what broke can be named.
            None => {
                let event: Value =
                    serde_json::from_str(text).map_err(|e| malformed(format!("not JSON: {e}")))?;
                LogLeaf::from_value(&event).map_err(|e| malformed(e.to_string()))?;
                Ok(prepare(position, &event)?)
            }
        })
        .and_then(|prepared| {
            let leaf = prepared.leaf().tree_hash();
            if let Some((size, root)) = proven_in {
                let proof = proof.unwrap_or_default();
                let index = position.wrapping_sub(1);
                if !merkle::verify_inclusion(index, size, &leaf, &proof, &root) {
                    return Err(Finding::NotProven {
                        position,
                        stream: prepared.stream().to_string(),
                        size,
                    });
                }
            }
            let stream = prepared.stream().to_string();
            Ok((prepared, stream, leaf))
        });
    PreparedRow { position, prepared }
}

/// A page of rows as a reader sends it to the checks.
pub type Page = anyhow::Result<Vec<Row>>;

/// Pages from a producer task, [`READ_AHEAD`] at most waiting.
pub fn pages() -> (mpsc::Sender<Page>, mpsc::Receiver<Page>) {
    mpsc::channel(READ_AHEAD)
}

/// A progress bar over `total` events (hidden when stderr is not a terminal).
pub fn progress(total: u64, verb: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {verb} {{pos}}/{{len}} 条事件 [{{bar:40}}] {{per_sec}} 剩余 {{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// `saoma audit`: the configured store's log against its own signed checkpoints and tree.
pub async fn audit(
    store: &Store,
    notary: PublicKey,
    origin: &str,
    show_progress: bool,
) -> anyhow::Result<Result<Report, Finding>> {
    let total = store.max_position().await?;
    let stored = store.checkpoints(0, u64::MAX >> 1).await?;
    let checkpoints = Checkpoints::of_store(&stored, &notary, Some(origin));
    let bar = if show_progress {
        progress(total, "审计")
    } else {
        ProgressBar::hidden()
    };
    let (sender, pages) = pages();
    let mut stored_pages = crate::replay::read_ahead(store.clone());
    tokio::spawn(async move {
        while let Some(page) = stored_pages.recv().await {
            let rows = page.map_err(anyhow::Error::from).map(|rows| {
                rows.into_iter()
                    .map(|r| Row::Stored {
                        position: r.position,
                        text: r.payload_text,
                    })
                    .collect()
            });
            if sender.send(rows).await.is_err() {
                break;
            }
        }
    });
    check(
        pages,
        notary,
        Coverage::Whole(checkpoints),
        Some(store.clone()),
        bar,
    )
    .await
}

/// `saoma export`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Directory for the bundle (created if missing; its bundle files are replaced).
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Without a filter, the whole log; with one, the inspections it selects, each event with
    /// its inclusion proof.
    #[command(flatten)]
    pub filter: filter::Filter,
}

/// `saoma verify`'s arguments.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The bundle's directory, as `saoma export` wrote it.
    pub dir: std::path::PathBuf,
    /// The notary public key (base64) to hold the bundle to, obtained independently of it
    /// (e.g. from `GET /api/v1/log/keys`); without it, the bundle's own keys.json is trusted.
    #[arg(long)]
    pub notary_key: Option<String>,
    /// Print what was checked as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `saoma audit`'s arguments.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Print what was checked as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

fn notary_signing_key(
    settings: &crate::config::Settings,
) -> anyhow::Result<ed25519_dalek::SigningKey> {
    let path = crate::serve::notary_key_path(settings);
    crate::keys::load_or_create_signing_key(&path, false)
        .map_err(|e| anyhow::anyhow!("reading the notary key {}: {e:#}", path.display()))
}

/// Prints the outcome; the process's exit code: 0 when everything held, 2 for a finding.
pub fn conclude(outcome: Result<Report, Finding>, json: bool, what: &str) -> anyhow::Result<i32> {
    match outcome {
        Ok(report) => {
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "{what}: all {} events hold ({} notary and {} officer signatures); tree of {} \
                     events, root {}; {} checkpoints, the latest of {} events",
                    report.checked.events,
                    report.checked.notary_signatures,
                    report.checked.officer_signatures,
                    report.tree_size,
                    report.root,
                    report.checkpoints,
                    report.latest_checkpoint.unwrap_or(0),
                );
            }
            Ok(0)
        }
        Err(finding) => {
            eprintln!(
                "{what}: BROKEN at position {}: {finding}",
                finding.position()
            );
            Ok(2)
        }
    }
}

pub async fn run_audit(
    settings: &crate::config::Settings,
    args: &AuditArgs,
) -> anyhow::Result<i32> {
    let store = crate::serve::open_store(settings).await?;
    let notary = PublicKey(notary_signing_key(settings)?.verifying_key());
    let outcome = audit(&store, notary, &settings.log_origin(), !args.json).await?;
    store.close().await;
    conclude(outcome, args.json, "audit")
}

pub async fn run_export(
    settings: &crate::config::Settings,
    args: &ExportArgs,
) -> anyhow::Result<bundle::Manifest> {
    let store = crate::serve::open_store(settings).await?;
    let key = notary_signing_key(settings)?;
    let public = PublicKey(key.verifying_key());
    let tree = crate::log::tree::LogTree::new(
        store.clone(),
        std::sync::Arc::new(key),
        public,
        settings.log_origin(),
    );
    let manifest = bundle::export(&tree, &store, &args.out, &args.filter).await;
    store.close().await;
    manifest
}

pub async fn run_verify(args: &VerifyArgs) -> anyhow::Result<i32> {
    let trusted = args
        .notary_key
        .as_deref()
        .map(|k| {
            PublicKey::from_base64(k)
                .ok_or_else(|| anyhow::anyhow!("--notary-key is not a base64 ed25519 public key"))
        })
        .transpose()?;
    let outcome = bundle::verify(&args.dir, trusted, !args.json).await?;
    conclude(outcome, args.json, "verify")
}
