//! Core (`""` group) kinds other than the pod itself
//! (`pkg/apis/core/validation/validation.go`).

use super::meta::{validate_label_selector, validate_labels};
use super::names::{
    is_config_map_key, is_dns1123_label, is_dns1123_subdomain, is_qualified_name,
    is_valid_label_value, is_valid_port_num, non_special_ip, parse_cidr, parse_ip,
    INVALID_CIDR_MSG, INVALID_IP_MSG,
};
use super::pod::{
    validate_pod, validate_pod_template_spec, validate_port_num_or_name,
    validate_resource_quantity, validate_taint_effect, PROTOCOLS,
};
use super::util::{arr, ch, flag, get, immutable, int, ix, ky, obj, opt_s, s, semantic_eq, sub};
use super::{Errs, FieldError};
use serde_json::Value;
use std::collections::HashSet;

const MAX_SECRET_SIZE: usize = 1024 * 1024;
const IMMUTABLE_WHEN_SET: &str = "field is immutable when `immutable` is set";

pub(crate) fn validate(kind: &str, obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    match kind {
        "Pod" => validate_pod(obj, old, errs),
        "PodTemplate" => validate_pod_template_spec(get(obj, "template"), "template", errs),
        "ReplicationController" => {
            super::apps::validate_replication_controller(sub(obj, "spec"), errs)
        }
        "Service" => validate_service(obj, old, errs),
        "ConfigMap" => validate_config_map(obj, old, errs),
        "Secret" => validate_secret(obj, old, errs),
        "Namespace" => validate_namespace(obj, errs),
        "Node" => validate_node(obj, old, errs),
        "ServiceAccount" => {
            for (i, sec) in arr(obj, "secrets").iter().enumerate() {
                let n = s(sec, "name");
                if !n.is_empty() {
                    for msg in is_dns1123_subdomain(n) {
                        errs.push(FieldError::invalid(ch(&ix("secrets", i), "name"), n, msg));
                    }
                }
            }
        }
        "Endpoints" => validate_endpoints(obj, errs),
        "PersistentVolume" => validate_pv(obj, errs),
        "PersistentVolumeClaim" => {
            validate_pvc_spec(sub(obj, "spec"), "spec", errs);
            if let Some(old) = old {
                validate_pvc_update(obj, old, errs);
            }
        }
        "ResourceQuota" => validate_resource_quota(obj, errs),
        "LimitRange" => validate_limit_range(obj, errs),
        _ => {}
    }
}

fn is_headless(spec: &Value) -> bool {
    s(spec, "clusterIP") == "None"
}

