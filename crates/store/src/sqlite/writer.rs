//! The writer thread: owns the write connection, applies queued writes in
//! group-committed batches and runs compaction in bounded steps.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{Shared, MAX_BATCH};
use crate::{Error, Event, EventType, KeyValue, Revision};

/// Revisions of history examined per compaction transaction, so a large
/// compaction never holds up writes for long.
const COMPACT_STEP: Revision = 10_000;

pub(crate) enum Request {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

pub(crate) enum Job {
    Write {
        request: Request,
        resp: oneshot::Sender<Result<KeyValue, Error>>,
    },
    Compact {
        revision: Revision,
        resp: oneshot::Sender<Result<(), Error>>,
    },
}

type WriteResp = oneshot::Sender<Result<KeyValue, Error>>;

pub(crate) struct Writer {
    conn: Connection,
    shared: Arc<Shared>,
    events: broadcast::Sender<Arc<Event>>,
    jobs: mpsc::Receiver<Job>,
    /// The last committed revision.
    revision: Revision,
    /// The revision history has been compacted to so far.
    compacted: Revision,
    /// Compactions asked for and not yet reached.
    compactions: Vec<(Revision, oneshot::Sender<Result<(), Error>>)>,
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        shared: Arc<Shared>,
        events: broadcast::Sender<Arc<Event>>,
        jobs: mpsc::Receiver<Job>,
        revision: Revision,
        compacted: Revision,
    ) -> Self {
        Writer {
            conn,
            shared,
            events,
            jobs,
            revision,
            compacted,
            compactions: Vec::new(),
        }
    }

    /// Runs until every job sender is gone and queued work is done.
    pub(crate) fn run(mut self) {
        let mut batch: Vec<(Request, WriteResp)> = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = if self.compactions.is_empty() {
                match self.jobs.blocking_recv() {
                    Some(job) => Some(job),
                    None => break,
                }
            } else {
                // A compaction is in progress: take writes without waiting,
                // then do its next step.
                self.jobs.try_recv().ok()
            };
            if let Some(job) = first {
                self.take(job, &mut batch);
                while batch.len() < MAX_BATCH {
                    match self.jobs.try_recv() {
                        Ok(job) => self.take(job, &mut batch),
                        Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                    }
                }
            }
            if !batch.is_empty() {
                self.apply(&mut batch);
            }
            if !self.compactions.is_empty() {
                self.compact_step();
            }
        }
        tracing::debug!(revision = self.revision, "store writer stopped");
    }

    fn take(&mut self, job: Job, batch: &mut Vec<(Request, WriteResp)>) {
        match job {
            Job::Write { request, resp } => batch.push((request, resp)),
            Job::Compact { revision, resp } => {
                if revision > self.revision {
                    let _ = resp.send(Err(Error::FutureRevision {
                        requested: revision,
                        current: self.revision,
                    }));
                } else if revision < self.compacted {
                    let _ = resp.send(Err(Error::Compacted {
                        requested: revision,
                        compacted: self.compacted,
                    }));
                } else if revision == self.compacted {
                    let _ = resp.send(Ok(()));
                } else {
                    self.compactions.push((revision, resp));
                }
            }
        }
    }

    /// Applies `batch` in one transaction, then publishes and answers.
    fn apply(&mut self, batch: &mut Vec<(Request, WriteResp)>) {
        let start = self.revision;
        let outcome = self.apply_in_txn(batch);
        match outcome {
            Ok((results, revision)) => {
                self.revision = revision;
                self.shared.current.store(revision, Ordering::Release);
                for ((_, resp), result) in batch.drain(..).zip(results) {
                    let reply = match result {
                        Ok(event) => {
                            let event = Arc::new(event);
                            let kv = event.kv.clone();
                            // No receivers is fine: nobody is watching.
                            let _ = self.events.send(event);
                            Ok(kv)
                        }
                        Err(err) => Err(err),
                    };
                    let _ = resp.send(reply);
                }
            }
            Err(err) => {
                // Nothing was committed; revisions are reused by the next batch.
                self.revision = start;
                tracing::error!(error = %err, requests = batch.len(), "store write batch failed");
                let err = Arc::new(err);
                for (_, resp) in batch.drain(..) {
                    let _ = resp.send(Err(Error::Backend(Box::new(err.clone()))));
                }
            }
        }
    }

    /// Returns each request's outcome (a condition failure is an outcome, not
    /// an error) and the last revision used; `Err` means nothing committed.
    #[allow(clippy::type_complexity)]
    fn apply_in_txn(
        &self,
        batch: &[(Request, WriteResp)],
    ) -> rusqlite::Result<(Vec<Result<Event, Error>>, Revision)> {
        let start = self.revision;
        immediate(&self.conn, |txn| {
            let mut revision = start;
            let mut results = Vec::with_capacity(batch.len());
            for (request, _) in batch {
                let result = apply_one(txn, request, revision + 1)?;
                if result.is_ok() {
                    revision += 1;
                }
                results.push(result);
            }
            if revision != start {
                txn.prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'revision'")?
                    .execute([revision])?;
            }
            Ok((results, revision))
        })
    }

    /// Compacts up to `COMPACT_STEP` revisions further towards the highest
    /// requested target, in one transaction.
    fn compact_step(&mut self) {
        let Some(goal) = self.compactions.iter().map(|(r, _)| *r).max() else {
            return;
        };
        let from = self.compacted;
        let to = goal.min(from + COMPACT_STEP);
        match compact_range(&self.conn, from, to) {
            Ok(deleted) => {
                self.compacted = to;
                self.shared.compacted.store(to, Ordering::Release);
                tracing::debug!(from, to, deleted, "compacted store history");
                let (done, waiting) = std::mem::take(&mut self.compactions)
                    .into_iter()
                    .partition(|(r, _)| *r <= to);
                self.compactions = waiting;
                for (_, resp) in done {
                    let _ = resp.send(Ok(()));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, from, to, "store compaction failed");
                let err = Arc::new(err);
                for (_, resp) in self.compactions.drain(..) {
                    let _ = resp.send(Err(Error::Backend(Box::new(err.clone()))));
                }
            }
        }
    }
}

