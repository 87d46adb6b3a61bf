//! Kubernetes' v1 defaulting (`SetObjectDefaults_*`) applied in place to
//! objects in their wire form. Called by the API server before validation on
//! create and update; running it twice changes nothing.

#[cfg(test)]
mod tests;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// Apply the v1 defaults of `group`/`kind` to `obj` in place. Unknown kinds
/// are left alone.
pub fn apply_defaults(group: &str, kind: &str, obj: &mut Value) {
    if (group, kind) == (crate::apiextensions::GROUP, "CustomResourceDefinition") {
        crate::apiextensions::crd::apply_defaults(obj);
        return;
    }
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    match (group, kind) {
        ("", "Pod") => {
            if let Some(spec) = child(root, "spec") {
                default_pod_spec(spec);
                default_pod_only(spec);
            }
        }
        ("", "PodTemplate") => default_template(root, "template"),
        ("", "ReplicationController") => default_replication_controller(root),
        ("", "Service") => {
            if let Some(spec) = child(root, "spec") {
                default_service_spec(spec);
            }
        }
        ("", "Secret") => {
            merge_string_data(root);
            set_str(root, "type", "Opaque");
        }
        ("", "Namespace") => default_namespace(root),
        ("", "PersistentVolume") => {
            if let Some(spec) = child(root, "spec") {
                set_str(spec, "persistentVolumeReclaimPolicy", "Retain");
                set_str(spec, "volumeMode", "Filesystem");
            }
            set_str(ensure(root, "status"), "phase", "Pending");
        }
        ("", "PersistentVolumeClaim") => default_pvc(root),
        ("", "Endpoints") => {
            for ss in items(root, "subsets") {
                default_protocols(ss, "ports");
            }
        }
        ("", "Node") => {
            if let Some(status) = child(root, "status") {
                if !has(status, "allocatable") {
                    if let Some(cap) = status.get("capacity").cloned() {
                        status.insert("allocatable".into(), cap);
                    }
                }
            }
        }
        ("", "LimitRange") => {
            if let Some(spec) = child(root, "spec") {
                for item in items(spec, "limits") {
                    default_limit_range_item(item);
                }
            }
        }
        ("apps", "Deployment") => default_deployment(root),
        ("apps", "ReplicaSet") => {
            if let Some(spec) = child(root, "spec") {
                set(spec, "replicas", json!(1));
                default_template(spec, "template");
            }
        }
        ("apps", "StatefulSet") => default_stateful_set(root),
        ("apps", "DaemonSet") => default_daemon_set(root),
        ("batch", "Job") => default_job(root),
        ("batch", "CronJob") => default_cron_job(root),
        ("autoscaling", "HorizontalPodAutoscaler") => {
            let v2 = root
                .get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|v| v.starts_with("autoscaling/v2"));
            if let Some(spec) = child(root, "spec") {
                set(spec, "minReplicas", json!(1));
                if v2
                    && spec
                        .get("metrics")
                        .and_then(Value::as_array)
                        .is_none_or(Vec::is_empty)
                {
                    spec.insert(
                        "metrics".into(),
                        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]),
                    );
                }
            }
        }
        ("networking.k8s.io", "NetworkPolicy") => default_network_policy(root),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            if let Some(rr) = child(root, "roleRef") {
                set_str(rr, "apiGroup", "rbac.authorization.k8s.io");
            }
            for subj in items(root, "subjects") {
                match subj.get("kind").and_then(Value::as_str) {
                    Some("ServiceAccount") => set_str(subj, "apiGroup", ""),
                    Some("User") | Some("Group") => {
                        set_str(subj, "apiGroup", "rbac.authorization.k8s.io")
                    }
                    _ => {}
                }
            }
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            set_str(root, "preemptionPolicy", "PreemptLowerPriority")
        }
        ("storage.k8s.io", "StorageClass") => {
            set_str(root, "reclaimPolicy", "Delete");
            set_str(root, "volumeBindingMode", "Immediate");
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            for port in items(root, "ports") {
                set_str(port, "protocol", "TCP");
                set(port, "name", json!(""));
            }
        }
        _ => {}
    }
}

