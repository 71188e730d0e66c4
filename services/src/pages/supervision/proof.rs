//! `/supervision/proof`: the latest signed checkpoint and, for an event asked for by its log
//! position or id, its inclusion proof checked against that checkpoint — the event's stored
//! bytes hashed again, its notary signature, its leaf hash, the audit path up to the root the
//! notary signed, and the checkpoint's signature — each step shown with its inputs, so that
//! the supervisor can repeat it with an independent verifier (`schemas/VERIFY.md`).

use super::{field, unavailable, Supervisor};
use crate::http::SharedState;
use crate::store::StoredCheckpoint;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use saoma_domain::canonical::Digest;
use saoma_domain::checkpoint::{self, Checkpoint, NoteError};
use saoma_domain::{merkle, verify};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct ProofQuery {
    position: Option<String>,
    event: Option<String>,
}

/// One step of the check: what was checked, whether it holds, and its inputs.
struct Step {
    what: &'static str,
    holds: bool,
    detail: String,
}

/// What was found for the event asked for.
enum Outcome {
    /// Not an event of the log, or not in the latest checkpoint yet: why.
    Unknown(String),
    Checked {
        position: u64,
        event: String,
        steps: Vec<Step>,
        path: Vec<Digest>,
    },
}

impl Outcome {
    fn holds(&self) -> bool {
        matches!(self, Outcome::Checked { steps, .. } if steps.iter().all(|s| s.holds))
    }
}

/// The log position asked for, if one was: given directly, or of the event id
/// `{type}/{id}/{sequence}`; `Err` says why there is no such position.
async fn position(
    state: &SharedState,
    q: &ProofQuery,
) -> Result<Option<Result<u64, String>>, Response> {
    if let Some(p) = field(&q.position) {
        return Ok(Some(
            p.parse::<u64>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| "日志位置应为正整数。".to_string()),
        ));
    }
    let Some(id) = field(&q.event) else {
        return Ok(None);
    };
    let Some((kind, aggregate, sequence)) = crate::store::event_id_parts(id) else {
        return Ok(Some(Err(
            "事件编号应为“类型/编号/序号”，如 Inspection/…/1。".to_string(),
        )));
    };
    match state
        .app
        .store()
        .position_of(kind, aggregate, sequence)
        .await
    {
        Ok(found) => {
            Ok(Some(found.ok_or_else(|| {
                "未找到该事件，或它尚未进入日志。".to_string()
            })))
        }
        Err(e) => Err(unavailable(e)),
    }
}

/// Checks the event at `position` against the checkpoint `signed` (already opened).
async fn check(
    state: &SharedState,
    position: u64,
    signed: &Checkpoint,
) -> Result<Outcome, Response> {
    if position > signed.size {
        return Ok(Outcome::Unknown(format!(
            "日志位置 {position} 尚未包含在最新的签名检查点（共 {} 条）中，请稍后再试。",
            signed.size
        )));
    }
    let store = state.app.store();
    let index = position - 1;
    let row = match store.events_after(index, 1).await {
        Ok(rows) => rows.into_iter().next(),
        Err(e) => return Err(unavailable(e)),
    };
    let Some(row) = row.filter(|r| r.position == position) else {
        return Ok(Outcome::Unknown(format!(
            "日志中没有位置 {position} 的事件。"
        )));
    };
    let event = format!(
        "{}/{}/{}",
        row.aggregate_type, row.aggregate_id, row.sequence
    );
    let prepared = row
        .payload()
        .map_err(|e| e.to_string())
        .and_then(|v| verify::prepare(position, &v).map_err(|b| b.to_string()));
    let (key_id, public) = state.app.notary_key();
    let (mut steps, leaf) = match &prepared {
        Ok(p) => {
            let leaf = p.leaf();
            let sealed = Step {
                what: "系统公证签名有效（对事件哈希的 ed25519 签名）",
                holds: leaf.notary.key_id == key_id
                    && public.verify(&leaf.hash.0, &leaf.notary.signature),
                detail: format!("公证密钥 {}", leaf.notary.key_id.0),
            };
            let hashed = Step {
                what: "事件内容与其哈希一致",
                holds: p.hash_matches(),
                detail: format!("事件哈希 {}", leaf.hash.to_hex()),
            };
            (vec![hashed, sealed], Some(leaf.tree_hash()))
        }
        Err(e) => (
            vec![Step {
                what: "事件内容与其哈希一致",
                holds: false,
                detail: format!("无法读取存储的事件：{e}"),
            }],
            None,
        ),
    };
    let size = signed.size;
    let proven = state
        .app
        .log_tree()
        .proof(|node| {
            Ok((
                merkle::inclusion_proof(index, size, &mut *node)?,
                node(0, index),
            ))
        })
        .await;
    let (path, tree_leaf) = match proven {
        Ok(p) => p,
        Err(e) => return Err(unavailable(e)),
    };
    if let Some(leaf) = leaf {
        steps.push(Step {
            what: "叶哈希 = SHA-256(0x00 ‖ 叶数据)，与日志树中的叶一致",
            holds: leaf == tree_leaf,
            detail: format!("叶哈希 {}", leaf.to_hex()),
        });
        steps.push(Step {
            what: "由叶哈希与审计路径算出的根哈希 = 签名检查点的根哈希",
            holds: merkle::verify_inclusion(index, size, &leaf, &path, &signed.root),
            detail: format!(
                "叶序号 {index}，树规模 {size}，根哈希 {}",
                signed.root.to_hex()
            ),
        });
    }
    Ok(Outcome::Checked {
        position,
        event,
        steps,
        path,
    })
}

