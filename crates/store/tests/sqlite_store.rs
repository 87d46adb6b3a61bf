//! Behaviour of the SQLite store through the public `Storage` trait.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use store::sqlite::SqliteStore;
use store::{Error, Event, EventType, KeyValue, Revision, Storage, WatchStream};

fn open() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
    (dir, store)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// The next event, failing the test if none arrives soon.
async fn next_event(w: &mut WatchStream) -> Arc<Event> {
    tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("watch event within 10s")
        .expect("watch stream still open")
        .expect("watch event, not error")
}

/// Asserts nothing arrives on the watch for a short while.
async fn assert_quiet(w: &mut WatchStream) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(200), w.next()).await {
        panic!("unexpected watch item: {item:?}");
    }
}

fn summary(e: &Event) -> (EventType, String, Revision) {
    (e.event_type, e.kv.key.clone(), e.kv.mod_revision)
}

#[tokio::test]
async fn empty_store_starts_at_revision_one_and_first_write_gets_two() {
    let (_dir, store) = open();
    assert_eq!(store.current_revision(), 1);
    assert_eq!(store.compacted_revision(), 0);
    assert_eq!(store.get("/a").await.unwrap(), (None, 1));
    let kv = store.create("/a", b("1")).await.unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision), (2, 2));
    assert_eq!(store.current_revision(), 2);
}

