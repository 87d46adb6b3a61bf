//! The scheduler end to end: `skiff server --disable-agent` plus hollow
//! nodes, driven by the real kubectl. Each test checks a placement the
//! Kubernetes documentation describes, and the messages users read in
//! `kubectl describe pod` when a pod cannot be placed.

mod common;

use std::time::Duration;

use common::{eventually, HollowNodes, Server};

const WAIT: Duration = Duration::from_secs(30);

fn pod_yaml(name: &str, labels: &str, spec_extra: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{{labels}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
{spec_extra}"
    )
}

fn create_pod(s: &Server, name: &str, labels: &str, spec_extra: &str) {
    s.apply_stdin(&["create"], &pod_yaml(name, labels, spec_extra));
}

fn node_of(s: &Server, pod: &str) -> String {
    s.ok(&["get", "pod", pod, "-o", "jsonpath={.spec.nodeName}"])
}

/// Waits until the pod is bound and returns its node.
#[track_caller]
fn wait_scheduled(s: &Server, pod: &str) -> String {
    eventually(WAIT, || Some(node_of(s, pod)).filter(|n| !n.is_empty()))
}

/// Waits until the pod carries `PodScheduled=False` and returns the message.
#[track_caller]
fn wait_unschedulable(s: &Server, pod: &str) -> String {
    eventually(WAIT, || {
        let out = s.ok(&[
            "get",
            "pod",
            pod,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].reason}|{.status.conditions[?(@.type==\"PodScheduled\")].message}",
        ]);
        let (reason, message) = out.split_once('|')?;
        (reason == "Unschedulable").then(|| message.to_string())
    })
}

#[test]
fn node_selector_waits_for_a_label_then_schedules() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 3, &["--zones", "3"]);
    create_pod(&s, "ssd", "app: db", "  nodeSelector:\n    disktype: ssd\n");
    let msg = wait_unschedulable(&s, "ssd");
    assert_eq!(
        msg,
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
    assert_eq!(node_of(&s, "ssd"), "");
    let describe = s.ok(&["describe", "pod", "ssd"]);
    assert!(describe.contains("FailedScheduling"), "{describe}");
    assert!(describe.contains("default-scheduler"), "{describe}");
    assert!(
        describe.contains("didn't match Pod's node affinity/selector"),
        "{describe}"
    );
    assert!(s.ok(&["get", "pod", "ssd"]).contains("Pending"));

    s.ok(&["label", "node", "hollow-node-1", "disktype=ssd"]);
    assert_eq!(wait_scheduled(&s, "ssd"), "hollow-node-1");
    s.ok(&["wait", "--for=condition=Ready", "pod/ssd", "--timeout=30s"]);
    let describe = eventually(WAIT, || {
        let d = s.ok(&["describe", "pod", "ssd"]);
        d.contains("Scheduled").then_some(d)
    });
    assert!(
        describe.contains("Successfully assigned default/ssd to hollow-node-1"),
        "{describe}"
    );
    let cond = s.ok(&[
        "get",
        "pod",
        "ssd",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].status}",
    ]);
    assert_eq!(cond, "True");
}

#[test]
fn pods_for_another_scheduler_are_left_alone() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 1, &[]);
    create_pod(&s, "mine", "app: a", "");
    create_pod(&s, "theirs", "app: a", "  schedulerName: my-scheduler\n");
    assert_eq!(wait_scheduled(&s, "mine"), "hollow-node-0");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(node_of(&s, "theirs"), "");
    let conditions = s.ok(&[
        "get",
        "pod",
        "theirs",
        "-o",
        "jsonpath={.status.conditions}",
    ]);
    assert!(!conditions.contains("PodScheduled"), "{conditions}");
}

#[test]
fn node_affinity_required_and_preferred() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 3, &["--zones", "3"]);
    s.ok(&["label", "node", "hollow-node-0", "gen=3"]);
    s.ok(&["label", "node", "hollow-node-1", "gen=5"]);
    s.ok(&["label", "node", "hollow-node-2", "gen=7"]);
    // Required: zone-0 or zone-1; preferred (weight 80): zone-1.
    let affinity = "  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - {key: topology.kubernetes.io/zone, operator: In, values: [zone-0, zone-1]}
      preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 80
        preference:
          matchExpressions:
          - {key: topology.kubernetes.io/zone, operator: In, values: [zone-1]}
