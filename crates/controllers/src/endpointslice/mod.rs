//! The EndpointSlice controller (`pkg/controller/endpointslice`): for each
//! Service with a selector, EndpointSlices (`discovery.k8s.io/v1`) listing
//! the selected pods with their conditions (ready, serving, terminating),
//! node, zone and resolved ports — at most 100 endpoints a slice, pods whose
//! named ports resolve differently in different slices, updated in place
//! with as little churn as upstream ([`reconciler`]). These are what the
//! proxy and the DNS read.

pub mod reconciler;
pub mod util;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::informer::{key_of, split_key, Informer};
use crate::informer::{service_key_of, SERVICE_INDEX, SERVICE_NAME_LABEL};
use crate::pod_control::{api_message, is_namespace_terminating, is_not_found};
use crate::workqueue::WorkQueue;
use crate::Context;
use client::events::{EventType, Recorder};
use reconciler::{Group, Params, Plan};
use util::MANAGED_BY_LABEL;

/// `endpointslice-controller.k8s.io`.
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// The index on EndpointSlices: `namespace/service-name` label.
/// `topology.kubernetes.io/zone`.
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
const WORKERS: usize = 5;

fn managed_by(slice: &EndpointSlice) -> Option<&str> {
    slice.labels().get(MANAGED_BY_LABEL).map(String::as_str)
}

/// What we wrote and wait to see in the cache (`EndpointSliceTracker`):
/// slice name → the resourceVersion written (`None` for a delete) and when.
/// An expectation not met within [`EXPECTATION_TTL`] is given up (someone
/// else may have changed the slice meanwhile).
#[derive(Default)]
pub(crate) struct SliceTracker {
    expected: Mutex<HashMap<String, HashMap<String, Expected>>>,
}

/// The resourceVersion a write returned (`None`: deleted), and when.
type Expected = (Option<u64>, Instant);

const EXPECTATION_TTL: Duration = Duration::from_secs(30);

