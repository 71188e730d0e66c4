//! Web sign-in tables (`schemas/migrations/*/0007_web_accounts.sql`): accounts, sessions (only
//! the SHA-256 of a session token is stored) and failed sign-ins. Times are milliseconds since
//! 1970; the rules about them (how long a session lasts, when a login is locked) live in
//! `crate::pages::auth`.

use super::{Db, Store, StoreError};

/// One web account as stored. `role` is `officer` or `supervisor`, `scope` the officer key or
/// the region code it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub login: String,
    pub role: String,
    pub scope: String,
    pub password_hash: String,
    pub created_at: i64,
    pub disabled: bool,
}

type RawAccount = (String, String, String, String, i64, bool);

fn account(r: RawAccount) -> AccountRow {
    let (login, role, scope, password_hash, created_at, disabled) = r;
    AccountRow {
        login,
        role,
        scope,
        password_hash,
        created_at,
        disabled,
    }
}

/// Runs `$body` with `$p` bound to whichever pool the store has.
macro_rules! on_pool {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            Db::Sqlite($p) => $body,
            Db::Postgres($p) => $body,
        }
    };
}

const PUT_ACCOUNT: &str = "INSERT INTO web_accounts \
     (login, role, scope, password_hash, created_at, disabled) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (login) DO UPDATE SET role = excluded.role, scope = excluded.scope, \
     password_hash = excluded.password_hash, created_at = excluded.created_at, \
     disabled = excluded.disabled";
const ACCOUNT: &str = "SELECT login, role, scope, password_hash, created_at, disabled \
     FROM web_accounts WHERE login = $1";
const SESSION_ACCOUNT: &str =
    "SELECT a.login, a.role, a.scope, a.password_hash, a.created_at, a.disabled \
     FROM web_sessions s JOIN web_accounts a ON a.login = s.login \
     WHERE s.digest = $1 AND s.expires_at > $2 AND a.disabled = FALSE";

impl Store {
    /// Creates or replaces an account; a replaced account's sessions end. Returns whether an
    /// account of that login existed.
    pub async fn put_account(&self, a: &AccountRow) -> Result<bool, StoreError> {
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            // A write first: a SQLite transaction that reads before writing can deadlock
            // against another writer instead of waiting for it.
            sqlx::query("DELETE FROM web_sessions WHERE login = $1")
                .bind(&a.login)
                .execute(&mut *tx)
                .await?;
            let existed: Option<i64> =
                sqlx::query_scalar("SELECT created_at FROM web_accounts WHERE login = $1")
                    .bind(&a.login)
                    .fetch_optional(&mut *tx)
                    .await?;
            sqlx::query(PUT_ACCOUNT)
                .bind(&a.login)
                .bind(&a.role)
                .bind(&a.scope)
                .bind(&a.password_hash)
                .bind(a.created_at)
                .bind(a.disabled)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(existed.is_some())
        })
    }

    pub async fn account(&self, login: &str) -> Result<Option<AccountRow>, StoreError> {
        let row: Option<RawAccount> = on_pool!(&self.db, p => {
            sqlx::query_as(ACCOUNT).bind(login).fetch_optional(p).await?
        });
        Ok(row.map(account))
    }

    /// Stores a new session (and forgets the expired ones).
    pub async fn create_session(
        &self,
        digest: &str,
        login: &str,
        created_at: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
                .bind(created_at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO web_sessions (digest, login, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(digest)
            .bind(login)
            .bind(created_at)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The enabled account of an unexpired session.
    pub async fn session_account(
        &self,
        digest: &str,
        now: i64,
    ) -> Result<Option<AccountRow>, StoreError> {
        let row: Option<RawAccount> = on_pool!(&self.db, p => {
            sqlx::query_as(SESSION_ACCOUNT)
                .bind(digest)
                .bind(now)
                .fetch_optional(p)
                .await?
        });
        Ok(row.map(account))
    }

    pub async fn delete_session(&self, digest: &str) -> Result<(), StoreError> {
        on_pool!(&self.db, p => {
            sqlx::query("DELETE FROM web_sessions WHERE digest = $1")
                .bind(digest)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Records a failed sign-in and forgets failures from before `forget_before`.
    pub async fn record_login_failure(
        &self,
        login: &str,
        ip: &str,
        at: i64,
        forget_before: i64,
    ) -> Result<(), StoreError> {
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM web_login_failures WHERE at < $1")
                .bind(forget_before)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO web_login_failures (login, ip, at) VALUES ($1, $2, $3)")
                .bind(login)
                .bind(ip)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Failed sign-ins since `since`: for `login`, and from `ip` (0 when `ip` is empty).
    pub async fn login_failures(
        &self,
        login: &str,
        ip: &str,
        since: i64,
    ) -> Result<(u64, u64), StoreError> {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        let (by_login, by_ip): (i64, i64) = on_pool!(&self.db, p => {
            let by_login = sqlx::query_scalar(
                "SELECT CAST(COUNT(*) AS bigint) FROM web_login_failures WHERE login = $1 AND at >= $2",
            )
            .bind(login)
            .bind(since)
            .fetch_one(p)
            .await?;
            let by_ip = if ip.is_empty() {
                0
            } else {
                sqlx::query_scalar(
                    "SELECT CAST(COUNT(*) AS bigint) FROM web_login_failures WHERE ip = $1 AND at >= $2",
                )
                .bind(ip)
                .bind(since)
                .fetch_one(p)
                .await?
            };
            (by_login, by_ip)
        });
        Ok((count(by_login), count(by_ip)))
    }

    /// Forgets the failed sign-ins of `login` (after it signed in).
    pub async fn clear_login_failures(&self, login: &str) -> Result<(), StoreError> {
        on_pool!(&self.db, p => {
            sqlx::query("DELETE FROM web_login_failures WHERE login = $1")
                .bind(login)
                .execute(p)
                .await?;
        });
        Ok(())
    }
}
