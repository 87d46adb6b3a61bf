//! Pod priority and voluntary disruptions end to end, with the real kubectl
//! against the real binary: the built-in PriorityClasses, Priority admission
//! of pods, PodDisruptionBudgets kept current by the disruption controller,
//! and the eviction subresource honouring them the way `kubectl drain` uses
//! it (a `policy/v1` Eviction per pod, retried while the answer is 429).
//!
//! There is no kubelet here: pods are left unscheduled (deleting them is
//! immediate) and made Running and Ready by writing their status, as a
//! kubelet would.

mod common;

use std::time::Duration;

use common::{eventually, Server};
use serde_json::{json, Value};

/// The scheduler is not needed (and pods stay unbound so their deletion
/// does not wait for a kubelet).
fn server() -> Server {
    Server::start_with(&["--disable-scheduler"])
}

#[track_caller]
fn get_json(s: &Server, args: &[&str]) -> Value {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend(["-o", "json"]);
    serde_json::from_str(&s.ok(&a)).expect("JSON from kubectl get")
}

/// A bare pod labelled `app=<app>`.
fn pod_yaml(name: &str, app: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{app: {app}}}\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n---\n"
    )
}

/// What a kubelet would report for a started, ready pod.
#[track_caller]
fn make_ready(s: &Server, pod: &str) {
    s.ok(&[
        "patch",
        "pod",
        pod,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#,
    ]);
}

fn eviction_path(pod: &str) -> String {
    format!("/api/v1/namespaces/default/pods/{pod}/eviction")
}

/// The Eviction `kubectl drain` posts.
fn eviction_body(pod: &str) -> String {
    json!({"kind": "Eviction", "apiVersion": "policy/v1",
        "metadata": {"name": pod, "namespace": "default"}, "deleteOptions": {}})
    .to_string()
}

/// `kubectl create --raw <eviction> -f <file>`: the eviction as kubectl posts it.
fn evict(s: &Server, pod: &str) -> std::process::Output {
    let file = s.data_dir().join(format!("eviction-{pod}.json"));
    std::fs::write(&file, eviction_body(pod)).expect("write eviction");
    s.kubectl(&[
        "create",
        "--raw",
        &eviction_path(pod),
        "-f",
        file.to_str().expect("utf-8 path"),
    ])
}

fn exists(s: &Server, kind: &str, name: &str) -> bool {
    s.kubectl(&["get", kind, name]).status.success()
}

/// Waits until the budget's status says `allowed` disruptions (and was
/// computed for its current generation).
#[track_caller]
fn wait_allowed(s: &Server, pdb: &str, allowed: i64) -> Value {
    eventually(Duration::from_secs(30), || {
        let p = get_json(s, &["pdb", pdb]);
        let st = &p["status"];
        (st["observedGeneration"] == p["metadata"]["generation"]
            && st["disruptionsAllowed"] == allowed)
            .then_some(p)
    })
}

