//! Bodies built with k8s-pb's prost structs (prost writes `Some("")` the way
//! Go writes a value field, so zero values are on the wire as kubectl sends
//! them), and bodies kubectl 1.33 really sent (`testdata/`, captured against a
//! recording stub).

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::authorization::v1 as authz;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message as _;
use serde_json::{json, Value};

use super::{decode, decode_message, DecodeError};

/// `k8s\0` + runtime.Unknown around an encoded object.
fn envelope(api_version: &str, kind: &str, object: &impl prost::Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

/// Decodes `body` and compares with `want`, printing both on mismatch.
fn check(body: &[u8], want: Value) {
    let got = decode(body).unwrap_or_else(|e| panic!("decode failed: {e}"));
    assert_eq!(got, want, "\n got: {got:#}\nwant: {want:#}");
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// ObjectMeta as Go writes it: every value field present, zero or not.
fn meta(name: &str, namespace: &str, labels: &[(&str, &str)]) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(namespace),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    })
}

/// A body kubectl sent, kept under `testdata/`.
macro_rules! testdata {
    ($name:literal) => {
        include_bytes!(concat!("testdata/", $name)).as_slice()
    };
}

#[test]
fn configmap_with_data() {
    let cm = core::ConfigMap {
        metadata: meta("x", "default", &[]),
        data: [("a".to_string(), "b".to_string())].into(),
        immutable: Some(false),
        ..Default::default()
    };
    check(
        &envelope("v1", "ConfigMap", &cm),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "x", "namespace": "default"},
               "data": {"a": "b"}, "immutable": false}),
    );
}

#[test]
fn secret_with_binary_data() {
    let secret = core::Secret {
        metadata: meta("s", "", &[]),
        data: [("p".to_string(), vec![0u8, 159, 146, 150])].into(),
        r#type: s("Opaque"),
        ..Default::default()
    };
    check(
        &envelope("v1", "Secret", &secret),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
               "data": {"p": "AJ+Slg=="}, "type": "Opaque"}),
    );
}

#[test]
fn namespace_with_empty_spec_and_status() {
    let ns = core::Namespace {
        metadata: meta("n", "", &[]),
        spec: Some(core::NamespaceSpec::default()),
        status: Some(core::NamespaceStatus {
            phase: s(""),
            ..Default::default()
        }),
    };
    check(
        &envelope("v1", "Namespace", &ns),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"},
               "spec": {}, "status": {}}),
    );
}

fn container(name: &str, image: &str) -> core::Container {
    core::Container {
        name: s(name),
        image: s(image),
        working_dir: s(""),
        termination_message_path: s(""),
        image_pull_policy: s(""),
        stdin: Some(false),
        tty: Some(false),
        ..Default::default()
    }
}

#[test]
fn deployment_with_replicas_selector_template_and_resources() {
    let labels = [("app", "web")];
    let mut c = container("web", "nginx:1.27");
    c.ports = vec![core::ContainerPort {
        name: s(""),
        host_port: Some(0),
        container_port: Some(80),
        protocol: s("TCP"),
        host_ip: s(""),
    }];
    c.resources = Some(core::ResourceRequirements {
        limits: [("memory".to_string(), Quantity { string: s("128Mi") })].into(),
        requests: [("cpu".to_string(), Quantity { string: s("100m") })].into(),
        ..Default::default()
    });
    c.security_context = Some(core::SecurityContext {
        run_as_user: Some(0),
        allow_privilege_escalation: Some(false),
        ..Default::default()
    });
    let pod_spec = core::PodSpec {
        containers: vec![c],
        volumes: vec![core::Volume {
            name: s("scratch"),
            volume_source: Some(core::VolumeSource {
                empty_dir: Some(core::EmptyDirVolumeSource::default()),
                ..Default::default()
            }),
        }],
        restart_policy: s(""),
        dns_policy: s(""),
        service_account_name: s(""),
        host_network: Some(false),
        termination_grace_period_seconds: Some(0),
        ..Default::default()
    };
    let d = apps::Deployment {
        metadata: meta("web", "default", &labels),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: [("app".to_string(), "web".to_string())].into(),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: meta("", "", &labels),
                spec: Some(pod_spec),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s(""),
                rolling_update: None,
            }),
            min_ready_seconds: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus::default()),
    };
    check(
        &envelope("apps/v1", "Deployment", &d),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "web", "image": "nginx:1.27",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "100m"}},
                            "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": false},
                        }],
                        "volumes": [{"name": "scratch", "emptyDir": {}}],
                        "terminationGracePeriodSeconds": 0,
                    },
                },
                "strategy": {},
            },
            "status": {}}),
    );
}

