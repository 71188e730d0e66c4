//! The global log's proofs, open to anyone (they reveal hashes, nothing else): the signed
//! checkpoints, inclusion and consistency proofs (RFC 9162), and the service's public keys.
//! Signing a checkpoint on demand is for administrators. Formats in `schemas/VERIFY.md`.

use super::admin::Admin;
use super::views::invalid;
use super::{ApiError, SharedState};
use crate::log::tree::TreeError;
use crate::store::StoredCheckpoint;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use saoma_domain::checkpoint;
use saoma_domain::merkle;
use serde::Deserialize;
use serde_json::{json, Value};

impl From<TreeError> for ApiError {
    fn from(e: TreeError) -> Self {
        match e {
            TreeError::Store(e) => e.into(),
            other => {
                tracing::error!(error = %other, "log tree");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "log_tree_inconsistent",
                    "日志默克尔树不一致，请联系运维人员",
                )
            }
        }
    }
}

fn number(param: &'static str, v: Option<&str>) -> Result<Option<u64>, ApiError> {
    v.map(|s| match s.parse::<u64>() {
        Ok(n) if n > 0 && s.len() <= 19 && !s.starts_with('0') => Ok(n),
        _ => Err(invalid(param, "expected a whole number from 1")),
    })
    .transpose()
}

fn no_checkpoint() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_checkpoint",
        "日志尚无该规模的签名检查点",
    )
}

/// The tree size a proof is for: the one asked for, which must be in the stored tree, or the
/// latest checkpoint's.
async fn tree_size(state: &SharedState, asked: Option<u64>) -> Result<u64, ApiError> {
    let store = state.app.store();
    match asked {
        Some(size) if size > store.tree_size().await? => {
            Err(
                ApiError::new(StatusCode::NOT_FOUND, "beyond_tree", "日志尚未达到该规模")
                    .detail(format!("tree_size {size} is larger than the log's tree")),
            )
        }
        Some(size) => Ok(size),
        None => Ok(store
            .latest_checkpoint()
            .await?
            .ok_or_else(no_checkpoint)?
            .tree_size),
    }
}

#[derive(Deserialize)]
pub struct CheckpointQuery {
    tree_size: Option<String>,
}

/// `GET /api/v1/log/checkpoint[?tree_size=N]`: the latest signed checkpoint (or the one of
/// that size) as its signed note, `text/plain`.
pub async fn checkpoint(
    State(state): State<SharedState>,
    query: Result<Query<CheckpointQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| invalid("query", &e.body_text()))?;
    let store = state.app.store();
    let found = match number("tree_size", q.tree_size.as_deref())? {
        Some(size) => store.checkpoint_of_size(size).await?,
        None => store.latest_checkpoint().await?,
    };
    let c = found.ok_or_else(no_checkpoint)?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        c.note,
    )
        .into_response())
}

fn checkpoint_json(c: &StoredCheckpoint) -> Value {
    json!({
        "tree_size": c.tree_size,
        "root": c.root,
        "note": c.note,
        "signed_at": c.signed_at,
    })
}

/// `POST /api/v1/admin/log/checkpoint`: positions what is committed and signs a checkpoint
/// of it now (the latest one again when nothing is new).
pub async fn sign_now(State(state): State<SharedState>, _: Admin) -> Result<Json<Value>, ApiError> {
    let signed = state
        .app
        .log_tree()
        .checkpoint_now()
        .await?
        .ok_or_else(no_checkpoint)?;
    Ok(Json(checkpoint_json(&signed)))
}

#[derive(Deserialize)]
pub struct InclusionQuery {
    position: Option<String>,
    event: Option<String>,
    tree_size: Option<String>,
}

