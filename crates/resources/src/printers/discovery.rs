//! discovery.k8s.io/v1: EndpointSlice.

use super::*;

pub(super) const ENDPOINT_SLICE: &[ColumnDefinition] = &[
    NAME,
    col("AddressType", "string", "IPv4, IPv6 or FQDN."),
    col("Ports", "string", "Ports of the slice."),
    col("Endpoints", "string", "Addresses of the slice's endpoints."),
    AGE,
];

const MAXIMUM: usize = 3;

/// Up to three entries, then "+ N more...", or "<unset>" when there are none.
fn summarize(all: Vec<String>) -> String {
    let count = all.len();
    let list: Vec<String> = all.into_iter().take(MAXIMUM).collect();
    let ret = list_with_more(&list, count > MAXIMUM, count, MAXIMUM);
    if ret.is_empty() {
        "<unset>".into()
    } else {
        ret
    }
}

pub(super) fn endpoint_slice(obj: &Value, now: Timestamp) -> Vec<Value> {
    let ports = arr_at(obj, "/ports")
        .iter()
        .map(|p| {
            match (
                get(p, "/port").and_then(Value::as_i64),
                get(p, "/name").and_then(Value::as_str),
            ) {
                (Some(port), _) => port.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => "*".to_string(),
            }
        })
        .collect();
    let addresses = arr_at(obj, "/endpoints")
        .iter()
        .flat_map(|e| arr_at(e, "/addresses"))
        .map(|a| a.as_str().unwrap_or("").to_string())
        .collect();
    vec![
        name(obj).into(),
        str_at(obj, "/addressType").into(),
        summarize(ports).into(),
        summarize(addresses).into(),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use serde_json::json;

    #[test]
    fn endpoint_slices() {
        check(
            "discovery.k8s.io",
            "EndpointSlice",
            json!({"metadata": {"name": "web-abc", "creationTimestamp": ago(60)}, "addressType": "IPv4",
                "ports": [{"name": "http", "port": 80}, {"name": "metrics"}, {}, {"port": 9000}],
                "endpoints": [{"addresses": ["10.0.0.1", "10.0.0.2"]}, {"addresses": ["10.0.0.3"]}, {"addresses": ["10.0.0.4"]}]}),
            json!([
                "web-abc",
                "IPv4",
                "80,metrics,* + 1 more...",
                "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...",
                "60s"
            ]),
        );
        check(
            "discovery.k8s.io",
            "EndpointSlice",
            json!({"metadata": {"name": "empty", "creationTimestamp": ago(60)}, "addressType": "IPv6"}),
            json!(["empty", "IPv6", "<unset>", "<unset>", "60s"]),
        );
    }
}
