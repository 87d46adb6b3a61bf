//! Kind → schema: every built-in kind's JSON schema, generated once from the
//! k8s-openapi types through schemars and kept in one [`Catalog`].
//!
//! Definitions are named as Kubernetes names them (`io.k8s.api.apps.v1.Deployment`)
//! and refer to each other with `#/definitions/<name>` (the Swagger 2.0 form);
//! [`super::document`] rewrites references for OpenAPI 3.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use k8s_openapi::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions_v1;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta_v1;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration_v1;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use super::list_semantics::{self, ListSemantics};

/// Prefix of every `$ref` inside the catalog's definitions.
pub const REF_PREFIX: &str = "#/definitions/";

/// Extension naming the group/version/kinds a definition serves.
pub const GVK_EXTENSION: &str = "x-kubernetes-group-version-kind";

/// Definition names of the meta types every document carries.
pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
pub const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// A group, version and kind, as `x-kubernetes-group-version-kind` spells them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub fn new(group: &str, version: &str, kind: &str) -> Self {
        Gvk {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
        }
    }

    /// `{"group": .., "version": .., "kind": ..}`.
    pub fn to_json(&self) -> Value {
        json!({"group": self.group, "version": self.version, "kind": self.kind})
    }
}

/// All definitions, and which one serves each group/version/kind.
#[derive(Debug)]
pub struct Catalog {
    definitions: Map<String, Value>,
    by_gvk: BTreeMap<Gvk, String>,
}

impl Catalog {
    /// Every definition, by Kubernetes name; `$ref`s are `#/definitions/<name>`.
    pub fn definitions(&self) -> &Map<String, Value> {
        &self.definitions
    }

    pub fn definition(&self, name: &str) -> Option<&Value> {
        self.definitions.get(name)
    }

    /// Name of the definition serving a kind (`io.k8s.api.apps.v1.Deployment`).
    pub fn name_for(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.by_gvk
            .get(&Gvk::new(group, version, kind))
            .map(String::as_str)
    }

    /// Every group/version/kind that has a schema.
    pub fn kinds(&self) -> impl Iterator<Item = &Gvk> {
        self.by_gvk.keys()
    }
}

/// The catalog, built on first use.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(build)
}

/// The schema of one kind (list kinds, `Status`, `Scale`, ... included), with
/// `$ref`s as `#/definitions/<name>` to be resolved through [`definition`].
pub fn schema_for(group: &str, version: &str, kind: &str) -> Option<&'static Value> {
    let cat = catalog();
    cat.definition(cat.name_for(group, version, kind)?)
}

/// One definition by Kubernetes name.
pub fn definition(name: &str) -> Option<&'static Value> {
    definition_entry(name).map(|(_, v)| v)
}

/// One definition with its name as the catalog holds it. Hashed: schema
/// walks resolve a `$ref` at nearly every node, and the names share long
/// prefixes that make ordered lookups compare many bytes.
pub fn definition_entry(name: &str) -> Option<(&'static str, &'static Value)> {
    static INDEX: OnceLock<std::collections::HashMap<&'static str, &'static Value>> =
        OnceLock::new();
    INDEX
        .get_or_init(|| {
            catalog()
                .definitions()
                .iter()
                .map(|(k, v)| (k.as_str(), v))
                .collect()
        })
        .get_key_value(name)
        .map(|(k, v)| (*k, *v))
}

/// The catalog definition (with its name) that a schema node's `$ref` chain,
/// or a lone `allOf: [{$ref}]` wrapper, ends at; `None` when the node has no
/// reference and so describes the value itself.
pub fn referenced(node: &Value) -> Option<(&'static str, &'static Value)> {
    let mut found = None;
    let mut s = node;
    // Definitions never chain far; the bound only guards a malformed catalog.
    for _ in 0..16 {
        let reference = s.get("$ref").and_then(Value::as_str).or_else(|| {
            s.get("allOf")
                .and_then(Value::as_array)
                .filter(|a| a.len() == 1)
                .and_then(|a| a[0].get("$ref"))
                .and_then(Value::as_str)
        });
        let Some((name, def)) = reference.and_then(ref_target).and_then(definition_entry) else {
            break;
        };
        found = Some((name, def));
        s = def;
    }
    found
}