";
    for i in 0..3 {
        create_pod(&s, &format!("pref-{i}"), "app: a", affinity);
    }
    for i in 0..3 {
        assert_eq!(wait_scheduled(&s, &format!("pref-{i}")), "hollow-node-1");
    }
    // Gt / Lt on a numeric label, NotIn on the zone.
    let gt = "  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - {key: gen, operator: Gt, values: ['4']}
          - {key: gen, operator: Lt, values: ['7']}
";
    create_pod(&s, "gt", "app: a", gt);
    assert_eq!(wait_scheduled(&s, "gt"), "hollow-node-1");
    let not_in = "  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - {key: topology.kubernetes.io/zone, operator: NotIn, values: [zone-0, zone-1]}
";
    create_pod(&s, "notin", "app: a", not_in);
    assert_eq!(wait_scheduled(&s, "notin"), "hollow-node-2");
    let none = "  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - {key: gen, operator: DoesNotExist}
";
    create_pod(&s, "none", "app: a", none);
    let msg = wait_unschedulable(&s, "none");
    assert!(
        msg.starts_with(
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
        ),
        "{msg}"
    );
}

#[test]
fn pod_anti_affinity_spreads_three_and_leaves_the_fourth_pending() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 3, &["--zones", "3"]);
    let anti = "  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector:
          matchLabels: {app: web}
        topologyKey: kubernetes.io/hostname
";
    for i in 0..4 {
        create_pod(&s, &format!("web-{i}"), "app: web", anti);
    }
    let msg = eventually(WAIT, || {
        let placed: Vec<String> = (0..4).map(|i| node_of(&s, &format!("web-{i}"))).collect();
        let bound: Vec<&String> = placed.iter().filter(|n| !n.is_empty()).collect();
        if bound.len() < 3 {
            return None;
        }
        let pending = (0..4).find(|i| placed[*i].is_empty())?;
        let m = wait_unschedulable(&s, &format!("web-{pending}"));
        let mut distinct = bound.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 3, "one web pod per node: {placed:?}");
        Some(m)
    });
    assert!(
        msg.starts_with("0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."),
        "{msg}"
    );

    // Pod affinity by zone: a cache pod in zone-2 draws its client there.
    create_pod(
        &s,
        "cache",
        "app: cache",
        "  nodeSelector:\n    topology.kubernetes.io/zone: zone-2\n",
    );
    assert_eq!(wait_scheduled(&s, "cache"), "hollow-node-2");
    let affinity = "  affinity:
    podAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector:
          matchExpressions:
          - {key: app, operator: In, values: [cache]}
        topologyKey: topology.kubernetes.io/zone
";
    create_pod(&s, "client", "app: client", affinity);
    assert_eq!(wait_scheduled(&s, "client"), "hollow-node-2");
    // Affinity to something that does not exist anywhere stays Pending.
    let lonely = affinity.replace("[cache]", "[nothing]");
    create_pod(&s, "lonely", "app: client", &lonely);
    let msg = wait_unschedulable(&s, "lonely");
    assert!(
        msg.contains("3 node(s) didn't match pod affinity rules"),
        "{msg}"
    );

    // Deleting a web pod frees its node for the pending one.
    let pending = (0..4)
        .find(|i| node_of(&s, &format!("web-{i}")).is_empty())
        .unwrap();
    let victim = (0..4).find(|i| *i != pending).unwrap();
    let freed = node_of(&s, &format!("web-{victim}"));
    s.ok(&[
        "delete",
        "pod",
        &format!("web-{victim}"),
        "--wait=true",
        "--timeout=30s",
    ]);
    assert_eq!(wait_scheduled(&s, &format!("web-{pending}")), freed);
}

#[test]
fn taints_repel_and_tolerations_admit() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 3, &[]);
    s.ok(&["taint", "node", "hollow-node-0", "dedicated=gpu:NoSchedule"]);
    s.ok(&["taint", "node", "hollow-node-1", "dedicated=gpu:NoSchedule"]);
    for i in 0..3 {
        create_pod(&s, &format!("plain-{i}"), "app: a", "");
        assert_eq!(wait_scheduled(&s, &format!("plain-{i}")), "hollow-node-2");
    }
    s.ok(&["taint", "node", "hollow-node-2", "maintenance:NoExecute"]);
    create_pod(&s, "blocked", "app: a", "");
    let msg = wait_unschedulable(&s, "blocked");
    assert!(
        msg.starts_with(
            "0/3 nodes are available: 1 node(s) had untolerated taint {maintenance: }, \
             2 node(s) had untolerated taint {dedicated: gpu}."
        ),
        "{msg}"
    );
    let tolerate = "  tolerations:
  - {key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}
