//! End-to-end: the real kubectl against the real `skiff server`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::Server;

const MULTI_DOC: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
  labels: {app: web, tier: frontend}
data:
  color: blue
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
"#;

#[test]
fn discovery_commands() {
    let s = Server::start();
    let v = s.ok(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v["serverVersion"]["minor"], "33");
    let res = s.ok(&["api-resources"]);
    for needle in [
        "pods",
        "deployments",
        "cronjobs",
        "horizontalpodautoscalers",
        "ingresses",
        "clusterroles",
        "storageclasses",
        "poddisruptionbudgets",
        "leases",
        "endpointslices",
        "priorityclasses",
        "runtimeclasses",
        "controllerrevisions",
        "networkpolicies",
        "limitranges",
        "podtemplates",
    ] {
        assert!(
            res.lines().any(|l| l.starts_with(needle)),
            "api-resources lacks {needle}:\n{res}"
        );
    }
    assert!(res.contains("deploy") && res.contains("apps/v1"));
    let versions = s.ok(&["api-versions"]);
    for gv in [
        "v1",
        "apps/v1",
        "batch/v1",
        "autoscaling/v2",
        "autoscaling/v1",
        "rbac.authorization.k8s.io/v1",
        "policy/v1",
    ] {
        assert!(versions.lines().any(|l| l == gv), "api-versions lacks {gv}");
    }
    let info = s.ok(&["cluster-info"]);
    assert!(info.contains("is running at"), "{info}");
    let ns = s.ok(&["get", "namespaces", "-o", "name"]);
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(&format!("namespace/{n}")), "{ns}");
    }
}

