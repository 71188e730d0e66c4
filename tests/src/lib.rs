//! End-to-end test harness: real PostgreSQL, NATS, `saoma` and headless-Chromium processes owned
//! by the tests (the browser: [`Browser`], see [`browser`]).
//!
//! Each server gets a fresh temp dir and a free loopback port, and runs as the leader of its own
//! process group, so a test can SIGKILL it (a crash) and restart it on the same data and port.
//! Dropping a server kills its group and removes its dir; a watchdog shell does the same if the
//! test process dies first, so a server kept in a `static` (one server, many databases via
//! [`PgServer::fresh_database`]) does not outlive the run.
//!
//! Missing binaries: `start_or_skip()` prints a loud `SKIPPED:` notice and returns `None`, unless
//! `SAOMA_REQUIRE_SERVICES=1` (set it in CI), which turns the skip into a panic. A server that is
//! present but fails to start is always a failure.
//!
//! PostgreSQL refuses to run as root; when the tests run as root, `initdb` and `postgres` run as
//! the `postgres` user (else `nobody`) via `setpriv`, in a temp dir chowned to that user.
//!
//! Every call blocks for at most a bounded time (30 s to start, 30 s to stop) and needs no async
//! runtime, so it can be called from plain or `#[tokio::test]` tests alike.
//!
//! ```no_run
//! use std::sync::OnceLock;
//! use saoma_tests::{PgServer, SaomaCommand};
//!
//! /// One server for the whole test binary, a fresh database per test.
//! fn shared_pg() -> Option<&'static PgServer> {
//!     static PG: OnceLock<Option<PgServer>> = OnceLock::new();
//!     PG.get_or_init(PgServer::start_or_skip).as_ref()
//! }
//!
//! let Some(pg) = shared_pg() else { return };
//! let work = tempfile::tempdir().unwrap();
//! let mut saoma = SaomaCommand::new(work.path())
//!     .database_url(pg.fresh_database().unwrap())
//!     .spawn()
//!     .unwrap();
//! let _healthz = format!("{}/healthz", saoma.base_url());
//! saoma.kill9();
//! saoma.restart().unwrap();
//! ```

pub mod browser;
pub mod nats;
pub mod postgres;
mod process;
mod saoma;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;

pub use browser::{Browser, ChromeDriver};
pub use nats::NatsServer;
pub use postgres::PgServer;
pub use saoma::{saoma_binary, SaomaCommand, SaomaProcess, DEFAULT_ADMIN_TOKEN};

/// Whether missing server binaries fail the tests (`SAOMA_REQUIRE_SERVICES=1`) instead of
/// skipping them.
pub fn services_required() -> bool {
    std::env::var("SAOMA_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A loopback port that was free a moment ago and that this process has not handed out before,
/// so parallel tests in one binary never race each other for it.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a loopback port");
        let port = listener
            .local_addr()
            .expect("local address of a bound socket")
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// Skips a test whose server binaries are missing, or panics when services are required.
fn skip<T>(what: &str) -> Option<T> {
    assert!(
        !services_required(),
        "{what} not found, and SAOMA_REQUIRE_SERVICES=1 requires it"
    );
    // Written to the real stderr: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: {what} not found; this test did not run. \
         Set SAOMA_REQUIRE_SERVICES=1 to make this a failure. ***\n"
    );
    None
}
