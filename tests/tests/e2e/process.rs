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

/// `saoma ARGS` on the embedded store in `dir`, as an operator runs it there.
fn saoma_in(dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(saoma_binary().unwrap());
    command
        .args(args)
        .current_dir(dir)
        .env("SAOMA_DATA_DIR", dir.join("data"))
        .env_remove("SAOMA_DATABASE_URL");
    command
}

/// `saoma` run as an operator and an auditor would: a year backfilled, exported, verified
/// offline and audited (exit 0), then a bundle with one changed byte (exit 2, position named).
#[test]
fn export_verify_and_audit_exit_zero_only_on_an_untouched_log() {
    let dir = tempfile::tempdir().unwrap();
    let saoma = |args: &[&str]| saoma_in(dir.path(), args).output().unwrap();
    let succeeded = |out: &std::process::Output| {
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    use chrono::Datelike as _;
    let year = (chrono::Utc::now().year() - 1).to_string();
    succeeded(&saoma(&[
        "simulate",
        "--inspections",
        "40",
        "--seed",
        "3",
        "--backfill",
        &year,
    ]));
    let exported = succeeded(&saoma(&["export", "--out", "bundle"]));
    assert!(exported.starts_with("exported "), "{exported}");
    let verified = succeeded(&saoma(&["verify", "bundle"]));
    assert!(verified.contains("events hold"), "{verified}");
    let audited = succeeded(&saoma(&["audit"]));
    assert!(audited.contains("events hold"), "{audited}");

    let events = dir.path().join("bundle/events.jsonl");
    let text = std::fs::read_to_string(&events).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[9] = lines[9].replacen("\"recorded_at\":\"2", "\"recorded_at\":\"3", 1);
    assert_ne!(lines[9], text.lines().nth(9).unwrap());
    std::fs::write(&events, lines.join("\n") + "\n").unwrap();
    let broken = saoma(&["verify", "bundle"]);
    assert_eq!(broken.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("BROKEN at position 10"), "{stderr}");
}

/// `saoma replay` in a pipe, as a script or a CI job runs it: the reports are written and
/// stderr holds no progress bar (no "重放" line, no carriage return or cursor escape), even with
/// `TERM` claiming a capable terminal: only a real terminal on stderr gets the bar.
#[test]
fn replay_into_a_pipe_writes_the_reports_without_a_progress_bar() {
    let dir = tempfile::tempdir().unwrap();
    let saoma = |args: &[&str]| {
        saoma_in(dir.path(), args)
            .env("TERM", "xterm-256color")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    use chrono::Datelike as _;
    let year = (chrono::Utc::now().year() - 1).to_string();
    let backfill = saoma(&[
        "simulate",
        "--inspections",
        "60",
        "--seed",
        "4",
        "--backfill",
        &year,
    ]);
    assert!(
        backfill.status.success(),
        "{}",
        String::from_utf8_lossy(&backfill.stderr)
    );

    let replay = saoma(&["replay", "--out", "reports"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&replay.stdout),
        String::from_utf8_lossy(&replay.stderr),
    );
    assert!(replay.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("replayed "), "{stdout}");
    for bar in ["重放", "条事件", "\r", "\u{1b}["] {
        assert!(
            !stderr.contains(bar) && !stdout.contains(bar),
            "{bar:?} in a pipe:\nstdout: {stdout:?}\nstderr: {stderr:?}"
        );
    }
    let out = dir.path().join("reports");
    for file in [
        "history.csv",
        "warnings.csv",
        "satisfaction.csv",
        "frequency.csv",
        "summary.json",
        "report.html",
    ] {
        let len = std::fs::metadata(out.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .len();
        assert!(len > 0, "{file} is empty");
    }
    let history = std::fs::read_to_string(out.join("history.csv")).unwrap();
    assert!(
        history.lines().count() > 50,
        "{} lines of history.csv for 60 inspections",
        history.lines().count()
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(summary.is_object(), "{summary}");
}