#[tokio::test]
async fn crud_and_conditions() {
    let (_dir, store) = open();
    let created = store.create("/r/a", b("v1")).await.unwrap();
    assert_eq!(
        created,
        KeyValue {
            key: "/r/a".into(),
            value: b("v1"),
            create_revision: 2,
            mod_revision: 2
        }
    );
    assert!(matches!(
        store.create("/r/a", b("again")).await,
        Err(Error::AlreadyExists { key }) if key == "/r/a"
    ));
    assert_eq!(store.get("/r/a").await.unwrap(), (Some(created.clone()), 2));

    // Update with a stale revision: Conflict carrying the current value.
    let updated = store.update("/r/a", b("v2"), 2).await.unwrap();
    assert_eq!((updated.create_revision, updated.mod_revision), (2, 3));
    match store.update("/r/a", b("v3"), 2).await {
        Err(Error::Conflict { key, current }) => {
            assert_eq!(key, "/r/a");
            assert_eq!(current, Some(updated.clone()));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(matches!(
        store.update("/r/missing", b("x"), 2).await,
        Err(Error::NotFound { .. })
    ));
    // Failed writes consumed no revision.
    assert_eq!(store.current_revision(), 3);

    // Conditional delete.
    assert!(matches!(
        store.delete("/r/a", Some(2)).await,
        Err(Error::Conflict { current: Some(kv), .. }) if kv.mod_revision == 3
    ));
    let deleted = store.delete("/r/a", Some(3)).await.unwrap();
    assert_eq!(
        deleted,
        KeyValue {
            key: "/r/a".into(),
            value: b("v2"),
            create_revision: 2,
            mod_revision: 4
        }
    );
    assert_eq!(store.get("/r/a").await.unwrap(), (None, 4));
    assert!(matches!(
        store.delete("/r/a", None).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.update("/r/a", b("x"), 4).await,
        Err(Error::NotFound { .. })
    ));

    // Re-creating gives a new create_revision; unconditional delete works.
    let again = store.create("/r/a", b("v4")).await.unwrap();
    assert_eq!((again.create_revision, again.mod_revision), (5, 5));
    assert_eq!(store.delete("/r/a", None).await.unwrap().mod_revision, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conditions_hold_within_one_batch() {
    let (_dir, store) = open();
    // Many concurrent creates of one key land in few batches: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.create("/same", Bytes::from(format!("{i}"))).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(kv) => {
                won += 1;
                assert_eq!(kv.mod_revision, 2);
            }
            Err(Error::AlreadyExists { .. }) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(store.current_revision(), 2);

    // Concurrent compare-and-swap updates from the same revision: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.update("/same", Bytes::from(format!("u{i}")), 2).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(Error::Conflict {
                current: Some(kv), ..
            }) => assert_eq!(kv.mod_revision, 3),
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn list_prefix_order_and_bounds() {
    let (_dir, store) = open();
    for key in ["/p/b", "/p/a", "/p/c", "/pz", "/o", "/p/a/x"] {
        store.create(key, b(key)).await.unwrap();
    }
    store.delete("/p/c", None).await.unwrap();
    let all = store.list("/p/", None, None, None).await.unwrap();
    let keys: Vec<_> = all.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/p/a", "/p/a/x", "/p/b"]);
    assert_eq!((all.revision, all.more, all.remaining), (8, false, 0));
    let everything = store.list("", None, None, None).await.unwrap();
    assert_eq!(everything.kvs.len(), 5);

    assert!(matches!(
        store.list("/p/", None, None, Some(9)).await,
        Err(Error::FutureRevision {
            requested: 9,
            current: 8
        })
    ));
    // At a past revision, /p/c is still there and /p/a/x not yet.
    let past = store.list("/p/", None, None, Some(4)).await.unwrap();
    let keys: Vec<_> = past.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/p/a", "/p/b", "/p/c"]);
    assert_eq!(past.revision, 4);
}

/// Lists `prefix` page by page at one revision, as a client following
/// continue tokens would.
async fn list_paged(store: &SqliteStore, prefix: &str, page: usize) -> (Vec<KeyValue>, Revision) {
    let first = store.list(prefix, None, Some(page), None).await.unwrap();
    let revision = first.revision;
    let mut kvs = first.kvs;
    let mut more = first.more;
    let mut remaining = first.remaining;
    while more {
        let after = kvs.last().unwrap().key.clone();
        let next = store
            .list(prefix, Some(&after), Some(page), Some(revision))
            .await
            .unwrap();
        assert_eq!(next.revision, revision);
        assert_eq!(
            remaining,
            next.kvs.len() as i64 + next.remaining,
            "remaining must count the keys still to come at the list's revision"
        );
        kvs.extend(next.kvs);
        more = next.more;
        remaining = next.remaining;
    }
    assert_eq!(remaining, 0);
    (kvs, revision)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paging_at_a_fixed_revision_is_a_consistent_snapshot_while_writes_continue() {
    let (_dir, store) = open();
    for i in 0..200 {
        store
            .create(&format!("/pods/p{i:04}"), Bytes::from(format!("v0-{i}")))
            .await
            .unwrap();
    }
    let snapshot_rev = store.current_revision();
    let expected = store.list("/pods/", None, None, None).await.unwrap().kvs;

    // Writer: updates, deletes and creates while pages are read.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                let key = format!("/pods/p{i:04}");
                let (kv, _) = store.get(&key).await.unwrap();
                let kv = kv.unwrap();
                match i % 3 {
                    0 => {
                        store.delete(&key, None).await.unwrap();
                    }
                    1 => {
                        store
                            .update(&key, b("changed"), kv.mod_revision)
                            .await
                            .unwrap();
                    }
                    _ => {
                        store
                            .create(&format!("/pods/p{i:04}-new"), b("new"))
                            .await
                            .unwrap();
                    }
                }
            }
        })
    };

    // Pages of 7 at the snapshot revision see exactly the snapshot.
    let first = store
        .list("/pods/", None, Some(7), Some(snapshot_rev))
        .await
        .unwrap();
    assert_eq!(first.revision, snapshot_rev);
    assert!(first.more);
    assert_eq!(first.remaining, 193);
    let mut got = first.kvs;
    let mut more = first.more;
    while more {
        let after = got.last().unwrap().key.clone();
        let page = store
            .list("/pods/", Some(&after), Some(7), Some(snapshot_rev))
            .await
            .unwrap();
        assert_eq!(page.revision, snapshot_rev);
        got.extend(page.kvs);
        more = page.more;
        tokio::task::yield_now().await;
    }
    assert_eq!(got, expected);
    writer.await.unwrap();

    // And paging the final state at its own revision matches an unpaged list.
    let (paged, rev) = list_paged(&store, "/pods/", 13).await;
    let unpaged = store.list("/pods/", None, None, Some(rev)).await.unwrap();
    assert_eq!(paged, unpaged.kvs);
    assert_eq!(paged.len(), 200 - 67 + 66);
}

#[tokio::test]
async fn limit_zero_and_exact_pages() {
    let (_dir, store) = open();
    for i in 0..4 {
        store.create(&format!("/k/{i}"), b("x")).await.unwrap();
    }
    let r = store.list("/k/", None, Some(4), None).await.unwrap();
    assert_eq!((r.kvs.len(), r.more, r.remaining), (4, false, 0));
    let r = store.list("/k/", None, Some(2), None).await.unwrap();
    assert_eq!((r.kvs.len(), r.more, r.remaining), (2, true, 2));
    let r = store.list("/k/", None, Some(0), None).await.unwrap();
    assert_eq!((r.kvs.len(), r.more, r.remaining), (0, true, 4));
    let r = store
        .list("/k/", Some("/k/0"), Some(0), Some(4))
        .await
        .unwrap();
    assert_eq!((r.kvs.len(), r.more, r.remaining), (0, true, 2));
    let r = store
        .list("/k/", Some("/k/1"), Some(1), Some(4))
        .await
        .unwrap();
    assert_eq!(r.kvs[0].key, "/k/2");
    assert_eq!((r.more, r.remaining), (false, 0));
}