";
    create_pod(&s, "gpu", "app: a", tolerate);
    let n = wait_scheduled(&s, "gpu");
    assert!(n == "hollow-node-0" || n == "hollow-node-1", "{n}");
    // Removing the taint lets the blocked pod in.
    s.ok(&["taint", "node", "hollow-node-2", "maintenance:NoExecute-"]);
    assert_eq!(wait_scheduled(&s, "blocked"), "hollow-node-2");
}

#[test]
fn requests_fill_a_node_and_the_next_pod_waits() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 1, &["--cpu", "2", "--memory", "4Gi"]);
    let with_requests = |name: &str, cpu: &str| {
        let yaml = pod_yaml(name, "app: a", "").replace(
            "    image: busybox\n",
            &format!(
                "    image: busybox\n    resources:\n      requests: {{cpu: {cpu}, memory: 1Gi}}\n"
            ),
        );
        s.apply_stdin(&["create"], &yaml);
    };
    with_requests("big", "1500m");
    assert_eq!(wait_scheduled(&s, "big"), "hollow-node-0");
    with_requests("next", "1");
    let msg = wait_unschedulable(&s, "next");
    assert_eq!(
        msg,
        "0/1 nodes are available: 1 Insufficient cpu. \
         preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    );
    // Init containers count as their maximum, not their sum.
    let init = pod_yaml("init", "app: a", "").replace(
        "  containers:\n",
        "  initContainers:\n  - name: i\n    image: busybox\n    resources:\n      requests: {cpu: 400m}\n  containers:\n",
    );
    s.apply_stdin(&["create"], &init);
    assert_eq!(wait_scheduled(&s, "init"), "hollow-node-0");
    s.ok(&["delete", "pod", "big", "--wait=true", "--timeout=30s"]);
    assert_eq!(wait_scheduled(&s, "next"), "hollow-node-0");
}

#[test]
fn a_high_priority_pod_preempts() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 2, &["--cpu", "2"]);
    s.apply_stdin(
        &["create"],
        "apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: low}
value: 10
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000
",
    );
    let with = |name: &str, class: &str, cpu: &str| {
        let yaml = pod_yaml(name, "app: a", &format!("  priorityClassName: {class}\n")).replace(
            "    image: busybox\n",
            &format!("    image: busybox\n    resources:\n      requests: {{cpu: {cpu}}}\n"),
        );
        s.apply_stdin(&["create"], &yaml);
    };
    // One node gets a low pod of 1500m; the other, being least allocated,
    // the two of 900m (the first node has no room left for them).
    with("low-c", "low", "1500m");
    let big = wait_scheduled(&s, "low-c");
    with("low-a", "low", "900m");
    with("low-b", "low", "900m");
    for p in ["low-a", "low-b", "low-c"] {
        let n = wait_scheduled(&s, p);
        assert!(p == "low-c" || n != big, "{p} on {n}");
        s.ok(&[
            "wait",
            "--for=condition=Ready",
            &format!("pod/{p}"),
            "--timeout=30s",
        ]);
    }
    // 1500m fits nowhere. Preempting on the 1500m pod's node takes one
    // victim, on the other node two: the scheduler picks the first.
    with("vip", "high", "1500m");
    let node = wait_scheduled(&s, "vip");
    assert_eq!(node, big);
    let nominated = s.ok(&[
        "get",
        "pod",
        "vip",
        "-o",
        "jsonpath={.status.nominatedNodeName}",
    ]);
    assert!(nominated.is_empty() || nominated == big, "{nominated}");
    eventually(WAIT, || {
        (!s.kubectl(&["get", "pod", "low-c"]).status.success()).then_some(())
    });
    for p in ["low-a", "low-b"] {
        assert!(
            s.kubectl(&["get", "pod", p]).status.success(),
            "{p} survives"
        );
    }
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=Preempted",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(events.contains(&format!("on node {node}")), "{events}");
    // A pod that may not preempt waits instead.
    let never = "apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high-nonpreempting}
value: 1000
preemptionPolicy: Never
";
    s.apply_stdin(&["create"], never);
    with("polite", "high-nonpreempting", "1500m");
    let msg = wait_unschedulable(&s, "polite");
    assert!(
        msg.ends_with("preemption: not eligible due to preemptionPolicy=Never."),
        "{msg}"
    );
}