fn validate_service(svc: &Value, old: Option<&Value>, errs: &mut Errs) {
    let spec = sub(svc, "spec");
    let ty = s(spec, "type");
    let ports = arr(spec, "ports");
    if ports.is_empty() && !is_headless(spec) && ty != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let cluster_ips: Vec<&str> = match spec.get("clusterIPs").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list.iter().filter_map(Value::as_str).collect(),
        _ => match s(spec, "clusterIP") {
            "" => Vec::new(),
            ip => vec![ip],
        },
    };
    match ty {
        "LoadBalancer" | "NodePort" if is_headless(spec) => errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            "None",
            format!("may not be set to 'None' for {ty} services"),
        )),
        "ExternalName" => {
            if !cluster_ips.is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if !arr(spec, "ipFamilies").is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if get(spec, "ipFamilyPolicy").is_some() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            let cname = s(spec, "externalName").trim_end_matches('.');
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                for msg in is_dns1123_subdomain(cname) {
                    errs.push(FieldError::invalid("spec.externalName", cname, msg));
                }
            }
        }
        _ => {}
    }
    let mut port_names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = ix("spec.ports", i);
        let name = s(p, "name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(ch(&pp, "name"), ""));
        } else if !name.is_empty() {
            for msg in is_dns1123_label(name) {
                errs.push(FieldError::invalid(ch(&pp, "name"), name, msg));
            }
            if !port_names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(ch(&pp, "name"), name));
            }
        }
        let port = int(p, "port").unwrap_or(0);
        for msg in is_valid_port_num(port) {
            errs.push(FieldError::invalid(ch(&pp, "port"), port, msg));
        }
        match s(p, "protocol") {
            "" => errs.push(FieldError::required(ch(&pp, "protocol"), "")),
            proto if !PROTOCOLS.contains(&proto) => errs.push(FieldError::not_supported(
                ch(&pp, "protocol"),
                proto,
                PROTOCOLS,
            )),
            _ => {}
        }
        if get(p, "targetPort").is_some() {
            validate_port_num_or_name(p, "targetPort", &pp, errs);
        }
        if let Some(ap) = opt_s(p, "appProtocol") {
            for msg in is_qualified_name(ap) {
                errs.push(FieldError::invalid(ch(&pp, "appProtocol"), ap, msg));
            }
        }
    }
    validate_labels(spec, "selector", "spec.selector", errs);
    match s(spec, "sessionAffinity") {
        "" => errs.push(FieldError::required("spec.sessionAffinity", "")),
        "ClientIP" => {
            let t = int(
                sub(sub(spec, "sessionAffinityConfig"), "clientIP"),
                "timeoutSeconds",
            );
            match t {
                None => errs.push(FieldError::required(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    "",
                )),
                Some(t) if !(1..=86400).contains(&t) => errs.push(FieldError::invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    t,
                    "must be greater than 0 and less than 86400",
                )),
                _ => {}
            }
        }
        "None" => {
            if get(spec, "sessionAffinityConfig").is_some() {
                errs.push(FieldError::forbidden(
                    "spec.sessionAffinityConfig",
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            "spec.sessionAffinity",
            other,
            &["ClientIP", "None"],
        )),
    }
    if ty != "ExternalName" {
        let explicit_ips = spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        let cip = s(spec, "clusterIP");
        if explicit_ips && !cip.is_empty() && cluster_ips.first() != Some(&cip) {
            errs.push(FieldError::invalid(
                "spec.clusterIPs",
                Value::from(cluster_ips.clone()),
                "first value must match `clusterIP`",
            ));
        }
        let field = |i: usize| {
            if explicit_ips {
                ix("spec.clusterIPs", i)
            } else {
                "spec.clusterIP".to_string()
            }
        };
        for (i, ip) in cluster_ips.iter().enumerate() {
            if i == 0 && *ip == "None" {
                if cluster_ips.len() > 1 {
                    errs.push(FieldError::invalid(
                        "spec.clusterIPs",
                        Value::from(cluster_ips.clone()),
                        "'None' must be the first and only value",
                    ));
                }
                break;
            }
            if parse_ip(ip).is_none() {
                errs.push(FieldError::invalid(field(i), *ip, INVALID_IP_MSG));
            }
        }
        for (i, fam) in arr(spec, "ipFamilies").iter().enumerate() {
            let f = fam.as_str().unwrap_or("");
            if !matches!(f, "IPv4" | "IPv6") {
                errs.push(FieldError::not_supported(
                    ix("spec.ipFamilies", i),
                    f,
                    &["IPv4", "IPv6"],
                ));
            }
        }
        if let Some(p) = opt_s(spec, "ipFamilyPolicy") {
            if !matches!(p, "SingleStack" | "PreferDualStack" | "RequireDualStack") {
                errs.push(FieldError::not_supported(
                    "spec.ipFamilyPolicy",
                    p,
                    &["PreferDualStack", "RequireDualStack", "SingleStack"],
                ));
            }
        }
    }
    for (i, ip) in arr(spec, "externalIPs").iter().enumerate() {
        let ip = ip.as_str().unwrap_or("");
        match parse_ip(ip) {
            None => errs.push(FieldError::invalid(
                ix("spec.externalIPs", i),
                ip,
                INVALID_IP_MSG,
            )),
            Some(addr) => {
                if let Some(msg) = non_special_ip(addr) {
                    errs.push(FieldError::invalid(ix("spec.externalIPs", i), ip, msg));
                }
            }
        }
    }
    match ty {
        "" => errs.push(FieldError::required("spec.type", "")),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName" => {}
        other => errs.push(FieldError::not_supported(
            "spec.type",
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    let mut node_ports = HashSet::new();
    let mut port_keys = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = ix("spec.ports", i);
        let np = int(p, "nodePort").unwrap_or(0);
        if np != 0 {
            if ty == "ClusterIP" {
                errs.push(FieldError::forbidden(
                    ch(&pp, "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
            if !node_ports.insert((s(p, "protocol").to_string(), np)) {
                errs.push(FieldError::duplicate(ch(&pp, "nodePort"), np));
            }
        }
        let key = (s(p, "protocol").to_string(), int(p, "port").unwrap_or(0));
        if !port_keys.insert(key.clone()) {
            errs.push(FieldError::duplicate(
                pp,
                serde_json::json!({"port": key.1, "protocol": key.0}),
            ));
        }
    }
    let ranges = arr(spec, "loadBalancerSourceRanges");
    if !ranges.is_empty() {
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                "spec.LoadBalancerSourceRanges",
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, r) in ranges.iter().enumerate() {
            let r = r.as_str().unwrap_or("").trim();
            if parse_cidr(r).is_none() {
                errs.push(FieldError::invalid(
                    ix("spec.LoadBalancerSourceRanges", i),
                    r,
                    INVALID_CIDR_MSG,
                ));
            }
        }
    }
    if get(spec, "allocateLoadBalancerNodePorts").is_some() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if ty == "LoadBalancer" && get(spec, "allocateLoadBalancerNodePorts").is_none() {
        errs.push(FieldError::required("allocateLoadBalancerNodePorts", ""));
    }
    let externally_accessible = matches!(ty, "LoadBalancer" | "NodePort")
        || (ty == "ClusterIP" && !arr(spec, "externalIPs").is_empty());
    let etp = s(spec, "externalTrafficPolicy");
    if !externally_accessible {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required("spec.externalTrafficPolicy", ""));
    } else if !matches!(etp, "Cluster" | "Local") {
        errs.push(FieldError::not_supported(
            "spec.externalTrafficPolicy",
            etp,
            &["Cluster", "Local"],
        ));
    }
    if let Some(hc) = int(spec, "healthCheckNodePort") {
        if hc != 0 {
            if !(ty == "LoadBalancer" && etp == "Local") {
                errs.push(FieldError::invalid(
                    "spec.healthCheckNodePort",
                    hc,
                    "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
                ));
            } else {
                for msg in is_valid_port_num(hc) {
                    errs.push(FieldError::invalid("spec.healthCheckNodePort", hc, msg));
                }
            }
        }
    }
    match opt_s(spec, "internalTrafficPolicy") {
        None if matches!(ty, "ClusterIP" | "NodePort" | "LoadBalancer") => {
            errs.push(FieldError::required("spec.internalTrafficPolicy", ""))
        }
        Some(p) if !matches!(p, "Cluster" | "Local") => errs.push(FieldError::not_supported(
            "spec.internalTrafficPolicy",
            p,
            &["Cluster", "Local"],
        )),
        _ => {}
    }
    if let Some(td) = opt_s(spec, "trafficDistribution") {
        if td != "PreferClose" {
            errs.push(FieldError::not_supported(
                "spec.trafficDistribution",
                td,
                &["PreferClose"],
            ));
        }
    }
    if let Some(old) = old {
        validate_service_update(spec, sub(old, "spec"), errs);
    }
}

fn service_cluster_ips(spec: &Value) -> Vec<String> {
    match spec.get("clusterIPs").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => match s(spec, "clusterIP") {
            "" => Vec::new(),
            ip => vec![ip.to_string()],
        },
    }
}

fn validate_service_update(spec: &Value, old: &Value, errs: &mut Errs) {
    if s(spec, "type") == "ExternalName" || s(old, "type") == "ExternalName" {
        return;
    }
    if is_headless(spec) && is_headless(old) {
        return;
    }
    let new_ips = service_cluster_ips(spec);
    let old_ips = service_cluster_ips(old);
    let bad = Value::from(new_ips.clone());
    if old_ips.is_empty() {
        return;
    }
    if new_ips.is_empty() {
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            bad,
            "primary clusterIP can not be unset",
        ));
        return;
    }
    for (i, (n, o)) in new_ips.iter().zip(&old_ips).enumerate() {
        if n != o {
            errs.push(FieldError::invalid(
                ix("spec.clusterIPs", i),
                bad.clone(),
                "may not change once set",
            ));
        }
    }
}

/// Status-subresource checks for Services: load-balancer ingress addresses.
pub(crate) fn validate_service_status(svc: &Value, errs: &mut Errs) {
    let ingress = arr(sub(sub(svc, "status"), "loadBalancer"), "ingress");
    for (i, ing) in ingress.iter().enumerate() {
        let p = ix("status.loadBalancer.ingress", i);
        let ip = s(ing, "ip");
        if !ip.is_empty() && parse_ip(ip).is_none() {
            errs.push(FieldError::invalid(ch(&p, "ip"), ip, INVALID_IP_MSG));
        }
        let host = s(ing, "hostname");
        if !host.is_empty() {
            for msg in is_dns1123_subdomain(host) {
                errs.push(FieldError::invalid(ch(&p, "hostname"), host, msg));
            }
            if parse_ip(host).is_some() {
                errs.push(FieldError::invalid(
                    ch(&p, "hostname"),
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
        }
    }
}

fn base64_decoded_len(v: &str) -> usize {
    let trimmed = v.trim_end_matches('=');
    trimmed.len() * 3 / 4
}

fn validate_config_map(cm: &Value, old: Option<&Value>, errs: &mut Errs) {
    let data = obj(cm, "data");
    let binary = obj(cm, "binaryData");
    let mut total = 0usize;
    if let Some(d) = data {
        for (k, v) in d {
            for msg in is_config_map_key(k) {
                errs.push(FieldError::invalid(ky("data", k), k.as_str(), msg));
            }
            if binary.is_some_and(|b| b.contains_key(k)) {
                errs.push(FieldError::invalid(
                    ky("data", k),
                    k.as_str(),
                    "duplicate of key present in binaryData",
                ));
            }
            total += v.as_str().map_or(0, str::len);
        }
    }
    if let Some(b) = binary {
        for (k, v) in b {
            for msg in is_config_map_key(k) {
                errs.push(FieldError::invalid(ky("binaryData", k), k.as_str(), msg));
            }
            if data.is_some_and(|d| d.contains_key(k)) {
                errs.push(FieldError::invalid(
                    ky("binaryData", k),
                    k.as_str(),
                    "duplicate of key present in data",
                ));
            }
            total += v.as_str().map_or(0, base64_decoded_len);
        }
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long("", MAX_SECRET_SIZE));
    }
    if let Some(old) = old {
        validate_immutable_data(cm, old, &["data", "binaryData"], errs);
    }
}

fn validate_immutable_data(new: &Value, old: &Value, fields: &[&str], errs: &mut Errs) {
    if !flag(old, "immutable") {
        return;
    }
    if !flag(new, "immutable") {
        errs.push(FieldError::forbidden("immutable", IMMUTABLE_WHEN_SET));
    }
    for f in fields {
        if !semantic_eq(sub(new, f), sub(old, f)) {
            errs.push(FieldError::forbidden(*f, IMMUTABLE_WHEN_SET));
        }
    }
}

fn validate_secret(secret: &Value, old: Option<&Value>, errs: &mut Errs) {
    // stringData is merged into data by the server; both count as data keys.
    let mut keys: Vec<(String, usize)> = Vec::new();
    if let Some(d) = obj(secret, "data") {
        for (k, v) in d {
            keys.push((k.clone(), v.as_str().map_or(0, base64_decoded_len)));
        }
    }
    if let Some(d) = obj(secret, "stringData") {
        for (k, v) in d {
            keys.retain(|(existing, _)| existing != k);
            keys.push((k.clone(), v.as_str().map_or(0, str::len)));
        }
    }
    let mut total = 0;
    for (k, len) in &keys {
        for msg in is_config_map_key(k) {
            errs.push(FieldError::invalid(ky("data", k), k.as_str(), msg));
        }
        total += len;
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long("data", MAX_SECRET_SIZE));
    }
    let has = |k: &str| keys.iter().any(|(key, _)| key == k);
    match s(secret, "type") {
        "kubernetes.io/service-account-token" => {
            let ann = sub(sub(secret, "metadata"), "annotations");
            if s(ann, "kubernetes.io/service-account.name").is_empty() {
                errs.push(FieldError::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" if !has(".dockercfg") => {
            errs.push(FieldError::required("data[.dockercfg]", ""));
        }
        "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => {
            errs.push(FieldError::required("data[.dockerconfigjson]", ""));
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(FieldError::required("data[username]", ""));
            errs.push(FieldError::required("data[password]", ""));
        }
        "kubernetes.io/ssh-auth"
            if !keys
                .iter()
                .any(|(k, len)| k == "ssh-privatekey" && *len > 0) =>
        {
            errs.push(FieldError::required("data[ssh-privatekey]", ""));
        }
        "kubernetes.io/tls" => {
            if !has("tls.crt") {
                errs.push(FieldError::required("data[tls.crt]", ""));
            }
            if !has("tls.key") {
                errs.push(FieldError::required("data[tls.key]", ""));
            }
        }
        _ => {}
    }
    if let Some(old) = old {
        immutable(secret, old, "type", "", errs);
        validate_immutable_data(secret, old, &["data"], errs);
    }
}

fn validate_namespace(ns: &Value, errs: &mut Errs) {
    for f in arr(sub(ns, "spec"), "finalizers") {
        let f = f.as_str().unwrap_or("");
        let msgs = is_qualified_name(f);
        if !msgs.is_empty() {
            for msg in msgs {
                errs.push(FieldError::invalid("spec.finalizers", f, msg));
            }
        } else if !f.contains('/') && f != "kubernetes" {
            errs.push(FieldError::invalid(
                "spec.finalizers",
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
}

fn validate_node(node: &Value, old: Option<&Value>, errs: &mut Errs) {
    let spec = sub(node, "spec");
    let cidrs: Vec<&str> = arr(spec, "podCIDRs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for (i, c) in cidrs.iter().enumerate() {
        if parse_cidr(c).is_none() {
            errs.push(FieldError::invalid(
                ix("spec.podCIDRs", i),
                *c,
                INVALID_CIDR_MSG,
            ));
        }
    }
    let single = s(spec, "podCIDR");
    if !single.is_empty() && cidrs.is_empty() && parse_cidr(single).is_none() {
        errs.push(FieldError::invalid(
            "spec.podCIDR",
            single,
            INVALID_CIDR_MSG,
        ));
    }
    if cidrs.len() > 1 {
        let v4 = cidrs
            .iter()
            .filter(|c| parse_cidr(c).is_some_and(|(ip, _)| ip.is_ipv4()))
            .count();
        if cidrs.len() > 2 || v4 != 1 {
            errs.push(FieldError::invalid(
                "spec.podCIDRs",
                Value::from(cidrs.clone()),
                "may specify no more than one CIDR for each IP family",
            ));
        }
    }
    let mut seen = HashSet::new();
    for (i, t) in arr(spec, "taints").iter().enumerate() {
        let p = ix("spec.taints", i);
        let key = s(t, "key");
        super::meta::validate_label_name(key, &ch(&p, "key"), errs);
        let value = s(t, "value");
        for msg in is_valid_label_value(value) {
            errs.push(FieldError::invalid(ch(&p, "value"), value, msg));
        }
        let effect = s(t, "effect");
        validate_taint_effect(effect, false, &ch(&p, "effect"), errs);
        if !seen.insert((key.to_string(), effect.to_string())) {
            errs.push(FieldError::duplicate(p, format!("{key}:{effect}")));
        }
    }
    validate_node_resources(node, errs);
    if let Some(old) = old {
        let old_spec = sub(old, "spec");
        let old_cidrs: Vec<&str> = arr(old_spec, "podCIDRs")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        if !old_cidrs.is_empty() && old_cidrs != cidrs {
            errs.push(FieldError::forbidden(
                "spec.podCIDRs",
                "node updates may not change podCIDR except from \"\" to valid",
            ));
        }
        let old_provider = s(old_spec, "providerID");
        if !old_provider.is_empty() && old_provider != s(spec, "providerID") {
            errs.push(FieldError::forbidden(
                "spec.providerID",
                "node updates may not change providerID except from \"\" to valid",
            ));
        }
    }
}

/// `ValidateNodeResources`: capacity and allocatable quantities.
pub(crate) fn validate_node_resources(node: &Value, errs: &mut Errs) {
    let status = sub(node, "status");
    for field in ["capacity", "allocatable"] {
        if let Some(m) = obj(status, field) {
            for (k, v) in m {
                validate_resource_quantity(k, v, &format!("status.{field}.{k}"), errs);
            }
        }
    }
}

fn validate_endpoints(ep: &Value, errs: &mut Errs) {
    for (i, ss) in arr(ep, "subsets").iter().enumerate() {
        let sp = ix("subsets", i);
        let (addrs, not_ready) = (arr(ss, "addresses"), arr(ss, "notReadyAddresses"));
        if addrs.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(
                sp.clone(),
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (list, items) in [("addresses", addrs), ("notReadyAddresses", not_ready)] {
            for (j, a) in items.iter().enumerate() {
                let ap = ix(&ch(&sp, list), j);
                let ip = s(a, "ip");
                match parse_ip(ip) {
                    None => errs.push(FieldError::invalid(ch(&ap, "ip"), ip, INVALID_IP_MSG)),
                    Some(addr) => {
                        if let Some(msg) = non_special_ip(addr) {
                            errs.push(FieldError::invalid(ch(&ap, "ip"), ip, msg));
                        }
                    }
                }
                let host = s(a, "hostname");
                if !host.is_empty() {
                    for msg in is_dns1123_label(host) {
                        errs.push(FieldError::invalid(ch(&ap, "hostname"), host, msg));
                    }
                }
                if let Some(n) = opt_s(a, "nodeName") {
                    for msg in is_dns1123_subdomain(n) {
                        errs.push(FieldError::invalid(ch(&ap, "nodeName"), n, msg));
                    }
                }
            }
        }
        let ports = arr(ss, "ports");
        for (j, p) in ports.iter().enumerate() {
            let pp = ix(&ch(&sp, "ports"), j);
            let name = s(p, "name");
            if ports.len() > 1 && name.is_empty() {
                errs.push(FieldError::required(ch(&pp, "name"), ""));
            } else if !name.is_empty() {
                for msg in is_dns1123_label(name) {
                    errs.push(FieldError::invalid(ch(&pp, "name"), name, msg));
                }
            }
            let port = int(p, "port").unwrap_or(0);
            for msg in is_valid_port_num(port) {
                errs.push(FieldError::invalid(ch(&pp, "port"), port, msg));
            }
            match s(p, "protocol") {
                "" => errs.push(FieldError::required(ch(&pp, "protocol"), "")),
                proto if !PROTOCOLS.contains(&proto) => errs.push(FieldError::not_supported(
                    ch(&pp, "protocol"),
                    proto,
                    PROTOCOLS,
                )),
                _ => {}
            }
        }
    }
}

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

const PV_SOURCES: &[&str] = &[
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "hostPath",
    "glusterfs",
    "nfs",
    "rbd",
    "quobyte",
    "iscsi",
    "cinder",
    "cephfs",
    "fc",
    "flocker",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

fn validate_access_modes(spec: &Value, path: &str, required_msg: &str, errs: &mut Errs) {
    let modes = arr(spec, "accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required(ch(path, "accessModes"), required_msg));
    }
    for m in modes {
        let m = m.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&m) {
            errs.push(FieldError::not_supported(
                ch(path, "accessModes"),
                m,
                ACCESS_MODES,
            ));
        }
    }
}

fn validate_volume_mode(spec: &Value, path: &str, errs: &mut Errs) {
    if let Some(m) = opt_s(spec, "volumeMode") {
        if !matches!(m, "Block" | "Filesystem") {
            errs.push(FieldError::not_supported(
                ch(path, "volumeMode"),
                m,
                &["Block", "Filesystem"],
            ));
        }
    }
}

fn validate_storage_class_name(spec: &Value, path: &str, errs: &mut Errs) {
    let sc = s(spec, "storageClassName");
    if !sc.is_empty() {
        for msg in is_dns1123_subdomain(sc) {
            errs.push(FieldError::invalid(ch(path, "storageClassName"), sc, msg));
        }
    }
}

fn validate_pv(pv: &Value, errs: &mut Errs) {
    let spec = sub(pv, "spec");
    validate_access_modes(spec, "spec", "", errs);
    match obj(spec, "capacity") {
        None => errs.push(FieldError::required("spec.capacity", "")),
        Some(cap) if cap.is_empty() => errs.push(FieldError::required("spec.capacity", "")),
        Some(cap) => {
            let keys: Vec<&str> = cap.keys().map(String::as_str).collect();
            if !cap.contains_key("storage") || cap.len() != 1 {
                errs.push(FieldError::not_supported(
                    "spec.capacity",
                    Value::from(keys),
                    &["storage"],
                ));
            }
            for (k, v) in cap {
                validate_resource_quantity(k, v, &ky("spec.capacity", k), errs);
            }
        }
    }
    let sources: Vec<&str> = PV_SOURCES
        .iter()
        .copied()
        .filter(|k| get(spec, k).is_some())
        .collect();
    match sources.len() {
        0 => errs.push(FieldError::required("spec", "must specify a volume type")),
        1 => {}
        _ => {
            for extra in &sources[1..] {
                errs.push(FieldError::forbidden(
                    ch("spec", extra),
                    "may not specify more than 1 volume type",
                ));
            }
        }
    }
    if let Some(hp) = get(spec, "hostPath") {
        if s(hp, "path").is_empty() {
            errs.push(FieldError::required("spec.hostPath.path", ""));
        }
    }
    if let Some(policy) = opt_s(spec, "persistentVolumeReclaimPolicy") {
        if !matches!(policy, "Delete" | "Recycle" | "Retain") {
            errs.push(FieldError::not_supported(
                "spec.persistentVolumeReclaimPolicy",
                policy,
                &["Delete", "Recycle", "Retain"],
            ));
        }
    }
    validate_storage_class_name(spec, "spec", errs);
    validate_volume_mode(spec, "spec", errs);
}

/// `ValidatePersistentVolumeClaimSpec` (also used for StatefulSet claim templates).
pub(crate) fn validate_pvc_spec(spec: &Value, path: &str, errs: &mut Errs) {
    validate_access_modes(spec, path, "at least 1 access mode is required", errs);
    if let Some(sel) = get(spec, "selector") {
        validate_label_selector(Some(sel), &ch(path, "selector"), errs);
    }
    let storage_path = ky(&ch(path, "resources"), "storage");
    match get(sub(sub(spec, "resources"), "requests"), "storage") {
        None => errs.push(FieldError::required(storage_path, "")),
        Some(v) => {
            if let Some(q) = super::pod::parse_quantity_value(v, &storage_path, errs) {
                if q.nano_value() <= 0 {
                    errs.push(FieldError::invalid(
                        storage_path,
                        q.as_str(),
                        "must be greater than zero",
                    ));
                }
            }
        }
    }
    validate_storage_class_name(spec, path, errs);
    validate_volume_mode(spec, path, errs);
}

fn validate_pvc_update(pvc: &Value, old: &Value, errs: &mut Errs) {
    let spec = sub(pvc, "spec");
    let old_spec = sub(old, "spec");
    let strip = |v: &Value, keep_volume_name: bool| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            if let Some(r) = m.get_mut("resources").and_then(Value::as_object_mut) {
                r.remove("requests");
            }
            m.remove("volumeAttributesClassName");
            if !keep_volume_name {
                m.remove("volumeName");
            }
        }
        v
    };
    // volumeName may be set once (binding).
    let binding = s(old_spec, "volumeName").is_empty();
    if !semantic_eq(&strip(spec, !binding), &strip(old_spec, !binding)) {
        errs.push(FieldError::forbidden(
            "spec",
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
    let storage = |v: &Value| {
        get(sub(sub(v, "resources"), "requests"), "storage")
            .and_then(|q| q.as_str().map(String::from).or_else(|| Some(q.to_string())))
            .and_then(|q| super::quantity::parse_quantity(&q).ok())
    };
    if let (Some(n), Some(o)) = (storage(spec), storage(old_spec)) {
        if n < o {
            errs.push(FieldError::forbidden(
                "spec.resources.requests.storage",
                "field can not be less than previous value",
            ));
        }
    }
}

const QUOTA_STANDARD: &[&str] = &[
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "ephemeral-storage",
    "storage",
];

fn validate_resource_quota(rq: &Value, errs: &mut Errs) {
    let spec = sub(rq, "spec");
    if let Some(hard) = obj(spec, "hard") {
        for (k, v) in hard {
            let p = ky("spec.hard", k);
            let before = errs.len();
            for msg in is_qualified_name(k) {
                errs.push(FieldError::invalid(p.clone(), k.as_str(), msg));
            }
            let standard = QUOTA_STANDARD.contains(&k.as_str())
                || k.starts_with("hugepages-")
                || k.starts_with("requests.hugepages-")
                || k.starts_with("count/");
            if errs.len() == before && !k.contains('/') && !standard {
                errs.push(FieldError::invalid(
                    p.clone(),
                    k.as_str(),
                    "must be a standard resource for quota",
                ));
            }
            validate_resource_quantity(k, v, &p, errs);
        }
    }
    const SCOPES: &[&str] = &[
        "BestEffort",
        "CrossNamespacePodAffinity",
        "NotBestEffort",
        "NotTerminating",
        "PriorityClass",
        "Terminating",
        "VolumeAttributesClass",
    ];
    for sc in arr(spec, "scopes") {
        let sc = sc.as_str().unwrap_or("");
        if !SCOPES.contains(&sc) {
            errs.push(FieldError::not_supported("spec.scopes", sc, SCOPES));
        }
    }
}

fn validate_limit_range(lr: &Value, errs: &mut Errs) {
    let mut types = HashSet::new();
    for (i, item) in arr(sub(lr, "spec"), "limits").iter().enumerate() {
        let p = ix("spec.limits", i);
        let ty = s(item, "type");
        let tp = ch(&p, "type");
        let before = errs.len();
        for msg in is_qualified_name(ty) {
            errs.push(FieldError::invalid(tp.clone(), ty, msg));
        }
        if errs.len() == before
            && !ty.contains('/')
            && !matches!(ty, "Pod" | "Container" | "PersistentVolumeClaim")
        {
            errs.push(FieldError::invalid(
                tp.clone(),
                ty,
                "must be a standard limit type or fully qualified",
            ));
        }
        if !types.insert(ty.to_string()) {
            errs.push(FieldError::duplicate(tp, ty));
        }
        let mut parsed: std::collections::BTreeMap<(&str, String), super::quantity::Quantity> =
            Default::default();
        for field in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            if let Some(m) = obj(item, field) {
                if ty == "Pod" && matches!(field, "default" | "defaultRequest") && !m.is_empty() {
                    errs.push(FieldError::forbidden(
                        ch(&p, field),
                        "may not be specified when `type` is 'Pod'",
                    ));
                    continue;
                }
                for (k, v) in m {
                    if let Some(q) = validate_resource_quantity(k, v, &ky(&ch(&p, field), k), errs)
                    {
                        parsed.insert((field, k.clone()), q);
                    }
                }
            }
        }
        let names: HashSet<String> = parsed.keys().map(|(_, k)| k.clone()).collect();
        for k in names {
            let q = |f: &'static str| parsed.get(&(f, k.clone()));
            if let (Some(min), Some(max)) = (q("min"), q("max")) {
                if min > max {
                    errs.push(FieldError::invalid(
                        ky(&ch(&p, "min"), &k),
                        min.as_str(),
                        format!(
                            "min value {} is greater than max value {}",
                            min.as_str(),
                            max.as_str()
                        ),
                    ));
                }
            }
            if let (Some(dr), Some(min)) = (q("defaultRequest"), q("min")) {
                if min > dr {
                    errs.push(FieldError::invalid(
                        ky(&ch(&p, "defaultRequest"), &k),
                        dr.as_str(),
                        format!(
                            "min value {} is greater than default request value {}",
                            min.as_str(),
                            dr.as_str()
                        ),
                    ));
                }
            }
            if let (Some(dr), Some(max)) = (q("defaultRequest"), q("max")) {
                if dr > max {
                    errs.push(FieldError::invalid(
                        ky(&ch(&p, "defaultRequest"), &k),
                        dr.as_str(),
                        format!(
                            "default request value {} is greater than max value {}",
                            dr.as_str(),
                            max.as_str()
                        ),
                    ));
                }
            }
            if let (Some(dr), Some(d)) = (q("defaultRequest"), q("default")) {
                if dr > d {
                    errs.push(FieldError::invalid(
                        ky(&ch(&p, "defaultRequest"), &k),
                        dr.as_str(),
                        format!(
                            "default request value {} is greater than default limit value {}",
                            dr.as_str(),
                            d.as_str()
                        ),
                    ));
                }
            }
            if let (Some(d), Some(max)) = (q("default"), q("max")) {
                if d > max {
                    errs.push(FieldError::invalid(
                        ky(&ch(&p, "default"), &k),
                        d.as_str(),
                        format!(
                            "default value {} is greater than max value {}",
                            d.as_str(),
                            max.as_str()
                        ),
                    ));
                }
            }
            if let (Some(min), Some(d)) = (q("min"), q("default")) {
                if min > d {
                    errs.push(FieldError::invalid(
                        ky(&ch(&p, "default"), &k),
                        d.as_str(),
                        format!(
                            "min value {} is greater than default value {}",
                            min.as_str(),
                            d.as_str()
                        ),
                    ));
                }
            }
        }
    }
}