#[tokio::test]
async fn watch_replays_history_in_order_then_goes_live() {
    let (_dir, store) = open();
    let a = store.create("/w/a", b("a1")).await.unwrap(); // 2
    store.create("/other/x", b("x")).await.unwrap(); // 3
    let a2 = store.update("/w/a", b("a2"), a.mod_revision).await.unwrap(); // 4
    store.create("/w/b", b("b1")).await.unwrap(); // 5
    store.delete("/w/a", None).await.unwrap(); // 6
    store.create("/w/a", b("a3")).await.unwrap(); // 7

    let mut w = store.watch("/w/", 2).await.unwrap();
    let e = next_event(&mut w).await;
    assert_eq!(summary(&e), (EventType::Updated, "/w/a".into(), 4));
    assert_eq!(e.prev.as_ref(), Some(&a));
    assert_eq!(e.kv.create_revision, 2);
    assert_eq!(
        summary(&*next_event(&mut w).await),
        (EventType::Created, "/w/b".into(), 5)
    );
    let e = next_event(&mut w).await;
    assert_eq!(summary(&e), (EventType::Deleted, "/w/a".into(), 6));
    assert_eq!(e.kv.value, b("a2"), "a delete carries the last value");
    assert_eq!(e.kv.create_revision, 2);
    assert_eq!(e.prev.as_ref(), Some(&a2));
    let e = next_event(&mut w).await;
    assert_eq!(summary(&e), (EventType::Created, "/w/a".into(), 7));
    assert_eq!(e.kv.create_revision, 7);
    assert!(e.prev.is_none());
    assert_quiet(&mut w).await;

    // Live: only matching keys, with prev.
    store.create("/other/y", b("y")).await.unwrap(); // 8
    let b2 = store.update("/w/b", b("b2"), 5).await.unwrap(); // 9
    let e = next_event(&mut w).await;
    assert_eq!(summary(&e), (EventType::Updated, "/w/b".into(), 9));
    assert_eq!(e.kv, b2);
    assert_eq!(e.prev.as_ref().map(|p| p.mod_revision), Some(5));
    assert_quiet(&mut w).await;

    // Watching from the current revision sees only what comes next; from
    // the future, only writes after that revision.
    let mut now = store.watch("", store.current_revision()).await.unwrap();
    let mut future = store.watch("", 11).await.unwrap();
    store.create("/z/1", b("1")).await.unwrap(); // 10
    store.create("/z/2", b("2")).await.unwrap(); // 11
    store.create("/z/3", b("3")).await.unwrap(); // 12
    assert_eq!(next_event(&mut now).await.kv.mod_revision, 10);
    assert_eq!(next_event(&mut future).await.kv.mod_revision, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_every_ack_present_revisions_unique_watch_in_order() {
    const TASKS: usize = 64;
    const WRITES: usize = 100;
    let (_dir, store) = open();
    let start = store.current_revision();
    let mut watch = store.watch("/c/", start).await.unwrap();

    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::with_capacity(WRITES);
            for i in 0..WRITES {
                // Mix creates and updates of the task's own keys.
                let key = format!("/c/t{t:02}/k{:02}", i % 10);
                let value = Bytes::from(format!("{t}-{i}"));
                let kv = if i < 10 {
                    store.create(&key, value).await.unwrap()
                } else {
                    let (cur, _) = store.get(&key).await.unwrap();
                    store
                        .update(&key, value, cur.unwrap().mod_revision)
                        .await
                        .unwrap()
                };
                acked.push(kv);
            }
            acked
        }));
    }
    let mut acked: Vec<KeyValue> = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    let total = TASKS * WRITES;
    let revs: HashSet<Revision> = acked.iter().map(|kv| kv.mod_revision).collect();
    assert_eq!(revs.len(), total, "revisions are unique");
    assert_eq!(store.current_revision(), start + total as i64);
    assert_eq!(*revs.iter().min().unwrap(), start + 1);

    // Each task saw its own revisions increase.
    for chunk in acked.chunks(WRITES) {
        assert!(chunk
            .windows(2)
            .all(|w| w[0].mod_revision < w[1].mod_revision));
    }

    // The latest ack per key is what the store holds.
    let mut latest: BTreeMap<String, KeyValue> = BTreeMap::new();
    for kv in &acked {
        let e = latest.entry(kv.key.clone()).or_insert_with(|| kv.clone());
        if kv.mod_revision > e.mod_revision {
            *e = kv.clone();
        }
    }
    let listed = store.list("/c/", None, None, None).await.unwrap();
    assert_eq!(listed.kvs, latest.into_values().collect::<Vec<_>>());

    // The watch saw every write exactly once, in revision order.
    let mut seen = Vec::with_capacity(total);
    while seen.len() < total {
        let e = next_event(&mut watch).await;
        seen.push(e.kv.mod_revision);
    }
    let expected: Vec<Revision> = (start + 1..=start + total as i64).collect();
    assert_eq!(seen, expected);
    assert_quiet(&mut watch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lagging_watcher_catches_up_from_the_log() {
    let (_dir, store) = open();
    let mut slow = store.watch("/lag/", 1).await.unwrap();
    // Far more writes than the live buffer holds, while the watcher is not polled.
    let n: i64 = 10_000;
    let mut tasks = Vec::new();
    for t in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..n / 16 {
                store
                    .create(&format!("/lag/{t}/{i}"), b("v"))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut expect = 2;
    while expect <= n + 1 {
        let e = next_event(&mut slow).await;
        assert_eq!(e.kv.mod_revision, expect);
        expect += 1;
    }
    store.create("/lag/live", b("v")).await.unwrap();
    assert_eq!(next_event(&mut slow).await.kv.key, "/lag/live");
    assert_quiet(&mut slow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_watchers_each_get_their_prefix() {
    let (_dir, store) = open();
    let mut watchers = Vec::new();
    for i in 0..500 {
        watchers.push(store.watch(&format!("/ns{:02}/", i % 50), 1).await.unwrap());
    }
    for round in 0..4 {
        for ns in 0..50 {
            store
                .create(&format!("/ns{ns:02}/obj{round}"), b("v"))
                .await
                .unwrap();
        }
    }
    for (i, w) in watchers.iter_mut().enumerate() {
        for round in 0..4 {
            let e = next_event(w).await;
            assert_eq!(e.kv.key, format!("/ns{:02}/obj{round}", i % 50));
        }
    }
    // Live events are shared, not copied per watcher.
    let w0 = &mut watchers[0];
    store.create("/ns00/shared", b("v")).await.unwrap();
    let a = next_event(w0).await;
    let b_ = next_event(&mut watchers[50]).await;
    assert!(Arc::ptr_eq(&a, &b_));
}

#[tokio::test]
async fn compaction_drops_old_history_and_keeps_latest_state() {
    let (dir, store) = open();
    store.create("/k/a", b("a1")).await.unwrap(); // 2
    store.update("/k/a", b("a2"), 2).await.unwrap(); // 3
    store.create("/k/b", b("b1")).await.unwrap(); // 4
    store.delete("/k/b", None).await.unwrap(); // 5
    store.create("/k/c", b("c1")).await.unwrap(); // 6
    store.update("/k/a", b("a3"), 3).await.unwrap(); // 7
    let before = store.list("/k/", None, None, Some(6)).await.unwrap();

    assert!(matches!(
        store.compact(100).await,
        Err(Error::FutureRevision { requested: 100, .. })
    ));
    store.compact(6).await.unwrap();
    assert_eq!(store.compacted_revision(), 6);
    store.compact(6).await.unwrap(); // idempotent
    assert!(matches!(
        store.compact(5).await,
        Err(Error::Compacted {
            requested: 5,
            compacted: 6
        })
    ));

    // Lists at or after the compacted revision still work and agree.
    assert_eq!(
        store.list("/k/", None, None, Some(6)).await.unwrap(),
        before
    );
    assert!(matches!(
        store.list("/k/", None, None, Some(5)).await,
        Err(Error::Compacted {
            requested: 5,
            compacted: 6
        })
    ));
    let now = store.list("/k/", None, None, None).await.unwrap();
    let keys: Vec<_> = now
        .kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone()))
        .collect();
    assert_eq!(keys, [("/k/a", b("a3")), ("/k/c", b("c1"))]);

    // Watches from before it fail; from it, they replay what follows.
    assert!(matches!(
        store.watch("/k/", 5).await,
        Err(Error::Compacted {
            requested: 5,
            compacted: 6
        })
    ));
    let mut w = store.watch("/k/", 6).await.unwrap();
    let e = next_event(&mut w).await;
    assert_eq!(summary(&e), (EventType::Updated, "/k/a".into(), 7));
    assert_eq!(e.prev.as_ref().map(|p| p.value.clone()), Some(b("a2")));

    // The compacted revision survives a restart.
    drop(w);
    drop(store);
    let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
    assert_eq!(store.compacted_revision(), 6);
    assert_eq!(store.current_revision(), 7);
    assert!(matches!(
        store.watch("", 2).await,
        Err(Error::Compacted { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_watcher_behind_compaction_gets_compacted_error() {
    let (_dir, store) = open();
    let mut w = store.watch("/s/", 1).await.unwrap();
    for i in 0..6000 {
        store.create(&format!("/s/{i}"), b("v")).await.unwrap();
    }
    // Updates supersede the early rows, so compaction really drops them.
    for i in 0..10 {
        store
            .update(&format!("/s/{i}"), b("w"), i + 2)
            .await
            .unwrap();
    }
    store.compact(store.current_revision()).await.unwrap();
    // Whatever was buffered may arrive first; then the stream must report
    // Compacted and end.
    let mut got_error = false;
    while let Some(item) = tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .unwrap()
    {
        if let Err(e) = item {
            assert!(matches!(e, Error::Compacted { .. }), "{e}");
            got_error = true;
        }
    }
    assert!(got_error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compaction_across_many_steps() {
    let (_dir, store) = open();
    // More revisions than one compaction step, with every key rewritten:
    // 30 writers × 10 keys × 40 rounds.
    let mut tasks = Vec::new();
    for t in 0..30 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for k in 0..10 {
                store.create(&format!("/m/{t}/{k}"), b("0")).await.unwrap();
            }
            for round in 1..=40 {
                for k in 0..10 {
                    let key = format!("/m/{t}/{k}");
                    let (kv, _) = store.get(&key).await.unwrap();
                    store
                        .update(
                            &key,
                            Bytes::from(round.to_string()),
                            kv.unwrap().mod_revision,
                        )
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rev = store.current_revision();
    assert_eq!(rev, 1 + 30 * 10 * 41);
    let before = store.list("/m/", None, None, None).await.unwrap();
    store.compact(rev).await.unwrap();
    assert_eq!(store.compacted_revision(), rev);
    let after = store.list("/m/", None, None, Some(rev)).await.unwrap();
    assert_eq!(before, after);
    assert_eq!(after.kvs.len(), 300);
    assert!(after.kvs.iter().all(|kv| kv.value == b("40")));
}

#[tokio::test]
async fn reopen_keeps_data_and_revision() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.create("/a", b("1")).await.unwrap();
        store.create("/b", b("2")).await.unwrap();
        store.delete("/b", None).await.unwrap();
        store.update("/a", b("3"), 2).await.unwrap();
        assert_eq!(store.current_revision(), 5);
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.current_revision(), 5);
    let (kv, rev) = store.get("/a").await.unwrap();
    assert_eq!(rev, 5);
    assert_eq!(
        kv,
        Some(KeyValue {
            key: "/a".into(),
            value: b("3"),
            create_revision: 2,
            mod_revision: 5
        })
    );
    assert_eq!(store.get("/b").await.unwrap().0, None);
    // History survives too, and the counter continues.
    let mut w = store.watch("", 1).await.unwrap();
    let revs: Vec<_> = [
        next_event(&mut w).await,
        next_event(&mut w).await,
        next_event(&mut w).await,
        next_event(&mut w).await,
    ]
    .iter()
    .map(|e| summary(e))
    .collect();
    assert_eq!(
        revs,
        [
            (EventType::Created, "/a".into(), 2),
            (EventType::Created, "/b".into(), 3),
            (EventType::Deleted, "/b".into(), 4),
            (EventType::Updated, "/a".into(), 5),
        ]
    );
    assert_eq!(store.create("/c", b("c")).await.unwrap().mod_revision, 6);
}

#[tokio::test]
async fn watch_ends_with_closed_when_store_is_dropped() {
    let (_dir, store) = open();
    let mut w = store.watch("", 1).await.unwrap();
    drop(store);
    let item = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap();
    assert!(matches!(item, Some(Err(Error::Closed))));
    assert!(w.next().await.is_none());
}
