//! End-to-end: server-side apply and managedFields, driven by the real
//! kubectl (and raw requests for what kubectl refuses to send).

mod common;

use common::Server;
use serde_json::Value;

const DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: frontend}
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
      - name: log
        image: busybox:1.36
        args: [tail, -f, /dev/null]
"#;

fn get(s: &Server, args: &[&str]) -> Value {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend(["-o", "json", "--show-managed-fields"]);
    serde_json::from_str(&s.ok(&a)).expect("JSON")
}

/// The managedFields entry of `manager` with `operation`.
fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

#[test]
fn server_side_apply_conflicts_force_and_shared_ownership() {
    let s = Server::start();
    let out = s.apply_stdin(&["apply", "--server-side"], DEPLOY);
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let d = get(&s, &["deploy", "web"]);
    let mine = entry(&d, "kubectl", "Apply").expect("kubectl's Apply entry");
    assert_eq!(mine["apiVersion"], "apps/v1");
    assert_eq!(mine["fieldsType"], "FieldsV1");
    let f = &mine["fieldsV1"];
    assert!(f["f:spec"]["f:replicas"].is_object(), "{f}");
    assert!(
        f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:image"]
            .is_object(),
        "{f}"
    );
    // Without --show-managed-fields kubectl hides them; the server sends them.
    let plain = s.ok(&["get", "deploy", "web", "-o", "yaml"]);
    assert!(!plain.contains("managedFields"), "{plain}");

    // A second manager changing replicas conflicts with the first.
    let other = DEPLOY.replace("replicas: 2", "replicas: 5");
    let out = s.kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=scaler",
            "-f",
            "-",
        ],
        &other,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("conflict with \"kubectl\"") && err.contains(".spec.replicas"),
        "{err}"
    );
    assert_eq!(get(&s, &["deploy", "web"])["spec"]["replicas"], 2);

    // Forcing moves replicas to the new manager; the values it shares with
    // the first manager (same image, labels) are owned by both.
    let out = s.apply_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=scaler",
            "--force-conflicts",
        ],
        &other,
    );
    assert!(out.contains("serverside-applied"), "{out}");
    let d = get(&s, &["deploy", "web"]);
    assert_eq!(d["spec"]["replicas"], 5);
    let scaler = entry(&d, "scaler", "Apply").expect("scaler entry");
    assert!(scaler["fieldsV1"]["f:spec"]["f:replicas"].is_object());
    let kubectl = entry(&d, "kubectl", "Apply").expect("kubectl entry");
    assert!(kubectl["fieldsV1"]["f:spec"].get("f:replicas").is_none());
    assert!(kubectl["fieldsV1"]["f:metadata"]["f:labels"]["f:tier"].is_object());
    assert!(scaler["fieldsV1"]["f:metadata"]["f:labels"]["f:tier"].is_object());

    // kubectl stops applying the tier label and the log container: the
    // label stays (scaler still applies it), the container goes only once
    // no manager applies it.
    let slim = DEPLOY
        .replace("  replicas: 2\n", "")
        .replace(", tier: frontend", "")
        .replace(
            "      - name: log\n        image: busybox:1.36\n        args: [tail, -f, /dev/null]\n",
            "",
        );
    s.apply_stdin(&["apply", "--server-side"], &slim);
    let d = get(&s, &["deploy", "web"]);
    assert_eq!(d["metadata"]["labels"]["tier"], "frontend");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let scaler_slim = other.replace(", tier: frontend", "").replace(
        "      - name: log\n        image: busybox:1.36\n        args: [tail, -f, /dev/null]\n",
        "",
    );
    s.apply_stdin(
        &["apply", "--server-side", "--field-manager=scaler"],
        &scaler_slim,
    );
    let d = get(&s, &["deploy", "web"]);
    assert!(
        d["metadata"]["labels"].get("tier").is_none(),
        "{}",
        d["metadata"]
    );
    let names: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web"]);
}

#[test]
fn no_op_apply_writes_nothing_and_dry_run_stores_nothing() {
    let s = Server::start();
    s.apply_stdin(&["apply", "--server-side"], DEPLOY);
    let rv = get(&s, &["deploy", "web"])["metadata"]["resourceVersion"].clone();
    s.apply_stdin(&["apply", "--server-side"], DEPLOY);
    assert_eq!(
        get(&s, &["deploy", "web"])["metadata"]["resourceVersion"],
        rv
    );

    let changed = DEPLOY.replace("nginx:1.27", "nginx:1.28");
    let out = s.apply_stdin(&["apply", "--server-side", "--dry-run=server"], &changed);
    assert!(out.contains("serverside-applied (server dry run)"), "{out}");
    let d = get(&s, &["deploy", "web"]);
    assert_eq!(d["metadata"]["resourceVersion"], rv);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );

    // Dry-run apply of a new object creates nothing.
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ghost}\ndata: {a: '1'}\n";
    s.apply_stdin(&["apply", "--server-side", "--dry-run=server"], cm);
    assert!(s.fails(&["get", "cm", "ghost"]).contains("NotFound"));
}

