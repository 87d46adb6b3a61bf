//! Discovery: aggregated (`apidiscovery.k8s.io/v2`) and legacy documents
//! under `/api` and `/apis`, built from the registry.

use resources::registry::{Registry, ResourceType};
use serde_json::{json, Value};

/// Which aggregated discovery version, if any, the client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregated {
    V2,
    V2Beta1,
}

impl Aggregated {
    pub fn from_accept(accept: &str) -> Option<Self> {
        for part in accept.split(',') {
            let params: Vec<&str> = part.split(';').map(str::trim).collect();
            if !params.contains(&"g=apidiscovery.k8s.io")
                || !params.contains(&"as=APIGroupDiscoveryList")
            {
                continue;
            }
            if params.contains(&"v=v2") {
                return Some(Aggregated::V2);
            }
            if params.contains(&"v=v2beta1") {
                return Some(Aggregated::V2Beta1);
            }
        }
        None
    }

    fn version(self) -> &'static str {
        match self {
            Aggregated::V2 => "v2",
            Aggregated::V2Beta1 => "v2beta1",
        }
    }

    pub fn content_type(self) -> String {
        format!(
            "application/json;g=apidiscovery.k8s.io;v={};as=APIGroupDiscoveryList",
            self.version()
        )
    }
}

fn scope(rt: &ResourceType) -> &'static str {
    if rt.namespaced {
        "Namespaced"
    } else {
        "Cluster"
    }
}

fn aggregated_resource(rt: &ResourceType) -> Value {
    let mut r = json!({
        "resource": rt.resource,
        "responseKind": {"group": "", "version": "", "kind": rt.kind},
        "scope": scope(rt),
        "singularResource": rt.singular,
        "verbs": rt.verbs,
    });
    if !rt.short_names.is_empty() {
        r["shortNames"] = json!(rt.short_names);
    }
    if !rt.categories.is_empty() {
        r["categories"] = json!(rt.categories);
    }
    if !rt.subresources.is_empty() {
        r["subresources"] = rt
            .subresources
            .iter()
            .map(|s| {
                let same_gv = s.group == rt.group && s.version == rt.version;
                let kind = if same_gv {
                    json!({"group": "", "version": "", "kind": s.kind})
                } else {
                    json!({"group": s.group, "version": s.version, "kind": s.kind})
                };
                json!({"subresource": s.name, "responseKind": kind, "verbs": s.verbs})
            })
            .collect();
    }
    r
}

/// `APIGroupDiscoveryList` for the core group (`legacy = true`) or all named groups.
pub fn aggregated(reg: &Registry, legacy: bool, which: Aggregated) -> Value {
    let items: Vec<Value> = reg
        .groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == legacy)
        .map(|(g, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = reg
                        .resources_of(&g, v)
                        .into_iter()
                        .map(|rt| aggregated_resource(rt))
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let mut meta = json!({"creationTimestamp": null});
            if !g.is_empty() {
                meta["name"] = json!(g);
            }
            json!({"metadata": meta, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{}", which.version()),
        "metadata": {},
        "items": items,
    })
}

pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn api_group(g: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({
        "name": g,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or_default(),
    })
}

pub fn api_group_list(reg: &Registry) -> Value {
    let groups: Vec<Value> = reg
        .groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, versions)| api_group(&g, &versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `APIGroup` for `/apis/<group>`.
pub fn group(reg: &Registry, g: &str) -> Option<Value> {
    let groups = reg.groups();
    let versions = groups.get(g).filter(|_| !g.is_empty())?;
    let mut v = api_group(g, versions);
    v["kind"] = json!("APIGroup");
    v["apiVersion"] = json!("v1");
    Some(v)
}

/// Legacy `APIResourceList` for one group-version.
pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let types = reg.resources_of(group, version);
    if types.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut resources = Vec::new();
    for rt in types {
        let mut r = json!({
            "name": rt.resource,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": rt.verbs,
        });
        if !rt.short_names.is_empty() {
            r["shortNames"] = json!(rt.short_names);
        }
        if !rt.categories.is_empty() {
            r["categories"] = json!(rt.categories);
        }
        resources.push(r);
        for s in &rt.subresources {
            let mut r = json!({
                "name": format!("{}/{}", rt.resource, s.name),
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if s.group != rt.group || s.version != rt.version {
                r["group"] = json!(s.group);
                r["version"] = json!(s.version);
            }
            resources.push(r);
        }
    }
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        let a = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(Aggregated::from_accept(a), Some(Aggregated::V2));
        assert_eq!(Aggregated::from_accept("application/json, */*"), None);
    }

    #[test]
    fn documents() {
        let reg = Registry::builtin();
        let core = aggregated(&reg, true, Aggregated::V2);
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        assert!(core["items"][0]["metadata"].get("name").is_none());
        let groups = aggregated(&reg, false, Aggregated::V2);
        let apps = groups["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == "apps")
            .unwrap();
        let deploy = apps["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "deployments")
            .unwrap();
        assert_eq!(deploy["shortNames"][0], "deploy");
        let v1 = resource_list(&reg, "", "v1").unwrap();
        let ev = v1["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods/eviction")
            .unwrap();
        assert_eq!(ev["group"], "policy");
        assert_eq!(ev["version"], "v1");
        assert!(group(&reg, "apps").is_some());
        assert!(group(&reg, "nope").is_none());
    }
}
