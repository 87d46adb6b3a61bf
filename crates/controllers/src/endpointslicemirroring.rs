//! The EndpointSlice mirroring controller (`pkg/controller/
//! endpointslicemirroring`): hand-written Endpoints of Services without a
//! selector are mirrored into EndpointSlices (managed by
//! `endpointslicemirroring-controller.k8s.io`, owned by the Endpoints), so
//! the proxy and the DNS, which read slices only, see them too. Endpoints
//! labelled `endpointslice.kubernetes.io/skip-mirror: "true"` and
//! leader-election locks are not mirrored.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::endpointslice::reconciler::{self, Group, Params};
use crate::endpointslice::util::{self, MANAGED_BY_LABEL};
use crate::endpointslice::{apply_plan, SliceTracker};
use crate::informer::{key_of, split_key, Informer};
use crate::informer::{service_key_of, SERVICE_INDEX, SERVICE_NAME_LABEL};
use crate::workqueue::WorkQueue;
use crate::Context;

/// `endpointslicemirroring-controller.k8s.io`.
pub const CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
/// `endpointslice.kubernetes.io/skip-mirror`.
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
/// `--mirroring-max-endpoints-per-subset`: also the size of a mirrored slice.
const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const WORKERS: usize = 5;

struct Controller {
    client: kube::Client,
    services: Informer<Service>,
    endpoints: Informer<Endpoints>,
    slices: Informer<EndpointSlice>,
    queue: WorkQueue,
    tracker: SliceTracker,
}

/// Runs the mirroring controller until `shutdown`.
pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        services: ctx.informers.get::<Service>(),
        endpoints: ctx.informers.get::<Endpoints>(),
        slices: ctx.informers.endpoint_slices(),
        queue: WorkQueue::new("endpointslice_mirroring"),
        tracker: SliceTracker::default(),
    });
    {
        let c2 = c.clone();
        c.endpoints
            .on_change(move |change| c2.queue.add(key_of(change.object().as_ref())));
    }
    {
        // A Service appearing, going, or gaining or losing its selector
        // changes whether its Endpoints are mirrored.
        let c2 = c.clone();
        c.services.on_change(move |change| {
            let new = change.object();
            let changed = change
                .old()
                .is_none_or(|old| util::selector(old).is_some() != util::selector(new).is_some())
                || matches!(change, crate::informer::Change::Deleted(_));
            if changed {
                c2.queue.add(key_of(new.as_ref()));
            }
        });
    }
    {
        let c2 = c.clone();
        c.slices.on_change(move |change| {
            let is_ours = |s: &EndpointSlice| {
                s.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(CONTROLLER_NAME)
            };
            if is_ours(change.object()) || change.old().is_some_and(|o| is_ours(o)) {
                if let Some(key) = service_key_of(change.object()) {
                    c2.queue.add(key);
                }
            }
        });
    }
    c.services.wait_synced().await;
    c.endpoints.wait_synced().await;
    c.slices.wait_synced().await;
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

impl Controller {
    async fn sync(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        let (ns, _) = split_key(key);
        let cached: Vec<Arc<EndpointSlice>> = self
            .slices
            .by_index(SERVICE_INDEX, key)
            .into_iter()
            .filter(|s| {
                s.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(CONTROLLER_NAME)
            })
            .collect();
        if self.tracker.stale(key, &cached) {
            return Ok(Some(Duration::from_secs(1)));
        }
        let endpoints = self.endpoints.get(key);
        let mirrored = match (&endpoints, self.services.get(key)) {
            (Some(ep), Some(svc)) => util::selector(&svc).is_none() && should_mirror(ep),
            _ => false,
        };
        let existing: Vec<EndpointSlice> = cached.iter().map(|s| s.as_ref().clone()).collect();
        let plan = match endpoints.filter(|_| mirrored) {
            None => reconciler::Plan {
                delete: existing,
                ..Default::default()
            },
            Some(ep) => {
                let uid = ep.uid().unwrap_or_default();
                let (existing, foreign): (Vec<_>, Vec<_>) = existing
                    .into_iter()
                    .partition(|s| s.owner_references().iter().any(|r| r.uid == uid));
                let ep2 = ep.clone();
                let new_slice = move |at: &str, ports: &[EndpointPort]| new_slice(&ep2, at, ports);
                let meta_current = |s: &EndpointSlice| {
                    s.labels() == &slice_labels(&ep) && s.annotations() == &slice_annotations(&ep)
                };
                let fix_meta = |s: &mut EndpointSlice| {
                    s.metadata.labels = Some(slice_labels(&ep));
                    s.metadata.annotations = Some(slice_annotations(&ep));
                };
                let params = Params {
                    max_endpoints: MAX_ENDPOINTS_PER_SUBSET,
                    new_slice: &new_slice,
                    meta_current: &meta_current,
                    fix_meta: &fix_meta,
                    placeholder: None,
                };
                let mut plan = reconciler::reconcile(desired_groups(&ep), existing, &params);
                plan.delete.extend(foreign);
                plan
            }
        };
        if plan.is_empty() {
            return Ok(None);
        }
        apply_plan(&self.client, &self.tracker, key, ns, plan).await?;
        Ok(None)
    }
}

/// Whether an Endpoints is mirrored at all (`shouldMirror`).
fn should_mirror(ep: &Endpoints) -> bool {
    ep.labels().get(SKIP_MIRROR_LABEL).map(String::as_str) != Some("true")
        && !ep.annotations().contains_key(util::LEADER_ANNOTATION)
}

