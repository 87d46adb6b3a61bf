//! `kill -9` during concurrent writes loses no acknowledged write.
//!
//! The test re-runs its own binary as a child (selected by name, with an
//! environment variable saying where the database is). The child writes from
//! several tasks and prints one `ACK` line per acknowledged write; the parent
//! kills it with SIGKILL mid-stream, reopens the database and checks every
//! acknowledged write is there.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use bytes::Bytes;
use store::sqlite::SqliteStore;
use store::{Revision, Storage};

const CHILD_DB: &str = "SKIFF_STORE_DURABILITY_CHILD_DB";
const WRITERS: usize = 8;
/// Acknowledgements to see before killing the child.
const KILL_AFTER: usize = 1_500;

/// The child's body. It only does something when run by the parent test.
#[test]
#[ignore = "run as a child process by kill_9_loses_no_acknowledged_write"]
fn durability_child() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = SqliteStore::open(std::path::Path::new(&path)).unwrap();
        let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let mut tasks = Vec::new();
        for t in 0..WRITERS {
            let store = store.clone();
            let stdout = stdout.clone();
            tasks.push(tokio::spawn(async move {
                let ack = |key: &str, rev: Revision, value: &str| {
                    // Bypasses the test harness's capture; flushed per line.
                    let mut out = stdout.lock().unwrap();
                    writeln!(out, "ACK {key} {rev} {value}").unwrap();
                    out.flush().unwrap();
                };
                for i in 0.. {
                    let key = format!("/d/{t}/{i}");
                    let kv = store.create(&key, Bytes::from("created")).await.unwrap();
                    ack(&key, kv.mod_revision, "created");
                    let kv = store
                        .update(&key, Bytes::from("updated"), kv.mod_revision)
                        .await
                        .unwrap();
                    ack(&key, kv.mod_revision, "updated");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["durability_child", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_DB, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    // key -> (revision, value) of its latest acknowledged write
    let mut acked: HashMap<String, (Revision, String)> = HashMap::new();
    let mut count = 0;
    let mut record = |line: &str| {
        // The harness may print its own text on the same line first.
        let Some((_, ack)) = line.split_once("ACK ") else {
            return false;
        };
        let mut parts = ack.split(' ');
        let (key, rev, value) = (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().parse::<Revision>().unwrap(),
            parts.next().unwrap().to_owned(),
        );
        let e = acked.entry(key).or_insert((rev, value.clone()));
        if rev >= e.0 {
            *e = (rev, value);
        }
        true
    };
    while count < KILL_AFTER {
        let line = lines
            .next()
            .expect("child exited before enough writes")
            .unwrap();
        if record(&line) {
            count += 1;
        }
    }
    child.kill().unwrap(); // SIGKILL
                           // Lines already written were acknowledged before the kill.
    for line in lines {
        let Ok(line) = line else { break };
        if record(&line) {
            count += 1;
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "child must have been killed");
    assert!(count >= KILL_AFTER);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&path).unwrap();
        let max_acked = acked.values().map(|(r, _)| *r).max().unwrap();
        assert!(store.current_revision() >= max_acked);
        for (key, (rev, value)) in &acked {
            let (kv, _) = store.get(key).await.unwrap();
            let kv = kv.unwrap_or_else(|| panic!("acknowledged key {key} lost"));
            assert!(
                kv.mod_revision >= *rev,
                "{key}: acknowledged revision {rev}, stored {}",
                kv.mod_revision
            );
            if kv.mod_revision == *rev {
                assert_eq!(kv.value, Bytes::from(value.clone()), "{key}");
            }
        }
        // The reopened store still works: it lists every acknowledged key.
        let listed = store.list("/d/", None, None, None).await.unwrap();
        assert!(listed.kvs.len() >= acked.len());
    });
}
