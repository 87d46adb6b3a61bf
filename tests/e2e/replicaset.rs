//! End-to-end: the ReplicaSet and ReplicationController controllers against
//! the real `skiff server` with hollow nodes, driven by the real kubectl.

mod common;

use std::time::Duration;

use common::{eventually, HollowNodes, Server};
use serde_json::Value;

fn json(s: &Server, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["-o", "json"]);
    serde_json::from_str(&s.ok(&args)).expect("JSON from kubectl")
}

fn rs_yaml(name: &str, replicas: i32, selector: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
{selector}
  template:
    metadata:
      labels:
        app: {name}
        tier: web
    spec:
      containers:
      - name: app
        image: busybox
"#
    )
}

fn match_labels(app: &str) -> String {
    format!("    matchLabels:\n      app: {app}")
}

/// The pods whose controller is the object with this uid.
fn owned_pods(s: &Server, uid: &str) -> Vec<Value> {
    json(s, &["get", "pods"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|rs| {
                    rs.iter()
                        .any(|r| r["uid"] == uid && r["controller"] == true)
                })
        })
        .cloned()
        .collect()
}

fn uid(s: &Server, kind: &str, name: &str) -> String {
    json(s, &["get", kind, name])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string()
}

fn wait_ready(s: &Server, kind: &str, name: &str, n: i64) {
    eventually(Duration::from_secs(30), || {
        let o = json(s, &["get", kind, name]);
        (o["status"]["readyReplicas"].as_i64() == Some(n)
            && o["status"]["replicas"].as_i64() == Some(n)
            && o["status"]["availableReplicas"].as_i64() == Some(n))
        .then_some(())
    });
}

#[test]
fn replicaset_keeps_replicas_adopts_releases_and_replaces() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 3, &[]);

    // A hand-made matching orphan exists first: it is adopted.
    s.apply_stdin(
        &["apply"],
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: orphan\n  labels:\n    app: web\nspec:\n  containers:\n  - name: app\n    image: busybox\n",
    );
    s.apply_stdin(&["apply"], &rs_yaml("web", 3, &match_labels("web")));
    wait_ready(&s, "rs", "web", 3);
    let rs_uid = uid(&s, "rs", "web");
    let pods = owned_pods(&s, &rs_uid);
    assert_eq!(pods.len(), 3, "exactly 3 pods: {pods:?}");
    assert!(
        pods.iter().any(|p| p["metadata"]["name"] == "orphan"),
        "the orphan was adopted"
    );
    let out = s.ok(&["get", "rs", "web"]);
    assert!(out.contains("web") && out.contains(" 3 "), "{out}");

    // Relabelling a pod releases it and a replacement comes.
    let victim = pods
        .iter()
        .find(|p| p["metadata"]["name"] != "orphan")
        .unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    s.ok(&["label", "pod", &victim, "app=other", "--overwrite"]);
    eventually(Duration::from_secs(20), || {
        let released = json(&s, &["get", "pod", &victim]);
        let owned = owned_pods(&s, &rs_uid);
        (released["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(|r| r.is_empty())
            && owned.len() == 3
            && !owned
                .iter()
                .any(|p| p["metadata"]["name"] == victim.as_str()))
        .then_some(())
    });

    // A deleted pod is replaced.
    s.ok(&["delete", "pod", "orphan", "--wait=false"]);
    eventually(Duration::from_secs(20), || {
        let owned = owned_pods(&s, &rs_uid);
        (owned.len() == 3 && !owned.iter().any(|p| p["metadata"]["name"] == "orphan")).then_some(())
    });
    wait_ready(&s, "rs", "web", 3);

    // Events name what was created.
    let describe = s.ok(&["describe", "rs", "web"]);
    assert!(describe.contains("SuccessfulCreate"), "{describe}");
    assert!(describe.contains("Created pod: web-"), "{describe}");

    // Scale to 1: two deleted, one kept.
    s.ok(&["scale", "rs", "web", "--replicas=1"]);
    eventually(Duration::from_secs(20), || {
        (owned_pods(&s, &rs_uid)
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .count()
            == 1)
            .then_some(())
    });
    wait_ready(&s, "rs", "web", 1);
    assert!(s
        .ok(&["describe", "rs", "web"])
        .contains("SuccessfulDelete"));
}

