use serde_json::{json, Value};

use super::set::Set;
use super::*;

const DEPLOYMENT: TypeSource<'static> = TypeSource::Builtin {
    group: "apps",
    version: "v1",
    kind: "Deployment",
};
const CONFIGMAP: TypeSource<'static> = TypeSource::Builtin {
    group: "",
    version: "v1",
    kind: "ConfigMap",
};
const SERVICE: TypeSource<'static> = TypeSource::Builtin {
    group: "",
    version: "v1",
    kind: "Service",
};
const T1: &str = "2026-11-28T02:00:00Z";
const T2: &str = "2026-11-28T03:00:00Z";
const T3: &str = "2026-11-28T04:00:00Z";

fn req<'a>(manager: &'a str, types: TypeSource<'a>, time: &'a str) -> Request<'a> {
    let api_version = match types {
        TypeSource::Builtin { group: "apps", .. } => "apps/v1",
        TypeSource::Builtin { .. } => "v1",
        TypeSource::Structural(_) => "example.com/v1",
    };
    Request {
        manager,
        subresource: None,
        api_version,
        time,
        types,
        ignored: &["status"],
    }
}

/// The fieldsV1 of `manager`'s entry with `operation`.
fn fields(obj: &Value, manager: &str, operation: &str) -> Option<Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
        .map(|e| e["fieldsV1"].clone())
}

fn managers(obj: &Value) -> Vec<String> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    format!(
                        "{}/{}",
                        e["manager"].as_str().unwrap(),
                        e["operation"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": image}]},
            },
        },
    })
}

fn apply_ok(live: Option<&Value>, config: &Value, r: &Request) -> Value {
    apply(live, config, r, false).unwrap_or_else(|e| panic!("apply failed: {e}"))
}

fn conflicts(r: Result<Value, ApplyError>) -> Vec<Conflict> {
    match r {
        Err(ApplyError::Conflicts(c)) => c,
        other => panic!("expected conflicts, got {other:?}"),
    }
}

#[test]
fn fields_v1_round_trip() {
    let v = json!({
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}, "f:finalizers": {"v:\"a\"": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"a\"}": {".": {}, "f:image": {}, "f:ports": {
                    "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}
                }}
            }}},
            "f:args": {"i:0": {}},
        },
    });
    let set = Set::from_fields_v1(&v).unwrap();
    assert_eq!(set.to_fields_v1(), v);
    let paths: Vec<String> = set.paths().iter().map(|p| path::path_string(p)).collect();
    assert!(paths.contains(&".spec.template.spec.containers[name=\"a\"].ports[containerPort=80,protocol=\"TCP\"].containerPort".to_string()));
    assert!(paths.contains(&".metadata.finalizers[=\"a\"]".to_string()));
    assert!(paths.contains(&".spec.args[0]".to_string()));
    // Unknown element kinds are skipped, malformed ones are errors.
    assert!(Set::from_fields_v1(&json!({"x:y": {}})).unwrap().is_empty());
    assert!(Set::from_fields_v1(&json!({"k:{bad": {}})).is_err());
}

#[test]
fn create_via_update_records_every_field() {
    let mut obj = deployment(2, "nginx:1");
    let r = Request {
        ignored: &[],
        ..req("kubectl-create", DEPLOYMENT, T1)
    };
    update(None, &mut obj, &r).unwrap();
    let entries = obj["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e["manager"], "kubectl-create");
    assert_eq!(e["operation"], "Update");
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["time"], T1);
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert_eq!(
        e["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {"f:containers": {
                        "k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}
                    }},
                },
            },
        })
    );
}

