//! End-to-end: the write paths Kubernetes users rely on (client-side apply,
//! diff, edit, the three patch types and their directives, the `set`,
//! `label` and `annotate` verbs, server dry run, bad input), driven by the
//! real kubectl against the real `skiff server`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::Server;
use serde_json::{json, Value};

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

/// A Deployment with two containers, as a user would write it.
const WEB: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
    tier: front
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports: [{containerPort: 80}]
      - name: sidecar
        image: busybox:1.36
        command: ["sleep", "infinity"]
"#;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/e2e/testdata")
        .join(name)
}

/// `kubectl get <args> -o json`, parsed.
#[track_caller]
fn get(s: &Server, args: &[&str]) -> Value {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend(["-o", "json"]);
    serde_json::from_str(&s.ok(&a)).expect("JSON from kubectl get")
}

/// The resourceVersion of `obj` (`kind/name`).
#[track_caller]
fn rv(s: &Server, obj: &str) -> String {
    s.ok(&["get", obj, "-o", "jsonpath={.metadata.resourceVersion}"])
}

/// `obj` as its writers other than controllers left it: without `status`,
/// the resourceVersion and the managedFields of status writes, which
/// controllers make at any moment (a CronJob's schedule can fire mid-test).
#[track_caller]
fn without_status(s: &Server, obj: &str) -> Value {
    let mut o = get(s, &[obj]);
    let o_map = o.as_object_mut().expect("object");
    o_map.remove("status");
    let meta = o_map["metadata"].as_object_mut().expect("metadata");
    meta.remove("resourceVersion");
    if let Some(Value::Array(fields)) = meta.get_mut("managedFields") {
        fields.retain(|f| f["subresource"] != "status");
    }
    o
}

fn containers(d: &Value) -> Vec<(String, String)> {
    d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["image"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Writes `content` to `name` in the server's temp dir and returns the path.
fn write(s: &Server, name: &str, content: &str) -> String {
    let p = s.data_dir().join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, content).expect("write manifest");
    p.display().to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Client-side apply merges three ways: the file, the last applied
/// configuration and the live object.
#[test]
fn client_side_apply_changes_only_what_the_file_changed() {
    let s = Server::start();
    let file = write(&s, "web.yaml", WEB);
    let out = s.ok(&["apply", "-f", &file]);
    assert_eq!(out.trim(), "deployment.apps/web created");
    // Changes made by other commands, to fields the file never mentions.
    s.ok(&["label", "deploy", "web", "owner=alice"]);
    s.ok(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"minReadySeconds":5}}"#,
    ]);
    s.ok(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"extra","image":"redis:7"}]}}}}"#,
    ]);

    // The file: a new image for one container, more replicas, one label gone.
    let changed = WEB
        .replace("image: nginx:1.27", "image: nginx:1.28")
        .replace("replicas: 1", "replicas: 3")
        .replace("    tier: front\n", "");
    assert_ne!(changed, WEB);
    write(&s, "web.yaml", &changed);
    let out = s.ok(&["apply", "-f", &file]);
    assert_eq!(out.trim(), "deployment.apps/web configured");

    let d = get(&s, &["deploy", "web"]);
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(
        containers(&d),
        pairs(&[
            ("web", "nginx:1.28"),
            ("sidecar", "busybox:1.36"),
            ("extra", "redis:7")
        ]),
        "only the web image changed; the container added by patch survives"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][1]["command"],
        json!(["sleep", "infinity"])
    );
    assert_eq!(
        d["metadata"]["labels"],
        json!({"app": "web", "owner": "alice"}),
        "the label removed from the file is gone, the one set by `kubectl label` stays"
    );
    assert_eq!(d["spec"]["minReadySeconds"], 5, "set by kubectl patch");
    let last: Value = parse(
        d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .expect("last-applied annotation"),
    );
    assert_eq!(last["spec"]["replicas"], 3);
    assert_eq!(
        last["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.28"
    );
    assert_eq!(last["metadata"]["labels"], json!({"app": "web"}));

    // Switching the strategy to Recreate: kubectl sends `$retainKeys`, so the
    // rollingUpdate block the file no longer has goes too.
    let recreate = changed.replace(
        "    type: RollingUpdate\n    rollingUpdate:\n      maxSurge: 1\n      maxUnavailable: 0\n",
        "    type: Recreate\n",
    );
    assert_ne!(recreate, changed);
    write(&s, "web.yaml", &recreate);
    s.ok(&["apply", "-f", &file]);
    let d = get(&s, &["deploy", "web"]);
    assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));

    // The container the file drops is removed; the one it never had stays.
    let one = recreate.replace(
        "      - name: sidecar\n        image: busybox:1.36\n        command: [\"sleep\", \"infinity\"]\n",
        "",
    );
    assert_ne!(one, recreate);
    write(&s, "web.yaml", &one);
    s.ok(&["apply", "-f", &file]);
    let d = get(&s, &["deploy", "web"]);
    assert_eq!(
        containers(&d),
        pairs(&[("web", "nginx:1.28"), ("extra", "redis:7")])
    );

    // Applying the same file again writes nothing.
    let before = rv(&s, "deploy/web");
    s.ok(&["apply", "-f", &file]);
    assert_eq!(rv(&s, "deploy/web"), before);
}