#[test]
fn scale_down_deletes_unscheduled_pods_first() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 2, &[]);
    s.apply_stdin(&["apply"], &rs_yaml("web", 2, &match_labels("web")));
    wait_ready(&s, "rs", "web", 2);
    let rs_uid = uid(&s, "rs", "web");
    // A pod nobody can schedule joins the set (adopted), making 3 for 2:
    // it is the one removed.
    s.apply_stdin(
        &["apply"],
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: stuck\n  labels:\n    app: web\nspec:\n  nodeSelector:\n    nowhere: \"true\"\n  containers:\n  - name: app\n    image: busybox\n",
    );
    eventually(Duration::from_secs(20), || {
        (!s.kubectl(&["get", "pod", "stuck"]).status.success()).then_some(())
    });
    let owned = owned_pods(&s, &rs_uid);
    assert_eq!(owned.len(), 2, "{owned:?}");
    assert!(!owned.iter().any(|p| p["metadata"]["name"] == "stuck"));
}

#[test]
fn set_based_selectors_and_replication_controllers() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 2, &[]);
    let selector = "    matchExpressions:\n    - {key: app, operator: In, values: [expr]}\n    - {key: tier, operator: Exists}\n    - {key: canary, operator: DoesNotExist}";
    s.apply_stdin(&["apply"], &rs_yaml("expr", 2, selector));
    wait_ready(&s, "rs", "expr", 2);

    // minReadySeconds: Ready at once, available only 3 s later.
    let slow = rs_yaml("slow", 2, &match_labels("slow")).replace(
        "spec:\n  replicas",
        "spec:\n  minReadySeconds: 3\n  replicas",
    );
    s.apply_stdin(&["apply"], &slow);
    eventually(Duration::from_secs(20), || {
        let st = json(&s, &["get", "rs", "slow"])["status"].clone();
        (st["readyReplicas"].as_i64() == Some(2)).then_some(())
    });
    let st = json(&s, &["get", "rs", "slow"])["status"].clone();
    assert_eq!(st["availableReplicas"].as_i64().unwrap_or(0), 0, "{st}");
    wait_ready(&s, "rs", "slow", 2);

    s.apply_stdin(
        &["apply"],
        r#"
apiVersion: v1
kind: ReplicationController
metadata:
  name: legacy
spec:
  replicas: 2
  selector:
    app: legacy
  template:
    metadata:
      labels:
        app: legacy
    spec:
      containers:
      - name: app
        image: busybox
"#,
    );
    wait_ready(&s, "rc", "legacy", 2);
    let rc_uid = uid(&s, "rc", "legacy");
    let pods = owned_pods(&s, &rc_uid);
    assert_eq!(pods.len(), 2);
    assert!(pods
        .iter()
        .all(|p| p["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController"));
    s.ok(&["scale", "rc", "legacy", "--replicas=3"]);
    wait_ready(&s, "rc", "legacy", 3);

    // A selector that does not match the template is refused, nothing stored.
    let out = s.kubectl_stdin(
        &["apply", "-f", "-"],
        &rs_yaml("bad", 1, &match_labels("different")),
    );
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        msg.contains("selector does not match template") || msg.contains("Invalid value"),
        "{msg}"
    );
    assert!(!s.kubectl(&["get", "rs", "bad"]).status.success());
    // The API itself answers 422 Unprocessable Entity.
    let body = serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "bad"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "different"}},
            "template": {
                "metadata": {"labels": {"app": "bad"}},
                "spec": {"containers": [{"name": "app", "image": "busybox"}]}
            }
        }
    });
    let (code, text) = s.curl(
        "POST",
        "/apis/apps/v1/namespaces/default/replicasets",
        "application/json",
        body.to_string().as_bytes(),
    );
    assert_eq!(code, 422, "{text}");
}
