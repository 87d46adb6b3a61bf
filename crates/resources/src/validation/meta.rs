//! ObjectMeta, labels, annotations and label selectors
//! (`apimachinery/pkg/api/validation/objectmeta.go`, `apis/meta/v1/validation`).

use super::names::{check_name, is_qualified_name, is_valid_label_value, NameRule};
use super::util::{arr, ch, get, int, ix, obj, s, semantic_eq, str_map, sub, IMMUTABLE_MSG};
use super::{Errs, FieldError};
use serde_json::Value;

const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// `ValidateObjectMeta` for a create.
pub(crate) fn validate_object_meta(obj: &Value, namespaced: bool, rule: NameRule, errs: &mut Errs) {
    let meta = sub(obj, "metadata");
    let path = "metadata";
    let generate_name = s(meta, "generateName");
    if !generate_name.is_empty() {
        for msg in check_name(rule, generate_name, true) {
            errs.push(FieldError::invalid(
                ch(path, "generateName"),
                generate_name,
                msg,
            ));
        }
    }
    let name = s(meta, "name");
    if name.is_empty() {
        errs.push(FieldError::required(
            ch(path, "name"),
            "name or generateName is required",
        ));
    } else {
        for msg in check_name(rule, name, false) {
            errs.push(FieldError::invalid(ch(path, "name"), name, msg));
        }
    }
    let namespace = s(meta, "namespace");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required(ch(path, "namespace"), ""));
        } else {
            for msg in check_name(NameRule::Label, namespace, false) {
                errs.push(FieldError::invalid(ch(path, "namespace"), namespace, msg));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            ch(path, "namespace"),
            "not allowed on this type",
        ));
    }
    if let Some(g) = int(meta, "generation") {
        if g < 0 {
            errs.push(FieldError::invalid(
                ch(path, "generation"),
                g,
                super::util::NEGATIVE_MSG,
            ));
        }
    }
    validate_common(meta, path, errs);
}

fn validate_common(meta: &Value, path: &str, errs: &mut Errs) {
    validate_labels(meta, "labels", &ch(path, "labels"), errs);
    validate_annotations(meta, "annotations", &ch(path, "annotations"), errs);
    validate_owner_references(meta, &ch(path, "ownerReferences"), errs);
    validate_finalizers(meta, &ch(path, "finalizers"), errs);
}

/// `ValidateObjectMetaUpdate`.
pub(crate) fn validate_object_meta_update(new: &Value, old: &Value, errs: &mut Errs) {
    let meta = sub(new, "metadata");
    let old_meta = sub(old, "metadata");
    let path = "metadata";
    if get(old_meta, "deletionTimestamp").is_some() {
        let old_f: Vec<&str> = arr(old_meta, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut extra: Vec<&str> = arr(meta, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .filter(|f| !old_f.contains(f))
            .collect();
        extra.sort_unstable();
        extra.dedup();
        if !extra.is_empty() {
            let list: Vec<String> = extra.iter().map(|f| super::util::go_quote(f)).collect();
            errs.push(FieldError::forbidden(
                ch(path, "finalizers"),
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    list.join(", ")
                ),
            ));
        }
    }
    let (ng, og) = (
        int(meta, "generation").unwrap_or(0),
        int(old_meta, "generation").unwrap_or(0),
    );
    if ng < og && get(meta, "generation").is_some() {
        errs.push(FieldError::invalid(
            ch(path, "generation"),
            ng,
            "must not be decremented",
        ));
    }
    for key in ["name", "namespace"] {
        super::util::immutable(meta, old_meta, key, path, errs);
    }
    // The server copies uid and creationTimestamp from the stored object when
    // a request leaves them out; only an explicit different value is an error.
    for key in ["uid", "creationTimestamp"] {
        if let Some(v) = get(meta, key) {
            if !semantic_eq(v, sub(old_meta, key)) {
                errs.push(FieldError::invalid(ch(path, key), v.clone(), IMMUTABLE_MSG));
            }
        }
    }
    for key in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
        if let Some(v) = get(meta, key) {
            if !semantic_eq(v, sub(old_meta, key)) {
                errs.push(FieldError::invalid(ch(path, key), v.clone(), IMMUTABLE_MSG));
            }
        }
    }
    validate_common(meta, path, errs);
}

/// `ValidateLabels`: keys are qualified names, values label values; errors
/// are reported at the map's path.
pub(crate) fn validate_labels(parent: &Value, key: &str, path: &str, errs: &mut Errs) {
    let mut entries = str_map(parent, key);
    entries.sort();
    for (k, v) in entries {
        validate_label_name(&k, path, errs);
        for msg in is_valid_label_value(&v) {
            errs.push(FieldError::invalid(path, v.as_str(), msg));
        }
    }
}

/// `ValidateLabelName`.
pub(crate) fn validate_label_name(name: &str, path: &str, errs: &mut Errs) {
    for msg in is_qualified_name(name) {
        errs.push(FieldError::invalid(path, name, msg));
    }
}

const CONDITION_REASON_FMT: &str = "[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?";
const CONDITION_REASON_MAX: usize = 1024;
const CONDITION_MESSAGE_MAX: usize = 32 * 1024;

