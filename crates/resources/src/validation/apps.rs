//! Workload controllers: Deployment, ReplicaSet, StatefulSet, DaemonSet
//! (`pkg/apis/apps/validation`) and ReplicationController (core).

use super::meta::{
    map_selector_matches, selector_is_empty, selector_matches, validate_label_selector,
    validate_labels,
};
use super::names::is_valid_percent;
use super::pod::{
    require_template_restart_policy, template_labels, validate_pod_template_spec,
    validate_pod_template_spec_with_volumes,
};
use super::util::{
    ch, get, immutable, int, int_or_string, nonneg, s, semantic_eq, sub, IntOrString, NEGATIVE_MSG,
};
use super::{Errs, FieldError};
use serde_json::Value;

const SELECTOR_MISMATCH: &str = "`selector` does not match template `labels`";

pub(crate) fn validate(kind: &str, obj: &Value, old: Option<&Value>, errs: &mut Errs) {
    let spec = sub(obj, "spec");
    match kind {
        "Deployment" => {
            validate_deployment_spec(spec, errs);
            if let Some(old) = old {
                immutable(spec, sub(old, "spec"), "selector", "spec", errs);
            }
        }
        "ReplicaSet" => {
            validate_replica_set_spec(spec, errs);
            if let Some(old) = old {
                immutable(spec, sub(old, "spec"), "selector", "spec", errs);
            }
        }
        "StatefulSet" => {
            validate_stateful_set_spec(spec, errs);
            if let Some(old) = old {
                validate_stateful_set_update(spec, sub(old, "spec"), errs);
            }
        }
        "DaemonSet" => {
            validate_daemon_set_spec(spec, errs);
            if let Some(old) = old {
                immutable(spec, sub(old, "spec"), "selector", "spec", errs);
            }
        }
        "ControllerRevision" => {
            if get(obj, "data").is_none() {
                errs.push(FieldError::required("data", ""));
            }
            nonneg(obj, "revision", "", errs);
            if let Some(old) = old {
                immutable(obj, old, "data", "", errs);
            }
        }
        _ => {}
    }
}

/// Selector checks shared by Deployment, ReplicaSet and StatefulSet.
fn validate_selector_and_template(spec: &Value, what: &str, errs: &mut Errs) {
    let sel = get(spec, "selector");
    match sel {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(sel) => {
            validate_label_selector(Some(sel), "spec.selector", errs);
            if selector_is_empty(sel) {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    sel.clone(),
                    format!("empty selector is invalid for {what}"),
                ));
            }
        }
    }
    let tmpl = get(spec, "template");
    if let Some(t) = tmpl {
        let empty_selector = sel.is_some_and(selector_is_empty);
        if !empty_selector && !selector_matches(sel, template_labels(t)) {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                template_labels(t).clone(),
                SELECTOR_MISMATCH,
            ));
        }
    }
}

/// The pod template of a controller; mounts may also name `extra_volumes`.
fn validate_template_for_controller(
    spec: &Value,
    owner: &str,
    extra_volumes: &[&str],
    errs: &mut Errs,
) {
    let tmpl = get(spec, "template");
    validate_pod_template_spec_with_volumes(tmpl, "spec.template", extra_volumes, errs);
    if let Some(t) = tmpl {
        require_template_restart_policy(t, "spec.template", &["Always"], errs);
        if get(sub(t, "spec"), "activeDeadlineSeconds").is_some() {
            errs.push(FieldError::forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                format!("activeDeadlineSeconds in {owner} is not Supported"),
            ));
        }
    }
}