// ---- small helpers -------------------------------------------------------

fn has(m: &Map<String, Value>, key: &str) -> bool {
    m.get(key).is_some_and(|v| !v.is_null())
}

/// Set `key` when absent or null (a nil pointer in Go).
fn set(m: &mut Map<String, Value>, key: &str, v: Value) {
    if !has(m, key) {
        m.insert(key.into(), v);
    }
}

/// Set a string `key` when absent, null or empty (a Go zero string).
fn set_str(m: &mut Map<String, Value>, key: &str, v: &str) {
    if m.get(key).and_then(Value::as_str).is_none_or(str::is_empty) {
        m.insert(key.into(), Value::String(v.into()));
    }
}

/// A child object, if present.
fn child<'a>(m: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// A child object, created when missing.
fn ensure<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    if !m.get(key).is_some_and(Value::is_object) {
        m.insert(key.into(), Value::Object(Map::new()));
    }
    m.get_mut(key)
        .and_then(Value::as_object_mut)
        .expect("inserted an object just above")
}

/// The objects in an array member.
fn items<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    m.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn default_protocols(m: &mut Map<String, Value>, list: &str) {
    for p in items(m, list) {
        set_str(p, "protocol", "TCP");
    }
}

// ---- pods ----------------------------------------------------------------

/// The tag of an image reference (`latest` when there is neither tag nor digest).
fn image_tag(image: &str) -> String {
    if image.contains('@') {
        return String::new();
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) => tag.to_string(),
        None => "latest".to_string(),
    }
}

fn default_container(c: &mut Map<String, Value>) {
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let policy = if image_tag(&image) == "latest" {
        "Always"
    } else {
        "IfNotPresent"
    };
    set_str(c, "imagePullPolicy", policy);
    set_str(c, "terminationMessagePath", "/dev/termination-log");
    set_str(c, "terminationMessagePolicy", "File");
    default_protocols(c, "ports");
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = child(c, probe) {
            for (key, v) in [
                ("timeoutSeconds", 1),
                ("periodSeconds", 10),
                ("successThreshold", 1),
                ("failureThreshold", 3),
            ] {
                if p.get(key).and_then(Value::as_i64).unwrap_or(0) == 0 {
                    p.insert(key.into(), json!(v));
                }
            }
            default_http_get(p);
        }
    }
    if let Some(lc) = child(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = child(lc, hook) {
                default_http_get(h);
            }
        }
    }
    for e in items(c, "env") {
        if let Some(fr) = child(e, "valueFrom").and_then(|vf| child(vf, "fieldRef")) {
            set_str(fr, "apiVersion", "v1");
        }
    }
}

fn default_http_get(handler: &mut Map<String, Value>) {
    if let Some(g) = child(handler, "httpGet") {
        set_str(g, "path", "/");
        set_str(g, "scheme", "HTTP");
    }
}

use crate::validation::VOLUME_SOURCES;

fn default_volume(v: &mut Map<String, Value>) {
    if !VOLUME_SOURCES.iter().any(|k| has(v, k)) {
        v.insert("emptyDir".into(), json!({}));
    }
    for src in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = child(v, src) {
            set(s, "defaultMode", json!(420));
        }
    }
    if let Some(hp) = child(v, "hostPath") {
        set(hp, "type", json!(""));
    }
    if let Some(d) = child(v, "downwardAPI") {
        for item in items(d, "items") {
            if let Some(fr) = child(item, "fieldRef") {
                set_str(fr, "apiVersion", "v1");
            }
        }
    }
    if let Some(p) = child(v, "projected") {
        for source in items(p, "sources") {
            if let Some(t) = child(source, "serviceAccountToken") {
                set(t, "expirationSeconds", json!(3600));
            }
            if let Some(d) = child(source, "downwardAPI") {
                for item in items(d, "items") {
                    if let Some(fr) = child(item, "fieldRef") {
                        set_str(fr, "apiVersion", "v1");
                    }
                }
            }
        }
    }
    if let Some(img) = child(v, "image") {
        let reference = img
            .get("reference")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let policy = if image_tag(&reference) == "latest" {
            "Always"
        } else {
            "IfNotPresent"
        };
        set_str(img, "pullPolicy", policy);
    }
    if let Some(spec) = child(v, "ephemeral")
        .and_then(|e| child(e, "volumeClaimTemplate"))
        .and_then(|t| child(t, "spec"))
    {
        set_str(spec, "volumeMode", "Filesystem");
    }
}

