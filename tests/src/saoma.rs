//! The `saoma` binary under test: built with cargo, run as `saoma serve`, health-checked.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use crate::process::{self, Supervisor, STARTUP_TIMEOUT, STOP_TIMEOUT};

/// The `SAOMA_ADMIN_TOKEN` a [`SaomaCommand`] passes unless told otherwise.
pub const DEFAULT_ADMIN_TOKEN: &str = "saoma-test-admin-token";

/// The path of an up-to-date `saoma` binary.
///
/// With `SAOMA_BIN` set, that file. Otherwise the harness runs
/// `cargo build -p saoma-services --bin saoma` in the workspace, once per test process, and takes
/// the path cargo reports, so the binary is never stale and `CARGO_TARGET_DIR` or a configured
/// target dir is honoured. Building when up to date takes about a second.
pub fn saoma_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("SAOMA_BIN") {
        let path = PathBuf::from(path);
        ensure!(
            process::is_executable(&path),
            "SAOMA_BIN={} is not an executable file",
            path.display()
        );
        return Ok(path);
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_saoma().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build_saoma() -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(Into::into))
        .unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?;
    let out = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "-p",
            "saoma-services",
            "--bin",
            "saoma",
            "--message-format=json-render-diagnostics",
        ])
        .output()
        .context("running cargo build for the saoma binary")?;
    ensure!(
        out.status.success(),
        "cargo build of saoma failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact" && message["target"]["name"] == "saoma" {
            if let Some(path) = message["executable"].as_str() {
                return Ok(path.into());
            }
        }
    }
    bail!("cargo build reported no saoma executable")
}

/// How to run `saoma serve`: its working dir, environment and arguments.
///
/// Inherited `SAOMA_*` variables are removed, so a developer's shell cannot leak into a test.
/// Defaults: `SAOMA_DATA_DIR=<work_dir>/data`, `SAOMA_ADMIN_TOKEN=`[`DEFAULT_ADMIN_TOKEN`], and
/// `SAOMA_HTTP_ADDR=127.0.0.1:<free port>` (set it with [`port`](Self::port), not `env`).
#[derive(Debug, Clone)]
pub struct SaomaCommand {
    work_dir: PathBuf,
    binary: Option<PathBuf>,
    port: Option<u16>,
    env: Vec<(String, String)>,
    args: Vec<String>,
}

impl SaomaCommand {
    pub fn new(work_dir: impl Into<PathBuf>) -> Self {
        let work_dir = work_dir.into();
        let data_dir = work_dir.join("data").to_string_lossy().into_owned();
        Self {
            work_dir,
            binary: None,
            port: None,
            env: Vec::new(),
            args: Vec::new(),
        }
        .env("SAOMA_DATA_DIR", data_dir)
        .env("SAOMA_ADMIN_TOKEN", DEFAULT_ADMIN_TOKEN)
    }

    /// Sets an environment variable; a later value for the same key wins.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Adds an argument after `serve`.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn database_url(self, url: impl Into<String>) -> Self {
        self.env("SAOMA_DATABASE_URL", url)
    }

    pub fn admin_token(self, token: impl Into<String>) -> Self {
        self.env("SAOMA_ADMIN_TOKEN", token)
    }

    pub fn data_dir(self, dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref().to_string_lossy().into_owned();
        self.env("SAOMA_DATA_DIR", dir)
    }

    /// Listens on this port instead of a free one, e.g. to stand in for a node that died.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Runs this binary instead of [`saoma_binary`].
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Spawns the server and waits (30 s at most) until `GET /healthz` answers 200; on failure the
    /// error carries the tail of its log.
    pub fn spawn(self) -> Result<SaomaProcess> {
        let binary = match &self.binary {
            Some(path) => path.clone(),
            None => saoma_binary()?,
        };
        fs::create_dir_all(self.work_dir.join("data"))?;
        let supervisor = Supervisor::new(None)?;
        let mut saoma = SaomaProcess {
            supervisor,
            binary,
            port: 0,
            command: self,
        };
        let mut attempt = 1;
        loop {
            saoma.port = saoma.command.port.unwrap_or_else(crate::free_port);
            match saoma.launch() {
                Ok(()) => return Ok(saoma),
                Err(_)
                    if saoma.command.port.is_none()
                        && attempt < 5
                        && process::port_was_taken(&saoma.supervisor.log_since_spawn()) =>
                {
                    attempt += 1
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A running `saoma serve`, killed (process group) on drop. Its stdout and stderr go to
/// `<work_dir>/saoma-<port>.log`, which outlives it.
pub struct SaomaProcess {
    supervisor: Supervisor,
    binary: PathBuf,
    port: u16,
    command: SaomaCommand,
}

impl SaomaProcess {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the running server (the leader of its process group), e.g. to read its
    /// memory from `/proc/<pid>/status`; `None` when it is not running.
    pub fn pid(&self) -> Option<u32> {
        self.supervisor.pid()
    }

    /// The `SAOMA_ADMIN_TOKEN` it was given.
    pub fn admin_token(&self) -> &str {
        let token = self
            .command
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "SAOMA_ADMIN_TOKEN");
        token.map_or("", |(_, v)| v)
    }

    pub fn log_path(&self) -> PathBuf {
        self.command
            .work_dir
            .join(format!("saoma-{}.log", self.port))
    }

    /// Everything it logged so far, across restarts.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        self.supervisor.is_running()
    }

    /// SIGKILLs it, as a crash would.
    pub fn kill9(&mut self) {
        self.supervisor.kill();
    }

    /// SIGTERM, then waits (30 s at most, then SIGKILL and an error) and returns its exit status.
    pub fn terminate(&mut self) -> Result<ExitStatus> {
        self.supervisor
            .stop("TERM", STOP_TIMEOUT)?
            .context("saoma never ran")
    }

    /// Runs it again with the same command and port, terminating it first if it runs.
    pub fn restart(&mut self) -> Result<()> {
        if self.is_running() {
            self.terminate()?;
        }
        self.launch()
    }

    fn launch(&mut self) -> Result<()> {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("serve")
            .args(&self.command.args)
            .current_dir(&self.command.work_dir);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SAOMA_") {
                cmd.env_remove(key);
            }
        }
        // Plain log lines in the log file; `.env("NO_COLOR", "")` turns colours back on.
        cmd.env("NO_COLOR", "1");
        cmd.envs(self.command.env.iter().map(|(k, v)| (k, v)));
        cmd.env("SAOMA_HTTP_ADDR", format!("127.0.0.1:{}", self.port));
        self.supervisor.spawn(&mut cmd, &self.log_path())?;
        let port = self.port;
        self.supervisor
            .wait_until("saoma serve", STARTUP_TIMEOUT, |_| {
                http_status(port, "/healthz") == Some(200)
            })
    }
}

/// The status code of `GET path` on the loopback port, over a bare HTTP/1.1 request so that
/// waiting needs no async runtime.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = Vec::new();
    stream.take(32).read_to_end(&mut head).ok()?;
    let head = String::from_utf8_lossy(&head);
    head.strip_prefix("HTTP/1.")?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