/// Lists inside a container, changed by client-side apply: merge-keyed
/// lists follow the file's order (kubectl sends `$setElementOrder`) and lose
/// what the file dropped; atomic lists are replaced.
#[test]
fn client_side_apply_merges_lists_by_key() {
    let s = Server::start();
    let before = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: e}
spec:
  selector: {matchLabels: {app: e}}
  template:
    metadata: {labels: {app: e}}
    spec:
      tolerations: [{key: a, operator: Exists}]
      volumes: [{name: v1, emptyDir: {}}, {name: v2, emptyDir: {}}]
      containers:
      - name: c
        image: i:1
        args: [a, b]
        env: [{name: A, value: "1"}, {name: B, value: "2"}, {name: C, value: "3"}]
        ports: [{containerPort: 80, name: http}, {containerPort: 443, name: https}]
        resources: {limits: {cpu: 100m}, requests: {cpu: 50m}}
        volumeMounts: [{name: v1, mountPath: /a}, {name: v2, mountPath: /b}]
"#;
    let after = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: e}
spec:
  selector: {matchLabels: {app: e}}
  template:
    metadata: {labels: {app: e}}
    spec:
      tolerations: [{key: b, operator: Exists}]
      volumes: [{name: v2, emptyDir: {}}, {name: v3, emptyDir: {}}]
      containers:
      - name: c
        image: i:1
        args: [b]
        env: [{name: C, value: "3"}, {name: A, value: "9"}]
        ports: [{containerPort: 443, name: https}]
        resources: {requests: {cpu: 50m}}
        volumeMounts: [{name: v2, mountPath: /b}, {name: v3, mountPath: /c}]
"#;
    let file = write(&s, "e.yaml", before);
    s.ok(&["apply", "-f", &file]);
    write(&s, "e.yaml", after);
    assert_eq!(
        s.ok(&["apply", "-f", &file]).trim(),
        "deployment.apps/e configured"
    );
    let spec = &get(&s, &["deploy", "e"])["spec"]["template"]["spec"];
    assert_eq!(
        spec["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );
    assert_eq!(
        spec["volumes"],
        json!([{"name": "v2", "emptyDir": {}}, {"name": "v3", "emptyDir": {}}])
    );
    let c = &spec["containers"][0];
    assert_eq!(c["args"], json!(["b"]));
    assert_eq!(
        c["env"],
        json!([{"name": "C", "value": "3"}, {"name": "A", "value": "9"}])
    );
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 443, "name": "https", "protocol": "TCP"}])
    );
    assert_eq!(c["resources"], json!({"requests": {"cpu": "50m"}}));
    assert_eq!(
        c["volumeMounts"],
        json!([{"name": "v2", "mountPath": "/b"}, {"name": "v3", "mountPath": "/c"}])
    );
    assert_eq!(
        s.ok(&["apply", "-f", &file]).trim(),
        "deployment.apps/e unchanged"
    );
}

/// The objects of testdata/course.yaml, as kubectl names them, in file order.
const COURSE: [&str; 11] = [
    "configmap/demo-config",
    "secret/demo-credentials",
    "secret/demo-token",
    "deployment.apps/demo-web",
    "service/demo-web",
    "service/demo-web-nodeport",
    "ingress.networking.k8s.io/demo-web",
    "cronjob.batch/demo-report",
    "statefulset.apps/demo-db",
    "persistentvolumeclaim/demo-uploads",
    "horizontalpodautoscaler.autoscaling/demo-web",
];

