//! A container's environment, as the kubelet's `makeEnvironmentVariables`:
//! service variables, then `envFrom` (ConfigMaps/Secrets, with prefix), then
//! `env` (literal values with `$(VAR)` expansion, or `valueFrom` a
//! ConfigMap/Secret key, a pod field or a container resource). Later
//! definitions replace earlier ones. Errors are the messages shown with
//! `CreateContainerConfigError`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Container, ObjectFieldSelector, Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::cri::api::KeyValue;
use crate::volumes::downward;
use crate::volumes::objects::{not_found, ObjectSource};

/// Variables in definition order; redefining keeps the first position.
#[derive(Default)]
struct OrderedEnv {
    vars: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl OrderedEnv {
    fn set(&mut self, k: String, v: String) {
        match self.index.get(&k) {
            Some(&i) => self.vars[i].1 = v,
            None => {
                self.index.insert(k.clone(), self.vars.len());
                self.vars.push((k, v));
            }
        }
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.index.get(k).map(|&i| self.vars[i].1.as_str())
    }
}

/// The environment of `container` in `pod`. The pod's IPs and the node's
/// IPs are read from `pod.status` (`podIPs`/`podIP`, `hostIPs`/`hostIP`), so
/// the caller fills them in once the sandbox runs. Unset `limits.*` read by
/// `resourceFieldRef` default to `node_allocatable`; `service_env` holds the
/// Docker-link style service variables (`FOO_SERVICE_HOST`, ...).
pub async fn container_env(
    pod: &Pod,
    container: &Container,
    sources: &impl ObjectSource,
    node_allocatable: &BTreeMap<String, Quantity>,
    service_env: &[(String, String)],
) -> Result<Vec<KeyValue>, String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let service: HashMap<&str, &str> = service_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut objects = Objects {
        sources,
        ns,
        config_maps: HashMap::new(),
        secrets: HashMap::new(),
    };
    let mut env = OrderedEnv::default();

    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or_default();
        let mut invalid = Vec::new();
        let mut add = |k: &str, v: String| {
            let key = format!("{prefix}{k}");
            if is_env_var_name(&key) {
                env.set(key, v);
            } else {
                invalid.push(key);
            }
        };
        if let Some(r) = &from.config_map_ref {
            let Some(cm) = objects
                .config_map(&r.name, r.optional.unwrap_or(false))
                .await?
            else {
                continue;
            };
            for (k, v) in cm.data.iter().flatten() {
                add(k, v.clone());
            }
        } else if let Some(r) = &from.secret_ref {
            let Some(s) = objects.secret(&r.name, r.optional.unwrap_or(false)).await? else {
                continue;
            };
            for (k, v) in s.data.iter().flatten() {
                add(k, String::from_utf8_lossy(&v.0).into_owned());
            }
        }
        if !invalid.is_empty() {
            tracing::warn!(pod = ?pod.metadata.name, keys = ?invalid, "envFrom keys skipped: invalid environment variable names");
        }
    }

    for var in container.env.iter().flatten() {
        let literal = var.value.as_deref().unwrap_or_default();
        let value = if !literal.is_empty() {
            expand(literal, &|name| {
                env.get(name)
                    .or_else(|| service.get(name).copied())
                    .map(str::to_string)
            })
        } else if let Some(from) = &var.value_from {
            if let Some(f) = &from.field_ref {
                field_value(pod, f)?
            } else if let Some(r) = &from.resource_field_ref {
                downward::resource_field(pod, Some(container), r, node_allocatable)?
            } else if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional.unwrap_or(false);
                let Some(cm) = objects.config_map(&r.name, optional).await? else {
                    continue;
                };
                match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                    Some(v) => v.clone(),
                    None if optional => continue,
                    None => {
                        return Err(format!(
                            "couldn't find key {} in ConfigMap {ns}/{}",
                            r.key, r.name
                        ))
                    }
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional.unwrap_or(false);
                let Some(s) = objects.secret(&r.name, optional).await? else {
                    continue;
                };
                match s.data.as_ref().and_then(|d| d.get(&r.key)) {
                    Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                    None if optional => continue,
                    None => {
                        return Err(format!(
                            "couldn't find key {} in Secret {ns}/{}",
                            r.key, r.name
                        ))
                    }
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        env.set(var.name.clone(), value);
    }

    let mut out: Vec<KeyValue> = service_env
        .iter()
        .filter(|(k, _)| env.get(k).is_none())
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: v.clone(),
        })
        .collect();
    out.extend(
        env.vars
            .into_iter()
            .map(|(key, value)| KeyValue { key, value }),
    );
    Ok(out)
}

