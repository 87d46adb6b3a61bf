//! What configMap, secret and downwardAPI volumes (and the same sources
//! inside a projected volume) contain: keys or items mapped to paths with
//! their modes, as upstream's `MakePayload`/`CollectData`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::atomic_writer::{FileProjection, Payload};
use super::downward;

/// `0644`, the default of every projecting volume type.
pub const DEFAULT_MODE: u32 = 0o644;

pub fn mode_of(mode: Option<i32>, default: u32) -> u32 {
    mode.map(|m| m as u32).unwrap_or(default)
}

/// All keys (no items) or the listed items of a ConfigMap. `cm = None` is a
/// missing optional ConfigMap: an empty volume.
pub fn config_map(
    items: Option<&[KeyToPath]>,
    cm: Option<&ConfigMap>,
    default_mode: u32,
    optional: bool,
) -> Result<Payload, String> {
    let Some(cm) = cm else {
        return Ok(Payload::new());
    };
    let lookup = |key: &str| -> Option<Vec<u8>> {
        if let Some(v) = cm.data.as_ref().and_then(|d| d.get(key)) {
            return Some(v.clone().into_bytes());
        }
        cm.binary_data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| b.0.clone())
    };
    match items.filter(|i| !i.is_empty()) {
        None => {
            let mut out = Payload::new();
            let text = cm.data.iter().flatten().map(|(k, v)| (k, v.as_bytes()));
            let binary = cm
                .binary_data
                .iter()
                .flatten()
                .map(|(k, v)| (k, v.0.as_slice()));
            for (k, v) in text.chain(binary) {
                out.insert(k.clone(), file(v.to_vec(), default_mode));
            }
            Ok(out)
        }
        Some(items) => project_items(items, default_mode, optional, lookup, |k| {
            format!("configmap references non-existent config key: {k}")
        }),
    }
}

/// All keys or the listed items of a Secret (`secret = None`: missing and
/// optional).
pub fn secret(
    items: Option<&[KeyToPath]>,
    secret: Option<&Secret>,
    default_mode: u32,
    optional: bool,
) -> Result<Payload, String> {
    let Some(secret) = secret else {
        return Ok(Payload::new());
    };
    let data = secret.data.as_ref();
    match items.filter(|i| !i.is_empty()) {
        None => Ok(data
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), file(v.0.clone(), default_mode)))
            .collect()),
        Some(items) => project_items(
            items,
            default_mode,
            optional,
            |k| data.and_then(|d| d.get(k)).map(|v| v.0.clone()),
            |k| format!("references non-existent secret key: {k}"),
        ),
    }
}

fn project_items(
    items: &[KeyToPath],
    default_mode: u32,
    optional: bool,
    lookup: impl Fn(&str) -> Option<Vec<u8>>,
    missing: impl Fn(&str) -> String,
) -> Result<Payload, String> {
    let mut out = Payload::new();
    for item in items {
        match lookup(&item.key) {
            Some(data) => {
                out.insert(
                    item.path.clone(),
                    file(data, mode_of(item.mode, default_mode)),
                );
            }
            None if optional => continue,
            None => return Err(missing(&item.key)),
        }
    }
    Ok(out)
}

