//! ServiceLB, skiff's built-in service load balancer (k3s' `servicelb`,
//! without its per-Service pods: every node's proxy serves a LoadBalancer
//! Service's port on the node's addresses). A LoadBalancer Service without
//! `spec.loadBalancerClass` gets the addresses of every Ready, schedulable
//! node (ExternalIPs when any node has one, else InternalIPs, as k3s) as
//! `status.loadBalancer.ingress`, kept current as nodes come and go. A
//! Service with any `loadBalancerClass` is left to its controller. Nodes
//! labelled `svccontroller.k3s.cattle.io/enablelb` narrow the pool to those
//! labelled `"true"`, as in k3s.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::informer::{key_of, split_key, Change, Informer};
use crate::workqueue::WorkQueue;
use crate::Context;
use client::events::{EventType, Recorder};

/// `svccontroller.k3s.cattle.io/enablelb`.
pub const ENABLE_LB_LABEL: &str = "svccontroller.k3s.cattle.io/enablelb";
const WORKERS: usize = 2;

struct Controller {
    client: kube::Client,
    services: Informer<Service>,
    nodes: Informer<Node>,
    queue: WorkQueue,
    recorder: Recorder,
}

/// Runs ServiceLB until `shutdown`.
pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        services: ctx.informers.get::<Service>(),
        nodes: ctx.informers.get::<Node>(),
        queue: WorkQueue::new("servicelb"),
        recorder: ctx.recorder("service-lb-controller"),
    });
    {
        let c2 = c.clone();
        c.services.on_change(move |change| {
            if let Change::Applied { new, .. } = change {
                c2.queue.add(key_of(new.as_ref()));
            }
        });
    }
    {
        // Only what changes a node's place in the pool wakes the Services.
        let c2 = c.clone();
        c.nodes.on_change(move |change| {
            let changed = match change {
                Change::Applied {
                    old: Some(old),
                    new,
                } => pool_entry(old) != pool_entry(new),
                _ => true,
            };
            if changed {
                for svc in c2.services.list() {
                    if is_ours(&svc) {
                        c2.queue.add(key_of(svc.as_ref()));
                    }
                }
            }
        });
    }
    c.services.wait_synced().await;
    c.nodes.wait_synced().await;
    let c2 = c.clone();
    c.queue
        .clone()
        .run(WORKERS, shutdown, move |key| {
            let c = c2.clone();
            async move { c.sync(&key).await }
        })
        .await;
    Ok(())
}

/// A LoadBalancer Service with no class: ours.
pub fn is_ours(svc: &Service) -> bool {
    svc.spec.as_ref().is_some_and(|s| {
        s.type_.as_deref() == Some("LoadBalancer")
            && s.load_balancer_class.as_deref().is_none_or(str::is_empty)
    })
}

