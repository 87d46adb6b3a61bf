//! The Endpoints controller (`pkg/controller/endpoint`): for each Service
//! with a selector, a v1 Endpoints of the same name listing the selected
//! pods — ready ones in `addresses`, the rest in `notReadyAddresses` — with
//! each `targetPort` resolved on each pod, packed into subsets as upstream's
//! `RepackSubsets` does. Services without a selector keep hand-written
//! Endpoints; ExternalName Services get none.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::endpointslice::util::{self, TriggerTimeTracker};
use crate::informer::{key_of, split_key, Change, Informer};
use crate::pod_control::{api_message, is_namespace_terminating, is_not_found};
use crate::workqueue::WorkQueue;
use crate::Context;
use client::events::{EventType, Recorder};

const WORKERS: usize = 5;
/// Endpoints hold at most this many addresses (`maxCapacity`).
const MAX_CAPACITY: usize = 1000;
/// `endpoints.kubernetes.io/over-capacity`.
const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";

struct Controller {
    client: kube::Client,
    services: Informer<Service>,
    pods: Informer<Pod>,
    endpoints: Informer<Endpoints>,
    queue: WorkQueue,
    recorder: Recorder,
    triggers: TriggerTimeTracker,
    /// Endpoints we replaced: key → the resourceVersion we replaced, so a
    /// cache still showing it is known stale (`staleEndpointsTracker`).
    replaced: Mutex<HashMap<String, String>>,
}

/// Runs the Endpoints controller until `shutdown`.
pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        services: ctx.informers.get::<Service>(),
        pods: ctx.informers.pods(),
        endpoints: ctx.informers.get::<Endpoints>(),
        queue: WorkQueue::new("endpoint"),
        recorder: ctx.recorder("endpoint-controller"),
        triggers: TriggerTimeTracker::default(),
        replaced: Mutex::default(),
    });
    {
        let c2 = c.clone();
        c.services
            .on_change(move |change| c2.queue.add(key_of(change.object().as_ref())));
    }
    {
        let c2 = c.clone();
        c.pods.on_change(move |change| {
            for key in services_for_pod_change(&c2.services, change) {
                c2.queue.add(key);
            }
        });
    }
    {
        // A deleted Endpoints is written again.
        let c2 = c.clone();
        c.endpoints.on_change(move |change| {
            if let Change::Deleted(ep) = change {
                c2.queue.add(key_of(ep.as_ref()));
            }
        });
    }
    c.services.wait_synced().await;
    c.pods.wait_synced().await;
    c.endpoints.wait_synced().await;
    // Endpoints left without their Service while no controller ran go now
    // (`checkLeftoverEndpoints`, once at start: later, a hand-written
    // Endpoints may well come before its Service).
    for ep in c.endpoints.list() {
        let key = key_of(ep.as_ref());
        if !ep.annotations().contains_key(util::LEADER_ANNOTATION) && c.services.get(&key).is_none()
        {
            c.queue.add(key);
        }
    }
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

/// The Services whose selector picks the pod before or after a change
/// (`getPodServiceMemberships` for both states), unless nothing the
/// endpoints show changed.
pub(crate) fn services_for_pod_change(
    services: &Informer<Service>,
    change: &Change<Pod>,
) -> BTreeSet<String> {
    let new = change.object();
    let old = change.old();
    if let (Change::Applied { .. }, Some(old)) = (change, old) {
        if !pod_changed_for_endpoints(old, new) {
            return BTreeSet::new();
        }
    }
    let mut keys = BTreeSet::new();
    for pod in std::iter::once(new).chain(old) {
        let ns = pod.namespace().unwrap_or_default();
        for svc in services.list_namespace(&ns) {
            if util::selector(&svc).is_some_and(|s| client::labels::matches_set(s, pod.labels())) {
                keys.insert(key_of(svc.as_ref()));
            }
        }
    }
    keys
}

