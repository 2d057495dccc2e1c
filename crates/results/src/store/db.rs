//! The connection to one of the three databases (SQLite, PostgreSQL, MariaDB/MySQL):
//! URL parsing, pool creation, schema creation, and the small helpers that let one piece
//! of code run on all three (placeholder rewriting, typed values, column reads).
use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, ColumnIndex, Connection, Decode, Row, Type};

use super::StoreError;
use super::schema::{self, Dialect};

/// A pool on one of the supported databases (cheap to clone).
#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// Runs `$body` with `$p` bound to the concrete pool (the body is compiled once per
/// database, so query builders get each database's placeholders and types).
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::store::db::Pool::Sqlite($p) => $body,
            $crate::store::db::Pool::Postgres($p) => $body,
            $crate::store::db::Pool::MySql($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Binds a [`Val`] to a query builder or a `Separated` list.
macro_rules! push_val {
    ($b:expr, $v:expr) => {
        match $v {
            $crate::store::db::Val::I(x) => {
                $b.push_bind(x);
            }
            $crate::store::db::Val::F(x) => {
                $b.push_bind(x);
            }
            $crate::store::db::Val::S(x) => {
                $b.push_bind(x);
            }
            $crate::store::db::Val::B(x) => {
                $b.push_bind(x);
            }
        }
    };
}
pub(crate) use push_val;

/// A value to bind, of one of the column types the schema uses.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    I(Option<i64>),
    F(Option<f64>),
    S(Option<String>),
    B(Option<bool>),
}

/// A u64 as a BIGINT (saturating: no counter we store comes near 2^63).
pub fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Where the store lives, from its URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A SQLite file (created if missing).
    Sqlite(String),
    /// `postgres://` or `postgresql://` URL.
    Postgres(String),
    /// `mysql://` URL (`mariadb://` is accepted and rewritten).
    MySql(String),
}