impl SliceTracker {
    /// Whether the cached slices of `key` still miss one of our writes;
    /// expectations the cache meets are dropped.
    pub(crate) fn stale(&self, key: &str, cached: &[Arc<EndpointSlice>]) -> bool {
        let mut all = self.expected.lock().unwrap_or_else(|e| e.into_inner());
        let Some(expected) = all.get_mut(key) else {
            return false;
        };
        let rv_of = |name: &str| {
            cached
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name))
                .map(|s| rv(&s.metadata))
        };
        expected.retain(|name, (want, at)| {
            let unmet = match (want, rv_of(name)) {
                (Some(w), Some(got)) => got < *w,
                (Some(_), None) => true,
                (None, Some(_)) => true,
                (None, None) => false,
            };
            unmet && at.elapsed() < EXPECTATION_TTL
        });
        let stale = !expected.is_empty();
        if !stale {
            all.remove(key);
        }
        stale
    }

    pub(crate) fn wrote(&self, key: &str, name: String, written: Option<&ObjectMeta>) {
        self.expected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_string())
            .or_default()
            .insert(name, (written.map(rv), Instant::now()));
    }

    pub(crate) fn forget(&self, key: &str) {
        self.expected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

fn rv(meta: &ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Applies a plan for one owner; returns the first error after trying all.
pub(crate) async fn apply_plan(
    client: &kube::Client,
    tracker: &SliceTracker,
    key: &str,
    namespace: &str,
    plan: Plan,
) -> Result<(), kube::Error> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    let mut first = None;
    for s in plan.create {
        match api.create(&PostParams::default(), &s).await {
            Ok(w) => tracker.wrote(key, w.name_any(), Some(&w.metadata)),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    for s in plan.update {
        let name = s.name_any();
        match api.replace(&name, &PostParams::default(), &s).await {
            Ok(w) => tracker.wrote(key, name, Some(&w.metadata)),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    for s in plan.delete {
        let name = s.name_any();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => tracker.wrote(key, name, None),
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

struct Controller {
    client: kube::Client,
    services: Informer<Service>,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    slices: Informer<EndpointSlice>,
    queue: WorkQueue,
    recorder: Recorder,
    triggers: util::TriggerTimeTracker,
    tracker: SliceTracker,
}

/// Runs the EndpointSlice controller until `shutdown`.
pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        services: ctx.informers.get::<Service>(),
        pods: ctx.informers.pods(),
        nodes: ctx.informers.get::<Node>(),
        slices: ctx.informers.endpoint_slices(),
        queue: WorkQueue::new("endpoint_slice"),
        recorder: ctx.recorder("endpoint-slice-controller"),
        triggers: util::TriggerTimeTracker::default(),
        tracker: SliceTracker::default(),
    });
    {
        let c2 = c.clone();
        c.services
            .on_change(move |change| c2.queue.add(key_of(change.object().as_ref())));
    }
    {
        let c2 = c.clone();
        c.pods.on_change(move |change| {
            for key in crate::endpoints::services_for_pod_change(&c2.services, change) {
                c2.queue.add(key);
            }
        });
    }
    {
        let c2 = c.clone();
        c.slices.on_change(move |change| {
            let slice = change.object();
            let ours = managed_by(slice) == Some(CONTROLLER_NAME)
                || change
                    .old()
                    .is_some_and(|o| managed_by(o) == Some(CONTROLLER_NAME));
            if ours {
                if let Some(key) = service_key_of(slice) {
                    c2.queue.add(key);
                }
            }
        });
    }
    {
        // A node's zone label is copied onto its endpoints.
        let c2 = c.clone();
        c.nodes.on_change(move |change| {
            let (old, new) = (change.old(), change.object());
            let zone = |n: &Node| n.labels().get(ZONE_LABEL).cloned();
            if old.is_some_and(|o| zone(o) == zone(new)) {
                return;
            }
            let node = new.name_any();
            let mut keys = std::collections::BTreeSet::new();
            for pod in c2.pods.by_index(crate::informer::NODE_INDEX, &node) {
                let ns = pod.namespace().unwrap_or_default();
                for svc in c2.services.list_namespace(&ns) {
                    if util::selector(&svc)
                        .is_some_and(|s| client::labels::matches_set(s, pod.labels()))
                    {
                        keys.insert(key_of(svc.as_ref()));
                    }
                }
            }
            for key in keys {
                c2.queue.add(key);
            }
        });
    }
    c.services.wait_synced().await;
    c.pods.wait_synced().await;
    c.nodes.wait_synced().await;
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
        let Some(svc) = self.services.get(key) else {
            // The garbage collector removes the slices with their owner.
            self.triggers.forget(key);
            self.tracker.forget(key);
            return Ok(None);
        };
        let Some(selector) = util::selector(&svc).cloned() else {
            return Ok(None);
        };
        if util::is_external_name(&svc) || svc.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let cached: Vec<Arc<EndpointSlice>> = self
            .slices
            .by_index(SERVICE_INDEX, key)
            .into_iter()
            .filter(|s| managed_by(s) == Some(CONTROLLER_NAME))
            .collect();
        if self.tracker.stale(key, &cached) {
            // Our last writes have not reached the cache yet; their events
            // queue the Service again.
            return Ok(Some(Duration::from_secs(1)));
        }
        let mut pods: Vec<Arc<Pod>> = self
            .pods
            .list_namespace(ns)
            .into_iter()
            .filter(|p| client::labels::matches_set(&selector, p.labels()))
            .collect();
        pods.sort_by_key(|p| p.name_any());
        let refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
        let trigger = self.triggers.compute(key, &svc, &refs);

        let zones = |node: &str| -> Option<Option<String>> {
            let n = self.nodes.get(node)?;
            Some(n.labels().get(ZONE_LABEL).cloned())
        };
        let (desired, missing_node) = desired_groups(&svc, &refs, &zones);
        let address_types = address_types(&svc);
        let uid = svc.uid().unwrap_or_default();
        // Slices of another Service of that name, or of an address type no
        // longer served, go.
        let (existing, foreign): (Vec<EndpointSlice>, Vec<EndpointSlice>) =
            cached.iter().map(|s| s.as_ref().clone()).partition(|s| {
                s.owner_references().iter().any(|r| r.uid == uid)
                    && address_types.contains(&s.address_type.as_str())
            });
        let svc2 = svc.clone();
        let new_slice = move |at: &str, ports: &[EndpointPort]| new_slice(&svc2, at, ports);
        let meta_current = |s: &EndpointSlice| s.labels() == &slice_labels(&svc, s.labels());
        let fix_meta = |s: &mut EndpointSlice| {
            let labels = slice_labels(&svc, s.labels());
            s.metadata.labels = Some(labels);
        };
        let placeholder = address_types.first().copied().unwrap_or("IPv4");
        let params = Params {
            max_endpoints: MAX_ENDPOINTS_PER_SLICE,
            new_slice: &new_slice,
            meta_current: &meta_current,
            fix_meta: &fix_meta,
            placeholder: Some(placeholder),
        };
        let mut plan = reconciler::reconcile(desired, existing, &params);
        plan.delete.extend(foreign);
        if plan.is_empty() {
            return Ok(missing_node.then_some(Duration::from_secs(1)));
        }
        if let Some(t) = trigger {
            let t = util::format_trigger_time(t);
            for s in plan.create.iter_mut().chain(plan.update.iter_mut()) {
                s.metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert(util::LAST_CHANGE_TRIGGER_TIME.into(), t.clone());
            }
        }
        match apply_plan(&self.client, &self.tracker, key, ns, plan).await {
            Ok(()) => Ok(missing_node.then_some(Duration::from_secs(1))),
            Err(e) if is_namespace_terminating(&e) => Ok(None),
            Err(e) => {
                self.recorder.record(
                    client::events::reference(svc.as_ref()),
                    EventType::Warning,
                    "FailedToUpdateEndpointSlices",
                    "Update",
                    format!(
                        "Error updating Endpoint Slices for Service {key}: {}",
                        api_message(&e)
                    ),
                );
                Err(e.into())
            }
        }
    }
}

/// The address types a Service's slices use (`getAddressTypesForService`):
/// its IP families; else its cluster IP's; a headless Service without
/// families gets both.
pub fn address_types(svc: &Service) -> Vec<&'static str> {
    let spec = svc.spec.as_ref();
    let mut out = Vec::new();
    for f in spec
        .and_then(|s| s.ip_families.as_ref())
        .into_iter()
        .flatten()
    {
        match f.as_str() {
            "IPv4" if !out.contains(&"IPv4") => out.push("IPv4"),
            "IPv6" if !out.contains(&"IPv6") => out.push("IPv6"),
            _ => {}
        }
    }
    if !out.is_empty() {
        return out;
    }
    if util::is_service_ip_set(svc) {
        let v6 = spec
            .and_then(|s| s.cluster_ip.as_deref())
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
            .is_some_and(|ip| ip.is_ipv6());
        return vec![if v6 { "IPv6" } else { "IPv4" }];
    }
    vec!["IPv4", "IPv6"]
}

/// The endpoints a Service wants, grouped by address type and resolved
/// ports; and whether a pod was skipped because its Node is not known yet.
pub fn desired_groups(
    svc: &Service,
    pods: &[&Pod],
    zone_of: &dyn Fn(&str) -> Option<Option<String>>,
) -> (BTreeMap<reconciler::PortsKey, Group>, bool) {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let mut groups: BTreeMap<reconciler::PortsKey, Group> = BTreeMap::new();
    let mut missing_node = false;
    for pod in pods {
        if !util::should_pod_be_in_endpoints(pod, true) {
            continue;
        }
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        let zone = match node.as_deref().map(zone_of) {
            Some(None) => {
                // As upstream: left out until its Node is known.
                missing_node = true;
                continue;
            }
            Some(Some(zone)) => zone,
            None => None,
        };
        let mut ports: Vec<EndpointPort> = Vec::new();
        for sp in spec.ports.iter().flatten() {
            if let Some(port) = util::find_port(pod, sp) {
                ports.push(EndpointPort {
                    name: Some(sp.name.clone().unwrap_or_default()),
                    port: Some(port),
                    protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: sp.app_protocol.clone(),
                });
            }
        }
        // Unlike upstream (which lists such a pod in a slice without
        // ports), a pod serving none of the Service's ports is left out, so
        // `kubectl describe svc` says `Endpoints: <none>` for a targetPort
        // name no container has, as the Endpoints do.
        if ports.is_empty() && spec.ports.as_ref().is_some_and(|p| !p.is_empty()) {
            continue;
        }
        let serving = crate::replicaset::is_pod_ready(pod);
        let terminating = pod.metadata.deletion_timestamp.is_some();
        for at in address_types(svc) {
            let Some(ip) = util::pod_ip_of_family(pod, at == "IPv6") else {
                continue;
            };
            let endpoint = Endpoint {
                addresses: vec![ip],
                conditions: Some(EndpointConditions {
                    ready: Some(publish_not_ready || (serving && !terminating)),
                    serving: Some(serving),
                    terminating: Some(terminating),
                }),
                node_name: node.clone(),
                zone: zone.clone(),
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
                ..Default::default()
            };
            let mut ports = ports.clone();
            let key = reconciler::ports_key(at, &mut ports);
            groups
                .entry(key)
                .or_insert_with(|| Group {
                    address_type: at.to_string(),
                    ports,
                    endpoints: Vec::new(),
                })
                .endpoints
                .push(endpoint);
        }
    }
    (groups, missing_node)
}

/// The labels a Service's slices carry (`setEndpointSliceLabels`): the
/// Service's own (except the reserved two), the headless marker, the
/// service name and who manages them. Labels others put on the slice stay
/// only if they are reserved.
fn slice_labels(svc: &Service, _current: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = svc
        .labels()
        .iter()
        .filter(|(k, _)| k.as_str() != SERVICE_NAME_LABEL && k.as_str() != MANAGED_BY_LABEL)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if util::is_service_ip_set(svc) {
        labels.remove(util::HEADLESS_LABEL);
    } else {
        labels.insert(util::HEADLESS_LABEL.into(), String::new());
    }
    labels.insert(SERVICE_NAME_LABEL.into(), svc.name_any());
    labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    labels
}

/// `getEndpointSlicePrefix`: `<service>-`, or `slice-` when that would not
/// make a valid name.
fn slice_prefix(service: &str) -> String {
    let prefix = format!("{service}-");
    if prefix.len() > 253 - 5 {
        "slice-".into()
    } else {
        prefix
    }
}

fn new_slice(svc: &Service, address_type: &str, ports: &[EndpointPort]) -> EndpointSlice {
    let owner = k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        api_version: Service::api_version(&()).into_owned(),
        kind: Service::kind(&()).into_owned(),
        name: svc.name_any(),
        uid: svc.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(slice_prefix(&svc.name_any())),
            namespace: svc.namespace(),
            labels: Some(slice_labels(svc, &BTreeMap::new())),
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
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, PodCondition, PodSpec, PodStatus, ServicePort, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn pod(name: &str, ip: &str, ready: bool, http: i32, node: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some(node.into()),
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some("http".into()),
                        container_port: http,
                        ..Default::default()
                    }]),
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

    fn svc(labels: &[(&str, &str)]) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some("10.43.0.20".into()),
                ip_families: Some(vec!["IPv4".into()]),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    target_port: Some(IntOrString::String("http".into())),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn endpoints_carry_conditions_node_zone_and_resolved_ports() {
        let s = svc(&[]);
        let mut going = pod("c", "10.42.0.3", true, 8080, "n1");
        going.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        let pods = [
            pod("a", "10.42.0.1", true, 8080, "n1"),
            pod("b", "10.42.0.2", false, 8081, "n2"),
            going,
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let zone = |n: &str| Some((n == "n1").then(|| "z1".to_string()));
        let (groups, missing) = desired_groups(&s, &refs, &zone);
        assert!(!missing);
        let groups: Vec<&Group> = groups.values().collect();
        assert_eq!(groups.len(), 2, "two port resolutions: two groups");
        assert_eq!(groups[0].ports[0].port, Some(8080));
        let a = &groups[0].endpoints[0];
        assert_eq!(a.addresses, vec!["10.42.0.1"]);
        assert_eq!(a.zone.as_deref(), Some("z1"));
        assert_eq!(a.node_name.as_deref(), Some("n1"));
        let c = a.conditions.as_ref().unwrap();
        assert_eq!(
            (c.ready, c.serving, c.terminating),
            (Some(true), Some(true), Some(false))
        );
        let t = groups[0].endpoints[1].conditions.as_ref().unwrap();
        assert_eq!(
            (t.ready, t.serving, t.terminating),
            (Some(false), Some(true), Some(true)),
            "terminating pods stay, not ready"
        );
        let b = groups[1].endpoints[0].conditions.as_ref().unwrap();
        assert_eq!(b.ready, Some(false));
        // A pod serving none of the ports is left out.
        let mut s2 = s.clone();
        s2.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].target_port =
            Some(IntOrString::String("metrics".into()));
        assert!(desired_groups(&s2, &refs, &zone).0.is_empty());
        // A pod whose node is unknown waits.
        let (_, missing) = desired_groups(&s, &refs, &|_| None);
        assert!(missing);
    }

    #[test]
    fn tracker_waits_for_the_cache_to_show_our_writes() {
        let meta = |name: &str, rv: &str| ObjectMeta {
            name: Some(name.into()),
            resource_version: Some(rv.into()),
            ..Default::default()
        };
        let slice = |name: &str, rv: &str| {
            Arc::new(EndpointSlice {
                metadata: meta(name, rv),
                ..Default::default()
            })
        };
        let t = SliceTracker::default();
        t.wrote("ns/web", "web-a".into(), Some(&meta("web-a", "5")));
        t.wrote("ns/web", "web-b".into(), None);
        assert!(t.stale("ns/web", &[slice("web-a", "4"), slice("web-b", "3")]));
        assert!(t.stale("ns/web", &[slice("web-a", "5"), slice("web-b", "3")]));
        assert!(!t.stale("ns/web", &[slice("web-a", "6")]));
        assert!(!t.stale("ns/web", &[]), "met expectations are forgotten");
        assert!(!t.stale("ns/other", &[]));
    }

    #[test]
    fn labels_copy_the_service_but_not_reserved_keys() {
        let s = svc(&[("app", "web"), (SERVICE_NAME_LABEL, "other")]);
        let l = slice_labels(&s, &BTreeMap::new());
        assert_eq!(l.get("app").map(String::as_str), Some("web"));
        assert_eq!(l.get(SERVICE_NAME_LABEL).map(String::as_str), Some("web"));
        assert_eq!(
            l.get(MANAGED_BY_LABEL).map(String::as_str),
            Some(CONTROLLER_NAME)
        );
        assert!(!l.contains_key(util::HEADLESS_LABEL));
    }
}
