//! rbac.authorization.k8s.io/v1: RoleBinding and ClusterRoleBinding.
//! Role and ClusterRole print as the default (Name, Created At).

use super::*;

pub(super) const BINDING: &[ColumnDefinition] = &[
    NAME,
    col("Role", "string", "Kind/name of the role bound."),
    AGE,
    wide("Users", "string", "Users bound to the role."),
    wide("Groups", "string", "Groups bound to the role."),
    wide(
        "ServiceAccounts",
        "string",
        "Service accounts (namespace/name) bound to the role.",
    ),
];

pub(super) fn binding(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (mut users, mut groups, mut service_accounts) = (Vec::new(), Vec::new(), Vec::new());
    for subject in arr_at(obj, "/subjects") {
        let name = str_at(subject, "/name");
        match str_at(subject, "/kind") {
            "User" => users.push(name.to_string()),
            "Group" => groups.push(name.to_string()),
            "ServiceAccount" => {
                service_accounts.push(format!("{}/{name}", str_at(subject, "/namespace")))
            }
            _ => {}
        }
    }
    let role = format!(
        "{}/{}",
        str_at(obj, "/roleRef/kind"),
        str_at(obj, "/roleRef/name")
    );
    vec![
        name(obj).into(),
        role.into(),
        age(obj, now),
        users.join(", ").into(),
        groups.join(", ").into(),
        service_accounts.join(", ").into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use serde_json::json;

    #[test]
    fn bindings() {
        let obj = json!({
            "metadata": {"name": "admins", "creationTimestamp": ago(86400)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [
                {"kind": "User", "name": "alice"},
                {"kind": "User", "name": "bob"},
                {"kind": "Group", "name": "system:masters"},
                {"kind": "ServiceAccount", "name": "default", "namespace": "kube-system"},
            ],
        });
        let want = json!([
            "admins",
            "ClusterRole/cluster-admin",
            "24h",
            "alice, bob",
            "system:masters",
            "kube-system/default"
        ]);
        check(
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            obj.clone(),
            want.clone(),
        );
        check("rbac.authorization.k8s.io", "RoleBinding", obj, want);
        check(
            "rbac.authorization.k8s.io",
            "RoleBinding",
            json!({"metadata": {"name": "empty", "creationTimestamp": ago(86400)}, "roleRef": {"kind": "Role", "name": "r"}}),
            json!(["empty", "Role/r", "24h", "", "", ""]),
        );
    }
}