#[test]
fn create_get_and_output_formats() {
    let s = Server::start();
    let out = s.apply_stdin(&["create"], MULTI_DOC);
    assert!(out.contains("namespace/shop created"), "{out}");
    assert!(out.contains("deployment.apps/web created"), "{out}");

    let table = s.ok(&["get", "deploy", "-n", "shop"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert!(table.contains("0/2"), "{table}");
    let wide = s.ok(&["get", "deploy", "-n", "shop", "-o", "wide"]);
    assert!(
        wide.contains("CONTAINERS") && wide.contains("nginx:1.27") && wide.contains("app=web"),
        "{wide}"
    );

    let yaml = s.ok(&["get", "cm", "settings", "-n", "shop", "-o", "yaml"]);
    assert!(
        yaml.contains("color: blue") && yaml.contains("resourceVersion:") && yaml.contains("uid:"),
        "{yaml}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&s.ok(&["get", "deploy", "web", "-n", "shop", "-o", "json"])).unwrap();
    assert_eq!(
        json["spec"]["strategy"]["type"], "RollingUpdate",
        "defaults applied"
    );
    assert_eq!(json["metadata"]["generation"], 1);
    assert_eq!(
        s.ok(&["get", "cm", "-n", "shop", "-o", "name"]).trim(),
        "configmap/settings"
    );
    assert_eq!(
        s.ok(&[
            "get",
            "cm",
            "settings",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.color}"
        ]),
        "blue"
    );
    let cc = s.ok(&[
        "get",
        "cm",
        "-n",
        "shop",
        "-o",
        "custom-columns=NAME:.metadata.name,COLOR:.data.color",
    ]);
    assert!(
        cc.lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .eq(["settings", "blue"]),
        "{cc}"
    );
    let labels = s.ok(&["get", "cm", "-n", "shop", "--show-labels"]);
    assert!(labels.contains("app=web,tier=frontend"), "{labels}");

    let svc = s.ok(&["get", "svc", "web", "-n", "shop"]);
    let ip = s.ok(&[
        "get",
        "svc",
        "web",
        "-n",
        "shop",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    assert!(
        ip.starts_with("10.43."),
        "cluster IP from the service CIDR: {ip}"
    );
    assert!(svc.contains("80/TCP") && svc.contains(&ip), "{svc}");

    // Label selectors, equality and set-based; -A; field selectors.
    s.apply_stdin(&["create"], "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other, namespace: default, labels: {app: api}}\n");
    let sel = |args: &[&str]| s.ok(args).lines().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        sel(&["get", "cm", "-A", "-l", "app=web", "-o", "name"]),
        ["configmap/settings"]
    );
    assert_eq!(
        sel(&["get", "cm", "-A", "-l", "app in (api,db)", "-o", "name"]),
        ["configmap/other"]
    );
    assert_eq!(
        sel(&["get", "cm", "-A", "-l", "app,app notin (web)", "-o", "name"]),
        ["configmap/other"]
    );
    assert_eq!(
        sel(&["get", "cm", "-A", "-l", "!tier,app", "-o", "name"]),
        ["configmap/other"]
    );
    let all = s.ok(&["get", "cm", "-A"]);
    assert!(
        all.starts_with("NAMESPACE") && all.contains("shop") && all.contains("other"),
        "{all}"
    );
    assert_eq!(
        sel(&[
            "get",
            "cm",
            "-A",
            "--field-selector",
            "metadata.namespace=shop",
            "-o",
            "name"
        ]),
        ["configmap/settings"]
    );
    assert_eq!(
        sel(&[
            "get",
            "ns",
            "--field-selector",
            "metadata.name=shop",
            "-o",
            "name"
        ]),
        ["namespace/shop"]
    );
    let err = s.fails(&["get", "cm", "--field-selector", "spec.bogus=1"]);
    assert!(err.contains("field label not supported"), "{err}");
}

#[test]
fn create_generators() {
    let s = Server::start();
    s.ok(&["create", "namespace", "team"]);
    let dir = s.data_dir().join("cm-src");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("app.properties"), "a=1\n").unwrap();
    s.ok(&[
        "create",
        "configmap",
        "cfg",
        "-n",
        "team",
        "--from-literal=mode=fast",
        &format!("--from-file={}", dir.join("app.properties").display()),
    ]);
    assert_eq!(
        s.ok(&[
            "get",
            "cm",
            "cfg",
            "-n",
            "team",
            "-o",
            "jsonpath={.data.mode}"
        ]),
        "fast"
    );
    assert_eq!(
        s.ok(&[
            "get",
            "cm",
            "cfg",
            "-n",
            "team",
            "-o",
            "jsonpath={.data.app\\.properties}"
        ]),
        "a=1\n"
    );
    s.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "-n",
        "team",
        "--from-literal=password=s3cret",
    ]);
    assert_eq!(
        s.ok(&[
            "get",
            "secret",
            "creds",
            "-n",
            "team",
            "-o",
            "jsonpath={.data.password}"
        ]),
        "czNjcmV0"
    );
    assert!(s
        .ok(&["get", "secret", "creds", "-n", "team"])
        .contains("Opaque"));
    s.ok(&[
        "create",
        "deployment",
        "api",
        "-n",
        "team",
        "--image=busybox:1.36",
        "--replicas=3",
    ]);
    assert_eq!(
        s.ok(&[
            "get",
            "deploy",
            "api",
            "-n",
            "team",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "3"
    );
    s.ok(&[
        "create",
        "service",
        "clusterip",
        "api",
        "-n",
        "team",
        "--tcp=80:8080",
    ]);
    assert_eq!(
        s.ok(&[
            "get",
            "svc",
            "api",
            "-n",
            "team",
            "-o",
            "jsonpath={.spec.ports[0].targetPort}"
        ]),
        "8080"
    );
}

#[test]
fn update_verbs() {
    let s = Server::start();
    s.apply_stdin(&["create"], MULTI_DOC);
    // replace
    let mut cm: serde_json::Value =
        serde_json::from_str(&s.ok(&["get", "cm", "settings", "-n", "shop", "-o", "json"]))
            .unwrap();
    cm["data"]["color"] = "green".into();
    s.apply_stdin(&["replace"], &cm.to_string());
    assert_eq!(
        s.ok(&[
            "get",
            "cm",
            "settings",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.color}"
        ]),
        "green"
    );
    // replace with a stale resourceVersion conflicts
    let out = s.kubectl_stdin(&["replace", "-f", "-"], &cm.to_string());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the object has been modified"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // label / annotate
    s.ok(&["label", "cm", "settings", "-n", "shop", "env=prod"]);
    let err = s.fails(&["label", "cm", "settings", "-n", "shop", "env=dev"]);
    assert!(err.contains("already has a value"), "{err}");
    s.ok(&[
        "label",
        "cm",
        "settings",
        "-n",
        "shop",
        "env=dev",
        "--overwrite",
    ]);
    s.ok(&["label", "cm", "settings", "-n", "shop", "tier-"]);
    assert_eq!(
        s.ok(&["get", "cm", "-n", "shop", "-l", "env=dev", "-o", "name"])
            .trim(),
        "configmap/settings"
    );
    assert!(s
        .ok(&["get", "cm", "-n", "shop", "-l", "tier", "-o", "name"])
        .trim()
        .is_empty());
    s.ok(&["annotate", "cm", "settings", "-n", "shop", "owner=team-a"]);
    assert_eq!(
        s.ok(&[
            "get",
            "cm",
            "settings",
            "-n",
            "shop",
            "-o",
            "jsonpath={.metadata.annotations.owner}"
        ]),
        "team-a"
    );
    // scale: spec changes bump generation, the /scale subresource is used
    s.ok(&["scale", "deploy", "web", "-n", "shop", "--replicas=5"]);
    let d: serde_json::Value =
        serde_json::from_str(&s.ok(&["get", "deploy", "web", "-n", "shop", "-o", "json"])).unwrap();
    assert_eq!(d["spec"]["replicas"], 5);
    assert_eq!(d["metadata"]["generation"], 2);
    let scale = s.raw_json("/apis/apps/v1/namespaces/shop/deployments/web/scale");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 5);
    assert_eq!(scale["status"]["selector"], "app=web");
    // labels are metadata: no generation bump
    s.ok(&["label", "deploy", "web", "-n", "shop", "x=y"]);
    assert_eq!(
        s.ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.metadata.generation}"
        ]),
        "2"
    );
}