fn validate_deployment_spec(spec: &Value, errs: &mut Errs) {
    nonneg(spec, "replicas", "spec", errs);
    validate_selector_and_template(spec, "deployment", errs);
    validate_template_for_controller(spec, "ReplicaSet", &[], errs);
    let strategy = sub(spec, "strategy");
    match s(strategy, "type") {
        "Recreate" => {
            if get(strategy, "rollingUpdate").is_some() {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match get(strategy, "rollingUpdate") {
            None => errs.push(FieldError::required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let p = "spec.strategy.rollingUpdate";
                validate_int_or_percent(ru, "maxUnavailable", p, errs);
                validate_int_or_percent(ru, "maxSurge", p, errs);
                if int_or_percent_value(ru, "maxUnavailable") == 0
                    && int_or_percent_value(ru, "maxSurge") == 0
                {
                    errs.push(FieldError::invalid(
                        ch(p, "maxUnavailable"),
                        ru.get("maxUnavailable").cloned().unwrap_or(Value::from(0)),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                not_more_than_100_percent(ru, "maxUnavailable", p, errs);
            }
        },
        other => errs.push(FieldError::not_supported(
            "spec.strategy.type",
            other,
            &["Recreate", "RollingUpdate"],
        )),
    }
    nonneg(spec, "minReadySeconds", "spec", errs);
    nonneg(spec, "revisionHistoryLimit", "spec", errs);
    if let Some(pds) = int(spec, "progressDeadlineSeconds") {
        if pds < 0 {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                pds,
                NEGATIVE_MSG,
            ));
        }
        if pds <= int(spec, "minReadySeconds").unwrap_or(0) {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                pds,
                "must be greater than minReadySeconds",
            ));
        }
    }
}

fn validate_replica_set_spec(spec: &Value, errs: &mut Errs) {
    nonneg(spec, "replicas", "spec", errs);
    nonneg(spec, "minReadySeconds", "spec", errs);
    validate_selector_and_template(spec, "deployment", errs);
    validate_template_for_controller(spec, "ReplicaSet", &[], errs);
}

fn validate_stateful_set_spec(spec: &Value, errs: &mut Errs) {
    match s(spec, "podManagementPolicy") {
        "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            "spec.podManagementPolicy",
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let us = sub(spec, "updateStrategy");
    match s(us, "type") {
        "" => errs.push(FieldError::required("spec.updateStrategy", "")),
        "OnDelete" => {
            if let Some(ru) = get(us, "rollingUpdate") {
                errs.push(FieldError::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    ru.clone(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = get(us, "rollingUpdate") {
                let p = "spec.updateStrategy.rollingUpdate";
                nonneg(ru, "partition", p, errs);
                if get(ru, "maxUnavailable").is_some() {
                    validate_int_or_percent(ru, "maxUnavailable", p, errs);
                    if int_or_percent_value(ru, "maxUnavailable") == 0 {
                        errs.push(FieldError::invalid(
                            ch(p, "maxUnavailable"),
                            ru["maxUnavailable"].clone(),
                            "must be greater than 0",
                        ));
                    }
                    not_more_than_100_percent(ru, "maxUnavailable", p, errs);
                }
            }
        }
        other => errs.push(FieldError::invalid(
            "spec.updateStrategy",
            other,
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(policy) = get(spec, "persistentVolumeClaimRetentionPolicy") {
        for key in ["whenDeleted", "whenScaled"] {
            let v = s(policy, key);
            if !matches!(v, "Retain" | "Delete") {
                errs.push(FieldError::not_supported(
                    ch("spec.persistentVolumeClaimRetentionPolicy", key),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    nonneg(spec, "replicas", "spec", errs);
    nonneg(spec, "minReadySeconds", "spec", errs);
    nonneg(spec, "revisionHistoryLimit", "spec", errs);
    if let Some(ord) = get(spec, "ordinals") {
        nonneg(ord, "start", "spec.ordinals", errs);
    }
    let service_name = s(spec, "serviceName");
    if !service_name.is_empty() {
        for msg in super::names::is_dns1123_label(service_name) {
            errs.push(FieldError::invalid("spec.serviceName", service_name, msg));
        }
    }
    validate_selector_and_template(spec, "statefulset", errs);
    // Each claim template becomes a volume of every pod, named as the claim
    // template, so the containers may mount it.
    let claim_volumes: Vec<&str> = super::util::arr(spec, "volumeClaimTemplates")
        .iter()
        .map(|pvc| s(sub(pvc, "metadata"), "name"))
        .filter(|name| !name.is_empty())
        .collect();
    validate_template_for_controller(spec, "StatefulSet", &claim_volumes, errs);
    for (i, pvc) in super::util::arr(spec, "volumeClaimTemplates")
        .iter()
        .enumerate()
    {
        let p = super::util::ix("spec.volumeClaimTemplates", i);
        let name = s(sub(pvc, "metadata"), "name");
        if name.is_empty() {
            errs.push(FieldError::required(ch(&p, "metadata.name"), ""));
        }
        super::core::validate_pvc_spec(sub(pvc, "spec"), &ch(&p, "spec"), errs);
    }
}

fn validate_stateful_set_update(spec: &Value, old: &Value, errs: &mut Errs) {
    let mut munged = spec.clone();
    if let Some(m) = munged.as_object_mut() {
        for key in [
            "replicas",
            "template",
            "updateStrategy",
            "minReadySeconds",
            "ordinals",
            "revisionHistoryLimit",
            "persistentVolumeClaimRetentionPolicy",
        ] {
            match old.get(key) {
                Some(v) => m.insert(key.into(), v.clone()),
                None => m.remove(key),
            };
        }
    }
    if !semantic_eq(&munged, old) {
        errs.push(FieldError::forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
}

fn validate_daemon_set_spec(spec: &Value, errs: &mut Errs) {
    let sel = get(spec, "selector");
    if sel.is_none() {
        errs.push(FieldError::required("spec.selector", ""));
    }
    validate_label_selector(sel, "spec.selector", errs);
    if let Some(t) = get(spec, "template") {
        let empty_selector = sel.is_some_and(selector_is_empty);
        if !empty_selector && !selector_matches(sel, template_labels(t)) {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                template_labels(t).clone(),
                SELECTOR_MISMATCH,
            ));
        }
    }
    if let Some(sel) = sel {
        if selector_is_empty(sel) {
            errs.push(FieldError::invalid(
                "spec.selector",
                sel.clone(),
                "empty selector is invalid for daemonset",
            ));
        }
    }
    let tmpl = get(spec, "template");
    validate_pod_template_spec(tmpl, "spec.template", errs);
    if let Some(t) = tmpl {
        require_template_restart_policy(t, "spec.template", &["Always"], errs);
        if let Some(ads) = get(sub(t, "spec"), "activeDeadlineSeconds") {
            errs.push(FieldError::invalid(
                "spec.template.spec.activeDeadlineSeconds",
                ads.clone(),
                "activeDeadlineSeconds must be nil for daemon set",
            ));
        }
    }
    nonneg(spec, "minReadySeconds", "spec", errs);
    nonneg(spec, "templateGeneration", "spec", errs);
    let us = sub(spec, "updateStrategy");
    match s(us, "type") {
        "OnDelete" => {}
        "RollingUpdate" => match get(us, "rollingUpdate") {
            None => errs.push(FieldError::required(
                "spec.updateStrategy.rollingUpdate",
                "",
            )),
            Some(ru) => {
                let p = "spec.updateStrategy.rollingUpdate";
                validate_int_or_percent(ru, "maxUnavailable", p, errs);
                validate_int_or_percent(ru, "maxSurge", p, errs);
                not_more_than_100_percent(ru, "maxUnavailable", p, errs);
                not_more_than_100_percent(ru, "maxSurge", p, errs);
                let has_unavailable = int_or_percent_value(ru, "maxUnavailable") != 0;
                let has_surge = int_or_percent_value(ru, "maxSurge") != 0;
                if has_unavailable && has_surge {
                    errs.push(FieldError::invalid(
                        ch(p, "maxSurge"),
                        ru["maxSurge"].clone(),
                        "may not be set when maxUnavailable is non-zero",
                    ));
                } else if !has_unavailable && !has_surge {
                    errs.push(FieldError::required(
                        ch(p, "maxUnavailable"),
                        "cannot be 0 when maxSurge is 0",
                    ));
                }
            }
        },
        other => errs.push(FieldError::not_supported(
            "spec.updateStrategy.type",
            other,
            &["RollingUpdate", "OnDelete"],
        )),
    }
    nonneg(spec, "revisionHistoryLimit", "spec", errs);
}

/// `ValidateReplicationController` spec (core group).
pub(crate) fn validate_replication_controller(spec: &Value, errs: &mut Errs) {
    nonneg(spec, "minReadySeconds", "spec", errs);
    let sel = sub(spec, "selector");
    if sel.as_object().is_none_or(|m| m.is_empty()) {
        errs.push(FieldError::required("spec.selector", ""));
    } else {
        validate_labels(spec, "selector", "spec.selector", errs);
    }
    nonneg(spec, "replicas", "spec", errs);
    let tmpl = get(spec, "template");
    match tmpl {
        None => errs.push(FieldError::required("spec.template", "")),
        Some(t) => {
            if sel.as_object().is_some_and(|m| !m.is_empty())
                && !map_selector_matches(sel, template_labels(t))
            {
                errs.push(FieldError::invalid(
                    "spec.template.metadata.labels",
                    template_labels(t).clone(),
                    SELECTOR_MISMATCH,
                ));
            }
            validate_pod_template_spec(Some(t), "spec.template", errs);
            require_template_restart_policy(t, "spec.template", &["Always"], errs);
            if get(sub(t, "spec"), "activeDeadlineSeconds").is_some() {
                errs.push(FieldError::forbidden(
                    "spec.template.spec.activeDeadlineSeconds",
                    "activeDeadlineSeconds in ReplicationController is not Supported",
                ));
            }
        }
    }
}

/// Status counters of the workload kinds must be non-negative.
pub(crate) fn validate_workload_status(kind: &str, obj: &Value, errs: &mut Errs) {
    let status = sub(obj, "status");
    for key in [
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "updatedReplicas",
        "unavailableReplicas",
        "currentReplicas",
        "terminatingReplicas",
        "observedGeneration",
        "collisionCount",
        "currentNumberScheduled",
        "numberMisscheduled",
        "desiredNumberScheduled",
        "numberReady",
        "updatedNumberScheduled",
        "numberAvailable",
        "numberUnavailable",
    ] {
        nonneg(status, key, "status", errs);
    }
    let replicas = int(status, "replicas").unwrap_or(0);
    if matches!(kind, "ReplicaSet" | "ReplicationController" | "Deployment") {
        for key in ["readyReplicas", "availableReplicas"] {
            if let Some(n) = int(status, key) {
                if n > replicas && kind != "Deployment" {
                    errs.push(FieldError::invalid(
                        ch("status", key),
                        n,
                        "cannot be greater than status.replicas",
                    ));
                }
            }
        }
    }
}

/// `ValidatePositiveIntOrPercent`.
pub(crate) fn validate_int_or_percent(v: &Value, key: &str, path: &str, errs: &mut Errs) {
    let p = ch(path, key);
    match int_or_string(v, key) {
        Some(IntOrString::Str(sv)) => {
            for msg in is_valid_percent(sv) {
                errs.push(FieldError::invalid(p.clone(), sv, msg));
            }
        }
        Some(IntOrString::Int(n)) => {
            if n < 0 {
                errs.push(FieldError::invalid(p.clone(), n, NEGATIVE_MSG));
            }
        }
        None => {
            if let Some(other) = get(v, key) {
                errs.push(FieldError::invalid(
                    p,
                    other.clone(),
                    "must be an integer or percentage (e.g '5%')",
                ));
            }
        }
    }
}

/// `getIntOrPercentValue`: the number, or the percentage's number.
pub(crate) fn int_or_percent_value(v: &Value, key: &str) -> i64 {
    match int_or_string(v, key) {
        Some(IntOrString::Int(n)) => n,
        Some(IntOrString::Str(sv)) => sv.trim_end_matches('%').parse().unwrap_or(0),
        None => 0,
    }
}

/// `IsNotMoreThan100Percent`.
pub(crate) fn not_more_than_100_percent(v: &Value, key: &str, path: &str, errs: &mut Errs) {
    if let Some(IntOrString::Str(sv)) = int_or_string(v, key) {
        if is_valid_percent(sv).is_empty() && int_or_percent_value(v, key) > 100 {
            errs.push(FieldError::invalid(
                ch(path, key),
                sv,
                "must not be greater than 100%",
            ));
        }
    }
}