fn is_condition_reason(r: &str) -> bool {
    let b = r.as_bytes();
    let Some((&first, rest)) = b.split_first() else {
        return false;
    };
    first.is_ascii_alphabetic()
        && rest
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b',' | b':'))
        && rest
            .last()
            .is_none_or(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// `ValidateConditions` for `metav1.Condition` lists: unique, well-formed
/// types, a known status, a reason and a transition time.
pub(crate) fn validate_conditions(conditions: &[Value], path: &str, errs: &mut Errs) {
    let mut seen = std::collections::HashSet::new();
    for (i, c) in conditions.iter().enumerate() {
        let p = ix(path, i);
        let ty = s(c, "type");
        if !seen.insert(ty) {
            errs.push(FieldError::duplicate(ch(&p, "type"), ty));
        }
        validate_label_name(ty, &ch(&p, "type"), errs);
        let status = s(c, "status");
        if !matches!(status, "True" | "False" | "Unknown") {
            errs.push(FieldError::not_supported(
                ch(&p, "status"),
                status,
                &["False", "True", "Unknown"],
            ));
        }
        if let Some(g) = int(c, "observedGeneration").filter(|g| *g < 0) {
            errs.push(FieldError::invalid(
                ch(&p, "observedGeneration"),
                g,
                "must be greater than or equal to zero",
            ));
        }
        if s(c, "lastTransitionTime").is_empty() {
            errs.push(FieldError::required(
                ch(&p, "lastTransitionTime"),
                "must be set",
            ));
        }
        let reason = s(c, "reason");
        if reason.is_empty() {
            errs.push(FieldError::required(ch(&p, "reason"), "must be set"));
        } else {
            if !is_condition_reason(reason) {
                errs.push(FieldError::invalid(
                    ch(&p, "reason"),
                    reason,
                    super::names::regex_error(
                        "a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'",
                        CONDITION_REASON_FMT,
                        &["my_name", "MY_NAME", "MyName", "ReasonA,ReasonB", "ReasonA:ReasonB"],
                    ),
                ));
            }
            if reason.len() > CONDITION_REASON_MAX {
                errs.push(FieldError::too_long(ch(&p, "reason"), CONDITION_REASON_MAX));
            }
        }
        if s(c, "message").len() > CONDITION_MESSAGE_MAX {
            errs.push(FieldError::too_long(
                ch(&p, "message"),
                CONDITION_MESSAGE_MAX,
            ));
        }
    }
}

/// `ValidateAnnotations`: keys are qualified names (case-insensitive), total
/// size at most 256 KiB.
pub(crate) fn validate_annotations(parent: &Value, key: &str, path: &str, errs: &mut Errs) {
    let mut entries = str_map(parent, key);
    entries.sort();
    let mut total = 0usize;
    for (k, v) in &entries {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
}

fn validate_owner_references(meta: &Value, path: &str, errs: &mut Errs) {
    let refs = arr(meta, "ownerReferences");
    let mut first_controller: Option<String> = None;
    for r in refs {
        let api_version = s(r, "apiVersion");
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() || api_version.matches('/').count() > 1 {
            errs.push(FieldError::invalid(
                ch(path, "apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        for (field, msg) in [
            ("kind", "must not be empty"),
            ("name", "must not be empty"),
            ("uid", "must not be empty"),
        ] {
            if s(r, field).is_empty() {
                errs.push(FieldError::invalid(ch(path, field), "", msg));
            }
        }
        if api_version == "v1" && s(r, "kind") == "Event" {
            errs.push(FieldError::invalid(
                path,
                r.clone(),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let this = format!("{}/{}", s(r, "kind"), s(r, "name"));
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    Value::Array(refs.to_vec()),
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"
                    ),
                )),
                None => first_controller = Some(this),
            }
        }
    }
}

fn validate_finalizers(meta: &Value, path: &str, errs: &mut Errs) {
    let finalizers: Vec<&str> = arr(meta, "finalizers")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for f in &finalizers {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(path, *f, msg));
        }
    }
    if finalizers.contains(&"orphan") && finalizers.contains(&"foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            Value::from(finalizers.clone()),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
}

/// `ValidateLabelSelector` (strict: values must be valid label values).
pub(crate) fn validate_label_selector(sel: Option<&Value>, path: &str, errs: &mut Errs) {
    let Some(sel) = sel else { return };
    for (i, req) in arr(sel, "matchExpressions").iter().enumerate() {
        let rp = ix(&ch(path, "matchExpressions"), i);
        let op = s(req, "operator");
        let values = arr(req, "values");
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        ch(&rp, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        ch(&rp, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(
                ch(&rp, "operator"),
                op,
                "not a valid selector operator",
            )),
        }
        validate_label_name(s(req, "key"), &ch(&rp, "key"), errs);
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            for msg in is_valid_label_value(v) {
                errs.push(FieldError::invalid(ix(&ch(&rp, "values"), j), v, msg));
            }
        }
    }
    validate_labels(sel, "matchLabels", &ch(path, "matchLabels"), errs);
}

/// Whether a selector has neither matchLabels nor matchExpressions.
pub(crate) fn selector_is_empty(sel: &Value) -> bool {
    obj(sel, "matchLabels").is_none_or(|m| m.is_empty()) && arr(sel, "matchExpressions").is_empty()
}

/// `LabelSelectorAsSelector(sel).Matches(labels)`. A missing selector matches
/// nothing; an empty one matches everything.
pub(crate) fn selector_matches(sel: Option<&Value>, labels: &Value) -> bool {
    let Some(sel) = sel else { return false };
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    for (k, v) in str_map(sel, "matchLabels") {
        if label(&k) != Some(v.as_str()) {
            return false;
        }
    }
    for req in arr(sel, "matchExpressions") {
        let key = s(req, "key");
        let values: Vec<&str> = arr(req, "values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let ok = match s(req, "operator") {
            "In" => label(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => label(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => label(key).is_some(),
            "DoesNotExist" => label(key).is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// `ValidateNonEmptySelector` style check for map selectors (RC, Service).
pub(crate) fn map_selector_matches(sel: &Value, labels: &Value) -> bool {
    sel.as_object().is_some_and(|m| {
        m.iter()
            .all(|(k, v)| labels.get(k).and_then(Value::as_str) == v.as_str())
    })
}