#[test]
fn updates_record_their_managers() {
    let s = Server::start();
    s.ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=color=blue",
    ]);
    let cm = get(&s, &["cm", "settings"]);
    let created = entry(&cm, "kubectl-create", "Update").expect("kubectl-create entry");
    assert!(
        created["fieldsV1"]["f:data"]["f:color"].is_object(),
        "{created}"
    );
    assert!(created["time"].as_str().is_some_and(|t| t.ends_with('Z')));

    s.ok(&["label", "cm", "settings", "team=shop"]);
    let cm = get(&s, &["cm", "settings"]);
    let labelled = entry(&cm, "kubectl-label", "Update").expect("kubectl-label entry");
    assert!(labelled["fieldsV1"]["f:metadata"]["f:labels"]["f:team"].is_object());

    // An apply that takes over a field set by an update conflicts.
    let apply = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: red}\n";
    let out = s.kubectl_stdin(&["apply", "--server-side", "-f", "-"], apply);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("conflict with \"kubectl-create\"") && err.contains(".data.color"),
        "{err}"
    );

    // Raw request: the 409 Status names each conflicting field.
    let (code, body) = s.curl(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/settings?fieldManager=raw",
        "application/apply-patch+yaml",
        apply.as_bytes(),
    );
    assert_eq!(code, 409, "{body}");
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "FieldManagerConflict"
    );
    assert_eq!(status["details"]["causes"][0]["field"], ".data.color");
}

#[test]
fn client_side_then_server_side_apply_migrates_ownership() {
    let s = Server::start();
    s.apply_stdin(&["apply"], DEPLOY);
    let d = get(&s, &["deploy", "web"]);
    assert!(entry(&d, "kubectl-client-side-apply", "Update").is_some());
    // kubectl moves the client-side apply's ownership to its server-side
    // manager first, so switching modes does not conflict with itself.
    let changed = DEPLOY.replace("replicas: 2", "replicas: 3");
    let out = s.apply_stdin(&["apply", "--server-side"], &changed);
    assert!(out.contains("serverside-applied"), "{out}");
    assert_eq!(get(&s, &["deploy", "web"])["spec"]["replicas"], 3);
}

#[test]
fn bad_apply_requests_change_nothing() {
    let s = Server::start();
    let cm = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: '1'}\n";
    let path = "/api/v1/namespaces/default/configmaps/c";
    // Apply needs a field manager.
    let (code, body) = s.curl("PATCH", path, "application/apply-patch+yaml", cm);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("fieldManager"), "{body}");
    // The configuration must be the kind the URL names.
    let wrong = b"apiVersion: v1\nkind: Secret\nmetadata: {name: c}\n";
    let (code, body) = s.curl(
        "PATCH",
        &format!("{path}?fieldManager=m"),
        "application/apply-patch+yaml",
        wrong,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("Incorrect kind"), "{body}");
    // Malformed YAML.
    let (code, _) = s.curl(
        "PATCH",
        &format!("{path}?fieldManager=m"),
        "application/apply-patch+yaml",
        b"kind: [unclosed",
    );
    assert_eq!(code, 400);
    // force is for apply only.
    let (code, body) = s.curl(
        "PATCH",
        &format!("{path}?fieldManager=m&force=true"),
        "application/merge-patch+json",
        b"{}",
    );
    assert_eq!(code, 422, "{body}");
    assert!(s.fails(&["get", "cm", "c"]).contains("NotFound"));

    // An apply whose result is invalid is a 422 and writes nothing.
    s.apply_stdin(&["apply", "--server-side"], DEPLOY);
    let rv = get(&s, &["deploy", "web"])["metadata"]["resourceVersion"].clone();
    let bad = DEPLOY.replace("replicas: 2", "replicas: -1");
    let out = s.kubectl_stdin(&["apply", "--server-side", "-f", "-"], &bad);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spec.replicas"), "{err}");
    assert_eq!(
        get(&s, &["deploy", "web"])["metadata"]["resourceVersion"],
        rv
    );
}

const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.demo.example.com
spec:
  group: demo.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, default: 1}
              color: {type: string}
              ports:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string}
                    port: {type: integer}
"#;

#[test]
fn server_side_apply_of_custom_resources_follows_their_schema() {
    let s = Server::start();
    s.apply_stdin(&["apply", "--server-side"], WIDGET_CRD);
    common::eventually(std::time::Duration::from_secs(5), || {
        s.kubectl(&["get", "widgets"])
            .status
            .success()
            .then_some(())
    });
    let w = "apiVersion: demo.example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec:\n  color: red\n  ports: [{name: http, port: 80}]\n";
    s.apply_stdin(&["apply", "--server-side"], w);
    let got = get(&s, &["widget", "w"]);
    assert_eq!(got["spec"]["size"], 1, "defaulted: {got}");
    let mine = entry(&got, "kubectl", "Apply").expect("kubectl entry");
    assert!(
        mine["fieldsV1"]["f:spec"]["f:ports"]["k:{\"name\":\"http\"}"]["f:port"].is_object(),
        "{mine}"
    );
    // A second manager adds a port to the keyed list: both items stay.
    let other = "apiVersion: demo.example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec:\n  ports: [{name: metrics, port: 9090}]\n";
    s.apply_stdin(
        &["apply", "--server-side", "--field-manager=metrics"],
        other,
    );
    let got = get(&s, &["widget", "w"]);
    let ports: Vec<&str> = got["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(ports, ["http", "metrics"]);
    // Changing the color another manager applied conflicts.
    let out = s.kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=metrics",
            "-f",
            "-",
        ],
        &other.replace("spec:\n", "spec:\n  color: blue\n"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(".spec.color"));
}
