//! Read connections and the read queries (get, list).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use super::{configure, db, key_value, prefix_condition};
use crate::{Error, KeyValue, ListResult, Revision};

/// A few read-only connections, used from blocking threads.
pub(crate) struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    pub(crate) fn new(path: PathBuf, size: usize) -> Self {
        ReadPool {
            path,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Arc::new(Semaphore::new(size)),
        }
    }

    /// Runs `f` on a read connection inside one read transaction (a single
    /// consistent snapshot), on a blocking thread.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)?;
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = match pool.take_idle() {
                Some(conn) => conn,
                None => open_reader(&pool.path)?,
            };
            // BEGIN and ROLLBACK as cached statements: `execute_batch` (what
            // rusqlite's `Transaction` uses) parses them on every call.
            conn.prepare_cached("BEGIN DEFERRED")
                .and_then(|mut begin| begin.execute([]))
                .map_err(db)?;
            let result = f(&conn);
            // Read-only: ending it either way just releases the snapshot.
            conn.prepare_cached("ROLLBACK")
                .and_then(|mut rollback| rollback.execute([]))
                .map_err(db)?;
            pool.put_idle(conn);
            result
        })
        .await
        .map_err(Error::backend)?
    }

    fn take_idle(&self) -> Option<Connection> {
        // A poisoned lock only means another reader panicked; the Vec is fine.
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn put_idle(&self, conn: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
    }
}

fn open_reader(path: &std::path::Path) -> Result<Connection, Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(db)?;
    configure(&conn).map_err(db)?;
    // Map the file rather than copying pages through SQLite's cache: lists
    // of large objects are mostly value bytes.
    conn.pragma_update(None, "mmap_size", 1i64 << 30)
        .map_err(db)?;
    conn.pragma_update(None, "cache_size", -16_384)
        .map_err(db)?;
    Ok(conn)
}

/// The current and compacted revisions, as stored.
pub(crate) fn read_meta(conn: &Connection) -> rusqlite::Result<(Revision, Revision)> {
    conn.prepare_cached(
        "SELECT (SELECT value FROM meta WHERE name = 'revision'),
                (SELECT value FROM meta WHERE name = 'compacted')",
    )?
    .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
}

pub(crate) fn get(conn: &Connection, key: &str) -> Result<(Option<KeyValue>, Revision), Error> {
    let (revision, _) = read_meta(conn).map_err(db)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT l.value, l.create_revision, l.revision
             FROM current c JOIN log l ON l.revision = c.revision
             WHERE c.key = ?1",
        )
        .map_err(db)?;
    let mut rows = stmt.query([key.as_bytes()]).map_err(db)?;
    let kv = match rows.next().map_err(db)? {
        Some(row) => Some(key_value(
            key.as_bytes().to_vec(),
            row.get(0).map_err(db)?,
            row.get(1).map_err(db)?,
            row.get(2).map_err(db)?,
        )?),
        None => None,
    };
    Ok((kv, revision))
}

pub(crate) struct ListQuery {
    pub(crate) prefix: String,
    pub(crate) start_after: Option<String>,
    pub(crate) limit: Option<usize>,
    pub(crate) at_revision: Option<Revision>,
}

pub(crate) fn list(conn: &Connection, q: &ListQuery) -> Result<ListResult, Error> {
    let (current, compacted) = read_meta(conn).map_err(db)?;
    let revision = match q.at_revision {
        None => current,
        Some(r) if r > current => {
            return Err(Error::FutureRevision {
                requested: r,
                current,
            })
        }
        Some(r) if r < compacted => {
            return Err(Error::Compacted {
                requested: r,
                compacted,
            })
        }
        Some(r) => r,
    };
    let latest = revision == current;
    let after = q.start_after.as_deref().map(str::as_bytes);
    let lo = q.prefix.as_bytes();
    let hi = crate::prefix_end(lo);
    // Fetch one extra row to learn whether more remain.
    let fetch: i64 = match q.limit {
        Some(n) => i64::try_from(n).unwrap_or(i64::MAX - 1) + 1,
        None => -1,
    };
    let select = list_sql(ListSql {
        latest,
        bounded: hi.is_some(),
        after: after.is_some(),
        count: false,
    });
    let mut stmt = conn.prepare_cached(&select).map_err(db)?;
    let mut params: Vec<(&str, &dyn rusqlite::ToSql)> = vec![(":lo", &lo), (":fetch", &fetch)];
    if let Some(hi) = &hi {
        params.push((":hi", hi));
    }
    if let Some(after) = &after {
        params.push((":after", after));
    }
    if !latest {
        params.push((":rev", &revision));
    }
    let mut rows = stmt.query(params.as_slice()).map_err(db)?;
    let mut kvs = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        kvs.push(key_value(
            row.get(0).map_err(db)?,
            row.get(1).map_err(db)?,
            row.get(2).map_err(db)?,
            row.get(3).map_err(db)?,
        )?);
    }
    drop(rows);

    let more = q.limit.is_some_and(|n| kvs.len() > n);
    let mut remaining = 0;
    if let (true, Some(n)) = (more, q.limit) {
        kvs.truncate(n);
        // `more` implies n ≥ 0 rows kept and at least one beyond; count the
        // keys after the last one returned (or after `start_after` if n = 0).
        let last: Option<Vec<u8>> = kvs
            .last()
            .map(|kv| kv.key.as_bytes().to_vec())
            .or_else(|| after.map(<[u8]>::to_vec));
        remaining = count_after(conn, q, last, revision, latest)?;
    }
    Ok(ListResult {
        kvs,
        revision,
        more,
        remaining,
    })
}

