//! The registry of kinds: every resource the API serves, described as data.
//!
//! Built-in kinds come from [`builtin`]; CustomResourceDefinitions will add
//! entries of the same shape at run time, so nothing above this module may
//! special-case a kind by code path alone.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Verbs a resource answers, as discovery lists them.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Verbs of resources that cannot be deleted in bulk or watched (none yet).
pub const READ_WRITE_VERBS: &[&str] = &["create", "delete", "get", "list", "patch", "update"];

/// A subresource served under `<resource>/<name>/<subresource>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subresource {
    pub name: &'static str,
    /// Group, version and kind of the body it takes and returns.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// One served resource of one group-version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    /// Plural lower-case name used in URLs (`deployments`).
    pub resource: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<String>,
    pub subresources: Vec<Subresource>,
    /// Where objects are stored; several versions of one group share it.
    pub storage_group_resource: String,
    /// Whether `spec` and `status` are written apart (`/status` subresource).
    pub has_status: bool,
    /// For a custom resource: what its CustomResourceDefinition says about
    /// this version (schema, printer columns, scale paths). `None` for built-ins.
    pub custom: Option<Arc<crate::apiextensions::CustomResource>>,
}

impl ResourceType {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods` for the core group.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    pub fn subresource(&self, name: &str) -> Option<&Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }
}

/// What is served, looked up by group/version/resource or by kind.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    types: Vec<Arc<ResourceType>>,
    /// Bumped on every change, so documents derived from the registry
    /// (discovery, OpenAPI) know when to be rebuilt.
    generation: u64,
}

impl Registry {
    pub fn builtin() -> Self {
        Registry {
            types: builtin().into_iter().map(Arc::new).collect(),
            generation: 0,
        }
    }

    pub fn add(&mut self, rt: ResourceType) {
        self.types.retain(|t| {
            !(t.group == rt.group && t.version == rt.version && t.resource == rt.resource)
        });
        self.types.push(Arc::new(rt));
        self.generation += 1;
    }

    pub fn remove_group_resource(&mut self, group: &str, resource: &str) {
        self.types
            .retain(|t| !(t.group == group && t.resource == resource));
        self.generation += 1;
    }

    /// Replaces every served version of `group`/`resource` with `types` (none
    /// to stop serving it), in one step.
    pub fn replace_group_resource(
        &mut self,
        group: &str,
        resource: &str,
        types: Vec<ResourceType>,
    ) {
        self.types
            .retain(|t| !(t.group == group && t.resource == resource));
        self.types.extend(types.into_iter().map(Arc::new));
        self.generation += 1;
    }

    /// Changes with every add or removal.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn all(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    pub fn get(&self, group: &str, version: &str, resource: &str) -> Option<&Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.resource == resource)
    }

    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<&Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
    }

    /// Group name → versions in preference order (first preferred).
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in &self.types {
            let versions = out.entry(t.group.clone()).or_default();
            if !versions.contains(&t.version) {
                versions.push(t.version.clone());
            }
        }
        for versions in out.values_mut() {
            versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        out
    }

    /// Resources of one group-version, in registration order.
    pub fn resources_of(&self, group: &str, version: &str) -> Vec<&Arc<ResourceType>> {
        self.types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .collect()
    }
}

/// Kubernetes' version ordering: GA > beta > alpha, higher numbers first.
pub fn version_priority(v: &str) -> (u8, u32, u32) {
    let rest = v.strip_prefix('v').unwrap_or(v);
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let major: u32 = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (level, num) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        (0, "0")
    };
    (level, major, num.parse().unwrap_or(0))
}

const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

const fn status_sub(group: &'static str, version: &'static str, kind: &'static str) -> Subresource {
    Subresource {
        name: "status",
        group,
        version,
        kind,
        verbs: STATUS_VERBS,
    }
}

const SCALE: Subresource = Subresource {
    name: "scale",
    group: "autoscaling",
    version: "v1",
    kind: "Scale",
    verbs: STATUS_VERBS,
};

struct Def {
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    extra: &'static [Subresource],
    verbs: &'static [&'static str],
}

const fn def(
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> Def {
    Def {
        group,
        version,
        resource,
        kind,
        namespaced,
        short: &[],
        categories: &[],
        status: false,
        extra: &[],
        verbs: ALL_VERBS,
    }
}

impl Def {
    const fn short(mut self, s: &'static [&'static str]) -> Self {
        self.short = s;
        self
    }
    const fn all(mut self) -> Self {
        self.categories = &["all"];
        self
    }
    const fn categories(mut self, c: &'static [&'static str]) -> Self {
        self.categories = c;
        self
    }
    const fn status(mut self) -> Self {
        self.status = true;
        self
    }
    const fn extra(mut self, e: &'static [Subresource]) -> Self {
        self.extra = e;
        self
    }
    const fn verbs(mut self, v: &'static [&'static str]) -> Self {
        self.verbs = v;
        self
    }
}

const POD_EXTRA: &[Subresource] = &[
    Subresource {
        name: "binding",
        group: "",
        version: "v1",
        kind: "Binding",
        verbs: &["create"],
    },
    Subresource {
        name: "eviction",
        group: "policy",
        version: "v1",
        kind: "Eviction",
        verbs: &["create"],
    },
    Subresource {
        name: "log",
        group: "",
        version: "v1",
        kind: "Pod",
        verbs: &["get"],
    },
    Subresource {
        name: "exec",
        group: "",
        version: "v1",
        kind: "PodExecOptions",
        verbs: &["create", "get"],
    },
    Subresource {
        name: "attach",
        group: "",
        version: "v1",
        kind: "PodAttachOptions",
        verbs: &["create", "get"],
    },
    Subresource {
        name: "portforward",
        group: "",
        version: "v1",
        kind: "PodPortForwardOptions",
        verbs: &["create", "get"],
    },
    Subresource {
        name: "ephemeralcontainers",
        group: "",
        version: "v1",
        kind: "Pod",
        verbs: &["get", "patch", "update"],
    },
];
const SCALE_ONLY: &[Subresource] = &[SCALE];
/// `nodes/proxy`: requests passed to the node's kubelet (e.g. `stats/summary`).
const NODE_EXTRA: &[Subresource] = &[Subresource {
    name: "proxy",
    group: "",
    version: "v1",
    kind: "NodeProxyOptions",
    verbs: &["create", "delete", "get", "patch", "update"],
}];

/// Every built-in kind a kubectl user touches, as kube-apiserver 1.33 serves it.
fn builtin_defs() -> Vec<Def> {
    vec![
        // core/v1
        def("", "v1", "pods", "Pod", true)
            .short(&["po"])
            .all()
            .status()
            .extra(POD_EXTRA),
        def("", "v1", "services", "Service", true)
            .short(&["svc"])
            .all()
            .status()
            .verbs(&[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]),
        def("", "v1", "endpoints", "Endpoints", true).short(&["ep"]),
        def("", "v1", "namespaces", "Namespace", false)
            .short(&["ns"])
            .status()
            .verbs(&[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ]),
        def("", "v1", "nodes", "Node", false)
            .short(&["no"])
            .status()
            .extra(NODE_EXTRA),
        def("", "v1", "configmaps", "ConfigMap", true).short(&["cm"]),
        def("", "v1", "secrets", "Secret", true),
        def("", "v1", "serviceaccounts", "ServiceAccount", true).short(&["sa"]),
        def("", "v1", "events", "Event", true).short(&["ev"]),
        def("", "v1", "persistentvolumes", "PersistentVolume", false)
            .short(&["pv"])
            .status(),
        def(
            "",
            "v1",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            true,
        )
        .short(&["pvc"])
        .status(),
        def(
            "",
            "v1",
            "replicationcontrollers",
            "ReplicationController",
            true,
        )
        .short(&["rc"])
        .all()
        .status()
        .extra(SCALE_ONLY),
        def("", "v1", "resourcequotas", "ResourceQuota", true)
            .short(&["quota"])
            .status(),
        def("", "v1", "limitranges", "LimitRange", true).short(&["limits"]),
        def("", "v1", "podtemplates", "PodTemplate", true),
        // apps/v1
        def("apps", "v1", "deployments", "Deployment", true)
            .short(&["deploy"])
            .all()
            .status()
            .extra(SCALE_ONLY),
        def("apps", "v1", "replicasets", "ReplicaSet", true)
            .short(&["rs"])
            .all()
            .status()
            .extra(SCALE_ONLY),
        def("apps", "v1", "statefulsets", "StatefulSet", true)
            .short(&["sts"])
            .all()
            .status()
            .extra(SCALE_ONLY),
        def("apps", "v1", "daemonsets", "DaemonSet", true)
            .short(&["ds"])
            .all()
            .status(),
        def(
            "apps",
            "v1",
            "controllerrevisions",
            "ControllerRevision",
            true,
        ),
        // batch/v1
        def("batch", "v1", "jobs", "Job", true).all().status(),
        def("batch", "v1", "cronjobs", "CronJob", true)
            .short(&["cj"])
            .all()
            .status(),
        // autoscaling
        def(
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            true,
        )
        .short(&["hpa"])
        .all()
        .status(),
        def(
            "autoscaling",
            "v1",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            true,
        )
        .short(&["hpa"])
        .all()
        .status(),
        // networking.k8s.io/v1
        def("networking.k8s.io", "v1", "ingresses", "Ingress", true)
            .short(&["ing"])
            .status(),
        def(
            "networking.k8s.io",
            "v1",
            "ingressclasses",
            "IngressClass",
            false,
        ),
        def(
            "networking.k8s.io",
            "v1",
            "networkpolicies",
            "NetworkPolicy",
            true,
        )
        .short(&["netpol"]),
        // rbac.authorization.k8s.io/v1
        def("rbac.authorization.k8s.io", "v1", "roles", "Role", true),
        def(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
            true,
        ),
        def(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
            false,
        ),
        def(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
        ),
        // storage.k8s.io/v1
        def(
            "storage.k8s.io",
            "v1",
            "storageclasses",
            "StorageClass",
            false,
        )
        .short(&["sc"]),
        // policy/v1
        def(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
        )
        .short(&["pdb"])
        .status(),
        // coordination.k8s.io/v1
        def("coordination.k8s.io", "v1", "leases", "Lease", true),
        // discovery.k8s.io/v1
        def(
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            "EndpointSlice",
            true,
        ),
        // events.k8s.io/v1
        def("events.k8s.io", "v1", "events", "Event", true).short(&["ev"]),
        // scheduling.k8s.io/v1
        def(
            "scheduling.k8s.io",
            "v1",
            "priorityclasses",
            "PriorityClass",
            false,
        )
        .short(&["pc"]),
        // node.k8s.io/v1
        def("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", false),
        // apiextensions.k8s.io/v1
        def(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
        )
        .short(&["crd", "crds"])
        .categories(&["api-extensions"])
        .status(),
    ]
}

/// Built-in resource types. Versions of one resource share one storage
/// location (autoscaling v1 and v2 store the same objects; events.k8s.io
/// shares core events); `conversion` maps between them.
pub fn builtin() -> Vec<ResourceType> {
    builtin_defs()
        .into_iter()
        .map(|d| {
            let mut subresources = Vec::new();
            if d.status {
                subresources.push(status_sub(d.group, d.version, d.kind));
            }
            subresources.extend(d.extra.iter().cloned());
            // events.k8s.io Events are core Events seen through another version.
            let storage_group = match (d.group, d.resource) {
                ("events.k8s.io", "events") => "",
                (g, _) => g,
            };
            ResourceType {
                group: d.group.to_string(),
                version: d.version.to_string(),
                resource: d.resource.to_string(),
                singular: d.kind.to_ascii_lowercase(),
                kind: d.kind.to_string(),
                list_kind: format!("{}List", d.kind),
                namespaced: d.namespaced,
                short_names: d.short.iter().map(|s| s.to_string()).collect(),
                categories: d.categories.iter().map(|s| s.to_string()).collect(),
                verbs: d.verbs.iter().map(|s| s.to_string()).collect(),
                subresources,
                storage_group_resource: if storage_group.is_empty() {
                    d.resource.to_string()
                } else {
                    format!("{}.{}", d.resource, storage_group)
                },
                has_status: d.status,
                custom: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_prefer_ga_and_higher_versions() {
        let r = Registry::builtin();
        let groups = r.groups();
        assert_eq!(groups["autoscaling"], vec!["v2", "v1"]);
        assert_eq!(groups[""], vec!["v1"]);
        assert!(version_priority("v1") > version_priority("v2beta1"));
        assert!(version_priority("v1beta2") > version_priority("v1beta1"));
        assert!(version_priority("v1beta1") > version_priority("v1alpha1"));
    }

    #[test]
    fn lookups() {
        let r = Registry::builtin();
        let d = r.get("apps", "v1", "deployments").unwrap();
        assert_eq!(d.kind, "Deployment");
        assert_eq!(d.api_version(), "apps/v1");
        assert!(d.subresource("scale").is_some());
        assert!(d.has_status);
        let hpa = r
            .get("autoscaling", "v1", "horizontalpodautoscalers")
            .unwrap();
        assert_eq!(
            hpa.storage_group_resource,
            "horizontalpodautoscalers.autoscaling"
        );
        assert_eq!(r.by_kind("", "v1", "Pod").unwrap().resource, "pods");
    }
}
