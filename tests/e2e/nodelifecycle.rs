//! End-to-end: node IPAM, the node lifecycle controller, taint eviction, pod
//! GC and the DefaultTolerationSeconds admission, with hollow nodes and the
//! real kubectl. A node "fails" by stopping its `skiff hollow-nodes`
//! process: its Lease is no longer renewed.

mod common;

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{eventually, skiff_bin, HollowNodes, Server};
use serde_json::Value;

const GRACE: &str = "8s";
/// Hollow leases renewed every second, well inside the grace period.
const FAST_LEASE: [&str; 2] = ["--node-lease-duration-seconds", "4"];

fn json(s: &Server, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["-o", "json"]);
    serde_json::from_str(&s.ok(&args)).expect("JSON from kubectl")
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let (base, prefix) = cidr.split_once('/').unwrap();
    let base: Ipv4Addr = base.parse().unwrap();
    let ip: Ipv4Addr = ip.parse().unwrap();
    let mask = u32::MAX << (32 - prefix.parse::<u32>().unwrap());
    u32::from(ip) & mask == u32::from(base) & mask
}

fn condition(obj: &Value, type_: &str) -> Option<Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

fn taint_keys(node: &Value) -> Vec<String> {
    node["spec"]["taints"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    format!(
                        "{}:{}",
                        t["key"].as_str().unwrap(),
                        t["effect"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pod_yaml(name: &str, node: &str, tolerations: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  nodeName: {node}
  containers:
  - name: app
    image: busybox
{tolerations}
"#
    )
}

fn events(s: &Server, reason: &str) -> Vec<Value> {
    json(s, &["get", "events", "-A"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == reason)
        .cloned()
        .collect()
}

fn pod_exists(s: &Server, name: &str) -> bool {
    s.kubectl(&["get", "pod", name]).status.success()
}

#[test]
fn nodes_get_pod_cidrs_from_the_cluster_cidr() {
    let s = Server::start_with(&[
        "--cluster-cidr",
        "10.77.0.0/23",
        "--node-cidr-mask-size",
        "25",
    ]);
    let _nodes = HollowNodes::start(&s, 3, &[]);
    let nodes = json(&s, &["get", "nodes"]);
    let mut cidrs: Vec<String> = nodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let c = n["spec"]["podCIDR"].as_str().expect("podCIDR").to_string();
            assert_eq!(n["spec"]["podCIDRs"], serde_json::json!([c]));
            c
        })
        .collect();
    // The four /25s of 10.77.0.0/23; each node its own.
    let all = [
        "10.77.0.0/25",
        "10.77.0.128/25",
        "10.77.1.0/25",
        "10.77.1.128/25",
    ];
    cidrs.sort();
    cidrs.dedup();
    assert_eq!(cidrs.len(), 3, "distinct: {cidrs:?}");
    assert!(cidrs.iter().all(|c| all.contains(&c.as_str())), "{cidrs:?}");
    let last = all
        .iter()
        .find(|c| !cidrs.contains(&c.to_string()))
        .unwrap();

    // Pod addresses come from the node's assigned range.
    s.apply_stdin(&["create"], &pod_yaml("web", "hollow-node-2", ""));
    s.ok(&["wait", "--for=condition=Ready", "pod/web", "--timeout=30s"]);
    let ip = json(&s, &["get", "pod", "web"])["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_string();
    let cidr = s.ok(&[
        "get",
        "node",
        "hollow-node-2",
        "-o",
        "jsonpath={.spec.podCIDR}",
    ]);
    assert!(in_cidr(&ip, &cidr), "{ip} in {cidr}");

    // A fourth node takes the last range; a fifth gets CIDRNotAvailable
    // and waits…
    let node = |name: &str| format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n");
    s.apply_stdin(&["create"], &node("fourth"));
    eventually(Duration::from_secs(10), || {
        let got = s.ok(&["get", "node", "fourth", "-o", "jsonpath={.spec.podCIDR}"]);
        (got == *last).then_some(())
    });
    s.apply_stdin(&["create"], &node("extra"));
    eventually(Duration::from_secs(15), || {
        events(&s, "CIDRNotAvailable")
            .iter()
            .any(|e| e["involvedObject"]["name"] == "extra")
            .then_some(())
    });
    assert_eq!(
        s.ok(&["get", "node", "extra", "-o", "jsonpath={.spec.podCIDR}"]),
        ""
    );
    // …until a node is deleted and its range is free again.
    let freed = s.ok(&[
        "get",
        "node",
        "hollow-node-0",
        "-o",
        "jsonpath={.spec.podCIDR}",
    ]);
    s.ok(&["delete", "node", "hollow-node-0"]);
    eventually(Duration::from_secs(20), || {
        let got = s.ok(&["get", "node", "extra", "-o", "jsonpath={.spec.podCIDR}"]);
        (got == freed).then_some(())
    });
}

#[test]
fn bad_cluster_cidr_flags_are_refused() {
    for args in [
        &["--cluster-cidr", "10.42.0.0"][..],
        &[
            "--cluster-cidr",
            "10.42.0.0/16",
            "--node-cidr-mask-size",
            "8",
        ],
        &["--node-monitor-grace-period", "soon"],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(skiff_bin())
            .arg("server")
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("cluster") || err.contains("mask") || err.contains("duration"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn pods_get_default_toleration_seconds() {
    let s = Server::start_with(&["--disable-scheduler"]);
    s.apply_stdin(&["create"], &pod_yaml("plain", "nowhere", ""));
    let own = r#"  tolerations:
  - key: node.kubernetes.io/unreachable
    operator: Exists
    effect: NoExecute
    tolerationSeconds: 5"#;
    s.apply_stdin(&["create"], &pod_yaml("own", "nowhere", own));
    let plain = s.ok(&["get", "pod", "plain", "-o", "yaml"]);
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        assert!(
            plain.contains(&format!(
                "  - effect: NoExecute\n    key: {key}\n    operator: Exists\n    tolerationSeconds: 300\n"
            )),
            "{plain}"
        );
    }
    let tolerations = &json(&s, &["get", "pod", "own"])["spec"]["tolerations"];
    assert_eq!(
        tolerations,
        &serde_json::json!([
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5},
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ])
    );
}

const RS: &str = r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      tolerations:
      - key: node.kubernetes.io/unreachable
        operator: Exists
        effect: NoExecute
        tolerationSeconds: 5
      containers:
      - name: app
        image: busybox
"#;

/// (name, node, terminating) of the ReplicaSet's pods.
fn web_pods(s: &Server) -> Vec<(String, String, bool)> {
    json(s, &["get", "pods", "-l", "app=web"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                p["spec"]["nodeName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p["metadata"]["deletionTimestamp"].is_string(),
            )
        })
        .collect()
}

#[test]
fn unreachable_node_is_tainted_its_pods_evicted_and_it_recovers() {
    let s = Server::start_with(&["--node-monitor-grace-period", GRACE]);
    let mut flaky = HollowNodes::start(
        &s,
        1,
        &[&["--name-prefix", "flaky-"][..], &FAST_LEASE[..]].concat(),
    );
    // Alone, the flaky node gets every pod of the ReplicaSet, and a pod
    // that tolerates the taint for the default 300 s.
    s.apply_stdin(&["apply"], RS);
    s.apply_stdin(&["create"], &pod_yaml("patient", "flaky-0", ""));
    eventually(Duration::from_secs(30), || {
        let pods = web_pods(&s);
        let ready = s.ok(&["get", "rs", "web", "-o", "jsonpath={.status.readyReplicas}"]);
        (pods.len() == 3 && pods.iter().all(|p| p.1 == "flaky-0") && ready == "3").then_some(())
    });
    let _steady = HollowNodes::start(
        &s,
        2,
        &[&["--name-prefix", "steady-"][..], &FAST_LEASE[..]].concat(),
    );
    let node = json(&s, &["get", "node", "flaky-0"]);
    assert_eq!(condition(&node, "Ready").unwrap()["status"], "True");
    assert!(taint_keys(&node).is_empty(), "{node}");

    flaky.stop();
    let stopped = Instant::now();
    // Silent past the grace period: Unknown, tainted unreachable.
    let node = eventually(Duration::from_secs(20), || {
        let n = json(&s, &["get", "node", "flaky-0"]);
        let keys = taint_keys(&n);
        (keys.contains(&"node.kubernetes.io/unreachable:NoExecute".to_string())
            && keys.contains(&"node.kubernetes.io/unreachable:NoSchedule".to_string()))
        .then_some(n)
    });
    let waited = stopped.elapsed();
    assert!(
        waited >= Duration::from_secs(6),
        "tainted too early: {waited:?}"
    );
    for t in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        let c = condition(&node, t).expect(t);
        assert_eq!(c["status"], "Unknown", "{t}");
        assert_eq!(c["reason"], "NodeStatusUnknown", "{t}");
        assert_eq!(c["message"], "Kubelet stopped posting node status.", "{t}");
    }
    let table = s.ok(&["get", "node", "flaky-0", "--no-headers"]);
    assert!(table.contains("NotReady"), "{table}");
    assert!(events(&s, "NodeNotReady")
        .iter()
        .any(|e| e["involvedObject"]["name"] == "flaky-0"));
    // Its pods are no longer Ready.
    eventually(Duration::from_secs(10), || {
        let p = json(&s, &["get", "pod", "patient"]);
        (condition(&p, "Ready")?["status"] == "False").then_some(())
    });

    // After tolerationSeconds (5 s) the ReplicaSet's pods are evicted and
    // replaced on the healthy nodes; the patient pod stays.
    let pods = eventually(Duration::from_secs(25), || {
        let pods = web_pods(&s);
        let live: Vec<_> = pods.iter().filter(|p| !p.2).collect();
        let replaced = live.len() == 3 && live.iter().all(|p| p.1.starts_with("steady-"));
        let evicted = pods.iter().filter(|p| p.1 == "flaky-0").all(|p| p.2);
        (replaced && evicted).then_some(pods)
    });
    assert!(
        pods.iter().any(|p| p.1 == "flaky-0"),
        "the evicted pods stay Terminating on the silent node: {pods:?}"
    );
    let evictions = events(&s, "TaintManagerEviction");
    let old = pods.iter().find(|p| p.1 == "flaky-0").unwrap();
    assert!(
        evictions
            .iter()
            .any(|e| e["message"] == format!("Marking for deletion Pod default/{}", old.0)),
        "{evictions:?}"
    );
    let evicted = json(&s, &["get", "pod", &old.0]);
    let target = condition(&evicted, "DisruptionTarget").expect("DisruptionTarget");
    assert_eq!(target["reason"], "DeletionByTaintManager");
    let patient = json(&s, &["get", "pod", "patient"]);
    assert!(
        patient["metadata"]["deletionTimestamp"].is_null(),
        "{patient}"
    );

    // Back: Ready again, taints gone, the evicted pods finished.
    flaky.restart();
    eventually(Duration::from_secs(20), || {
        let n = json(&s, &["get", "node", "flaky-0"]);
        (condition(&n, "Ready")?["status"] == "True" && taint_keys(&n).is_empty()).then_some(())
    });
    eventually(Duration::from_secs(20), || {
        web_pods(&s)
            .iter()
            .all(|p| p.1.starts_with("steady-"))
            .then_some(())
    });
}

#[test]
fn no_execute_taints_evict_untolerated_pods() {
    let s = Server::start_with(&["--node-monitor-grace-period", GRACE]);
    let _nodes = HollowNodes::start(&s, 1, &FAST_LEASE);
    let tolerate = |secs: u32| {
        format!(
            "  tolerations:\n  - key: evict\n    operator: Exists\n    effect: NoExecute\n    tolerationSeconds: {secs}"
        )
    };
    s.apply_stdin(&["create"], &pod_yaml("intolerant", "hollow-node-0", ""));
    s.apply_stdin(
        &["create"],
        &pod_yaml("brief", "hollow-node-0", &tolerate(3)),
    );
    s.apply_stdin(
        &["create"],
        &pod_yaml("spared", "hollow-node-0", &tolerate(8)),
    );
    let forever = "  tolerations:\n  - key: evict\n    operator: Exists";
    s.apply_stdin(&["create"], &pod_yaml("stoic", "hollow-node-0", forever));
    for p in ["intolerant", "brief", "spared", "stoic"] {
        s.ok(&[
            "wait",
            "--for=condition=Ready",
            &format!("pod/{p}"),
            "--timeout=30s",
        ]);
    }

    s.ok(&["taint", "node", "hollow-node-0", "evict=now:NoExecute"]);
    let tainted = Instant::now();
    eventually(Duration::from_secs(5), || {
        (!pod_exists(&s, "intolerant")).then_some(())
    });
    assert!(
        tainted.elapsed() < Duration::from_secs(3),
        "evicted at once"
    );
    eventually(Duration::from_secs(10), || {
        (!pod_exists(&s, "brief")).then_some(())
    });
    assert!(
        tainted.elapsed() >= Duration::from_secs(3),
        "brief was tolerated for 3 s: {:?}",
        tainted.elapsed()
    );
    // The taint goes before 8 s: spared's timer is cancelled.
    s.ok(&["taint", "node", "hollow-node-0", "evict=now:NoExecute-"]);
    std::thread::sleep(Duration::from_secs(7));
    for p in ["spared", "stoic"] {
        let pod = json(&s, &["get", "pod", p]);
        assert!(pod["metadata"]["deletionTimestamp"].is_null(), "{p}: {pod}");
    }
}

#[test]
fn pods_of_a_deleted_node_are_garbage_collected() {
    let s = Server::start_with(&["--node-monitor-grace-period", GRACE]);
    let mut doomed = HollowNodes::start(
        &s,
        1,
        &[&["--name-prefix", "doomed-"][..], &FAST_LEASE[..]].concat(),
    );
    let _other = HollowNodes::start(&s, 1, &FAST_LEASE);
    s.apply_stdin(&["create"], &pod_yaml("orphan", "doomed-0", ""));
    s.apply_stdin(&["create"], &pod_yaml("keeper", "hollow-node-0", ""));
    for p in ["orphan", "keeper"] {
        s.ok(&[
            "wait",
            "--for=condition=Ready",
            &format!("pod/{p}"),
            "--timeout=30s",
        ]);
    }
    doomed.stop();
    s.ok(&["delete", "node", "doomed-0"]);
    let deleted = Instant::now();
    // After a quarantine of the grace period (8 s) and a live check.
    eventually(Duration::from_secs(25), || {
        (!pod_exists(&s, "orphan")).then_some(())
    });
    assert!(
        deleted.elapsed() >= Duration::from_secs(6),
        "quarantined first: {:?}",
        deleted.elapsed()
    );
    assert!(pod_exists(&s, "keeper"));
}

#[test]
fn no_eviction_when_every_zone_is_down() {
    let s = Server::start_with(&["--node-monitor-grace-period", GRACE]);
    let mut only = HollowNodes::start(&s, 1, &FAST_LEASE);
    let brief = "  tolerations:\n  - key: node.kubernetes.io/unreachable\n    operator: Exists\n    effect: NoExecute\n    tolerationSeconds: 1";
    s.apply_stdin(&["create"], &pod_yaml("kept", "hollow-node-0", brief));
    s.ok(&["wait", "--for=condition=Ready", "pod/kept", "--timeout=30s"]);
    only.stop();
    // The only zone is wholly down: more likely the control plane is cut
    // off than every node dead, so nothing is tainted NoExecute.
    eventually(Duration::from_secs(20), || {
        let n = json(&s, &["get", "node", "hollow-node-0"]);
        (condition(&n, "Ready")?["status"] == "Unknown").then_some(())
    });
    std::thread::sleep(Duration::from_secs(4));
    let n = json(&s, &["get", "node", "hollow-node-0"]);
    assert_eq!(
        taint_keys(&n),
        ["node.kubernetes.io/unreachable:NoSchedule"],
        "{n}"
    );
    let pod = json(&s, &["get", "pod", "kept"]);
    assert!(pod["metadata"]["deletionTimestamp"].is_null(), "{pod}");
}

#[test]
fn terminated_pods_beyond_the_threshold_are_collected() {
    let s = Server::start_with(&[
        "--disable-scheduler",
        "--node-monitor-grace-period",
        GRACE,
        "--terminated-pod-gc-threshold",
        "2",
    ]);
    let unbound = |name: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: app\n    image: busybox\n")
    };
    for name in ["p1", "p2", "p3", "p4", "running"] {
        s.apply_stdin(&["create"], &unbound(name));
    }
    for (name, phase) in [
        ("p1", "Succeeded"),
        ("p2", "Failed"),
        ("p3", "Succeeded"),
        ("p4", "Failed"),
    ] {
        s.ok(&[
            "patch",
            "pod",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &format!(r#"{{"status":{{"phase":"{phase}"}}}}"#),
        ]);
    }
    // The two oldest finished pods go; the rest stay.
    eventually(Duration::from_secs(15), || {
        (!pod_exists(&s, "p1") && !pod_exists(&s, "p2")).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    for name in ["p3", "p4", "running"] {
        assert!(pod_exists(&s, name), "{name}");
    }
}
