//! End-to-end: garbage collection (background, orphan, foreground), the
//! namespace lifecycle and the default ServiceAccount, against the real
//! `skiff server` and the real kubectl.

mod common;

use std::time::Duration;

use common::{eventually, HollowNodes, Server};
use serde_json::Value;

fn json(s: &Server, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["-o", "json"]);
    serde_json::from_str(&s.ok(&args)).expect("JSON from kubectl")
}

fn exists(s: &Server, args: &[&str]) -> bool {
    let mut a = vec!["get"];
    a.extend(args);
    s.kubectl(&a).status.success()
}

fn uid(s: &Server, kind: &str, name: &str) -> String {
    json(s, &["get", kind, name])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string()
}

const RS: &str = r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: busybox
"#;

fn pods_of(s: &Server, app: &str) -> Vec<Value> {
    json(s, &["get", "pods", "-l", &format!("app={app}")])["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn wait_pods(s: &Server, app: &str, n: usize) {
    eventually(Duration::from_secs(30), || {
        (pods_of(s, app).len() == n).then_some(())
    });
}

fn config_map(name: &str, owners: &[(&str, &str)], finalizer: Option<&str>) -> String {
    let mut y = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n");
    if !owners.is_empty() {
        y.push_str("  ownerReferences:\n");
        for (n, u) in owners {
            y.push_str(&format!(
                "  - apiVersion: v1\n    kind: ConfigMap\n    name: {n}\n    uid: {u}\n    blockOwnerDeletion: true\n"
            ));
        }
    }
    if let Some(f) = finalizer {
        y.push_str(&format!("  finalizers: [\"{f}\"]\n"));
    }
    y
}

#[test]
fn background_and_orphan_cascades() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 2, &[]);
    s.apply_stdin(&["apply"], RS);
    wait_pods(&s, "web", 3);
    s.ok(&["delete", "rs", "web"]);
    eventually(Duration::from_secs(30), || {
        pods_of(&s, "web").is_empty().then_some(())
    });

    // Orphan: the pods stay, without their owner reference.
    s.apply_stdin(&["apply"], RS);
    wait_pods(&s, "web", 3);
    s.ok(&["delete", "rs", "web", "--cascade=orphan"]);
    eventually(Duration::from_secs(20), || {
        (!exists(&s, &["rs", "web"])).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let pods = pods_of(&s, "web");
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| p["metadata"]["ownerReferences"]
        .as_array()
        .is_none_or(|r| r.is_empty())));

    // A hand-made chain of ConfigMaps: deleting the root takes all.
    s.apply_stdin(&["apply"], &config_map("root", &[], None));
    let root = uid(&s, "cm", "root");
    s.apply_stdin(&["apply"], &config_map("mid", &[("root", &root)], None));
    let mid = uid(&s, "cm", "mid");
    s.apply_stdin(&["apply"], &config_map("leaf", &[("mid", &mid)], None));
    s.ok(&["delete", "cm", "root"]);
    eventually(Duration::from_secs(20), || {
        (!exists(&s, &["cm", "mid"]) && !exists(&s, &["cm", "leaf"])).then_some(())
    });

    // Two owners: losing one keeps the object, minus the dangling reference.
    s.apply_stdin(&["apply"], &config_map("a", &[], None));
    s.apply_stdin(&["apply"], &config_map("b", &[], None));
    let (a, b) = (uid(&s, "cm", "a"), uid(&s, "cm", "b"));
    s.apply_stdin(
        &["apply"],
        &config_map("shared", &[("a", &a), ("b", &b)], None),
    );
    s.ok(&["delete", "cm", "a"]);
    eventually(Duration::from_secs(20), || {
        let refs = json(&s, &["get", "cm", "shared"])["metadata"]["ownerReferences"].clone();
        (refs.as_array().is_some_and(|r| r.len() == 1) && refs[0]["uid"] == b.as_str())
            .then_some(())
    });
}

const DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 2
  selector:
    matchLabels:
      app: api
  template:
    metadata:
      labels:
        app: api
    spec:
      containers:
      - name: app
        image: busybox
"#;

