//! Self-tests of the harness: the servers it starts really serve, die when killed and come back.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::Duration;

use saoma_tests::{free_port, NatsServer, PgServer};
use sqlx::{Connection, PgConnection};

async fn select_one(url: &str) -> i32 {
    let mut conn = PgConnection::connect(url)
        .await
        .expect("connecting to postgres");
    sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .expect("SELECT 1")
}

#[tokio::test]
async fn postgres_keeps_committed_rows_across_a_kill_and_a_restart() {
    let Some(mut pg) = PgServer::start_or_skip() else {
        return;
    };
    assert_eq!(select_one(&pg.url()).await, 1);
    let mut conn = PgConnection::connect(&pg.url()).await.unwrap();
    sqlx::query("CREATE TABLE t (n int)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO t VALUES (42)")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);

    let port = pg.port();
    pg.kill();
    assert!(!pg.is_running());
    assert!(
        PgConnection::connect(&pg.url()).await.is_err(),
        "a killed server still answers"
    );

    pg.restart().unwrap();
    assert_eq!(pg.port(), port);
    let mut conn = PgConnection::connect(&pg.url()).await.unwrap();
    let n: i32 = sqlx::query_scalar("SELECT n FROM t")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 42);
    drop(conn);

    pg.stop().unwrap();
    pg.restart().unwrap();
    assert_eq!(select_one(&pg.url()).await, 1);
}

/// One server for many tests, as a `static`: the harness's watchdog stops it after the run.
fn shared_pg() -> Option<&'static PgServer> {
    static PG: OnceLock<Option<PgServer>> = OnceLock::new();
    PG.get_or_init(PgServer::start_or_skip).as_ref()
}

#[tokio::test]
async fn one_shared_postgres_server_holds_separate_databases() {
    let Some(pg) = shared_pg() else { return };
    let (a, b) = (pg.fresh_database().unwrap(), pg.fresh_database().unwrap());
    assert_ne!(a, b);
    let mut conn = PgConnection::connect(&a).await.unwrap();
    sqlx::query("CREATE TABLE only_in_a (n int)")
        .execute(&mut conn)
        .await
        .unwrap();
    let mut conn = PgConnection::connect(&b).await.unwrap();
    assert!(sqlx::query("SELECT * FROM only_in_a")
        .execute(&mut conn)
        .await
        .is_err());
    let err = pg
        .create_database("Robert'); DROP TABLE students;--")
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("not a plain lower-case identifier"),
        "{err}"
    );
}

#[tokio::test]
async fn two_postgres_servers_start_in_parallel_on_different_ports() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(PgServer::start_or_skip);
        let b = s.spawn(PgServer::start_or_skip);
        (a.join().unwrap(), b.join().unwrap())
    });
    let (Some(a), Some(b)) = (a, b) else { return };
    assert_ne!(a.port(), b.port());
    assert_eq!(select_one(&a.url()).await, 1);
    assert_eq!(select_one(&b.url()).await, 1);
}

fn nats_info(port: u16) -> std::io::Result<String> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(line)
}

#[test]
fn nats_accepts_clients_and_restarts_on_the_same_port() {
    let Some(mut nats) = NatsServer::start_or_skip() else {
        return;
    };
    assert_eq!(nats.url(), format!("nats://127.0.0.1:{}", nats.port()));
    assert!(nats_info(nats.port()).unwrap().starts_with("INFO "));
    assert!(nats.store_dir().join("jetstream").is_dir());

    nats.kill();
    assert!(
        nats_info(nats.port()).is_err(),
        "a killed server still answers"
    );
    nats.restart().unwrap();
    assert!(nats_info(nats.port())
        .unwrap()
        .contains("\"jetstream\":true"));

    nats.restart().unwrap();
    assert!(nats_info(nats.port()).unwrap().starts_with("INFO "));
}

#[test]
fn free_ports_are_not_handed_out_twice() {
    let ports: std::collections::BTreeSet<u16> = (0..50).map(|_| free_port()).collect();
    assert_eq!(ports.len(), 50);
}