#[test]
fn update_keeps_tracking_when_the_client_drops_managed_fields() {
    let mut created = deployment(2, "nginx:1");
    update(None, &mut created, &req("kubectl-create", DEPLOYMENT, T1)).unwrap();

    // A client that does not know managedFields sends the object without it.
    let mut edited = deployment(3, "nginx:1");
    update(
        Some(&created),
        &mut edited,
        &req("kubectl-edit", DEPLOYMENT, T2),
    )
    .unwrap();
    assert_eq!(
        managers(&edited),
        ["kubectl-create/Update", "kubectl-edit/Update"]
    );
    assert_eq!(
        fields(&edited, "kubectl-edit", "Update").unwrap(),
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(
        fields(&edited, "kubectl-create", "Update").unwrap()["f:spec"]
            .get("f:replicas")
            .is_none()
    );

    // An explicit empty list resets tracking to this update alone.
    let mut reset = deployment(4, "nginx:1");
    reset["metadata"]["managedFields"] = json!([]);
    update(
        Some(&edited),
        &mut reset,
        &req("kubectl-edit", DEPLOYMENT, T3),
    )
    .unwrap();
    assert_eq!(managers(&reset), ["kubectl-edit/Update"]);

    // An update that changes nothing leaves entries and times alone.
    let mut same = edited.clone();
    update(Some(&edited), &mut same, &req("someone", DEPLOYMENT, T3)).unwrap();
    assert_eq!(same, edited);
}

#[test]
fn apply_conflicts_name_the_owner_and_force_takes_ownership() {
    let a = apply_ok(None, &deployment(2, "nginx:1"), &req("a", DEPLOYMENT, T1));
    assert_eq!(managers(&a), ["a/Apply"]);
    assert_eq!(a["metadata"]["managedFields"][0]["time"], T1);

    let err = apply(
        Some(&a),
        &deployment(3, "nginx:1"),
        &req("b", DEPLOYMENT, T2),
        false,
    );
    let c = conflicts(err);
    assert_eq!(
        c,
        [Conflict {
            manager: "a".into(),
            api_version: "apps/v1".into(),
            field: ".spec.replicas".into(),
            operation: "Apply".into(),
            subresource: None,
        }]
    );
    assert_eq!(
        conflict_message(&c),
        "Apply failed with 1 conflict: conflict with \"a\": .spec.replicas"
    );
    assert_eq!(
        conflict_causes(&c),
        [(
            "conflict with \"a\"".to_string(),
            ".spec.replicas".to_string()
        )]
    );

    let forced = apply(
        Some(&a),
        &deployment(3, "nginx:1"),
        &req("b", DEPLOYMENT, T2),
        true,
    )
    .unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    assert!(fields(&forced, "a", "Apply").unwrap()["f:spec"]
        .get("f:replicas")
        .is_none());
    assert!(fields(&forced, "b", "Apply").unwrap()["f:spec"]
        .get("f:replicas")
        .is_some());
    // The image is applied by both with the same value: shared.
    let image = |m| {
        fields(&forced, m, "Apply").unwrap()["f:spec"]["f:template"]["f:spec"]["f:containers"]
            ["k:{\"name\":\"nginx\"}"]
            .get("f:image")
            .is_some()
    };
    assert!(image("a") && image("b"));
}

#[test]
fn conflicts_with_updaters_name_their_version_and_group_by_owner() {
    let mut live = deployment(2, "nginx:1");
    update(
        None,
        &mut live,
        &req("kubectl-client-side-apply", DEPLOYMENT, T1),
    )
    .unwrap();
    let c = conflicts(apply(
        Some(&live),
        &deployment(3, "nginx:2"),
        &req("kubectl", DEPLOYMENT, T2),
        false,
    ));
    assert_eq!(c.len(), 2);
    assert_eq!(
        conflict_message(&c),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n\
         - .spec.replicas\n\
         - .spec.template.spec.containers[name=\"nginx\"].image"
    );
    assert_eq!(
        conflict_causes(&c)[1],
        (
            "conflict with \"kubectl-client-side-apply\" using apps/v1".to_string(),
            ".spec.template.spec.containers[name=\"nginx\"].image".to_string()
        )
    );
    let one = Conflict {
        subresource: Some("status".into()),
        ..c[0].clone()
    };
    assert_eq!(
        conflict_message(&[one]),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" with subresource \"status\" using apps/v1: .spec.replicas"
    );
}

#[test]
fn appliers_of_the_same_value_share_ownership() {
    let a = apply_ok(None, &deployment(2, "nginx:1"), &req("a", DEPLOYMENT, T1));
    let b = apply_ok(
        Some(&a),
        &deployment(2, "nginx:1"),
        &req("b", DEPLOYMENT, T2),
    );
    assert_eq!(managers(&b), ["a/Apply", "b/Apply"]);
    assert_eq!(fields(&b, "a", "Apply"), fields(&b, "b", "Apply"));
    // The object did not change, the ownership did: a write, with b's time.
    assert_eq!(b["spec"], a["spec"]);
    assert_eq!(b["metadata"]["managedFields"][0]["time"], T1);
    assert_eq!(b["metadata"]["managedFields"][1]["time"], T2);
}

#[test]
fn fields_an_applier_stops_applying_are_removed_unless_owned() {
    let mut config = deployment(2, "nginx:1");
    config["metadata"]["labels"] = json!({"app": "web", "tier": "front", "team": "x"});
    config["spec"]["template"]["spec"]["containers"] =
        json!([{"name": "nginx", "image": "nginx:1"}, {"name": "sidecar", "image": "busybox"}]);
    let a = apply_ok(None, &config, &req("a", DEPLOYMENT, T1));

    // b also applies the `team` label.
    let b_config = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"team": "x"}},
    });
    let live = apply_ok(Some(&a), &b_config, &req("b", DEPLOYMENT, T2));

    // a drops the tier and team labels and the sidecar.
    let out = apply_ok(
        Some(&live),
        &deployment(2, "nginx:1"),
        &req("a", DEPLOYMENT, T3),
    );
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "web", "team": "x"})
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "nginx", "image": "nginx:1"}])
    );
    assert_eq!(
        fields(&out, "b", "Apply").unwrap(),
        json!({"f:metadata": {"f:labels": {"f:team": {}}}})
    );
    // Dropping everything of a container list leaves no list behind.
    let mut no_containers = deployment(2, "nginx:1");
    no_containers["spec"]["template"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("containers");
    let out = apply_ok(Some(&out), &no_containers, &req("a", DEPLOYMENT, T3));
    assert!(out["spec"]["template"]["spec"].get("containers").is_none());
}