impl Target {
    /// `sqlite://path` (`sqlite:path`, or a bare path), `postgres://...`, `mysql://...`
    /// or `mariadb://...`.
    pub fn parse(url: &str) -> Result<Target, StoreError> {
        let bad = |why: &str| StoreError::Url {
            url: redact(url),
            why: why.to_string(),
        };
        if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if rest.is_empty() {
                return Err(bad("no file name after sqlite://"));
            }
            Ok(Target::Sqlite(rest.to_string()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Target::Postgres(url.to_string()))
        } else if url.starts_with("mysql://") {
            Ok(Target::MySql(url.to_string()))
        } else if let Some(rest) = url.strip_prefix("mariadb://") {
            Ok(Target::MySql(format!("mysql://{rest}")))
        } else if url.contains("://") {
            Err(bad(
                "unsupported scheme (use sqlite://FILE, postgres://..., mysql:// or mariadb://...)",
            ))
        } else if url.is_empty() {
            Err(bad("empty store URL"))
        } else {
            Ok(Target::Sqlite(url.to_string()))
        }
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((cred, host)) = rest.rsplit_once('@')
    {
        let user = cred.split(':').next().unwrap_or("");
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

/// How a store is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Writing commands (`load`, `generate`, `store load-journal`): a missing SQLite file
    /// is created, missing tables and columns are added.
    ReadWrite,
    /// Reading commands (`report`, `loads`, `export`): nothing is created or changed; a
    /// missing SQLite file is an error, and SQLite is opened read-only.
    ReadOnly,
}

/// How long opening a store may take (a first connection, or a busy SQLite file).
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The error of one connection attempt (a pool only says it timed out when the server
/// refuses or is unreachable: this says why), within [`OPEN_TIMEOUT`].
async fn first_connection<C: Connection>(opts: &C::Options, url: &str) -> Result<(), StoreError> {
    let what = || format!("connecting to {}", redact(url));
    match tokio::time::timeout(OPEN_TIMEOUT, C::connect_with(opts)).await {
        Ok(Ok(conn)) => {
            // Only the attempt's error mattered; the pool makes its own connections.
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(StoreError::db(what(), e)),
        Err(_) => Err(StoreError::Invalid(format!(
            "{}: no answer within {} s",
            what(),
            OPEN_TIMEOUT.as_secs()
        ))),
    }
}

impl Pool {
    /// Connects and creates the missing tables.
    pub async fn open(target: &Target) -> Result<Pool, StoreError> {
        Pool::open_with(target, Access::ReadWrite).await
    }

    /// Connects with `access`: read-write creates what is missing, read-only changes
    /// nothing (see [`Access`]).
    pub async fn open_with(target: &Target, access: Access) -> Result<Pool, StoreError> {
        let timeout = OPEN_TIMEOUT;
        let pool = match target {
            Target::Sqlite(path) => {
                let mut opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
                    .map_err(|e| StoreError::db(format!("SQLite file {path}"), e))?
                    .foreign_keys(true)
                    .busy_timeout(timeout);
                opts = match access {
                    Access::ReadWrite => opts
                        .create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal),
                    Access::ReadOnly => {
                        if !std::path::Path::new(path).exists() {
                            return Err(StoreError::Invalid(format!(
                                "no SQLite store at {path} (nothing was created: check the path)"
                            )));
                        }
                        opts.read_only(true).create_if_missing(false)
                    }
                };
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(4)
                        .acquire_timeout(timeout)
                        .connect_with(opts)
                        .await
                        .map_err(|e| StoreError::db(format!("opening SQLite file {path}"), e))?,
                )
            }
            Target::Postgres(url) => {
                let opts = PgConnectOptions::from_str(url)
                    .map_err(|e| StoreError::db(format!("store URL {}", redact(url)), e))?;
                first_connection::<sqlx::PgConnection>(&opts, url).await?;
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(4)
                        .acquire_timeout(timeout)
                        .connect_with(opts)
                        .await
                        .map_err(|e| StoreError::db(format!("connecting to {}", redact(url)), e))?,
                )
            }
            Target::MySql(url) => {
                let opts = MySqlConnectOptions::from_str(url)
                    .map_err(|e| StoreError::db(format!("store URL {}", redact(url)), e))?;
                first_connection::<sqlx::MySqlConnection>(&opts, url).await?;
                Pool::MySql(
                    MySqlPoolOptions::new()
                        .max_connections(4)
                        .acquire_timeout(timeout)
                        .connect_with(opts)
                        .await
                        .map_err(|e| StoreError::db(format!("connecting to {}", redact(url)), e))?,
                )
            }
        };
        if access == Access::ReadWrite {
            pool.create_schema().await?;
        }
        Ok(pool)
    }

    /// The columns of [`schema::added_columns`] this database lacks (a database made by
    /// the original FaaSLoad or an older faasload, opened read-only): readers select
    /// NULL in their place. An error if it has no `loads` table (not a faasload store).
    pub async fn absent_columns(&self) -> Result<Vec<(&'static str, &'static str)>, StoreError> {
        let probe = "SELECT id FROM loads WHERE 1 = 0";
        on_pool!(self, p => sqlx::query(AssertSqlSafe(probe)).fetch_all(p).await.map(|_| ()))
            .map_err(|e| {
                StoreError::db("reading the `loads` table (is this a faasload store?)", e)
            })?;
        let mut absent = Vec::new();
        for (table, col, _) in schema::added_columns(self.dialect()) {
            if !self.has_column(table, col).await {
                absent.push((table, col));
            }
        }
        Ok(absent)
    }

    /// Whether `table` has a column `col` (a query naming it succeeds).
    async fn has_column(&self, table: &str, col: &str) -> bool {
        let probe = format!("SELECT {col} FROM {table} WHERE 1 = 0");
        on_pool!(self, p => sqlx::query(AssertSqlSafe(probe)).fetch_all(p).await.is_ok())
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
            Pool::MySql(_) => Dialect::MySql,
        }
    }

    async fn create_schema(&self) -> Result<(), StoreError> {
        let (indexes, tables): (Vec<String>, Vec<String>) = schema::statements(self.dialect())
            .into_iter()
            .partition(|s| s.starts_with("CREATE INDEX"));
        for stmt in tables {
            self.create(stmt).await?;
        }
        // An original FaaSLoad database: add faasload's columns to its tables (before the
        // indexes, which use them).
        for (table, col, ty) in schema::added_columns(self.dialect()) {
            if !self.has_column(table, col).await {
                tracing::info!("store: adding column {table}.{col} to an existing table");
                let alter = format!("ALTER TABLE {table} ADD COLUMN {col} {ty}");
                on_pool!(self, p => sqlx::raw_sql(AssertSqlSafe(alter)).execute(p).await.map(|_| ()))
                    .map_err(|e| StoreError::db(format!("adding column {table}.{col}"), e))?;
            }
        }
        for stmt in indexes {
            self.create(stmt).await?;
        }
        Ok(())
    }

    /// Runs one idempotent schema statement.
    async fn create(&self, stmt: String) -> Result<(), StoreError> {
        let first = stmt.lines().next().unwrap_or("").to_string();
        on_pool!(self, p => sqlx::raw_sql(AssertSqlSafe(stmt)).execute(p).await.map(|_| ()))
            .map_err(|e| StoreError::db(format!("creating the schema ({first})"), e))
    }

