//! The downward API: pod fields and container resources as strings, shared
//! by env vars (`valueFrom.fieldRef/resourceFieldRef`) and downwardAPI /
//! projected volume files. Behaviour follows upstream's `pkg/fieldpath` and
//! `pkg/api/v1/resource` helpers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, ResourceFieldSelector};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use resources::validation::quantity::parse_quantity;

/// `metadata.*` fields (`fieldpath.ExtractFieldPathAsString`), the only ones
/// downwardAPI volumes may project.
pub fn object_field(pod: &Pod, field_path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    if let Some((path, key)) = split_subscript(field_path) {
        let map = match path {
            "metadata.annotations" => meta.annotations.as_ref(),
            "metadata.labels" => meta.labels.as_ref(),
            _ => {
                return Err(format!(
                    "fieldPath {field_path:?} does not support subscript"
                ))
            }
        };
        return Ok(map.and_then(|m| m.get(key)).cloned().unwrap_or_default());
    }
    Ok(match field_path {
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        _ => return Err(format!("unsupported fieldPath: {field_path}")),
    })
}

/// `metadata.labels['key']` -> ("metadata.labels", "key").
fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let inner = path.strip_suffix("']")?;
    let (head, key) = inner.split_once("['")?;
    (!head.is_empty()).then_some((head, key))
}

/// `key="value"` lines sorted by key, values quoted as Go's `%q` does.
pub fn format_map(m: Option<&BTreeMap<String, String>>) -> String {
    let Some(m) = m else { return String::new() };
    m.iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Go's `strconv.Quote`: printable characters kept, the rest escaped.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A container resource for the downward API. `container_name` empty means
/// `container`; otherwise the named container (or init container) of the pod.
/// Limits that are not set default to the node's allocatable, as the kubelet
/// merges them before answering.
pub fn resource_field(
    pod: &Pod,
    container: Option<&Container>,
    sel: &ResourceFieldSelector,
    node_allocatable: &BTreeMap<String, Quantity>,
) -> Result<String, String> {
    let named = sel.container_name.as_deref().unwrap_or_default();
    let c = if named.is_empty() {
        container.ok_or_else(|| "containerName is required".to_string())?
    } else {
        find_container(pod, named).ok_or_else(|| format!("container {named} not found"))?
    };
    container_resource(c, sel, node_allocatable)
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

/// `ExtractContainerResourceValue` on the container with limits defaulted.
fn container_resource(
    c: &Container,
    sel: &ResourceFieldSelector,
    node_allocatable: &BTreeMap<String, Quantity>,
) -> Result<String, String> {
    let unsupported = || format!("unsupported container resource : {}", sel.resource);
    let (kind, name) = sel.resource.split_once('.').ok_or_else(unsupported)?;
    let res = c.resources.as_ref();
    let value = match kind {
        "limits" => res
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get(name))
            .or_else(|| node_allocatable.get(name)),
        "requests" => res
            .and_then(|r| r.requests.as_ref())
            .and_then(|l| l.get(name)),
        _ => return Err(unsupported()),
    };
    let is_cpu = name == "cpu";
    if !(is_cpu
        || name == "memory"
        || name == "ephemeral-storage"
        || name.starts_with("hugepages-"))
    {
        return Err(unsupported());
    }
    let amount = match value {
        Some(q) => parse_quantity(&q.0)?,
        None => parse_quantity("0")?,
    };
    let divisor = match &sel.divisor {
        Some(d) => parse_quantity(&d.0)?,
        None => parse_quantity("1")?,
    };
    let divisor = if divisor.is_zero() {
        parse_quantity("1")?
    } else {
        divisor
    };
    // CPU is compared in millicores, the rest in whole units; both round up.
    let (n, d) = if is_cpu {
        (amount.milli_value(), divisor.milli_value())
    } else {
        (amount.value(), divisor.value())
    };
    let d = d.max(1);
    let q = n.div_euclid(d) + i128::from(n.rem_euclid(d) != 0);
    Ok(q.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_string())
    }

    fn pod() -> Pod {
        let c = Container {
            name: "app".into(),
            resources: Some(ResourceRequirements {
                limits: Some([("cpu".to_string(), q("250m")), ("memory".into(), q("64Mi"))].into()),
                requests: Some([("cpu".to_string(), q("100m"))].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let init = Container {
            name: "init".into(),
            ..Default::default()
        };
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("u-1".into()),
                labels: Some(
                    [
                        ("b".to_string(), "2".to_string()),
                        ("a".into(), "x\"y".into()),
                    ]
                    .into(),
                ),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![c],
                init_containers: Some(vec![init]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn sel(res: &str, div: Option<&str>, name: &str) -> ResourceFieldSelector {
        ResourceFieldSelector {
            container_name: Some(name.into()),
            divisor: div.map(q),
            resource: res.into(),
        }
    }

    #[test]
    fn fields() {
        let p = pod();
        assert_eq!(object_field(&p, "metadata.name").unwrap(), "web");
        assert_eq!(object_field(&p, "metadata.uid").unwrap(), "u-1");
        assert_eq!(
            object_field(&p, "metadata.labels").unwrap(),
            "a=\"x\\\"y\"\nb=\"2\""
        );
        assert_eq!(object_field(&p, "metadata.labels['b']").unwrap(), "2");
        assert_eq!(
            object_field(&p, "metadata.annotations['none']").unwrap(),
            ""
        );
        assert_eq!(object_field(&p, "metadata.annotations").unwrap(), "");
        assert_eq!(
            object_field(&p, "spec.nodeName").unwrap_err(),
            "unsupported fieldPath: spec.nodeName"
        );
        assert_eq!(
            object_field(&p, "metadata.name['x']").unwrap_err(),
            "fieldPath \"metadata.name['x']\" does not support subscript"
        );
        assert_eq!(go_quote("a\tb\u{1}é"), "\"a\\tb\\x01é\"");
    }

    #[test]
    fn resources() {
        let p = pod();
        let alloc: BTreeMap<String, Quantity> =
            [("cpu".to_string(), q("2")), ("memory".into(), q("1Gi"))].into();
        let c = &p.spec.as_ref().unwrap().containers[0];
        let check = |s: ResourceFieldSelector| resource_field(&p, Some(c), &s, &alloc);
        assert_eq!(check(sel("limits.cpu", None, "")).unwrap(), "1"); // 250m rounds up
        assert_eq!(check(sel("limits.cpu", Some("1m"), "")).unwrap(), "250");
        assert_eq!(
            check(sel("requests.cpu", Some("1m"), "app")).unwrap(),
            "100"
        );
        assert_eq!(check(sel("limits.memory", Some("1Mi"), "")).unwrap(), "64");
        assert_eq!(check(sel("limits.memory", None, "")).unwrap(), "67108864");
        assert_eq!(check(sel("requests.memory", None, "")).unwrap(), "0");
        // Unset limits come from node allocatable.
        assert_eq!(
            check(sel("limits.cpu", Some("1m"), "init")).unwrap(),
            "2000"
        );
        assert_eq!(
            check(sel("limits.memory", Some("1Mi"), "init")).unwrap(),
            "1024"
        );
        assert_eq!(
            check(sel("limits.memory", Some("0"), "init")).unwrap(),
            "1073741824"
        );
        assert_eq!(
            check(sel("limits.gpu", None, "")).unwrap_err(),
            "unsupported container resource : limits.gpu"
        );
        assert_eq!(
            check(sel("limits.cpu", None, "nope")).unwrap_err(),
            "container nope not found"
        );
    }
}