#[test]
fn fields_set_by_updaters_survive_an_applier_dropping_them() {
    let mut config = deployment(2, "nginx:1");
    config["metadata"]["annotations"] = json!({"note": "x"});
    let a = apply_ok(None, &config, &req("a", DEPLOYMENT, T1));
    // An updater changes the annotation: it now owns it.
    let mut edited = a.clone();
    edited["metadata"]["annotations"]["note"] = json!("y");
    update(Some(&a), &mut edited, &req("kubectl-edit", DEPLOYMENT, T2)).unwrap();
    assert!(fields(&edited, "a", "Apply").unwrap()["f:metadata"]
        .get("f:annotations")
        .is_none());
    let out = apply_ok(
        Some(&edited),
        &deployment(2, "nginx:1"),
        &req("a", DEPLOYMENT, T3),
    );
    assert_eq!(out["metadata"]["annotations"], json!({"note": "y"}));
}

#[test]
fn associative_lists_merge_by_key() {
    let mut config = deployment(1, "nginx:1");
    config["spec"]["template"]["spec"]["containers"] = json!([{
        "name": "nginx", "image": "nginx:1",
        "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
        "env": [{"name": "A", "value": "1"}],
    }]);
    let a = apply_ok(None, &config, &req("a", DEPLOYMENT, T1));
    let container = &fields(&a, "a", "Apply").unwrap()["f:spec"]["f:template"]["f:spec"]
        ["f:containers"]["k:{\"name\":\"nginx\"}"];
    // `protocol` defaults to TCP in the key.
    assert!(container["f:ports"]
        .get("k:{\"containerPort\":80,\"protocol\":\"TCP\"}")
        .is_some());
    assert!(container["f:ports"]
        .get("k:{\"containerPort\":53,\"protocol\":\"UDP\"}")
        .is_some());
    assert_eq!(
        container["f:env"]["k:{\"name\":\"A\"}"],
        json!({".": {}, "f:name": {}, "f:value": {}})
    );

    // b adds a container, an env var and a port to nginx, without touching a's.
    let b_config = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "image": "busybox"},
            {"name": "nginx", "env": [{"name": "B", "value": "2"}], "ports": [{"containerPort": 8080}]},
        ]}}},
    });
    let b = apply_ok(Some(&a), &b_config, &req("b", DEPLOYMENT, T2));
    let containers = &b["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().unwrap().len(), 2);
    // Upstream order: new config items go before the shared item they
    // precede in the config.
    assert_eq!(containers[0]["name"], "sidecar");
    assert_eq!(containers[1]["name"], "nginx");
    assert_eq!(containers[1]["image"], "nginx:1");
    assert_eq!(
        containers[1]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    );
    assert_eq!(
        containers[1]["ports"],
        json!([{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}, {"containerPort": 8080}])
    );
    // Changing a's env value is a conflict on that item's field only.
    let mut a2 = config.clone();
    a2["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = json!("9");
    let ok = apply_ok(Some(&b), &a2, &req("a", DEPLOYMENT, T3));
    assert_eq!(
        ok["spec"]["template"]["spec"]["containers"][1]["env"][0]["value"],
        "9"
    );
    let mut b2 = b_config.clone();
    b2["spec"]["template"]["spec"]["containers"][1]["image"] = json!("nginx:2");
    let c = conflicts(apply(Some(&ok), &b2, &req("b", DEPLOYMENT, T3), false));
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0].field,
        ".spec.template.spec.containers[name=\"nginx\"].image"
    );
}

