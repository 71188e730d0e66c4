//! What the processes of a run cost, read from `/proc`: peak memory (`VmHWM`) and CPU time of a
//! process with all its descendants (PostgreSQL's backends are children of the postmaster, each
//! in a session of its own, so a process group would miss them).

use std::fs;
use std::process::Command;
use std::sync::OnceLock;

/// Clock ticks per second of `/proc/<pid>/stat` times.
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// (parent pid, user + system CPU seconds) of a process, from `/proc/<pid>/stat`.
fn stat(pid: &str) -> Option<(u32, f64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields follow the last `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the name: state(0) ppid(1) pgrp(2) ... utime(11) stime(12).
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((ppid, (utime + stime) / ticks_per_second()))
}

fn pids() -> impl Iterator<Item = String> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
}

/// CPU seconds used so far by the live process `root` and its live descendants.
pub fn tree_cpu_seconds(root: u32) -> f64 {
    let procs: Vec<(u32, u32, f64)> = pids()
        .filter_map(|pid| {
            let (ppid, cpu) = stat(&pid)?;
            Some((pid.parse().ok()?, ppid, cpu))
        })
        .collect();
    let mut tree = vec![root];
    let mut total = 0.0;
    while let Some(parent) = tree.pop() {
        for &(pid, ppid, cpu) in &procs {
            if pid == parent {
                total += cpu;
            }
            if ppid == parent {
                tree.push(pid);
            }
        }
    }
    total
}

/// CPU seconds used so far by this process.
pub fn own_cpu_seconds() -> f64 {
    stat("self").map_or(0.0, |(_, cpu)| cpu)
}

/// The process whose program is called `program` and whose arguments include `-p <port>` (how
/// the harness starts `postgres` and `nats-server`).
pub fn server_pid(program: &str, port: u16) -> Option<u32> {
    let port = port.to_string();
    pids().find_map(|pid| {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let name = args.first()?.rsplit(|b| *b == b'/').next()?;
        let with_port = args
            .windows(2)
            .any(|w| w[0] == b"-p" && w[1] == port.as_bytes());
        (name == program.as_bytes() && with_port)
            .then(|| pid.parse().ok())
            .flatten()
    })
}

/// A `VmHWM`-style line of `/proc/<pid>/status` in bytes (`VmHWM`: peak resident memory).
pub fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    let kib: u64 = line.split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// (busy, idle) CPU seconds of the whole machine, all cores, from `/proc/stat`.
fn machine_cpu_seconds() -> (f64, f64) {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return (0.0, 0.0);
    };
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
    let idle = ticks.get(3).copied().unwrap_or(0.0) + ticks.get(4).copied().unwrap_or(0.0);
    let total: f64 = ticks.iter().take(8).sum();
    let hz = ticks_per_second();
    ((total - idle) / hz, idle / hz)
}

/// CPU seconds of each part of a run, sampled before and after it.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSample {
    pub serve: f64,
    pub postgres: f64,
    pub nats: f64,
    pub bench: f64,
    /// Every process on the machine, ours included.
    pub machine_busy: f64,
    pub machine_idle: f64,
}

impl CpuSample {
    /// What processes other than the run's own used (other sessions' builds, tests, ...).
    pub fn others(&self) -> f64 {
        (self.machine_busy - self.serve - self.postgres - self.nats - self.bench).max(0.0)
    }
}

/// The processes to account, each with its descendants.
#[derive(Debug, Clone, Copy)]
pub struct Roots {
    pub serve: u32,
    pub postgres: Option<u32>,
    pub nats: Option<u32>,
}

impl Roots {
    pub fn sample(&self) -> CpuSample {
        let (machine_busy, machine_idle) = machine_cpu_seconds();
        CpuSample {
            serve: tree_cpu_seconds(self.serve),
            postgres: self.postgres.map_or(0.0, tree_cpu_seconds),
            nats: self.nats.map_or(0.0, tree_cpu_seconds),
            bench: own_cpu_seconds(),
            machine_busy,
            machine_idle,
        }
    }
}

impl std::ops::Sub for CpuSample {
    type Output = CpuSample;
    fn sub(self, earlier: CpuSample) -> CpuSample {
        CpuSample {
            serve: self.serve - earlier.serve,
            postgres: self.postgres - earlier.postgres,
            nats: self.nats - earlier.nats,
            bench: self.bench - earlier.bench,
            machine_busy: self.machine_busy - earlier.machine_busy,
            machine_idle: self.machine_idle - earlier.machine_idle,
        }
    }
}
