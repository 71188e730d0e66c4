//! The global log's Merkle tree over HTTP: the served checkpoints are signed notes that open
//! with the served key, their roots are the roots of the stored events' leaves, and the served
//! inclusion and consistency proofs verify against them, while altered ones do not.

use crate::log::visits;
use crate::support::*;
use saoma_domain::canonical::Digest;
use saoma_domain::checkpoint::{self, Checkpoint};
use saoma_domain::keys::PublicKey;
use saoma_domain::merkle;
use saoma_domain::seal::LogLeaf;
use saoma_services::store::Store;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn digest(v: &Value) -> Digest {
    Digest::from_hex(v.as_str().expect("a hex digest")).expect("a hex digest")
}

fn digests(v: &Value) -> Vec<Digest> {
    v.as_array().expect("an array").iter().map(digest).collect()
}

/// The leaf hashes of every stored event, in position order, computed here from the rows.
async fn leaves(store: &Store) -> Vec<Digest> {
    let rows = store.events_after(0, 1_000_000).await.unwrap();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.position, i as u64 + 1, "positions without gaps");
    }
    rows.iter()
        .map(|row| LogLeaf::from_stored(&row.payload_text).unwrap().tree_hash())
        .collect()
}

async fn served_checkpoint(app: &TestApp, key: &PublicKey, query: &str) -> Checkpoint {
    let reply = app
        .public
        .get(&format!("/api/v1/log/checkpoint{query}"))
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let note = reply.body.as_str().expect("a signed note as text");
    checkpoint::open(note, key).expect("the served note opens with the served key")
}

async fn refused(app: &TestApp, path: &str, status: u16, code: &str) {
    let reply = app.public.get(path).await.unwrap();
    assert_eq!(reply.status, status, "{path}: {:?}", reply.body);
    assert_eq!(reply.body["error"]["code"], code, "{path}");
}