fn replica_sets(s: &Server) -> Vec<Value> {
    json(s, &["get", "rs", "-l", "app=api"])["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn deleting_a_deployment_cascades_through_its_replica_sets() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 2, &[]);
    // Background: the ReplicaSet and its pods go after the Deployment.
    s.apply_stdin(&["apply"], DEPLOY);
    wait_pods(&s, "api", 2);
    s.ok(&["delete", "deployment", "api"]);
    eventually(Duration::from_secs(30), || {
        (replica_sets(&s).is_empty() && pods_of(&s, "api").is_empty()).then_some(())
    });

    // Foreground: the Deployment is the last to go.
    s.apply_stdin(&["apply"], DEPLOY);
    wait_pods(&s, "api", 2);
    s.ok(&["delete", "deployment", "api", "--cascade=foreground"]);
    assert!(replica_sets(&s).is_empty());
    assert!(pods_of(&s, "api").is_empty());

    // Orphan: the ReplicaSet and pods stay, no longer owned.
    s.apply_stdin(&["apply"], DEPLOY);
    wait_pods(&s, "api", 2);
    s.ok(&["delete", "deployment", "api", "--cascade=orphan"]);
    std::thread::sleep(Duration::from_secs(2));
    let rs = replica_sets(&s);
    assert_eq!(rs.len(), 1);
    assert!(rs[0]["metadata"]["ownerReferences"]
        .as_array()
        .is_none_or(|r| r.is_empty()));
    assert_eq!(pods_of(&s, "api").len(), 2);
}

#[test]
fn foreground_deletion_waits_for_blocking_dependents() {
    let s = Server::start();
    s.apply_stdin(&["apply"], &config_map("parent", &[], None));
    let parent = uid(&s, "cm", "parent");
    s.apply_stdin(
        &["apply"],
        &config_map("child", &[("parent", &parent)], Some("example.com/hold")),
    );
    s.ok(&[
        "delete",
        "cm",
        "parent",
        "--cascade=foreground",
        "--wait=false",
    ]);
    // The child is being deleted but held; the parent waits for it.
    eventually(Duration::from_secs(20), || {
        json(&s, &["get", "cm", "child"])["metadata"]["deletionTimestamp"]
            .as_str()
            .map(|_| ())
    });
    let p = json(&s, &["get", "cm", "parent"]);
    assert!(p["metadata"]["deletionTimestamp"].is_string());
    assert!(p["metadata"]["finalizers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "foregroundDeletion"));
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        exists(&s, &["cm", "parent"]),
        "the parent waits for its blocking dependent"
    );
    s.ok(&[
        "patch",
        "cm",
        "child",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    eventually(Duration::from_secs(20), || {
        (!exists(&s, &["cm", "child"]) && !exists(&s, &["cm", "parent"])).then_some(())
    });
}

#[test]
fn deleting_a_namespace_empties_and_removes_it() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 2, &[]);
    s.ok(&["create", "namespace", "doomed"]);
    // The default ServiceAccount appears, and comes back when deleted.
    eventually(Duration::from_secs(20), || {
        exists(&s, &["sa", "default", "-n", "doomed"]).then_some(())
    });
    s.ok(&["delete", "sa", "default", "-n", "doomed"]);
    eventually(Duration::from_secs(20), || {
        exists(&s, &["sa", "default", "-n", "doomed"]).then_some(())
    });

    s.apply_stdin(
        &["apply"],
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {plural: widgets, singular: widget, kind: Widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#,
    );
    eventually(Duration::from_secs(20), || {
        exists(&s, &["widgets", "-A"]).then_some(())
    });
    let mut docs = Vec::new();
    for i in 0..40 {
        docs.push(format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  namespace: doomed\ndata:\n  k: v\n"));
    }
    for i in 0..30 {
        docs.push(format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: secret-{i}\n  namespace: doomed\nstringData:\n  k: v\n"));
    }
    for i in 0..10 {
        docs.push(format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: doomed\nspec:\n  ports:\n  - port: 80\n"));
    }
    for i in 0..10 {
        docs.push(format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-{i}\n  namespace: doomed\nspec:\n  containers:\n  - name: app\n    image: busybox\n"));
    }
    for i in 0..10 {
        docs.push(format!("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: widget-{i}\n  namespace: doomed\nspec:\n  size: {i}\n"));
    }
    // One object holds the namespace in Terminating until its finalizer goes.
    docs.push("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  namespace: doomed\n  finalizers: [example.com/hold]\n".into());
    s.apply_stdin(&["apply"], &docs.join("---\n"));
    let cms = json(&s, &["get", "cm", "-n", "doomed"]);
    let made = cms["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["metadata"]["name"].as_str().unwrap().starts_with("cm-"))
        .count();
    assert_eq!(made, 40);
    eventually(Duration::from_secs(30), || {
        let pods = json(&s, &["get", "pods", "-n", "doomed"]);
        pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"]["phase"] == "Running")
            .then_some(())
    });

    s.ok(&["delete", "namespace", "doomed", "--wait=false"]);
    let ns = json(&s, &["get", "namespace", "doomed"]);
    assert_eq!(ns["status"]["phase"], "Terminating");
    let refused = s.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n  namespace: doomed\n",
    );
    assert!(!refused.status.success());
    let msg = String::from_utf8_lossy(&refused.stderr);
    assert!(
        msg.contains("Error from server (Forbidden)")
            && msg.contains(r#"configmaps "late" is forbidden: unable to create new content in namespace doomed because it is being terminated"#),
        "{msg}"
    );
    // Everything else goes; the held object keeps the namespace, and says so.
    eventually(Duration::from_secs(60), || {
        let ns = json(&s, &["get", "namespace", "doomed"]);
        let conds = ns["status"]["conditions"].as_array()?.clone();
        let remaining = conds
            .iter()
            .find(|c| c["type"] == "NamespaceFinalizersRemaining")?;
        let left = json(&s, &["get", "cm,secret,svc,pods,widgets", "-n", "doomed"]);
        (remaining["status"] == "True"
            && remaining["message"].as_str()?.contains("example.com/hold")
            && left["items"].as_array()?.len() == 1)
            .then_some(())
    });
    s.ok(&[
        "patch",
        "cm",
        "held",
        "-n",
        "doomed",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    eventually(Duration::from_secs(60), || {
        (!exists(&s, &["namespace", "doomed"])).then_some(())
    });
    assert!(json(&s, &["get", "widgets", "-A"])["items"]
        .as_array()
        .unwrap()
        .is_empty());
}