/// Whether anything an endpoint is made of differs (labels, addresses,
/// readiness, phase, deletion, node, hostname, ports).
fn pod_changed_for_endpoints(old: &Pod, new: &Pod) -> bool {
    old.labels() != new.labels()
        || old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
        || util::pod_ips(old) != util::pod_ips(new)
        || crate::replicaset::is_pod_ready(old) != crate::replicaset::is_pod_ready(new)
        || old.status.as_ref().and_then(|s| s.phase.as_ref())
            != new.status.as_ref().and_then(|s| s.phase.as_ref())
        || old.spec != new.spec
        || ready_transition(old) != ready_transition(new)
}

fn ready_transition(pod: &Pod) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?
        .last_transition_time
        .as_ref()
}

impl Controller {
    async fn sync(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        let (ns, name) = split_key(key);
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), ns);
        let Some(svc) = self.services.get(key) else {
            // The Service is gone: so are its Endpoints.
            let leader_lock = self
                .endpoints
                .get(key)
                .is_some_and(|e| e.annotations().contains_key(util::LEADER_ANNOTATION));
            if !leader_lock {
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            self.triggers.forget(key);
            self.lock_replaced().remove(key);
            return Ok(None);
        };
        if util::is_external_name(&svc) {
            return Ok(None);
        }
        let Some(selector) = util::selector(&svc) else {
            return Ok(None);
        };
        let mut pods: Vec<Arc<Pod>> = self
            .pods
            .list_namespace(ns)
            .into_iter()
            .filter(|p| client::labels::matches_set(selector, p.labels()))
            .collect();
        pods.sort_by_key(|p| p.name_any());
        let pod_refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
        let trigger = self.triggers.compute(key, &svc, &pod_refs);
        let subsets = desired_subsets(&svc, &pod_refs);

        let current = self.endpoints.get(key);
        if let Some(cur) = &current {
            let stale = self.lock_replaced().get(key) == cur.metadata.resource_version.as_ref();
            if stale {
                // Our last write has not reached the cache yet.
                return Ok(Some(Duration::from_millis(100)));
            }
        }
        let svc_labels = svc.metadata.labels.clone().unwrap_or_default();
        if let Some(cur) = &current {
            let mut compare = cur.metadata.labels.clone().unwrap_or_default();
            compare.remove(util::HEADLESS_LABEL);
            let cur_subsets = cur.subsets.clone().unwrap_or_default();
            let count: usize = cur_subsets
                .iter()
                .map(|s| len(&s.addresses) + len(&s.not_ready_addresses))
                .sum();
            let capacity_ok =
                count <= MAX_CAPACITY && !cur.annotations().contains_key(OVER_CAPACITY);
            if cur_subsets == subsets && compare == svc_labels && capacity_ok {
                return Ok(None);
            }
        }
        let mut new = current.as_deref().cloned().unwrap_or_else(|| Endpoints {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(ns.to_string()),
                ..Default::default()
            },
            ..Default::default()
        });
        let mut annotations = new.metadata.annotations.take().unwrap_or_default();
        match trigger {
            Some(t) => {
                annotations.insert(
                    util::LAST_CHANGE_TRIGGER_TIME.into(),
                    util::format_trigger_time(t),
                );
            }
            None => {
                annotations.remove(util::LAST_CHANGE_TRIGGER_TIME);
            }
        }
        let (subsets, truncated) = truncate(subsets);
        if truncated {
            annotations.insert(OVER_CAPACITY.into(), "truncated".into());
        } else {
            annotations.remove(OVER_CAPACITY);
        }
        let mut labels = svc_labels;
        if util::is_service_ip_set(&svc) {
            labels.remove(util::HEADLESS_LABEL);
        } else {
            labels.insert(util::HEADLESS_LABEL.into(), String::new());
        }
        new.metadata.labels = Some(labels);
        new.metadata.annotations = Some(annotations);
        new.subsets = (!subsets.is_empty()).then_some(subsets);
        let result = match &current {
            None => api.create(&PostParams::default(), &new).await,
            Some(_) => api.replace(name, &PostParams::default(), &new).await,
        };
        match result {
            Ok(written) => {
                if let Some(cur) = &current {
                    if written.metadata.resource_version != cur.metadata.resource_version {
                        if let Some(rv) = cur.metadata.resource_version.clone() {
                            self.lock_replaced().insert(key.to_string(), rv);
                        }
                    }
                }
                Ok(None)
            }
            Err(e) if current.is_none() && is_namespace_terminating(&e) => Ok(None),
            Err(e) => {
                let target = ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Endpoints".into()),
                    name: Some(name.to_string()),
                    namespace: Some(ns.to_string()),
                    uid: current.as_ref().and_then(|c| c.metadata.uid.clone()),
                    ..Default::default()
                };
                let (reason, message) = match current {
                    None => (
                        "FailedToCreateEndpoint",
                        format!(
                            "Failed to create endpoint for service {ns}/{name}: {}",
                            api_message(&e)
                        ),
                    ),
                    Some(_) => (
                        "FailedToUpdateEndpoint",
                        format!("Failed to update endpoint {ns}/{name}: {}", api_message(&e)),
                    ),
                };
                self.recorder
                    .record(target, EventType::Warning, reason, "Update", message);
                Err(e.into())
            }
        }
    }

    fn lock_replaced(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.replaced.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn len<T>(v: &Option<Vec<T>>) -> usize {
    v.as_ref().map_or(0, Vec::len)
}

/// The subsets for a Service and the pods its selector picks: one subset per
/// (pod, port), then repacked.
pub fn desired_subsets(svc: &Service, pods: &[&Pod]) -> Vec<EndpointSubset> {
    let spec = svc.spec.clone().unwrap_or_default();
    let tolerate_unready = spec.publish_not_ready_addresses.unwrap_or(false);
    let ports = spec.ports.clone().unwrap_or_default();
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let v6 = service_wants_ipv6(svc);
    let mut subsets = Vec::new();
    for pod in pods {
        if !util::should_pod_be_in_endpoints(pod, tolerate_unready) {
            continue;
        }
        let ip = match v6 {
            Some(v6) => util::pod_ip_of_family(pod, v6),
            None => util::pod_ips(pod).into_iter().next(),
        };
        let Some(ip) = ip else { continue };
        let address = EndpointAddress {
            ip,
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            hostname: util::should_set_hostname(pod, svc)
                .then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()))
                .flatten(),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: pod.namespace(),
                name: Some(pod.name_any()),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            }),
        };
        let ready = tolerate_unready || crate::replicaset::is_pod_ready(pod);
        let subset = |ports: Vec<EndpointPort>| {
            let addresses = vec![address.clone()];
            EndpointSubset {
                addresses: ready.then(|| addresses.clone()),
                not_ready_addresses: (!ready).then_some(addresses),
                ports: Some(ports),
            }
        };
        if ports.is_empty() {
            // Headless Services may have no ports.
            if headless {
                subsets.push(subset(Vec::new()));
            }
            continue;
        }
        for sp in &ports {
            let Some(port) = util::find_port(pod, sp) else {
                continue;
            };
            subsets.push(subset(vec![EndpointPort {
                name: sp.name.clone().filter(|n| !n.is_empty()),
                port,
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: sp.app_protocol.clone(),
            }]));
        }
    }
    repack_subsets(subsets)
}

