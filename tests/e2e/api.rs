//! End-to-end at the HTTP level: status codes, Status bodies and API
//! semantics that kubectl relies on, against the real binary.

mod common;

use common::Server;
use serde_json::{json, Value};

fn cm(name: &str) -> Vec<u8> {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
        .to_string()
        .into_bytes()
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[test]
fn authentication() {
    let s = Server::start();
    for p in ["/healthz", "/livez", "/readyz", "/version"] {
        assert_eq!(s.curl_anonymous(p).0, 200, "{p}");
    }
    for p in ["/api", "/apis", "/api/v1/namespaces", "/openapi/v3"] {
        let (code, body) = s.curl_anonymous(p);
        assert_eq!(code, 401, "{p}");
        assert_eq!(parse(&body)["reason"], "Unauthorized");
    }
    // TLS material is private.
    use std::os::unix::fs::PermissionsExt;
    for f in [
        "server-ca.key",
        "client-admin.key",
        "serving-kube-apiserver.key",
    ] {
        let mode = std::fs::metadata(s.data_dir().join("server/tls").join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
}

#[test]
fn error_codes_and_nothing_written() {
    let s = Server::start();
    let rv_before = s.raw_json(CMS)["metadata"]["resourceVersion"].clone();
    // 400: malformed JSON and YAML.
    let (code, body) = s.curl("POST", CMS, "application/json", b"{\"kind\": ");
    assert_eq!(code, 400, "{body}");
    assert_eq!(parse(&body)["reason"], "BadRequest");
    let (code, _) = s.curl("POST", CMS, "application/yaml", b"metadata: [unclosed");
    assert_eq!(code, 400);
    // 422 with one cause per bad field.
    let bad = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "UPPER", "labels": {"a": "-x-"}}, "data": {"bad key": "v"}});
    let (code, body) = s.curl("POST", CMS, "application/json", bad.to_string().as_bytes());
    assert_eq!(code, 422, "{body}");
    let st = parse(&body);
    assert_eq!(st["kind"], "Status");
    assert_eq!(st["reason"], "Invalid");
    let fields: Vec<&str> = st["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"metadata.name")
            && fields.contains(&"metadata.labels")
            && fields.iter().any(|f| f.starts_with("data")),
        "{fields:?}"
    );
    // 413 above 3 MiB.
    let mut big = cm("big");
    let huge = "x".repeat(3 * 1024 * 1024 + 10);
    big = String::from_utf8(big)
        .unwrap()
        .replace("\"v\"", &format!("\"{huge}\""))
        .into_bytes();
    let (code, body) = s.curl("POST", CMS, "application/json", &big);
    assert_eq!(code, 413, "{}", &body[..body.len().min(200)]);
    // 404 unknown resource, 405 wrong verb.
    let (code, body) = s.curl(
        "GET",
        "/api/v1/namespaces/default/widgets",
        "application/json",
        b"",
    );
    assert_eq!(code, 404, "{body}");
    let (code, body) = s.curl(
        "POST",
        "/api/v1/namespaces/default/configmaps/x",
        "application/json",
        &cm("x"),
    );
    assert_eq!(code, 405, "{body}");
    assert_eq!(parse(&body)["reason"], "MethodNotAllowed");
    // 409 on a duplicate create.
    assert_eq!(s.curl("POST", CMS, "application/json", &cm("dup")).0, 201);
    let (code, body) = s.curl("POST", CMS, "application/json", &cm("dup"));
    assert_eq!(code, 409);
    assert_eq!(parse(&body)["reason"], "AlreadyExists");
    // 404 for a namespace that does not exist.
    let (code, body) = s.curl(
        "POST",
        "/api/v1/namespaces/nope/configmaps",
        "application/json",
        &cm("y"),
    );
    assert_eq!(code, 404, "{body}");
    let list = s.raw_json(CMS);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["dup"],
        "only the one good create was written (rv before: {rv_before})"
    );
}