#[test]
fn delete_verbs() {
    let s = Server::start();
    s.apply_stdin(&["create"], MULTI_DOC);
    for i in 0..3 {
        s.ok(&[
            "create",
            "cm",
            &format!("c{i}"),
            "-n",
            "shop",
            "--from-literal=a=b",
        ]);
    }
    s.ok(&["label", "cm", "c0", "c1", "-n", "shop", "batch=x"]);
    let out = s.ok(&["delete", "cm", "-n", "shop", "-l", "batch=x"]);
    assert!(
        out.contains("\"c0\" deleted") && out.contains("\"c1\" deleted"),
        "{out}"
    );
    let out = s.ok(&["delete", "cm", "c2", "-n", "shop", "--wait"]);
    assert!(out.contains("deleted"), "{out}");
    let err = s.fails(&["get", "cm", "c2", "-n", "shop"]);
    assert!(
        err.contains("NotFound") && err.contains("\"c2\" not found"),
        "{err}"
    );
    // Everything in the file but the namespace (whose contents a controller empties).
    let objects = MULTI_DOC
        .split("---")
        .skip(1)
        .collect::<Vec<_>>()
        .join("---");
    let out = s.kubectl_stdin(&["delete", "-f", "-"], &objects);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("deployment.apps \"web\" deleted")
            && text.contains("service \"web\" deleted"),
        "{text}"
    );
    assert!(s
        .ok(&["get", "deploy,svc,cm", "-n", "shop", "-o", "name"])
        .trim()
        .is_empty());
    // A namespace being deleted is Terminating and takes no new objects
    // (an object with a finalizer holds it there), then goes.
    s.apply_stdin(
        &["apply"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  namespace: shop\n  finalizers: [example.com/hold]\n",
    );
    s.ok(&["delete", "namespace", "shop", "--wait=false"]);
    assert!(s.ok(&["get", "ns", "shop"]).contains("Terminating"));
    let err = s.fails(&["create", "cm", "late", "-n", "shop", "--from-literal=a=b"]);
    assert!(err.contains("because it is being terminated"), "{err}");
    s.ok(&[
        "patch",
        "cm",
        "held",
        "-n",
        "shop",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    s.ok(&["wait", "--for=delete", "namespace/shop", "--timeout=60s"]);
    for i in 0..3 {
        s.ok(&["create", "cm", &format!("d{i}"), "--from-literal=a=b"]);
    }
    s.ok(&["delete", "cm", "--all"]);
    assert!(s.ok(&["get", "cm", "-o", "name"]).trim().is_empty());
}

#[test]
fn describe_shows_events() {
    let s = Server::start();
    s.apply_stdin(&["create"], MULTI_DOC);
    s.apply_stdin(
        &["create"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: solo, namespace: shop, labels: {app: web}}
spec:
  containers: [{name: c, image: busybox:1.36, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Node
metadata: {name: node-a, labels: {kubernetes.io/hostname: node-a}}
spec: {}
"#,
    );
    let uid = s.ok(&[
        "get",
        "pod",
        "solo",
        "-n",
        "shop",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let event = format!(
        r#"
apiVersion: v1
kind: Event
metadata: {{name: solo.1, namespace: shop}}
involvedObject: {{kind: Pod, name: solo, namespace: shop, uid: {uid}, apiVersion: v1}}
reason: Scheduled
message: Successfully assigned shop/solo to node-a
type: Normal
count: 1
firstTimestamp: "2024-01-01T00:00:00Z"
lastTimestamp: "2024-01-01T00:00:00Z"
source: {{component: default-scheduler}}
"#
    );
    s.apply_stdin(&["create"], &event);
    let pod = s.ok(&["describe", "pod", "solo", "-n", "shop"]);
    assert!(
        pod.contains("Name:") && pod.contains("solo") && pod.contains("busybox:1.36"),
        "{pod}"
    );
    assert!(
        pod.contains("Events:")
            && pod.contains("Scheduled")
            && pod.contains("Successfully assigned shop/solo to node-a"),
        "{pod}"
    );
    let d = s.ok(&["describe", "deployment", "web", "-n", "shop"]);
    assert!(
        d.contains("Replicas:") && d.contains("RollingUpdate"),
        "{d}"
    );
    let svc = s.ok(&["describe", "svc", "web", "-n", "shop"]);
    assert!(
        svc.contains("Selector:") && svc.contains("app=web") && svc.contains("IP:"),
        "{svc}"
    );
    let node = s.ok(&["describe", "node", "node-a"]);
    assert!(node.contains("Name:") && node.contains("node-a"), "{node}");
    let pods = s.ok(&["get", "pods", "-n", "shop"]);
    let header: Vec<&str> = pods.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert!(pods.contains("0/1") && pods.contains("Pending"), "{pods}");
    let events = s.ok(&[
        "get",
        "events",
        "-n",
        "shop",
        "--field-selector",
        &format!("involvedObject.uid={uid}"),
    ]);
    assert!(events.contains("Scheduled"), "{events}");
}

#[test]
fn watch_sees_later_changes() {
    let s = Server::start();
    s.ok(&["create", "cm", "first", "--from-literal=a=b"]);
    let mut child = s
        .kubectl_cmd()
        .args(["get", "cm", "-w", "-o", "name"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(first, "configmap/first");
    s.ok(&["create", "cm", "second", "--from-literal=a=b"]);
    let next = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(next, "configmap/second");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn watch_resumes_after_restart() {
    let mut s = Server::start();
    s.ok(&["create", "cm", "before", "--from-literal=a=b"]);
    let list = s.raw_json("/api/v1/namespaces/default/configmaps");
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    s.restart();
    // Everything survived the restart.
    assert_eq!(
        s.ok(&["get", "cm", "before", "-o", "jsonpath={.data.a}"]),
        "b"
    );
    s.ok(&["create", "cm", "after", "--from-literal=a=c"]);
    // A watch from the pre-restart resourceVersion sees exactly the later change.
    let out = s
        .kubectl_cmd()
        .args(["get", "--raw", &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=2")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{text}");
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "after");
}

#[test]
fn bad_input_is_refused_and_writes_nothing() {
    let s = Server::start();
    let before = s.ok(&["get", "cm", "-A", "-o", "name"]);
    // 422 with the field named.
    let out = s.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\ndata: {k: v}\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is invalid") && err.contains("metadata.name"),
        "{err}"
    );
    // Strict field validation: unknown fields are 400.
    let out = s.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: good}\nspec: {foo: 1}\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("strict decoding error")
            && err.contains("unknown field \"spec\""),
        "{err}"
    );
    // Selector that does not match the template.
    let out = s.kubectl_stdin(&["create", "-f", "-"], "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {app: x}}\n  template:\n    metadata: {labels: {app: other}}\n    spec: {containers: [{name: c, image: i}]}\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("does not match template"),
        "{err}"
    );
    // Missing namespace.
    let err = s.fails(&["create", "cm", "x", "-n", "nope", "--from-literal=a=b"]);
    assert!(err.contains("namespaces \"nope\" not found"), "{err}");
    // Unknown resource type.
    let err = s.fails(&["get", "widgets"]);
    assert!(
        err.contains("the server doesn't have a resource type"),
        "{err}"
    );
    assert_eq!(s.ok(&["get", "cm", "-A", "-o", "name"]), before);
    assert!(s.fails(&["get", "deploy", "d"]).contains("NotFound"));
}

/// Older clients than the dispatcher picks (1.27 and 1.28 read /openapi/v2 as protobuf).
#[test]
fn older_kubectl_versions_work() {
    let s = Server::start();
    let dir = std::path::Path::new("/usr/lib/google-cloud-sdk/bin");
    for v in ["1.27", "1.28", "1.29", "1.30", "1.31", "1.32"] {
        let bin = dir.join(format!("kubectl.{v}"));
        if !bin.exists() {
            panic!("{} is missing", bin.display());
        }
        let run = |args: &[&str], stdin: Option<&str>| {
            use std::io::Write;
            let mut c = std::process::Command::new(&bin)
                .env("KUBECONFIG", s.kubeconfig())
                .arg("--cache-dir")
                .arg(s.data_dir().join(format!("cache-{v}")))
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            c.stdin
                .take()
                .unwrap()
                .write_all(stdin.unwrap_or("").as_bytes())
                .unwrap();
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "kubectl {v} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let ns = format!("skew-{}", v.replace('.', "-"));
        run(&["create", "namespace", &ns], None);
        let objects = MULTI_DOC
            .split("---")
            .skip(1)
            .collect::<Vec<_>>()
            .join("---")
            .replace("namespace: shop", &format!("namespace: {ns}"));
        let out = run(&["apply", "-f", "-"], Some(&objects));
        assert!(out.contains("deployment.apps/web created"), "{out}");
        run(&["scale", "deploy", "web", "-n", &ns, "--replicas=4"], None);
        let got = run(
            &[
                "get",
                "deploy",
                "web",
                "-n",
                &ns,
                "-o",
                "jsonpath={.spec.replicas}",
            ],
            None,
        );
        assert_eq!(got, "4");
        assert!(run(&["get", "all", "-n", &ns], None).contains("service/web"));
    }
}

/// The everyday write commands that go through PATCH (all three patch types).
#[test]
fn patch_edit_set_and_client_side_apply() {
    let s = Server::start();
    s.apply_stdin(&["apply"], MULTI_DOC);
    s.ok(&[
        "patch",
        "cm",
        "settings",
        "-n",
        "shop",
        "-p",
        r#"{"data":{"size":"L"}}"#,
    ]);
    s.ok(&[
        "patch",
        "cm",
        "settings",
        "-n",
        "shop",
        "--type=merge",
        "-p",
        r#"{"data":{"color":null}}"#,
    ]);
    s.ok(&[
        "patch",
        "deploy",
        "web",
        "-n",
        "shop",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#,
    ]);
    let cm: serde_json::Value =
        serde_json::from_str(&s.ok(&["get", "cm", "settings", "-n", "shop", "-o", "json"]))
            .unwrap();
    assert_eq!(cm["data"], serde_json::json!({"size": "L"}));
    assert_eq!(
        s.ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "4"
    );
    let err = s.fails(&[
        "patch",
        "cm",
        "settings",
        "-n",
        "shop",
        "--type=json",
        "-p",
        "not json",
    ]);
    assert!(!err.is_empty());

    s.ok(&["set", "image", "deploy/web", "-n", "shop", "web=nginx:1.28"]);
    assert_eq!(
        s.ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}"
        ]),
        "nginx:1.28"
    );
    s.ok(&["set", "env", "deploy/web", "-n", "shop", "MODE=fast"]);
    assert_eq!(
        s.ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].env[0].value}"
        ]),
        "fast"
    );

    let out = s
        .kubectl_cmd()
        .env("KUBE_EDITOR", "sed -i s/size:\\ L/size:\\ XL/")
        .args(["edit", "cm", "settings", "-n", "shop"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        s.ok(&[
            "get",
            "cm",
            "settings",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.size}"
        ]),
        "XL"
    );

    // Client-side apply: change the file, apply again; diff shows a pending change.
    let changed = MULTI_DOC.replace("replicas: 2", "replicas: 6");
    let out = s.apply_stdin(&["apply"], &changed);
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    assert_eq!(
        s.ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "6"
    );
    let diff = s.kubectl_stdin(
        &["diff", "-f", "-"],
        &MULTI_DOC.replace("replicas: 2", "replicas: 7"),
    );
    assert_eq!(
        diff.status.code(),
        Some(1),
        "diff exits 1 when there are differences"
    );
    assert!(String::from_utf8_lossy(&diff.stdout).contains("replicas: 7"));
    assert_eq!(
        s.ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "6",
        "diff writes nothing"
    );
}
