//! Watch streams: history from the log table, then live events.
//!
//! The writer publishes one `Arc<Event>` per committed write, in revision
//! order, on a broadcast channel; every watcher shares those Arcs and filters
//! by prefix itself. A watcher remembers `last`, the highest revision it has
//! accounted for (delivered or filtered out). It subscribes *before* reading
//! history, so every write is either in the history it reads or still in its
//! receiver; anything at or below `last` is a duplicate and skipped.
//!
//! Published revisions are contiguous. If the receiver lags (the broadcast
//! buffer overflowed) or the next live event is not `last + 1`, the watcher
//! reads the missing range from the log table, in chunks, and carries on;
//! if that range has been compacted away it yields [`Error::Compacted`] and
//! ends.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::reader::{log_rows, read_meta};
use super::{db, Shared};
use crate::{Error, Event, Revision, WatchStream};

/// Log rows read per catch-up query.
const CATCH_UP_CHUNK: i64 = 1_000;

struct Watcher {
    shared: Arc<Shared>,
    prefix: String,
    live: broadcast::Receiver<Arc<Event>>,
    /// Every revision up to here has been delivered or filtered out.
    last: Revision,
    /// History read from the log and not yet yielded.
    pending: VecDeque<Arc<Event>>,
    /// The log may hold revisions after `last` not yet read.
    catching_up: bool,
    finished: bool,
}

/// Starts a watch. Reads the first chunk of history before returning, so a
/// compacted start revision fails here rather than in the stream.
pub(crate) async fn start(
    shared: Arc<Shared>,
    prefix: String,
    after_revision: Revision,
    live: broadcast::Receiver<Arc<Event>>,
) -> Result<WatchStream, Error> {
    let mut watcher = Watcher {
        shared,
        prefix,
        live,
        last: after_revision,
        pending: VecDeque::new(),
        catching_up: true,
        finished: false,
    };
    watcher.catch_up().await?;
    Ok(Box::pin(futures::stream::unfold(
        watcher,
        |mut watcher| async move {
            let item = watcher.next().await?;
            Some((item, watcher))
        },
    )))
}

impl Watcher {
    async fn next(&mut self) -> Option<Result<Arc<Event>, Error>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.finished {
                return None;
            }
            if self.catching_up {
                if let Err(err) = self.catch_up().await {
                    self.finished = true;
                    return Some(Err(err));
                }
                continue;
            }
            match self.live.recv().await {
                Ok(event) => {
                    let revision = event.revision();
                    if revision <= self.last {
                        continue;
                    }
                    if revision != self.last + 1 {
                        // Missed something: the log has it.
                        self.catching_up = true;
                        continue;
                    }
                    self.last = revision;
                    if event.kv.key.starts_with(&self.prefix) {
                        return Some(Ok(event));
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(
                        missed,
                        last = self.last,
                        "watcher lagged; catching up from the log"
                    );
                    self.catching_up = true;
                }
                Err(RecvError::Closed) => {
                    self.finished = true;
                    return Some(Err(Error::Closed));
                }
            }
        }
    }

    /// Reads the next chunk of history after `last` into `pending`.
    async fn catch_up(&mut self) -> Result<(), Error> {
        let prefix = self.prefix.clone();
        let last = self.last;
        let (events, scanned_to, done) = self
            .shared
            .readers
            .run(move |conn| {
                let (current, compacted) = read_meta(conn).map_err(db)?;
                if last < compacted {
                    return Err(Error::Compacted {
                        requested: last,
                        compacted,
                    });
                }
                if last >= current {
                    return Ok((Vec::new(), last, true));
                }
                let events = log_rows(conn, &prefix, last, current, CATCH_UP_CHUNK)?;
                let full = i64::try_from(events.len()).unwrap_or(i64::MAX) >= CATCH_UP_CHUNK;
                let scanned_to = match (full, events.last()) {
                    (true, Some(event)) => event.revision(),
                    _ => current,
                };
                Ok((events, scanned_to, !full))
            })
            .await?;
        self.pending.extend(events.into_iter().map(Arc::new));
        self.last = self.last.max(scanned_to);
        self.catching_up = !done;
        Ok(())
    }
}