#[test]
fn optimistic_concurrency_generation_and_status() {
    // No controllers: the Deployment controller would write status meanwhile.
    let s = Server::start_with(&["--disable-controller-manager"]);
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
        "status": {"replicas": 99}});
    let base = "/apis/apps/v1/namespaces/default/deployments";
    let (code, body) = s.curl("POST", base, "application/json", d.to_string().as_bytes());
    assert_eq!(code, 201, "{body}");
    let created = parse(&body);
    assert_eq!(created["metadata"]["generation"], 1);
    assert!(
        created.get("status").is_none() || created["status"].get("replicas").is_none(),
        "status is not set by create"
    );
    // Update with the current resourceVersion works; a stale one conflicts.
    let mut upd = created.clone();
    upd["spec"]["replicas"] = json!(3);
    upd["status"] = json!({"replicas": 42});
    let (code, body) = s.curl(
        "PUT",
        &format!("{base}/web"),
        "application/json",
        upd.to_string().as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    let updated = parse(&body);
    assert_eq!(updated["metadata"]["generation"], 2);
    assert!(
        updated["status"].get("replicas").is_none(),
        "a spec update does not write status"
    );
    let (code, body) = s.curl(
        "PUT",
        &format!("{base}/web"),
        "application/json",
        upd.to_string().as_bytes(),
    );
    assert_eq!(code, 409, "{body}");
    assert_eq!(parse(&body)["reason"], "Conflict");
    // The status subresource writes status only, without a generation bump.
    let mut st = updated.clone();
    st["status"] = json!({"replicas": 3, "observedGeneration": 2});
    st["spec"]["replicas"] = json!(7);
    let (code, body) = s.curl(
        "PUT",
        &format!("{base}/web/status"),
        "application/json",
        st.to_string().as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    let after = parse(&body);
    assert_eq!(after["status"]["replicas"], 3);
    assert_eq!(
        after["spec"]["replicas"], 3,
        "spec untouched by a status write"
    );
    assert_eq!(after["metadata"]["generation"], 2);
    // Immutable selector.
    let mut sel = after.clone();
    sel["spec"]["selector"] = json!({"matchLabels": {"app": "other"}});
    sel["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
    let (code, body) = s.curl(
        "PUT",
        &format!("{base}/web"),
        "application/json",
        sel.to_string().as_bytes(),
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("field is immutable"), "{body}");
}

#[test]
fn lists_page_at_one_revision() {
    let s = Server::start();
    for i in 0..7 {
        assert_eq!(
            s.curl("POST", CMS, "application/json", &cm(&format!("p{i}")))
                .0,
            201
        );
    }
    let first = s.raw_json(&format!("{CMS}?limit=3"));
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    assert_eq!(first["metadata"]["remainingItemCount"], 4);
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    // A write between pages does not show up in the paged snapshot.
    assert_eq!(s.curl("POST", CMS, "application/json", &cm("p99")).0, 201);
    let mut names: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let mut token = Some(token);
    while let Some(t) = token {
        let page = s.raw_json(&format!("{CMS}?limit=3&continue={t}"));
        assert_eq!(
            page["metadata"]["resourceVersion"],
            first["metadata"]["resourceVersion"]
        );
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        token = page["metadata"]["continue"].as_str().map(str::to_string);
    }
    assert_eq!(names, (0..7).map(|i| format!("p{i}")).collect::<Vec<_>>());
    // resourceVersionMatch=Exact reads the past.
    let rv = first["metadata"]["resourceVersion"].as_str().unwrap();
    let exact = s.raw_json(&format!(
        "{CMS}?resourceVersion={rv}&resourceVersionMatch=Exact"
    ));
    assert_eq!(exact["items"].as_array().unwrap().len(), 7);
    let now = s.raw_json(CMS);
    assert_eq!(now["items"].as_array().unwrap().len(), 8);
}

#[test]
fn dry_run_generate_name_and_finalizers() {
    let s = Server::start();
    let (code, body) = s.curl(
        "POST",
        &format!("{CMS}?dryRun=All"),
        "application/json",
        &cm("dry"),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        s.curl("GET", &format!("{CMS}/dry"), "application/json", b"")
            .0,
        404
    );
    let gen =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "job-"}});
    let (code, body) = s.curl("POST", CMS, "application/json", gen.to_string().as_bytes());
    assert_eq!(code, 201);
    let name = parse(&body)["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(name.starts_with("job-") && name.len() == 9, "{name}");
    // A finalizer holds deletion until it is removed.
    let f = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "held", "finalizers": ["example.com/hold"]}});
    assert_eq!(
        s.curl("POST", CMS, "application/json", f.to_string().as_bytes())
            .0,
        201
    );
    let (code, body) = s.curl("DELETE", &format!("{CMS}/held"), "application/json", b"{}");
    assert!(code == 200 || code == 202, "{code} {body}");
    let held = s.raw_json(&format!("{CMS}/held"));
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    let patch = json!({"metadata": {"finalizers": null}});
    let (code, body) = s.curl(
        "PATCH",
        &format!("{CMS}/held"),
        "application/merge-patch+json",
        patch.to_string().as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        s.curl("GET", &format!("{CMS}/held"), "application/json", b"")
            .0,
        404
    );
    // Preconditions.
    assert_eq!(s.curl("POST", CMS, "application/json", &cm("pre")).0, 201);
    let (code, _) = s.curl(
        "DELETE",
        &format!("{CMS}/pre"),
        "application/json",
        br#"{"preconditions":{"uid":"not-it"}}"#,
    );
    assert_eq!(code, 409);
}