pub async fn the_served_proofs_verify_against_the_served_checkpoints(backend: Backend) {
    let app = spawn_app_with(backend, None).await;
    let w = populate(&app).await;
    visits(&app, &w, 12).await;
    let store = saoma_services::serve::open_store(app.settings.as_ref().unwrap())
        .await
        .unwrap();

    let keys = app.public.get("/api/v1/log/keys").await.unwrap();
    assert_eq!(keys.status, 200, "{:?}", keys.body);
    let origin = keys.body["origin"].as_str().unwrap().to_string();
    let key = PublicKey::from_base64(keys.body["keys"][0]["public_key"].as_str().unwrap()).unwrap();
    assert_eq!(
        keys.body["keys"][0]["note_verifier_key"],
        checkpoint::verifier_key(&origin, &key)
    );

    // Every committed event enters a signed checkpoint by itself, within the interval.
    let total = app.event_count().await as u64;
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        let reply = app.public.get("/api/v1/log/checkpoint").await.unwrap();
        if reply.status == 200 {
            let c = checkpoint::open(reply.body.as_str().unwrap(), &key).unwrap();
            if c.size == total {
                break c;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of all {total} events"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(first.origin, origin);
    // The key is in force from the first event it notarised, with no end.
    let keys = app.public.get("/api/v1/log/keys").await.unwrap();
    let first_event = store.events_after(0, 1).await.unwrap()[0]
        .payload()
        .unwrap();
    assert_eq!(
        keys.body["keys"][0]["valid_from"],
        first_event["meta"]["recorded_at"]
    );
    assert!(keys.body["keys"][0]["valid_until"].is_null());
    let leaves_then = leaves(&store).await;
    assert_eq!(first.root, merkle::root(&leaves_then[..total as usize]));

    // The log grows; a checkpoint signed on demand covers it at once.
    visits(&app, &w, 5).await;
    let signed = app
        .client
        .post_json("/api/v1/admin/log/checkpoint", &json!({}))
        .await
        .unwrap();
    assert_eq!(signed.status, 200, "{:?}", signed.body);
    let size = signed.body["tree_size"].as_u64().unwrap();
    assert_eq!(size, app.event_count().await as u64);
    let all = leaves(&store).await;
    let root = merkle::root(&all);
    assert_eq!(digest(&signed.body["root"]), root);
    let latest = served_checkpoint(&app, &key, "").await;
    assert_eq!((latest.size, latest.root), (size, root));
    let again = served_checkpoint(&app, &key, &format!("?tree_size={}", first.size)).await;
    assert_eq!(again, first, "earlier checkpoints are kept");

    // Inclusion: of every event, by position, in the latest tree; and by event id.
    for position in 1..=size {
        let reply = app
            .public
            .get(&format!("/api/v1/log/inclusion?position={position}"))
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let (index, proof) = (position - 1, digests(&reply.body["hashes"]));
        let leaf = all[index as usize];
        assert_eq!(digest(&reply.body["leaf_hash"]), leaf);
        assert_eq!(reply.body["tree_size"], size);
        assert!(
            merkle::verify_inclusion(index, size, &leaf, &proof, &root),
            "position {position}"
        );
        // An altered proof, or the proof of another leaf, does not verify.
        if let Some(first_hash) = proof.first() {
            let mut altered = proof.clone();
            altered[0].0[0] ^= 1;
            assert!(!merkle::verify_inclusion(
                index, size, &leaf, &altered, &root
            ));
            assert_ne!(first_hash, &leaf);
        }
        let other = all[((index + 1) % size) as usize];
        assert!(!merkle::verify_inclusion(
            index, size, &other, &proof, &root
        ));
    }
    let event = app
        .public
        .get("/api/v1/log/inclusion?position=7")
        .await
        .unwrap()
        .body["event"]
        .as_str()
        .unwrap()
        .to_string();
    let by_id = app
        .public
        .get(&format!(
            "/api/v1/log/inclusion?event={event}&tree_size={}",
            first.size
        ))
        .await
        .unwrap();
    assert_eq!(by_id.status, 200, "{:?}", by_id.body);
    assert_eq!(by_id.body["position"], 7);
    assert!(merkle::verify_inclusion(
        6,
        first.size,
        &all[6],
        &digests(&by_id.body["hashes"]),
        &first.root
    ));

    // Consistency: the first checkpoint's tree, and every smaller one, is a prefix of the latest.
    for old in 1..=size {
        let reply = app
            .public
            .get(&format!("/api/v1/log/consistency?first={old}"))
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(reply.body["second"], size);
        let proof = digests(&reply.body["hashes"]);
        let old_root = merkle::root(&all[..old as usize]);
        assert!(
            merkle::verify_consistency(old, size, &old_root, &root, &proof),
            "{old} → {size}"
        );
        if old < size {
            let mut wrong = old_root;
            wrong.0[31] ^= 1;
            assert!(!merkle::verify_consistency(
                old, size, &wrong, &root, &proof
            ));
        }
    }
    let between = app
        .public
        .get(&format!(
            "/api/v1/log/consistency?first={}&second={size}",
            first.size
        ))
        .await
        .unwrap();
    assert!(merkle::verify_consistency(
        first.size,
        size,
        &first.root,
        &latest.root,
        &digests(&between.body["hashes"])
    ));

    // Bad questions get a reason and change nothing.
    let beyond = size + 1;
    for (path, status, code) in [
        (
            "/api/v1/log/inclusion?position=0".to_string(),
            422,
            "invalid_query",
        ),
        (
            "/api/v1/log/inclusion?position=x".to_string(),
            422,
            "invalid_query",
        ),
        ("/api/v1/log/inclusion".to_string(), 422, "invalid_query"),
        (
            "/api/v1/log/inclusion?position=1&event=a/b/1".to_string(),
            422,
            "invalid_query",
        ),
        (
            "/api/v1/log/inclusion?event=nonsense".to_string(),
            422,
            "invalid_query",
        ),
        (
            "/api/v1/log/inclusion?event=Inspection/none/1".to_string(),
            404,
            "not_in_log",
        ),
        (
            format!("/api/v1/log/inclusion?position={beyond}"),
            404,
            "not_in_log",
        ),
        (
            format!("/api/v1/log/inclusion?position=1&tree_size={}", size + 1000),
            404,
            "beyond_tree",
        ),
        ("/api/v1/log/consistency".to_string(), 422, "invalid_query"),
        (
            format!("/api/v1/log/consistency?first={beyond}&second={size}"),
            422,
            "invalid_query",
        ),
        (
            "/api/v1/log/checkpoint?tree_size=3".to_string(),
            404,
            "no_checkpoint",
        ),
        (
            "/api/v1/log/checkpoint?tree_size=-1".to_string(),
            422,
            "invalid_query",
        ),
    ] {
        refused(&app, &path, status, code).await;
    }
    let unsigned = app
        .public
        .post_json("/api/v1/admin/log/checkpoint", &json!({}))
        .await
        .unwrap();
    assert_eq!(unsigned.status, 401, "{:?}", unsigned.body);
    assert_eq!(served_checkpoint(&app, &key, "").await, latest);
}