fn condition<'a>(pdb: &'a Value, type_: &str) -> &'a Value {
    pdb["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

#[test]
fn priority_classes_and_priority_admission() {
    let s = server();

    let out = s.ok(&["get", "priorityclass"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{out}");
    for (name, value) in [
        ("system-cluster-critical", "2000000000"),
        ("system-node-critical", "2000001000"),
    ] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing: {out}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[1], value, "{line}");
        assert_eq!(cols[2], "false", "{line}");
        assert_eq!(cols.last(), Some(&"PreemptLowerPriority"), "{line}");
    }
    let pc = get_json(&s, &["priorityclass", "system-node-critical"]);
    assert_eq!(
        pc["description"],
        "Used for system critical pods that must not be moved from their current node."
    );

    // A pod of a built-in class gets its priority.
    let yaml = pod_yaml("crit", "crit").replace(
        "spec:\n",
        "spec:\n  priorityClassName: system-cluster-critical\n",
    );
    s.apply_stdin(&["create"], &yaml);
    let out = s.ok(&["get", "pod", "crit", "-o", "yaml"]);
    assert!(out.contains("priority: 2000000000"), "{out}");
    assert!(
        out.contains("preemptionPolicy: PreemptLowerPriority"),
        "{out}"
    );
    // No class: priority 0.
    s.apply_stdin(&["create"], &pod_yaml("plain", "plain"));
    let plain = get_json(&s, &["pod", "plain"]);
    assert_eq!(plain["spec"]["priority"], 0);

    // An unknown class is refused by admission and nothing is created.
    let yaml = pod_yaml("lost", "lost").replace("spec:\n", "spec:\n  priorityClassName: foo\n");
    let out = s.kubectl_stdin(&["create", "-f", "-"], &yaml);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Error from server (Forbidden)")
            && err
                .contains(r#"pods "lost" is forbidden: no PriorityClass with name foo was found"#),
        "{err}"
    );
    assert!(!exists(&s, "pod", "lost"));
    // So is a priority that disagrees with the class.
    let yaml = pod_yaml("own", "own").replace(
        "spec:\n",
        "spec:\n  priorityClassName: system-node-critical\n  priority: 5\n",
    );
    let err = String::from_utf8_lossy(&s.kubectl_stdin(&["create", "-f", "-"], &yaml).stderr)
        .into_owned();
    assert!(err.contains("the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 2000001000 from the given PriorityClass name"), "{err}");

    // User classes may not outrank the system ones (422), nor take their prefix.
    let over = "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: too-high}\nvalue: 1000000001\n";
    let out = s.kubectl_stdin(&["create", "-f", "-"], over);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("is invalid")
            && err.contains(
                "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"
            ),
        "{err}"
    );
    let (code, _) = s.curl(
        "POST",
        "/apis/scheduling.k8s.io/v1/priorityclasses",
        "application/json",
        br#"{"metadata":{"name":"too-high"},"value":1000000001}"#,
    );
    assert_eq!(code, 422);
    let err = s.fails(&["create", "priorityclass", "system-mine", "--value=5"]);
    assert!(
        err.contains("priority class names with 'system-' prefix are reserved for system use only"),
        "{err}"
    );

    // One global default; pods without a class get it.
    s.ok(&[
        "create",
        "priorityclass",
        "normal",
        "--value=1000",
        "--global-default=true",
    ]);
    let err = s.fails(&[
        "create",
        "priorityclass",
        "other",
        "--value=10",
        "--global-default=true",
    ]);
    assert!(
        err.contains(
            "PriorityClass normal is already marked as default. Only one default can exist"
        ),
        "{err}"
    );
    s.apply_stdin(&["create"], &pod_yaml("defaulted", "d"));
    let p = get_json(&s, &["pod", "defaulted"]);
    assert_eq!(
        (&p["spec"]["priorityClassName"], &p["spec"]["priority"]),
        (&json!("normal"), &json!(1000))
    );

    // value and preemptionPolicy are immutable.
    let err = s.fails(&[
        "patch",
        "priorityclass",
        "normal",
        "--type=merge",
        "-p",
        r#"{"value":7}"#,
    ]);
    assert!(
        err.contains("value: Forbidden: may not be changed in an update."),
        "{err}"
    );

    // The built-ins cannot be deleted.
    let err = s.fails(&["delete", "priorityclass", "system-node-critical"]);
    assert!(err.contains(r#"priorityclasses.scheduling.k8s.io "system-node-critical" is forbidden: this is a system priority class and cannot be deleted"#), "{err}");
    assert!(exists(&s, "priorityclass", "system-node-critical"));
}

#[test]
fn evictions_honour_disruption_budgets() {
    let s = server();
    let mut pods = String::new();
    for p in ["p1", "p2", "p3"] {
        pods.push_str(&pod_yaml(p, "web"));
    }
    s.apply_stdin(&["create"], &pods);
    for p in ["p1", "p2", "p3"] {
        make_ready(&s, p);
    }
    s.apply_stdin(
        &["create"],
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec:\n  minAvailable: 2\n  selector: {matchLabels: {app: web}}\n",
    );
    let pdb = wait_allowed(&s, "web", 1);
    let st = &pdb["status"];
    assert_eq!(
        (
            &st["currentHealthy"],
            &st["desiredHealthy"],
            &st["expectedPods"]
        ),
        (&json!(3), &json!(2), &json!(3))
    );
    let cond = condition(&pdb, "DisruptionAllowed");
    assert_eq!(
        (&cond["status"], &cond["reason"]),
        (&json!("True"), &json!("SufficientPods")),
        "{pdb}"
    );

    let table = s.ok(&["get", "pdb", "web"]);
    let mut rows = table.lines();
    let header: Vec<&str> = rows.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(
        &header[..5],
        ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE"],
        "{table}"
    );
    let row: Vec<&str> = rows.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(&row[..4], ["web", "2", "N/A", "1"], "{table}");

    // A server-side dry run changes nothing.
    let (code, body) = s.curl(
        "POST",
        &format!("{}?dryRun=All", eviction_path("p1")),
        "application/json",
        eviction_body("p1").as_bytes(),
    );
    assert_eq!(code, 201, "{body}");
    assert!(exists(&s, "pod", "p1"));
    assert_eq!(
        get_json(&s, &["pdb", "web"])["status"]["disruptionsAllowed"],
        1
    );

    // The first eviction takes the one allowed disruption.
    let out = evict(&s, "p1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!exists(&s, "pod", "p1"));

    // The next is refused with 429 and changes nothing.
    let before = get_json(&s, &["pdb", "web"]);
    let out = evict(&s, "p2");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Error from server (TooManyRequests)")
            && err.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{err}"
    );
    let (code, body) = s.curl(
        "POST",
        &eviction_path("p2"),
        "application/json",
        eviction_body("p2").as_bytes(),
    );
    assert_eq!(code, 429, "{body}");
    let status: Value = serde_json::from_str(&body).expect("Status");
    assert_eq!(status["reason"], "TooManyRequests");
    assert_eq!(status["details"]["causes"][0]["reason"], "DisruptionBudget");
    let cause = status["details"]["causes"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        cause.starts_with("The disruption budget web needs 2 healthy pods and has"),
        "{cause}"
    );
    assert!(exists(&s, "pod", "p2"));
    let p2 = get_json(&s, &["pod", "p2"]);
    assert!(
        !p2["status"]["conditions"]
            .to_string()
            .contains("DisruptionTarget"),
        "{p2}"
    );
    let after = get_json(&s, &["pdb", "web"]);
    assert_eq!(after["status"]["disruptionsAllowed"], 0);
    assert_eq!(
        after["status"]["currentHealthy"],
        before["status"]["currentHealthy"]
    );

    // The controller settles on the remaining pods.
    let pdb = eventually(Duration::from_secs(30), || {
        let p = get_json(&s, &["pdb", "web"]);
        (p["status"]["currentHealthy"] == 2 && p["status"]["disruptedPods"].is_null()).then_some(p)
    });
    assert_eq!(pdb["status"]["expectedPods"], 2);
    let cond = condition(&pdb, "DisruptionAllowed");
    assert_eq!(
        (&cond["status"], &cond["reason"]),
        (&json!("False"), &json!("InsufficientPods")),
        "{pdb}"
    );
    let row = s.ok(&["get", "pdb", "web", "--no-headers"]);
    assert_eq!(row.split_whitespace().nth(3), Some("0"), "{row}");

    // A replacement pod becomes ready: one disruption is allowed again.
    s.apply_stdin(&["create"], &pod_yaml("p4", "web"));
    make_ready(&s, "p4");
    wait_allowed(&s, "web", 1);
    let out = evict(&s, "p2");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An unready pod is not protected while the budget is met...
    s.apply_stdin(&["create"], &pod_yaml("p5", "web"));
    make_ready(&s, "p5");
    wait_allowed(&s, "web", 1);
    s.ok(&[
        "patch",
        "pod",
        "p5",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"False"}]}}"#,
    ]);
    wait_allowed(&s, "web", 0);
    let out = evict(&s, "p5");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!exists(&s, "pod", "p5"));

    // ...and a pod that is not running yet never is.
    s.apply_stdin(&["create"], &pod_yaml("pending", "web"));
    let out = evict(&s, "pending");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Two budgets over one pod: the eviction subresource refuses (500).
    s.apply_stdin(
        &["create"],
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web-too}\nspec:\n  maxUnavailable: 1\n  selector: {matchLabels: {app: web}}\n",
    );
    let (code, body) = s.curl(
        "POST",
        &eviction_path("p3"),
        "application/json",
        eviction_body("p3").as_bytes(),
    );
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."), "{body}");
    assert!(exists(&s, "pod", "p3"));

    // Budgets are validated.
    let err = String::from_utf8_lossy(
        &s.kubectl_stdin(
            &["create", "-f", "-"],
            "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: both}\nspec:\n  minAvailable: 1\n  maxUnavailable: 1\n",
        )
        .stderr,
    )
    .into_owned();
    assert!(
        err.contains("minAvailable and maxUnavailable cannot be both set"),
        "{err}"
    );
}