#[test]
fn service_ports_merge_by_port_and_protocol() {
    let svc = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    });
    let a = apply_ok(None, &svc, &req("a", SERVICE, T1));
    let ports = &fields(&a, "a", "Apply").unwrap()["f:spec"]["f:ports"];
    assert_eq!(
        ports["k:{\"port\":80,\"protocol\":\"TCP\"}"],
        json!({".": {}, "f:port": {}, "f:targetPort": {}})
    );
    // A Service's selector is an atomic map.
    assert_eq!(
        fields(&a, "a", "Apply").unwrap()["f:spec"]["f:selector"],
        json!({})
    );
}

#[test]
fn update_by_another_manager_takes_changed_fields() {
    let a = apply_ok(None, &deployment(2, "nginx:1"), &req("a", DEPLOYMENT, T1));
    let mut scaled = a.clone();
    scaled["spec"]["replicas"] = json!(5);
    update(
        Some(&a),
        &mut scaled,
        &req("kube-controller-manager", DEPLOYMENT, T2),
    )
    .unwrap();
    assert_eq!(
        fields(&scaled, "kube-controller-manager", "Update").unwrap(),
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(fields(&scaled, "a", "Apply").unwrap()["f:spec"]
        .get("f:replicas")
        .is_none());
    // a's entry kept its time: only the updater's changed.
    assert_eq!(scaled["metadata"]["managedFields"][0]["time"], T1);
    assert_eq!(scaled["metadata"]["managedFields"][1]["time"], T2);
    // a re-applying its old value now conflicts with the updater.
    let c = conflicts(apply(
        Some(&scaled),
        &deployment(2, "nginx:1"),
        &req("a", DEPLOYMENT, T3),
        false,
    ));
    assert_eq!(c[0].manager, "kube-controller-manager");
    assert_eq!(c[0].operation, "Update");
    // Removing a field takes it from every set.
    let mut removed = scaled.clone();
    removed["spec"].as_object_mut().unwrap().remove("replicas");
    update(
        Some(&scaled),
        &mut removed,
        &req("kubectl-edit", DEPLOYMENT, T3),
    )
    .unwrap();
    assert_eq!(managers(&removed), ["a/Apply"]);
}

#[test]
fn no_op_apply_returns_live_unchanged() {
    let a = apply_ok(None, &deployment(2, "nginx:1"), &req("a", DEPLOYMENT, T1));
    let again = apply_ok(
        Some(&a),
        &deployment(2, "nginx:1"),
        &req("a", DEPLOYMENT, T2),
    );
    assert_eq!(again, a);
    // Also with status set by the controller (ignored by the main resource).
    let mut with_status = a.clone();
    with_status["status"] = json!({"replicas": 2});
    let mut config = deployment(2, "nginx:1");
    config["status"] = json!({"replicas": 7});
    let again = apply_ok(Some(&with_status), &config, &req("a", DEPLOYMENT, T2));
    assert_eq!(again, with_status);
}

#[test]
fn ignored_fields_are_not_owned_or_compared() {
    let mut live = deployment(2, "nginx:1");
    live["status"] = json!({"replicas": 2});
    let status_req = Request {
        subresource: Some("status"),
        ignored: &["spec", "metadata"],
        ..req("kube-controller-manager", DEPLOYMENT, T1)
    };
    let mut new = live.clone();
    new["status"]["replicas"] = json!(3);
    new["spec"]["replicas"] = json!(9); // the endpoint resets it; never owned
    update(None, &mut new, &status_req).unwrap();
    let e = &new["metadata"]["managedFields"][0];
    assert_eq!(e["subresource"], "status");
    assert_eq!(e["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));

    // An applier on the main resource never owns status.
    let mut config = deployment(2, "nginx:1");
    config["status"] = json!({"replicas": 5});
    let a = apply_ok(Some(&new), &config, &req("a", DEPLOYMENT, T2));
    assert!(fields(&a, "a", "Apply").unwrap().get("f:status").is_none());
    assert_eq!(a["status"], json!({"replicas": 3}));
    assert!(fields(&a, "kube-controller-manager", "Update").is_some());
}

#[test]
fn configmap_data_is_a_granular_map() {
    let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
    let a = apply_ok(
        None,
        &cm(json!({"a": "1", "b": "2"})),
        &req("a", CONFIGMAP, T1),
    );
    let b = apply_ok(Some(&a), &cm(json!({"c": "3"})), &req("b", CONFIGMAP, T2));
    assert_eq!(b["data"], json!({"a": "1", "b": "2", "c": "3"}));
    let out = apply_ok(Some(&b), &cm(json!({"a": "1"})), &req("a", CONFIGMAP, T3));
    assert_eq!(out["data"], json!({"a": "1", "c": "3"}));
    assert_eq!(
        fields(&out, "a", "Apply").unwrap(),
        json!({"f:data": {"f:a": {}}})
    );
    // A null in the config is an absent value.
    let out2 = apply_ok(
        Some(&out),
        &cm(json!({"a": "1", "c": null})),
        &req("a", CONFIGMAP, T3),
    );
    assert_eq!(out2, out);
}

#[test]
fn invalid_configurations_are_rejected() {
    let r = req("a", DEPLOYMENT, T1);
    // Refused both on create and onto a live object the manager applied
    // before (where typing is checked after the no-op test).
    let live = apply_ok(None, &deployment(1, "x"), &r);
    let invalid = |cfg: Value| {
        let on_live = apply(Some(&live), &cfg, &r, false);
        match apply(None, &cfg, &r, false) {
            Err(ApplyError::Invalid(m)) => {
                assert!(
                    matches!(on_live, Err(ApplyError::Invalid(_))),
                    "{on_live:?}"
                );
                m
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    };
    let mut no_name = deployment(1, "x");
    no_name["spec"]["template"]["spec"]["containers"] = json!([{"image": "x"}]);
    assert_eq!(
        invalid(no_name),
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): \
         .spec.template.spec.containers: element 0: associative list with keys has an element \
         that omits all key fields [\"name\"] (and doesn't have default values for any key fields)"
    );
    let mut dup = deployment(1, "x");
    dup["spec"]["template"]["spec"]["containers"] = json!([{"name": "a"}, {"name": "a"}]);
    assert!(invalid(dup)
        .ends_with(".spec.template.spec.containers: duplicate entries for key [name=\"a\"]"));
    let mut wrong = deployment(1, "x");
    wrong["spec"]["template"] = json!([1]);
    wrong["spec"]["replicas"] = json!("two");
    assert!(invalid(wrong).ends_with(
        "errors:\n  .spec.replicas: expected numeric (int or float), got string\n  .spec.template: expected map, got [1]"
    ));
    let mut unknown = deployment(1, "x");
    unknown["spec"]["bogus"] = json!(1);
    assert!(invalid(unknown).ends_with(".spec.bogus: field not declared in schema"));
    assert!(invalid(json!({"kind": "Deployment"})).contains("'apiVersion' is missing"));
    assert!(invalid(json!({"apiVersion": "apps/v1"})).contains("'Kind' is missing"));
    let mut with_mf = deployment(1, "x");
    with_mf["metadata"]["managedFields"] = json!([]);
    assert_eq!(invalid(with_mf), "metadata.managedFields must be nil");
    let mut v2 = deployment(1, "x");
    v2["apiVersion"] = json!("apps/v2");
    assert!(invalid(v2).starts_with("Incorrect version specified in apply patch"));
}

fn widget_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "size": {"type": "integer"},
                    "owner": {"type": "object", "properties": {"name": {"type": "string"}, "team": {"type": "string"}}},
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}},
                    },
                    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                    "args": {"type": "array", "items": {"type": "string"}},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "target": {"x-kubernetes-int-or-string": true},
                },
            },
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
        },
    })
}

