//! Performance figures, printed beside the floor they compare with. Not
//! pass/fail: run with
//! `cargo test -p store --release --test perf -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use store::sqlite::SqliteStore;
use store::Storage;

const VALUE_1K: usize = 1024;

/// The floor: one row per transaction on raw SQLite, WAL, synchronous=FULL.
fn raw_sqlite_durable_inserts_per_sec(path: &std::path::Path, run_for: Duration) -> f64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        .unwrap();
    let value = vec![b'x'; VALUE_1K];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < run_for {
        let txn = conn.unchecked_transaction().unwrap();
        txn.execute(
            "INSERT INTO kv (key, value) VALUES (?1, ?2)",
            rusqlite::params![format!("/raw/{n}"), value],
        )
        .unwrap();
        txn.commit().unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// The store's create rate with `writers` concurrent tasks.
async fn store_creates_per_sec(store: &Arc<SqliteStore>, writers: usize, run_for: Duration) -> f64 {
    let value = Bytes::from(vec![b'x'; VALUE_1K]);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..writers {
        let store = store.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < run_for {
                store
                    .create(&format!("/bench/{writers}/{t}/{n}"), value.clone())
                    .await
                    .unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
#[ignore = "benchmark: prints figures"]
async fn write_rate_raw_sqlite_vs_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let run_for = Duration::from_secs(3);
    // The disk is shared and noisy: measure the floor before and after.
    let raw_before = raw_sqlite_durable_inserts_per_sec(&dir.path().join("raw1.db"), run_for);
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let single = store_creates_per_sec(&store, 1, run_for).await;
    let concurrent = store_creates_per_sec(&store, 32, run_for).await;
    let raw_after = raw_sqlite_durable_inserts_per_sec(&dir.path().join("raw2.db"), run_for);
    let raw = (raw_before + raw_after) / 2.0;
    println!(
        "raw SQLite, 1 row/txn, WAL+synchronous=FULL, 1 KiB: {raw:>9.0} rows/s (floor; {raw_before:.0} before, {raw_after:.0} after)"
    );
    println!("store create, 1 writer, 1 KiB:                        {single:>9.0} writes/s");
    println!(
        "store create, 32 concurrent writers, 1 KiB:           {concurrent:>9.0} writes/s ({:.1}x the floor)",
        concurrent / raw
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
#[ignore = "benchmark: prints figures"]
async fn list_ten_thousand_pods() {
    const PODS: usize = 10_000;
    const POD_BYTES: usize = 3 * 1024; // ≈ 30 MB in all
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let value = Bytes::from(vec![b'p'; POD_BYTES]);
    let mut tasks = Vec::new();
    for t in 0..32 {
        let store = store.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t..PODS).step_by(32) {
                store
                    .create(
                        &format!("/registry/pods/ns{}/pod-{i:05}", i % 10),
                        value.clone(),
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Some history, so past-revision reads have superseded rows to skip.
    let snapshot = store.current_revision();
    for i in 0..1000 {
        let key = format!("/registry/pods/ns{}/pod-{i:05}", i % 10);
        let (kv, _) = store.get(&key).await.unwrap();
        store
            .update(&key, value.clone(), kv.unwrap().mod_revision)
            .await
            .unwrap();
    }

    let time = |label: &str, mut samples: Vec<Duration>| {
        samples.sort();
        println!(
            "{label}: median {:>6.1} ms, min {:>6.1} ms",
            samples[samples.len() / 2].as_secs_f64() * 1e3,
            samples[0].as_secs_f64() * 1e3
        );
    };
    let mut current = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let r = store
            .list("/registry/pods/", None, None, None)
            .await
            .unwrap();
        current.push(start.elapsed());
        assert_eq!(r.kvs.len(), PODS);
    }
    time("list 10,000 pods (30 MB), current, unpaged", current);
    let mut past = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let r = store
            .list("/registry/pods/", None, None, Some(snapshot))
            .await
            .unwrap();
        past.push(start.elapsed());
        assert_eq!(r.kvs.len(), PODS);
    }
    time("list 10,000 pods (30 MB), past revision, unpaged", past);
    let mut page = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let r = store
            .list(
                "/registry/pods/",
                Some("/registry/pods/ns5/"),
                Some(500),
                Some(snapshot),
            )
            .await
            .unwrap();
        page.push(start.elapsed());
        assert_eq!(r.kvs.len(), 500);
    }
    time(
        "page of 500 mid-list at a past revision (with remaining count)",
        page,
    );
}

/// Point reads of existing keys, one at a time, with a trickle of writes
/// (as a read-heavy API server sees). For instruction counts run it under
/// `valgrind --tool=callgrind` with `SKIFF_GETS` set.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: prints figures"]
async fn point_gets() {
    const KEYS: usize = 1_000;
    let gets: usize = std::env::var("SKIFF_GETS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    let value = Bytes::from(vec![b'p'; VALUE_1K]);
    for i in 0..KEYS {
        store
            .create(
                &format!("/registry/pods/ns{}/pod-{i:05}", i % 10),
                value.clone(),
            )
            .await
            .unwrap();
    }
    let start = Instant::now();
    for n in 0..gets {
        let i = (n * 7919) % KEYS;
        let key = format!("/registry/pods/ns{}/pod-{i:05}", i % 10);
        let (kv, _) = store.get(&key).await.unwrap();
        if n % 1000 == 0 {
            store
                .update(&key, value.clone(), kv.unwrap().mod_revision)
                .await
                .unwrap();
        }
    }
    let elapsed = start.elapsed();
    println!(
        "point get, 1 KiB values, sequential: {:>9.0} gets/s ({:.1} µs each)",
        gets as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / gets as f64
    );
}