/// The key's live row: (mod_revision, create_revision, value).
fn live_row(
    txn: &Connection,
    key: &str,
) -> rusqlite::Result<Option<(Revision, Revision, Vec<u8>)>> {
    txn.prepare_cached(
        "SELECT l.revision, l.create_revision, l.value
         FROM current c JOIN log l ON l.revision = c.revision
         WHERE c.key = ?1",
    )?
    .query_row([key.as_bytes()], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    })
    .optional()
}

/// Applies one request at `revision` if its condition holds.
fn apply_one(
    txn: &Connection,
    request: &Request,
    revision: Revision,
) -> rusqlite::Result<Result<Event, Error>> {
    let insert_log = |key: &str,
                      created: bool,
                      deleted: bool,
                      create_revision: Revision,
                      prev_revision: Revision,
                      value: &[u8]|
     -> rusqlite::Result<()> {
        txn.prepare_cached(
            "INSERT INTO log (revision, key, created, deleted, create_revision, prev_revision, value)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            revision,
            key.as_bytes(),
            created,
            deleted,
            create_revision,
            prev_revision,
            value
        ])?;
        Ok(())
    };
    let set_current = |key: &str| -> rusqlite::Result<()> {
        txn.prepare_cached("INSERT OR REPLACE INTO current (key, revision) VALUES (?1, ?2)")?
            .execute(params![key.as_bytes(), revision])?;
        Ok(())
    };
    let prev_kv =
        |key: &str, (mod_revision, create_revision, value): (Revision, Revision, Vec<u8>)| {
            KeyValue {
                key: key.to_owned(),
                value: Bytes::from(value),
                create_revision,
                mod_revision,
            }
        };

    match request {
        Request::Create { key, value } => {
            if live_row(txn, key)?.is_some() {
                return Ok(Err(Error::AlreadyExists { key: key.clone() }));
            }
            insert_log(key, true, false, revision, 0, value)?;
            set_current(key)?;
            Ok(Ok(Event {
                event_type: EventType::Created,
                kv: KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                    create_revision: revision,
                    mod_revision: revision,
                },
                prev: None,
            }))
        }
        Request::Update {
            key,
            value,
            expected,
        } => {
            let Some(row) = live_row(txn, key)? else {
                return Ok(Err(Error::NotFound { key: key.clone() }));
            };
            let prev = prev_kv(key, row);
            if prev.mod_revision != *expected {
                return Ok(Err(Error::Conflict {
                    key: key.clone(),
                    current: Some(prev),
                }));
            }
            insert_log(
                key,
                false,
                false,
                prev.create_revision,
                prev.mod_revision,
                value,
            )?;
            set_current(key)?;
            Ok(Ok(Event {
                event_type: EventType::Updated,
                kv: KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                    create_revision: prev.create_revision,
                    mod_revision: revision,
                },
                prev: Some(prev),
            }))
        }
        Request::Delete { key, expected } => {
            let Some(row) = live_row(txn, key)? else {
                return Ok(Err(Error::NotFound { key: key.clone() }));
            };
            let prev = prev_kv(key, row);
            if expected.is_some_and(|e| e != prev.mod_revision) {
                return Ok(Err(Error::Conflict {
                    key: key.clone(),
                    current: Some(prev),
                }));
            }
            // The tombstone keeps the last value, so replayed delete events
            // carry it like live ones do.
            insert_log(
                key,
                false,
                true,
                prev.create_revision,
                prev.mod_revision,
                &prev.value,
            )?;
            txn.prepare_cached("DELETE FROM current WHERE key = ?1")?
                .execute([key.as_bytes()])?;
            Ok(Ok(Event {
                event_type: EventType::Deleted,
                kv: KeyValue {
                    mod_revision: revision,
                    ..prev.clone()
                },
                prev: Some(prev),
            }))
        }
    }
}

