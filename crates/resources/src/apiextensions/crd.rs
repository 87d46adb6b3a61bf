//! Validation and defaulting of a CustomResourceDefinition, with upstream's
//! field paths and messages (`apiextensions/validation`): name and group,
//! names, scope, versions, structural schemas, printer columns and the scale
//! subresource. Custom objects themselves are checked in [`super::schema`].

use serde_json::{json, Value};

use crate::validation::{is_dns1035_label, is_dns1123_subdomain, ErrorType, FieldError};

use super::{cel, jsonpath, schema};

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn required(field: impl Into<String>, detail: &str) -> FieldError {
    FieldError::new(ErrorType::Required, field, None, detail)
}

fn invalid(field: impl Into<String>, value: Value, detail: impl Into<String>) -> FieldError {
    FieldError::new(ErrorType::Invalid, field, Some(value), detail)
}

fn forbidden(field: impl Into<String>, detail: &str) -> FieldError {
    FieldError::new(ErrorType::Forbidden, field, None, detail)
}

fn not_supported(field: impl Into<String>, value: Value, valid: &[&str]) -> FieldError {
    let quoted: Vec<String> = valid
        .iter()
        .map(|v| crate::validation::util_quote(v))
        .collect();
    FieldError::new(
        ErrorType::NotSupported,
        field,
        Some(value),
        format!("supported values: {}", quoted.join(", ")),
    )
}

/// Server-side defaults of a CRD (`SetDefaults_CustomResourceDefinition`):
/// singular and listKind from the kind, `conversion.strategy: None`.
pub fn apply_defaults(crd: &mut Value) {
    let Some(spec) = crd.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !kind.is_empty() {
            if names
                .get("singular")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                names.insert("singular".into(), json!(kind.to_ascii_lowercase()));
            }
            if names
                .get("listKind")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                names.insert("listKind".into(), json!(format!("{kind}List")));
            }
        }
    }
    let conversion = spec.entry("conversion").or_insert_with(|| json!({}));
    if let Some(c) = conversion.as_object_mut() {
        c.entry("strategy").or_insert_with(|| json!("None"));
    }
}

/// Every problem of a CRD on create (`old == None`) or update.
pub fn validate(crd: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = s(crd, "/metadata/name");
    let plural = s(crd, "/spec/names/plural");
    let group = s(crd, "/spec/group");
    if old.is_none() && !name.is_empty() && name != format!("{plural}.{group}") {
        errs.push(invalid(
            "metadata.name",
            json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    validate_spec(crd, &mut errs);
    if let Some(names) = crd.pointer("/status/acceptedNames") {
        validate_names(names, "status.acceptedNames", &mut errs);
    }
    if let Some(old) = old {
        validate_update(crd, old, &mut errs);
    }
    errs
}

fn validate_update(crd: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let immutable = |field: &str, pointer: &str, errs: &mut Vec<FieldError>| {
        let (new_v, old_v) = (s(crd, pointer), s(old, pointer));
        if new_v != old_v {
            errs.push(invalid(field, json!(new_v), "field is immutable"));
        }
    };
    let established = old
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        });
    if established {
        immutable("spec.scope", "/spec/scope", errs);
        immutable("spec.names.kind", "/spec/names/kind", errs);
    }
    immutable("spec.group", "/spec/group", errs);
    immutable("spec.names.plural", "/spec/names/plural", errs);
    let versions: Vec<&str> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|v| v.iter().map(|v| s(v, "/name")).collect())
        .unwrap_or_default();
    if let Some(stored) = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
    {
        for (i, v) in stored.iter().enumerate() {
            let v = v.as_str().unwrap_or_default();
            if !versions.contains(&v) {
                errs.push(invalid(
                    format!("status.storedVersions[{i}]"),
                    json!(v),
                    "must appear in spec.versions",
                ));
            }
        }
    }
}