/// `node`, or the definition its references lead to.
pub fn resolve(node: &'static Value) -> &'static Value {
    referenced(node).map_or(node, |(_, def)| def)
}

/// The definition name a `$ref` points at, if it points into the catalog.
pub fn ref_target(reference: &str) -> Option<&str> {
    reference.strip_prefix(REF_PREFIX)
}

/// Collects definitions from the generator and the kinds they serve.
struct Collector {
    generator: SchemaGenerator,
    gvks: BTreeMap<String, Vec<Gvk>>,
    /// (item definition, list definition)
    lists: Vec<(String, String)>,
}

impl Collector {
    /// A kind that is not listed (`Scale`, `Eviction`, reviews).
    fn kind<T: JsonSchema>(&mut self, group: &str, version: &str, kind: &str) -> String {
        self.generator.subschema_for::<T>();
        let name = T::schema_name().into_owned();
        self.serve(&name, Gvk::new(group, version, kind));
        name
    }

    /// A kind served as a resource, with its `<Kind>List`.
    fn resource<T: JsonSchema>(&mut self, group: &str, version: &str, kind: &str) {
        let name = self.kind::<T>(group, version, kind);
        let list = format!("{name}List");
        self.serve(&list, Gvk::new(group, version, &format!("{kind}List")));
        self.lists.push((name, list));
    }

    fn serve(&mut self, name: &str, gvk: Gvk) {
        let served = self.gvks.entry(name.to_string()).or_default();
        if !served.contains(&gvk) {
            served.push(gvk);
        }
    }
}

/// Every type the catalog knows, with the group/version/kind it serves.
fn collect(c: &mut Collector) {
    use api::apps::v1 as apps;
    use api::core::v1 as core;

    // core/v1
    c.resource::<core::Pod>("", "v1", "Pod");
    c.resource::<core::Service>("", "v1", "Service");
    c.resource::<core::Endpoints>("", "v1", "Endpoints");
    c.resource::<core::Namespace>("", "v1", "Namespace");
    c.resource::<core::Node>("", "v1", "Node");
    c.resource::<core::ConfigMap>("", "v1", "ConfigMap");
    c.resource::<core::Secret>("", "v1", "Secret");
    c.resource::<core::ServiceAccount>("", "v1", "ServiceAccount");
    c.resource::<core::Event>("", "v1", "Event");
    c.resource::<core::PersistentVolume>("", "v1", "PersistentVolume");
    c.resource::<core::PersistentVolumeClaim>("", "v1", "PersistentVolumeClaim");
    c.resource::<core::ReplicationController>("", "v1", "ReplicationController");
    c.resource::<core::ResourceQuota>("", "v1", "ResourceQuota");
    c.resource::<core::LimitRange>("", "v1", "LimitRange");
    c.resource::<core::PodTemplate>("", "v1", "PodTemplate");
    c.kind::<core::Binding>("", "v1", "Binding");
    // apps/v1
    c.resource::<apps::Deployment>("apps", "v1", "Deployment");
    c.resource::<apps::ReplicaSet>("apps", "v1", "ReplicaSet");
    c.resource::<apps::StatefulSet>("apps", "v1", "StatefulSet");
    c.resource::<apps::DaemonSet>("apps", "v1", "DaemonSet");
    c.resource::<apps::ControllerRevision>("apps", "v1", "ControllerRevision");
    // batch/v1
    c.resource::<api::batch::v1::Job>("batch", "v1", "Job");
    c.resource::<api::batch::v1::CronJob>("batch", "v1", "CronJob");
    // autoscaling
    c.resource::<api::autoscaling::v2::HorizontalPodAutoscaler>(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
    );
    c.resource::<api::autoscaling::v1::HorizontalPodAutoscaler>(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
    );
    c.kind::<api::autoscaling::v1::Scale>("autoscaling", "v1", "Scale");
    // networking.k8s.io/v1
    let net = "networking.k8s.io";
    c.resource::<api::networking::v1::Ingress>(net, "v1", "Ingress");
    c.resource::<api::networking::v1::IngressClass>(net, "v1", "IngressClass");
    c.resource::<api::networking::v1::NetworkPolicy>(net, "v1", "NetworkPolicy");
    // rbac.authorization.k8s.io/v1
    let rbac = "rbac.authorization.k8s.io";
    c.resource::<api::rbac::v1::Role>(rbac, "v1", "Role");
    c.resource::<api::rbac::v1::RoleBinding>(rbac, "v1", "RoleBinding");
    c.resource::<api::rbac::v1::ClusterRole>(rbac, "v1", "ClusterRole");
    c.resource::<api::rbac::v1::ClusterRoleBinding>(rbac, "v1", "ClusterRoleBinding");
    // storage.k8s.io/v1
    let storage = "storage.k8s.io";
    c.resource::<api::storage::v1::StorageClass>(storage, "v1", "StorageClass");
    c.resource::<api::storage::v1::CSIDriver>(storage, "v1", "CSIDriver");
    c.resource::<api::storage::v1::CSINode>(storage, "v1", "CSINode");
    c.resource::<api::storage::v1::VolumeAttachment>(storage, "v1", "VolumeAttachment");
    // policy/v1
    c.resource::<api::policy::v1::PodDisruptionBudget>("policy", "v1", "PodDisruptionBudget");
    c.kind::<api::policy::v1::Eviction>("policy", "v1", "Eviction");
    // single-resource groups
    c.resource::<api::coordination::v1::Lease>("coordination.k8s.io", "v1", "Lease");
    c.resource::<api::discovery::v1::EndpointSlice>("discovery.k8s.io", "v1", "EndpointSlice");
    c.resource::<api::events::v1::Event>("events.k8s.io", "v1", "Event");
    c.resource::<api::scheduling::v1::PriorityClass>("scheduling.k8s.io", "v1", "PriorityClass");
    c.resource::<api::node::v1::RuntimeClass>("node.k8s.io", "v1", "RuntimeClass");
    c.resource::<api::certificates::v1::CertificateSigningRequest>(
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
    );
    // admission, extension and aggregation
    let adm = "admissionregistration.k8s.io";
    use api::admissionregistration::v1 as admission;
    c.resource::<admission::ValidatingWebhookConfiguration>(
        adm,
        "v1",
        "ValidatingWebhookConfiguration",
    );
    c.resource::<admission::MutatingWebhookConfiguration>(
        adm,
        "v1",
        "MutatingWebhookConfiguration",
    );
    c.resource::<admission::ValidatingAdmissionPolicy>(adm, "v1", "ValidatingAdmissionPolicy");
    c.resource::<admission::ValidatingAdmissionPolicyBinding>(
        adm,
        "v1",
        "ValidatingAdmissionPolicyBinding",
    );
    c.resource::<apiextensions_v1::CustomResourceDefinition>(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
    );
    c.resource::<apiregistration_v1::APIService>("apiregistration.k8s.io", "v1", "APIService");
    // reviews: created, never stored or listed
    let authn = "authentication.k8s.io";
    c.kind::<api::authentication::v1::TokenReview>(authn, "v1", "TokenReview");
    c.kind::<api::authentication::v1::SelfSubjectReview>(authn, "v1", "SelfSubjectReview");
    c.kind::<api::authentication::v1::TokenRequest>(authn, "v1", "TokenRequest");
    let authz = "authorization.k8s.io";
    use api::authorization::v1 as authorization;
    c.kind::<authorization::SubjectAccessReview>(authz, "v1", "SubjectAccessReview");
    c.kind::<authorization::SelfSubjectAccessReview>(authz, "v1", "SelfSubjectAccessReview");
    c.kind::<authorization::LocalSubjectAccessReview>(authz, "v1", "LocalSubjectAccessReview");
    c.kind::<authorization::SelfSubjectRulesReview>(authz, "v1", "SelfSubjectRulesReview");
    // meta
    c.kind::<meta_v1::Status>("", "v1", "Status");
    c.generator.subschema_for::<meta_v1::ListMeta>();
    c.generator.subschema_for::<meta_v1::Patch>();
    // DeleteOptions and WatchEvent are served by every group-version.
    let group_versions: Vec<(String, String)> = {
        let mut gvs: Vec<(String, String)> = c
            .gvks
            .values()
            .flatten()
            .map(|g| (g.group.clone(), g.version.clone()))
            .collect();
        gvs.sort();
        gvs.dedup();
        gvs
    };
    for (group, version) in &group_versions {
        c.kind::<meta_v1::DeleteOptions>(group, version, "DeleteOptions");
        c.kind::<meta_v1::WatchEvent<meta_v1::Status>>(group, version, "WatchEvent");
    }
}

fn build() -> Catalog {
    let settings = SchemaSettings::draft07().with(|s| {
        s.definitions_path = "/definitions".into();
        s.meta_schema = None;
        s.transforms.clear();
    });
    let mut c = Collector {
        generator: settings.into_generator(),
        gvks: BTreeMap::new(),
        lists: Vec::new(),
    };
    collect(&mut c);
    let mut definitions = c.generator.take_definitions(false);

    for (item, list) in &c.lists {
        definitions.insert(list.clone(), list_schema(item));
    }
    let mut by_gvk = BTreeMap::new();
    for (name, gvks) in &c.gvks {
        if let Some(Value::Object(def)) = definitions.get_mut(name) {
            let served: Vec<Value> = gvks.iter().map(Gvk::to_json).collect();
            def.insert(GVK_EXTENSION.to_string(), Value::Array(served));
            // k8s-openapi marks `metadata` required because the Rust field is not
            // optional; Kubernetes does not.
            if let Some(Value::Array(required)) = def.get_mut("required") {
                required.retain(|r| r != "metadata");
                if required.is_empty() {
                    def.remove("required");
                }
            }
        }
        for gvk in gvks {
            by_gvk.insert(gvk.clone(), name.clone());
        }
    }
    add_list_semantics(&mut definitions);
    // Types with their own JSON form (JSONSchemaPropsOrArray/OrBool/...) are
    // published upstream with a description only, not as alternatives.
    for def in definitions.values_mut() {
        if let Some(d) = def.as_object_mut() {
            if d.contains_key("description") && !d.contains_key("properties") {
                d.remove("oneOf");
                d.remove("anyOf");
            }
        }
    }
    Catalog {
        definitions,
        by_gvk,
    }
}

/// `<Kind>List`: apiVersion, kind, metadata (ListMeta) and items.
fn list_schema(item: &str) -> Value {
    let kind = item.rsplit('.').next().unwrap_or(item);
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "The versioned schema of this representation of an object.",
                "type": "string",
            },
            "kind": {
                "description": "The REST resource this object represents, in CamelCase.",
                "type": "string",
            },
            "metadata": {
                "$ref": format!("{REF_PREFIX}{LIST_META}"),
                "description": "Standard list metadata.",
            },
            "items": {
                "description": format!("List of {kind} objects."),
                "type": "array",
                "items": {"$ref": format!("{REF_PREFIX}{item}")},
            },
        },
        "required": ["items"],
    })
}

