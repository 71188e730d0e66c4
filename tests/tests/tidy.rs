//! Keeps the architecture's rules true: the domain does no IO, every module says what it holds,
//! and no test is silenced.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn all_sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for krate in ["domain", "projections", "services", "tests"] {
        rust_files(&root().join(krate), &mut files);
    }
    assert!(files.len() > 10, "found only {} files", files.len());
    files
}

#[test]
fn the_domain_crate_depends_on_no_io_crate() {
    for krate in ["domain", "projections"] {
        let manifest = std::fs::read_to_string(root().join(krate).join("Cargo.toml")).unwrap();
        let deps = manifest.split("[dev-dependencies]").next().unwrap();
        for io in [
            "tokio",
            "sqlx",
            "postgres-es",
            "sqlite-es",
            "async-nats",
            "axum",
            "reqwest",
            "hyper",
        ] {
            assert!(
                !deps
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{io} "))
                        || l.trim_start().starts_with(&format!("{io}."))),
                "{krate} must not depend on {io}"
            );
        }
    }
}

#[test]
fn every_module_starts_with_a_doc_line() {
    for file in all_sources() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} does not start with a `//!` line",
            file.display()
        );
    }
}

#[test]
fn no_test_is_ignored_or_expects_a_panic() {
    let (ignore, should_panic) = (["#[", "ignore]"].concat(), ["#[", "should_panic"].concat());
    for file in all_sources() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(&ignore), "{} ignores a test", file.display());
        assert!(
            !text.contains(&should_panic),
            "{} uses should_panic; assert on the error",
            file.display()
        );
    }
}
