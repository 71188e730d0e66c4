//! `saoma serve` as a real process on the embedded default store: every kind of code through its
//! lifecycle, the README's walk-through script, and a restart that keeps everything.

use crate::support::{populate, TestApp};
use saoma_tests::{saoma_binary, SaomaCommand};

fn spawn(dir: &std::path::Path) -> saoma_tests::SaomaProcess {
    SaomaCommand::new(dir).spawn().expect("saoma serve starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_served_process_runs_every_lifecycle_and_keeps_its_data_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut saoma = tokio::task::block_in_place(|| spawn(dir.path()));
    let app = TestApp::at(&saoma.base_url(), saoma.admin_token());
    crate::lifecycle::every_kind_of_code_completes_its_lifecycle(app).await;
    let before = TestApp::at(&saoma.base_url(), saoma.admin_token())
        .event_count()
        .await;
    assert!(before > 20, "only {before} events");

    saoma.kill9();
    tokio::task::block_in_place(|| saoma.restart()).expect("restart after kill -9");
    let app = TestApp::at(&saoma.base_url(), saoma.admin_token());
    assert_eq!(
        app.event_count().await,
        before,
        "events lost or duplicated across kill -9"
    );
    // The registries come back from the store: the same population imports as unchanged.
    populate(&app).await;
    assert_eq!(app.event_count().await, before);
    let status = tokio::task::block_in_place(|| saoma.terminate()).expect("SIGTERM");
    assert!(status.success(), "graceful shutdown exit status {status:?}");
    assert!(
        dir.path().join("data/saoma.db").exists(),
        "the embedded store is in the data dir"
    );
    let key =
        std::fs::metadata(dir.path().join("data/keys/notary.key")).expect("notary key created");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777,
        0o600
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_walkthrough_runs_against_a_served_process() {
    let dir = tempfile::tempdir().unwrap();
    let saoma = tokio::task::block_in_place(|| spawn(dir.path()));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/walkthrough.sh");
    let output = tokio::task::block_in_place(|| {
        std::process::Command::new("bash")
            .arg(&script)
            .current_dir(dir.path())
            .env("BASE", saoma.base_url())
            .env("SAOMA", saoma_binary().unwrap())
            .env("SAOMA_ADMIN_TOKEN", saoma.admin_token())
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "walk-through failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("\"verified\":true"), "{stdout}");
    for event in [
        "CodeIssued",
        "CodeShown",
        "CodeScanned",
        "ResultReported",
        "RatingGiven",
    ] {
        assert!(stdout.contains(event), "{event} missing from:\n{stdout}");
    }
}