/// Adds what [`list_semantics`] declares to every definition and property:
/// `x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`,
/// `x-kubernetes-list-type`, `x-kubernetes-list-map-keys` and
/// `x-kubernetes-map-type`. On a `$ref` or `allOf` property they sit beside the
/// reference, as in Kubernetes' own documents.
fn add_list_semantics(definitions: &mut Map<String, Value>) {
    for (name, def) in definitions.iter_mut() {
        let Value::Object(def) = def else { continue };
        if let Some(s) = list_semantics::lookup(name, "") {
            insert_semantics(def, s);
        }
        let Some(Value::Object(props)) = def.get_mut("properties") else {
            continue;
        };
        for (field, prop) in props.iter_mut() {
            if let (Some(s), Value::Object(prop)) = (list_semantics::lookup(name, field), prop) {
                insert_semantics(prop, s);
            }
        }
    }
}

fn insert_semantics(schema: &mut Map<String, Value>, s: &ListSemantics) {
    let mut put = |key: &str, value: Value| {
        schema.insert(format!("x-kubernetes-{key}"), value);
    };
    if let Some(strategy) = s.patch_strategy {
        put("patch-strategy", strategy.into());
    }
    if let Some(key) = s.merge_key {
        put("patch-merge-key", key.into());
    }
    if let Some(list_type) = s.list_type {
        put("list-type", list_type.into());
    }
    if !s.list_map_keys.is_empty() {
        put("list-map-keys", s.list_map_keys.iter().copied().collect());
    }
    if let Some(map_type) = s.map_type {
        put("map-type", map_type.into());
    }
}