#[test]
fn service_ip_and_node_port_allocation() {
    let s = Server::start();
    let svcs = "/api/v1/namespaces/default/services";
    let svc = |name: &str, extra: Value| {
        let mut v = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "NodePort", "selector": {"app": name}, "ports": [{"port": 80}]}});
        if let Some(o) = extra.as_object() {
            for (k, val) in o {
                v["spec"][k] = val.clone();
            }
        }
        v.to_string().into_bytes()
    };
    let (code, body) = s.curl("POST", svcs, "application/json", &svc("a", json!({})));
    assert_eq!(code, 201, "{body}");
    let a = parse(&body);
    let ip = a["spec"]["clusterIP"].as_str().unwrap().to_string();
    let np = a["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    assert!(ip.starts_with("10.43.") && (30000..=32767).contains(&np));
    assert_eq!(a["spec"]["ports"][0]["targetPort"], 80);
    let (code, body) = s.curl(
        "POST",
        svcs,
        "application/json",
        &svc("b", json!({"clusterIP": ip})),
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("already allocated"));
    let (code, body) = s.curl(
        "POST",
        svcs,
        "application/json",
        &svc("c", json!({"ports": [{"port": 80, "nodePort": 80}]})),
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("30000-32767"), "{body}");
    let (code, body) = s.curl(
        "POST",
        svcs,
        "application/json",
        &svc("d", json!({"clusterIP": "192.168.0.1"})),
    );
    assert_eq!(code, 422, "{body}");
    // Deleting frees the address for reuse.
    assert_eq!(
        s.curl("DELETE", &format!("{svcs}/a"), "application/json", b"")
            .0,
        200
    );
    let (code, body) = s.curl(
        "POST",
        svcs,
        "application/json",
        &svc("e", json!({"clusterIP": ip})),
    );
    assert_eq!(code, 201, "{body}");
}

#[test]
fn discovery_documents() {
    let s = Server::start();
    let (code, body) = s.curl("GET", "/api/v1", "application/json", b"");
    assert_eq!(code, 200);
    let v1 = parse(&body);
    let ev = v1["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods/eviction")
        .unwrap();
    assert_eq!(ev["group"], "policy");
    let root = s.raw_json("/openapi/v3");
    let url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = s.raw_json(&url);
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert!(patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "fieldValidation"));
    let explain = s.ok(&["explain", "deployment.spec.replicas"]);
    assert!(
        explain.contains("replicas") && explain.contains("integer"),
        "{explain}"
    );
}

#[test]
fn events_expire_after_their_ttl() {
    let s = Server::start_with(&["--event-ttl", "2"]);
    let ev = |name: &str, last: &str| {
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "reason": "Test", "message": "m", "type": "Normal", "count": 1,
            "firstTimestamp": last, "lastTimestamp": last})
        .to_string()
        .into_bytes()
    };
    let evs = "/api/v1/namespaces/default/events";
    assert_eq!(
        s.curl(
            "POST",
            evs,
            "application/json",
            &ev("old", "2020-01-01T00:00:00Z")
        )
        .0,
        201
    );
    common::eventually(std::time::Duration::from_secs(15), || {
        (s.curl("GET", &format!("{evs}/old"), "application/json", b"")
            .0
            == 404)
            .then_some(())
    });
}

