//! [`PostgresError`]: what can go wrong in this crate. It converts into
//! [`jobs::Error::Storage`], so `?` works in functions returning [`jobs::Result`].

use std::error::Error as _;

/// An error of the Postgres storage. Messages are lowercase and name what failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// A schema or channel name that is not a plain lowercase identifier.
    #[error("invalid {kind} `{name}`: it must match ^[a-z_][a-z0-9_]{{0,62}}$")]
    InvalidIdentifier {
        /// What the name is for ("schema name", "notify channel").
        kind: &'static str,
        /// The name given.
        name: String,
    },
    /// Another invalid option.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The connection URL could not be parsed.
    #[error("invalid database url: {message}")]
    InvalidUrl {
        /// Why.
        message: String,
        /// The parse error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The pool could not be built.
    #[error("could not build the connection pool: {0}")]
    Pool(#[source] deadpool_postgres::BuildError),
    /// No connection could be had from the pool (the database is down or unreachable).
    #[error("could not get a database connection: {message}")]
    Connection {
        /// Why, with the driver's cause.
        message: String,
        /// The pool's error.
        #[source]
        source: deadpool_postgres::PoolError,
    },
    /// The schema has no jobs tables yet.
    #[error(
        "schema `{schema}` is not migrated (run `PostgresStorage::migrate()` first): {message}"
    )]
    NotMigrated {
        /// The schema.
        schema: String,
        /// The database's message.
        message: String,
        /// The database error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A statement failed.
    #[error("{operation} failed: {message}")]
    Query {
        /// The storage operation ("fetch", "complete", ...).
        operation: &'static str,
        /// The database's message.
        message: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A storage operation took longer than
    /// [`PostgresOptions::query_timeout`](crate::PostgresOptions::query_timeout): the database
    /// did not answer (unreachable, or waiting on a lock).
    #[error("{operation} timed out after {timeout:?}: the database did not answer")]
    Timeout {
        /// The storage operation ("fetch", "keep alive", ...).
        operation: &'static str,
        /// The bound it exceeded.
        timeout: std::time::Duration,
    },
    /// A migration failed; the migration run was rolled back.
    #[error("migration {version} `{name}` failed: {message}")]
    Migration {
        /// The migration's version.
        version: u32,
        /// The migration's name.
        name: &'static str,
        /// The database's message.
        message: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A stored value could not be read back.
    #[error("{what} holds undecodable data: {reason}")]
    Decode {
        /// Which row and column ("job 12, column `error`").
        what: String,
        /// Why.
        reason: String,
    },
    /// Job arguments over [`PostgresOptions::max_payload_bytes`](crate::PostgresOptions::max_payload_bytes).
    #[error(
        "the arguments of job `{name}` are {size} bytes, over the limit of {limit} bytes \
         (see `PostgresOptions::max_payload_bytes`)"
    )]
    PayloadTooLarge {
        /// The job's name.
        name: String,
        /// The arguments' size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl From<PostgresError> for jobs::Error {
    fn from(error: PostgresError) -> Self {
        jobs::Error::Storage(Box::new(error))
    }
}

/// The message of a driver error with its cause: tokio-postgres shows only "db error" or
/// "error connecting to server" and keeps the rest in its source.
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut message = format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            message.push_str(": ");
            message.push_str(detail);
        }
        return message;
    }
    match error.source() {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

fn describe_pool(error: &deadpool_postgres::PoolError) -> String {
    match error {
        deadpool_postgres::PoolError::Backend(error) => describe(error),
        other => other.to_string(),
    }
}

impl PostgresError {
    /// A failed statement of `operation` on `schema`. A missing table or function means the
    /// schema was not migrated.
    pub(crate) fn query(
        operation: &'static str,
        schema: &str,
        source: tokio_postgres::Error,
    ) -> PostgresError {
        let message = describe(&source);
        let missing = source.code().is_some_and(|code| {
            *code == tokio_postgres::error::SqlState::UNDEFINED_TABLE
                || *code == tokio_postgres::error::SqlState::UNDEFINED_FUNCTION
                || *code == tokio_postgres::error::SqlState::INVALID_SCHEMA_NAME
        });
        if missing {
            PostgresError::NotMigrated {
                schema: schema.to_owned(),
                message,
                source,
            }
        } else {
            PostgresError::Query {
                operation,
                message,
                source,
            }
        }
    }

    pub(crate) fn connection(source: deadpool_postgres::PoolError) -> PostgresError {
        PostgresError::Connection {
            message: describe_pool(&source),
            source,
        }
    }

    pub(crate) fn decode(what: impl Into<String>, reason: impl ToString) -> PostgresError {
        PostgresError::Decode {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