/// What kubectl prints for `obj` when the same file is applied again.
/// Upstream reports two of them as configured every time, though the server
/// writes nothing: the Secret written with `stringData` (the server moves it
/// into `data`, so the three-way diff always sends it again;
/// kubernetes/kubernetes#87736) and the StatefulSet (volumeClaimTemplates is
/// an atomic list and the server defaults fields inside it, `volumeMode` and
/// `status.phase: Pending`, so the list is always sent again).
fn reapplied(obj: &str) -> String {
    match obj {
        "secret/demo-credentials" | "statefulset.apps/demo-db" => format!("{obj} configured"),
        _ => format!("{obj} unchanged"),
    }
}

/// A course-style multi-document manifest without namespaces, applied
/// twice.
#[test]
fn course_manifests_apply_twice() {
    let s = Server::start();
    let course = testdata("course.yaml");
    let course = course.to_str().expect("utf-8 path");
    let first = s.kubectl(&["apply", "-f", course]);
    assert!(
        first.status.success(),
        "first apply failed:\n{}\n{}",
        stdout(&first),
        stderr(&first)
    );
    let lines: Vec<String> = stdout(&first).lines().map(str::to_string).collect();
    let want: Vec<String> = COURSE.iter().map(|o| format!("{o} created")).collect();
    assert_eq!(lines, want);

    let before: Vec<Value> = COURSE.iter().map(|o| without_status(&s, o)).collect();
    let second = s.ok(&["apply", "-f", course]);
    let lines: Vec<String> = second.lines().map(str::to_string).collect();
    let want: Vec<String> = COURSE.iter().map(|o| reapplied(o)).collect();
    assert_eq!(lines, want);
    let after: Vec<Value> = COURSE.iter().map(|o| without_status(&s, o)).collect();
    assert_eq!(
        after, before,
        "a second apply of the same file writes nothing"
    );

    // What the objects look like.
    let secret = get(&s, &["secret", "demo-credentials"]);
    assert_eq!(
        secret["data"],
        json!({"username": "YWRtaW4=", "password": "czNjcjN0"}),
        "stringData is moved into data: {secret}"
    );
    assert!(secret.get("stringData").is_none(), "{secret}");
    let token = get(&s, &["secret", "demo-token"]);
    assert_eq!(token["data"]["token"], "c2VjcmV0LXRva2Vu");
    let svc = get(&s, &["svc", "demo-web-nodeport"]);
    assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30080);
    assert_eq!(svc["spec"]["type"], "NodePort");
    let svc = get(&s, &["svc", "demo-web"]);
    assert!(svc["spec"]["clusterIP"].is_string(), "{svc}");
    let ing = get(&s, &["ingress", "demo-web"]);
    assert_eq!(ing["spec"]["tls"][0]["secretName"], "demo-tls");
    assert_eq!(
        ing["spec"]["rules"][0]["http"]["paths"][1]["backend"]["service"]["port"]["name"],
        "http"
    );
    let sts = get(&s, &["sts", "demo-db"]);
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
        "data"
    );
    let hpa = get(&s, &["hpa", "demo-web"]);
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        70
    );
    let cj = get(&s, &["cronjob", "demo-report"]);
    assert_eq!(cj["spec"]["schedule"], "*/5 * * * *");
}

