//! Kinds outside core/apps/batch: autoscaling, networking, RBAC, scheduling,
//! policy, coordination, discovery, storage and node groups.

use super::apps::{not_more_than_100_percent, validate_int_or_percent};
use super::meta::{validate_conditions, validate_label_selector};
use super::names::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_qualified_name,
    is_valid_path_segment_name, is_valid_port_name, is_valid_port_num, parse_ip,
};
use super::util::{arr, ch, get, immutable, int, ix, nonneg, opt_s, s, semantic_eq, sub};
use super::{Errs, FieldError};
use serde_json::Value;

pub(crate) fn validate(group: &str, kind: &str, obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    match (group, kind) {
        ("autoscaling", "HorizontalPodAutoscaler") => validate_hpa(obj, errs),
        ("networking.k8s.io", "Ingress") => validate_ingress(obj, errs),
        ("networking.k8s.io", "IngressClass") => {
            let c = s(sub(obj, "spec"), "controller");
            if c.is_empty() {
                errs.push(FieldError::required("spec.controller", ""));
            }
            if let Some(old) = old {
                immutable(
                    sub(obj, "spec"),
                    sub(old, "spec"),
                    "controller",
                    "spec",
                    errs,
                );
            }
        }
        ("rbac.authorization.k8s.io", "Role") => validate_rules(obj, true, errs),
        ("rbac.authorization.k8s.io", "ClusterRole") => validate_rules(obj, false, errs),
        ("rbac.authorization.k8s.io", "RoleBinding") => validate_binding(obj, old, true, errs),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            validate_binding(obj, old, false, errs)
        }
        ("scheduling.k8s.io", "PriorityClass") => validate_priority_class(obj, old, errs),
        ("policy", "PodDisruptionBudget") => validate_pdb(obj, errs),
        ("coordination.k8s.io", "Lease") => validate_lease(obj, errs),
        ("discovery.k8s.io", "EndpointSlice") => validate_endpoint_slice(obj, old, errs),
        ("storage.k8s.io", "StorageClass") => validate_storage_class(obj, old, errs),
        ("node.k8s.io", "RuntimeClass") => {
            let handler = s(obj, "handler");
            for msg in is_dns1123_label(handler) {
                errs.push(FieldError::invalid("handler", handler, msg));
            }
            if let Some(old) = old {
                immutable(obj, old, "handler", "", errs);
            }
        }
        _ => {}
    }
}

fn validate_cross_version_ref(r: &Value, path: &str, errs: &mut Errs) {
    for key in ["kind", "name"] {
        let v = s(r, key);
        if v.is_empty() {
            errs.push(FieldError::required(ch(path, key), ""));
        } else {
            for msg in is_valid_path_segment_name(v) {
                errs.push(FieldError::invalid(ch(path, key), v, msg));
            }
        }
    }
}

fn validate_hpa(hpa: &Value, errs: &mut Errs) {
    let spec = sub(hpa, "spec");
    validate_cross_version_ref(sub(spec, "scaleTargetRef"), "spec.scaleTargetRef", errs);
    let min = int(spec, "minReplicas");
    if let Some(m) = min {
        if m < 1 {
            errs.push(FieldError::invalid(
                "spec.minReplicas",
                m,
                "must be greater than or equal to 1",
            ));
        }
    }
    let max = int(spec, "maxReplicas").unwrap_or(0);
    if max < 1 {
        errs.push(FieldError::invalid(
            "spec.maxReplicas",
            max,
            "must be greater than 0",
        ));
    }
    if let Some(m) = min {
        if max < m {
            errs.push(FieldError::invalid(
                "spec.maxReplicas",
                max,
                "must be greater than or equal to `minReplicas`",
            ));
        }
    }
    if let Some(t) = int(spec, "targetCPUUtilizationPercentage") {
        if t < 1 {
            errs.push(FieldError::invalid(
                "spec.targetCPUUtilizationPercentage",
                t,
                "must be greater than 0",
            ));
        }
    }
    const METRIC_TYPES: &[&str] = &[
        "ContainerResource",
        "External",
        "Object",
        "Pods",
        "Resource",
    ];
    for (i, m) in arr(spec, "metrics").iter().enumerate() {
        let p = ix("spec.metrics", i);
        let ty = s(m, "type");
        if ty.is_empty() {
            errs.push(FieldError::required(
                ch(&p, "type"),
                "must specify a metric source type",
            ));
            continue;
        }
        if !METRIC_TYPES.contains(&ty) {
            errs.push(FieldError::not_supported(ch(&p, "type"), ty, METRIC_TYPES));
            continue;
        }
        let member = match ty {
            "ContainerResource" => "containerResource",
            "External" => "external",
            "Object" => "object",
            "Pods" => "pods",
            _ => "resource",
        };
        if get(m, member).is_none() {
            errs.push(FieldError::required(
                ch(&p, member),
                format!("must populate information for the given metric source (type {ty})"),
            ));
        }
    }
}

