//! coordination.k8s.io/v1: Lease.

use super::*;

pub(super) const LEASE: &[ColumnDefinition] = &[
    NAME,
    col(
        "Holder",
        "string",
        "Identity of the current holder of the lease.",
    ),
    AGE,
];

pub(super) fn lease(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        str_at(obj, "/spec/holderIdentity").into(),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use serde_json::json;

    #[test]
    fn leases() {
        check(
            "coordination.k8s.io",
            "Lease",
            json!({"metadata": {"name": "kube-scheduler", "creationTimestamp": ago(3600)}, "spec": {"holderIdentity": "cp-1_ab12"}}),
            json!(["kube-scheduler", "cp-1_ab12", "60m"]),
        );
        check(
            "coordination.k8s.io",
            "Lease",
            json!({"metadata": {"name": "free"}}),
            json!(["free", "", "<unknown>"]),
        );
    }
}
