//! Floors measured on the same disk in the same run: what raw SQLite
//! (bundled, WAL, `synchronous=FULL`) does with no API server in front.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use rusqlite::{params, Connection};

use crate::objects::filler;
use crate::stats::Latencies;

fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS kv (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             name TEXT NOT NULL UNIQUE,
             value BLOB NOT NULL
         )",
    )?;
    Ok(conn)
}

/// Durable inserts of 1 KiB rows, `batch` rows per transaction, for `secs`:
/// rows per second.
pub fn insert_rate(dir: &Path, batch: usize, secs: Duration) -> Result<f64> {
    let path = dir.join(format!("floor-insert-{batch}.db"));
    let mut conn = open(&path)?;
    let value = filler("floor", 1024).into_bytes();
    let started = Instant::now();
    let mut rows = 0u64;
    while started.elapsed() < secs {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("INSERT INTO kv (name, value) VALUES (?1, ?2)")?;
            for _ in 0..batch {
                stmt.execute(params![
                    format!("/registry/configmaps/default/floor-{rows}"),
                    value
                ])?;
                rows += 1;
            }
        }
        tx.commit()?;
    }
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    drop(conn);
    remove_db(&path);
    Ok(rate)
}

/// Reads every row of a table holding `values` and joins them into one JSON
/// list body, `runs` times: the least work an unpaged LIST can do.
pub fn list_floor(dir: &Path, values: &[Vec<u8>], runs: usize) -> Result<Latencies> {
    let path = dir.join("floor-list.db");
    let mut conn = open(&path)?;
    let tx = conn.transaction()?;
    for (i, v) in values.iter().enumerate() {
        tx.execute(
            "INSERT INTO kv (name, value) VALUES (?1, ?2)",
            params![format!("/registry/pods/ns/pod-{i:05}"), v],
        )?;
    }
    tx.commit()?;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let mut body = Vec::with_capacity(values.iter().map(Vec::len).sum::<usize>() + 1024);
        body.extend_from_slice(br#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":["#);
        let mut stmt = conn.prepare_cached("SELECT value FROM kv ORDER BY name")?;
        let mut rows = stmt.query([])?;
        let mut first = true;
        while let Some(row) = rows.next()? {
            if !first {
                body.push(b',');
            }
            first = false;
            body.extend_from_slice(row.get_ref(0)?.as_bytes()?);
        }
        body.extend_from_slice(b"]}");
        std::hint::black_box(&body);
        samples.push(started.elapsed());
    }
    drop(conn);
    remove_db(&path);
    Ok(Latencies::new(samples))
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}
