//! Process plumbing shared by the servers: process groups, signals, bounded waits, logs and an
//! orphan watchdog.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

/// How long a server may take to become ready before the harness gives up.
pub(crate) const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful stop may take before the harness sends SIGKILL.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads a `sh` watchdog's stdin, one process-group id per line (empty: none). When the pipe closes
/// — also when the test process dies without running destructors, e.g. a server kept in a
/// `static` — it kills the last group and removes the directory in `$1`, so no server outlives its
/// test run. Waiting on the pipe, rather than polling, costs no processes while the test runs.
const WATCHDOG: &str = r#"pg=
while IFS= read -r line; do pg=$line; done
[ -n "$pg" ] && env kill -s KILL -- "-$pg"
[ -n "$1" ] && rm -rf -- "$1"
:"#;

/// One supervised server process at a time, each the leader of its own process group, so that a
/// signal reaches everything it forked.
pub(crate) struct Supervisor {
    running: Option<Child>,
    last_exit: Option<ExitStatus>,
    log: PathBuf,
    log_from: u64,
    watchdog: Child,
    pipe: Option<ChildStdin>,
}

impl Supervisor {
    /// Starts the watchdog; `remove_on_orphan` is deleted if the test process dies first.
    pub(crate) fn new(remove_on_orphan: Option<&Path>) -> Result<Self> {
        let mut watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "saoma-watchdog"])
            .arg(remove_on_orphan.map(Path::as_os_str).unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("spawning the watchdog shell")?;
        let pipe = watchdog.stdin.take();
        Ok(Self {
            running: None,
            last_exit: None,
            log: PathBuf::new(),
            log_from: 0,
            watchdog,
            pipe,
        })
    }

    /// Spawns `cmd` in a new process group, its stdout and stderr appended to `log`.
    pub(crate) fn spawn(&mut self, cmd: &mut Command, log: &Path) -> Result<()> {
        ensure!(
            !self.is_running(),
            "{:?} is already running",
            cmd.get_program()
        );
        let file = OpenOptions::new().create(true).append(true).open(log)?;
        self.log_from = file.metadata()?.len();
        self.log = log.to_path_buf();
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .process_group(0);
        let child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
        self.tell_watchdog(Some(child.id()));
        self.running = Some(child);
        self.last_exit = None;
        Ok(())
    }

    /// The id of the running process (the leader of its group), if one runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(Child::id)
    }

    /// Reaps the process if it has exited, and says whether it still runs.
    pub(crate) fn is_running(&mut self) -> bool {
        self.poll();
        self.running.is_some()
    }

    /// SIGKILLs the whole process group and reaps the leader; a no-op when nothing runs.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.running.take() {
            signal(&format!("-{}", child.id()), "KILL");
            let _ = child.kill();
            self.last_exit = child.wait().ok();
            self.tell_watchdog(None);
        }
    }

    /// Sends `sig` to the leader and waits for it to exit, then SIGKILLs the group if it did not.
    /// Returns the exit status of the last process, if any ran.
    pub(crate) fn stop(&mut self, sig: &str, timeout: Duration) -> Result<Option<ExitStatus>> {
        let Some(child) = &self.running else {
            return Ok(self.last_exit);
        };
        signal(&child.id().to_string(), sig);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if !self.is_running() {
                return Ok(self.last_exit);
            }
            sleep(Duration::from_millis(20));
        }
        self.kill();
        bail!(
            "did not exit within {timeout:?} of SIG{sig}, so it was killed; log:\n{}",
            self.log_excerpt()
        )
    }

    /// Polls `ready` until it holds, failing with the log tail when the process exits first or
    /// `timeout` passes (then the process is killed).
    pub(crate) fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut(&Self) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            // Checked after `ready`, so a port answered by someone else's server does not count.
            let ready_now = ready(self);
            if let Some(status) = self.poll() {
                bail!(
                    "{what} exited ({status}) before it was ready; log:\n{}",
                    self.log_excerpt()
                );
            }
            ensure!(self.running.is_some(), "{what} is not running");
            if ready_now {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                bail!(
                    "{what} was not ready within {timeout:?}, so it was killed; log:\n{}",
                    self.log_excerpt()
                );
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// What the process logged since it was last spawned.
    pub(crate) fn log_since_spawn(&self) -> String {
        let bytes = fs::read(&self.log).unwrap_or_default();
        let from = usize::try_from(self.log_from).unwrap_or(0).min(bytes.len());
        String::from_utf8_lossy(&bytes[from..]).into_owned()
    }

    /// What was logged since the last spawn, cut to its first 20 and last 40 lines: a fatal
    /// error often comes first, followed by a long backtrace.
    pub(crate) fn log_excerpt(&self) -> String {
        let log = self.log_since_spawn();
        let lines: Vec<&str> = log.lines().collect();
        if lines.len() <= 60 {
            return lines.join("\n");
        }
        let cut = lines.len() - 60;
        format!(
            "{}\n[... {cut} lines ...]\n{}",
            lines[..20].join("\n"),
            lines[lines.len() - 40..].join("\n")
        )
    }

    fn poll(&mut self) -> Option<ExitStatus> {
        let status = self.running.as_mut()?.try_wait().ok()??;
        self.running = None;
        self.last_exit = Some(status);
        self.tell_watchdog(None);
        Some(status)
    }

    fn tell_watchdog(&mut self, pgid: Option<u32>) {
        if let Some(pipe) = &mut self.pipe {
            let _ = writeln!(pipe, "{}", pgid.map(|p| p.to_string()).unwrap_or_default());
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.kill();
        // Killed rather than told: the owner removes its own directory after this.
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

/// Sends a signal by name to a pid, or to a process group when `target` is `-pgid`. Runs the
/// `kill` program because the workspace forbids `unsafe` and so `libc::kill`.
fn signal(target: &str, sig: &str) {
    let _ = Command::new("kill")
        .args(["-s", sig, "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The first executable called `name` on `PATH`, then in `extra` directories.
pub(crate) fn find_program(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

pub(crate) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The (uid, gid) to run PostgreSQL as, which refuses to run as root: `None` when not root,
/// else the `postgres` user, else `nobody`.
pub(crate) fn unprivileged_user() -> Result<Option<(u32, u32)>> {
    let status = fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .context("no Uid line in /proc/self/status")?;
    if euid != "0" {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    for name in ["postgres", "nobody"] {
        let ids = passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields[..] {
                [n, _, uid, gid, ..] if n == name => Some((uid.parse().ok()?, gid.parse().ok()?)),
                _ => None,
            }
        });
        if ids.is_some() {
            return Ok(ids);
        }
    }
    bail!("running as root, and there is no `postgres` or `nobody` user to run PostgreSQL as")
}

/// `program` run as `user` via `setpriv` (which execs, so the pid stays the server's), or directly.
pub(crate) fn command_as(user: Option<(u32, u32)>, program: impl AsRef<OsStr>) -> Command {
    match user {
        None => Command::new(program),
        Some((uid, gid)) => {
            let mut cmd = Command::new("setpriv");
            cmd.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg("--")
                .arg(program);
            cmd
        }
    }
}

/// True when a failed start was most likely a lost race for the port.
pub(crate) fn port_was_taken(log: &str) -> bool {
    log.to_ascii_lowercase().contains("address already in use")
}
