//! JSON names for the fields the generator could not name from the Go types.
//!
//! prost keeps only a snake_case name (`pod_ip`), which loses the JSON spelling
//! (`podIP`). The OpenAPI schema of the same type has the real names: match
//! them ignoring case and punctuation; fall back to lowerCamelCase.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::schema::{messages, JSON};
use crate::openapi::schemas;

/// The JSON name of field `field` (a position in `fields`) of message `message`.
pub(super) fn json_name(message: u16, field: usize) -> &'static str {
    static NAMES: OnceLock<HashMap<(u16, usize), String>> = OnceLock::new();
    let names = NAMES.get_or_init(resolve_all);
    match names.get(&(message, field)) {
        Some(name) => name,
        None => super::schema::message(message).fields[field].name,
    }
}

/// Every field without a JSON name, resolved once.
fn resolve_all() -> HashMap<(u16, usize), String> {
    let mut out = HashMap::new();
    for (mi, m) in messages().iter().enumerate() {
        let Ok(mi) = u16::try_from(mi) else { break };
        let properties = schemas::definition(m.name)
            .and_then(|d| d.get("properties"))
            .and_then(Value::as_object);
        for (fi, f) in m.fields.iter().enumerate() {
            if f.flags & JSON != 0 {
                continue;
            }
            let key = normalize(f.name);
            let found = properties
                .and_then(|p| p.keys().find(|k| normalize(k) == key))
                .cloned();
            out.insert((mi, fi), found.unwrap_or_else(|| lower_camel(f.name)));
        }
    }
    out
}

/// Lowercase, letters and digits only: `x_kubernetes_int_or_string` and
/// `x-kubernetes-int-or-string` compare equal, as do `pod_ip` and `podIP`.
fn normalize(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// `target_cpu_utilization` → `targetCpuUtilization`.
fn lower_camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_and_normalize() {
        assert_eq!(
            lower_camel("target_cpu_utilization"),
            "targetCpuUtilization"
        );
        assert_eq!(lower_camel("items"), "items");
        assert_eq!(normalize("pod_ip"), normalize("podIP"));
        assert_eq!(
            normalize("x_kubernetes_int_or_string"),
            normalize("x-kubernetes-int-or-string")
        );
    }

    #[test]
    fn unnamed_fields_resolve_through_openapi_or_camel_case() {
        // autoscaling/v2beta2 is not in the Go sources nor in the 1.33 catalog.
        let mi = super::super::schema::index_of(
            "io.k8s.api.autoscaling.v2beta2.HorizontalPodAutoscalerSpec",
        )
        .unwrap();
        let m = super::super::schema::message(mi);
        let (fi, f) = m.field(2).unwrap();
        assert_eq!(f.flags & JSON, 0, "{f:?}");
        assert_eq!(json_name(mi, fi), "minReplicas");
    }
}
