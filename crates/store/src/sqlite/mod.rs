//! The embedded SQLite backend: a kine-like MVCC log with group commit.
//!
//! ## Schema
//!
//! ```sql
//! log(revision INTEGER PRIMARY KEY,   -- one row per write; the global revision
//!     key BLOB, created, deleted,     -- flags: this write created / deleted the key
//!     create_revision, prev_revision, -- prev_revision: the key's previous row (0 on create)
//!     value BLOB)                     -- on a delete: the last value (for the event)
//! INDEX log_key_revision ON log(key, revision)   -- list at a past revision
//! current(key BLOB PRIMARY KEY, revision)        -- live keys → their latest log row
//! meta(name PRIMARY KEY, value)                  -- 'revision', 'compacted'
//! ```
//!
//! Keys are stored as BLOBs so SQLite compares them byte by byte, and a prefix
//! is the range `[prefix, prefix_end)`. Current-state reads (`get`, `list`
//! at the current revision) walk `current` and fetch each value by primary
//! key; reads at a past revision use the `(key, revision)` index.
//!
//! ## Writes: one writer thread, group commit
//!
//! One thread owns the only write connection (WAL, `synchronous=FULL`). Write
//! requests queue on a channel; the writer takes everything queued (up to
//! [`MAX_BATCH`]), applies it in one `BEGIN IMMEDIATE` transaction — checking
//! each request's condition against the state left by the ones before it — and
//! commits. Only after the commit has returned (so the WAL is fsync'd) does it
//! advance the in-memory revision, publish the events and answer the callers.
//! A failed condition consumes no revision; a database error fails the whole
//! batch and nothing of it is published.
//!
//! ## Reads and watches
//!
//! Reads run on a small pool of read-only connections via `spawn_blocking`,
//! each in one read transaction (one WAL snapshot), so a list and the revision
//! it reports always agree. Watches are described in the `watch` module.

mod reader;
mod watch;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use rusqlite::config::DbConfig;
use rusqlite::Connection;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{Error, KeyValue, ListResult, Revision, Storage, WatchStream};
use reader::ReadPool;
use writer::{Job, Request, Writer};

/// The most write requests applied in one transaction.
pub const MAX_BATCH: usize = 256;
/// Requests that may wait for the writer before callers are made to wait.
const QUEUE_DEPTH: usize = 4096;
/// Live events kept for watchers; a watcher further behind catches up from
/// the log table instead.
const EVENT_BUFFER: usize = 4096;
/// Read connections open at once.
const READERS: usize = 8;
/// Prepared statements each connection keeps. The readers use up to ~24
/// distinct statements (list shapes, counts, watch catch-up, get, meta,
/// BEGIN/ROLLBACK); rusqlite's default of 16 would evict under a mixed load.
const STATEMENT_CACHE: usize = 64;

/// The revision of an empty store. Its first write gets `INITIAL_REVISION + 1`.
pub const INITIAL_REVISION: Revision = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    revision        INTEGER PRIMARY KEY,
    key             BLOB    NOT NULL,
    created         INTEGER NOT NULL,
    deleted         INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision   INTEGER NOT NULL,
    value           BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_revision ON log (key, revision);
CREATE TABLE IF NOT EXISTS current (
    key      BLOB    PRIMARY KEY,
    revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// State shared by the store handle, the writer thread and watch streams.
pub(crate) struct Shared {
    readers: Arc<ReadPool>,
    current: AtomicI64,
    compacted: AtomicI64,
}

/// The SQLite-backed [`Storage`].
pub struct SqliteStore {
    shared: Arc<Shared>,
    jobs: Option<mpsc::Sender<Job>>,
    /// Kept to subscribe watchers; the writer thread holds the other sender,
    /// so watch streams see `Closed` once the store is dropped.
    events: Option<broadcast::Sender<Arc<crate::Event>>>,
    writer: Option<JoinHandle<()>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and starts its
    /// writer thread. The revision counter and the compacted revision are
    /// kept across restarts.
    pub fn open(path: &Path) -> Result<Arc<SqliteStore>, Error> {
        let conn = Connection::open(path).map_err(db)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::backend(std::io::Error::other(format!(
                "SQLite refused WAL mode (journal_mode is {mode})"
            ))));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db)?;
        configure(&conn).map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        conn.execute(
            "INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', ?1), ('compacted', 0)",
            [INITIAL_REVISION],
        )
        .map_err(db)?;
        let (revision, compacted) = reader::read_meta(&conn).map_err(db)?;

        let shared = Arc::new(Shared {
            readers: Arc::new(ReadPool::new(path.to_owned(), READERS)),
            current: AtomicI64::new(revision),
            compacted: AtomicI64::new(compacted),
        });
        let (jobs_tx, jobs_rx) = mpsc::channel(QUEUE_DEPTH);
        let (events_tx, _) = broadcast::channel(EVENT_BUFFER);
        let writer = Writer::new(
            conn,
            shared.clone(),
            events_tx.clone(),
            jobs_rx,
            revision,
            compacted,
        );
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run())
            .map_err(Error::backend)?;
        tracing::info!(path = %path.display(), revision, compacted, "opened SQLite store");
        Ok(Arc::new(SqliteStore {
            shared,
            jobs: Some(jobs_tx),
            events: Some(events_tx),
            writer: Some(handle),
        }))
    }

    async fn write(&self, request: Request) -> Result<KeyValue, Error> {
        let (resp, rx) = oneshot::channel();
        self.send(Job::Write { request, resp }).await?;
        rx.await.map_err(|_| Error::Closed)?
    }

    async fn send(&self, job: Job) -> Result<(), Error> {
        let jobs = self.jobs.as_ref().ok_or(Error::Closed)?;
        jobs.send(job).await.map_err(|_| Error::Closed)
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the queue ends the writer after it has finished what was
        // queued; wait for it so the file is released when `drop` returns.
        self.jobs = None;
        self.events = None;
        if let Some(handle) = self.writer.take() {
            if handle.join().is_err() {
                tracing::error!("store writer thread panicked");
            }
        }
    }
}

