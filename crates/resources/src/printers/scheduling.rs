//! scheduling.k8s.io/v1: PriorityClass.

use super::*;

pub(super) const PRIORITY_CLASS: &[ColumnDefinition] = &[
    NAME,
    col("Value", "integer", "Priority of pods using this class."),
    col(
        "Global-Default",
        "boolean",
        "Whether this is the default class for pods without one.",
    ),
    AGE,
    col(
        "PreemptionPolicy",
        "string",
        "Whether pods of this class may preempt others.",
    ),
];

pub(super) fn priority_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        int_at(obj, "/value").into(),
        bool_at(obj, "/globalDefault").into(),
        age(obj, now),
        str_at(obj, "/preemptionPolicy").into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use serde_json::json;

    #[test]
    fn priority_classes() {
        check(
            "scheduling.k8s.io",
            "PriorityClass",
            json!({"metadata": {"name": "system-node-critical", "creationTimestamp": ago(600)},
                "value": 2000001000, "preemptionPolicy": "PreemptLowerPriority"}),
            json!([
                "system-node-critical",
                2000001000,
                false,
                "10m",
                "PreemptLowerPriority"
            ]),
        );
    }
}