#[test]
fn service_with_cluster_ip_and_int_or_string_ports() {
    let port = |name: &str, port: i32, target: IntOrString| core::ServicePort {
        name: s(name),
        protocol: s("TCP"),
        port: Some(port),
        target_port: Some(target),
        node_port: Some(0),
        app_protocol: None,
    };
    let svc = core::Service {
        metadata: meta("s", "", &[("app", "s")]),
        spec: Some(core::ServiceSpec {
            ports: vec![
                port(
                    "http",
                    80,
                    IntOrString {
                        r#type: Some(0),
                        int_val: Some(8080),
                        str_val: s(""),
                    },
                ),
                port(
                    "metrics",
                    9090,
                    IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("metrics"),
                    },
                ),
            ],
            selector: [("app".to_string(), "s".to_string())].into(),
            cluster_ip: s("10.43.0.10"),
            cluster_ips: vec!["10.43.0.10".into()],
            r#type: s("ClusterIP"),
            session_affinity: s(""),
            load_balancer_ip: s(""),
            external_name: s(""),
            external_traffic_policy: s(""),
            health_check_node_port: Some(0),
            publish_not_ready_addresses: Some(false),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus {
            load_balancer: Some(core::LoadBalancerStatus::default()),
            ..Default::default()
        }),
    };
    check(
        &envelope("v1", "Service", &svc),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "labels": {"app": "s"}},
            "spec": {
                "ports": [
                    {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                    {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": "metrics"},
                ],
                "selector": {"app": "s"},
                "clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"], "type": "ClusterIP",
            },
            "status": {"loadBalancer": {}}}),
    );
}

#[test]
fn self_subject_access_review() {
    let ssar = authz::SelfSubjectAccessReview {
        metadata: meta("", "", &[]),
        spec: Some(authz::SelfSubjectAccessReviewSpec {
            resource_attributes: Some(authz::ResourceAttributes {
                namespace: s("default"),
                verb: s("create"),
                group: s(""),
                version: s(""),
                resource: s("pods"),
                subresource: s(""),
                name: s(""),
                ..Default::default()
            }),
            non_resource_attributes: None,
        }),
        status: Some(authz::SubjectAccessReviewStatus {
            allowed: Some(false),
            reason: s(""),
            evaluation_error: s(""),
            denied: Some(false),
        }),
    };
    check(
        &envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", &ssar),
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}},
            "status": {"allowed": false}}),
    );
}

#[test]
fn delete_options_in_any_group() {
    let opts = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        propagation_policy: s("Foreground"),
        dry_run: vec!["All".into()],
        ..Default::default()
    };
    let want = |api_version: &str| {
        json!({"apiVersion": api_version, "kind": "DeleteOptions",
               "gracePeriodSeconds": 0, "propagationPolicy": "Foreground", "dryRun": ["All"]})
    };
    for api_version in ["meta.k8s.io/v1", "v1", "apps/v1"] {
        check(
            &envelope(api_version, "DeleteOptions", &opts),
            want(api_version),
        );
    }
}