#[async_trait::async_trait]
impl Storage for SqliteStore {
    async fn get(&self, key: &str) -> Result<(Option<KeyValue>, Revision), Error> {
        let key = key.to_owned();
        self.shared
            .readers
            .run(move |conn| reader::get(conn, &key))
            .await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        at_revision: Option<Revision>,
    ) -> Result<ListResult, Error> {
        let query = reader::ListQuery {
            prefix: prefix.to_owned(),
            start_after: start_after.map(str::to_owned),
            limit,
            at_revision,
        };
        self.shared
            .readers
            .run(move |conn| reader::list(conn, &query))
            .await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, Error> {
        self.write(Request::Create {
            key: key.to_owned(),
            value,
        })
        .await
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue, Error> {
        self.write(Request::Update {
            key: key.to_owned(),
            value,
            expected: expected_mod_revision,
        })
        .await
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<KeyValue, Error> {
        self.write(Request::Delete {
            key: key.to_owned(),
            expected: expected_mod_revision,
        })
        .await
    }

    async fn watch(&self, prefix: &str, after_revision: Revision) -> Result<WatchStream, Error> {
        let events = self.events.as_ref().ok_or(Error::Closed)?;
        // Subscribe before reading history, so nothing committed in between
        // is missed; duplicates are skipped by revision.
        let live = events.subscribe();
        watch::start(self.shared.clone(), prefix.to_owned(), after_revision, live).await
    }

    async fn compact(&self, revision: Revision) -> Result<(), Error> {
        let (resp, rx) = oneshot::channel();
        self.send(Job::Compact { revision, resp }).await?;
        rx.await.map_err(|_| Error::Closed)?
    }

    fn current_revision(&self) -> Revision {
        self.shared.current.load(Ordering::Acquire)
    }

    fn compacted_revision(&self) -> Revision {
        self.shared.compacted.load(Ordering::Acquire)
    }
}

/// Settings every connection (writer and readers) gets, so that cached
/// prepared statements stay prepared.
///
/// The query planner stability guarantee (QPSG) makes plans independent of
/// bound values. Without it SQLite marks some parameters "re-plan when
/// rebound" — e.g. the `c.key = ?1` of the join in `get` and `live_row`, via
/// the truth-probability heuristic in `whereLoopOutputAdjust` — and
/// `sqlite3_clear_bindings`, which rusqlite calls whenever a statement goes
/// back into its cache, expires such a statement unconditionally. Every
/// cached use then re-parsed and re-planned the statement inside
/// `sqlite3_step` (`sqlite3Reprepare`). Our plans come from the schema, not
/// from the values (there are no `sqlite_stat*` tables), so nothing is lost.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// Converts a SQLite error into the store's backend error.
fn db(err: rusqlite::Error) -> Error {
    Error::backend(err)
}

/// Builds a [`KeyValue`] from stored columns.
fn key_value(
    key: Vec<u8>,
    value: Vec<u8>,
    create_revision: Revision,
    mod_revision: Revision,
) -> Result<KeyValue, Error> {
    let key = String::from_utf8(key).map_err(Error::backend)?;
    Ok(KeyValue {
        key,
        value: Bytes::from(value),
        create_revision,
        mod_revision,
    })
}

/// Appends `[lo, hi)` conditions on `column` for `prefix` to a SQL `WHERE`
/// clause; the bounds are parameters `?lo` and `?hi`.
fn prefix_condition(column: &str, prefix: &[u8]) -> (String, Vec<u8>, Option<Vec<u8>>) {
    let end = crate::prefix_end(prefix);
    let sql = if end.is_some() {
        format!("{column} >= :lo AND {column} < :hi")
    } else {
        format!("{column} >= :lo")
    };
    (sql, prefix.to_vec(), end)
}

#[cfg(test)]
mod tests;