#[test]
fn custom_resources_use_their_structural_schema() {
    let schema = widget_schema();
    let types = TypeSource::Structural(&schema);
    let widget = |spec: Value| {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
               "metadata": {"name": "w", "labels": {"a": "b"}}, "spec": spec})
    };
    let a = apply_ok(
        None,
        &widget(json!({
            "size": 1, "owner": {"name": "x"},
            "ports": [{"name": "http", "port": 80}],
            "tags": ["blue"], "args": ["-v"],
            "extra": {"deep": {"k": "v"}, "list": [1, 2]},
            "target": "50%",
        })),
        &req("a", types, T1),
    );
    assert_eq!(
        fields(&a, "a", "Apply").unwrap(),
        json!({
            "f:metadata": {"f:labels": {"f:a": {}}},
            "f:spec": {
                "f:size": {}, "f:owner": {"f:name": {}},
                "f:ports": {"k:{\"name\":\"http\"}": {".": {}, "f:name": {}, "f:port": {}}},
                "f:tags": {"v:\"blue\"": {}}, "f:args": {},
                "f:extra": {"f:deep": {".": {}, "f:k": {}}, "f:list": {}},
                "f:target": {},
            },
        })
    );
    let b = apply_ok(
        Some(&a),
        &widget(
            json!({"owner": {"team": "t"}, "ports": [{"name": "grpc", "port": 90}],
                       "tags": ["red"], "extra": {"deep": {"j": "w"}}}),
        ),
        &req("b", types, T2),
    );
    assert_eq!(b["spec"]["owner"], json!({"name": "x", "team": "t"}));
    assert_eq!(
        b["spec"]["ports"],
        json!([{"name": "http", "port": 80}, {"name": "grpc", "port": 90}])
    );
    assert_eq!(b["spec"]["tags"], json!(["blue", "red"]));
    assert_eq!(b["spec"]["extra"]["deep"], json!({"j": "w", "k": "v"}));
    // Atomic lists conflict as a whole.
    let c = conflicts(apply(
        Some(&b),
        &widget(json!({"args": ["-q"]})),
        &req("b", types, T3),
        false,
    ));
    assert_eq!(c[0].field, ".spec.args");
    // Created through update, a custom resource's nested objects are members.
    let mut created = widget(json!({"size": 1}));
    update(None, &mut created, &req("kubectl-create", types, T1)).unwrap();
    assert_eq!(
        fields(&created, "kubectl-create", "Update").unwrap(),
        json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}}}, "f:spec": {".": {}, "f:size": {}}})
    );
}