#[test]
fn times_durations_and_raw_extensions() {
    let event = k8s_pb::api::events::v1::Event {
        metadata: meta("e", "default", &[]),
        event_time: Some(meta::MicroTime {
            seconds: Some(1_704_164_705),
            nanos: Some(123_456_789),
        }),
        deprecated_first_timestamp: Some(meta::Time {
            seconds: Some(1_704_164_705),
            nanos: Some(0),
        }),
        deprecated_last_timestamp: Some(meta::Time::default()),
        reason: s("Started"),
        ..Default::default()
    };
    check(
        &envelope("events.k8s.io/v1", "Event", &event),
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "eventTime": "2024-01-02T03:05:05.123456Z",
            "deprecatedFirstTimestamp": "2024-01-02T03:05:05Z",
            "deprecatedLastTimestamp": null,
            "reason": "Started"}),
    );

    let rev = apps::ControllerRevision {
        metadata: meta("r", "", &[]),
        data: Some(RawExtension {
            raw: Some(br#"{"spec":{"replicas":3}}"#.to_vec()),
        }),
        revision: Some(2),
    };
    check(
        &envelope("apps/v1", "ControllerRevision", &rev),
        json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"},
               "data": {"spec": {"replicas": 3}}, "revision": 2}),
    );

    let timeout = meta::Duration {
        duration: Some(90_500_000_000),
    };
    assert_eq!(
        decode_message(
            "io.k8s.apimachinery.pkg.apis.meta.v1.Duration",
            &timeout.encode_to_vec()
        )
        .unwrap(),
        json!("1m30.5s")
    );
}

#[test]
fn crd_schema_special_forms() {
    use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
    let props = apiext::JsonSchemaProps {
        r#type: s("object"),
        x_kubernetes_preserve_unknown_fields: Some(true),
        additional_properties: Some(Box::new(apiext::JsonSchemaPropsOrBool {
            allows: Some(false),
            schema: None,
        })),
        items: Some(Box::new(apiext::JsonSchemaPropsOrArray {
            schema: Some(Box::new(apiext::JsonSchemaProps {
                r#type: s("string"),
                ..Default::default()
            })),
            j_son_schemas: vec![],
        })),
        default: Some(apiext::Json {
            raw: Some(br#"{"a":1}"#.to_vec()),
        }),
        ..Default::default()
    };
    assert_eq!(
        decode_message(
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
            &props.encode_to_vec()
        )
        .unwrap(),
        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
               "additionalProperties": false, "items": {"type": "string"}, "default": {"a": 1}})
    );
}

#[test]
fn names_come_from_go_tags_not_prost() {
    let status = core::PodStatus {
        pod_ip: s("10.42.0.5"),
        pod_ips: vec![core::PodIp { ip: s("10.42.0.5") }],
        host_ip: s("192.168.1.2"),
        qos_class: s("BestEffort"),
        ..Default::default()
    };
    assert_eq!(
        decode_message("io.k8s.api.core.v1.PodStatus", &status.encode_to_vec()).unwrap(),
        json!({"podIP": "10.42.0.5", "podIPs": [{"ip": "10.42.0.5"}],
               "hostIP": "192.168.1.2", "qosClass": "BestEffort"})
    );
    let hpa = k8s_pb::api::autoscaling::v1::HorizontalPodAutoscalerSpec {
        target_cpu_utilization_percentage: Some(80),
        max_replicas: Some(3),
        ..Default::default()
    };
    assert_eq!(
        decode_message(
            "io.k8s.api.autoscaling.v1.HorizontalPodAutoscalerSpec",
            &hpa.encode_to_vec()
        )
        .unwrap(),
        json!({"maxReplicas": 3, "targetCPUUtilizationPercentage": 80})
    );
}

#[test]
fn unknown_fields_are_skipped_and_empty_messages_are_objects() {
    let mut bytes = core::EmptyDirVolumeSource::default().encode_to_vec();
    bytes.extend([0xf8, 0x06, 0x01]); // field 111, varint 1
    assert_eq!(
        decode_message("io.k8s.api.core.v1.EmptyDirVolumeSource", &bytes).unwrap(),
        json!({})
    );
}

