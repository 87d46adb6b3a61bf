//! Pods, pod templates and everything inside a PodSpec
//! (`pkg/apis/core/validation/validation.go`).

use super::meta::{validate_annotations, validate_label_name, validate_labels};
use super::names::{
    inclusive_range_error, is_config_map_key, is_dns1123_label, is_dns1123_subdomain,
    is_env_var_name, is_valid_label_value, is_valid_port_name, is_valid_port_num, parse_ip,
    INVALID_IP_MSG,
};
use super::quantity::{parse_quantity, Quantity};
use super::util::{
    arr, ch, flag, get, int, int_or_string, ix, ky, nonneg, obj, s, semantic_eq, sub, IntOrString,
};
use super::{Errs, FieldError};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

pub(crate) const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// Every volume source a `Volume` may name (exactly one per volume).
pub(crate) const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

const FILE_MODE_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

const UPDATABLE_POD_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodCreate` / `ValidatePodUpdate` (metadata is checked by the caller).
pub(crate) fn validate_pod(pod: &Value, old: Option<&Value>, errs: &mut Errs) {
    let spec = sub(pod, "spec");
    validate_pod_spec(spec, "spec", &[], errs);
    validate_pod_specific_annotations(pod, errs);
    for (list, path) in [
        ("containers", "spec.containers"),
        ("initContainers", "spec.initContainers"),
    ] {
        for (i, c) in arr(spec, list).iter().enumerate() {
            let image = s(c, "image");
            if image.len() != image.trim().len() {
                errs.push(FieldError::invalid(
                    ch(&ix(path, i), "image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    match old {
        None => {
            if !arr(spec, "ephemeralContainers").is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.ephemeralContainers",
                    "cannot be set on create",
                ));
            }
        }
        Some(old) => validate_pod_update(pod, old, errs),
    }
}

fn validate_pod_specific_annotations(pod: &Value, errs: &mut Errs) {
    let meta = sub(pod, "metadata");
    let annotations = sub(meta, "annotations");
    if let Some(v) = opt_str(annotations, "kubernetes.io/config.mirror") {
        if s(sub(pod, "spec"), "nodeName").is_empty() {
            errs.push(FieldError::invalid(
                "metadata.annotations[kubernetes.io/config.mirror]",
                v,
                "must set spec.nodeName if mirror pod annotation is set",
            ));
        }
    }
    if let Some(v) = opt_str(annotations, "controller.kubernetes.io/pod-deletion-cost") {
        if v.parse::<i32>().is_err() {
            errs.push(FieldError::invalid(
                "metadata.annotations[controller.kubernetes.io/pod-deletion-cost]",
                v,
                "must be a 32bit integer",
            ));
        }
    }
}

fn opt_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn validate_pod_update(pod: &Value, old: &Value, errs: &mut Errs) {
    let spec = sub(pod, "spec");
    let old_spec = sub(old, "spec");
    for list in ["containers", "initContainers"] {
        let (n, o) = (arr(spec, list), arr(old_spec, list));
        if n.len() != o.len() {
            errs.push(FieldError::forbidden(
                ch("spec", list),
                "pod updates may not add or remove containers",
            ));
            return;
        }
    }
    if let Some(ads) = int(spec, "activeDeadlineSeconds") {
        if !(0..=i64::from(i32::MAX)).contains(&ads) {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                ads,
                inclusive_range_error(0, i64::from(i32::MAX)),
            ));
            return;
        }
        if let Some(old_ads) = int(old_spec, "activeDeadlineSeconds") {
            if old_ads < ads {
                errs.push(FieldError::invalid(
                    "spec.activeDeadlineSeconds",
                    ads,
                    "must be less than or equal to previous value",
                ));
                return;
            }
        }
    } else if get(old_spec, "activeDeadlineSeconds").is_some() {
        errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            Value::Null,
            "must not update from a positive integer to nil value",
        ));
    }
    // Tolerations: only additions.
    let new_tols = arr(spec, "tolerations");
    for (i, t) in arr(old_spec, "tolerations").iter().enumerate() {
        if !new_tols.iter().any(|n| semantic_eq(n, t)) {
            errs.push(FieldError::forbidden(
                ix("spec.tolerations", i),
                "existing toleration can not be modified except its tolerationSeconds",
            ));
        }
    }
    // Scheduling gates: only removals.
    let old_gates = arr(old_spec, "schedulingGates");
    for (i, g) in arr(spec, "schedulingGates").iter().enumerate() {
        if !old_gates.iter().any(|o| semantic_eq(o, g)) {
            errs.push(FieldError::forbidden(
                ix("spec.schedulingGates", i),
                "only deletion is allowed, but found new scheduling gate",
            ));
        }
    }
    // Everything else must be unchanged.
    let mut munged = spec.clone();
    if let Some(m) = munged.as_object_mut() {
        for list in ["containers", "initContainers"] {
            if let Some(Value::Array(items)) = m.get_mut(list) {
                for (i, c) in items.iter_mut().enumerate() {
                    if let Some(c) = c.as_object_mut() {
                        match arr(old_spec, list).get(i).and_then(|o| o.get("image")) {
                            Some(img) => c.insert("image".into(), img.clone()),
                            None => c.remove("image"),
                        };
                    }
                }
            }
        }
        for key in ["activeDeadlineSeconds", "tolerations", "schedulingGates"] {
            match old_spec.get(key) {
                Some(v) => m.insert(key.into(), v.clone()),
                None => m.remove(key),
            };
        }
        if int(old_spec, "terminationGracePeriodSeconds").is_some_and(|g| g < 0)
            && int(spec, "terminationGracePeriodSeconds") == Some(1)
        {
            m.insert(
                "terminationGracePeriodSeconds".into(),
                old_spec["terminationGracePeriodSeconds"].clone(),
            );
        }
        if !old_gates.is_empty() {
            // Gated pods may add to nodeSelector and change node affinity.
            match old_spec.get("nodeSelector") {
                Some(v) => m.insert("nodeSelector".into(), v.clone()),
                None => m.remove("nodeSelector"),
            };
        }
    }
    if !semantic_eq(&munged, old_spec) {
        errs.push(FieldError::forbidden(
            "spec",
            format!("pod updates may not change fields other than {UPDATABLE_POD_FIELDS}"),
        ));
    }
}

/// `ValidatePodStatusUpdate` (the parts that do not depend on node state).
pub(crate) fn validate_pod_status_update(pod: &Value, old: &Value, errs: &mut Errs) {
    if s(sub(pod, "spec"), "nodeName") != s(sub(old, "spec"), "nodeName") {
        errs.push(FieldError::forbidden(
            "status.nodeName",
            "may not be changed directly",
        ));
    }
    let status = sub(pod, "status");
    let old_status = sub(old, "status");
    let nominated = s(status, "nominatedNodeName");
    if !nominated.is_empty() && nominated != s(old_status, "nominatedNodeName") {
        for msg in is_dns1123_subdomain(nominated) {
            errs.push(FieldError::invalid(
                "status.nominatedNodeName",
                nominated,
                msg,
            ));
        }
    }
    let (q, oq) = (s(status, "qosClass"), s(old_status, "qosClass"));
    if !oq.is_empty() && q != oq {
        errs.push(FieldError::invalid(
            "status.qosClass",
            q,
            super::util::IMMUTABLE_MSG,
        ));
    }
    for (i, c) in arr(status, "conditions").iter().enumerate() {
        let t = s(c, "type");
        if !matches!(t, "PodScheduled" | "Ready" | "Initialized") {
            for msg in super::names::is_qualified_name(t) {
                errs.push(FieldError::invalid(
                    ch(&ix("status.conditions", i), "Type"),
                    t,
                    msg,
                ));
            }
        }
    }
    let pod_ip = s(status, "podIP");
    if !pod_ip.is_empty() && parse_ip(pod_ip).is_none() {
        errs.push(FieldError::invalid("status.podIP", pod_ip, INVALID_IP_MSG));
    }
    for (i, p) in arr(status, "podIPs").iter().enumerate() {
        let ip = s(p, "ip");
        if parse_ip(ip).is_none() {
            errs.push(FieldError::invalid(
                ch(&ix("status.podIPs", i), "ip"),
                ip,
                INVALID_IP_MSG,
            ));
        }
    }
    let host_ip = s(status, "hostIP");
    if !host_ip.is_empty() && parse_ip(host_ip).is_none() {
        errs.push(FieldError::invalid(
            "status.hostIP",
            host_ip,
            INVALID_IP_MSG,
        ));
    }
}

/// `ValidatePodTemplateSpec` at `path` (e.g. `spec.template`); a missing
/// template is `Required`.
pub(crate) fn validate_pod_template_spec(tmpl: Option<&Value>, path: &str, errs: &mut Errs) {
    validate_pod_template_spec_with_volumes(tmpl, path, &[], errs);
}

/// [`validate_pod_template_spec`] where volume mounts may also name
/// `extra_volumes` (a StatefulSet's `volumeClaimTemplates`, which become
/// volumes of each pod).
pub(crate) fn validate_pod_template_spec_with_volumes(
    tmpl: Option<&Value>,
    path: &str,
    extra_volumes: &[&str],
    errs: &mut Errs,
) {
    let Some(tmpl) = tmpl else {
        errs.push(FieldError::required(path, ""));
        return;
    };
    let meta = sub(tmpl, "metadata");
    validate_labels(meta, "labels", &ch(path, "labels"), errs);
    validate_annotations(meta, "annotations", &ch(path, "annotations"), errs);
    let spec = sub(tmpl, "spec");
    validate_pod_spec(spec, &ch(path, "spec"), extra_volumes, errs);
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            ch(&ch(path, "spec"), "ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}

/// `ValidatePodSpec`; volume mounts may name the spec's volumes and
/// `extra_volumes`.
pub(crate) fn validate_pod_spec(spec: &Value, path: &str, extra_volumes: &[&str], errs: &mut Errs) {
    let mut volumes = validate_volumes(spec, &ch(path, "volumes"), errs);
    volumes.extend(extra_volumes.iter().map(|v| v.to_string()));
    let restart_policy = s(spec, "restartPolicy");
    validate_containers(spec, &volumes, path, errs);
    match restart_policy {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(FieldError::required(ch(path, "restartPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            ch(path, "restartPolicy"),
            other,
            &["Always", "OnFailure", "Never"],
        )),
    }
    let dns_policy = s(spec, "dnsPolicy");
    match dns_policy {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" => {}
        "None" => {
            if get(spec, "dnsConfig").is_none() {
                errs.push(FieldError::required(
                    ch(path, "dnsConfig"),
                    "must provide `dnsConfig` when `dnsPolicy` is None",
                ));
            }
        }
        "" => errs.push(FieldError::required(ch(path, "dnsPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            ch(path, "dnsPolicy"),
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    validate_labels(spec, "nodeSelector", &ch(path, "nodeSelector"), errs);
    for key in [
        "serviceAccountName",
        "nodeName",
        "priorityClassName",
        "schedulerName",
    ] {
        let v = s(spec, key);
        if !v.is_empty() {
            for msg in is_dns1123_subdomain(v) {
                errs.push(FieldError::invalid(ch(path, key), v, msg));
            }
        }
    }
    for key in ["hostname", "subdomain"] {
        let v = s(spec, key);
        if !v.is_empty() {
            for msg in is_dns1123_label(v) {
                errs.push(FieldError::invalid(ch(path, key), v, msg));
            }
        }
    }
    if let Some(ads) = int(spec, "activeDeadlineSeconds") {
        if !(1..=i64::from(i32::MAX)).contains(&ads) {
            errs.push(FieldError::invalid(
                ch(path, "activeDeadlineSeconds"),
                ads,
                inclusive_range_error(1, i64::from(i32::MAX)),
            ));
        }
    }
    nonneg(spec, "terminationGracePeriodSeconds", path, errs);
    validate_tolerations(arr(spec, "tolerations"), &ch(path, "tolerations"), errs);
    if let Some(rc) = spec.get("runtimeClassName").and_then(Value::as_str) {
        for msg in is_dns1123_subdomain(rc) {
            errs.push(FieldError::invalid(ch(path, "runtimeClassName"), rc, msg));
        }
    }
    if let Some(pp) = spec.get("preemptionPolicy").and_then(Value::as_str) {
        if !matches!(pp, "PreemptLowerPriority" | "Never") {
            errs.push(FieldError::not_supported(
                ch(path, "preemptionPolicy"),
                pp,
                &["Never", "PreemptLowerPriority"],
            ));
        }
    }
    if let Some(os) = get(spec, "os") {
        let name = s(os, "name");
        if name.is_empty() {
            errs.push(FieldError::required(ch(&ch(path, "os"), "name"), ""));
        } else if !matches!(name, "linux" | "windows") {
            errs.push(FieldError::not_supported(
                ch(&ch(path, "os"), "name"),
                name,
                &["linux", "windows"],
            ));
        }
    }
    for (i, sec) in arr(spec, "imagePullSecrets").iter().enumerate() {
        if s(sec, "name").is_empty() {
            errs.push(FieldError::required(
                ch(&ix(&ch(path, "imagePullSecrets"), i), "name"),
                "",
            ));
        }
    }
    if flag(spec, "hostNetwork") {
        for list in ["containers", "initContainers"] {
            for (i, c) in arr(spec, list).iter().enumerate() {
                for (j, p) in arr(c, "ports").iter().enumerate() {
                    let (cp, hp) = (
                        int(p, "containerPort").unwrap_or(0),
                        int(p, "hostPort").unwrap_or(0),
                    );
                    if hp != 0 && hp != cp {
                        errs.push(FieldError::invalid(
                            ch(
                                &ix(&ch(&ix(&ch(path, list), i), "ports"), j),
                                "containerPort",
                            ),
                            cp,
                            "must match `hostPort` when `hostNetwork` is true",
                        ));
                    }
                }
            }
        }
    }
}

/// `ValidateVolumes`; returns the volume names.
fn validate_volumes(spec: &Value, path: &str, errs: &mut Errs) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, vol) in arr(spec, "volumes").iter().enumerate() {
        let vp = ix(path, i);
        let name = s(vol, "name");
        if name.is_empty() {
            errs.push(FieldError::required(ch(&vp, "name"), ""));
        } else {
            for msg in is_dns1123_label(name) {
                errs.push(FieldError::invalid(ch(&vp, "name"), name, msg));
            }
        }
        if !name.is_empty() && !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(ch(&vp, "name"), name));
        }
        let sources: Vec<&str> = VOLUME_SOURCES
            .iter()
            .copied()
            .filter(|k| get(vol, k).is_some())
            .collect();
        match sources.as_slice() {
            [] => errs.push(FieldError::required(
                vp.clone(),
                "must specify a volume type",
            )),
            [first, rest @ ..] => {
                for extra in rest {
                    errs.push(FieldError::forbidden(
                        ch(&vp, extra),
                        "may not specify more than 1 volume type",
                    ));
                }
                validate_volume_source(first, sub(vol, first), &ch(&vp, first), errs);
            }
        }
    }
    names
}

fn validate_volume_source(kind: &str, src: &Value, path: &str, errs: &mut Errs) {
    let require = |key: &str, errs: &mut Errs| {
        if s(src, key).is_empty() {
            errs.push(FieldError::required(ch(path, key), ""));
        }
    };
    match kind {
        "hostPath" => {
            require("path", errs);
            if let Some(t) = src.get("type").and_then(Value::as_str) {
                const TYPES: &[&str] = &[
                    "",
                    "BlockDevice",
                    "CharDevice",
                    "Directory",
                    "DirectoryOrCreate",
                    "File",
                    "FileOrCreate",
                    "Socket",
                ];
                if !TYPES.contains(&t) {
                    errs.push(FieldError::not_supported(ch(path, "type"), t, TYPES));
                }
            }
        }
        "emptyDir" => {
            if let Some(q) = src.get("sizeLimit") {
                validate_quantity_value(q, &ch(path, "sizeLimit"), errs);
            }
            if let Some(m) = src.get("medium").and_then(Value::as_str) {
                if !matches!(m, "" | "Memory" | "HugePages") && !m.starts_with("HugePages-") {
                    errs.push(FieldError::not_supported(
                        ch(path, "medium"),
                        m,
                        &["", "Memory", "HugePages"],
                    ));
                }
            }
        }
        "secret" => {
            require("secretName", errs);
            validate_default_mode(src, path, errs);
            validate_key_to_paths(src, path, errs);
        }
        "configMap" => {
            require("name", errs);
            validate_default_mode(src, path, errs);
            validate_key_to_paths(src, path, errs);
        }
        "persistentVolumeClaim" => require("claimName", errs),
        "nfs" => {
            require("server", errs);
            require("path", errs);
            if !s(src, "path").is_empty() && !s(src, "path").starts_with('/') {
                errs.push(FieldError::invalid(
                    ch(path, "path"),
                    s(src, "path"),
                    "must be an absolute path",
                ));
            }
        }
        "csi" => require("driver", errs),
        "downwardAPI" | "projected" => validate_default_mode(src, path, errs),
        "image" => require("reference", errs),
        _ => {}
    }
}

fn validate_default_mode(src: &Value, path: &str, errs: &mut Errs) {
    if let Some(m) = int(src, "defaultMode") {
        if !(0..=0o777).contains(&m) {
            errs.push(FieldError::invalid(
                ch(path, "defaultMode"),
                m,
                FILE_MODE_MSG,
            ));
        }
    }
}

fn validate_key_to_paths(src: &Value, path: &str, errs: &mut Errs) {
    for (i, item) in arr(src, "items").iter().enumerate() {
        let ip = ix(&ch(path, "items"), i);
        if s(item, "key").is_empty() {
            errs.push(FieldError::required(ch(&ip, "key"), ""));
        }
        let p = s(item, "path");
        if p.is_empty() {
            errs.push(FieldError::required(ch(&ip, "path"), ""));
        } else {
            validate_local_descending_path(p, &ch(&ip, "path"), errs);
        }
        if let Some(m) = int(item, "mode") {
            if !(0..=0o777).contains(&m) {
                errs.push(FieldError::invalid(ch(&ip, "mode"), m, FILE_MODE_MSG));
            }
        }
    }
}

/// `validateLocalDescendingPath`: relative and without `..` elements.
fn validate_local_descending_path(p: &str, path: &str, errs: &mut Errs) {
    if p.starts_with('/') {
        errs.push(FieldError::invalid(path, p, "must be a relative path"));
    }
    if p.split('/').any(|part| part == "..") {
        errs.push(FieldError::invalid(path, p, "must not contain '..'"));
    }
}

/// Containers and init containers, with names unique across both.
fn validate_containers(spec: &Value, volumes: &HashSet<String>, path: &str, errs: &mut Errs) {
    let containers = arr(spec, "containers");
    let cpath = ch(path, "containers");
    let mut all_names: HashSet<String> = HashSet::new();
    if containers.is_empty() {
        errs.push(FieldError::required(cpath.clone(), ""));
    }
    for (i, c) in containers.iter().enumerate() {
        let p = ix(&cpath, i);
        validate_container(c, volumes, &p, &mut all_names, false, errs);
        if get(c, "restartPolicy").is_some() {
            errs.push(FieldError::forbidden(
                ch(&p, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    let ipath = ch(path, "initContainers");
    for (i, c) in arr(spec, "initContainers").iter().enumerate() {
        let p = ix(&ipath, i);
        validate_container(c, volumes, &p, &mut all_names, true, errs);
        let sidecar = match c.get("restartPolicy").and_then(Value::as_str) {
            None => false,
            Some("Always") => true,
            Some(other) => {
                errs.push(FieldError::not_supported(
                    ch(&p, "restartPolicy"),
                    other,
                    &["Always"],
                ));
                false
            }
        };
        if !sidecar {
            for key in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if get(c, key).is_some() {
                    errs.push(FieldError::forbidden(
                        ch(&p, key),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    // Host ports must not collide across all containers.
    let mut host_ports: HashSet<String> = HashSet::new();
    for list in ["containers", "initContainers"] {
        for (i, c) in arr(spec, list).iter().enumerate() {
            for (j, port) in arr(c, "ports").iter().enumerate() {
                let hp = int(port, "hostPort").unwrap_or(0);
                if hp == 0 {
                    continue;
                }
                let key = format!("{}/{}/{}", s(port, "hostIP"), hp, s(port, "protocol"));
                if !host_ports.insert(key) {
                    errs.push(FieldError::duplicate(
                        ch(&ix(&ch(&ix(&ch(path, list), i), "ports"), j), "hostPort"),
                        format!("{}/{}", hp, s(port, "protocol")),
                    ));
                }
            }
        }
    }
}

fn validate_container(
    c: &Value,
    volumes: &HashSet<String>,
    path: &str,
    all_names: &mut HashSet<String>,
    _init: bool,
    errs: &mut Errs,
) {
    let name = s(c, "name");
    let name_path = ch(path, "name");
    if name.is_empty() {
        errs.push(FieldError::required(name_path.clone(), ""));
    } else {
        for msg in is_dns1123_label(name) {
            errs.push(FieldError::invalid(name_path.clone(), name, msg));
        }
    }
    if !all_names.insert(name.to_string()) {
        errs.push(FieldError::duplicate(name_path, name));
    }
    if s(c, "image").is_empty() {
        errs.push(FieldError::required(ch(path, "image"), ""));
    }
    for (key, probe) in ["livenessProbe", "readinessProbe", "startupProbe"]
        .iter()
        .filter_map(|k| get(c, k).map(|p| (*k, p)))
    {
        let pp = ch(path, key);
        validate_probe(probe, &pp, errs);
        if key != "readinessProbe" {
            if let Some(st) = int(probe, "successThreshold") {
                if st != 1 {
                    errs.push(FieldError::invalid(
                        ch(&pp, "successThreshold"),
                        st,
                        "must be 1",
                    ));
                }
            }
        } else if get(probe, "terminationGracePeriodSeconds").is_some() {
            errs.push(FieldError::invalid(
                ch(&pp, "terminationGracePeriodSeconds"),
                probe["terminationGracePeriodSeconds"].clone(),
                "must not be set for readinessProbes",
            ));
        }
    }
    if let Some(lc) = get(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = get(lc, hook) {
                validate_handler(h, &ch(&ch(path, "lifecycle"), hook), true, errs);
            }
        }
    }
    validate_container_ports(arr(c, "ports"), &ch(path, "ports"), errs);
    validate_env(arr(c, "env"), &ch(path, "env"), errs);
    validate_env_from(arr(c, "envFrom"), &ch(path, "envFrom"), errs);
    validate_volume_mounts(
        arr(c, "volumeMounts"),
        volumes,
        &ch(path, "volumeMounts"),
        errs,
    );
    match s(c, "imagePullPolicy") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(ch(path, "imagePullPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            ch(path, "imagePullPolicy"),
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    match s(c, "terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            ch(path, "terminationMessagePolicy"),
            "",
        )),
        other => errs.push(FieldError::not_supported(
            ch(path, "terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    validate_resource_requirements(sub(c, "resources"), &ch(path, "resources"), errs);
    if let Some(sc) = get(c, "securityContext") {
        let sp = ch(path, "securityContext");
        for key in ["runAsUser", "runAsGroup"] {
            if let Some(id) = int(sc, key) {
                if !(0..=i64::from(u32::MAX)).contains(&id) {
                    errs.push(FieldError::invalid(
                        ch(&sp, key),
                        id,
                        inclusive_range_error(0, i64::from(u32::MAX)),
                    ));
                }
            }
        }
        if flag(sc, "privileged")
            && sc.get("allowPrivilegeEscalation").and_then(Value::as_bool) == Some(false)
        {
            errs.push(FieldError::invalid(
                sp.clone(),
                sc.clone(),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
    }
}

fn validate_container_ports(ports: &[Value], path: &str, errs: &mut Errs) {
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = ix(path, i);
        let name = s(port, "name");
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for msg in msgs {
                    errs.push(FieldError::invalid(ch(&p, "name"), name, msg));
                }
            } else if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(ch(&p, "name"), name));
            }
        }
        match int(port, "containerPort").unwrap_or(0) {
            0 => errs.push(FieldError::required(ch(&p, "containerPort"), "")),
            cp => {
                for msg in is_valid_port_num(cp) {
                    errs.push(FieldError::invalid(ch(&p, "containerPort"), cp, msg));
                }
            }
        }
        let hp = int(port, "hostPort").unwrap_or(0);
        if hp != 0 {
            for msg in is_valid_port_num(hp) {
                errs.push(FieldError::invalid(ch(&p, "hostPort"), hp, msg));
            }
        }
        match s(port, "protocol") {
            "" => errs.push(FieldError::required(ch(&p, "protocol"), "")),
            proto if !PROTOCOLS.contains(&proto) => errs.push(FieldError::not_supported(
                ch(&p, "protocol"),
                proto,
                PROTOCOLS,
            )),
            _ => {}
        }
    }
}

fn validate_env(env: &[Value], path: &str, errs: &mut Errs) {
    for (i, e) in env.iter().enumerate() {
        let p = ix(path, i);
        let name = s(e, "name");
        if name.is_empty() {
            errs.push(FieldError::required(ch(&p, "name"), ""));
        } else {
            for msg in is_env_var_name(name) {
                errs.push(FieldError::invalid(ch(&p, "name"), name, msg));
            }
        }
        if let Some(vf) = get(e, "valueFrom") {
            let vp = ch(&p, "valueFrom");
            let sources: Vec<&str> = [
                "fieldRef",
                "resourceFieldRef",
                "configMapKeyRef",
                "secretKeyRef",
                "fileKeyRef",
            ]
            .into_iter()
            .filter(|k| get(vf, k).is_some())
            .collect();
            if !s(e, "value").is_empty() && !sources.is_empty() {
                errs.push(FieldError::invalid(
                    vp.clone(),
                    "",
                    "may not be specified when `value` is not empty",
                ));
            }
            match sources.len() {
                0 => errs.push(FieldError::invalid(
                    vp.clone(),
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                )),
                1 => {}
                _ => errs.push(FieldError::invalid(
                    vp.clone(),
                    "",
                    "may not have more than one field specified at a time",
                )),
            }
            for kind in ["configMapKeyRef", "secretKeyRef"] {
                if let Some(r) = get(vf, kind) {
                    let rp = ch(&vp, kind);
                    let key = s(r, "key");
                    if key.is_empty() {
                        errs.push(FieldError::required(ch(&rp, "key"), ""));
                    } else {
                        for msg in is_config_map_key(key) {
                            errs.push(FieldError::invalid(ch(&rp, "key"), key, msg));
                        }
                    }
                    let n = s(r, "name");
                    if !n.is_empty() {
                        for msg in is_dns1123_subdomain(n) {
                            errs.push(FieldError::invalid(ch(&rp, "name"), n, msg));
                        }
                    }
                }
            }
            if let Some(r) = get(vf, "fieldRef") {
                if s(r, "fieldPath").is_empty() {
                    errs.push(FieldError::required(
                        ch(&ch(&vp, "fieldRef"), "fieldPath"),
                        "",
                    ));
                }
            }
            if let Some(r) = get(vf, "resourceFieldRef") {
                if s(r, "resource").is_empty() {
                    errs.push(FieldError::required(
                        ch(&ch(&vp, "resourceFieldRef"), "resource"),
                        "",
                    ));
                }
            }
        }
    }
}

fn validate_env_from(list: &[Value], path: &str, errs: &mut Errs) {
    for (i, e) in list.iter().enumerate() {
        let p = ix(path, i);
        let prefix = s(e, "prefix");
        if !prefix.is_empty() {
            for msg in is_env_var_name(prefix) {
                errs.push(FieldError::invalid(ch(&p, "prefix"), prefix, msg));
            }
        }
        let refs: Vec<&str> = ["configMapRef", "secretRef"]
            .into_iter()
            .filter(|k| get(e, k).is_some())
            .collect();
        match refs.as_slice() {
            [] => errs.push(FieldError::invalid(
                p.clone(),
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            )),
            [one] => {
                let n = s(sub(e, one), "name");
                let np = ch(&ch(&p, one), "name");
                if n.is_empty() {
                    errs.push(FieldError::required(np, ""));
                } else {
                    for msg in is_dns1123_subdomain(n) {
                        errs.push(FieldError::invalid(np.clone(), n, msg));
                    }
                }
            }
            _ => errs.push(FieldError::invalid(
                p.clone(),
                "",
                "may not have more than one field specified at a time",
            )),
        }
    }
}

fn validate_volume_mounts(
    mounts: &[Value],
    volumes: &HashSet<String>,
    path: &str,
    errs: &mut Errs,
) {
    let mut paths = HashSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = ix(path, i);
        let name = s(m, "name");
        if name.is_empty() {
            errs.push(FieldError::required(ch(&p, "name"), ""));
        } else if !volumes.contains(name) {
            errs.push(FieldError::not_found(ch(&p, "name"), name));
        }
        let mp = s(m, "mountPath");
        if mp.is_empty() {
            errs.push(FieldError::required(ch(&p, "mountPath"), ""));
        } else if !paths.insert(mp.to_string()) {
            errs.push(FieldError::invalid(
                ch(&p, "mountPath"),
                mp,
                "must be unique",
            ));
        }
        let sp = s(m, "subPath");
        if !sp.is_empty() {
            validate_local_descending_path(sp, &ch(&p, "subPath"), errs);
        }
        if let Some(mode) = m.get("mountPropagation").and_then(Value::as_str) {
            const MODES: &[&str] = &["Bidirectional", "HostToContainer", "None"];
            if !MODES.contains(&mode) {
                errs.push(FieldError::not_supported(
                    ch(&p, "mountPropagation"),
                    mode,
                    MODES,
                ));
            }
        }
    }
}

/// `validateProbe`: exactly one handler, non-negative timings.
fn validate_probe(probe: &Value, path: &str, errs: &mut Errs) {
    validate_handler(probe, path, false, errs);
    for key in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        nonneg(probe, key, path, errs);
    }
    if let Some(t) = int(probe, "terminationGracePeriodSeconds") {
        if t <= 0 {
            errs.push(FieldError::invalid(
                ch(path, "terminationGracePeriodSeconds"),
                t,
                "must be greater than 0",
            ));
        }
    }
}

/// A probe or lifecycle handler: exactly one of exec/httpGet/tcpSocket/grpc/sleep.
fn validate_handler(h: &Value, path: &str, lifecycle: bool, errs: &mut Errs) {
    let kinds: &[&str] = if lifecycle {
        &["exec", "httpGet", "tcpSocket", "sleep"]
    } else {
        &["exec", "httpGet", "tcpSocket", "grpc"]
    };
    let present: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| get(h, k).is_some())
        .collect();
    match present.as_slice() {
        [] => errs.push(FieldError::required(path, "must specify a handler type")),
        [_, rest @ ..] => {
            for k in rest {
                errs.push(FieldError::forbidden(
                    ch(path, k),
                    "may not specify more than 1 handler type",
                ));
            }
        }
    }
    if let Some(e) = get(h, "exec") {
        if arr(e, "command").is_empty() {
            errs.push(FieldError::required(ch(&ch(path, "exec"), "command"), ""));
        }
    }
    if let Some(g) = get(h, "httpGet") {
        let gp = ch(path, "httpGet");
        if s(g, "path").is_empty() && g.get("path").is_some() {
            errs.push(FieldError::required(ch(&gp, "path"), ""));
        }
        validate_port_num_or_name(g, "port", &gp, errs);
        if let Some(scheme) = g.get("scheme").and_then(Value::as_str) {
            if !matches!(scheme, "HTTP" | "HTTPS") {
                errs.push(FieldError::not_supported(
                    ch(&gp, "scheme"),
                    scheme,
                    &["HTTP", "HTTPS"],
                ));
            }
        }
    }
    if let Some(t) = get(h, "tcpSocket") {
        validate_port_num_or_name(t, "port", &ch(path, "tcpSocket"), errs);
    }
    if let Some(g) = get(h, "grpc") {
        let port = int(g, "port").unwrap_or(0);
        for msg in is_valid_port_num(port) {
            errs.push(FieldError::invalid(
                ch(&ch(path, "grpc"), "port"),
                port,
                msg,
            ));
        }
    }
}

/// `ValidatePortNumOrName` on an int-or-string member.
pub(crate) fn validate_port_num_or_name(v: &Value, key: &str, path: &str, errs: &mut Errs) {
    let p = ch(path, key);
    match int_or_string(v, key) {
        Some(IntOrString::Int(n)) => {
            for msg in is_valid_port_num(n) {
                errs.push(FieldError::invalid(p.clone(), n, msg));
            }
        }
        Some(IntOrString::Str(name)) => {
            for msg in is_valid_port_name(name) {
                errs.push(FieldError::invalid(p.clone(), name, msg));
            }
        }
        None => {
            for msg in is_valid_port_num(0) {
                errs.push(FieldError::invalid(p.clone(), 0, msg));
            }
        }
    }
}

/// `ValidateTolerations`.
pub(crate) fn validate_tolerations(tols: &[Value], path: &str, errs: &mut Errs) {
    for (i, t) in tols.iter().enumerate() {
        let p = ix(path, i);
        let key = s(t, "key");
        let op = s(t, "operator");
        let effect = s(t, "effect");
        if !key.is_empty() {
            validate_label_name(key, &ch(&p, "key"), errs);
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                ch(&p, "operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if get(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                ch(&p, "effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = s(t, "value");
        match op {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        ch(&p, "operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        ch(&p, "operator"),
                        t.clone(),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                ch(&p, "operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() {
            validate_taint_effect(effect, true, &ch(&p, "effect"), errs);
        }
    }
}

pub(crate) fn validate_taint_effect(effect: &str, allow_empty: bool, path: &str, errs: &mut Errs) {
    if effect.is_empty() && !allow_empty {
        errs.push(FieldError::required(path, ""));
        return;
    }
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        errs.push(FieldError::not_supported(
            path,
            effect,
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        ));
    }
}

/// Parse a quantity member, reporting a bad format as `Invalid`.
pub(crate) fn parse_quantity_value(v: &Value, path: &str, errs: &mut Errs) -> Option<Quantity> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            errs.push(FieldError::invalid(
                path,
                other.clone(),
                "must be a quantity",
            ));
            return None;
        }
    };
    match parse_quantity(&text) {
        Ok(q) => Some(q),
        Err(e) => {
            errs.push(FieldError::invalid(path, text, e));
            None
        }
    }
}

/// A quantity that must parse and be non-negative.
pub(crate) fn validate_quantity_value(v: &Value, path: &str, errs: &mut Errs) -> Option<Quantity> {
    let q = parse_quantity_value(v, path, errs)?;
    if q.is_negative() {
        errs.push(FieldError::invalid(
            path,
            q.as_str(),
            super::util::NEGATIVE_MSG,
        ));
    }
    Some(q)
}

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// `IsOvercommitAllowed`: native, non-hugepages resources.
pub(crate) fn overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !is_hugepages(name)
}

/// `IsIntegerResourceName`: extended resources and object counts.
pub(crate) fn is_integer_resource(name: &str) -> bool {
    const INTEGER: &[&str] = &[
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    ];
    INTEGER.contains(&name) || (!is_native_resource(name) && !name.starts_with("requests."))
}

/// `validateContainerResourceName`.
fn validate_container_resource_name(name: &str, path: &str, errs: &mut Errs) -> bool {
    let before = errs.len();
    for msg in super::names::is_qualified_name(name) {
        errs.push(FieldError::invalid(path, name, msg));
    }
    if errs.len() != before {
        return false;
    }
    if !name.contains('/') {
        if !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !is_hugepages(name) {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
            return false;
        }
    } else if !is_native_resource(name) {
        let qualified = super::names::is_qualified_name(&format!("requests.{name}")).is_empty();
        if name.starts_with("requests.") || !qualified {
            errs.push(FieldError::invalid(
                path,
                name,
                "doesn't follow extended resource name standard",
            ));
            return false;
        }
    }
    true
}

/// `ValidateResourceRequirements` for a container.
pub(crate) fn validate_resource_requirements(res: &Value, path: &str, errs: &mut Errs) {
    let lim_path = ch(path, "limits");
    let req_path = ch(path, "requests");
    let mut limits: BTreeMap<String, Quantity> = BTreeMap::new();
    if let Some(m) = obj(res, "limits") {
        for (k, v) in m {
            let p = ky(&lim_path, k);
            validate_container_resource_name(k, &p, errs);
            if let Some(q) = validate_resource_quantity(k, v, &p, errs) {
                limits.insert(k.clone(), q);
            }
        }
    }
    if let Some(m) = obj(res, "requests") {
        for (k, v) in m {
            let p = ky(&req_path, k);
            validate_container_resource_name(k, &p, errs);
            let Some(q) = validate_resource_quantity(k, v, &p, errs) else {
                continue;
            };
            match limits.get(k) {
                Some(lim) => {
                    if q != *lim && !overcommit_allowed(k) {
                        errs.push(FieldError::invalid(
                            req_path.clone(),
                            q.as_str(),
                            format!("must be equal to {k} limit of {}", lim.as_str()),
                        ));
                    } else if q > *lim {
                        errs.push(FieldError::invalid(
                            req_path.clone(),
                            q.as_str(),
                            format!(
                                "must be less than or equal to {k} limit of {}",
                                lim.as_str()
                            ),
                        ));
                    }
                }
                None if !overcommit_allowed(k) => errs.push(FieldError::required(
                    lim_path.clone(),
                    "Limit must be set for non overcommitable resources",
                )),
                None => {}
            }
        }
    }
}

/// `ValidateResourceQuantityValue`: non-negative, whole for integer resources.
pub(crate) fn validate_resource_quantity(
    name: &str,
    v: &Value,
    path: &str,
    errs: &mut Errs,
) -> Option<Quantity> {
    let before = errs.len();
    let q = validate_quantity_value(v, path, errs)?;
    if errs.len() == before && is_integer_resource(name) && q.milli_value() % 1000 != 0 {
        errs.push(FieldError::invalid(path, q.as_str(), "must be an integer"));
    }
    Some(q)
}

/// The labels of a template, for selector checks.
pub(crate) fn template_labels(tmpl: &Value) -> &Value {
    sub(sub(tmpl, "metadata"), "labels")
}

/// A pod template restart policy that must be one of `allowed`.
pub(crate) fn require_template_restart_policy(
    tmpl: &Value,
    path: &str,
    allowed: &[&str],
    errs: &mut Errs,
) {
    let rp = s(sub(tmpl, "spec"), "restartPolicy");
    if !allowed.contains(&rp) {
        errs.push(FieldError::not_supported(
            ch(path, "spec.restartPolicy"),
            rp,
            allowed,
        ));
    }
}
