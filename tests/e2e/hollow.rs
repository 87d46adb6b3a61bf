//! End-to-end: `skiff hollow-nodes` (kubemark/KWOK-like nodes for scale
//! tests) against the real `skiff server`, checked with the real kubectl.
//!
//! Pods are bound by `spec.nodeName`, so nothing here depends on a scheduler.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::{eventually, HollowNodes, Server};
use serde_json::Value;

fn json(s: &Server, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["-o", "json"]);
    serde_json::from_str(&s.ok(&args)).expect("JSON from kubectl")
}

fn pod_yaml(name: &str, node: &str, extra_spec: &str) -> String {
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
    command: ["sleep", "3600"]
{extra_spec}
"#
    )
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let (base, prefix) = cidr.split_once('/').unwrap();
    let base: Ipv4Addr = base.parse().unwrap();
    let ip: Ipv4Addr = ip.parse().unwrap();
    let mask = u32::MAX << (32 - prefix.parse::<u32>().unwrap());
    u32::from(ip) & mask == u32::from(base) & mask
}

fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn lease_renew_times(s: &Server) -> Vec<(String, String)> {
    let leases = json(s, &["get", "leases", "-n", "kube-node-lease"]);
    let mut out: Vec<(String, String)> = leases["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["metadata"]["name"].as_str().unwrap().to_string(),
                l["spec"]["renewTime"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn nodes_register_heartbeat_and_run_pods() {
    let s = Server::start();
    let hollow = HollowNodes::start(&s, 3, &["--zones", "3"]);

    // Three Ready nodes with the kubelet version, zones and capacity.
    let table = s.ok(&["get", "nodes", "--no-headers"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{table}");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], format!("hollow-node-{i}"), "{table}");
        assert_eq!(row[1], "Ready", "{table}");
        assert_eq!(row.last().copied(), Some("v1.33.0"), "{table}");
    }
    let nodes = json(&s, &["get", "nodes"]);
    let nodes = nodes["items"].as_array().unwrap().clone();
    let mut cidrs = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let labels = &n["metadata"]["labels"];
        assert_eq!(labels["topology.kubernetes.io/zone"], format!("zone-{i}"));
        assert_eq!(labels["kubernetes.io/hostname"], format!("hollow-node-{i}"));
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["node.kubernetes.io/instance-type"], "hollow");
        assert_eq!(n["metadata"]["annotations"]["skiff.dev/hollow"], "true");
        for field in ["capacity", "allocatable"] {
            let r = &n["status"][field];
            assert_eq!(
                (&r["cpu"], &r["memory"], &r["pods"], &r["ephemeral-storage"]),
                (&"4".into(), &"16Gi".into(), &"110".into(), &"100Gi".into()),
                "{field} of node {i}"
            );
        }
        let ready = condition(n, "Ready").expect("Ready condition");
        assert_eq!(ready["reason"], "KubeletReady");
        for (t, reason) in [
            ("MemoryPressure", "KubeletHasSufficientMemory"),
            ("DiskPressure", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "KubeletHasSufficientPID"),
        ] {
            let c = condition(n, t).expect(t);
            assert_eq!(
                (c["status"].as_str(), c["reason"].as_str()),
                (Some("False"), Some(reason))
            );
        }
        assert_eq!(
            n["status"]["nodeInfo"]["containerRuntimeVersion"],
            "hollow://0.1"
        );
        assert_eq!(n["status"]["addresses"][0]["type"], "InternalIP");
        cidrs.push(n["spec"]["podCIDR"].as_str().unwrap().to_string());
    }
    // Assigned by the node IPAM controller from --cluster-cidr (10.42.0.0/16).
    let mut distinct = cidrs.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "distinct ranges: {cidrs:?}");
    for c in &cidrs {
        assert!(c.starts_with("10.42.") && c.ends_with(".0/24"), "{c}");
    }

    // One Lease per node, held by it and owned by its Node.
    let leases = json(&s, &["get", "leases", "-n", "kube-node-lease"]);
    let leases = leases["items"].as_array().unwrap();
    assert_eq!(leases.len(), 3);
    for l in leases {
        let name = l["metadata"]["name"].as_str().unwrap();
        let node = nodes
            .iter()
            .find(|n| n["metadata"]["name"] == name)
            .expect("lease of a node");
        assert_eq!(l["spec"]["holderIdentity"], name);
        assert_eq!(l["spec"]["leaseDurationSeconds"], 40);
        let owner = &l["metadata"]["ownerReferences"][0];
        assert_eq!(
            (owner["kind"].as_str(), owner["name"].as_str()),
            (Some("Node"), Some(name))
        );
        assert_eq!(owner["uid"], node["metadata"]["uid"]);
    }
    let first_renewals = lease_renew_times(&s);

    // A pod bound to hollow-node-1 runs, with an address in its range.
    let init = "  initContainers:\n  - name: setup\n    image: busybox\n";
    s.apply_stdin(&["create"], &pod_yaml("web", "hollow-node-1", init));
    s.apply_stdin(&["create"], &pod_yaml("web2", "hollow-node-1", ""));
    for name in ["web", "web2"] {
        s.ok(&[
            "wait",
            "--for=condition=Ready",
            &format!("pod/{name}"),
            "--timeout=30s",
        ]);
    }
    let web = json(&s, &["get", "pod", "web"]);
    let st = &web["status"];
    assert_eq!(st["phase"], "Running");
    let ip = st["podIP"].as_str().unwrap();
    assert!(in_cidr(ip, &cidrs[1]), "{ip} in {}", cidrs[1]);
    assert_eq!(st["podIPs"][0]["ip"], ip);
    assert_eq!(st["hostIP"], nodes[1]["status"]["addresses"][0]["address"]);
    assert!(st["startTime"].is_string());
    let c = &st["containerStatuses"][0];
    assert_eq!(
        (
            c["name"].as_str(),
            c["ready"].as_bool(),
            c["started"].as_bool()
        ),
        (Some("app"), Some(true), Some(true))
    );
    assert!(c["state"]["running"]["startedAt"].is_string());
    let uid = web["metadata"]["uid"].as_str().unwrap();
    assert_eq!(c["containerID"], format!("hollow://{uid}-app"));
    assert_eq!(
        st["initContainerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    for t in [
        "PodScheduled",
        "Initialized",
        "ContainersReady",
        "Ready",
        "PodReadyToStartContainers",
    ] {
        assert_eq!(
            condition(&web, t).map(|c| c["status"].clone()),
            Some("True".into()),
            "{t}"
        );
    }
    let ip2 = json(&s, &["get", "pod", "web2"])["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(in_cidr(&ip2, &cidrs[1]));
    assert_ne!(ip, ip2, "addresses are unique per node");
    let table = s.ok(&["get", "pods", "-o", "wide", "--no-headers"]);
    assert!(
        table
            .lines()
            .all(|l| l.contains("Running") && l.contains("hollow-node-1")),
        "{table}"
    );

    // A pod bound to a node that is not hollow is left alone.
    s.apply_stdin(&["create"], &pod_yaml("elsewhere", "real-node", ""));

    // Deletion finishes promptly: the hollow node completes it.
    let started = Instant::now();
    s.ok(&["delete", "pod", "web", "--timeout=20s"]);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "delete took {:?}",
        started.elapsed()
    );
    assert!(s.fails(&["get", "pod", "web"]).contains("NotFound"));

    let other = json(&s, &["get", "pod", "elsewhere"]);
    assert_eq!(other["status"]["phase"], "Pending");
    assert!(other["status"].get("podIP").is_none());
    assert!(other["status"].get("containerStatuses").is_none());

    // Leases are renewed (every 10 s).
    eventually(Duration::from_secs(25), || {
        let now = lease_renew_times(&s);
        let all_advanced = now.len() == 3
            && now
                .iter()
                .zip(&first_renewals)
                .all(|((n1, t1), (n0, t0))| n1 == n0 && t1 > t0);
        all_advanced.then_some(())
    });
    assert!(!hollow.log().contains("ERROR"), "{}", hollow.log());
}

#[test]
fn restart_adopts_nodes_and_leaves_running_pods_alone() {
    let s = Server::start();
    let args = [
        "--name-prefix",
        "scale-",
        "--node-label",
        "role=scale",
        "--node-taint",
        "hollow=true:NoSchedule",
        "--cpu",
        "8",
        "--node-status-update-frequency",
        "2",
    ];
    let mut hollow = HollowNodes::start(&s, 2, &args);

    let nodes = json(&s, &["get", "nodes"]);
    let nodes = nodes["items"].as_array().unwrap().clone();
    assert_eq!(nodes.len(), 2);
    let n0 = &nodes[0];
    assert_eq!(n0["metadata"]["name"], "scale-0");
    assert_eq!(n0["metadata"]["labels"]["role"], "scale");
    assert!(n0["metadata"]["labels"]
        .get("topology.kubernetes.io/zone")
        .is_none());
    assert_eq!(n0["spec"]["taints"][0]["key"], "hollow");
    assert_eq!(n0["spec"]["taints"][0]["effect"], "NoSchedule");
    assert_eq!(n0["status"]["capacity"]["cpu"], "8");
    let uid0 = n0["metadata"]["uid"].as_str().unwrap().to_string();

    // The Ready heartbeat advances (every 2 s here); its transition stays.
    let ready0 = condition(n0, "Ready").unwrap().clone();
    eventually(Duration::from_secs(15), || {
        let n = json(&s, &["get", "node", "scale-0"]);
        let r = condition(&n, "Ready")?.clone();
        (r["lastHeartbeatTime"].as_str() > ready0["lastHeartbeatTime"].as_str()).then_some(())
    });
    let n = json(&s, &["get", "node", "scale-0"]);
    assert_eq!(
        condition(&n, "Ready").unwrap()["lastTransitionTime"],
        ready0["lastTransitionTime"]
    );

    s.apply_stdin(&["create"], &pod_yaml("first", "scale-0", ""));
    s.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/first",
        "--timeout=30s",
    ]);
    let first = json(&s, &["get", "pod", "first"]);
    let first_rv = first["metadata"]["resourceVersion"].clone();
    let first_ip = first["status"]["podIP"].as_str().unwrap().to_string();

    // Down: a pod bound meanwhile waits; up again: the nodes are adopted
    // (same uid), the running pod is not written again, the new one runs
    // with a different address.
    hollow.stop();
    s.apply_stdin(&["create"], &pod_yaml("second", "scale-0", ""));
    hollow.restart();
    s.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/second",
        "--timeout=30s",
    ]);
    let second_ip = json(&s, &["get", "pod", "second"])["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(second_ip, first_ip);
    let nodes = json(&s, &["get", "nodes"]);
    assert_eq!(nodes["items"].as_array().unwrap().len(), 2);
    assert_eq!(nodes["items"][0]["metadata"]["uid"], uid0.as_str());
    std::thread::sleep(Duration::from_secs(2));
    let first = json(&s, &["get", "pod", "first"]);
    assert_eq!(
        first["metadata"]["resourceVersion"], first_rv,
        "a running pod is not rewritten"
    );
    let leases = json(&s, &["get", "leases", "-n", "kube-node-lease"]);
    assert_eq!(leases["items"].as_array().unwrap().len(), 2);

    // A pod held by a finalizer is reported stopped, then goes once the
    // finalizer is removed.
    let held = pod_yaml("held", "scale-1", "").replace(
        "metadata:\n  name: held\n",
        "metadata:\n  name: held\n  finalizers: [example.com/hold]\n",
    );
    s.apply_stdin(&["create"], &held);
    s.ok(&["wait", "--for=condition=Ready", "pod/held", "--timeout=30s"]);
    s.ok(&["delete", "pod", "held", "--wait=false"]);
    eventually(Duration::from_secs(15), || {
        let p = json(&s, &["get", "pod", "held"]);
        let stopped = p["status"]["phase"] == "Failed"
            && p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137;
        (stopped && p["metadata"]["deletionTimestamp"].is_string()).then_some(())
    });
    s.ok(&[
        "patch",
        "pod",
        "held",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    eventually(Duration::from_secs(10), || {
        let out = s.kubectl(&["get", "pod", "held"]);
        (!out.status.success()).then_some(())
    });
    hollow.stop();
}