/// `SetDefaults_PodSpec` and everything nested in a PodSpec.
fn default_pod_spec(spec: &mut Map<String, Value>) {
    set_str(spec, "dnsPolicy", "ClusterFirst");
    set_str(spec, "restartPolicy", "Always");
    set(spec, "securityContext", json!({}));
    set(spec, "terminationGracePeriodSeconds", json!(30));
    set_str(spec, "schedulerName", "default-scheduler");
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for c in items(spec, list) {
            default_container(c);
        }
    }
    for v in items(spec, "volumes") {
        default_volume(v);
    }
}

/// `SetDefaults_Pod`: what only materializes on Pods, not templates.
fn default_pod_only(spec: &mut Map<String, Value>) {
    for list in ["containers", "initContainers"] {
        for c in items(spec, list) {
            let Some(res) = child(c, "resources") else {
                continue;
            };
            let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() else {
                continue;
            };
            let requests = ensure(res, "requests");
            for (k, v) in limits {
                requests.entry(k).or_insert(v);
            }
        }
    }
    set(spec, "enableServiceLinks", json!(true));
    let host_network = spec
        .get("hostNetwork")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if host_network {
        for list in ["containers", "initContainers"] {
            for c in items(spec, list) {
                for p in items(c, "ports") {
                    if p.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0 {
                        if let Some(cp) = p.get("containerPort").cloned() {
                            p.insert("hostPort".into(), cp);
                        }
                    }
                }
            }
        }
    }
}

/// Defaults for a PodTemplateSpec at `key` of `parent`.
fn default_template(parent: &mut Map<String, Value>, key: &str) {
    if let Some(spec) = child(parent, key).and_then(|t| child(t, "spec")) {
        default_pod_spec(spec);
    }
}

fn template_labels(spec: &Map<String, Value>) -> Option<Value> {
    spec.get("template")?
        .get("metadata")?
        .get("labels")
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned()
}

fn is_empty_map(m: &Map<String, Value>, key: &str) -> bool {
    m.get(key)
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty)
}

// ---- workloads -----------------------------------------------------------

fn default_replication_controller(root: &mut Map<String, Value>) {
    let labels = root
        .get("spec")
        .and_then(Value::as_object)
        .and_then(template_labels);
    if let Some(labels) = labels {
        let spec = ensure(root, "spec");
        if is_empty_map(spec, "selector") {
            spec.insert("selector".into(), labels.clone());
        }
        let meta = ensure(root, "metadata");
        if is_empty_map(meta, "labels") {
            meta.insert("labels".into(), labels);
        }
    }
    if let Some(spec) = child(root, "spec") {
        set(spec, "replicas", json!(1));
        default_template(spec, "template");
    }
}

fn default_deployment(root: &mut Map<String, Value>) {
    let Some(spec) = child(root, "spec") else {
        return;
    };
    set(spec, "replicas", json!(1));
    let strategy = ensure(spec, "strategy");
    set_str(strategy, "type", "RollingUpdate");
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let ru = ensure(strategy, "rollingUpdate");
        set(ru, "maxUnavailable", json!("25%"));
        set(ru, "maxSurge", json!("25%"));
    }
    set(spec, "revisionHistoryLimit", json!(10));
    set(spec, "progressDeadlineSeconds", json!(600));
    default_template(spec, "template");
}