#[test]
fn cordon_stops_new_placements_and_drain_respects_a_budget() {
    let s = Server::start();
    let _nodes = HollowNodes::start(&s, 2, &[]);
    s.ok(&["cordon", "hollow-node-0"]);
    assert!(s
        .ok(&["get", "node", "hollow-node-0"])
        .contains("SchedulingDisabled"));
    for i in 0..3 {
        create_pod(&s, &format!("db-{i}"), "app: db", "");
        assert_eq!(wait_scheduled(&s, &format!("db-{i}")), "hollow-node-1");
    }
    s.ok(&["cordon", "hollow-node-1"]);
    create_pod(&s, "waiting", "app: x", "");
    let msg = wait_unschedulable(&s, "waiting");
    assert!(
        msg.starts_with("0/2 nodes are available: 2 node(s) were unschedulable."),
        "{msg}"
    );
    s.ok(&["uncordon", "hollow-node-0"]);
    assert_eq!(wait_scheduled(&s, "waiting"), "hollow-node-0");

    for i in 0..3 {
        s.ok(&[
            "wait",
            "--for=condition=Ready",
            &format!("pod/db-{i}"),
            "--timeout=30s",
        ]);
    }
    s.apply_stdin(
        &["create"],
        "apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: db}
spec:
  minAvailable: 2
  selector:
    matchLabels: {app: db}
",
    );
    eventually(WAIT, || {
        let allowed = s.ok(&[
            "get",
            "pdb",
            "db",
            "-o",
            "jsonpath={.status.disruptionsAllowed}",
        ]);
        (allowed == "1").then_some(())
    });
    // The pods have no controller, so drain needs --force; one eviction is
    // allowed, the next two are refused (429) until the timeout.
    let out = s.kubectl(&[
        "drain",
        "hollow-node-1",
        "--force",
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--grace-period=1",
        "--timeout=8s",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "drain should time out: {stderr}");
    assert!(stderr.contains("disruption budget"), "{stderr}");
    let left: Vec<String> = (0..3)
        .map(|i| format!("db-{i}"))
        .filter(|p| s.kubectl(&["get", "pod", p]).status.success())
        .collect();
    assert_eq!(left.len(), 2, "the budget kept two: {left:?}");
    assert!(s
        .ok(&["get", "node", "hollow-node-1"])
        .contains("SchedulingDisabled"));

    // Without a budget in the way, drain evicts everything and finishes.
    s.ok(&["delete", "pdb", "db"]);
    let out = s.ok(&[
        "drain",
        "hollow-node-1",
        "--force",
        "--ignore-daemonsets",
        "--grace-period=1",
        "--timeout=30s",
    ]);
    assert!(out.contains("drained"), "{out}");
    let on_node = s.ok(&[
        "get",
        "pods",
        "--field-selector",
        "spec.nodeName=hollow-node-1",
        "-o",
        "name",
    ]);
    assert_eq!(on_node.trim(), "");
}

#[test]
fn one_scheduler_acts_and_another_takes_over() {
    let s = Server::start_with(&["--disable-scheduler"]);
    let _nodes = HollowNodes::start(&s, 1, &[]);
    let mut a = common::Scheduler::start(&s);
    let holder = |s: &Server| {
        s.ok(&[
            "get",
            "lease",
            "-n",
            "kube-system",
            "kube-scheduler",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
    };
    let first = eventually(WAIT, || {
        s.kubectl(&["get", "lease", "-n", "kube-system", "kube-scheduler"])
            .status
            .success()
            .then(|| holder(&s))
    });
    let b = common::Scheduler::start(&s);
    create_pod(&s, "one", "app: a", "");
    assert_eq!(wait_scheduled(&s, "one"), "hollow-node-0");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        holder(&s),
        first,
        "the lease stays with the first scheduler"
    );
    assert!(a.log().contains("became leader"), "{}", a.log());
    assert!(!b.log().contains("became leader"), "{}", b.log());

    // The holder dies without releasing: the other takes over once the
    // lease (15 s) has not been renewed.
    a.kill9();
    let started = std::time::Instant::now();
    create_pod(&s, "two", "app: a", "");
    assert_eq!(
        eventually(Duration::from_secs(40), || Some(node_of(&s, "two"))
            .filter(|n| !n.is_empty())),
        "hollow-node-0"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took over in {:?}",
        started.elapsed()
    );
    assert_ne!(holder(&s), first);
    assert!(b.log().contains("became leader"), "{}", b.log());
    let transitions = s.ok(&[
        "get",
        "lease",
        "-n",
        "kube-system",
        "kube-scheduler",
        "-o",
        "jsonpath={.spec.leaseTransitions}",
    ]);
    assert_eq!(transitions, "1");
}
