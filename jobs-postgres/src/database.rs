//! [`Database`]: what every operation in `sql/` runs on (the pool, the schema's statements, the
//! wake-ups), below the [`PostgresStorage`](crate::PostgresStorage) that owns it; and [`Db`],
//! where one statement runs: a pooled connection (statements cached per connection) or a
//! caller's transaction (prepared on the spot).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use deadpool_postgres::{Object, Pool, StatementCache};
use jobs::Result;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;

use crate::connection::Suspect;
use crate::error::PostgresError;
use crate::notify;
use crate::options::quote_identifier;
use crate::row;

/// A statement's SQL, naming tables `__SCHEMA__.table`, and the name its schema-substituted
/// text is kept under. Each operation module declares its statements as `Template`s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Template {
    name: &'static str,
    sql: TemplateSql,
}

#[derive(Debug, Clone, Copy)]
enum TemplateSql {
    Text(&'static str),
    Built(fn() -> String),
}

impl Template {
    /// A statement written out.
    pub(crate) const fn text(name: &'static str, sql: &'static str) -> Template {
        Template {
            name,
            sql: TemplateSql::Text(sql),
        }
    }

    /// A statement assembled by `build` (once per schema).
    pub(crate) const fn built(name: &'static str, build: fn() -> String) -> Template {
        Template {
            name,
            sql: TemplateSql::Built(build),
        }
    }

    /// The text of a written-out statement (`None` for a built one).
    pub(crate) const fn written(&self) -> Option<&'static str> {
        match self.sql {
            TemplateSql::Text(sql) => Some(sql),
            TemplateSql::Built(_) => None,
        }
    }

    fn sql(&self) -> Cow<'static, str> {
        match self.sql {
            TemplateSql::Text(sql) => Cow::Borrowed(sql),
            TemplateSql::Built(build) => Cow::Owned(build()),
        }
    }
}

pub(crate) struct Database {
    pub(crate) pool: Pool,
    pub(crate) schema: String,
    pub(crate) channel: String,
    /// The schema, quoted for SQL.
    quoted_schema: String,
    /// Each statement with the schema substituted, built once (see [`Template`]).
    statements: RwLock<HashMap<&'static str, Arc<str>>>,
    pub(crate) max_payload_bytes: Option<usize>,
    pub(crate) listen_config: Option<tokio_postgres::Config>,
    pub(crate) work: Arc<Notify>,
    pub(crate) listener: Mutex<Option<JoinHandle<()>>>,
    pub(crate) throttle: Arc<notify::Throttle>,
    pub(crate) last_vacuum: Mutex<Option<std::time::Instant>>,
    pub(crate) vacuum_failed: std::sync::atomic::AtomicBool,
    /// The bound on each storage operation (`PostgresOptions::query_timeout`).
    pub(crate) query_timeout: Duration,
    /// Pooled connections older than the last timed-out operation (see `bounded`).
    pub(crate) suspect: Arc<Suspect>,
    /// The queue shares this process's servers hold (`shares.rs`).
    pub(crate) shares: crate::shares::Shares,
}

impl Drop for Database {
    fn drop(&mut self) {
        let listener = self
            .listener
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = listener.take() {
            handle.abort();
        }
    }
}

impl Database {
    /// A database handle on `pool` for the (validated) schema `schema`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        pool: Pool,
        channel: String,
        schema: String,
        max_payload_bytes: Option<usize>,
        listen_config: Option<tokio_postgres::Config>,
        notify_throttle: Duration,
        query_timeout: Duration,
        suspect: Arc<Suspect>,
    ) -> Database {
        Database {
            pool,
            quoted_schema: quote_identifier(&schema),
            schema,
            channel,
            statements: RwLock::default(),
            max_payload_bytes,
            listen_config,
            work: Arc::new(Notify::new()),
            listener: Mutex::new(None),
            throttle: Arc::new(notify::Throttle::new(notify_throttle)),
            last_vacuum: Mutex::new(None),
            vacuum_failed: std::sync::atomic::AtomicBool::new(false),
            query_timeout,
            suspect,
            shares: crate::shares::Shares::default(),
        }
    }

    /// The schema, quoted for SQL.
    pub(crate) fn quoted_schema(&self) -> &str {
        &self.quoted_schema
    }

    /// `template`'s SQL for this schema: substituted on first use, then shared.
    pub(crate) fn statement(&self, template: &Template) -> Arc<str> {
        let known = self
            .statements
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(template.name)
            .cloned();
        if let Some(sql) = known {
            return sql;
        }
        let sql: Arc<str> = template
            .sql()
            .replace("__SCHEMA__", &self.quoted_schema)
            .into();
        self.statements
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(template.name)
            .or_insert(sql)
            .clone()
    }

    pub(crate) fn error(
        &self,
        operation: &'static str,
        error: tokio_postgres::Error,
    ) -> PostgresError {
        PostgresError::query(operation, &self.schema, error)
    }

    pub(crate) async fn client(&self) -> Result<Object, PostgresError> {
        self.pool.get().await.map_err(PostgresError::connection)
    }

    pub(crate) fn db<'a>(&'a self, client: &'a Object) -> Db<'a> {
        Db {
            client,
            cache: Some(&client.statement_cache),
            storage: self,
        }
    }

    pub(crate) fn wake(&self) {
        notify::wake(&self.work);
    }

    /// Runs `statement` (a one-row count) on a pooled connection.
    pub(crate) async fn count_query(
        &self,
        operation: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<usize> {
        let client = self.client().await?;
        let db = self.db(&client);
        let statement = db.prepare(operation, sql).await?;
        let row = client
            .query_one(&statement, params)
            .await
            .map_err(|e| self.error(operation, e))?;
        let value: i64 = row::column(&row, "count", &|| operation.to_owned())?;
        Ok(usize::try_from(value).unwrap_or(0))
    }

    pub(crate) async fn execute(
        &self,
        operation: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64> {
        let client = self.client().await?;
        let statement = self.db(&client).prepare(operation, sql).await?;
        Ok(client
            .execute(&statement, params)
            .await
            .map_err(|e| self.error(operation, e))?)
    }

    pub(crate) async fn query(
        &self,
        operation: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        let client = self.client().await?;
        let statement = self.db(&client).prepare(operation, sql).await?;
        Ok(client
            .query(&statement, params)
            .await
            .map_err(|e| self.error(operation, e))?)
    }
}

/// Where a statement runs: a pooled connection (statements cached per connection) or a
/// caller's transaction (prepared on the spot).
pub(crate) struct Db<'a> {
    pub(crate) client: &'a tokio_postgres::Client,
    pub(crate) cache: Option<&'a StatementCache>,
    pub(crate) storage: &'a Database,
}

impl Db<'_> {
    pub(crate) async fn prepare(
        &self,
        operation: &'static str,
        sql: &str,
    ) -> Result<Statement, PostgresError> {
        let prepared = match self.cache {
            Some(cache) => cache.prepare(self.client, sql).await,
            None => self.client.prepare(sql).await,
        };
        prepared.map_err(|error| self.storage.error(operation, error))
    }
}