/// The address family the Service's endpoints use: its first IP family, else
/// its cluster IP's; `None` (any) for a headless Service without families.
fn service_wants_ipv6(svc: &Service) -> Option<bool> {
    let spec = svc.spec.as_ref()?;
    if let Some(f) = spec.ip_families.as_ref().and_then(|f| f.first()) {
        return Some(f == "IPv6");
    }
    spec.cluster_ip
        .as_deref()
        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
        .map(|ip| ip.is_ipv6())
}

/// An address's identity across subsets: its IP and the object it stands for.
type AddressKey = (String, String);

fn address_key(a: &EndpointAddress) -> AddressKey {
    let uid = a
        .target_ref
        .as_ref()
        .and_then(|r| r.uid.clone())
        .unwrap_or_default();
    (a.ip.clone(), uid)
}

/// A port as a sortable, comparable key.
type PortKey = (Option<String>, i32, Option<String>, Option<String>);

fn port_key(p: &EndpointPort) -> PortKey {
    (
        p.name.clone(),
        p.port,
        p.protocol.clone(),
        p.app_protocol.clone(),
    )
}

/// A port and which addresses serve it, ready or not.
type PortAddresses = (Option<EndpointPort>, BTreeMap<AddressKey, bool>);

/// `RepackSubsets`: regroups subsets so each distinct set of addresses
/// (with their readiness) appears once, carrying every port they all serve.
/// An address ready on some subset for a port counts as ready for it.
/// Sorted, so equal inputs give identical output.
pub fn repack_subsets(subsets: Vec<EndpointSubset>) -> Vec<EndpointSubset> {
    let mut addresses: BTreeMap<AddressKey, EndpointAddress> = BTreeMap::new();
    // Port (None = the sentinel for subsets without ports) → address → ready.
    let mut by_port: BTreeMap<Option<PortKey>, PortAddresses> = BTreeMap::new();
    for subset in &subsets {
        let ports: Vec<Option<&EndpointPort>> = match subset.ports.as_deref() {
            Some(ps) if !ps.is_empty() => ps.iter().map(Some).collect(),
            _ => vec![None],
        };
        for port in ports {
            let entry = by_port
                .entry(port.map(port_key))
                .or_insert_with(|| (port.cloned(), BTreeMap::new()));
            let ready_addrs = subset.addresses.iter().flatten().map(|a| (a, true));
            let unready = subset
                .not_ready_addresses
                .iter()
                .flatten()
                .map(|a| (a, false));
            for (a, ready) in ready_addrs.chain(unready) {
                let key = address_key(a);
                addresses.entry(key.clone()).or_insert_with(|| a.clone());
                let was = entry.1.entry(key).or_insert(ready);
                *was |= ready;
            }
        }
    }
    // Address sets (with readiness) → the ports they serve.
    let mut groups: BTreeMap<Vec<(AddressKey, bool)>, Vec<EndpointPort>> = BTreeMap::new();
    for (_, (port, addrs)) in by_port {
        let set: Vec<(AddressKey, bool)> = addrs.into_iter().collect();
        let ports = groups.entry(set).or_default();
        ports.extend(port);
    }
    let mut out: Vec<EndpointSubset> = groups
        .into_iter()
        .map(|(set, mut ports)| {
            ports.sort_by_key(port_key);
            let pick = |want: bool| -> Option<Vec<EndpointAddress>> {
                let v: Vec<EndpointAddress> = set
                    .iter()
                    .filter(|(_, r)| *r == want)
                    .filter_map(|(k, _)| addresses.get(k).cloned())
                    .collect();
                (!v.is_empty()).then_some(v)
            };
            EndpointSubset {
                addresses: pick(true),
                not_ready_addresses: pick(false),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect();
    out.sort_by_key(subset_sort_key);
    out
}

fn subset_sort_key(s: &EndpointSubset) -> (Vec<AddressKey>, Vec<AddressKey>, Vec<PortKey>) {
    (
        s.addresses.iter().flatten().map(address_key).collect(),
        s.not_ready_addresses
            .iter()
            .flatten()
            .map(address_key)
            .collect(),
        s.ports.iter().flatten().map(port_key).collect(),
    )
}

/// `truncateEndpoints`: at most [`MAX_CAPACITY`] addresses, ready ones
/// first, spread over the subsets in proportion; whether it cut any.
fn truncate(mut subsets: Vec<EndpointSubset>) -> (Vec<EndpointSubset>, bool) {
    let total_ready: usize = subsets.iter().map(|s| len(&s.addresses)).sum();
    let total_not_ready: usize = subsets.iter().map(|s| len(&s.not_ready_addresses)).sum();
    if total_ready + total_not_ready <= MAX_CAPACITY {
        return (subsets, false);
    }
    let truncate_ready = total_ready > MAX_CAPACITY;
    let (max, total) = if truncate_ready {
        (MAX_CAPACITY, total_ready)
    } else {
        (MAX_CAPACITY - total_ready, total_not_ready)
    };
    let mut room = max;
    for s in &mut subsets {
        let n = if truncate_ready {
            len(&s.addresses)
        } else {
            len(&s.not_ready_addresses)
        };
        let share = ((n as f64 / total as f64) * max as f64).ceil() as usize;
        let keep = share.min(room);
        if truncate_ready {
            if let Some(a) = s.addresses.as_mut() {
                a.truncate(keep);
                room -= a.len();
            }
            s.not_ready_addresses = None;
        } else if let Some(a) = s.not_ready_addresses.as_mut() {
            a.truncate(keep);
            room -= a.len();
        }
    }
    (subsets, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, PodCondition, PodSpec, PodStatus, ServicePort, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn pod(name: &str, ip: &str, ready: bool, http_port: Option<i32>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                containers: vec![Container {
                    name: "c".into(),
                    ports: http_port.map(|p| {
                        vec![ContainerPort {
                            name: Some("http".into()),
                            container_port: p,
                            protocol: Some("TCP".into()),
                            ..Default::default()
                        }]
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: Some(ip.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn svc(ports: Vec<ServicePort>, publish_not_ready: bool) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some("10.43.0.20".into()),
                selector: Some(BTreeMap::from([("app".into(), "web".into())])),
                ports: Some(ports),
                publish_not_ready_addresses: Some(publish_not_ready),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn port(name: &str, port: i32, target: IntOrString) -> ServicePort {
        ServicePort {
            name: Some(name.into()),
            port,
            target_port: Some(target),
            protocol: Some("TCP".into()),
            ..Default::default()
        }
    }

    /// Subsets as (ready IPs, not-ready IPs, "name:port" list).
    fn summary(subsets: &[EndpointSubset]) -> Vec<(Vec<String>, Vec<String>, Vec<String>)> {
        subsets
            .iter()
            .map(|s| {
                (
                    s.addresses.iter().flatten().map(|a| a.ip.clone()).collect(),
                    s.not_ready_addresses
                        .iter()
                        .flatten()
                        .map(|a| a.ip.clone())
                        .collect(),
                    s.ports
                        .iter()
                        .flatten()
                        .map(|p| format!("{}:{}", p.name.clone().unwrap_or_default(), p.port))
                        .collect(),
                )
            })
            .collect()
    }

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ready_and_not_ready_pods_share_one_subset() {
        let s = svc(vec![port("http", 80, IntOrString::Int(8080))], false);
        let pods = [
            pod("b", "10.42.0.2", true, None),
            pod("a", "10.42.0.1", true, None),
            pod("c", "10.42.0.3", false, None),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let subsets = desired_subsets(&s, &refs);
        assert_eq!(
            summary(&subsets),
            vec![(
                v(&["10.42.0.1", "10.42.0.2"]),
                v(&["10.42.0.3"]),
                v(&["http:8080"])
            )]
        );
        let a = &subsets[0].addresses.as_ref().unwrap()[0];
        assert_eq!(a.node_name.as_deref(), Some("n1"));
        let r = a.target_ref.as_ref().unwrap();
        assert_eq!(
            (r.kind.as_deref(), r.name.as_deref(), r.uid.as_deref()),
            (Some("Pod"), Some("a"), Some("uid-a"))
        );
        // publishNotReadyAddresses: everyone is an address.
        let s = svc(vec![port("http", 80, IntOrString::Int(8080))], true);
        assert_eq!(
            summary(&desired_subsets(&s, &refs)),
            vec![(
                v(&["10.42.0.1", "10.42.0.2", "10.42.0.3"]),
                v(&[]),
                v(&["http:8080"])
            )]
        );
    }

    #[test]
    fn named_target_ports_split_subsets_and_drop_pods_without_them() {
        let s = svc(
            vec![
                port("http", 80, IntOrString::String("http".into())),
                port("admin", 81, IntOrString::Int(9000)),
            ],
            false,
        );
        let pods = [
            pod("a", "10.42.0.1", true, Some(8080)),
            pod("b", "10.42.0.2", true, Some(8081)),
            pod("c", "10.42.0.3", true, None),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        assert_eq!(
            summary(&desired_subsets(&s, &refs)),
            vec![
                (v(&["10.42.0.1"]), v(&[]), v(&["http:8080"])),
                (
                    v(&["10.42.0.1", "10.42.0.2", "10.42.0.3"]),
                    v(&[]),
                    v(&["admin:9000"])
                ),
                (v(&["10.42.0.2"]), v(&[]), v(&["http:8081"])),
            ]
        );
        // No pod has the named port: no endpoints for it at all.
        let s = svc(
            vec![port("http", 80, IntOrString::String("web".into()))],
            false,
        );
        assert!(desired_subsets(&s, &refs).is_empty());
    }

    #[test]
    fn finished_terminating_and_addressless_pods_are_left_out() {
        let s = svc(vec![port("http", 80, IntOrString::Int(80))], false);
        let mut done = pod("done", "10.42.0.1", false, None);
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        let mut going = pod("going", "10.42.0.2", true, None);
        going.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        let mut no_ip = pod("new", "", false, None);
        no_ip.status.as_mut().unwrap().pod_ip = None;
        let pods = [done, going.clone(), no_ip];
        let refs: Vec<&Pod> = pods.iter().collect();
        assert!(desired_subsets(&s, &refs).is_empty());
        // ...except terminating ones when not-ready addresses are published.
        let s = svc(vec![port("http", 80, IntOrString::Int(80))], true);
        assert_eq!(
            summary(&desired_subsets(&s, &[&going])),
            vec![(v(&["10.42.0.2"]), v(&[]), v(&["http:80"]))]
        );
    }

    #[test]
    fn hostname_only_for_the_pods_subdomain() {
        let s = svc(vec![port("http", 80, IntOrString::Int(80))], false);
        let mut a = pod("a", "10.42.0.1", true, None);
        let spec = a.spec.as_mut().unwrap();
        spec.hostname = Some("web-0".into());
        spec.subdomain = Some("web".into());
        let mut b = pod("b", "10.42.0.2", true, None);
        let spec = b.spec.as_mut().unwrap();
        spec.hostname = Some("other".into());
        spec.subdomain = Some("elsewhere".into());
        let subsets = desired_subsets(&s, &[&a, &b]);
        let hosts: Vec<Option<String>> = subsets[0]
            .addresses
            .iter()
            .flatten()
            .map(|a| a.hostname.clone())
            .collect();
        assert_eq!(hosts, vec![Some("web-0".into()), None]);
    }

    #[test]
    fn repack_merges_ports_served_by_the_same_addresses() {
        let addr = |ip: &str| EndpointAddress {
            ip: ip.into(),
            ..Default::default()
        };
        let p = |n: &str, port: i32| EndpointPort {
            name: Some(n.into()),
            port,
            protocol: Some("TCP".into()),
            app_protocol: None,
        };
        let subsets = vec![
            EndpointSubset {
                addresses: Some(vec![addr("1.1.1.1")]),
                ports: Some(vec![p("a", 1)]),
                ..Default::default()
            },
            EndpointSubset {
                addresses: Some(vec![addr("1.1.1.1")]),
                ports: Some(vec![p("b", 2)]),
                ..Default::default()
            },
            EndpointSubset {
                not_ready_addresses: Some(vec![addr("2.2.2.2")]),
                ports: Some(vec![p("a", 1)]),
                ..Default::default()
            },
            EndpointSubset {
                // Ready for "b" elsewhere wins over not ready here.
                not_ready_addresses: Some(vec![addr("1.1.1.1")]),
                ports: Some(vec![p("b", 2)]),
                ..Default::default()
            },
        ];
        assert_eq!(
            summary(&repack_subsets(subsets)),
            vec![
                (v(&["1.1.1.1"]), v(&[]), v(&["b:2"])),
                (v(&["1.1.1.1"]), v(&["2.2.2.2"]), v(&["a:1"])),
            ]
        );
    }

    #[test]
    fn truncation_keeps_ready_addresses_first() {
        let addrs = |n: usize, base: &str| -> Vec<EndpointAddress> {
            (0..n)
                .map(|i| EndpointAddress {
                    ip: format!("{base}.{}.{}", i / 250, i % 250),
                    ..Default::default()
                })
                .collect()
        };
        let subsets = vec![EndpointSubset {
            addresses: Some(addrs(900, "10.1")),
            not_ready_addresses: Some(addrs(300, "10.2")),
            ports: None,
        }];
        let (out, cut) = truncate(subsets);
        assert!(cut);
        assert_eq!(len(&out[0].addresses), 900);
        assert_eq!(len(&out[0].not_ready_addresses), 100);
    }
}