/// The same objects as one file each in a directory; then `--prune`.
#[test]
fn apply_a_directory_and_prune() {
    let s = Server::start();
    let text = std::fs::read_to_string(testdata("course.yaml")).expect("course.yaml");
    let docs: Vec<&str> = text.split("\n---\n").collect();
    assert_eq!(docs.len(), COURSE.len());
    for (i, doc) in docs.iter().enumerate() {
        write(&s, &format!("course/{i:02}.yaml"), doc);
    }
    let dir = s.data_dir().join("course").display().to_string();
    let out = s.kubectl(&["apply", "-f", &dir]);
    assert!(
        out.status.success(),
        "first apply failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let want: Vec<String> = COURSE.iter().map(|o| format!("{o} created")).collect();
    assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), want);
    let out = s.ok(&["apply", "-f", &dir]);
    let want: Vec<String> = COURSE.iter().map(|o| reapplied(o)).collect();
    assert_eq!(out.lines().collect::<Vec<_>>(), want);

    // A labelled object created by hand (no last-applied annotation) is
    // never pruned, nor is one in another namespace; an applied one that
    // left the directory is.
    s.ok(&["create", "configmap", "by-hand", "--from-literal=a=b"]);
    s.ok(&["label", "configmap", "by-hand", "app=demo"]);
    s.ok(&["create", "namespace", "other"]);
    let other = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo-config\n  namespace: other\n  labels: {app: demo}\n";
    s.apply_stdin(&["apply"], other);
    std::fs::remove_file(s.data_dir().join("course/00.yaml")).unwrap();
    let out = s.kubectl(&["apply", "--prune", "-l", "app=demo", "-f", &dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let pruned: Vec<&str> = printed.lines().filter(|l| l.ends_with(" pruned")).collect();
    assert_eq!(pruned, ["configmap/demo-config pruned"], "{printed}");
    assert!(s.fails(&["get", "cm", "demo-config"]).contains("NotFound"));
    s.ok(&["get", "cm", "by-hand"]);
    s.ok(&["get", "cm", "demo-config", "-n", "other"]);
    s.ok(&["get", "deploy", "demo-web"]);

    // The same with an explicit allowlist (kubectl's recommended form).
    let stray = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stray\n  labels: {app: demo}\ndata: {a: b}\n";
    write(&s, "course/99.yaml", stray);
    let out = s.ok(&["apply", "-f", &dir]);
    assert!(out.contains("configmap/stray created"), "{out}");
    std::fs::remove_file(s.data_dir().join("course/99.yaml")).unwrap();
    let out = s.ok(&[
        "apply",
        "--prune",
        "-l",
        "app=demo",
        "--prune-allowlist=core/v1/ConfigMap",
        "-f",
        &dir,
    ]);
    let pruned: Vec<&str> = out.lines().filter(|l| l.ends_with(" pruned")).collect();
    assert_eq!(pruned, ["configmap/stray pruned"], "{out}");
    assert!(s.fails(&["get", "cm", "stray"]).contains("NotFound"));
}

/// `kubectl diff` exit codes and output.
#[test]
fn diff_exit_codes() {
    let s = Server::start();
    let file = write(&s, "web.yaml", WEB);
    s.ok(&["apply", "-f", &file]);
    let out = s.kubectl(&["diff", "-f", &file]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "nothing would change: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");

    write(&s, "web.yaml", &WEB.replace("busybox:1.36", "busybox:1.37"));
    let before = rv(&s, "deploy/web");
    let out = s.kubectl(&["diff", "-f", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let diff = stdout(&out);
    assert!(diff.contains("--- ") && diff.contains("+++ ") && diff.contains("@@"));
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('-') || l.starts_with('+'))
                && !l.starts_with("---")
                && !l.starts_with("+++")
        })
        .collect();
    assert!(changed.contains(&"-        image: busybox:1.36"), "{diff}");
    assert!(changed.contains(&"+        image: busybox:1.37"), "{diff}");
    // Only the image and the bookkeeping that goes with an update differ.
    assert!(
        changed.iter().all(|l| l.contains("image: busybox")
            || l.contains("generation:")
            || l.contains("last-applied-configuration")
            || l.contains("{\"apiVersion\"")),
        "{diff}"
    );
    assert_eq!(rv(&s, "deploy/web"), before, "diff writes nothing");

    // A new object shows as all additions.
    let cm = write(
        &s,
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fresh}\ndata: {k: v}\n",
    );
    let out = s.kubectl(&["diff", "-f", &cm]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("+  k: v"), "{}", stdout(&out));
    assert!(s.fails(&["get", "cm", "fresh"]).contains("NotFound"));
}