/// The Docker-link style variables of the Services a pod sees, as the
/// kubelet's `getServiceEnvVarMap` and `envvars.FromServices`: every Service
/// with a cluster IP in the pod's namespace when `enableServiceLinks` (the
/// default), and always `default/kubernetes`, which a Service of the same
/// name in the pod's own namespace replaces. Sorted by name, so a
/// container's environment does not depend on cache order.
pub fn service_env(
    services: &[Arc<Service>],
    pod_namespace: &str,
    enable_service_links: bool,
) -> Vec<(String, String)> {
    let mut seen: BTreeMap<&str, &Service> = BTreeMap::new();
    for svc in services {
        let Some(spec) = &svc.spec else { continue };
        let ip = spec.cluster_ip.as_deref().unwrap_or_default();
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let name = svc.metadata.name.as_deref().unwrap_or_default();
        let ns = svc.metadata.namespace.as_deref().unwrap_or_default();
        if ns == pod_namespace && enable_service_links {
            seen.insert(name, svc);
        } else if ns == "default" && name == "kubernetes" {
            seen.entry(name).or_insert(svc);
        }
    }
    let mut out = Vec::new();
    for (name, svc) in seen {
        let Some(spec) = &svc.spec else { continue };
        let ip = spec.cluster_ip.as_deref().unwrap_or_default();
        let ports = spec.ports.as_deref().unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        let prefix = env_name(name);
        out.push((format!("{prefix}_SERVICE_HOST"), ip.to_string()));
        out.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        for p in ports {
            if let Some(port_name) = p.name.as_deref().filter(|n| !n.is_empty()) {
                out.push((
                    format!("{prefix}_SERVICE_PORT_{}", env_name(port_name)),
                    p.port.to_string(),
                ));
            }
        }
        let host = match ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(_)) => format!("[{ip}]"),
            _ => ip.to_string(),
        };
        let url = |p: &k8s_openapi::api::core::v1::ServicePort| {
            let proto = p.protocol.as_deref().unwrap_or("TCP").to_lowercase();
            (format!("{proto}://{host}:{}", p.port), proto)
        };
        out.push((format!("{prefix}_PORT"), url(first).0));
        for p in ports {
            let (u, proto) = url(p);
            let var = format!("{prefix}_PORT_{}_{}", p.port, proto.to_uppercase());
            out.push((format!("{var}_PROTO"), proto));
            out.push((format!("{var}_PORT"), p.port.to_string()));
            out.push((format!("{var}_ADDR"), ip.to_string()));
            out.push((var, u));
        }
    }
    out
}

/// `my-svc` → `MY_SVC`, as `makeEnvVariableName`.
fn env_name(s: &str) -> String {
    s.to_uppercase().replace('-', "_")
}

/// ConfigMaps and Secrets read once per container.
struct Objects<'a, S> {
    sources: &'a S,
    ns: &'a str,
    config_maps: HashMap<String, Arc<ConfigMap>>,
    secrets: HashMap<String, Arc<Secret>>,
}

impl<S: ObjectSource> Objects<'_, S> {
    /// `Ok(None)`: missing but optional.
    async fn config_map(
        &mut self,
        name: &str,
        optional: bool,
    ) -> Result<Option<Arc<ConfigMap>>, String> {
        if let Some(cm) = self.config_maps.get(name) {
            return Ok(Some(cm.clone()));
        }
        match self.sources.config_map(self.ns, name).await? {
            Some(cm) => {
                self.config_maps.insert(name.to_string(), cm.clone());
                Ok(Some(cm))
            }
            None if optional => Ok(None),
            None => Err(not_found("configmap", name)),
        }
    }

    async fn secret(&mut self, name: &str, optional: bool) -> Result<Option<Arc<Secret>>, String> {
        if let Some(s) = self.secrets.get(name) {
            return Ok(Some(s.clone()));
        }
        match self.sources.secret(self.ns, name).await? {
            Some(s) => {
                self.secrets.insert(name.to_string(), s.clone());
                Ok(Some(s))
            }
            None if optional => Ok(None),
            None => Err(not_found("secret", name)),
        }
    }
}