/// Files of a downwardAPI volume; all failing items are reported together.
pub fn downward_api(
    items: &[DownwardAPIVolumeFile],
    pod: &Pod,
    default_mode: u32,
    node_allocatable: &BTreeMap<String, Quantity>,
) -> Result<Payload, String> {
    let mut out = Payload::new();
    let mut errors = Vec::new();
    for item in items {
        let value = if let Some(f) = &item.field_ref {
            downward::object_field(pod, &f.field_path)
        } else if let Some(r) = &item.resource_field_ref {
            downward::resource_field(pod, None, r, node_allocatable)
        } else {
            Ok(String::new())
        };
        match value {
            Ok(v) => {
                out.insert(
                    item.path.clone(),
                    file(v.into_bytes(), mode_of(item.mode, default_mode)),
                );
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(aggregate(errors))
    }
}

/// `utilerrors.NewAggregate(...).Error()`: one message as is, several in
/// brackets (duplicates dropped).
pub fn aggregate(mut errors: Vec<String>) -> String {
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert(e.clone()));
    if errors.len() == 1 {
        errors.remove(0)
    } else {
        format!("[{}]", errors.join(", "))
    }
}

fn file(data: Vec<u8>, mode: u32) -> FileProjection {
    FileProjection { data, mode }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ObjectFieldSelector, ResourceFieldSelector};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::ByteString;

    fn item(key: &str, path: &str, mode: Option<i32>) -> KeyToPath {
        KeyToPath {
            key: key.into(),
            path: path.into(),
            mode,
        }
    }

    fn cm() -> ConfigMap {
        ConfigMap {
            data: Some([("a".to_string(), "1".to_string()), ("b".into(), "2".into())].into()),
            binary_data: Some([("bin".to_string(), ByteString(vec![0, 1]))].into()),
            ..Default::default()
        }
    }

    fn check(p: &Payload, want: &[(&str, &[u8], u32)]) {
        let got: Vec<(&str, &[u8], u32)> = p
            .iter()
            .map(|(k, v)| (k.as_str(), v.data.as_slice(), v.mode))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn config_map_keys_and_items() {
        let c = cm();
        let all = config_map(None, Some(&c), 0o600, false).unwrap();
        check(
            &all,
            &[
                ("a", b"1", 0o600),
                ("b", b"2", 0o600),
                ("bin", &[0, 1], 0o600),
            ],
        );
        let items = [item("a", "dir/x", Some(0o400)), item("bin", "y", None)];
        let some = config_map(Some(&items), Some(&c), 0o644, false).unwrap();
        check(&some, &[("dir/x", b"1", 0o400), ("y", &[0, 1], 0o644)]);
        let missing = [item("nope", "n", None)];
        assert_eq!(
            config_map(Some(&missing), Some(&c), 0o644, false).unwrap_err(),
            "configmap references non-existent config key: nope"
        );
        assert!(config_map(Some(&missing), Some(&c), 0o644, true)
            .unwrap()
            .is_empty());
        assert!(config_map(None, None, 0o644, true).unwrap().is_empty());
    }

    #[test]
    fn secret_keys_and_items() {
        let s = Secret {
            data: Some([("user".to_string(), ByteString(b"admin".to_vec()))].into()),
            ..Default::default()
        };
        check(
            &secret(None, Some(&s), 0o400, false).unwrap(),
            &[("user", b"admin", 0o400)],
        );
        let items = [item("user", "u", Some(0o440))];
        check(
            &secret(Some(&items), Some(&s), 0o644, false).unwrap(),
            &[("u", b"admin", 0o440)],
        );
        let missing = [item("pw", "p", None)];
        assert_eq!(
            secret(Some(&missing), Some(&s), 0o644, false).unwrap_err(),
            "references non-existent secret key: pw"
        );
    }

    #[test]
    fn downward_items() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let f = |path: &str, fp: &str| DownwardAPIVolumeFile {
            path: path.into(),
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".into()),
                field_path: fp.into(),
            }),
            ..Default::default()
        };
        let items = [f("name", "metadata.name"), f("labels", "metadata.labels")];
        let p = downward_api(&items, &pod, 0o644, &BTreeMap::new()).unwrap();
        check(
            &p,
            &[("labels", b"app=\"web\"", 0o644), ("name", b"p", 0o644)],
        );
        let bad = [
            f("x", "spec.nodeName"),
            DownwardAPIVolumeFile {
                path: "cpu".into(),
                resource_field_ref: Some(ResourceFieldSelector {
                    container_name: Some("gone".into()),
                    resource: "limits.cpu".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ];
        assert_eq!(
            downward_api(&bad, &pod, 0o644, &BTreeMap::new()).unwrap_err(),
            "[unsupported fieldPath: spec.nodeName, container gone not found]"
        );
    }
}
