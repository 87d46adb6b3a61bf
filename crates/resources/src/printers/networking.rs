//! networking.k8s.io/v1: Ingress, IngressClass, NetworkPolicy.

use super::*;

pub(super) const INGRESS: &[ColumnDefinition] = &[
    NAME,
    col("Class", "string", "IngressClass that handles this ingress."),
    col("Hosts", "string", "Hosts the rules match."),
    col("Address", "string", "Load balancer ingress points."),
    col(
        "Ports",
        "string",
        "Ports served (443 when TLS is configured).",
    ),
    AGE,
];

/// At most three hosts, "*" when no rule names one.
fn format_hosts(rules: &[Value]) -> String {
    const MAXIMUM: usize = 3;
    let mut list = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAXIMUM {
            more = true;
        }
        let host = str_at(rule, "/host");
        if !more && !host.is_empty() {
            list.push(host.to_string());
        }
    }
    if list.is_empty() {
        return "*".into();
    }
    list_with_more(&list, more, rules.len(), MAXIMUM)
}

pub(super) fn ingress(obj: &Value, now: Timestamp) -> Vec<Value> {
    let class = get(obj, "/spec/ingressClassName")
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let ports = if arr_at(obj, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(obj).into(),
        class.into(),
        format_hosts(arr_at(obj, "/spec/rules")).into(),
        load_balancer_ingress(obj, "/status/loadBalancer/ingress").into(),
        ports.into(),
        age(obj, now),
    ]
}

pub(super) const INGRESS_CLASS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Controller",
        "string",
        "Controller that implements the class.",
    ),
    col(
        "Parameters",
        "string",
        "Resource holding extra configuration.",
    ),
    AGE,
];

pub(super) fn ingress_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    let parameters = match get(obj, "/spec/parameters") {
        Some(p) => {
            let group = match get(p, "/apiGroup").and_then(Value::as_str) {
                Some(g) => format!(".{g}"),
                None => String::new(),
            };
            format!("{}{group}/{}", str_at(p, "/kind"), str_at(p, "/name"))
        }
        None => "<none>".into(),
    };
    vec![
        name(obj).into(),
        str_at(obj, "/spec/controller").into(),
        parameters.into(),
        age(obj, now),
    ]
}

pub(super) const NETWORK_POLICY: &[ColumnDefinition] = &[
    NAME,
    col("Pod-Selector", "string", "Pods the policy applies to."),
    AGE,
];

pub(super) fn network_policy(obj: &Value, now: Timestamp) -> Vec<Value> {
    let selector = format_label_selector(get(obj, "/spec/podSelector"));
    vec![name(obj).into(), selector.into(), age(obj, now)]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use serde_json::json;

    #[test]
    fn ingresses() {
        let meta = json!({"name": "web", "creationTimestamp": ago(3 * 3600)});
        check(
            "networking.k8s.io",
            "Ingress",
            json!({"metadata": meta, "spec": {"ingressClassName": "nginx",
                "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}], "tls": [{"hosts": ["a.example.com"]}]},
                "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}, {"ip": "10.0.0.2"}]}}}),
            json!([
                "web",
                "nginx",
                "a.example.com,b.example.com",
                "10.0.0.2,10.0.0.9",
                "80, 443",
                "3h"
            ]),
        );
        check(
            "networking.k8s.io",
            "Ingress",
            json!({"metadata": meta, "spec": {"rules": [{"host": "a"}, {}, {"host": "c"}, {"host": "d"}, {"host": "e"}]}}),
            json!(["web", "<none>", "a,c,d + 2 more...", "", "80", "3h"]),
        );
        check(
            "networking.k8s.io",
            "Ingress",
            json!({"metadata": meta, "spec": {"defaultBackend": {"service": {"name": "x"}}}}),
            json!(["web", "<none>", "*", "", "80", "3h"]),
        );
    }

    #[test]
    fn ingress_classes_and_policies() {
        let meta = json!({"name": "x", "creationTimestamp": ago(30)});
        check(
            "networking.k8s.io",
            "IngressClass",
            json!({"metadata": meta, "spec": {"controller": "k8s.io/ingress-nginx",
                "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}}),
            json!([
                "x",
                "k8s.io/ingress-nginx",
                "IngressParameters.k8s.example.com/external-lb",
                "30s"
            ]),
        );
        check(
            "networking.k8s.io",
            "IngressClass",
            json!({"metadata": meta, "spec": {"controller": "skiff.dev/ingress"}}),
            json!(["x", "skiff.dev/ingress", "<none>", "30s"]),
        );
        check(
            "networking.k8s.io",
            "NetworkPolicy",
            json!({"metadata": meta, "spec": {"podSelector": {"matchLabels": {"role": "db"}}}}),
            json!(["x", "role=db", "30s"]),
        );
        check(
            "networking.k8s.io",
            "NetworkPolicy",
            json!({"metadata": meta, "spec": {"podSelector": {}}}),
            json!(["x", "<none>", "30s"]),
        );
    }
}