#[test]
fn errors_are_reported() {
    assert!(matches!(decode(b"{}"), Err(DecodeError::MissingMagic)));
    assert!(matches!(
        decode(&envelope(
            "example.com/v1",
            "Widget",
            &core::ConfigMap::default()
        )),
        Err(DecodeError::UnknownKind { .. })
    ));
    assert!(matches!(
        decode_message("io.k8s.api.core.v1.Nope", &[]),
        Err(DecodeError::UnknownType(_))
    ));
    let mut truncated = envelope("v1", "ConfigMap", &core::ConfigMap::default());
    truncated.push(0x12); // raw: length missing
    assert!(matches!(
        decode(&truncated),
        Err(DecodeError::Malformed { .. })
    ));
    // ConfigMap.metadata (1) sent as a varint.
    let err = decode_message("io.k8s.api.core.v1.ConfigMap", &[0x08, 0x01]).unwrap_err();
    assert!(err.to_string().contains("ConfigMap.metadata"), "{err}");
    // JSONSchemaProps.not (tag 28) nested 150 deep.
    let deep = (0..150).fold(Vec::new(), |inner: Vec<u8>, _| {
        let mut out = vec![0xe2, 0x01];
        prost::encoding::encode_varint(inner.len() as u64, &mut out);
        out.extend(inner);
        out
    });
    let schema = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps";
    assert!(matches!(
        decode_message(schema, &deep),
        Err(DecodeError::TooDeep)
    ));
}

#[test]
fn kubectl_create_configmap() {
    check(
        testdata!("create-configmap.pb"),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "x", "namespace": "default"}, "data": {"a": "b"}}),
    );
}

#[test]
fn kubectl_create_secret_generic() {
    check(
        testdata!("create-secret-generic.pb"),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "s", "namespace": "default"}, "data": {"p": "cQ=="}}),
    );
}

#[test]
fn kubectl_create_namespace() {
    check(
        testdata!("create-namespace.pb"),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"},
               "spec": {}, "status": {}}),
    );
}

#[test]
fn kubectl_create_service_clusterip() {
    check(
        testdata!("create-service-clusterip.pb"),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "namespace": "default", "labels": {"app": "s"}},
            "spec": {
                "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                "selector": {"app": "s"},
                "type": "ClusterIP",
            },
            "status": {"loadBalancer": {}}}),
    );
}

#[test]
fn kubectl_create_deployment() {
    check(
        testdata!("create-deployment.pb"),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "default", "labels": {"app": "d"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "d"}},
                "template": {
                    "metadata": {"labels": {"app": "d"}},
                    "spec": {"containers": [{"name": "busybox", "image": "busybox", "resources": {}}]},
                },
                "strategy": {},
            },
            "status": {}}),
    );
}

#[test]
fn kubectl_auth_can_i() {
    check(
        testdata!("auth-can-i.pb"),
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}},
            "status": {"allowed": false}}),
    );
}

#[test]
fn kubectl_drain_delete_options() {
    check(
        testdata!("drain-delete-pod.pb"),
        json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 5}),
    );
}

#[test]
fn kubectl_create_job_and_role() {
    let job = decode(testdata!("create-job.pb")).unwrap();
    assert_eq!(job["kind"], "Job");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"],
        json!(["echo", "hi"])
    );
    let role = decode(testdata!("create-role.pb")).unwrap();
    assert_eq!(
        role["rules"],
        json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}])
    );
}

#[test]
fn every_table_entry_is_consistent() {
    let all = super::schema::messages();
    assert!(all.windows(2).all(|w| w[0].name < w[1].name));
    for m in all {
        assert!(
            m.fields.windows(2).all(|w| w[0].tag < w[1].tag),
            "{}",
            m.name
        );
        for f in m.fields {
            if let super::schema::Ty::Msg(i) = f.ty {
                assert!(usize::from(i) < all.len());
            }
        }
    }
}
