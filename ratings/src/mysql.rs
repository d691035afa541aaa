//! Ratings v2's MySQL backend (`SERVICE_VERSION=v2`, `DB_TYPE=mysql`), as the original's: the
//! database `test`, `SELECT Rating FROM ratings`, the first two rows as `Reviewer1` and
//! `Reviewer2` (0 when missing), the same two for every product.
//!
//! The client is `mysql_async` without TLS: it builds in about the time sqlx does, with a
//! third of the crates (21 packages more in the lock against sqlx's 60, and no RSA stack;
//! docs/architecture.md has the figures), and one fixed query has no use for sqlx's checked
//! queries. Where
//! the original opens a connection per request, each worker keeps a few idle connections
//! ([`Connections`]): actix-web runs one single-threaded runtime per worker and a connection's
//! socket belongs to the runtime that opened it, so the connections of a worker never leave it
//! (a pool shared by all workers would drive a socket from a runtime that does not poll it).
//! Connecting and querying are each bounded ([`CONNECT_TIMEOUT`], [`QUERY_TIMEOUT`]), so that a
//! dead database is answered well within every caller's deadline (reviews v3 waits 2.5 s).

use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

use actix_web::rt::time::timeout;
use bookinfo_config::{ConfigError, Source};
use bookinfo_http::Tracing;
use bookinfo_http::database::{Database, Failure, Query};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};

/// `DB_TYPE`: the database of ratings v2; `mysql` is the one this build reads.
pub const DB_TYPE: &str = "DB_TYPE";
/// `MYSQL_DB_HOST`: the MySQL (or MariaDB) server's host name or address.
pub const MYSQL_DB_HOST: &str = "MYSQL_DB_HOST";
/// `MYSQL_DB_PORT`: its port (3306).
pub const MYSQL_DB_PORT: &str = "MYSQL_DB_PORT";
/// `MYSQL_DB_USER`: the user ratings connects as.
pub const MYSQL_DB_USER: &str = "MYSQL_DB_USER";
/// `MYSQL_DB_PASSWORD`: that user's password.
pub const MYSQL_DB_PASSWORD: &str = "MYSQL_DB_PASSWORD";
/// `MONGO_DB_URL`: the original's MongoDB backend, which this build does not have.
pub const MONGO_DB_URL: &str = "MONGO_DB_URL";

/// The database the original reads, as `mysqldb-init.sql` creates it.
pub const DATABASE: &str = "test";
/// The original's query: no literal values, so its text goes on spans as it is.
pub const SELECT_RATINGS: Query =
    Query { operation: "SELECT", collection: "ratings", text: "SELECT Rating FROM ratings" };
/// How long opening a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the query may take once connected.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(1);
/// Idle connections a worker keeps; more open at once are closed after their query.
pub const IDLE_PER_WORKER: usize = 4;
/// `db.system.name`: the MySQL protocol, which MariaDB speaks too. The attribute is set before
/// any server has answered, so it names what the service is configured for (`DB_TYPE=mysql`),
/// whichever of the two answers; one name also keeps the database one node of the service
/// graph.
pub const SYSTEM: &str = "mysql";

/// Where the MySQL server is, and who ratings is there.
#[derive(Clone, PartialEq, Eq)]
pub struct MysqlConfig {
    /// `MYSQL_DB_HOST` (default `localhost`).
    pub host: String,
    /// `MYSQL_DB_PORT` (default 3306).
    pub port: u16,
    /// `MYSQL_DB_USER` (default none, as the original's driver).
    pub user: Option<String>,
    /// `MYSQL_DB_PASSWORD` (default none).
    pub password: Option<String>,
}

