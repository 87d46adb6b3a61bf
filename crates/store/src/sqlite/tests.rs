//! Tests of the SQLite layout itself (what the trait cannot show).

use bytes::Bytes;
use rusqlite::Connection;

use super::reader::{list_sql, ListSql};
use super::{configure, SqliteStore};
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
    configure(&conn).unwrap();
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
    // The same queries with their parameters, as the readers prepare them:
    // with the planner stability guarantee the plan cannot depend on values.
    for latest in [true, false] {
        for count in [true, false] {
            for after in [true, false] {
                plans.push(list_sql(ListSql {
                    latest,
                    bounded: true,
                    after,
                    count,
                }));
            }
        }
    }
    for sql in plans {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        // Parameters unbound (NULL): the plan is what is compiled anyway.
        let unbound = vec![rusqlite::types::Null; stmt.parameter_count()];
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(unbound), |r| {
                r.get::<_, String>(3)
            })
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

/// Cached statements must stay prepared: a statement that SQLite expires on
/// every rebinding is re-parsed and re-planned inside each `sqlite3_step`,
/// which once doubled the cost of a `get`.
#[tokio::test]
async fn cached_read_statements_are_not_reprepared() {
    use rusqlite::StatementStatus;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
    let v = || Bytes::from_static(b"v");
    for i in 0..20 {
        store.create(&format!("/k/{i:02}"), v()).await.unwrap();
    }
    // Sequential reads take the same pooled connection each time.
    for i in 0..20 {
        store.get(&format!("/k/{i:02}")).await.unwrap();
        store.get(&format!("/missing/{i}")).await.unwrap();
        let after = format!("/k/{i:02}");
        store
            .list("/k/", Some(&after), Some(2), None)
            .await
            .unwrap();
        store
            .list("/k/", Some(&after), Some(2), Some(15))
            .await
            .unwrap();
    }
    let get = "SELECT l.value, l.create_revision, l.revision
             FROM current c JOIN log l ON l.revision = c.revision
             WHERE c.key = ?1";
    let shapes: Vec<String> = [(true, false), (true, true), (false, false), (false, true)]
        .into_iter()
        .map(|(latest, count)| {
            list_sql(ListSql {
                latest,
                bounded: true,
                after: true,
                count,
            })
        })
        .collect();
    let counts = store
        .shared
        .readers
        .run(move |conn| {
            let mut counts = Vec::new();
            for sql in std::iter::once(get).chain(shapes.iter().map(String::as_str)) {
                let stmt = conn.prepare_cached(sql).unwrap();
                counts.push((
                    stmt.get_status(StatementStatus::Run),
                    stmt.get_status(StatementStatus::RePrepare),
                ));
            }
            Ok(counts)
        })
        .await
        .unwrap();
    for (runs, reprepares) in &counts {
        assert!(
            *runs >= 10,
            "statement not reused from the cache: {counts:?}"
        );
        assert_eq!(*reprepares, 0, "statement re-prepared: {counts:?}");
    }
}