#[test]
fn max_unavailable_counts_the_controllers_scale() {
    let s = server();
    // The ReplicaSet controller makes the pods; with no scheduler or node
    // they stay Pending until marked ready here.
    s.apply_stdin(
        &["create"],
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web}\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: c, image: busybox:1.36}]\n",
    );
    let web: Vec<String> = eventually(Duration::from_secs(30), || {
        let list = get_json(&s, &["pods", "-l", "app=web"]);
        let names: Vec<String> = list["items"]
            .as_array()?
            .iter()
            .filter_map(|p| p["metadata"]["name"].as_str().map(String::from))
            .collect();
        (names.len() == 3).then_some(names)
    });
    // Bare pods under their own maxUnavailable budget.
    let mut pods = String::new();
    for p in ["b1", "b2"] {
        pods.push_str(&pod_yaml(p, "bare"));
    }
    s.apply_stdin(&["create"], &pods);
    for p in web.iter().map(String::as_str).chain(["b1", "b2"]) {
        make_ready(&s, p);
    }
    s.apply_stdin(
        &["create"],
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec:\n  maxUnavailable: 1\n  selector: {matchLabels: {app: web}}\n---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: bare}\nspec:\n  maxUnavailable: 1\n  selector: {matchLabels: {app: bare}}\n",
    );
    let pdb = wait_allowed(&s, "web", 1);
    let st = &pdb["status"];
    assert_eq!(
        (
            &st["currentHealthy"],
            &st["desiredHealthy"],
            &st["expectedPods"]
        ),
        (&json!(3), &json!(2), &json!(3))
    );
    let row = s.ok(&["get", "pdb", "web", "--no-headers"]);
    assert_eq!(
        row.split_whitespace().take(4).collect::<Vec<_>>(),
        ["web", "N/A", "1", "1"],
        "{row}"
    );

    // The evicted pod's replacement is not ready, so the budget is spent.
    let out = evict(&s, &web[0]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = evict(&s, &web[1]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("Cannot evict pod as it would violate the pod's disruption budget."));
    assert!(exists(&s, "pod", &web[1]));

    // Scaling the controller up raises the count the budget expects.
    s.ok(&["scale", "rs", "web", "--replicas=4"]);
    let pdb = eventually(Duration::from_secs(30), || {
        let p = get_json(&s, &["pdb", "web"]);
        (p["status"]["expectedPods"] == 4).then_some(p)
    });
    assert_eq!(pdb["status"]["desiredHealthy"], 3);
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0);

    // Pods without a controller cannot be counted against maxUnavailable:
    // nothing is expected and nothing allowed (upstream's behaviour, with
    // an UnmanagedPods warning on the budget).
    let bare = eventually(Duration::from_secs(30), || {
        let p = get_json(&s, &["pdb", "bare"]);
        (p["status"]["observedGeneration"] == 1).then_some(p)
    });
    let st = &bare["status"];
    assert_eq!(
        (
            &st["expectedPods"],
            &st["currentHealthy"],
            &st["disruptionsAllowed"]
        ),
        (&json!(0), &json!(2), &json!(0)),
        "{bare}"
    );
    eventually(Duration::from_secs(30), || {
        s.ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=bare",
        ])
        .contains("UnmanagedPods")
        .then_some(())
    });
}