/// What of a node decides its part in the pool.
fn pool_entry(node: &Node) -> (bool, Option<String>, Vec<(String, String)>) {
    (
        is_eligible(node),
        node.labels().get(ENABLE_LB_LABEL).cloned(),
        node.status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .map(|a| {
                a.iter()
                    .map(|a| (a.type_.clone(), a.address.clone()))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

/// Ready and schedulable.
fn is_eligible(node: &Node) -> bool {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let unschedulable = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    ready && !unschedulable && node.metadata.deletion_timestamp.is_none()
}

/// The ingress addresses for the nodes: of the eligible nodes (narrowed to
/// those labelled `enablelb: "true"` when any node has the label), their
/// ExternalIPs if any has one, else their InternalIPs; sorted.
pub fn ingress_ips(nodes: &[Arc<Node>]) -> Vec<String> {
    let labelled = nodes
        .iter()
        .any(|n| n.labels().contains_key(ENABLE_LB_LABEL));
    let pool = nodes.iter().filter(|n| {
        is_eligible(n)
            && (!labelled || n.labels().get(ENABLE_LB_LABEL).map(String::as_str) == Some("true"))
    });
    let mut external = BTreeSet::new();
    let mut internal = BTreeSet::new();
    for node in pool {
        for a in node
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .into_iter()
            .flatten()
        {
            match a.type_.as_str() {
                "ExternalIP" => external.insert(a.address.clone()),
                "InternalIP" => internal.insert(a.address.clone()),
                _ => false,
            };
        }
    }
    let ips = if external.is_empty() {
        internal
    } else {
        external
    };
    ips.into_iter().collect()
}

/// The ingress IPs a Service's status shows now.
fn current_ips(svc: &Service) -> Vec<String> {
    let mut ips: Vec<String> = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone())
        .collect();
    ips.sort();
    ips
}

impl Controller {
    async fn sync(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        let Some(svc) = self.services.get(key) else {
            return Ok(None);
        };
        if svc.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let spec = svc.spec.as_ref();
        let lb = spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
        let classless = spec
            .and_then(|s| s.load_balancer_class.as_deref())
            .is_none_or(str::is_empty);
        let existing = current_ips(&svc);
        let expected = if lb && classless {
            ingress_ips(&self.nodes.list())
        } else if !lb && classless && !existing.is_empty() {
            // No longer a LoadBalancer: what we published goes.
            Vec::new()
        } else {
            return Ok(None);
        };
        let modes_current = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            .all(|i| i.ip_mode.as_deref() == Some("VIP"));
        if expected == existing && modes_current {
            return Ok(None);
        }
        let ingress: Vec<serde_json::Value> = expected
            .iter()
            .map(|ip| json!({"ip": ip, "ipMode": "VIP"}))
            .collect();
        let patch = json!({"status": {"loadBalancer": {"ingress": if ingress.is_empty() { serde_json::Value::Null } else { json!(ingress) }}}});
        let (ns, name) = split_key(key);
        let api: Api<Service> = Api::namespaced(self.client.clone(), ns);
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        self.recorder.record(
            client::events::reference(svc.as_ref()),
            EventType::Normal,
            "UpdatedIngressIP",
            "Update",
            format!(
                "LoadBalancer Ingress IP addresses updated: {}",
                expected.join(", ")
            ),
        );
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeCondition, NodeSpec, NodeStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn node(name: &str, ready: bool, unschedulable: bool, addrs: &[(&str, &str)]) -> Arc<Node> {
        Arc::new(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                unschedulable: Some(unschedulable),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                addresses: Some(
                    addrs
                        .iter()
                        .map(|(t, a)| NodeAddress {
                            type_: t.to_string(),
                            address: a.to_string(),
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn ready_schedulable_nodes_internal_ips_sorted() {
        let nodes = vec![
            node(
                "b",
                true,
                false,
                &[("InternalIP", "10.0.0.2"), ("Hostname", "b")],
            ),
            node("a", true, false, &[("InternalIP", "10.0.0.10")]),
            node("down", false, false, &[("InternalIP", "10.0.0.3")]),
            node("cordoned", true, true, &[("InternalIP", "10.0.0.4")]),
        ];
        assert_eq!(ingress_ips(&nodes), vec!["10.0.0.10", "10.0.0.2"]);
        assert!(ingress_ips(&[]).is_empty());
    }

    #[test]
    fn external_ips_win_when_any_node_has_one() {
        let nodes = vec![
            node(
                "a",
                true,
                false,
                &[("InternalIP", "10.0.0.1"), ("ExternalIP", "203.0.113.1")],
            ),
            node("b", true, false, &[("InternalIP", "10.0.0.2")]),
        ];
        assert_eq!(ingress_ips(&nodes), vec!["203.0.113.1"]);
    }

    #[test]
    fn enablelb_labels_narrow_the_pool() {
        let mut a = (*node("a", true, false, &[("InternalIP", "10.0.0.1")])).clone();
        a.metadata.labels = Some(BTreeMap::from([(ENABLE_LB_LABEL.into(), "true".into())]));
        let nodes = vec![
            Arc::new(a),
            node("b", true, false, &[("InternalIP", "10.0.0.2")]),
        ];
        assert_eq!(ingress_ips(&nodes), vec!["10.0.0.1"]);
    }

    #[test]
    fn only_classless_load_balancers_are_ours() {
        let svc = |type_: &str, class: Option<&str>| Service {
            spec: Some(k8s_openapi::api::core::v1::ServiceSpec {
                type_: Some(type_.into()),
                load_balancer_class: class.map(String::from),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(is_ours(&svc("LoadBalancer", None)));
        assert!(!is_ours(&svc("LoadBalancer", Some("example.com/lb"))));
        assert!(!is_ours(&svc("NodePort", None)));
    }
}