/// `GET /api/v1/log/inclusion?position=P|event=ID[&tree_size=N]`: the inclusion proof of one
/// event in the tree of N leaves (the latest checkpoint's by default). Leaf index = P - 1.
pub async fn inclusion(
    State(state): State<SharedState>,
    query: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| invalid("query", &e.body_text()))?;
    let asked_size = number("tree_size", q.tree_size.as_deref())?;
    let store = state.app.store();
    let position = match (number("position", q.position.as_deref())?, q.event) {
        (Some(p), None) => p,
        (None, Some(id)) => {
            let Some((kind, aggregate, sequence)) = crate::store::event_id_parts(&id) else {
                return Err(invalid(
                    "event",
                    "expected {aggregate type}/{id}/{sequence}",
                ));
            };
            store
                .position_of(kind, aggregate, sequence)
                .await?
                .ok_or_else(|| {
                    ApiError::new(StatusCode::NOT_FOUND, "not_in_log", "该事件尚未进入日志")
                        .detail(format!("{id} is not stored or has no position yet"))
                })?
        }
        _ => {
            return Err(invalid(
                "position",
                "give exactly one of position and event",
            ))
        }
    };
    let size = tree_size(&state, asked_size).await?;
    if position > size {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_in_log",
            "该事件尚未进入该规模的日志",
        )
        .detail(format!("position {position} is beyond tree size {size}")));
    }
    let index = position - 1;
    let tree = state.app.log_tree();
    // The audit path and the leaf itself, read in one query.
    let (hashes, leaf) = tree
        .proof(|node| {
            Ok((
                merkle::inclusion_proof(index, size, &mut *node)?,
                node(0, index),
            ))
        })
        .await?;
    let event = store
        .events_after(index, 1)
        .await?
        .into_iter()
        .next()
        .map(|row| {
            format!(
                "{}/{}/{}",
                row.aggregate_type, row.aggregate_id, row.sequence
            )
        });
    Ok(Json(json!({
        "event": event,
        "position": position,
        "leaf_index": index,
        "leaf_hash": leaf,
        "tree_size": size,
        "hashes": hashes,
    })))
}

#[derive(Deserialize)]
pub struct ConsistencyQuery {
    first: Option<String>,
    second: Option<String>,
}

/// `GET /api/v1/log/consistency?first=M[&second=N]`: the proof that the tree of N leaves
/// (the latest checkpoint's by default) extends the tree of M.
pub async fn consistency(
    State(state): State<SharedState>,
    query: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| invalid("query", &e.body_text()))?;
    let first = number("first", q.first.as_deref())?.ok_or_else(|| invalid("first", "required"))?;
    let second = tree_size(&state, number("second", q.second.as_deref())?).await?;
    if first > second {
        return Err(invalid("first", "must not be larger than second"));
    }
    let hashes = state
        .app
        .log_tree()
        .proof(|node| merkle::consistency_proof(first, second, node))
        .await?;
    Ok(Json(json!({
        "first": first,
        "second": second,
        "hashes": hashes,
    })))
}

/// `GET /api/v1/log/keys`: the keys that sign this log's events and checkpoints. The notary key
/// is in force from the first event it notarised (null while the log is empty); there is one
/// notary key per log, so it has no end.
pub async fn keys(State(state): State<SharedState>) -> Result<Json<Value>, ApiError> {
    let tree = state.app.log_tree();
    let (key_id, key) = state.app.notary_key();
    let first = state.app.store().events_after(0, 1).await?;
    let valid_from = match first.first().map(|row| row.payload()).transpose() {
        Ok(event) => event.and_then(|e| {
            (e["notary"]["key_id"] == key_id.0.as_str()).then(|| e["meta"]["recorded_at"].clone())
        }),
        Err(_) => None,
    };
    Ok(Json(json!({
        "origin": tree.origin(),
        "keys": [{
            "key_id": key_id,
            "algorithm": "ed25519",
            "public_key": key,
            "note_verifier_key": checkpoint::verifier_key(tree.origin(), &key),
            "signs": ["events", "checkpoints"],
            "valid_from": valid_from,
            "valid_until": null,
        }],
    })))
}