fn validate_spec(crd: &Value, errs: &mut Vec<FieldError>) {
    let group = s(crd, "/spec/group");
    if group.is_empty() {
        errs.push(required("spec.group", ""));
    } else if let Some(msgs) = Some(is_dns1123_subdomain(group)).filter(|m| !m.is_empty()) {
        errs.push(invalid("spec.group", json!(group), msgs.join(",")));
    } else if !group.contains('.') {
        errs.push(invalid(
            "spec.group",
            json!(group),
            "should be a domain with at least one dot",
        ));
    }
    match s(crd, "/spec/scope") {
        "" => errs.push(required("spec.scope", "")),
        "Cluster" | "Namespaced" => {}
        other => errs.push(not_supported(
            "spec.scope",
            json!(other),
            &["Cluster", "Namespaced"],
        )),
    }
    let names = crd.pointer("/spec/names").cloned().unwrap_or_default();
    for field in ["plural", "singular", "kind", "listKind"] {
        if s(&names, &format!("/{field}")).is_empty() {
            errs.push(required(format!("spec.names.{field}"), ""));
        }
    }
    validate_names(&names, "spec.names", errs);
    validate_versions(crd, errs);
    match s(crd, "/spec/conversion/strategy") {
        "" | "None" => {}
        "Webhook" => {
            if crd.pointer("/spec/conversion/webhook").is_none() {
                errs.push(required(
                    "spec.conversion.webhook",
                    "required when strategy is set to Webhook",
                ));
            }
        }
        other => errs.push(not_supported(
            "spec.conversion.strategy",
            json!(other),
            &["None", "Webhook"],
        )),
    }
    if crd
        .pointer("/spec/preserveUnknownFields")
        .and_then(Value::as_bool)
        == Some(true)
    {
        errs.push(invalid(
            "spec.preserveUnknownFields",
            json!(true),
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
        ));
    }
}

fn validate_names(names: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for field in ["plural", "singular"] {
        let v = s(names, &format!("/{field}"));
        let msgs = is_dns1035_label(v);
        if !v.is_empty() && !msgs.is_empty() {
            errs.push(invalid(format!("{path}.{field}"), json!(v), msgs.join(",")));
        }
    }
    for field in ["kind", "listKind"] {
        let v = s(names, &format!("/{field}"));
        let msgs = is_dns1035_label(&v.to_ascii_lowercase());
        if !v.is_empty() && !msgs.is_empty() {
            errs.push(invalid(
                format!("{path}.{field}"),
                json!(v),
                format!(
                    "may have mixed case, but should otherwise match: {}",
                    msgs.join(",")
                ),
            ));
        }
    }
    let kind = s(names, "/kind");
    if !kind.is_empty() && kind == s(names, "/listKind") {
        errs.push(invalid(
            format!("{path}.listKind"),
            json!(kind),
            "kind and listKind may not be the same",
        ));
    }
    for field in ["shortNames", "categories"] {
        for (i, v) in names
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let v = v.as_str().unwrap_or_default();
            let msgs = is_dns1035_label(v);
            if !msgs.is_empty() {
                errs.push(invalid(
                    format!("{path}.{field}[{i}]"),
                    json!(v),
                    msgs.join(","),
                ));
            }
        }
    }
}

fn validate_versions(crd: &Value, errs: &mut Vec<FieldError>) {
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        errs.push(required(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
        return;
    }
    let mut seen = Vec::new();
    let mut unique = true;
    let mut storage = 0;
    let status_everywhere = crd.pointer("/spec/subresources/status").is_some();
    for (i, v) in versions.iter().enumerate() {
        let path = format!("spec.versions[{i}]");
        let name = s(v, "/name");
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage += 1;
            if v.get("served").and_then(Value::as_bool) != Some(true) {
                errs.push(invalid(
                    format!("{path}.served"),
                    json!(false),
                    "must be true for the storage version",
                ));
            }
        }
        if seen.contains(&name) {
            unique = false;
        }
        seen.push(name);
        let msgs = is_dns1035_label(name);
        if !msgs.is_empty() {
            errs.push(invalid(format!("{path}.name"), json!(name), msgs.join(",")));
        }
        match v.pointer("/schema/openAPIV3Schema") {
            None => errs.push(required(
                format!("{path}.schema.openAPIV3Schema"),
                "schemas are required",
            )),
            Some(schema) => validate_schema(
                schema,
                &format!("{path}.schema.openAPIV3Schema"),
                Level::Root,
                errs,
            ),
        }
        for (j, c) in v
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            validate_column(c, &format!("{path}.additionalPrinterColumns[{j}]"), errs);
        }
        if let Some(scale) = v.pointer("/subresources/scale") {
            validate_scale(scale, &format!("{path}.subresources.scale"), errs);
        }
        let _ = status_everywhere;
    }
    if !unique {
        errs.push(invalid(
            "spec.versions",
            Value::Array(versions.clone()),
            "must contain unique version names",
        ));
    }
    if storage != 1 {
        errs.push(invalid(
            "spec.versions",
            Value::Array(versions),
            "must have exactly one version marked as storage version",
        ));
    }
}

