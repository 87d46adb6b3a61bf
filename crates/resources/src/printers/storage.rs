//! storage.k8s.io/v1: StorageClass.

use super::*;

pub(super) const STORAGE_CLASS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Provisioner",
        "string",
        "Volume plugin that provisions volumes of this class.",
    ),
    col(
        "ReclaimPolicy",
        "string",
        "Reclaim policy of provisioned volumes.",
    ),
    col(
        "VolumeBindingMode",
        "string",
        "When volumes are provisioned and bound.",
    ),
    col(
        "AllowVolumeExpansion",
        "string",
        "Whether volumes of this class can be expanded.",
    ),
    AGE,
];

fn is_default_class(obj: &Value) -> bool {
    let annotations = map_at(obj, "/metadata/annotations");
    [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|key| {
        annotations
            .and_then(|a| a.get(*key))
            .and_then(Value::as_str)
            == Some("true")
    })
}

pub(super) fn storage_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut display_name = name(obj).to_string();
    if is_default_class(obj) {
        display_name.push_str(" (default)");
    }
    let or = |pointer: &str, default: &'static str| match str_at(obj, pointer) {
        "" => default.to_string(),
        v => v.to_string(),
    };
    vec![
        display_name.into(),
        str_at(obj, "/provisioner").into(),
        or("/reclaimPolicy", "Delete").into(),
        or("/volumeBindingMode", "Immediate").into(),
        bool_at(obj, "/allowVolumeExpansion").into(),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use serde_json::json;

    #[test]
    fn storage_classes() {
        check(
            "storage.k8s.io",
            "StorageClass",
            json!({"metadata": {"name": "local-path", "creationTimestamp": ago(400 * 86400),
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": "rancher.io/local-path", "reclaimPolicy": "Retain",
                "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": true}),
            json!([
                "local-path (default)",
                "rancher.io/local-path",
                "Retain",
                "WaitForFirstConsumer",
                true,
                "400d"
            ]),
        );
        check(
            "storage.k8s.io",
            "StorageClass",
            json!({"metadata": {"name": "plain", "creationTimestamp": ago(800 * 86400)}, "provisioner": "csi.example.com"}),
            json!([
                "plain",
                "csi.example.com",
                "Delete",
                "Immediate",
                false,
                "2y70d"
            ]),
        );
    }
}