fn default_stateful_set(root: &mut Map<String, Value>) {
    let Some(spec) = child(root, "spec") else {
        return;
    };
    set_str(spec, "podManagementPolicy", "OrderedReady");
    let us = ensure(spec, "updateStrategy");
    set_str(us, "type", "RollingUpdate");
    if us.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let ru = ensure(us, "rollingUpdate");
        set(ru, "partition", json!(0));
    }
    set(spec, "replicas", json!(1));
    set(spec, "revisionHistoryLimit", json!(10));
    let policy = ensure(spec, "persistentVolumeClaimRetentionPolicy");
    set_str(policy, "whenDeleted", "Retain");
    set_str(policy, "whenScaled", "Retain");
    for pvc in items(spec, "volumeClaimTemplates") {
        default_pvc(pvc);
    }
    default_template(spec, "template");
}

fn default_daemon_set(root: &mut Map<String, Value>) {
    let Some(spec) = child(root, "spec") else {
        return;
    };
    let us = ensure(spec, "updateStrategy");
    set_str(us, "type", "RollingUpdate");
    if us.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let ru = ensure(us, "rollingUpdate");
        set(ru, "maxUnavailable", json!(1));
        set(ru, "maxSurge", json!(0));
    }
    set(spec, "revisionHistoryLimit", json!(10));
    default_template(spec, "template");
}