fn validate_column(c: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if s(c, "/name").is_empty() {
        errs.push(required(format!("{path}.name"), ""));
    }
    let type_ = s(c, "/type");
    const TYPES: &[&str] = &["integer", "number", "string", "boolean", "date"];
    if type_.is_empty() {
        errs.push(required(format!("{path}.type"), ""));
    } else if !TYPES.contains(&type_) {
        errs.push(not_supported(format!("{path}.type"), json!(type_), TYPES));
    }
    const FORMATS: &[&str] = &[
        "int32",
        "int64",
        "float",
        "double",
        "byte",
        "date",
        "date-time",
        "password",
    ];
    let format = s(c, "/format");
    if !format.is_empty() && !FORMATS.contains(&format) {
        errs.push(not_supported(
            format!("{path}.format"),
            json!(format),
            FORMATS,
        ));
    }
    if c.get("priority")
        .and_then(Value::as_i64)
        .is_some_and(|p| p < 0)
    {
        errs.push(invalid(
            format!("{path}.priority"),
            c["priority"].clone(),
            "must not be negative",
        ));
    }
    let jp = s(c, "/jsonPath");
    if jp.is_empty() {
        errs.push(required(format!("{path}.jsonPath"), ""));
    } else if jsonpath::check(jp).is_err() {
        errs.push(invalid(
            format!("{path}.jsonPath"),
            json!(jp),
            "must be a simple json path",
        ));
    }
}