/// The shape of a list query. Parameters: `:lo`, `:hi` (if `bounded`),
/// `:after` (if `after`), `:rev` (unless `latest`), `:fetch` (unless `count`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ListSql {
    /// Read the current state (`current` table) rather than the log at `:rev`.
    pub(crate) latest: bool,
    /// The prefix has an upper bound `:hi`.
    pub(crate) bounded: bool,
    /// Only keys after `:after`.
    pub(crate) after: bool,
    /// Count the keys instead of returning them.
    pub(crate) count: bool,
}

pub(crate) fn list_sql(shape: ListSql) -> String {
    let mut filter = String::from("l.key >= :lo");
    if shape.bounded {
        filter.push_str(" AND l.key < :hi");
    }
    if shape.after {
        filter.push_str(" AND l.key > :after");
    }
    let columns = if shape.count {
        "COUNT(*)"
    } else {
        "l.key, l.value, l.create_revision, l.revision"
    };
    let tail = if shape.count {
        ""
    } else {
        " ORDER BY l.key LIMIT :fetch"
    };
    if shape.latest {
        if shape.count {
            return format!("SELECT COUNT(*) FROM current l WHERE {filter}");
        }
        // Live keys in key order from `current`, values by primary key.
        let filter = filter.replace("l.key", "c.key");
        format!(
            "SELECT c.key, l.value, l.create_revision, l.revision
             FROM current c JOIN log l ON l.revision = c.revision
             WHERE {filter} ORDER BY c.key LIMIT :fetch"
        )
    } else {
        // Each key's newest row at or before :rev, walked in key order
        // through the (key, revision) index; a tombstone hides the key.
        format!(
            "SELECT {columns} FROM log l
             WHERE {filter} AND l.revision <= :rev AND l.deleted = 0
               AND NOT EXISTS (SELECT 1 FROM log n WHERE n.key = l.key
                               AND n.revision > l.revision AND n.revision <= :rev){tail}"
        )
    }
}

fn count_after(
    conn: &Connection,
    q: &ListQuery,
    after: Option<Vec<u8>>,
    revision: Revision,
    latest: bool,
) -> Result<i64, Error> {
    let lo = q.prefix.as_bytes();
    let hi = crate::prefix_end(lo);
    let sql = list_sql(ListSql {
        latest,
        bounded: hi.is_some(),
        after: after.is_some(),
        count: true,
    });
    let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
    let mut params: Vec<(&str, &dyn rusqlite::ToSql)> = vec![(":lo", &lo)];
    if let Some(hi) = &hi {
        params.push((":hi", hi));
    }
    if let Some(after) = &after {
        params.push((":after", after));
    }
    if !latest {
        params.push((":rev", &revision));
    }
    stmt.query_row(params.as_slice(), |row| row.get(0))
        .map_err(db)
}

/// Rows of the log with revision in `(after, up_to]` on keys under `prefix`,
/// oldest first, at most `limit`, with each row's previous row.
pub(crate) fn log_rows(
    conn: &Connection,
    prefix: &str,
    after: Revision,
    up_to: Revision,
    limit: i64,
) -> Result<Vec<crate::Event>, Error> {
    use crate::{Event, EventType};
    let (range, lo, hi) = prefix_condition("l.key", prefix.as_bytes());
    let sql = format!(
        "SELECT l.revision, l.key, l.created, l.deleted, l.create_revision, l.value,
                p.revision, p.create_revision, p.value
         FROM log l LEFT JOIN log p ON p.revision = l.prev_revision AND l.created = 0
         WHERE l.revision > :after AND l.revision <= :up_to AND {range}
         ORDER BY l.revision LIMIT :limit"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
    let mut params: Vec<(&str, &dyn rusqlite::ToSql)> = vec![
        (":after", &after),
        (":up_to", &up_to),
        (":lo", &lo),
        (":limit", &limit),
    ];
    if let Some(hi) = &hi {
        params.push((":hi", hi));
    }
    let mut rows = stmt.query(params.as_slice()).map_err(db)?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        let revision: Revision = row.get(0).map_err(db)?;
        let key: Vec<u8> = row.get(1).map_err(db)?;
        let created: bool = row.get(2).map_err(db)?;
        let deleted: bool = row.get(3).map_err(db)?;
        let event_type = if deleted {
            EventType::Deleted
        } else if created {
            EventType::Created
        } else {
            EventType::Updated
        };
        let prev_revision: Option<Revision> = row.get(6).map_err(db)?;
        let prev = match prev_revision {
            Some(prev_revision) => Some(key_value(
                key.clone(),
                row.get(8).map_err(db)?,
                row.get(7).map_err(db)?,
                prev_revision,
            )?),
            None => None,
        };
        let kv = key_value(
            key,
            row.get(5).map_err(db)?,
            row.get(4).map_err(db)?,
            revision,
        )?;
        events.push(Event {
            event_type,
            kv,
            prev,
        });
    }
    Ok(events)
}