/// Moves the compacted revision from `from` to `to`: drops rows superseded
/// by a row in `(from, to]` and tombstones in `[from, to)`. Rows below `from`
/// still present are each key's latest state as of `from`, so only rows in
/// `(from, to]` can supersede them. Returns how many rows were deleted.
fn compact_range(conn: &Connection, from: Revision, to: Revision) -> rusqlite::Result<usize> {
    immediate(conn, |txn| {
        let mut deleted = txn
            .prepare_cached(
                "DELETE FROM log WHERE revision IN (
                     SELECT prev_revision FROM log
                     WHERE revision > ?1 AND revision <= ?2 AND prev_revision > 0)",
            )?
            .execute(params![from, to])?;
        deleted += txn
            .prepare_cached(
                "DELETE FROM log WHERE deleted = 1 AND revision >= ?1 AND revision < ?2",
            )?
            .execute(params![from, to])?;
        txn.prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'compacted'")?
            .execute([to])?;
        Ok(deleted)
    })
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction and commits it; if `f` or the
/// commit fails, rolls back whatever is still open and returns the error
/// (what rusqlite's `Transaction` does on drop). BEGIN, COMMIT and ROLLBACK
/// are cached statements: `Transaction` sends them through `execute_batch`,
/// which parses them anew every time.
///
/// With WAL and synchronous=FULL, COMMIT returns after the fsync, so a
/// returned `Ok` means the writes are durable.
fn immediate<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let result = f(conn).and_then(|value| {
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(value)
    });
    if result.is_err() && !conn.is_autocommit() {
        if let Err(err) = conn
            .prepare_cached("ROLLBACK")
            .and_then(|mut rollback| rollback.execute([]))
        {
            tracing::error!(error = %err, "store rollback failed");
        }
    }
    result
}
