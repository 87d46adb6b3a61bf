//! node.k8s.io/v1: RuntimeClass.

use super::*;

pub(super) const RUNTIME_CLASS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Handler",
        "string",
        "CRI handler that runs pods of this class.",
    ),
    AGE,
];

pub(super) fn runtime_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        str_at(obj, "/handler").into(),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use serde_json::json;

    #[test]
    fn runtime_classes() {
        check(
            "node.k8s.io",
            "RuntimeClass",
            json!({"metadata": {"name": "gvisor", "creationTimestamp": ago(60)}, "handler": "runsc"}),
            json!(["gvisor", "runsc", "60s"]),
        );
    }
}