fn checkpoint_section(
    stored: &StoredCheckpoint,
    opened: &Result<Checkpoint, NoteError>,
    key_id: &str,
) -> Markup {
    html! {
        section.card {
            h2 { "最新签名检查点" }
            @match opened {
                Ok(c) => p.ok { "✓ 公证签名有效（密钥 " code { (key_id) } "）：日志共 " strong { (c.size) } " 条事件。" }
                Err(e) => p.error { "✗ 检查点签名无效：" code { (e.code()) } }
            }
            p.muted { "签名时间 " (stored.signed_at) }
            pre.note { (stored.note) }
        }
    }
}

fn outcome_section(outcome: &Outcome) -> Markup {
    match outcome {
        Outcome::Unknown(why) => html! {
            section.banner.bad role="alert" { h1 { "无法验证" } p { (why) } }
        },
        Outcome::Checked {
            position,
            event,
            steps,
            path,
        } => {
            let holds = outcome.holds();
            html! {
                section class={ "banner " @if holds { "ok" } @else { "bad" } } role="status" {
                    h1 { @if holds { "验证通过" } @else { "验证未通过" } }
                    p {
                        "日志位置 " (position) " 的事件 " code.id { (event) }
                        @if holds { " 包含在签名检查点中，其内容未被改动。" }
                        @else { " 未能证明包含在签名检查点中，请向运维与监督人员报告。" }
                    }
                }
                section.card {
                    h2 { "验证步骤" }
                    ol.steps {
                        @for s in steps {
                            li class=(if s.holds { "ok" } else { "bad" }) {
                                (if s.holds { "✓ " } else { "✗ " }) (s.what) br;
                                span.muted.hash { (s.detail) }
                            }
                        }
                    }
                    h2 { "审计路径（" (path.len()) " 个哈希）" }
                    ol.path { @for h in path { li { code { (h.to_hex()) } } } }
                    p.muted {
                        "可独立复核：GET /api/v1/log/inclusion?position=" (position)
                        " 与 /api/v1/log/checkpoint，按 schemas/VERIFY.md 计算。"
                    }
                }
            }
        }
    }
}

/// `GET /supervision/proof[?position=P|event=ID]`.
pub async fn proof(
    State(state): State<SharedState>,
    supervisor: Supervisor,
    query: Result<Query<ProofQuery>, QueryRejection>,
) -> Response {
    let q = query.map_or(
        ProofQuery {
            position: None,
            event: None,
        },
        |Query(q)| q,
    );
    let stored = match state.app.store().latest_checkpoint().await {
        Ok(c) => c,
        Err(e) => return unavailable(e),
    };
    let (key_id, public) = state.app.notary_key();
    let asked = match position(&state, &q).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let mut status = StatusCode::OK;
    let (checkpoint, outcome) = match &stored {
        None => (
            html! { section.card { h2 { "最新签名检查点" } p { "日志尚无签名检查点。" } } },
            None,
        ),
        Some(stored) => {
            let opened = checkpoint::open(&stored.note, &public);
            let outcome = match (&asked, &opened) {
                (None, _) => None,
                (Some(Err(why)), _) => {
                    status = StatusCode::NOT_FOUND;
                    Some(Outcome::Unknown(why.clone()))
                }
                (Some(Ok(p)), Ok(signed)) => match check(&state, *p, signed).await {
                    Ok(o) => Some(o),
                    Err(r) => return r,
                },
                (Some(Ok(_)), Err(_)) => Some(Outcome::Unknown(
                    "最新检查点的签名无效，无法据此验证。".to_string(),
                )),
            };
            (checkpoint_section(stored, &opened, &key_id.0), outcome)
        }
    };
    let value = |v: &Option<String>| field(v).unwrap_or_default().to_string();
    let body = html! {
        h1 { "存证核验" }
        p.muted { "每条事件都在全局默克尔日志中有唯一位置；系统定期签署检查点。输入事件的日志位置或事件编号，验证它包含在最新的签名检查点中。" }
        @if let Some(o) = &outcome { (outcome_section(o)) }
        form.search.filters method="get" action="/supervision/proof" {
            label.field { "日志位置" input type="text" name="position" value=(value(&q.position)) inputmode="numeric" maxlength="19"; }
            label.field { "或事件编号" input type="text" name="event" value=(value(&q.event)) maxlength="120" placeholder="Inspection/…/1"; }
            button type="submit" { "验证包含证明" }
        }
        (checkpoint)
    };
    supervisor.page(&state, status, "存证核验", body)
}