impl fmt::Debug for MysqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password never reaches a log line.
        f.debug_struct("MysqlConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl MysqlConfig {
    /// Reads the backend of ratings v2: `DB_TYPE` must be `mysql`, then `MYSQL_DB_*`.
    ///
    /// # Errors
    /// Any other `DB_TYPE` (unset means MongoDB in the original), naming the missing MongoDB
    /// support; a `MYSQL_DB_PORT` that is not a port.
    pub fn from_source(source: &(impl Source + ?Sized)) -> Result<Self, ConfigError> {
        let db_type = source.get(DB_TYPE).unwrap_or_default();
        if !db_type.trim().eq_ignore_ascii_case("mysql") {
            let mongo =
                source.get(MONGO_DB_URL).map(|_| format!(" ({MONGO_DB_URL} is set)")).unwrap_or_default();
            let expected = format!(
                "mysql: ratings v2 reads MySQL only; the original's MongoDB backend{mongo} is not \
                 supported by this build"
            );
            return Err(ConfigError::new(DB_TYPE, &db_type, &expected));
        }
        Ok(Self {
            host: source.string_or(MYSQL_DB_HOST, "localhost"),
            port: source.parse_or(MYSQL_DB_PORT, 3306, "a port number")?,
            user: source.get(MYSQL_DB_USER),
            password: source.get(MYSQL_DB_PASSWORD),
        })
    }

    /// The database as the spans name it.
    pub fn database(&self) -> Database {
        Database {
            system: SYSTEM,
            namespace: DATABASE.to_owned(),
            address: self.host.clone(),
            port: self.port,
        }
    }

    fn opts(&self) -> Opts {
        OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(self.user.clone())
            .pass(self.password.clone())
            .db_name(Some(DATABASE))
            // The client would otherwise move a connection to 127.0.0.1 onto the server's
            // socket file: the address on the spans would no longer be the one used.
            .prefer_socket(false)
            .into()
    }
}

/// Why the ratings could not be read, answered as the original answers each.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No connection: the original answers 200 (it never writes a status) with an error body.
    #[error("could not connect to the ratings database: {0}")]
    Connect(#[source] Cause),
    /// The query failed: the original answers 500.
    #[error("could not perform the select: {0}")]
    Select(#[source] Cause),
}

/// What went wrong with the database.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// The client's or the server's error.
    #[error(transparent)]
    Mysql(#[from] mysql_async::Error),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl Cause {
    /// `error.type` and `db.response.status_code` for the span.
    fn failure(&self) -> (String, Option<String>) {
        match self {
            Cause::Timeout(_) => ("timeout".to_owned(), None),
            Cause::Mysql(mysql_async::Error::Server(err)) => {
                (err.code.to_string(), Some(err.code.to_string()))
            }
            Cause::Mysql(mysql_async::Error::Io(_)) => ("io".to_owned(), None),
            Cause::Mysql(mysql_async::Error::Driver(_)) => ("driver".to_owned(), None),
            Cause::Mysql(mysql_async::Error::Url(_)) => ("url".to_owned(), None),
            Cause::Mysql(mysql_async::Error::Other(_)) => ("other".to_owned(), None),
        }
    }

    /// Whether the connection it happened on can still be used.
    fn connection_usable(&self) -> bool {
        matches!(self, Cause::Mysql(err) if !err.is_fatal())
    }
}

/// One worker's connections to the database: opened on demand, a few kept idle. Not `Send`,
/// on purpose: a connection stays on the runtime that opened it.
pub struct Connections {
    opts: Opts,
    database: Database,
    idle: RefCell<Vec<Conn>>,
}

impl fmt::Debug for Connections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connections").field("database", &self.database).finish_non_exhaustive()
    }
}

impl Connections {
    /// No connection yet; the first read opens one.
    pub fn new(config: &MysqlConfig) -> Self {
        Self { opts: config.opts(), database: config.database(), idle: RefCell::new(Vec::new()) }
    }

    /// The first two ratings of the table (0 for a missing row, `None` for a NULL rating, as
    /// the original), traced as `tracing` says.
    ///
    /// # Errors
    /// [`ReadError::Connect`] when no connection opens in time, [`ReadError::Select`] when the
    /// query fails or takes too long.
    pub async fn first_two(&self, tracing: &Tracing) -> Result<[Option<i64>; 2], ReadError> {
        let idle = self.idle.borrow_mut().pop();
        if let Some(conn) = idle {
            match self.select(conn, tracing).await {
                Ok(ratings) => return Ok(ratings),
                // The server went away while the connection sat idle (restarted, say): a new
                // connection tells a dead server (the connect error) from a live one.
                Err(cause) if !cause.connection_usable() && !matches!(cause, Cause::Timeout(_)) => {
                    tracing::debug!(error = %cause, "an idle database connection was gone; connecting again");
                }
                Err(cause) => return Err(ReadError::Select(cause)),
            }
        }
        let conn = self.connect(tracing).await.map_err(ReadError::Connect)?;
        self.select(conn, tracing).await.map_err(ReadError::Select)
    }