/// `podFieldSelectorRuntimeValue`.
fn field_value(pod: &Pod, f: &ObjectFieldSelector) -> Result<String, String> {
    let version = f.api_version.as_deref().unwrap_or("v1");
    if version != "v1" {
        return Err(format!("unsupported pod version: {version}"));
    }
    let path = f.field_path.as_str();
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let ips = |list: Option<Vec<String>>, single: Option<&String>| -> Vec<String> {
        list.filter(|l| !l.is_empty())
            .or_else(|| single.filter(|s| !s.is_empty()).map(|s| vec![s.clone()]))
            .unwrap_or_default()
    };
    let host_ips = || {
        let list = status
            .and_then(|s| s.host_ips.as_ref())
            .map(|l| l.iter().map(|i| i.ip.clone()).collect());
        ips(list, status.and_then(|s| s.host_ip.as_ref()))
    };
    let pod_ips = || {
        let list = status
            .and_then(|s| s.pod_ips.as_ref())
            .map(|l| l.iter().map(|i| i.ip.clone()).collect());
        ips(list, status.and_then(|s| s.pod_ip.as_ref()))
    };
    Ok(match path {
        "spec.nodeName" | "spec.host" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" => host_ips().into_iter().next().unwrap_or_default(),
        "status.hostIPs" => host_ips().join(","),
        "status.podIP" => pod_ips().into_iter().next().unwrap_or_default(),
        "status.podIPs" => pod_ips().join(","),
        "metadata.annotations"
        | "metadata.labels"
        | "metadata.name"
        | "metadata.namespace"
        | "metadata.uid"
        | "spec.restartPolicy"
        | "spec.schedulerName"
        | "status.phase" => downward::object_field(pod, path)?,
        _ if path.ends_with("']") => {
            if !(path.starts_with("metadata.annotations['")
                || path.starts_with("metadata.labels['"))
            {
                return Err(format!("field label does not support subscript: {path}"));
            }
            downward::object_field(pod, path)?
        }
        _ => return Err(format!("field label not supported: {path}")),
    })
}

/// Relaxed environment variable names (the default since 1.32): printable
/// ASCII other than `=`.
pub fn is_env_var_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'=')
}

