//! Revisioned key/value storage: the cluster's state, with watch.
//!
//! The model is etcd v3's: one global [`Revision`] counter shared by every key
//! and strictly increasing with each successful write. Each key carries the
//! revision that created it and the revision that last modified it; the API
//! server uses the latter as an object's `resourceVersion`. Reads can be made
//! at a past revision (until it is compacted away), which gives consistent
//! paged lists, and [`Storage::watch`] replays history from any retained
//! revision before following live writes.
//!
//! **Revision numbering.** An empty store is at revision 1 and its first write
//! gets revision 2, so that no object ever has `resourceVersion` "0" or "1"
//! (the API gives "0" a special meaning: "any revision"). Compaction does not
//! consume revisions.
//!
//! **Architecture invariant:** only this crate knows SQL (or, later, etcd).
//! Everything above it programs against [`Storage`], which maps one-to-one onto
//! etcd's range / txn (compare `mod_revision`) / watch / compact, so an etcd
//! backend can be added without changing callers.
//!
//! Backends:
//! - [`sqlite::SqliteStore`]: embedded, durable (WAL, `synchronous=FULL`),
//!   group commit, kine-like MVCC log table.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

pub mod sqlite;

/// A point in the store's history. Every successful write gets the next one.
pub type Revision = i64;

/// One key's state at some revision.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// The revision of the write that created this incarnation of the key.
    /// Deleting and re-creating a key gives it a new `create_revision`.
    pub create_revision: Revision,
    /// The revision of the last write to the key (its `resourceVersion`).
    pub mod_revision: Revision,
}

/// What a write did to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Created,
    Updated,
    Deleted,
}

/// One write, as seen by watchers.
#[derive(Clone, Debug)]
pub struct Event {
    pub event_type: EventType,
    /// The key after the write. For [`EventType::Deleted`] this is the last
    /// value the key had, with `mod_revision` set to the delete's revision.
    pub kv: KeyValue,
    /// The key before the write: `None` for [`EventType::Created`].
    pub prev: Option<KeyValue>,
}

impl Event {
    /// The revision of the write this event reports.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// The result of [`Storage::list`].
#[derive(Clone, Debug, PartialEq)]
pub struct ListResult {
    /// Live keys, in byte order of the key.
    pub kvs: Vec<KeyValue>,
    /// The revision the list was read at; pass it back as `at_revision` with
    /// `start_after` = the last key to read the next page of the same snapshot.
    pub revision: Revision,
    /// Whether keys remain after the last one returned.
    pub more: bool,
    /// How many keys remain after the last one returned, at `revision`.
    pub remaining: i64,
}

/// A boxed error from a backend (SQLite, etcd client, I/O).
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Store error kinds. The API server turns these into a Kubernetes `Status`
/// in one place.
#[derive(thiserror::Error, Debug)]
pub enum Error {
    #[error("key {key:?} not found")]
    NotFound { key: String },
    #[error("key {key:?} already exists")]
    AlreadyExists { key: String },
    /// The key's `mod_revision` was not the expected one. `current` is the
    /// key's present state when the backend knows it.
    #[error("key {key:?} was modified: {}", describe_current(current))]
    Conflict {
        key: String,
        current: Option<KeyValue>,
    },
    #[error("revision {requested} has been compacted (compacted revision is {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    #[error("revision {requested} is in the future (current revision is {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    #[error("storage backend failed")]
    Backend(#[source] BackendError),
    #[error("store is closed")]
    Closed,
}

fn describe_current(current: &Option<KeyValue>) -> String {
    match current {
        Some(kv) => format!("its mod_revision is now {}", kv.mod_revision),
        None => "it no longer exists".to_owned(),
    }
}

impl Error {
    /// Wraps any backend error.
    pub fn backend(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Backend(Box::new(err))
    }
}

/// A watch: every matching event in revision order, without gaps or
/// duplicates. It ends after yielding an error (e.g. [`Error::Compacted`] when
/// a slow watcher fell behind compaction, or [`Error::Closed`]).
pub type WatchStream = Pin<Box<dyn futures::Stream<Item = Result<Arc<Event>, Error>> + Send>>;

/// The revisioned key/value store under the API server.
///
/// Keys are compared as bytes; a "prefix" selects every key that starts with
/// it (the empty prefix selects everything).
#[async_trait::async_trait]
pub trait Storage: Send + Sync + 'static {
    /// The live value of `key` (if any) and the store's current revision, read
    /// from the same snapshot.
    async fn get(&self, key: &str) -> Result<(Option<KeyValue>, Revision), Error>;

    /// Live keys under `prefix`, in byte order, strictly after `start_after`
    /// (for continue tokens), at most `limit` of them, as of `at_revision`
    /// (`None` = current). A revision older than the compacted one fails with
    /// [`Error::Compacted`]; one newer than current with
    /// [`Error::FutureRevision`].
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        at_revision: Option<Revision>,
    ) -> Result<ListResult, Error>;

    /// Creates `key`; [`Error::AlreadyExists`] if it is live.
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, Error>;

    /// Replaces `key`'s value if its `mod_revision` is `expected_mod_revision`;
    /// [`Error::NotFound`] if it is not live, [`Error::Conflict`] otherwise.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue, Error>;

    /// Deletes `key` (only if its `mod_revision` matches, when given). Returns
    /// the last value with `mod_revision` = the delete's revision.
    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<KeyValue, Error>;

    /// Every event on keys under `prefix` with revision > `after_revision`, in
    /// revision order, then live ones. [`Error::Compacted`] if
    /// `after_revision` is older than the compacted revision.
    async fn watch(&self, prefix: &str, after_revision: Revision) -> Result<WatchStream, Error>;

    /// Drops history older than `revision`, keeping each key's latest state as
    /// of `revision`. Reads and watches before it then fail with
    /// [`Error::Compacted`].
    async fn compact(&self, revision: Revision) -> Result<(), Error>;

    /// The revision of the last acknowledged write (1 for an empty store).
    fn current_revision(&self) -> Revision;

    /// The revision history was last compacted to (0 if never).
    fn compacted_revision(&self) -> Revision;
}

/// The smallest byte string greater than every string starting with `prefix`,
/// or `None` if there is none (empty prefix, or all 0xff bytes).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_cases() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"", None),
            (b"/registry/pods/", Some(b"/registry/pods0")),
            (b"a", Some(b"b")),
            (&[b'a', 0xff], Some(b"b")),
            (&[0xff, 0xff], None),
        ];
        for (prefix, want) in cases {
            assert_eq!(prefix_end(prefix).as_deref(), *want, "prefix {prefix:?}");
        }
    }
}
