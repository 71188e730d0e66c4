//! An ephemeral PostgreSQL server: `initdb` into a temp dir, `postgres` on a free loopback port.

use std::fs;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{ensure, Context, Result};
use tempfile::TempDir;

use crate::process::{self, Supervisor, STARTUP_TIMEOUT, STOP_TIMEOUT};

/// The superuser `initdb` creates; trust authentication, so no password.
const USER: &str = "saoma";
/// The database `start` creates and `url` points at.
const DEFAULT_DB: &str = "saoma";
/// Client programs the harness runs besides the server itself.
const PROGRAMS: [&str; 4] = ["initdb", "postgres", "pg_isready", "psql"];

/// A PostgreSQL server owned by a test, killed (process group) and its data removed on drop.
///
/// Durability settings are relaxed for speed, but only where a process crash cannot lose a
/// committed transaction: `fsync` and `full_page_writes` are off (they guard against OS crashes),
/// while `synchronous_commit` stays on, so data committed before `kill()` is there after
/// `restart()`. With `fsync=off` a commit is one `write()`, so keeping it costs little.
/// [`PgServer::start_durable`] keeps PostgreSQL's own defaults instead (every commit flushed to
/// disk), as in production: what benchmarks measure.
pub struct PgServer {
    durable: bool,
    /// `name=value` settings given after the harness's own, so they override them.
    settings: Vec<String>,
    supervisor: Supervisor,
    bin: PathBuf,
    port: u16,
    run_as: Option<(u32, u32)>,
    next_db: AtomicU32,
    dir: TempDir,
}

impl PgServer {
    /// Runs `initdb` and starts the server, with a database `saoma` created.
    pub fn start() -> Result<Self> {
        Self::start_with(false, Vec::new())
    }

    /// [`start`](Self::start), with PostgreSQL's default durability: `fsync` and
    /// `full_page_writes` on, every commit flushed to disk before it returns.
    pub fn start_durable() -> Result<Self> {
        Self::start_with(true, Vec::new())
    }

    /// [`start_durable`](Self::start_durable), with `settings` (`name=value`, as `-c` takes
    /// them) applied over the harness's own: how the benchmark runs the server as
    /// `deploy/postgres/saoma.conf` recommends.
    pub fn start_durable_with(settings: Vec<String>) -> Result<Self> {
        Self::start_with(true, settings)
    }

    /// Whether commits are flushed to disk (see [`PgServer::start_durable`]).
    pub fn is_durable(&self) -> bool {
        self.durable
    }

    fn start_with(durable: bool, settings: Vec<String>) -> Result<Self> {
        let bin = bin_dir().with_context(|| {
            format!(
                "postgres binaries ({}) not found on PATH or in /usr/lib/postgresql/*/bin",
                PROGRAMS.join(", ")
            )
        })?;
        let run_as = process::unprivileged_user()?;
        let dir = tempfile::Builder::new().prefix("saoma-pg-").tempdir()?;
        let sock = dir.path().join("sock");
        fs::create_dir(&sock)?;
        if let Some((uid, gid)) = run_as {
            for path in [dir.path(), &sock] {
                chown(path, Some(uid), Some(gid))
                    .with_context(|| format!("chown {}", path.display()))?;
            }
        }
        let supervisor = Supervisor::new(Some(dir.path()))?;
        let mut server = Self {
            durable,
            settings,
            supervisor,
            bin,
            port: 0,
            run_as,
            next_db: AtomicU32::new(1),
            dir,
        };
        server.initdb()?;
        let mut attempt = 1;
        loop {
            server.port = crate::free_port();
            match server.launch() {
                Ok(()) => break,
                Err(_)
                    if attempt < 5
                        && process::port_was_taken(&server.supervisor.log_since_spawn()) =>
                {
                    attempt += 1
                }
                Err(e) => return Err(e),
            }
        }
        server.create_database(DEFAULT_DB)?;
        Ok(server)
    }

    /// [`start`](Self::start), or `None` after a loud notice when the binaries are missing (a
    /// panic instead when `SAOMA_REQUIRE_SERVICES=1`). Panics when the server fails to start.
    pub fn start_or_skip() -> Option<Self> {
        if bin_dir().is_none() {
            return crate::skip("postgres binaries (initdb, postgres, pg_isready, psql)");
        }
        Some(Self::start().unwrap_or_else(|e| panic!("starting postgres: {e:#}")))
    }

    /// `postgres://saoma@127.0.0.1:PORT/saoma`.
    pub fn url(&self) -> String {
        self.url_for(DEFAULT_DB)
    }