/// Visits every `$ref` target in `value`.
pub(crate) fn for_each_ref(value: &Value, f: &mut impl FnMut(&str)) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    if let Value::String(r) = v {
                        f(r);
                    }
                } else {
                    for_each_ref(v, f);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| for_each_ref(v, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn every_builtin_kind_has_a_schema_with_its_gvk() {
        for rt in Registry::builtin().all() {
            for kind in [&rt.kind, &rt.list_kind] {
                let schema = schema_for(&rt.group, &rt.version, kind)
                    .unwrap_or_else(|| panic!("no schema for {}/{} {kind}", rt.group, rt.version));
                let gvks = schema[GVK_EXTENSION].as_array().expect("gvk extension");
                let want = Gvk::new(&rt.group, &rt.version, kind).to_json();
                assert!(gvks.contains(&want), "{kind}: {gvks:?}");
            }
            for sub in &rt.subresources {
                if sub.kind.ends_with("Options") || sub.name == "log" {
                    continue;
                }
                assert!(
                    schema_for(sub.group, sub.version, sub.kind).is_some(),
                    "{}/{}",
                    rt.resource,
                    sub.name
                );
            }
        }
    }

    #[test]
    fn names_are_kubernetes_names() {
        let cat = catalog();
        assert_eq!(
            cat.name_for("apps", "v1", "Deployment"),
            Some("io.k8s.api.apps.v1.Deployment")
        );
        assert_eq!(
            cat.name_for("", "v1", "PodList"),
            Some("io.k8s.api.core.v1.PodList")
        );
        assert_eq!(
            cat.name_for("autoscaling", "v1", "Scale"),
            Some("io.k8s.api.autoscaling.v1.Scale")
        );
        assert_eq!(
            cat.name_for("apps", "v1", "DeleteOptions"),
            Some(DELETE_OPTIONS)
        );
        assert_eq!(cat.name_for("batch", "v1", "WatchEvent"), Some(WATCH_EVENT));
        let delete = &cat.definition(DELETE_OPTIONS).unwrap()[GVK_EXTENSION];
        assert!(delete.as_array().unwrap().len() > 5);
        let deploy = schema_for("apps", "v1", "Deployment").unwrap();
        assert_eq!(
            deploy["properties"]["spec"]["$ref"],
            "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
        );
        assert!(deploy.get("required").is_none());
    }

    #[test]
    fn every_ref_resolves() {
        let cat = catalog();
        for (name, def) in cat.definitions() {
            for_each_ref(def, &mut |r| {
                let target = ref_target(r).unwrap_or_else(|| panic!("{name}: odd ref {r}"));
                assert!(cat.definition(target).is_some(), "{name}: dangling {r}");
            });
        }
    }

    fn prop<'a>(def: &'a str, field: &str) -> &'a Value {
        let d = definition(def).unwrap_or_else(|| panic!("no definition {def}"));
        let p = &d["properties"][field];
        assert!(p.is_object(), "{def}.{field}: {p}");
        p
    }

    #[test]
    fn list_semantics_table_is_sorted_and_unique() {
        let t = list_semantics::TABLE;
        assert!(t.len() > 500, "{}", t.len());
        for w in t.windows(2) {
            assert!(
                (w[0].definition, w[0].field) < (w[1].definition, w[1].field),
                "{}.{} / {}.{}",
                w[0].definition,
                w[0].field,
                w[1].definition,
                w[1].field
            );
        }
        let ports = list_semantics::lookup("io.k8s.api.core.v1.ServiceSpec", "ports").unwrap();
        assert_eq!(ports.merge_key, Some("port"));
        assert!(list_semantics::lookup("io.k8s.api.core.v1.ServiceSpec", "type").is_none());
    }

    #[test]
    fn pod_lists_carry_merge_keys_and_list_types() {
        let containers = prop("io.k8s.api.core.v1.PodSpec", "containers");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));

        let ports = prop("io.k8s.api.core.v1.Container", "ports");
        assert_eq!(ports["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
        assert_eq!(ports["x-kubernetes-list-type"], "map");
        assert_eq!(
            ports["x-kubernetes-list-map-keys"],
            json!(["containerPort", "protocol"])
        );

        let env = prop("io.k8s.api.core.v1.Container", "env");
        assert_eq!(env["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(env["x-kubernetes-patch-merge-key"], "name");
        // EphemeralContainer inlines EphemeralContainerCommon.
        let env = prop("io.k8s.api.core.v1.EphemeralContainer", "env");
        assert_eq!(env["x-kubernetes-patch-merge-key"], "name");

        let volumes = prop("io.k8s.api.core.v1.PodSpec", "volumes");
        assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
        assert_eq!(volumes["x-kubernetes-patch-merge-key"], "name");

        let tolerations = prop("io.k8s.api.core.v1.PodSpec", "tolerations");
        assert_eq!(tolerations["x-kubernetes-list-type"], "atomic");
        assert!(tolerations.get("x-kubernetes-patch-merge-key").is_none());
        assert!(tolerations.get("x-kubernetes-patch-strategy").is_none());

        let node_selector = prop("io.k8s.api.core.v1.PodSpec", "nodeSelector");
        assert_eq!(node_selector["x-kubernetes-map-type"], "atomic");
    }

    #[test]
    fn service_node_and_deployment_lists() {
        let ports = prop("io.k8s.api.core.v1.ServiceSpec", "ports");
        assert_eq!(ports["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(ports["x-kubernetes-patch-merge-key"], "port");
        assert_eq!(ports["x-kubernetes-list-type"], "map");
        assert_eq!(
            ports["x-kubernetes-list-map-keys"],
            json!(["port", "protocol"])
        );

        for def in [
            "io.k8s.api.core.v1.NodeStatus",
            "io.k8s.api.apps.v1.DeploymentStatus",
        ] {
            let conditions = prop(def, "conditions");
            assert_eq!(conditions["x-kubernetes-patch-strategy"], "merge", "{def}");
            assert_eq!(conditions["x-kubernetes-patch-merge-key"], "type", "{def}");
            assert_eq!(conditions["x-kubernetes-list-type"], "map", "{def}");
            assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
        }
    }

    #[test]
    fn object_meta_lists() {
        let finalizers = prop(OBJECT_META, "finalizers");
        assert_eq!(finalizers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(finalizers["x-kubernetes-list-type"], "set");
        assert!(finalizers.get("x-kubernetes-patch-merge-key").is_none());

        let owners = prop(OBJECT_META, "ownerReferences");
        assert_eq!(owners["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(owners["x-kubernetes-patch-merge-key"], "uid");
        assert_eq!(owners["x-kubernetes-list-type"], "map");
        assert_eq!(owners["x-kubernetes-list-map-keys"], json!(["uid"]));

        let managed = prop(OBJECT_META, "managedFields");
        assert_eq!(managed["x-kubernetes-list-type"], "atomic");
    }

    #[test]
    fn atomic_structs_carry_map_type() {
        for def in [
            "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
            "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
            "io.k8s.api.core.v1.ConfigMapKeySelector",
            "io.k8s.api.core.v1.NodeSelector",
        ] {
            let d = definition(def).unwrap_or_else(|| panic!("no {def}"));
            assert_eq!(d["x-kubernetes-map-type"], "atomic", "{def}");
        }
        let pod_spec = definition("io.k8s.api.core.v1.PodSpec").unwrap();
        assert!(pod_spec.get("x-kubernetes-map-type").is_none());
    }
}
