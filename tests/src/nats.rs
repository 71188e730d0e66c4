//! An ephemeral NATS server with JetStream: `nats-server -js` on a free loopback port.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use tempfile::TempDir;

use crate::process::{self, Supervisor, STARTUP_TIMEOUT, STOP_TIMEOUT};

const EXTRA_DIRS: [&str; 3] = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"];

/// A NATS server owned by a test, killed and its JetStream store removed on drop.
pub struct NatsServer {
    supervisor: Supervisor,
    bin: PathBuf,
    port: u16,
    dir: TempDir,
}

impl NatsServer {
    /// Starts `nats-server -js` with its store in a fresh temp dir.
    pub fn start() -> Result<Self> {
        let bin = process::find_program("nats-server", &EXTRA_DIRS)
            .context("nats-server not found on PATH or in /usr/sbin")?;
        let dir = tempfile::Builder::new().prefix("saoma-nats-").tempdir()?;
        let supervisor = Supervisor::new(Some(dir.path()))?;
        let mut server = Self {
            supervisor,
            bin,
            port: 0,
            dir,
        };
        let mut attempt = 1;
        loop {
            server.port = crate::free_port();
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(_)
                    if attempt < 5
                        && process::port_was_taken(&server.supervisor.log_since_spawn()) =>
                {
                    attempt += 1
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// [`start`](Self::start), or `None` after a loud notice when `nats-server` is missing (a
    /// panic instead when `SAOMA_REQUIRE_SERVICES=1`). Panics when the server fails to start.
    pub fn start_or_skip() -> Option<Self> {
        if process::find_program("nats-server", &EXTRA_DIRS).is_none() {
            return crate::skip("nats-server");
        }
        Some(Self::start().unwrap_or_else(|e| panic!("starting nats-server: {e:#}")))
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory, kept across restarts.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats.log")
    }

    /// Whether the server process is still alive.
    pub fn is_running(&mut self) -> bool {
        self.supervisor.is_running()
    }

    /// SIGKILLs the server, as a crash would.
    pub fn kill(&mut self) {
        self.supervisor.kill();
    }

    /// Graceful shutdown (SIGINT), waiting for it; SIGKILL and an error after 30 s.
    pub fn stop(&mut self) -> Result<()> {
        self.supervisor
            .stop("INT", STOP_TIMEOUT)
            .context("stopping nats-server")?;
        Ok(())
    }

    /// Starts the server again with the same store and port, stopping it first if it runs.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.launch()
    }

    fn launch(&mut self) -> Result<()> {
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-sd",
        ])
        .arg(self.store_dir())
        .current_dir(self.dir.path());
        self.supervisor.spawn(&mut cmd, &self.log_path())?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        self.supervisor
            .wait_until("nats-server", STARTUP_TIMEOUT, |s| {
                // The log line proves the listener is ours, not another test's on a reused port.
                s.log_since_spawn().contains("Server is ready")
                    && TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
            })
    }
}