    /// Closes every connection.
    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }
}

/// `?` placeholders rewritten as `$1, $2, ...` for PostgreSQL (the statements given here
/// hold no `?` inside literals).
pub fn sql(d: Dialect, q: &str) -> String {
    if d != Dialect::Postgres {
        return q.to_string();
    }
    let mut out = String::with_capacity(q.len() + 8);
    let mut n = 0;
    for c in q.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// Column `i` (a position or a name) of `row`, decoded, with the column in the error.
pub fn get<'r, R, I, T>(row: &'r R, i: I, what: &str) -> Result<T, StoreError>
where
    R: Row,
    I: ColumnIndex<R> + std::fmt::Display + Copy,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(i)
        .map_err(|e| StoreError::db(format!("reading column {i} of {what}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Target::parse("sqlite://r.db").unwrap(),
            Target::Sqlite("r.db".into())
        );
        assert_eq!(
            Target::parse("/tmp/x.db").unwrap(),
            Target::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(
            Target::parse("mariadb://u:p@h/db").unwrap(),
            Target::MySql("mysql://u:p@h/db".into())
        );
        assert!(matches!(
            Target::parse("postgresql://h/db").unwrap(),
            Target::Postgres(_)
        ));
        let e = Target::parse("redis://u:secret@h").unwrap_err().to_string();
        assert!(
            e.contains("unsupported scheme") && !e.contains("secret"),
            "{e}"
        );
        assert!(Target::parse("sqlite://").is_err());
    }

    #[test]
    fn placeholders() {
        assert_eq!(
            sql(Dialect::Postgres, "a = ? AND b = ?"),
            "a = $1 AND b = $2"
        );
        assert_eq!(sql(Dialect::MySql, "a = ?"), "a = ?");
    }

    /// A database made by the original FaaSLoad (its four tables, no faasload column)
    /// is extended in place and keeps its rows.
    #[tokio::test]
    async fn extends_an_original_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orig.db").display().to_string();
        let target = Target::Sqlite(path.clone());
        {
            let opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
                .unwrap()
                .create_if_missing(true);
            let p = SqlitePoolOptions::new().connect_with(opts).await.unwrap();
            sqlx::raw_sql(
                "CREATE TABLE functions (id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(255), \
                   runtime VARCHAR(255), image VARCHAR(255), parameters TEXT, input_kind VARCHAR(64));
                 CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, \
                   function INTEGER REFERENCES functions(id), namespace VARCHAR(255), \
                   activation_id CHAR(32), failed BOOLEAN, start_ms BIGINT, end_ms BIGINT, \
                   wait_ms BIGINT, init_ms BIGINT, outputsize BIGINT, extract_ms BIGINT, \
                   transform_ms BIGINT, load_ms BIGINT);
                 CREATE TABLE resources (id INTEGER PRIMARY KEY AUTOINCREMENT, \
                   run INTEGER REFERENCES runs(id) ON DELETE CASCADE, timestamp_ms BIGINT, \
                   memory_B BIGINT, proc_mCPU MEDIUMINT);
                 CREATE TABLE parameters (id INTEGER PRIMARY KEY AUTOINCREMENT, \
                   run INTEGER REFERENCES runs(id) ON DELETE CASCADE, name VARCHAR(255), \
                   value VARCHAR(255));
                 INSERT INTO functions (name, runtime) VALUES ('wand_blur', 'python:3');
                 INSERT INTO runs (function, namespace, activation_id, failed, start_ms, end_ms, \
                   wait_ms, init_ms) VALUES (1, 'user004', 'abc', 0, 1, 2, 0, NULL);",
            )
            .execute(&p)
            .await
            .unwrap();
            p.close().await;
        }
        let pool = Pool::open(&target).await.unwrap();
        // Opening again finds every column.
        let pool2 = Pool::open(&target).await.unwrap();
        pool2.close().await;
        let Pool::Sqlite(p) = &pool else {
            unreachable!()
        };
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM runs WHERE activation_id = 'abc'")
            .fetch_one(p)
            .await
            .unwrap();
        assert_eq!(n, 1);
        sqlx::query("SELECT load_id, seq, cold, monitor_missing FROM runs")
            .fetch_all(p)
            .await
            .unwrap();
        sqlx::query("SELECT cpu_ns FROM resources")
            .fetch_all(p)
            .await
            .unwrap();
        pool.close().await;
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:pw@127.0.0.1/db"),
            "postgres://u:***@127.0.0.1/db"
        );
        assert_eq!(redact("sqlite://x"), "sqlite://x");
    }
}