/// The slices' endpoints grouped by address type and ports: each subset's
/// addresses (ready, then not ready), at most 1000 a subset.
pub fn desired_groups(ep: &Endpoints) -> BTreeMap<reconciler::PortsKey, Group> {
    let mut groups: BTreeMap<reconciler::PortsKey, Group> = BTreeMap::new();
    for subset in ep.subsets.iter().flatten() {
        let ports: Vec<EndpointPort> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| EndpointPort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(p.port),
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let addresses = subset
            .addresses
            .iter()
            .flatten()
            .map(|a| (a, true))
            .chain(
                subset
                    .not_ready_addresses
                    .iter()
                    .flatten()
                    .map(|a| (a, false)),
            )
            .take(MAX_ENDPOINTS_PER_SUBSET);
        for (address, ready) in addresses {
            let Some((endpoint, at)) = address_to_endpoint(address, ready) else {
                continue;
            };
            let mut ports = ports.clone();
            let key = reconciler::ports_key(at, &mut ports);
            let group = groups.entry(key).or_insert_with(|| Group {
                address_type: at.to_string(),
                ports,
                endpoints: Vec::new(),
            });
            // The same address in two subsets with the same ports is one endpoint.
            if !group
                .endpoints
                .iter()
                .any(|e| e.addresses == endpoint.addresses)
            {
                group.endpoints.push(endpoint);
            }
        }
    }
    groups
}

/// `addressToEndpoint`: the address re-written in canonical form; invalid
/// ones are skipped.
fn address_to_endpoint(a: &EndpointAddress, ready: bool) -> Option<(Endpoint, &'static str)> {
    let ip: IpAddr = a.ip.parse().ok()?;
    let at = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    Some((
        Endpoint {
            addresses: vec![ip.to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                ..Default::default()
            }),
            target_ref: a.target_ref.clone(),
            node_name: a.node_name.clone(),
            hostname: a.hostname.clone().filter(|h| !h.is_empty()),
            ..Default::default()
        },
        at,
    ))
}

/// The Endpoints' labels, with the service name and manager set.
fn slice_labels(ep: &Endpoints) -> BTreeMap<String, String> {
    let mut labels = ep.labels().clone();
    labels.insert(SERVICE_NAME_LABEL.into(), ep.name_any());
    labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    labels
}

/// The Endpoints' annotations but the trigger time and kubectl's record.
fn slice_annotations(ep: &Endpoints) -> BTreeMap<String, String> {
    ep.annotations()
        .iter()
        .filter(|(k, _)| k.as_str() != util::LAST_CHANGE_TRIGGER_TIME && k.as_str() != LAST_APPLIED)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn new_slice(ep: &Endpoints, address_type: &str, ports: &[EndpointPort]) -> EndpointSlice {
    let owner = OwnerReference {
        api_version: Endpoints::api_version(&()).into_owned(),
        kind: Endpoints::kind(&()).into_owned(),
        name: ep.name_any(),
        uid: ep.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", ep.name_any())),
            namespace: ep.namespace(),
            labels: Some(slice_labels(ep)),
            annotations: Some(slice_annotations(ep)),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        address_type: address_type.to_string(),
        ports: (!ports.is_empty()).then(|| ports.to_vec()),
        endpoints: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EndpointPort as CorePort, EndpointSubset};

    fn addr(ip: &str) -> EndpointAddress {
        EndpointAddress {
            ip: ip.into(),
            ..Default::default()
        }
    }

    #[test]
    fn subsets_become_groups_by_family_and_ports() {
        let ep = Endpoints {
            metadata: ObjectMeta {
                name: Some("ext".into()),
                labels: Some(BTreeMap::from([("team".into(), "a".into())])),
                ..Default::default()
            },
            subsets: Some(vec![
                EndpointSubset {
                    addresses: Some(vec![addr("192.0.2.1"), addr("2001:db8::1"), addr("bogus")]),
                    not_ready_addresses: Some(vec![addr("192.0.2.2")]),
                    ports: Some(vec![CorePort {
                        name: Some("http".into()),
                        port: 80,
                        protocol: Some("TCP".into()),
                        app_protocol: None,
                    }]),
                },
                EndpointSubset {
                    addresses: Some(vec![addr("192.0.2.9")]),
                    not_ready_addresses: None,
                    ports: None,
                },
            ]),
        };
        let groups: Vec<Group> = desired_groups(&ep).into_values().collect();
        let summary: Vec<(String, usize, Vec<String>)> = groups
            .iter()
            .map(|g| {
                (
                    g.address_type.clone(),
                    g.ports.len(),
                    g.endpoints.iter().map(|e| e.addresses[0].clone()).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("IPv4".into(), 0, vec!["192.0.2.9".into()]),
                (
                    "IPv4".into(),
                    1,
                    vec!["192.0.2.1".into(), "192.0.2.2".into()]
                ),
                ("IPv6".into(), 1, vec!["2001:db8::1".into()]),
            ]
        );
        let ready: Vec<Option<bool>> = groups[1]
            .endpoints
            .iter()
            .map(|e| e.conditions.as_ref().unwrap().ready)
            .collect();
        assert_eq!(ready, vec![Some(true), Some(false)]);
        let labels = slice_labels(&ep);
        assert_eq!(labels["team"], "a");
        assert_eq!(labels[SERVICE_NAME_LABEL], "ext");
        assert_eq!(labels[MANAGED_BY_LABEL], CONTROLLER_NAME);
    }

    #[test]
    fn skip_mirror_and_leader_locks_are_not_mirrored() {
        let mut ep = Endpoints::default();
        assert!(should_mirror(&ep));
        ep.metadata.labels = Some(BTreeMap::from([(SKIP_MIRROR_LABEL.into(), "true".into())]));
        assert!(!should_mirror(&ep));
        ep.metadata.labels = None;
        ep.metadata.annotations = Some(BTreeMap::from([(
            util::LEADER_ANNOTATION.into(),
            "{}".into(),
        )]));
        assert!(!should_mirror(&ep));
    }
}
