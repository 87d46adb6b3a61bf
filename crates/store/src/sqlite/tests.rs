//! Tests of the SQLite layout itself (what the trait cannot show).

use bytes::Bytes;
use rusqlite::Connection;

use super::reader::{list_sql, ListSql};
use super::SqliteStore;
use crate::Storage;

fn rows(conn: &Connection) -> Vec<(i64, String, bool, bool)> {
    let mut stmt = conn
        .prepare("SELECT revision, CAST(key AS TEXT), created, deleted FROM log ORDER BY revision")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn compaction_removes_superseded_rows_and_tombstones_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    let v = || Bytes::from_static(b"v");
    store.create("/a", v()).await.unwrap(); // 2
    store.update("/a", v(), 2).await.unwrap(); // 3
    store.create("/b", v()).await.unwrap(); // 4
    store.delete("/b", None).await.unwrap(); // 5
    store.create("/c", v()).await.unwrap(); // 6
    store.delete("/c", None).await.unwrap(); // 7
    store.update("/a", v(), 3).await.unwrap(); // 8
    store.compact(7).await.unwrap();

    let conn = Connection::open(&path).unwrap();
    // /a@2 superseded by 3 (≤ 7); /b@4 and its tombstone 5 gone; /c@6
    // superseded by its tombstone at 7, which stays (it is the state at 7).
    assert_eq!(
        rows(&conn),
        [
            (3, "/a".into(), false, false),
            (7, "/c".into(), false, true),
            (8, "/a".into(), false, false),
        ]
    );
    let compacted: i64 = conn
        .query_row("SELECT value FROM meta WHERE name = 'compacted'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(compacted, 7);

    store.compact(8).await.unwrap();
    assert_eq!(rows(&conn), [(8, "/a".into(), false, false)]);
}

/// The list queries must stream in key order from an index: no sorting of
/// the whole result (which would make every page cost a full scan).
#[tokio::test]
async fn list_queries_walk_indexes_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let _store = SqliteStore::open(&path).unwrap();
    let conn = Connection::open(&path).unwrap();
    let mut plans = Vec::new();
    for latest in [true, false] {
        for count in [true, false] {
            for after in [true, false] {
                let sql = list_sql(ListSql {
                    latest,
                    bounded: true,
                    after,
                    count,
                });
                let sql = sql
                    .replace(":lo", "x'2f'")
                    .replace(":hi", "x'30'")
                    .replace(":after", "x'2f61'")
                    .replace(":rev", "5")
                    .replace(":fetch", "10");
                plans.push(sql);
            }
        }
    }
    for sql in plans {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        assert!(
            !plan.contains("TEMP B-TREE"),
            "sorts instead of walking an index:\n{plan}"
        );
        assert!(!plan.contains("SCAN"), "full scan:\n{plan}");
    }
}