#[test]
fn managed_fields_sort_like_upstream() {
    let a = apply_ok(
        None,
        &deployment(2, "nginx:1"),
        &req("z-applier", DEPLOYMENT, T2),
    );
    let mut up = a.clone();
    up["spec"]["replicas"] = json!(3);
    update(Some(&a), &mut up, &req("a-updater", DEPLOYMENT, T1)).unwrap();
    let mut cfg = deployment(3, "nginx:1");
    cfg["metadata"]["labels"]["x"] = json!("y");
    let b = apply(Some(&up), &cfg, &req("b-applier", DEPLOYMENT, T3), true).unwrap();
    // Apply entries first, then by time.
    assert_eq!(
        managers(&b),
        ["z-applier/Apply", "b-applier/Apply", "a-updater/Update"]
    );
}

#[test]
fn old_updaters_are_merged_into_ancient_changes() {
    let mut obj = deployment(1, "nginx:1");
    update(None, &mut obj, &req("creator", DEPLOYMENT, T1)).unwrap();
    let times: Vec<String> = (0..12)
        .map(|i| format!("2026-11-28T05:{i:02}:00Z"))
        .collect();
    for (i, time) in times.iter().enumerate() {
        let mut next = obj.clone();
        next["metadata"]["labels"][format!("l{i}")] = json!("x");
        let name = format!("updater-{i:02}");
        update(Some(&obj), &mut next, &req(&name, DEPLOYMENT, time)).unwrap();
        obj = next;
    }
    let names = managers(&obj);
    assert_eq!(names.len(), 10, "{names:?}");
    assert_eq!(names[0], "ancient-changes/Update");
    let ancient = fields(&obj, "ancient-changes", "Update").unwrap();
    // The creator's fields and the oldest updaters' labels are kept there.
    assert!(ancient["f:spec"].get("f:replicas").is_some());
    assert!(ancient["f:metadata"]["f:labels"].get("f:l0").is_some());
    assert_eq!(names[9], "updater-11/Update");
}