/// `kubectl edit` with a non-interactive editor.
#[test]
fn edit_with_a_script_as_editor() {
    let s = Server::start();
    s.ok(&[
        "create",
        "deployment",
        "x",
        "--image=nginx:1.27",
        "--replicas=1",
    ]);
    let seen = s.data_dir().join("editor-saw.txt");
    let editor = |name: &str, sed: &str| -> String {
        let script = format!(
            "#!/bin/sh\ncat \"$1\" >> '{}'\nsed -i '{sed}' \"$1\"\n",
            seen.display()
        );
        let path = write(&s, name, &script);
        std::process::Command::new("chmod")
            .args(["+x", &path])
            .status()
            .expect("chmod");
        path
    };
    let edit = |editor: &str| -> Output {
        s.kubectl_cmd()
            .env("KUBE_EDITOR", editor)
            .env("TMPDIR", s.data_dir())
            .args(["edit", "deploy/x"])
            .output()
            .expect("kubectl edit")
    };

    let out = edit(&editor("grow.sh", "s/^  replicas: 1$/  replicas: 3/"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "deployment.apps/x edited");
    assert_eq!(
        s.ok(&["get", "deploy", "x", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );

    // An invalid edit: kubectl reopens the editor with the server's error,
    // the script changes nothing more, and kubectl gives up.
    let before = rv(&s, "deploy/x");
    std::fs::write(&seen, "").unwrap();
    let out = edit(&editor("shrink.sh", "s/^  replicas: 3$/  replicas: -2/"));
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("deployments.apps \"x\" is invalid"), "{err}");
    let saw = std::fs::read_to_string(&seen).unwrap();
    assert!(
        saw.contains("# * spec.replicas: Invalid value: -2: must be greater than or equal to 0"),
        "the second round shows the server's error:\n{saw}"
    );
    assert_eq!(rv(&s, "deploy/x"), before);
    assert_eq!(
        s.ok(&["get", "deploy", "x", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );

    // Adding a container in front (kubectl sends $setElementOrder).
    let out = edit(&editor(
        "add.sh",
        "s/^      containers:$/      containers:\\n      - name: log\\n        image: busybox:1.36/",
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let d = get(&s, &["deploy", "x"]);
    assert_eq!(
        containers(&d),
        pairs(&[("log", "busybox:1.36"), ("nginx", "nginx:1.27")])
    );
}

/// `kubectl patch` with the three patch types and the strategic merge
/// directives.
#[test]
fn patch_types_and_directives() {
    let s = Server::start();
    s.apply_stdin(&["create"], WEB);
    let patch = |kind: &str, p: &str| -> String {
        s.ok(&["patch", "deploy", "web", "--type", kind, "-p", p])
    };

    // Strategic (the default): containers merge by name.
    let out = s.ok(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.37"}]}}}}"#,
    ]);
    assert_eq!(out.trim(), "deployment.apps/web patched");
    let d = get(&s, &["deploy", "web"]);
    assert_eq!(
        containers(&d),
        pairs(&[("web", "nginx:1.27"), ("sidecar", "busybox:1.37")])
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][1]["command"],
        json!(["sleep", "infinity"]),
        "fields of the merged container that the patch does not name survive"
    );

    // $setElementOrder: a new container placed first.
    patch(
        "strategic",
        r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"log"},{"name":"web"},{"name":"sidecar"}],"containers":[{"name":"log","image":"fluentd:1"}]}}}}"#,
    );
    let d = get(&s, &["deploy", "web"]);
    assert_eq!(
        containers(&d),
        pairs(&[
            ("log", "fluentd:1"),
            ("web", "nginx:1.27"),
            ("sidecar", "busybox:1.37")
        ])
    );

    // $patch: delete of one container.
    patch(
        "strategic",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"log","$patch":"delete"}]}}}}"#,
    );
    let d = get(&s, &["deploy", "web"]);
    assert_eq!(
        containers(&d),
        pairs(&[("web", "nginx:1.27"), ("sidecar", "busybox:1.37")])
    );

    // $retainKeys, as kubectl apply sends it when the strategy changes.
    patch(
        "strategic",
        r#"{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate","rollingUpdate":null}}}"#,
    );
    assert_eq!(
        get(&s, &["deploy", "web"])["spec"]["strategy"],
        json!({"type": "Recreate"})
    );

    // Finalizers: a merge list of strings; $deleteFromPrimitiveList removes.
    patch(
        "merge",
        r#"{"metadata":{"finalizers":["example.com/a","example.com/b","example.com/c"]}}"#,
    );
    patch(
        "strategic",
        r#"{"metadata":{"finalizers":["example.com/d"]}}"#,
    );
    patch(
        "strategic",
        r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["example.com/b"]}}"#,
    );
    assert_eq!(
        get(&s, &["deploy", "web"])["metadata"]["finalizers"],
        json!(["example.com/a", "example.com/c", "example.com/d"])
    );
    patch("merge", r#"{"metadata":{"finalizers":null}}"#);
    assert!(get(&s, &["deploy", "web"])["metadata"]
        .get("finalizers")
        .is_none());

    // Merge patch: null deletes a label; lists are replaced whole.
    patch(
        "merge",
        r#"{"metadata":{"labels":{"tier":null,"new":"yes"}}}"#,
    );
    assert_eq!(
        get(&s, &["deploy", "web"])["metadata"]["labels"],
        json!({"app": "web", "new": "yes"})
    );

    // JSON patch: add, replace, remove.
    patch(
        "json",
        r#"[{"op":"replace","path":"/spec/replicas","value":4},{"op":"add","path":"/metadata/annotations","value":{"note":"hi"}},{"op":"remove","path":"/metadata/labels/new"}]"#,
    );
    let d = get(&s, &["deploy", "web"]);
    assert_eq!(d["spec"]["replicas"], 4);
    assert_eq!(d["metadata"]["annotations"]["note"], "hi");
    assert_eq!(d["metadata"]["labels"], json!({"app": "web"}));

    // A failing test op: 422, and nothing written.
    let before = rv(&s, "deploy/web");
    let err = s.fails(&[
        "patch",
        "deploy",
        "web",
        "--type",
        "json",
        "-p",
        r#"[{"op":"test","path":"/spec/replicas","value":9},{"op":"replace","path":"/spec/replicas","value":5}]"#,
    ]);
    assert!(err.contains("is invalid"), "{err}");
    let (code, body) = s.curl(
        "PATCH",
        &format!("{DEPLOYMENTS}/web"),
        "application/json-patch+json",
        br#"[{"op":"test","path":"/spec/replicas","value":9},{"op":"replace","path":"/spec/replicas","value":5}]"#,
    );
    assert_eq!(code, 422, "{body}");
    let st = parse(&body);
    assert_eq!(
        (st["kind"].as_str(), st["reason"].as_str()),
        (Some("Status"), Some("Invalid"))
    );
    assert_eq!(rv(&s, "deploy/web"), before);
    assert_eq!(get(&s, &["deploy", "web"])["spec"]["replicas"], 4);
}

