//! DaemonSets on hollow nodes, driven by the real kubectl: one pod per
//! eligible node as nodes join, change and leave; taints and tolerations;
//! rolling updates with `rollout status`, history and undo.

mod common;

use std::time::Duration;

use common::{eventually, HollowNodes, Server};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn ds_yaml(extra_spec: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {{app: agent}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {{maxUnavailable: 1}}
  template:
    metadata:
      labels: {{app: agent}}
    spec:
{extra_spec}      containers:
      - name: c
        image: agent:1
"#
    )
}

/// node name → pod names of live (not terminating) daemon pods.
fn pods_by_node(s: &Server) -> Vec<(String, String)> {
    let out = s.ok(&["get", "pods", "-l", "app=agent", "-o", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut pairs: Vec<(String, String)> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            (
                p["spec"]["nodeName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

fn nodes_with_pods(s: &Server) -> Vec<String> {
    pods_by_node(s).into_iter().map(|(n, _)| n).collect()
}

fn status(s: &Server) -> String {
    s.ok(&[
        "get",
        "ds",
        "agent",
        "-o",
        "jsonpath={.status.desiredNumberScheduled} {.status.currentNumberScheduled} {.status.numberReady} {.status.updatedNumberScheduled} {.status.numberMisscheduled}",
    ])
}

#[test]
fn follows_nodes_joining_changing_and_leaving() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 2, &[]);
    s.apply_stdin(&["apply"], &ds_yaml(""));
    let two = ["hollow-node-0", "hollow-node-1"];
    eventually(WAIT, || (nodes_with_pods(&s) == two).then_some(()));
    eventually(WAIT, || (status(&s) == "2 2 2 2 0").then_some(()));

    // The pod is pinned by node affinity on metadata.name and carries the
    // daemon tolerations.
    let name = pods_by_node(&s)[0].1.clone();
    let pod: Value = serde_json::from_str(&s.ok(&["get", "pod", &name, "-o", "json"])).unwrap();
    let term = &pod["spec"]["affinity"]["nodeAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0];
    assert_eq!(term["matchFields"][0]["key"], "metadata.name");
    assert_eq!(term["matchFields"][0]["values"][0], "hollow-node-0");
    let tolerations = pod["spec"]["tolerations"].to_string();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/unschedulable",
        "node.kubernetes.io/memory-pressure",
    ] {
        assert!(tolerations.contains(key), "{tolerations}");
    }
    assert!(pod["metadata"]["labels"]["controller-revision-hash"].is_string());
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=DaemonSet",
    ]);
    assert!(events.contains("SuccessfulCreate"), "{events}");
    assert!(events.contains(&format!("Created pod: {name}")), "{events}");

    // A node joins: it gets a pod.
    let _extra = HollowNodes::start(&s, 1, &["--name-prefix", "extra-"]);
    eventually(WAIT, || {
        (nodes_with_pods(&s) == ["extra-0", "hollow-node-0", "hollow-node-1"]).then_some(())
    });

    // A deleted daemon pod is replaced.
    let on_extra = pods_by_node(&s)[0].1.clone();
    s.ok(&["delete", "pod", &on_extra, "--wait=false"]);
    eventually(WAIT, || {
        let p = pods_by_node(&s);
        (p.len() == 3 && p[0].0 == "extra-0" && p[0].1 != on_extra).then_some(())
    });

    // A failed daemon pod is deleted and replaced.
    let on_node0 = pods_by_node(&s)[1].1.clone();
    s.ok(&[
        "patch",
        "pod",
        &on_node0,
        "--subresource=status",
        "-p",
        r#"{"status":{"phase":"Failed"}}"#,
    ]);
    eventually(WAIT, || {
        let p = pods_by_node(&s);
        (p.len() == 3 && p[1].0 == "hollow-node-0" && p[1].1 != on_node0).then_some(())
    });
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=FailedDaemonPod",
    ]);
    assert!(events.contains(&on_node0), "{events}");

    // A nodeSelector leaves out unlabelled nodes: their pods are deleted.
    s.ok(&["label", "node", "hollow-node-1", "role=agent"]);
    s.ok(&["label", "node", "extra-0", "role=agent"]);
    s.ok(&[
        "patch",
        "ds",
        "agent",
        "-p",
        r#"{"spec":{"template":{"spec":{"nodeSelector":{"role":"agent"}}}}}"#,
    ]);
    eventually(WAIT, || {
        (nodes_with_pods(&s) == ["extra-0", "hollow-node-1"]).then_some(())
    });
    // Removing the label from a node makes it ineligible too.
    s.ok(&["label", "node", "hollow-node-1", "role-"]);
    eventually(WAIT, || (nodes_with_pods(&s) == ["extra-0"]).then_some(()));
    eventually(WAIT, || (status(&s) == "1 1 1 1 0").then_some(()));
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=SuccessfulDelete",
    ]);
    assert!(events.contains("Deleted pod:"), "{events}");

    // A NoExecute taint the pods do not tolerate evicts the daemon.
    s.ok(&["label", "node", "hollow-node-0", "role=agent"]);
    eventually(WAIT, || {
        (nodes_with_pods(&s) == ["extra-0", "hollow-node-0"]).then_some(())
    });
    s.ok(&["taint", "node", "hollow-node-0", "dedicated=x:NoExecute"]);
    eventually(WAIT, || (nodes_with_pods(&s) == ["extra-0"]).then_some(()));

    // A node leaves: the DaemonSet stops counting it and makes no pod
    // elsewhere; deleting the orphaned pod is the pod GC's job.
    s.ok(&["delete", "node", "extra-0"]);
    eventually(WAIT, || (status(&s) == "0 0 0 0 0").then_some(()));
    std::thread::sleep(Duration::from_secs(1));
    assert!(pods_by_node(&s).iter().all(|(n, _)| n == "extra-0"));
}