    async fn connect(&self, tracing: &Tracing) -> Result<Conn, Cause> {
        let span = tracing.connect(&self.database);
        let result = match timeout(CONNECT_TIMEOUT, Conn::new(self.opts.clone())).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(err)) => Err(Cause::Mysql(err)),
            Err(_) => Err(Cause::Timeout(CONNECT_TIMEOUT)),
        };
        end(span, result.as_ref().err());
        result
    }

    /// Runs the query on `conn`, which goes back to the idle ones if it can still be used.
    async fn select(&self, mut conn: Conn, tracing: &Tracing) -> Result<[Option<i64>; 2], Cause> {
        let span = tracing.query(&self.database, &SELECT_RATINGS);
        let result = match timeout(QUERY_TIMEOUT, conn.query::<Option<i64>, _>(SELECT_RATINGS.text)).await {
            // A missing row is the original's 0; a NULL rating its `null`.
            Ok(Ok(rows)) => Ok([0, 1].map(|row| rows.get(row).copied().unwrap_or(Some(0)))),
            Ok(Err(err)) => Err(Cause::Mysql(err)),
            Err(_) => Err(Cause::Timeout(QUERY_TIMEOUT)),
        };
        end(span, result.as_ref().err());
        // A timed-out query leaves the connection mid-answer: it is dropped, as is a broken one.
        if result.is_ok() || result.as_ref().err().is_some_and(Cause::connection_usable) {
            let mut idle = self.idle.borrow_mut();
            if idle.len() < IDLE_PER_WORKER {
                idle.push(conn);
            }
        }
        result
    }
}

fn end(span: bookinfo_http::database::DbSpan, cause: Option<&Cause>) {
    match cause {
        None => span.end(None),
        Some(cause) => {
            let (error_type, status_code) = cause.failure();
            span.end(Some(Failure { error_type: &error_type, status_code: status_code.as_deref() }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_is_read_from_the_originals_variables() {
        let source = [
            ("DB_TYPE", "mysql"),
            ("MYSQL_DB_HOST", "mysqldb"),
            ("MYSQL_DB_PORT", "3307"),
            ("MYSQL_DB_USER", "root"),
            ("MYSQL_DB_PASSWORD", "password"),
        ];
        let config = MysqlConfig::from_source(&source).unwrap();
        assert_eq!((config.host.as_str(), config.port), ("mysqldb", 3307));
        assert_eq!((config.user.as_deref(), config.password.as_deref()), (Some("root"), Some("password")));
        assert!(!format!("{config:?}").contains("password\")"), "the password is not printed");
        let defaults = MysqlConfig::from_source(&[("DB_TYPE", "MySQL")]).unwrap();
        assert_eq!((defaults.host.as_str(), defaults.port, defaults.user), ("localhost", 3306, None));
    }

    #[test]
    fn mongodb_is_named_as_missing_and_a_bad_port_names_its_variable() {
        for source in [vec![("MONGO_DB_URL", "mongodb://mongodb:27017/test")], vec![("DB_TYPE", "mongodb")]] {
            let err = MysqlConfig::from_source(source.as_slice()).unwrap_err();
            assert_eq!(err.name, "DB_TYPE");
            assert!(err.to_string().contains("MongoDB backend"), "{err}");
        }
        let err = MysqlConfig::from_source(&[("DB_TYPE", "mysql"), ("MYSQL_DB_PORT", "db")]).unwrap_err();
        assert_eq!(err.name, "MYSQL_DB_PORT");
    }

    #[test]
    fn the_span_of_a_failure_names_the_servers_code_or_the_class() {
        let server = mysql_async::Error::Server(mysql_async::ServerError {
            code: 1146,
            message: "Table 'test.ratings' doesn't exist".into(),
            state: "42S02".into(),
        });
        let cause = Cause::Mysql(server);
        assert_eq!(cause.failure(), ("1146".to_owned(), Some("1146".to_owned())));
        assert!(cause.connection_usable(), "a server's refusal leaves the connection usable");
        assert_eq!(Cause::Timeout(QUERY_TIMEOUT).failure(), ("timeout".to_owned(), None));
        assert!(!Cause::Timeout(QUERY_TIMEOUT).connection_usable());
    }
}