#[test]
fn watch_from_compacted_revision_is_gone() {
    let s = Server::start_with(&["--compaction-interval", "1"]);
    assert_eq!(s.curl("POST", CMS, "application/json", &cm("c1")).0, 201);
    let rv = s.raw_json(CMS)["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 2..5 {
        assert_eq!(
            s.curl("POST", CMS, "application/json", &cm(&format!("c{i}")))
                .0,
            201
        );
    }
    // Compaction keeps one interval of history: after two intervals the old
    // revision is gone, and a watch from it gets a 410 Expired event.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let (code, body) = s.curl(
        "GET",
        &format!("{CMS}?watch=true&resourceVersion={rv}&timeoutSeconds=1"),
        "application/json",
        b"",
    );
    assert_eq!(code, 200, "{body}");
    let first = parse(body.lines().next().unwrap());
    assert_eq!(first["type"], "ERROR", "{body}");
    assert_eq!(first["object"]["code"], 410);
    assert!(first["object"]["message"]
        .as_str()
        .unwrap()
        .contains("too old resource version"));
    // A list at that exact revision is 410 too; the current state is intact.
    let (code, _) = s.curl(
        "GET",
        &format!("{CMS}?resourceVersion={rv}&resourceVersionMatch=Exact"),
        "application/json",
        b"",
    );
    assert_eq!(code, 410);
    assert_eq!(s.raw_json(CMS)["items"].as_array().unwrap().len(), 4);
}

#[test]
fn watch_initial_events_and_bookmarks() {
    let s = Server::start();
    assert_eq!(s.curl("POST", CMS, "application/json", &cm("w1")).0, 201);
    let (code, body) = s.curl(
        "GET",
        &format!("{CMS}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1"),
        "application/json",
        b"",
    );
    assert_eq!(code, 200, "{body}");
    let events: Vec<Value> = body.lines().map(parse).collect();
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "w1");
    assert_eq!(events[1]["type"], "BOOKMARK");
    assert_eq!(
        events[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
}

#[test]
fn field_validation_warn_and_ignore() {
    let s = Server::start();
    let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"f1"},"data":{"a":"b"},"bogus":1}"#;
    let (code, resp) = s.curl(
        "POST",
        &format!("{CMS}?fieldValidation=Strict"),
        "application/json",
        body,
    );
    assert_eq!(code, 400, "{resp}");
    assert!(
        resp.contains("strict decoding error: unknown field \\\"bogus\\\""),
        "{resp}"
    );
    let dup = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"f2","name":"f2"}}"#;
    let (code, resp) = s.curl(
        "POST",
        &format!("{CMS}?fieldValidation=Strict"),
        "application/json",
        dup,
    );
    assert_eq!(code, 400, "{resp}");
    assert!(resp.contains("duplicate field"), "{resp}");
    let (code, resp) = s.curl(
        "POST",
        &format!("{CMS}?fieldValidation=Ignore"),
        "application/json",
        body,
    );
    assert_eq!(code, 201);
    assert!(
        parse(&resp).get("bogus").is_none(),
        "unknown fields are dropped, not stored: {resp}"
    );
    // A patch is checked by what it produces.
    let (code, resp) = s.curl(
        "PATCH",
        &format!("{CMS}/f1?fieldValidation=Strict"),
        "application/merge-patch+json",
        br#"{"bogus":2}"#,
    );
    assert_eq!(code, 400, "{resp}");
    assert!(s.raw_json(&format!("{CMS}/f1")).get("bogus").is_none());
    let out = s.kubectl_stdin(
        &["create", "--validate=warn", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: f3}\nbogus: 1\n",
    );
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field \"bogus\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn versions_that_share_storage_convert() {
    let s = Server::start();
    let hpa = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60}});
    let (code, body) = s.curl(
        "POST",
        "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers",
        "application/json",
        hpa.to_string().as_bytes(),
    );
    assert_eq!(code, 201, "{body}");
    let v2 = s.raw_json("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web");
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        60
    );
    let v1 = s.raw_json("/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
    assert!(v1["spec"].get("metrics").is_none());

    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "me", "reportingInstance": "me-1",
        "action": "Test", "reason": "Testing", "note": "hello", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "p1", "namespace": "default"}});
    let (code, body) = s.curl(
        "POST",
        "/apis/events.k8s.io/v1/namespaces/default/events",
        "application/json",
        ev.to_string().as_bytes(),
    );
    assert_eq!(code, 201, "{body}");
    let core = s.raw_json("/api/v1/namespaces/default/events/e1");
    assert_eq!(core["message"], "hello");
    assert_eq!(core["involvedObject"]["name"], "p1");
    let listed = s.raw_json(
        "/apis/events.k8s.io/v1/namespaces/default/events?fieldSelector=regarding.name%3Dp1",
    );
    assert_eq!(listed["items"][0]["note"], "hello");
}
