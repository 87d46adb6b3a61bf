//! Controller expectations (`pkg/controller/controller_utils.go`): after a
//! controller creates or deletes pods it waits to *see* those changes in its
//! cache before acting on the same owner again, so a slow watch never makes
//! it create (or delete) a second time. Expectations expire after five
//! minutes, in case a watch event was lost for good.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long unmet expectations block a controller (`ExpectationsTimeout`).
pub const TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Expected {
    adds: i64,
    /// Keys of the pods whose deletion is awaited.
    deletes: HashSet<String>,
    set_at: Instant,
}

/// Per-owner counts of awaited creations and awaited deletions. Cheap to clone.
#[derive(Clone, Default)]
pub struct Expectations {
    by_owner: Arc<Mutex<HashMap<String, Expected>>>,
}

impl Expectations {
    pub fn new() -> Expectations {
        Expectations::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Expected>) -> T) -> T {
        f(&mut self.by_owner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether the owner may be synced: everything awaited was seen, the
    /// expectations expired, or none were ever set.
    pub fn satisfied(&self, owner: &str) -> bool {
        self.with(|m| match m.get(owner) {
            None => true,
            Some(e) => (e.adds <= 0 && e.deletes.is_empty()) || e.set_at.elapsed() > TIMEOUT,
        })
    }

    /// Awaits `adds` creations (replacing what was awaited before).
    pub fn expect_creations(&self, owner: &str, adds: usize) {
        self.with(|m| {
            m.insert(
                owner.to_string(),
                Expected {
                    adds: adds as i64,
                    deletes: HashSet::new(),
                    set_at: Instant::now(),
                },
            )
        });
    }

    /// Awaits the deletion of these pods (by cache key), replacing what was
    /// awaited before.
    pub fn expect_deletions(&self, owner: &str, pods: impl IntoIterator<Item = String>) {
        self.with(|m| {
            m.insert(
                owner.to_string(),
                Expected {
                    adds: 0,
                    deletes: pods.into_iter().collect(),
                    set_at: Instant::now(),
                },
            )
        });
    }

    /// A creation was seen, or one will never happen (the create failed).
    pub fn creation_observed(&self, owner: &str) {
        self.with(|m| {
            if let Some(e) = m.get_mut(owner) {
                e.adds -= 1;
            }
        });
    }

    /// A deletion was seen, or will never happen (the delete failed).
    pub fn deletion_observed(&self, owner: &str, pod: &str) {
        self.with(|m| {
            if let Some(e) = m.get_mut(owner) {
                e.deletes.remove(pod);
            }
        });
    }

    /// Forgets the owner (it was deleted).
    pub fn forget(&self, owner: &str) {
        self.with(|m| m.remove(owner));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn satisfied_once_every_awaited_change_is_seen() {
        let e = Expectations::new();
        assert!(e.satisfied("ns/rs"), "nothing awaited");
        e.expect_creations("ns/rs", 2);
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(e.satisfied("ns/rs"));

        e.expect_deletions("ns/rs", ["ns/a".to_string(), "ns/b".to_string()]);
        e.deletion_observed("ns/rs", "ns/a");
        e.deletion_observed("ns/rs", "ns/a");
        assert!(!e.satisfied("ns/rs"), "the same pod twice counts once");
        e.deletion_observed("ns/rs", "ns/b");
        assert!(e.satisfied("ns/rs"));
    }
}