fn validate_scale(scale: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let spec_path = s(scale, "/specReplicasPath");
    if spec_path.is_empty() {
        errs.push(required(format!("{path}.specReplicasPath"), ""));
    } else if !spec_path.starts_with(".spec.") || jsonpath::check(spec_path).is_err() {
        errs.push(invalid(
            format!("{path}.specReplicasPath"),
            json!(spec_path),
            "should be a json path under .spec",
        ));
    }
    let status_path = s(scale, "/statusReplicasPath");
    if status_path.is_empty() {
        errs.push(required(format!("{path}.statusReplicasPath"), ""));
    } else if !status_path.starts_with(".status.") || jsonpath::check(status_path).is_err() {
        errs.push(invalid(
            format!("{path}.statusReplicasPath"),
            json!(status_path),
            "should be a json path under .status",
        ));
    }
    if let Some(sel) = scale.get("labelSelectorPath").and_then(Value::as_str) {
        if !(sel.starts_with(".spec.") || sel.starts_with(".status."))
            || jsonpath::check(sel).is_err()
        {
            errs.push(invalid(
                format!("{path}.labelSelectorPath"),
                json!(sel),
                "should be a json path under either .spec or .status",
            ));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Field,
    Item,
}

/// Structural schema rules: every node says its type (unless it is
/// int-or-string or preserves unknown fields), objects use properties or
/// additionalProperties but not both, metadata at the root only restricts
/// name and generateName.
fn validate_schema(sch: &Value, path: &str, level: Level, errs: &mut Vec<FieldError>) {
    let Some(map) = sch.as_object() else {
        return;
    };
    let flag = |k: &str| map.get(k).and_then(Value::as_bool) == Some(true);
    let type_ = map.get("type").and_then(Value::as_str).unwrap_or_default();
    let int_or_string = flag("x-kubernetes-int-or-string");
    let preserve = flag("x-kubernetes-preserve-unknown-fields");
    let embedded = flag("x-kubernetes-embedded-resource");
    if type_.is_empty() && !int_or_string && !preserve && !embedded {
        let detail = match level {
            Level::Root => "must not be empty at the root",
            Level::Field => "must not be empty for specified object fields",
            Level::Item => "must not be empty for specified array items",
        };
        errs.push(required(format!("{path}.type"), detail));
    }
    if level == Level::Root && !type_.is_empty() && type_ != "object" {
        errs.push(invalid(
            format!("{path}.type"),
            json!(type_),
            "must be object at the root",
        ));
    }
    const TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];
    if !type_.is_empty() && !TYPES.contains(&type_) {
        errs.push(not_supported(format!("{path}.type"), json!(type_), TYPES));
    }
    if map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        errs.push(invalid(
            format!("{path}.x-kubernetes-preserve-unknown-fields"),
            json!(false),
            "must be true or undefined",
        ));
    }
    if embedded && !type_.is_empty() && type_ != "object" {
        errs.push(invalid(
            format!("{path}.type"),
            json!(type_),
            "must be object if x-kubernetes-embedded-resource is true",
        ));
    }
    if int_or_string && !type_.is_empty() {
        errs.push(invalid(
            format!("{path}.type"),
            json!(type_),
            "must be empty if x-kubernetes-int-or-string is true",
        ));
    }
    if flag("uniqueItems") {
        errs.push(forbidden(
            format!("{path}.uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    if map.contains_key("$ref") {
        errs.push(forbidden(format!("{path}.$ref"), "$ref is not supported"));
    }
    let properties = map.get("properties").and_then(Value::as_object);
    if let Some(additional) = map.get("additionalProperties") {
        if properties.is_some_and(|p| !p.is_empty()) && additional != &Value::Bool(true) {
            errs.push(forbidden(
                format!("{path}.additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        if additional.is_object() {
            validate_schema(
                additional,
                &format!("{path}.additionalProperties"),
                Level::Field,
                errs,
            );
        }
    }
    if type_ == "array" && !map.get("items").is_some_and(Value::is_object) {
        errs.push(required(format!("{path}.items"), "must be specified"));
    }
    if let Some(items) = map.get("items").filter(|i| i.is_object()) {
        validate_schema(items, &format!("{path}.items"), Level::Item, errs);
    }
    if let Some(p) = map.get("pattern").and_then(Value::as_str) {
        if !schema::pattern_compiles(p) {
            errs.push(invalid(
                format!("{path}.pattern"),
                json!(p),
                "must be a valid regular expression",
            ));
        }
    }
    match map.get("x-kubernetes-list-type").and_then(Value::as_str) {
        None | Some("atomic") | Some("set") => {}
        Some("map") => {
            let keys = map
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .is_some_and(|k| !k.is_empty());
            if !keys {
                errs.push(required(
                    format!("{path}.x-kubernetes-list-map-keys"),
                    "must not be empty if x-kubernetes-list-type is map",
                ));
            }
        }
        Some(other) => errs.push(not_supported(
            format!("{path}.x-kubernetes-list-type"),
            json!(other),
            &["atomic", "set", "map"],
        )),
    }
    for (i, rule) in map
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let rpath = format!("{path}.x-kubernetes-validations[{i}]");
        let r = rule.get("rule").and_then(Value::as_str).unwrap_or_default();
        if r.is_empty() {
            errs.push(required(format!("{rpath}.rule"), ""));
        } else if let Err(e) = cel::compile(r) {
            errs.push(invalid(
                format!("{rpath}.rule"),
                json!(r),
                format!("compilation failed: {e}"),
            ));
        }
    }
    if let Some(props) = properties {
        for (k, child) in props {
            let cpath = format!("{path}.properties[{k}]");
            if level == Level::Root && k == "metadata" {
                validate_root_metadata(child, &cpath, errs);
                continue;
            }
            validate_schema(child, &cpath, Level::Field, errs);
        }
    }
}

fn validate_root_metadata(meta: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let type_ = s(meta, "/type");
    if !type_.is_empty() && type_ != "object" {
        errs.push(invalid(
            format!("{path}.type"),
            json!(type_),
            "must be object",
        ));
    }
    let Some(map) = meta.as_object() else {
        return;
    };
    let allowed = map
        .keys()
        .all(|k| matches!(k.as_str(), "type" | "properties" | "description"));
    let props_ok = meta
        .get("properties")
        .and_then(Value::as_object)
        .is_none_or(|p| {
            p.iter().all(|(k, v)| {
                matches!(k.as_str(), "name" | "generateName")
                    && v.get("type").and_then(Value::as_str) == Some("string")
            })
        });
    if !allowed || !props_ok {
        errs.push(forbidden(
            path,
            "must not specify anything other than name and generateName, but metadata is implicitly specified",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "crontabs.stable.example.com"},
            "spec": {
                "group": "stable.example.com",
                "scope": "Namespaced",
                "names": {"plural": "crontabs", "kind": "CronTab", "shortNames": ["ct"]},
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
                    }}},
                    "additionalPrinterColumns": [{"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}],
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                }],
            },
        })
    }

    fn check(mut c: Value, want: &[&str]) {
        apply_defaults(&mut c);
        let got: Vec<String> = validate(&c, None).iter().map(|e| e.to_string()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_good_crd_passes_and_gets_defaults() {
        let mut c = crd();
        apply_defaults(&mut c);
        assert_eq!(c["spec"]["names"]["singular"], "crontab");
        assert_eq!(c["spec"]["names"]["listKind"], "CronTabList");
        assert_eq!(c["spec"]["conversion"]["strategy"], "None");
        check(crd(), &[]);
    }

    #[test]
    fn bad_crds() {
        let mut c = crd();
        c["metadata"]["name"] = json!("wrong.stable.example.com");
        check(
            c,
            &["metadata.name: Invalid value: \"wrong.stable.example.com\": must be spec.names.plural+\".\"+spec.group"],
        );
        let mut c = crd();
        c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            .as_object_mut()
            .unwrap()
            .remove("type");
        check(
            c,
            &["spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"],
        );
        let mut c = crd();
        c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["additionalProperties"] = json!({"type": "string"});
        check(
            c,
            &["spec.versions[0].schema.openAPIV3Schema.properties[spec].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"],
        );
        let mut c = crd();
        c["spec"]["scope"] = json!("Galaxy");
        check(
            c,
            &["spec.scope: Unsupported value: \"Galaxy\": supported values: \"Cluster\", \"Namespaced\""],
        );
        let mut c = crd();
        c["spec"]["group"] = json!("example");
        c["metadata"]["name"] = json!("crontabs.example");
        check(
            c,
            &["spec.group: Invalid value: \"example\": should be a domain with at least one dot"],
        );
        let mut c = crd();
        c["spec"]["versions"][0]["additionalPrinterColumns"] =
            json!([{"name": "X", "type": "float"}]);
        check(
            c,
            &[
                "spec.versions[0].additionalPrinterColumns[0].type: Unsupported value: \"float\": supported values: \"integer\", \"number\", \"string\", \"boolean\", \"date\"",
                "spec.versions[0].additionalPrinterColumns[0].jsonPath: Required value",
            ],
        );
        let mut c = crd();
        c["spec"]["versions"][0]["subresources"]["scale"]["specReplicasPath"] = json!(".status.x");
        check(
            c,
            &["spec.versions[0].subresources.scale.specReplicasPath: Invalid value: \".status.x\": should be a json path under .spec"],
        );
        let mut c = crd();
        c["spec"]["versions"][0]["storage"] = json!(false);
        let mut c2 = c.clone();
        apply_defaults(&mut c2);
        let got: Vec<String> = validate(&c2, None).iter().map(|e| e.to_string()).collect();
        assert_eq!(got.len(), 1);
        assert!(got[0].ends_with("must have exactly one version marked as storage version"));
        let mut c = crd();
        c["spec"]["names"]["plural"] = json!("CronTabs");
        c["metadata"]["name"] = json!("CronTabs.stable.example.com");
        let mut c2 = c.clone();
        apply_defaults(&mut c2);
        let got: Vec<String> = validate(&c2, None).iter().map(|e| e.to_string()).collect();
        assert!(
            got[0].starts_with("spec.names.plural: Invalid value: \"CronTabs\""),
            "{got:?}"
        );
    }

    #[test]
    fn updates_keep_group_and_plural() {
        let mut old = crd();
        apply_defaults(&mut old);
        let mut new = old.clone();
        new["spec"]["group"] = json!("other.example.com");
        let got: Vec<String> = validate(&new, Some(&old))
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            got,
            ["spec.group: Invalid value: \"other.example.com\": field is immutable"]
        );
    }
}