/// `$(VAR)` expansion as upstream's `third_party/forked/golang/expansion`:
/// `$(VAR)` becomes `mapping(VAR)` (left as written when `None`), `$$` is a
/// literal `$`, an unterminated `$(` or a `$` before anything else stays.
pub fn expand(input: &str, mapping: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.chars().next() {
            None => {
                out.push('$');
                rest = after;
            }
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('(') => match after.find(')') {
                Some(close) => {
                    let name = &after[1..close];
                    match mapping(name) {
                        Some(v) => out.push_str(&v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            Some(c) => {
                out.push('$');
                out.push(c);
                rest = &after[c.len_utf8()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `$(VAR)` references in command and args replaced from the container's
/// environment (`ExpandContainerCommandAndArgs`); unknown ones stay as is.
pub fn expand_command_and_args(
    container: &Container,
    env: &[KeyValue],
) -> (Vec<String>, Vec<String>) {
    let vars: HashMap<&str, &str> = env
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_str()))
        .collect();
    let one = |s: &String| expand(s, &|name| vars.get(name).map(|v| (*v).to_string()));
    (
        container.command.iter().flatten().map(one).collect(),
        container.args.iter().flatten().map(one).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource, HostIP,
        PodIP, PodSpec, PodStatus, ResourceFieldSelector, ResourceRequirements, SecretEnvSource,
        SecretKeySelector,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::ByteString;

    #[derive(Default)]
    struct Fake {
        cms: HashMap<String, Arc<ConfigMap>>,
        secrets: HashMap<String, Arc<Secret>>,
    }

    impl ObjectSource for Fake {
        async fn config_map(&self, ns: &str, name: &str) -> Result<Option<Arc<ConfigMap>>, String> {
            if name == "broken" {
                return Err("connection refused".into());
            }
            Ok(self.cms.get(&format!("{ns}/{name}")).cloned())
        }
        async fn secret(&self, ns: &str, name: &str) -> Result<Option<Arc<Secret>>, String> {
            Ok(self.secrets.get(&format!("{ns}/{name}")).cloned())
        }
    }

    fn fake() -> Fake {
        let mut f = Fake::default();
        f.cms.insert(
            "ns/cfg".into(),
            Arc::new(ConfigMap {
                data: Some(
                    [
                        ("MODE".to_string(), "prod".to_string()),
                        ("HOST".into(), "db".into()),
                        ("bad=key".into(), "x".into()),
                    ]
                    .into(),
                ),
                ..Default::default()
            }),
        );
        f.secrets.insert(
            "ns/creds".into(),
            Arc::new(Secret {
                data: Some([("password".to_string(), ByteString(b"s3cret".to_vec()))].into()),
                ..Default::default()
            }),
        );
        f
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-1".into()),
                namespace: Some("ns".into()),
                uid: Some("uid-1".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("node-a".into()),
                service_account_name: Some("sa".into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                host_ips: Some(vec![HostIP {
                    ip: "192.168.1.5".into(),
                }]),
                pod_ip: Some("10.42.0.9".into()),
                pod_ips: Some(vec![
                    PodIP {
                        ip: "10.42.0.9".into(),
                    },
                    PodIP {
                        ip: "fd00::9".into(),
                    },
                ]),
                ..Default::default()
            }),
        }
    }

    fn val(name: &str, v: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(v.into()),
            value_from: None,
        }
    }

    fn from(name: &str, src: EnvVarSource) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: None,
            value_from: Some(src),
        }
    }

    fn field(path: &str) -> EnvVarSource {
        EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".into()),
                field_path: path.into(),
            }),
            ..Default::default()
        }
    }

    fn cm_key(name: &str, key: &str, optional: bool) -> EnvVarSource {
        EnvVarSource {
            config_map_key_ref: Some(ConfigMapKeySelector {
                name: name.into(),
                key: key.into(),
                optional: Some(optional),
            }),
            ..Default::default()
        }
    }

    fn secret_key(name: &str, key: &str, optional: bool) -> EnvVarSource {
        EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: name.into(),
                key: key.into(),
                optional: Some(optional),
            }),
            ..Default::default()
        }
    }

    async fn run(
        c: Container,
        service: &[(String, String)],
    ) -> Result<Vec<(String, String)>, String> {
        let alloc: BTreeMap<String, Quantity> =
            [("memory".to_string(), Quantity("2Gi".into()))].into();
        let out = container_env(&pod(), &c, &fake(), &alloc, service).await?;
        Ok(out.into_iter().map(|kv| (kv.key, kv.value)).collect())
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn order_override_and_expansion() {
        let c = Container {
            name: "app".into(),
            env_from: Some(vec![
                EnvFromSource {
                    config_map_ref: Some(ConfigMapEnvSource {
                        name: "cfg".into(),
                        optional: None,
                    }),
                    prefix: Some("CFG_".into()),
                    secret_ref: None,
                },
                EnvFromSource {
                    secret_ref: Some(SecretEnvSource {
                        name: "creds".into(),
                        optional: None,
                    }),
                    ..Default::default()
                },
                EnvFromSource {
                    config_map_ref: Some(ConfigMapEnvSource {
                        name: "gone".into(),
                        optional: Some(true),
                    }),
                    ..Default::default()
                },
            ]),
            env: Some(vec![
                val("CFG_MODE", "dev"),
                val(
                    "URL",
                    "http://$(CFG_HOST):$(SVC_PORT)/$(NOPE)/$$(CFG_HOST)/$(password)",
                ),
                val("KUBERNETES_PORT", "override"),
                EnvVar {
                    name: "EMPTY".into(),
                    value: None,
                    value_from: None,
                },
            ]),
            ..Default::default()
        };
        let service = pairs(&[
            ("SVC_PORT", "8080"),
            ("KUBERNETES_PORT", "tcp://10.43.0.1:443"),
        ]);
        let got = run(c, &service).await.unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("SVC_PORT", "8080"),
                ("CFG_HOST", "db"),
                ("CFG_MODE", "dev"),
                ("password", "s3cret"),
                ("URL", "http://db:8080/$(NOPE)/$(CFG_HOST)/s3cret"),
                ("KUBERNETES_PORT", "override"),
                ("EMPTY", ""),
            ])
        );
    }

    #[tokio::test]
    async fn value_from_sources() {
        let limits = ResourceRequirements {
            limits: Some([("cpu".to_string(), Quantity("500m".into()))].into()),
            ..Default::default()
        };
        let res = |r: &str, div: &str| EnvVarSource {
            resource_field_ref: Some(ResourceFieldSelector {
                container_name: None,
                divisor: Some(Quantity(div.into())),
                resource: r.into(),
            }),
            ..Default::default()
        };
        let c = Container {
            name: "app".into(),
            resources: Some(limits),
            env: Some(vec![
                from("NAME", field("metadata.name")),
                from("NS", field("metadata.namespace")),
                from("UID", field("metadata.uid")),
                from("APP", field("metadata.labels['app']")),
                from("LABELS", field("metadata.labels")),
                from("NODE", field("spec.nodeName")),
                from("SA", field("spec.serviceAccountName")),
                from("HOST_IP", field("status.hostIP")),
                from("HOST_IPS", field("status.hostIPs")),
                from("POD_IP", field("status.podIP")),
                from("POD_IPS", field("status.podIPs")),
                from("CPU_M", res("limits.cpu", "1m")),
                from("MEM_MI", res("limits.memory", "1Mi")),
                from("MODE", cm_key("cfg", "MODE", false)),
                from("OPT", cm_key("cfg", "nope", true)),
                from("OPT2", cm_key("gone", "x", true)),
                from("PW", secret_key("creds", "password", false)),
                from("OPT3", secret_key("gone", "x", true)),
            ]),
            ..Default::default()
        };
        let got = run(c, &[]).await.unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("NAME", "web-1"),
                ("NS", "ns"),
                ("UID", "uid-1"),
                ("APP", "web"),
                ("LABELS", "app=\"web\""),
                ("NODE", "node-a"),
                ("SA", "sa"),
                ("HOST_IP", "192.168.1.5"),
                ("HOST_IPS", "192.168.1.5"),
                ("POD_IP", "10.42.0.9"),
                ("POD_IPS", "10.42.0.9,fd00::9"),
                ("CPU_M", "500"),
                ("MEM_MI", "2048"),
                ("MODE", "prod"),
                ("PW", "s3cret"),
            ])
        );
    }

    #[tokio::test]
    async fn errors() {
        let one = |e: EnvVar| Container {
            name: "app".into(),
            env: Some(vec![e]),
            ..Default::default()
        };
        let cases = [
            (
                from("X", cm_key("missing", "k", false)),
                "configmap \"missing\" not found",
            ),
            (
                from("X", cm_key("cfg", "k", false)),
                "couldn't find key k in ConfigMap ns/cfg",
            ),
            (
                from("X", secret_key("missing", "k", false)),
                "secret \"missing\" not found",
            ),
            (
                from("X", secret_key("creds", "k", false)),
                "couldn't find key k in Secret ns/creds",
            ),
            (from("X", cm_key("broken", "k", true)), "connection refused"),
            (
                from("X", field("spec.nope")),
                "field label not supported: spec.nope",
            ),
            (
                from("X", field("metadata.name['a']")),
                "field label does not support subscript: metadata.name['a']",
            ),
        ];
        for (var, msg) in cases {
            assert_eq!(run(one(var), &[]).await.unwrap_err(), msg);
        }
        let env_from = Container {
            name: "app".into(),
            env_from: Some(vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: "nope".into(),
                    optional: Some(false),
                }),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(
            run(env_from, &[]).await.unwrap_err(),
            "secret \"nope\" not found"
        );
    }

    #[test]
    fn expansion_rules() {
        let vars: HashMap<&str, &str> = [("A", "a"), ("B", "b"), ("EMPTY", "")].into();
        let map = |n: &str| vars.get(n).map(|v| v.to_string());
        let cases = [
            ("$(A)", "a"),
            ("x$(A)y$(B)z", "xaybz"),
            ("$(EMPTY)", ""),
            ("$(UNKNOWN)", "$(UNKNOWN)"),
            ("$$(A)", "$(A)"),
            ("$$$(A)", "$a"),
            ("$$$$(A)", "$$(A)"),
            ("$(A", "$(A"),
            ("$(A$(B))", "$(A$(B))"),
            ("$A", "$A"),
            ("a$", "a$"),
            ("$", "$"),
            ("$()", "$()"),
            ("é$é$(A)", "é$éa"),
            ("no refs", "no refs"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &map), want, "{input}");
        }
    }

    #[test]
    fn command_args() {
        let c = Container {
            command: Some(vec!["echo".into(), "$(MSG)".into()]),
            args: Some(vec!["$(NOPE)".into(), "$$(MSG)".into()]),
            ..Default::default()
        };
        let env = [KeyValue {
            key: "MSG".into(),
            value: "hi".into(),
        }];
        let (cmd, args) = expand_command_and_args(&c, &env);
        assert_eq!(cmd, ["echo", "hi"]);
        assert_eq!(args, ["$(NOPE)", "$(MSG)"]);
    }

    #[test]
    fn env_names() {
        for ok in ["A", "a.b-c", "1X", "with space"] {
            assert!(is_env_var_name(ok), "{ok}");
        }
        for bad in ["", "A=B", "tab\t", "é"] {
            assert!(!is_env_var_name(bad), "{bad}");
        }
    }

    fn svc(ns: &str, name: &str, ip: &str, ports: &[(&str, i32, &str)]) -> Arc<Service> {
        use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
        Arc::new(Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.into()),
                ports: Some(
                    ports
                        .iter()
                        .map(|(n, p, proto)| ServicePort {
                            name: (!n.is_empty()).then(|| n.to_string()),
                            port: *p,
                            protocol: Some(proto.to_string()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn service_links_as_docker_links() {
        let all = vec![
            svc(
                "default",
                "kubernetes",
                "10.43.0.1",
                &[("https", 443, "TCP")],
            ),
            svc("app", "redis-main", "10.43.0.7", &[("", 6379, "TCP")]),
            svc(
                "app",
                "dns",
                "10.43.0.9",
                &[("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")],
            ),
            svc("app", "headless", "None", &[("web", 80, "TCP")]),
            svc("other", "web", "10.43.0.8", &[("http", 80, "TCP")]),
        ];
        let env: HashMap<String, String> = service_env(&all, "app", true).into_iter().collect();
        assert_eq!(env["KUBERNETES_SERVICE_HOST"], "10.43.0.1");
        assert_eq!(env["KUBERNETES_SERVICE_PORT"], "443");
        assert_eq!(env["KUBERNETES_SERVICE_PORT_HTTPS"], "443");
        assert_eq!(env["KUBERNETES_PORT"], "tcp://10.43.0.1:443");
        assert_eq!(env["KUBERNETES_PORT_443_TCP"], "tcp://10.43.0.1:443");
        assert_eq!(env["KUBERNETES_PORT_443_TCP_PROTO"], "tcp");
        assert_eq!(env["KUBERNETES_PORT_443_TCP_PORT"], "443");
        assert_eq!(env["KUBERNETES_PORT_443_TCP_ADDR"], "10.43.0.1");
        assert_eq!(env["REDIS_MAIN_SERVICE_HOST"], "10.43.0.7");
        assert_eq!(env["REDIS_MAIN_PORT"], "tcp://10.43.0.7:6379");
        assert_eq!(env["DNS_SERVICE_PORT_DNS_TCP"], "53");
        assert_eq!(env["DNS_PORT"], "udp://10.43.0.9:53");
        assert_eq!(env["DNS_PORT_53_UDP_PROTO"], "udp");
        assert!(!env.keys().any(|k| k.starts_with("HEADLESS_")), "{env:?}");
        assert!(!env.keys().any(|k| k.starts_with("WEB_")), "{env:?}");

        // enableServiceLinks: false keeps only the API server's.
        let env = service_env(&all, "app", false);
        assert!(
            env.iter().all(|(k, _)| k.starts_with("KUBERNETES_")),
            "{env:?}"
        );
        // A Service named kubernetes in the pod's namespace wins.
        let mine = vec![
            all[0].clone(),
            svc("app", "kubernetes", "10.43.0.99", &[("", 8443, "TCP")]),
        ];
        let env: HashMap<String, String> = service_env(&mine, "app", true).into_iter().collect();
        assert_eq!(env["KUBERNETES_SERVICE_HOST"], "10.43.0.99");
    }
}