    /// The URL of database `db` on this server.
    pub fn url_for(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// Creates database `name` (lower-case letters, digits and `_`) and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String> {
        let valid = name.len() < 64
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        ensure!(
            valid,
            "database name {name:?} is not a plain lower-case identifier"
        );
        self.psql(&format!("CREATE DATABASE {name}"))?;
        Ok(self.url_for(name))
    }

    /// Creates a database with a name unused on this server and returns its URL, so tests can
    /// share one server.
    pub fn fresh_database(&self) -> Result<String> {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        self.create_database(&format!("test_{n}"))
    }

    /// Whether the server process is still alive.
    pub fn is_running(&mut self) -> bool {
        self.supervisor.is_running()
    }

    /// SIGKILLs the server and all its backends, as a crash would.
    pub fn kill(&mut self) {
        self.supervisor.kill();
    }

    /// Fast shutdown (SIGINT), waiting for it; SIGKILL and an error after 30 s.
    pub fn stop(&mut self) -> Result<()> {
        self.supervisor
            .stop("INT", STOP_TIMEOUT)
            .context("stopping postgres")?;
        Ok(())
    }

    /// Starts the server again on the same data dir and port, stopping it first if it runs.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.launch()
    }

    fn initdb(&self) -> Result<()> {
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args([
                "-U",
                USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .context("running initdb")?;
        ensure!(
            out.status.success(),
            "initdb failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    fn launch(&mut self) -> Result<()> {
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path().join("sock"));
        let durability = match self.durable {
            true => ["fsync=on", "full_page_writes=on"],
            false => ["fsync=off", "full_page_writes=off"],
        };
        for setting in [
            "listen_addresses=127.0.0.1",
            "max_connections=200",
            "shared_buffers=32MB",
        ]
        .into_iter()
        .chain(durability)
        .chain(self.settings.iter().map(String::as_str))
        {
            cmd.args(["-c", setting]);
        }
        self.supervisor.spawn(&mut cmd, &self.log_path())?;
        let (isready, port) = (self.bin.join("pg_isready"), self.port.to_string());
        self.supervisor
            .wait_until("postgres", STARTUP_TIMEOUT, |s| {
                s.log_since_spawn().contains("ready to accept connections")
                    && Command::new(&isready)
                        .args([
                            "-q",
                            "-h",
                            "127.0.0.1",
                            "-p",
                            &port,
                            "-U",
                            USER,
                            "-d",
                            "postgres",
                            "-t",
                            "2",
                        ])
                        .status()
                        .is_ok_and(|s| s.success())
            })
    }

    fn psql(&self, sql: &str) -> Result<()> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
            ])
            .args(["-U", USER, "-d", "postgres", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .context("running psql")?;
        ensure!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// A server program run as the unprivileged user when the tests run as root.
    fn command(&self, program: &str) -> Command {
        let mut cmd = process::command_as(self.run_as, self.bin.join(program));
        // The test's working directory may not be readable by that user.
        cmd.current_dir(self.dir.path());
        cmd
    }
}

/// The directory holding all of [`PROGRAMS`]: that of `initdb` on `PATH` (symlinks resolved),
/// else the newest `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> Option<PathBuf> {
    let complete = |dir: &Path| {
        PROGRAMS
            .iter()
            .all(|p| process::is_executable(&dir.join(p)))
    };
    let on_path = process::find_program("initdb", &[])
        .and_then(|p| fs::canonicalize(p).ok())
        .and_then(|p| Some(p.parent()?.to_path_buf()));
    if let Some(dir) = on_path.filter(|d| complete(d)) {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin")))
        })
        .filter(|(_, dir)| complete(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

/// What `deploy/postgres/saoma.conf` recommends for a server holding a Saoma store, as `-c`
/// settings (`name=value`): its non-comment lines, in order.
pub fn recommended_settings() -> Vec<String> {
    parse_conf(include_str!("../../deploy/postgres/saoma.conf"))
}

/// `name = value` lines of a postgresql.conf-style file; `#` starts a comment.
fn parse_conf(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(|line| match line.split_once('=') {
            Some((name, value)) => format!("{}={}", name.trim(), value.trim()),
            None => panic!("not a `name = value` setting: {line}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deploy_settings_keep_durability_and_size_the_memory() {
        let settings = recommended_settings();
        assert!(
            settings.contains(&"shared_buffers=2GB".to_string()),
            "{settings:?}"
        );
        for relaxed in ["fsync", "full_page_writes", "synchronous_commit"] {
            assert!(
                !settings
                    .iter()
                    .any(|s| s.starts_with(&format!("{relaxed}="))),
                "{relaxed} must stay at PostgreSQL's default"
            );
        }
        assert_eq!(
            parse_conf("# comment\n\n a = 1 # why\nb=x y\n"),
            ["a=1", "b=x y"]
        );
    }
}