fn default_job_spec(spec: &mut Map<String, Value>) {
    if !has(spec, "completions") && !has(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    set(spec, "parallelism", json!(1));
    if has(spec, "backoffLimitPerIndex") {
        set(spec, "backoffLimit", json!(i32::MAX));
    } else {
        set(spec, "backoffLimit", json!(6));
    }
    set(spec, "completionMode", json!("NonIndexed"));
    set(spec, "suspend", json!(false));
    let has_failure_policy = has(spec, "podFailurePolicy");
    if let Some(pfp) = child(spec, "podFailurePolicy") {
        for rule in items(pfp, "rules") {
            for pattern in items(rule, "onPodConditions") {
                set_str(pattern, "status", "True");
            }
        }
    }
    let replacement = if has_failure_policy {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    set(spec, "podReplacementPolicy", json!(replacement));
}

fn default_job(root: &mut Map<String, Value>) {
    let (uid, name) = {
        let meta = root.get("metadata");
        let get = |k: &str| {
            meta.and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        (get("uid"), get("name"))
    };
    let Some(spec) = child(root, "spec") else {
        return;
    };
    default_job_spec(spec);
    default_template(spec, "template");
    let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
    // generateSelector: the server assigns the uid, so this happens on the
    // pass after the uid is known.
    if !manual && !uid.is_empty() && !has(spec, "selector") {
        let labels = ensure(ensure(ensure(spec, "template"), "metadata"), "labels");
        for (k, v) in [
            ("batch.kubernetes.io/controller-uid", &uid),
            ("batch.kubernetes.io/job-name", &name),
            ("controller-uid", &uid),
            ("job-name", &name),
        ] {
            labels.entry(k).or_insert_with(|| json!(v));
        }
        spec.insert(
            "selector".into(),
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
    }
    let labels = template_labels(spec);
    if let Some(labels) = labels {
        let meta = ensure(root, "metadata");
        if is_empty_map(meta, "labels") {
            meta.insert("labels".into(), labels);
        }
    }
}

fn default_cron_job(root: &mut Map<String, Value>) {
    let Some(spec) = child(root, "spec") else {
        return;
    };
    set_str(spec, "concurrencyPolicy", "Allow");
    set(spec, "suspend", json!(false));
    set(spec, "successfulJobsHistoryLimit", json!(3));
    set(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(js) = child(spec, "jobTemplate").and_then(|jt| child(jt, "spec")) {
        default_template(js, "template");
    }
}

// ---- core kinds ------------------------------------------------------------

fn default_service_spec(spec: &mut Map<String, Value>) {
    set_str(spec, "sessionAffinity", "None");
    match spec.get("sessionAffinity").and_then(Value::as_str) {
        Some("None") => {
            spec.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": 10800}}),
                );
            }
        }
        _ => {}
    }
    set_str(spec, "type", "ClusterIP");
    for p in items(spec, "ports") {
        set_str(p, "protocol", "TCP");
        let target_unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if target_unset {
            if let Some(port) = p.get("port").cloned() {
                p.insert("targetPort".into(), port);
            }
        }
    }
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let has_external_ips = spec
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let externally_accessible =
        ty == "LoadBalancer" || ty == "NodePort" || (ty == "ClusterIP" && has_external_ips);
    if externally_accessible {
        set_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        set(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if ty != "ExternalName" {
        // Normalize clusterIP/clusterIPs as the Service strategy does, then
        // fill the single-stack IP family fields.
        let cip = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let cips_empty = spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if !cip.is_empty() && cips_empty {
            spec.insert("clusterIPs".into(), json!([cip]));
        }
        set(spec, "ipFamilyPolicy", json!("SingleStack"));
        if spec
            .get("ipFamilies")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            let family = if cip.contains(':') { "IPv6" } else { "IPv4" };
            spec.insert("ipFamilies".into(), json!([family]));
        }
    }
}

/// A Secret's `stringData` is write-only: its values are base64-encoded into
/// `data`, replacing a `data` value of the same key, and `stringData` is
/// dropped (the v1 → internal conversion upstream), so it is never stored or
/// returned. A null value counts as the empty string, as Go decodes it.
fn merge_string_data(root: &mut Map<String, Value>) {
    let Some(string_data) = root.remove("stringData") else {
        return;
    };
    let Value::Object(string_data) = string_data else {
        return;
    };
    if string_data.is_empty() {
        return;
    }
    let data = root
        .entry("data")
        .and_modify(|d| {
            if d.is_null() {
                *d = Value::Object(Map::new());
            }
        })
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(data) = data else {
        return;
    };
    for (key, value) in string_data {
        let text = match &value {
            Value::String(s) => s.as_str(),
            Value::Null => "",
            // Not a string: decoding rejects the body before this runs.
            _ => continue,
        };
        data.insert(key, Value::String(BASE64.encode(text)));
    }
}

fn default_namespace(root: &mut Map<String, Value>) {
    let name = root
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !name.is_empty() {
        let labels = ensure(ensure(root, "metadata"), "labels");
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    set(ensure(root, "spec"), "finalizers", json!(["kubernetes"]));
    set_str(ensure(root, "status"), "phase", "Active");
}

fn default_pvc(root: &mut Map<String, Value>) {
    if let Some(spec) = child(root, "spec") {
        set_str(spec, "volumeMode", "Filesystem");
    }
    set_str(ensure(root, "status"), "phase", "Pending");
}

fn default_limit_range_item(item: &mut Map<String, Value>) {
    if item.get("type").and_then(Value::as_str) != Some("Container") {
        return;
    }
    let max = item
        .get("max")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let min = item
        .get("min")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut default = item
        .get("default")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in max {
        default.entry(k).or_insert(v);
    }
    let mut request = item
        .get("defaultRequest")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in default.iter().chain(min.iter()) {
        request.entry(k.clone()).or_insert_with(|| v.clone());
    }
    // Empty maps are left out, as they are omitted on the wire.
    if !default.is_empty() {
        item.insert("default".into(), Value::Object(default));
    }
    if !request.is_empty() {
        item.insert("defaultRequest".into(), Value::Object(request));
    }
}

fn default_network_policy(root: &mut Map<String, Value>) {
    let Some(spec) = child(root, "spec") else {
        return;
    };
    for dir in ["ingress", "egress"] {
        for rule in items(spec, dir) {
            default_protocols(rule, "ports");
        }
    }
    if spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        let mut types = vec![json!("Ingress")];
        if spec
            .get("egress")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
        {
            types.push(json!("Egress"));
        }
        spec.insert("policyTypes".into(), Value::Array(types));
    }
}