#[test]
fn re_apply_sees_the_same_set_it_recorded() {
    let r = req("bench", DEPLOYMENT, T1);
    let mut config = deployment(2, "nginx:1");
    config["spec"]["template"]["spec"]["containers"][0]["ports"] =
        json!([{"containerPort": 8080, "name": "http"}]);
    config["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "MODE", "value": "p"}]);
    config["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": "100m"}});
    let created = apply_ok(None, &config, &r);
    let recorded = managed::decode(managed::raw(&created).unwrap()).unwrap();
    let schema = Schema::root(&DEPLOYMENT);
    let applied = to_field_set(&config, &schema)
        .recursive_difference(&Set::of_fields(["status"]))
        .difference(&managed::stripped_fields());
    // What the no-op fast path compares: equal, so a re-apply is answered
    // from the live object.
    assert_eq!(recorded[0].set, applied);
    let again = apply_ok(Some(&created), &config, &req("bench", DEPLOYMENT, T2));
    assert_eq!(again, created);
}

/// `cargo test --release -p resources noop_apply_cost -- --ignored --nocapture`
#[test]
#[ignore = "timing, for profiling by hand"]
fn noop_apply_cost() {
    let r = req("bench", DEPLOYMENT, T1);
    let mut config = deployment(2, "nginx:1");
    config["spec"]["template"]["spec"]["containers"][0]["ports"] =
        json!([{"containerPort": 8080, "name": "http"}]);
    config["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "MODE", "value": "p"}, {"name": "LOG", "value": "info"}]);
    let live = apply_ok(None, &config, &r);
    let n = 20_000;
    let t = std::time::Instant::now();
    for _ in 0..n {
        let out = apply(Some(&live), &config, &r, false).unwrap();
        assert!(out == live);
    }
    eprintln!("no-op apply: {:?} per call", t.elapsed() / n);
    let t = std::time::Instant::now();
    for _ in 0..n {
        let mut o = live.clone();
        update(None, &mut o, &r).unwrap();
    }
    eprintln!("create tracking: {:?} per call", t.elapsed() / n);
}
