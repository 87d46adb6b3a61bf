//! StatefulSets on hollow nodes, driven by the real kubectl: ordered
//! creation and reverse deletion, sticky names and claims, partitioned
//! rolling updates with history and undo, and the Parallel policy.

mod common;

use std::time::Duration;

use common::{eventually, HollowNodes, Server};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn sts_yaml(policy: &str, replicas: i32, image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  replicas: {replicas}
  podManagementPolicy: {policy}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: c
        image: {image}
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi
"#
    )
}

fn pods(s: &Server) -> Vec<Value> {
    let out = s.ok(&["get", "pods", "-l", "app=web", "-o", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v["items"].as_array().cloned().unwrap_or_default()
}

fn pod_names(s: &Server) -> Vec<String> {
    let mut names: Vec<String> = pods(s)
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn ready_names(s: &Server) -> Vec<String> {
    let mut names: Vec<String> = pods(s)
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn pod_json(s: &Server, name: &str) -> Value {
    serde_json::from_str(&s.ok(&["get", "pod", name, "-o", "json"])).unwrap()
}

/// The pods named in events of `reason` on the set, oldest event first.
fn event_pods(s: &Server, reason: &str) -> Vec<String> {
    event_pods_since(s, reason, 0)
}

/// As [`event_pods`], for events written after resource version `since`.
fn event_pods_since(s: &Server, reason: &str, since: u64) -> Vec<String> {
    let out = s.ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("reason={reason},involvedObject.kind=StatefulSet"),
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut evs: Vec<(u64, String)> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let rv = e["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            (rv, e["message"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    evs.sort();
    evs.into_iter()
        .filter(|(rv, _)| *rv > since)
        .filter(|(_, m)| !m.contains(" Claim "))
        .filter_map(|(_, m)| {
            m.split_whitespace()
                .skip_while(|w| *w != "Pod")
                .nth(1)
                .map(String::from)
        })
        .collect()
}

fn rv(v: &Value) -> u64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn ordered_ready_creates_in_order_keeps_claims_and_deletes_in_reverse() {
    let s = Server::start();
    s.apply_stdin(&["apply"], &sts_yaml("OrderedReady", 3, "nginx:1"));

    // No node yet: web-0 stays Pending, and web-1 must not appear.
    eventually(WAIT, || (pod_names(&s) == ["web-0"]).then_some(()));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        pod_names(&s),
        ["web-0"],
        "web-1 created before web-0 was Ready"
    );
    let web0 = pod_json(&s, "web-0");
    assert_eq!(web0["spec"]["hostname"], "web-0");
    assert_eq!(web0["spec"]["subdomain"], "nginx");
    let labels = &web0["metadata"]["labels"];
    assert_eq!(labels["statefulset.kubernetes.io/pod-name"], "web-0");
    assert_eq!(labels["apps.kubernetes.io/pod-index"], "0");
    assert!(labels["controller-revision-hash"]
        .as_str()
        .unwrap()
        .starts_with("web-"));
    assert_eq!(
        web0["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "data-web-0"
    );
    // The claim comes before its pod.
    let claim0: Value =
        serde_json::from_str(&s.ok(&["get", "pvc", "data-web-0", "-o", "json"])).unwrap();
    assert!(rv(&claim0) < rv(&web0));

    let _nodes = HollowNodes::start(&s, 2, &[]);
    eventually(WAIT, || {
        (ready_names(&s) == ["web-0", "web-1", "web-2"]).then_some(())
    });
    assert_eq!(
        event_pods(&s, "SuccessfulCreate"),
        ["web-0", "web-1", "web-2"]
    );
    let events = s.ok(&["get", "events"]);
    assert!(
        events.contains("create Pod web-0 in StatefulSet web successful"),
        "{events}"
    );
    assert!(
        events.contains("create Claim data-web-0 Pod web-0 in StatefulSet web success"),
        "{events}"
    );
    for n in 0..3 {
        s.ok(&["get", "pvc", &format!("data-web-{n}")]);
    }
    let status = s.ok(&[
        "get",
        "sts",
        "web",
        "-o",
        "jsonpath={.status.replicas} {.status.readyReplicas} {.status.currentReplicas} {.status.updatedReplicas}",
    ]);
    assert_eq!(status, "3 3 3 3");

    // A deleted pod comes back under its name, with its claim.
    let claim1_uid = s.ok(&["get", "pvc", "data-web-1", "-o", "jsonpath={.metadata.uid}"]);
    let uid1 = s.ok(&["get", "pod", "web-1", "-o", "jsonpath={.metadata.uid}"]);
    s.ok(&["delete", "pod", "web-1", "--wait=false"]);
    eventually(WAIT, || {
        let uid = s.ok(&[
            "get",
            "pod",
            "web-1",
            "-o",
            "jsonpath={.metadata.uid}",
            "--ignore-not-found",
        ]);
        (!uid.is_empty() && uid != uid1 && ready_names(&s).len() == 3).then_some(())
    });
    assert_eq!(
        s.ok(&["get", "pvc", "data-web-1", "-o", "jsonpath={.metadata.uid}"]),
        claim1_uid
    );

    // A failed pod is deleted and recreated under its name.
    let uid2 = s.ok(&["get", "pod", "web-2", "-o", "jsonpath={.metadata.uid}"]);
    s.ok(&[
        "patch",
        "pod",
        "web-2",
        "--subresource=status",
        "-p",
        r#"{"status":{"phase":"Failed"}}"#,
    ]);
    eventually(WAIT, || {
        let uid = s.ok(&[
            "get",
            "pod",
            "web-2",
            "-o",
            "jsonpath={.metadata.uid}",
            "--ignore-not-found",
        ]);
        (!uid.is_empty() && uid != uid2 && ready_names(&s).len() == 3).then_some(())
    });

    // Scale to zero: highest ordinal first; the claims stay.
    let since = rv(&serde_json::from_str(&s.ok(&["get", "sts", "web", "-o", "json"])).unwrap());
    s.ok(&["scale", "sts", "web", "--replicas=0"]);
    eventually(WAIT, || pod_names(&s).is_empty().then_some(()));
    assert_eq!(
        event_pods_since(&s, "SuccessfulDelete", since),
        ["web-2", "web-1", "web-0"]
    );
    let claims = s.ok(&["get", "pvc", "-o", "name"]);
    for n in 0..3 {
        assert!(claims.contains(&format!("data-web-{n}")), "{claims}");
    }
}

#[test]
fn rolling_update_respects_partition_then_history_and_undo() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 2, &[]);
    s.apply_stdin(&["apply"], &sts_yaml("OrderedReady", 3, "nginx:1"));
    s.ok(&["rollout", "status", "sts/web", "--timeout=30s"]);
    let image = |n: &str| pod_json(&s, n)["spec"]["containers"][0]["image"].clone();

    s.ok(&[
        "patch",
        "sts",
        "web",
        "-p",
        r#"{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":1}}}}"#,
    ]);
    s.ok(&["set", "image", "sts/web", "c=nginx:2"]);
    let out = s.ok(&["rollout", "status", "sts/web", "--timeout=30s"]);
    assert!(out.contains("partitioned roll out complete"), "{out}");
    eventually(WAIT, || (ready_names(&s).len() == 3).then_some(()));
    assert_eq!(image("web-2"), "nginx:2");
    assert_eq!(image("web-1"), "nginx:2");
    assert_eq!(image("web-0"), "nginx:1", "below the partition");
    assert_eq!(event_pods(&s, "SuccessfulDelete"), ["web-2", "web-1"]);
    let st: Value = serde_json::from_str(&s.ok(&["get", "sts", "web", "-o", "json"])).unwrap();
    assert_ne!(
        st["status"]["currentRevision"],
        st["status"]["updateRevision"]
    );
    assert_eq!(st["status"]["updatedReplicas"], 2);
    assert_eq!(st["status"]["currentReplicas"], 1);
    assert_eq!(
        pod_json(&s, "web-2")["metadata"]["labels"]["controller-revision-hash"],
        st["status"]["updateRevision"]
    );

    s.ok(&[
        "patch",
        "sts",
        "web",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#,
    ]);
    let out = s.ok(&["rollout", "status", "sts/web", "--timeout=30s"]);
    assert!(out.contains("complete"), "{out}");
    assert_eq!(image("web-0"), "nginx:2");
    let st: Value = serde_json::from_str(&s.ok(&["get", "sts", "web", "-o", "json"])).unwrap();
    assert_eq!(
        st["status"]["currentRevision"],
        st["status"]["updateRevision"]
    );

    let history = s.ok(&["rollout", "history", "sts/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(revisions.len(), 2, "{history}");
    let rev1 = s.ok(&["rollout", "history", "sts/web", "--revision=1"]);
    assert!(rev1.contains("nginx:1"), "{rev1}");
    assert_eq!(
        s.ok(&["get", "controllerrevisions", "-o", "name"])
            .lines()
            .count(),
        2
    );

    s.ok(&["rollout", "undo", "sts/web", "--to-revision=1"]);
    s.ok(&["rollout", "status", "sts/web", "--timeout=30s"]);
    eventually(WAIT, || {
        (["web-0", "web-1", "web-2"]
            .iter()
            .all(|n| image(n) == "nginx:1"))
        .then_some(())
    });
    // The old revision is reused under a new number, not duplicated.
    assert_eq!(
        s.ok(&["get", "controllerrevisions", "-o", "name"])
            .lines()
            .count(),
        2
    );
    let history = s.ok(&["rollout", "history", "sts/web"]);
    assert!(history.contains("3"), "{history}");
    s.fails(&["rollout", "undo", "sts/web", "--to-revision=9"]);
}

#[test]
fn parallel_creates_and_deletes_without_waiting() {
    let s = Server::start();
    // No nodes: the pods stay Pending, and Parallel creates them all anyway.
    s.apply_stdin(&["apply"], &sts_yaml("Parallel", 3, "nginx:1"));
    eventually(WAIT, || {
        (pod_names(&s) == ["web-0", "web-1", "web-2"]).then_some(())
    });
    s.ok(&["scale", "sts", "web", "--replicas=1"]);
    eventually(WAIT, || (pod_names(&s) == ["web-0"]).then_some(()));
    let _nodes = HollowNodes::start(&s, 1, &[]);
    eventually(WAIT, || (ready_names(&s) == ["web-0"]).then_some(()));

    // A set with ordinals starting at 5, and a retention policy deleting
    // claims on scale-down.
    s.apply_stdin(
        &["apply"],
        &sts_yaml("Parallel", 2, "nginx:1")
            .replace("name: web\n", "name: db\n")
            .replace("app: web", "app: db")
            .replace(
                "  serviceName: nginx\n",
                "  serviceName: nginx\n  ordinals: {start: 5}\n  persistentVolumeClaimRetentionPolicy: {whenScaled: Delete}\n",
            ),
    );
    eventually(WAIT, || {
        let out = s.ok(&["get", "pods", "-l", "app=db", "-o", "name"]);
        (out.contains("pod/db-5") && out.contains("pod/db-6")).then_some(())
    });
    s.ok(&["get", "pvc", "data-db-6"]);
    s.ok(&["scale", "sts", "db", "--replicas=1"]);
    // The scaled-away claim is handed to its pod, so the garbage collector
    // deletes it after the pod; the remaining claim is kept.
    eventually(WAIT, || {
        let out = s.kubectl(&["get", "pvc", "data-db-6", "-o", "json"]);
        if !out.status.success() {
            return Some(());
        }
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        let owners = v["metadata"]["ownerReferences"].as_array()?;
        owners
            .iter()
            .any(|o| o["kind"] == "Pod" && o["name"] == "db-6")
            .then_some(())
    });
    let kept: Value =
        serde_json::from_str(&s.ok(&["get", "pvc", "data-db-5", "-o", "json"])).unwrap();
    assert!(kept["metadata"]["ownerReferences"].is_null(), "{kept}");
}