/// `kubectl set`, `label` and `annotate`.
#[test]
fn set_label_and_annotate() {
    let s = Server::start();
    s.apply_stdin(&["create"], WEB);
    let d = || get(&s, &["deploy", "web"]);

    assert_eq!(
        s.ok(&["set", "image", "deploy/web", "web=nginx:1.29"])
            .trim(),
        "deployment.apps/web image updated"
    );
    assert_eq!(
        containers(&d()),
        pairs(&[("web", "nginx:1.29"), ("sidecar", "busybox:1.36")])
    );

    s.ok(&["set", "env", "deploy/web", "-c", "web", "FOO=bar", "BAZ=1"]);
    assert_eq!(
        d()["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "FOO", "value": "bar"}, {"name": "BAZ", "value": "1"}])
    );
    s.ok(&["set", "env", "deploy/web", "-c", "web", "FOO-"]);
    assert_eq!(
        d()["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "BAZ", "value": "1"}])
    );
    assert!(d()["spec"]["template"]["spec"]["containers"][1]
        .get("env")
        .is_none());

    s.ok(&[
        "set",
        "resources",
        "deploy/web",
        "-c",
        "web",
        "--limits=cpu=200m,memory=512Mi",
    ]);
    assert_eq!(
        d()["spec"]["template"]["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "200m", "memory": "512Mi"}})
    );

    // Labels.
    let before = rv(&s, "deploy/web");
    let err = s.fails(&["label", "deploy", "web", "tier=back"]);
    assert!(
        err.contains("'tier' already has a value (front), and --overwrite is false"),
        "{err}"
    );
    assert_eq!(rv(&s, "deploy/web"), before);
    assert_eq!(
        s.ok(&["label", "deploy", "web", "tier=back", "--overwrite"])
            .trim(),
        "deployment.apps/web labeled"
    );
    assert_eq!(d()["metadata"]["labels"]["tier"], "back");
    s.ok(&["label", "deploy", "web", "foo=bar"]);
    assert_eq!(
        s.ok(&["label", "deploy", "web", "foo-"]).trim(),
        "deployment.apps/web unlabeled"
    );
    assert_eq!(
        d()["metadata"]["labels"],
        json!({"app": "web", "tier": "back"})
    );

    // Annotations.
    assert_eq!(
        s.ok(&["annotate", "deploy", "web", "note=hi"]).trim(),
        "deployment.apps/web annotated"
    );
    let err = s.fails(&["annotate", "deploy", "web", "note=ho"]);
    assert!(err.contains("'note' already has a value (hi)"), "{err}");
    assert_eq!(d()["metadata"]["annotations"]["note"], "hi");
    s.ok(&["annotate", "deploy", "web", "note=ho", "--overwrite"]);
    assert_eq!(d()["metadata"]["annotations"]["note"], "ho");
    s.ok(&["annotate", "deploy", "web", "note-"]);
    assert!(d()["metadata"]
        .get("annotations")
        .and_then(|a| a.get("note"))
        .is_none());
}

/// `--dry-run=server`: kubectl shows the result, nothing is stored, and
/// bad input still gets its error.
#[test]
fn server_dry_run_stores_nothing() {
    let s = Server::start();
    let file = write(&s, "web.yaml", WEB);
    s.ok(&["apply", "-f", &file]);
    let before = get(&s, &["deploy", "web"]);
    let unchanged = |what: &str| {
        let now = get(&s, &["deploy", "web"]);
        assert_eq!(now, before, "{what} changed the stored object");
    };

    let out = s.ok(&[
        "create",
        "configmap",
        "dry",
        "--from-literal=a=b",
        "--dry-run=server",
        "-o",
        "json",
    ]);
    let cm = parse(&out);
    assert_eq!(cm["data"]["a"], "b");
    assert!(cm["metadata"]["uid"].is_string(), "{cm}");
    assert!(s.fails(&["get", "cm", "dry"]).contains("NotFound"));
    let out = s.ok(&["create", "configmap", "dry", "--dry-run=server"]);
    assert_eq!(out.trim(), "configmap/dry created (server dry run)");
    assert!(s.fails(&["get", "cm", "dry"]).contains("NotFound"));

    let changed = write(&s, "web2.yaml", &WEB.replace("replicas: 1", "replicas: 5"));
    let out = s.ok(&["apply", "-f", &changed, "--dry-run=server", "-o", "json"]);
    assert_eq!(
        parse(&out)["spec"]["replicas"],
        5,
        "kubectl shows the result"
    );
    let out = s.ok(&["apply", "-f", &changed, "--dry-run=server"]);
    assert_eq!(
        out.trim(),
        "deployment.apps/web configured (server dry run)"
    );
    unchanged("apply");
    let out = s.ok(&[
        "apply",
        "-f",
        &write(
            &s,
            "new.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: drynew}\n",
        ),
        "--dry-run=server",
    ]);
    assert_eq!(out.trim(), "configmap/drynew created (server dry run)");
    assert!(s.fails(&["get", "cm", "drynew"]).contains("NotFound"));

    let out = s.ok(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"replicas":7}}"#,
        "--dry-run=server",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(out, "7");
    unchanged("patch");

    let mut replaced = before.clone();
    replaced["spec"]["replicas"] = json!(8);
    let out = s.kubectl_stdin(
        &["replace", "--dry-run=server", "-f", "-"],
        &replaced.to_string(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "deployment.apps/web replaced (server dry run)"
    );
    unchanged("replace");

    let out = s.ok(&["scale", "deploy", "web", "--replicas=9", "--dry-run=server"]);
    assert_eq!(out.trim(), "deployment.apps/web scaled (server dry run)");
    unchanged("scale");

    let out = s.ok(&["label", "deploy", "web", "dry=yes", "--dry-run=server"]);
    assert_eq!(out.trim(), "deployment.apps/web labeled (server dry run)");
    unchanged("label");

    let out = s.ok(&["delete", "deploy", "web", "--dry-run=server"]);
    assert_eq!(
        out.trim(),
        "deployment.apps \"web\" deleted (server dry run)"
    );
    unchanged("delete");

    // Bad input in a dry run is still refused, with the same error.
    let bad = write(
        &s,
        "bad.yaml",
        &WEB.replace("name: web\n  labels", "name: bad\n  labels")
            .replace("replicas: 1", "replicas: -1"),
    );
    for verb in [&["create"][..], &["apply"][..]] {
        let mut args = verb.to_vec();
        args.extend(["--dry-run=server", "-f", &bad]);
        let err = s.fails(&args);
        assert!(
            err.contains("The Deployment \"bad\" is invalid: spec.replicas: Invalid value: -1"),
            "{verb:?}: {err}"
        );
    }
    let err = s.fails(&[
        "patch",
        "deploy",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":-1}}"#,
        "--dry-run=server",
    ]);
    assert!(err.contains("spec.replicas: Invalid value: -1"), "{err}");
    let (code, body) = s.curl(
        "POST",
        &format!("{DEPLOYMENTS}?dryRun=All"),
        "application/json",
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "bad"},
            "spec": {"replicas": -1, "selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}}
        })
        .to_string()
        .as_bytes(),
    );
    assert_eq!(code, 422, "{body}");
    assert!(s.fails(&["get", "deploy", "bad"]).contains("NotFound"));
    unchanged("the refused dry runs");
}

/// Bad patch bodies get a Kubernetes error and write nothing.
#[test]
fn bad_patches_write_nothing() {
    let s = Server::start();
    s.apply_stdin(&["create"], WEB);
    let before = rv(&s, "deploy/web");
    let path = format!("{DEPLOYMENTS}/web");
    let send = |ct: &str, body: &str| -> (u16, Value) {
        let (code, text) = s.curl("PATCH", &path, ct, body.as_bytes());
        (code, parse(&text))
    };
    let check = |ct: &str, body: &str, code: u16, reason: &str| -> Value {
        let (got, st) = send(ct, body);
        assert_eq!(
            (got, st["reason"].as_str()),
            (code, Some(reason)),
            "{ct} {body}: {st}"
        );
        assert_eq!(st["kind"], "Status");
        assert_eq!(st["code"], code);
        assert_eq!(rv(&s, "deploy/web"), before, "{ct} {body} wrote");
        st
    };

    // Malformed JSON: 400 naming the parse error.
    for ct in [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ] {
        let st = check(ct, r#"{"spec":{"replicas":4"#, 400, "BadRequest");
        let msg = st["message"].as_str().unwrap();
        assert!(
            msg.contains("EOF") || msg.contains("unexpected end"),
            "{msg}"
        );
    }
    let st = check(
        "application/json-patch+json",
        r#"[{"op":"replace","path":"/spec/replicas","value":4}"#,
        400,
        "BadRequest",
    );
    assert!(st["message"].as_str().unwrap().contains("EOF"), "{st}");
    // A JSON patch that is not a list of operations.
    check(
        "application/json-patch+json",
        r#"{"op":"replace","path":"/spec/replicas","value":4}"#,
        400,
        "BadRequest",
    );

    // Patches that make the object invalid: 422 naming the field.
    let st = check(
        "application/merge-patch+json",
        r#"{"spec":{"replicas":-1}}"#,
        422,
        "Invalid",
    );
    assert_eq!(st["details"]["causes"][0]["field"], "spec.replicas", "{st}");
    assert_eq!(st["details"]["kind"], "Deployment");
    let st = check(
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"bad":"no spaces"}}}"#,
        422,
        "Invalid",
    );
    assert_eq!(
        st["details"]["causes"][0]["field"], "metadata.labels",
        "{st}"
    );
    let st = check(
        "application/strategic-merge-patch+json",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":""}]}}}}"#,
        422,
        "Invalid",
    );
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("spec.template.spec.containers[0].image"),
        "{st}"
    );
    let st = check(
        "application/json-patch+json",
        r#"[{"op":"add","path":"/spec/selector/matchLabels/app","value":"other"}]"#,
        422,
        "Invalid",
    );
    assert!(st["message"].as_str().unwrap().contains("spec."), "{st}");

    // Patches of the wrong shape: 400.
    for body in [r#"["a"]"#, r#""x""#, "42", "null"] {
        check(
            "application/strategic-merge-patch+json",
            body,
            400,
            "BadRequest",
        );
    }
    check("application/merge-patch+json", "[1]", 400, "BadRequest");

    // kubectl refuses bad JSON itself, before any request.
    let err = s.fails(&["patch", "deploy", "web", "-p", "{not json"]);
    assert!(!err.is_empty());
    assert_eq!(rv(&s, "deploy/web"), before);
}