#[test]
fn taints_need_tolerations_and_cordons_do_not_matter() {
    let s = Server::start();
    let _plain = HollowNodes::start(&s, 1, &[]);
    let _tainted = HollowNodes::start(
        &s,
        1,
        &[
            "--name-prefix",
            "gpu-",
            "--node-taint",
            "gpu=yes:NoSchedule",
        ],
    );
    s.ok(&["cordon", "hollow-node-0"]);
    s.apply_stdin(&["apply"], &ds_yaml(""));
    // The cordoned node still runs the daemon (unschedulable is tolerated);
    // the tainted one does not.
    eventually(WAIT, || {
        (nodes_with_pods(&s) == ["hollow-node-0"]).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(nodes_with_pods(&s), ["hollow-node-0"]);
    assert_eq!(status(&s), "1 1 1 1 0");

    // Tolerating the taint admits the node.
    s.apply_stdin(
        &["apply"],
        &ds_yaml("      tolerations:\n      - {key: gpu, operator: Exists, effect: NoSchedule}\n"),
    );
    // The new template (with the toleration) also replaces the pod already
    // on hollow-node-0; wait for that rollout, or the taint below would
    // strand an old pod that is never updated.
    eventually(WAIT, || {
        (nodes_with_pods(&s) == ["gpu-0", "hollow-node-0"] && status(&s) == "2 2 2 2 0")
            .then_some(())
    });
    // A NoSchedule taint added later keeps the running pod (misscheduled).
    s.ok(&["taint", "node", "hollow-node-0", "maint=now:NoSchedule"]);
    eventually(WAIT, || (status(&s) == "1 1 1 1 1").then_some(()));
    // ... until the pod is gone: then no new pod lands there.
    let on_plain = pods_by_node(&s)[1].1.clone();
    s.ok(&["delete", "pod", &on_plain]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(nodes_with_pods(&s), ["gpu-0"]);
}

#[test]
fn rolling_update_with_rollout_status_history_and_undo() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 3, &[]);
    s.apply_stdin(&["apply"], &ds_yaml(""));
    s.ok(&["rollout", "status", "ds/agent", "--timeout=30s"]);
    let before: Vec<String> = pods_by_node(&s).into_iter().map(|(_, p)| p).collect();
    assert_eq!(before.len(), 3);

    s.ok(&["set", "image", "ds/agent", "c=agent:2"]);
    let out = s.ok(&["rollout", "status", "ds/agent", "--timeout=45s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
    let out = s.ok(&["get", "pods", "-l", "app=agent", "-o", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let live: Vec<&Value> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect();
    assert_eq!(live.len(), 3);
    for p in &live {
        assert_eq!(p["spec"]["containers"][0]["image"], "agent:2");
        assert!(!before.contains(&p["metadata"]["name"].as_str().unwrap().to_string()));
    }
    assert_eq!(status(&s), "3 3 3 3 0");

    let history = s.ok(&["rollout", "history", "ds/agent"]);
    let revisions = history
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .count();
    assert_eq!(revisions, 2, "{history}");
    s.ok(&["rollout", "undo", "ds/agent"]);
    s.ok(&["rollout", "status", "ds/agent", "--timeout=45s"]);
    eventually(WAIT, || {
        let out = s.ok(&[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ]);
        (out.split_whitespace().collect::<Vec<_>>() == ["agent:1"; 3]).then_some(())
    });

    // OnDelete: a template change waits for pods to be deleted by hand.
    s.ok(&[
        "patch",
        "ds",
        "agent",
        "-p",
        r#"{"spec":{"updateStrategy":{"type":"OnDelete","rollingUpdate":null}}}"#,
    ]);
    s.ok(&["set", "image", "ds/agent", "c=agent:3"]);
    std::thread::sleep(Duration::from_secs(2));
    let images = s.ok(&[
        "get",
        "pods",
        "-l",
        "app=agent",
        "-o",
        "jsonpath={.items[*].spec.containers[0].image}",
    ]);
    assert!(!images.contains("agent:3"), "{images}");
    let (node, pod) = pods_by_node(&s)[0].clone();
    s.ok(&["delete", "pod", &pod]);
    eventually(WAIT, || {
        let out = s.ok(&[
            "get",
            "pods",
            "-l",
            "app=agent",
            "--field-selector",
            &format!("spec.nodeName={node}"),
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ]);
        (out == "agent:3").then_some(())
    });

    // maxSurge: the new pod starts beside the old one, which goes once
    // the new one is available; every node ends with one updated pod.
    s.ok(&[
        "patch",
        "ds",
        "agent",
        "-p",
        r#"{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1,"maxUnavailable":0}}}}"#,
    ]);
    s.ok(&["set", "image", "ds/agent", "c=agent:4"]);
    s.ok(&["rollout", "status", "ds/agent", "--timeout=45s"]);
    eventually(WAIT, || {
        let out = s.ok(&[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ]);
        (out.split_whitespace().collect::<Vec<_>>() == ["agent:4"; 3]).then_some(())
    });
    assert_eq!(status(&s), "3 3 3 3 0");
}
