//! End-to-end: the Deployment controller against the real `skiff server`
//! (control plane only) with hollow nodes, driven by the real kubectl —
//! rolling updates, history and undo, pause/resume, restart, Recreate,
//! proportional scaling, the progress deadline, and a server restart in the
//! middle of a rollout.

mod common;

use std::process::{Child, Stdio};
use std::time::Duration;

use common::{eventually, HollowNodes, Server};
use serde_json::Value;

const REVISION: &str = "deployment.kubernetes.io/revision";

fn json(s: &Server, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["-o", "json"]);
    serde_json::from_str(&s.ok(&args)).expect("JSON from kubectl")
}

fn start() -> (Server, HollowNodes) {
    let s = Server::start();
    let nodes = HollowNodes::start(&s, 3, &[]);
    (s, nodes)
}

/// A Deployment of `app` (image busybox:<tag>) with `extra` spliced into its spec.
fn deployment_yaml(name: &str, replicas: i32, tag: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  annotations:
    kubernetes.io/change-cause: "create busybox:{tag}"
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {name}
{extra}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: app
        image: busybox:{tag}
"#
    )
}

/// The ReplicaSets the Deployment controls, lowest revision first.
fn replica_sets(s: &Server, name: &str) -> Vec<Value> {
    let uid = json(s, &["get", "deployment", name])["metadata"]["uid"].clone();
    let mut rss: Vec<Value> = json(s, &["get", "rs"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rs| {
            rs["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|o| o.iter().any(|r| r["uid"] == uid && r["controller"] == true))
        })
        .cloned()
        .collect();
    rss.sort_by_key(|rs| {
        rs["metadata"]["annotations"][REVISION]
            .as_str()
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0)
    });
    rss
}

fn rs_named<'a>(rss: &'a [Value], hash_of: &str) -> &'a Value {
    rss.iter()
        .find(|rs| rs["metadata"]["name"] == hash_of)
        .unwrap_or_else(|| panic!("no replica set {hash_of} in {rss:?}"))
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn image_of(d: &Value) -> String {
    d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `kubectl rollout status` running in the background.
fn rollout_status(s: &Server, name: &str) -> Child {
    s.kubectl_cmd()
        .args([
            "rollout",
            "status",
            &format!("deployment/{name}"),
            "--timeout=60s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl rollout status")
}

#[track_caller]
fn finish(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "rollout status failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Active (not terminating) pods controlled by this Deployment's ReplicaSets.
fn active_pods(s: &Server, name: &str) -> Vec<Value> {
    let rs_uids: Vec<Value> = replica_sets(s, name)
        .iter()
        .map(|rs| rs["metadata"]["uid"].clone())
        .collect();
    json(s, &["get", "pods"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| {
            p["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|o| o.iter().any(|r| rs_uids.contains(&r["uid"])))
        })
        .cloned()
        .collect()
}

#[test]
fn rolling_update_history_and_undo() {
    let (s, _nodes) = start();
    let strategy = "  minReadySeconds: 2\n  strategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxSurge: 1\n      maxUnavailable: 1";
    s.apply_stdin(&["apply"], &deployment_yaml("web", 3, "1", strategy));
    finish(rollout_status(&s, "web"));

    let rss = replica_sets(&s, "web");
    assert_eq!(rss.len(), 1, "{rss:?}");
    let first = rss[0].clone();
    let hash = first["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(first["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(
        first["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash.as_str()
    );
    assert_eq!(
        first["spec"]["template"]["metadata"]["labels"]["pod-template-hash"],
        hash.as_str()
    );
    let a = &first["metadata"]["annotations"];
    assert_eq!(a[REVISION], "1");
    assert_eq!(a["deployment.kubernetes.io/desired-replicas"], "3");
    assert_eq!(a["deployment.kubernetes.io/max-replicas"], "4");
    assert_eq!(a["kubernetes.io/change-cause"], "create busybox:1");
    let d = json(&s, &["get", "deployment", "web"]);
    assert_eq!(d["metadata"]["annotations"][REVISION], "1");
    assert_eq!(n(&d["status"]["availableReplicas"]), 3);
    let pods = active_pods(&s, "web");
    assert_eq!(pods.len(), 3);
    assert!(pods
        .iter()
        .all(|p| p["metadata"]["labels"]["pod-template-hash"] == hash.as_str()));

    // set image rolls out; ready pods never drop below replicas - maxUnavailable.
    s.ok(&["set", "image", "deployment/web", "app=busybox:2"]);
    s.ok(&[
        "annotate",
        "deployment",
        "web",
        "kubernetes.io/change-cause=set image busybox:2",
        "--overwrite",
    ]);
    let mut status = rollout_status(&s, "web");
    // Availability (ready for minReadySeconds) is what the rollout
    // guards; it implies readiness, and lags it enough to catch a dip.
    let (mut lowest_ready, mut lowest_available) = (i64::MAX, i64::MAX);
    let mut samples = 0;
    while status.try_wait().unwrap().is_none() {
        let rss = replica_sets(&s, "web");
        let ready: i64 = rss.iter().map(|rs| n(&rs["status"]["readyReplicas"])).sum();
        let available: i64 = rss
            .iter()
            .map(|rs| n(&rs["status"]["availableReplicas"]))
            .sum();
        lowest_ready = lowest_ready.min(ready);
        lowest_available = lowest_available.min(available);
        samples += 1;
    }
    let out = finish(status);
    assert!(out.contains("successfully rolled out"), "{out}");
    assert!(lowest_ready >= 2, "ready pods fell to {lowest_ready}");
    assert!(
        lowest_available >= 2,
        "available pods fell to {lowest_available}"
    );
    assert!(samples > 0, "the rollout was watched");

    let rss = replica_sets(&s, "web");
    assert_eq!(rss.len(), 2, "{rss:?}");
    let old = rs_named(&rss, first["metadata"]["name"].as_str().unwrap());
    assert_eq!(n(&old["spec"]["replicas"]), 0);
    let new = rss
        .iter()
        .find(|rs| rs["metadata"]["name"] != old["metadata"]["name"])
        .unwrap();
    assert_eq!(n(&new["spec"]["replicas"]), 3);
    assert_eq!(new["metadata"]["annotations"][REVISION], "2");
    let d = json(&s, &["get", "deployment", "web"]);
    assert_eq!(d["metadata"]["annotations"][REVISION], "2");
    let st = &d["status"];
    assert_eq!(
        (
            n(&st["replicas"]),
            n(&st["updatedReplicas"]),
            n(&st["readyReplicas"]),
            n(&st["availableReplicas"]),
            n(&st["unavailableReplicas"])
        ),
        (3, 3, 3, 3, 0),
        "{st}"
    );
    assert_eq!(
        n(&st["observedGeneration"]),
        n(&d["metadata"]["generation"])
    );
    let cond = |t: &str| {
        st["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        (
            cond("Available")["status"].clone(),
            cond("Available")["reason"].clone()
        ),
        ("True".into(), "MinimumReplicasAvailable".into())
    );
    assert_eq!(cond("Progressing")["reason"], "NewReplicaSetAvailable");

    // History lists both revisions with their change causes.
    let history = s.ok(&["rollout", "history", "deployment/web"]);
    let line = |rev: &str| {
        history
            .lines()
            .find(|l| l.split_whitespace().next() == Some(rev))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("1").contains("create busybox:1"), "{history}");
    assert!(line("2").contains("set image busybox:2"), "{history}");
    assert!(s
        .ok(&["rollout", "history", "deployment/web", "--revision=1"])
        .contains("busybox:1"));

    // Undo to revision 1 brings the first template (and replica set) back as revision 3.
    s.fails(&["rollout", "undo", "deployment/web", "--to-revision=9"]);
    s.ok(&["rollout", "undo", "deployment/web", "--to-revision=1"]);
    finish(rollout_status(&s, "web"));
    let d = json(&s, &["get", "deployment", "web"]);
    assert_eq!(image_of(&d), "busybox:1");
    assert_eq!(d["metadata"]["annotations"][REVISION], "3");
    let rss = replica_sets(&s, "web");
    assert_eq!(rss.len(), 2, "the old replica set is reused: {rss:?}");
    let back = rs_named(&rss, first["metadata"]["name"].as_str().unwrap());
    assert_eq!(back["metadata"]["annotations"][REVISION], "3");
    assert_eq!(
        back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"],
        "1"
    );
    assert_eq!(n(&back["spec"]["replicas"]), 3);
    let history = s.ok(&["rollout", "history", "deployment/web"]);
    assert!(history.lines().any(|l| l.starts_with("3 ")), "{history}");
    assert!(!history.lines().any(|l| l.starts_with("1 ")), "{history}");
    let pods = active_pods(&s, "web");
    assert_eq!(pods.len(), 3);
    assert!(pods
        .iter()
        .all(|p| p["spec"]["containers"][0]["image"] == "busybox:1"));

    // The rollout is told as events on the Deployment.
    let describe = s.ok(&["describe", "deployment", "web"]);
    assert!(describe.contains("ScalingReplicaSet"), "{describe}");
    assert!(
        describe.contains(&format!("Scaled up replica set web-{hash} from 0 to 3")),
        "{describe}"
    );
    // Rolled step by step: the old set went 3 → 2 first (maxUnavailable 1).
    let old_name = first["metadata"]["name"].as_str().unwrap();
    assert!(
        describe.contains(&format!("Scaled down replica set {old_name} from 3 to 2")),
        "{describe}"
    );
}

#[test]
fn pause_batches_changes_and_restart_rolls_out() {
    let (s, _nodes) = start();
    s.apply_stdin(
        &["apply"],
        &deployment_yaml("batch", 2, "1", "  revisionHistoryLimit: 1"),
    );
    finish(rollout_status(&s, "batch"));
    assert_eq!(replica_sets(&s, "batch").len(), 1);

    s.ok(&["rollout", "pause", "deployment/batch"]);
    s.ok(&["set", "image", "deployment/batch", "app=busybox:2"]);
    s.ok(&["set", "env", "deployment/batch", "FOO=bar"]);
    // Paused: the changes are observed but nothing rolls out.
    eventually(Duration::from_secs(20), || {
        let d = json(&s, &["get", "deployment", "batch"]);
        let progressing = d["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Progressing")?
            .clone();
        (n(&d["status"]["observedGeneration"]) == n(&d["metadata"]["generation"])
            && progressing["reason"] == "DeploymentPaused")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        replica_sets(&s, "batch").len(),
        1,
        "no rollout while paused"
    );
    // Scaling still works while paused.
    s.ok(&["scale", "deployment/batch", "--replicas=3"]);
    eventually(Duration::from_secs(20), || {
        (active_pods(&s, "batch").len() == 3).then_some(())
    });
    assert_eq!(replica_sets(&s, "batch").len(), 1);
    s.fails(&["rollout", "undo", "deployment/batch"]);

    // Resumed: both changes go out in ONE new replica set.
    s.ok(&["rollout", "resume", "deployment/batch"]);
    finish(rollout_status(&s, "batch"));
    let rss = replica_sets(&s, "batch");
    assert_eq!(rss.len(), 2, "{rss:?}");
    let new = &rss[1];
    let container = &new["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "busybox:2");
    assert_eq!(container["env"][0]["name"], "FOO");
    assert_eq!(n(&new["spec"]["replicas"]), 3);
    assert_eq!(new["metadata"]["annotations"][REVISION], "2");

    // restart makes a new rollout; revisionHistoryLimit 1 keeps one old set.
    s.ok(&["rollout", "restart", "deployment/batch"]);
    finish(rollout_status(&s, "batch"));
    eventually(Duration::from_secs(20), || {
        let rss = replica_sets(&s, "batch");
        (rss.len() == 2
            && rss
                .iter()
                .any(|rs| rs["metadata"]["annotations"][REVISION] == "3")
            && rss
                .iter()
                .any(|rs| rs["metadata"]["annotations"][REVISION] == "2"))
        .then_some(())
    });
    let pods = active_pods(&s, "batch");
    assert_eq!(pods.len(), 3);
    assert!(pods
        .iter()
        .all(|p| !p["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_null()));
}

#[test]
fn recreate_and_progress_deadline() {
    let (s, _nodes) = start();
    s.apply_stdin(
        &["apply"],
        &deployment_yaml("re", 3, "1", "  strategy:\n    type: Recreate"),
    );
    finish(rollout_status(&s, "re"));
    s.ok(&["set", "image", "deployment/re", "app=busybox:2"]);
    let status = rollout_status(&s, "re");
    let mut mixed = Vec::new();
    let mut status = Some(status);
    while status.as_mut().unwrap().try_wait().unwrap().is_none() {
        let images: std::collections::BTreeSet<String> = active_pods(&s, "re")
            .iter()
            .map(|p| {
                p["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        if images.len() > 1 {
            mixed.push(images);
        }
    }
    finish(status.take().unwrap());
    assert!(mixed.is_empty(), "old and new pods ran together: {mixed:?}");
    let pods = active_pods(&s, "re");
    assert_eq!(pods.len(), 3);
    assert!(pods
        .iter()
        .all(|p| p["spec"]["containers"][0]["image"] == "busybox:2"));
    let describe = s.ok(&["describe", "deployment", "re"]);
    assert!(describe.contains("Scaled down replica set"), "{describe}");

    // Pods no node can take: the rollout exceeds its deadline.
    let stuck = "  progressDeadlineSeconds: 5";
    let yaml = deployment_yaml("stuck", 2, "1", stuck).replace(
        "    spec:\n      containers:",
        "    spec:\n      nodeSelector:\n        nowhere: \"true\"\n      containers:",
    );
    s.apply_stdin(&["apply"], &yaml);
    let out = s.kubectl(&["rollout", "status", "deployment/stuck", "--timeout=40s"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exceeded its progress deadline"), "{err}");
    let d = json(&s, &["get", "deployment", "stuck"]);
    let conds = d["status"]["conditions"].as_array().unwrap();
    let progressing = conds.iter().find(|c| c["type"] == "Progressing").unwrap();
    assert_eq!(
        (
            progressing["status"].as_str(),
            progressing["reason"].as_str()
        ),
        (Some("False"), Some("ProgressDeadlineExceeded"))
    );
    let available = conds.iter().find(|c| c["type"] == "Available").unwrap();
    assert_eq!(available["reason"], "MinimumReplicasUnavailable");
    assert_eq!(n(&d["status"]["unavailableReplicas"]), 2);
}

#[test]
fn scaling_mid_rollout_splits_proportionally() {
    let (s, _nodes) = start();
    let strategy = "  strategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxSurge: 3\n      maxUnavailable: 0";
    s.apply_stdin(&["apply"], &deployment_yaml("prop", 10, "1", strategy));
    finish(rollout_status(&s, "prop"));
    // A template no node takes: the rollout stops with 10 old + 3 new.
    s.ok(&[
        "patch",
        "deployment",
        "prop",
        "--type=merge",
        "-p",
        r#"{"spec":{"template":{"spec":{"nodeSelector":{"nowhere":"true"}}}}}"#,
    ]);
    eventually(Duration::from_secs(20), || {
        let rss = replica_sets(&s, "prop");
        (rss.len() == 2 && n(&rss[1]["spec"]["replicas"]) == 3).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let rss = replica_sets(&s, "prop");
    assert_eq!(
        n(&rss[0]["spec"]["replicas"]),
        10,
        "maxUnavailable 0 keeps every old pod"
    );
    // 20 + 3 surge = 23 split by the sizes at 13: old 10*23/13 ≈ 18, new 5.
    s.ok(&["scale", "deployment/prop", "--replicas=20"]);
    eventually(Duration::from_secs(20), || {
        let rss = replica_sets(&s, "prop");
        let sizes: Vec<i64> = rss.iter().map(|rs| n(&rs["spec"]["replicas"])).collect();
        (sizes == [18, 5]).then_some(())
    });
    let rss = replica_sets(&s, "prop");
    for rs in &rss {
        assert_eq!(
            rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"],
            "20"
        );
        assert_eq!(
            rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"],
            "23"
        );
    }
}

#[test]
fn server_restart_mid_rollout_finishes_without_duplicates() {
    let (mut s, _nodes) = start();
    let strategy = "  minReadySeconds: 2\n  strategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxSurge: 1\n      maxUnavailable: 0";
    s.apply_stdin(&["apply"], &deployment_yaml("slow", 5, "1", strategy));
    finish(rollout_status(&s, "slow"));
    s.ok(&["set", "image", "deployment/slow", "app=busybox:2"]);
    // Mid-rollout: both replica sets have pods.
    eventually(Duration::from_secs(30), || {
        let rss = replica_sets(&s, "slow");
        (rss.len() == 2
            && n(&rss[1]["spec"]["replicas"]) >= 2
            && n(&rss[0]["spec"]["replicas"]) > 0)
            .then_some(())
    });
    s.restart();
    finish(rollout_status(&s, "slow"));
    let rss = replica_sets(&s, "slow");
    assert_eq!(rss.len(), 2, "no duplicate replica sets: {rss:?}");
    assert_eq!(
        rss.iter()
            .map(|rs| n(&rs["spec"]["replicas"]))
            .collect::<Vec<_>>(),
        [0, 5]
    );
    eventually(Duration::from_secs(20), || {
        (active_pods(&s, "slow").len() == 5).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let pods = active_pods(&s, "slow");
    assert_eq!(pods.len(), 5, "no extra pods");
    assert!(pods
        .iter()
        .all(|p| p["spec"]["containers"][0]["image"] == "busybox:2"));
    let d = json(&s, &["get", "deployment", "slow"]);
    assert_eq!(d["metadata"]["annotations"][REVISION], "2");
}