/// Values of the wrong JSON type are refused (upstream: 400 on create and
/// update, as the body cannot be decoded into the typed object; 422 naming
/// `patch` for a patch), never stored.
#[test]
fn wrong_value_types_are_refused() {
    let s = Server::start();
    s.apply_stdin(&["create"], WEB);
    let before = rv(&s, "deploy/web");
    for ct in [
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ] {
        let (code, body) = s.curl(
            "PATCH",
            &format!("{DEPLOYMENTS}/web"),
            ct,
            br#"{"spec":{"replicas":"three"}}"#,
        );
        assert_eq!(code, 422, "{ct}: {body}");
        assert_eq!(rv(&s, "deploy/web"), before, "{ct} wrote");
    }
    let (code, body) = s.curl(
        "PATCH",
        &format!("{DEPLOYMENTS}/web"),
        "application/json-patch+json",
        br#"[{"op":"replace","path":"/spec/replicas","value":"five"}]"#,
    );
    assert_eq!(code, 422, "{body}");
    assert_eq!(rv(&s, "deploy/web"), before);

    let mut d = get(&s, &["deploy", "web"]);
    d["metadata"]["name"] = json!("typed");
    d["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    d["metadata"].as_object_mut().unwrap().remove("uid");
    d["spec"]["replicas"] = json!("three");
    let (code, body) = s.curl(
        "POST",
        DEPLOYMENTS,
        "application/json",
        d.to_string().as_bytes(),
    );
    assert_eq!(code, 400, "{body}");
    assert!(s.fails(&["get", "deploy", "typed"]).contains("NotFound"));
}
