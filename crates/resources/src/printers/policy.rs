//! policy/v1: PodDisruptionBudget.

use super::*;

pub(super) const PDB: &[ColumnDefinition] = &[
    NAME,
    col("Min Available", "string", "Pods that must stay available."),
    col("Max Unavailable", "string", "Pods that may be unavailable."),
    col(
        "Allowed Disruptions",
        "integer",
        "Pod disruptions currently allowed.",
    ),
    AGE,
];

pub(super) fn pdb(obj: &Value, now: Timestamp) -> Vec<Value> {
    let bound = |pointer: &str| get(obj, pointer).map_or_else(|| "N/A".to_string(), int_or_string);
    vec![
        name(obj).into(),
        bound("/spec/minAvailable").into(),
        bound("/spec/maxUnavailable").into(),
        int_at(obj, "/status/disruptionsAllowed").into(),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use serde_json::json;

    #[test]
    fn pod_disruption_budgets() {
        let meta = json!({"name": "db", "creationTimestamp": ago(5)});
        check(
            "policy",
            "PodDisruptionBudget",
            json!({"metadata": meta, "spec": {"minAvailable": 2}, "status": {"disruptionsAllowed": 1}}),
            json!(["db", "2", "N/A", 1, "5s"]),
        );
        check(
            "policy",
            "PodDisruptionBudget",
            json!({"metadata": meta, "spec": {"maxUnavailable": "25%"}}),
            json!(["db", "N/A", "25%", 0, "5s"]),
        );
    }
}