const INVALID_PATH_SEQUENCES: &[&str] = &["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: &[&str] = &["/..", "/."];

fn validate_ingress(ing: &Value, errs: &mut Errs) {
    let spec = sub(ing, "spec");
    let rules = arr(spec, "rules");
    let default_backend = get(spec, "defaultBackend");
    if rules.is_empty() && default_backend.is_none() {
        errs.push(FieldError::invalid(
            "spec.rules",
            Value::Array(Vec::new()),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = default_backend {
        validate_ingress_backend(b, "spec.defaultBackend", errs);
    }
    if let Some(class) = opt_s(spec, "ingressClassName") {
        for msg in is_dns1123_subdomain(class) {
            errs.push(FieldError::invalid("spec.ingressClassName", class, msg));
        }
    }
    for (i, rule) in rules.iter().enumerate() {
        let rp = ix("spec.rules", i);
        let host = s(rule, "host");
        if !host.is_empty() {
            if parse_ip(host).is_some() {
                errs.push(FieldError::invalid(
                    ch(&rp, "host"),
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
            let msgs = match host.strip_prefix("*.") {
                Some(rest) if !rest.contains('*') => is_dns1123_subdomain(rest),
                _ => is_dns1123_subdomain(host),
            };
            for msg in msgs {
                errs.push(FieldError::invalid(ch(&rp, "host"), host, msg));
            }
        }
        let Some(http) = get(rule, "http") else {
            continue;
        };
        let paths = arr(http, "paths");
        let hp = ch(&rp, "http.paths");
        if paths.is_empty() {
            errs.push(FieldError::required(hp.clone(), ""));
        }
        for (j, path) in paths.iter().enumerate() {
            let pp = ix(&hp, j);
            let p = s(path, "path");
            match opt_s(path, "pathType") {
                None => errs.push(FieldError::required(
                    ch(&pp, "pathType"),
                    "pathType must be specified",
                )),
                Some("Exact") | Some("Prefix") => {
                    if !p.starts_with('/') {
                        errs.push(FieldError::invalid(
                            ch(&pp, "path"),
                            p,
                            "must be an absolute path",
                        ));
                    }
                    for seq in INVALID_PATH_SEQUENCES {
                        if p.contains(seq) {
                            errs.push(FieldError::invalid(
                                ch(&pp, "path"),
                                p,
                                format!("must not contain '{seq}'"),
                            ));
                        }
                    }
                    for suffix in INVALID_PATH_SUFFIXES {
                        if p.ends_with(suffix) {
                            errs.push(FieldError::invalid(
                                ch(&pp, "path"),
                                p,
                                format!("cannot end with '{suffix}'"),
                            ));
                        }
                    }
                }
                Some("ImplementationSpecific") => {
                    if !p.is_empty() && !p.starts_with('/') {
                        errs.push(FieldError::invalid(
                            ch(&pp, "path"),
                            p,
                            "must be an absolute path",
                        ));
                    }
                }
                Some(other) => errs.push(FieldError::not_supported(
                    ch(&pp, "pathType"),
                    other,
                    &["Exact", "ImplementationSpecific", "Prefix"],
                )),
            }
            validate_ingress_backend(sub(path, "backend"), &ch(&pp, "backend"), errs);
        }
    }
    for (i, tls) in arr(spec, "tls").iter().enumerate() {
        for (j, h) in arr(tls, "hosts").iter().enumerate() {
            let h = h.as_str().unwrap_or("");
            let target = h.strip_prefix("*.").unwrap_or(h);
            for msg in is_dns1123_subdomain(target) {
                errs.push(FieldError::invalid(
                    ix(&ch(&ix("spec.tls", i), "hosts"), j),
                    h,
                    msg,
                ));
            }
        }
    }
}

fn validate_ingress_backend(b: &Value, path: &str, errs: &mut Errs) {
    let resource = get(b, "resource");
    let service = get(b, "service");
    match (resource, service) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            path,
            "",
            "cannot set both resource and service backends",
        )),
        (Some(r), None) => {
            if s(r, "kind").is_empty() {
                errs.push(FieldError::required(ch(path, "resource.kind"), ""));
            }
            if s(r, "name").is_empty() {
                errs.push(FieldError::required(ch(path, "resource.name"), ""));
            }
        }
        (None, Some(svc)) => {
            let name = s(svc, "name");
            if name.is_empty() {
                errs.push(FieldError::required(ch(path, "service.name"), ""));
            } else {
                for msg in is_dns1035_label(name) {
                    errs.push(FieldError::invalid(ch(path, "service.name"), name, msg));
                }
            }
            let port = sub(svc, "port");
            let pname = s(port, "name");
            let pnum = int(port, "number").unwrap_or(0);
            if !pname.is_empty() && pnum != 0 {
                errs.push(FieldError::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                ));
            } else if !pname.is_empty() {
                for msg in is_valid_port_name(pname) {
                    errs.push(FieldError::invalid(
                        ch(path, "service.port.name"),
                        pname,
                        msg,
                    ));
                }
            } else if pnum != 0 {
                for msg in is_valid_port_num(pnum) {
                    errs.push(FieldError::invalid(
                        ch(path, "service.port.number"),
                        pnum,
                        msg,
                    ));
                }
            } else {
                errs.push(FieldError::required(
                    path,
                    "port name or number is required",
                ));
            }
        }
        (None, None) => errs.push(FieldError::invalid(
            path,
            "",
            "resource or service backend is required",
        )),
    }
}

fn validate_rules(role: &Value, namespaced: bool, errs: &mut Errs) {
    for (i, rule) in arr(role, "rules").iter().enumerate() {
        let p = ix("rules", i);
        if arr(rule, "verbs").is_empty() {
            errs.push(FieldError::required(
                ch(&p, "verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = arr(rule, "nonResourceURLs");
        if !urls.is_empty() {
            if namespaced {
                errs.push(FieldError::invalid(
                    ch(&p, "nonResourceURLs"),
                    Value::Array(urls.to_vec()),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !arr(rule, "apiGroups").is_empty()
                || !arr(rule, "resources").is_empty()
                || !arr(rule, "resourceNames").is_empty()
            {
                errs.push(FieldError::invalid(
                    ch(&p, "nonResourceURLs"),
                    Value::Array(urls.to_vec()),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if arr(rule, "apiGroups").is_empty() {
            errs.push(FieldError::required(
                ch(&p, "apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if arr(rule, "resources").is_empty() {
            errs.push(FieldError::required(
                ch(&p, "resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn validate_binding(b: &Value, old: Option<&Value>, namespaced: bool, errs: &mut Errs) {
    let rr = sub(b, "roleRef");
    let api_group = s(rr, "apiGroup");
    if api_group != RBAC_GROUP {
        errs.push(FieldError::not_supported(
            "roleRef.apiGroup",
            api_group,
            &[RBAC_GROUP],
        ));
    }
    let kind = s(rr, "kind");
    if namespaced {
        if !matches!(kind, "Role" | "ClusterRole") {
            errs.push(FieldError::not_supported(
                "roleRef.kind",
                kind,
                &["Role", "ClusterRole"],
            ));
        }
    } else if kind != "ClusterRole" {
        errs.push(FieldError::not_supported(
            "roleRef.kind",
            kind,
            &["ClusterRole"],
        ));
    }
    let name = s(rr, "name");
    if name.is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    } else {
        for msg in is_valid_path_segment_name(name) {
            errs.push(FieldError::invalid("roleRef.name", name, msg));
        }
    }
    for (i, subj) in arr(b, "subjects").iter().enumerate() {
        let p = ix("subjects", i);
        let name = s(subj, "name");
        if name.is_empty() {
            errs.push(FieldError::required(ch(&p, "name"), ""));
        }
        let group = s(subj, "apiGroup");
        match s(subj, "kind") {
            "ServiceAccount" => {
                if !name.is_empty() {
                    for msg in is_dns1123_subdomain(name) {
                        errs.push(FieldError::invalid(ch(&p, "name"), name, msg));
                    }
                }
                if !group.is_empty() {
                    errs.push(FieldError::not_supported(ch(&p, "apiGroup"), group, &[""]));
                }
                if !namespaced && s(subj, "namespace").is_empty() {
                    errs.push(FieldError::required(ch(&p, "namespace"), ""));
                }
            }
            "User" | "Group" => {
                if group != RBAC_GROUP {
                    errs.push(FieldError::not_supported(
                        ch(&p, "apiGroup"),
                        group,
                        &[RBAC_GROUP],
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                ch(&p, "kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    if let Some(old) = old {
        if !semantic_eq(rr, sub(old, "roleRef")) {
            errs.push(FieldError::invalid(
                "roleRef",
                rr.clone(),
                "cannot change roleRef",
            ));
        }
    }
}

const HIGHEST_USER_PRIORITY: i64 = 1_000_000_000;

fn validate_priority_class(pc: &Value, old: Option<&Value>, errs: &mut Errs) {
    let name = s(sub(pc, "metadata"), "name");
    // `value` is a required member of the v1 type (a Go int32 that a client
    // must send); without it nothing says where the class ranks.
    if get(pc, "value").is_none() {
        errs.push(FieldError::required("value", ""));
    }
    let value = int(pc, "value").unwrap_or(0);
    if name.starts_with("system-") {
        let known = match name {
            "system-node-critical" => Some(2_000_001_000),
            "system-cluster-critical" => Some(2_000_000_000),
            _ => None,
        };
        let err = match known {
            None => Some(format!("{name} is not a known system priority class")),
            Some(v) if v != value => Some(format!("value of {name} PriorityClass must be {v}")),
            Some(_) if pc.get("globalDefault").and_then(Value::as_bool) == Some(true) => Some(
                format!("globalDefault of {name} PriorityClass must be false"),
            ),
            Some(_) => None,
        };
        if let Some(err) = err {
            errs.push(FieldError::forbidden(
                "metadata.name",
                format!("priority class names with 'system-' prefix are reserved for system use only. error: {err}"),
            ));
        }
    } else if value > HIGHEST_USER_PRIORITY {
        errs.push(FieldError::forbidden(
            "value",
            format!("maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"),
        ));
    }
    if let Some(p) = opt_s(pc, "preemptionPolicy") {
        if !matches!(p, "PreemptLowerPriority" | "Never") {
            errs.push(FieldError::not_supported(
                "preemptionPolicy",
                p,
                &["Never", "PreemptLowerPriority"],
            ));
        }
    }
    if let Some(old) = old {
        if int(old, "value") != int(pc, "value") {
            errs.push(FieldError::forbidden(
                "value",
                "may not be changed in an update.",
            ));
        }
        immutable(pc, old, "preemptionPolicy", "", errs);
    }
}

fn validate_pdb(pdb: &Value, errs: &mut Errs) {
    let spec = sub(pdb, "spec");
    if get(spec, "minAvailable").is_some() && get(spec, "maxUnavailable").is_some() {
        errs.push(FieldError::invalid(
            "spec",
            spec.clone(),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for key in ["minAvailable", "maxUnavailable"] {
        if get(spec, key).is_some() {
            validate_int_or_percent(spec, key, "spec", errs);
            not_more_than_100_percent(spec, key, "spec", errs);
        }
    }
    validate_label_selector(get(spec, "selector"), "spec.selector", errs);
    if let Some(p) = opt_s(spec, "unhealthyPodEvictionPolicy") {
        if !matches!(p, "AlwaysAllow" | "IfHealthyBudget") {
            errs.push(FieldError::not_supported(
                "spec.unhealthyPodEvictionPolicy",
                p,
                &["AlwaysAllow", "IfHealthyBudget"],
            ));
        }
    }
}

/// `ValidatePodDisruptionBudgetStatusUpdate` (policy/v1): the conditions,
/// and counts that are never negative.
pub(crate) fn validate_pdb_status(pdb: &Value, errs: &mut Errs) {
    let status = sub(pdb, "status");
    validate_conditions(arr(status, "conditions"), "status.conditions", errs);
    for key in [
        "disruptionsAllowed",
        "currentHealthy",
        "desiredHealthy",
        "expectedPods",
    ] {
        nonneg(status, key, "status", errs);
    }
}

fn validate_lease(lease: &Value, errs: &mut Errs) {
    let spec = sub(lease, "spec");
    if let Some(d) = int(spec, "leaseDurationSeconds") {
        if d <= 0 {
            errs.push(FieldError::invalid(
                "spec.leaseDurationSeconds",
                d,
                "must be greater than 0",
            ));
        }
    }
    if let Some(t) = int(spec, "leaseTransitions") {
        if t < 0 {
            errs.push(FieldError::invalid(
                "spec.leaseTransitions",
                t,
                "must be greater than or equal to 0",
            ));
        }
    }
    if let Some(strategy) = opt_s(spec, "strategy") {
        if strategy != "OldestEmulationVersion" {
            errs.push(FieldError::not_supported(
                "spec.strategy",
                strategy,
                &["OldestEmulationVersion"],
            ));
        }
    }
}

fn validate_endpoint_slice(eps: &Value, old: Option<&Value>, errs: &mut Errs) {
    let at = s(eps, "addressType");
    const TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
    if at.is_empty() {
        errs.push(FieldError::required("addressType", ""));
    } else if !TYPES.contains(&at) {
        errs.push(FieldError::not_supported("addressType", at, TYPES));
    }
    for (i, ep) in arr(eps, "endpoints").iter().enumerate() {
        let p = ix("endpoints", i);
        let addrs = arr(ep, "addresses");
        if addrs.is_empty() {
            errs.push(FieldError::required(
                ch(&p, "addresses"),
                "must contain at least 1 address",
            ));
        }
        for (j, a) in addrs.iter().enumerate() {
            let a = a.as_str().unwrap_or("");
            let ap = ix(&ch(&p, "addresses"), j);
            match at {
                "IPv4" if !parse_ip(a).is_some_and(|ip| ip.is_ipv4()) => {
                    errs.push(FieldError::invalid(ap, a, "must be a valid IPv4 address"))
                }
                "IPv6" if !parse_ip(a).is_some_and(|ip| ip.is_ipv6()) => {
                    errs.push(FieldError::invalid(ap, a, "must be a valid IPv6 address"))
                }
                "FQDN" => {
                    for msg in is_dns1123_subdomain(a) {
                        errs.push(FieldError::invalid(ap.clone(), a, msg));
                    }
                }
                _ => {}
            }
        }
        if let Some(h) = opt_s(ep, "hostname") {
            for msg in is_dns1123_label(h) {
                errs.push(FieldError::invalid(ch(&p, "hostname"), h, msg));
            }
        }
    }
    for (i, port) in arr(eps, "ports").iter().enumerate() {
        let p = ix("ports", i);
        if let Some(name) = opt_s(port, "name") {
            if !name.is_empty() {
                for msg in is_dns1123_label(name) {
                    errs.push(FieldError::invalid(ch(&p, "name"), name, msg));
                }
            }
        }
        if let Some(proto) = opt_s(port, "protocol") {
            if !super::pod::PROTOCOLS.contains(&proto) {
                errs.push(FieldError::not_supported(
                    ch(&p, "protocol"),
                    proto,
                    super::pod::PROTOCOLS,
                ));
            }
        }
        if let Some(n) = int(port, "port") {
            if !(0..=65535).contains(&n) {
                errs.push(FieldError::invalid(
                    ch(&p, "port"),
                    n,
                    "must be between 0 and 65535, inclusive",
                ));
            }
        }
    }
    if let Some(old) = old {
        immutable(eps, old, "addressType", "", errs);
    }
}

fn validate_storage_class(sc: &Value, old: Option<&Value>, errs: &mut Errs) {
    let prov = s(sc, "provisioner");
    if prov.is_empty() {
        errs.push(FieldError::required("provisioner", ""));
    } else {
        for msg in is_qualified_name(&prov.to_lowercase()) {
            errs.push(FieldError::invalid("provisioner", prov, msg));
        }
    }
    if let Some(p) = opt_s(sc, "reclaimPolicy") {
        if !matches!(p, "Delete" | "Retain") {
            errs.push(FieldError::not_supported(
                "reclaimPolicy",
                p,
                &["Delete", "Retain"],
            ));
        }
    }
    if let Some(m) = opt_s(sc, "volumeBindingMode") {
        if !matches!(m, "Immediate" | "WaitForFirstConsumer") {
            errs.push(FieldError::not_supported(
                "volumeBindingMode",
                m,
                &["Immediate", "WaitForFirstConsumer"],
            ));
        }
    }
    if let Some(old) = old {
        for (key, msg) in [
            ("parameters", "updates to parameters are forbidden."),
            ("provisioner", "updates to provisioner are forbidden."),
            ("reclaimPolicy", "updates to reclaimPolicy are forbidden."),
        ] {
            if !semantic_eq(sub(sc, key), sub(old, key)) {
                errs.push(FieldError::forbidden(key, msg));
            }
        }
        immutable(sc, old, "volumeBindingMode", "", errs);
    }
}
