//! What the DNS knows of the cluster: Services, EndpointSlices and
//! Namespaces reduced to what names resolve to, indexed by name and by IP.
//!
//! The index is kept current by handlers on the shared informers
//! ([`Cluster::watch`]); tests fill it with the same `apply_*`/`delete_*`
//! calls, so queries always go through one code path. Answers read it at
//! query time, so a change is visible as soon as the informer delivers it.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use client::informer::{Change, Informers};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// A service port or an EndpointSlice port. `port` is -1 when the object
/// has no ports at all, as CoreDNS records it: the name still resolves (A),
/// but there is no SRV record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PortRecord {
    pub name: String,
    pub protocol: String,
    pub port: i32,
}

impl PortRecord {
    fn none() -> PortRecord {
        PortRecord {
            name: String::new(),
            protocol: String::new(),
            port: -1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ServiceKind {
    /// A virtual IP per family (`spec.clusterIPs`).
    ClusterIp(Vec<IpAddr>),
    /// `clusterIP: None`: names resolve to the endpoints.
    Headless,
    /// A CNAME to `spec.externalName`.
    ExternalName(String),
}

/// A Service as DNS sees it.
#[derive(Clone, Debug)]
pub(crate) struct ServiceRecord {
    pub namespace: String,
    pub name: String,
    pub kind: ServiceKind,
    pub ports: Vec<PortRecord>,
    /// `spec.publishNotReadyAddresses`: not-ready endpoints resolve too.
    pub publish_not_ready: bool,
}

impl ServiceRecord {
    fn from_service(svc: &Service) -> Option<ServiceRecord> {
        let namespace = svc.metadata.namespace.clone()?;
        let name = svc.metadata.name.clone()?;
        let spec = svc.spec.clone().unwrap_or_default();
        let kind = if spec.type_.as_deref() == Some("ExternalName") {
            ServiceKind::ExternalName(spec.external_name.clone().unwrap_or_default())
        } else {
            let ips = match &spec.cluster_ips {
                Some(ips) if !ips.is_empty() => ips.clone(),
                _ => spec.cluster_ip.clone().into_iter().collect(),
            };
            if ips.first().map(String::as_str) == Some("None") {
                ServiceKind::Headless
            } else {
                ServiceKind::ClusterIp(ips.iter().filter_map(|ip| ip.parse().ok()).collect())
            }
        };
        let mut ports: Vec<PortRecord> = spec
            .ports
            .iter()
            .flatten()
            .map(|p| PortRecord {
                name: p.name.clone().unwrap_or_default(),
                // The API server defaults the protocol to TCP.
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                port: p.port,
            })
            .collect();
        if ports.is_empty() {
            ports.push(PortRecord::none());
        }
        Some(ServiceRecord {
            namespace,
            name,
            kind,
            ports,
            publish_not_ready: spec.publish_not_ready_addresses.unwrap_or(false),
        })
    }
}

/// One endpoint of a slice.
#[derive(Clone, Debug)]
pub(crate) struct EndpointRecord {
    pub addresses: Vec<IpAddr>,
    pub hostname: Option<String>,
    /// `conditions.ready`, unset meaning ready.
    pub ready: bool,
}

/// An EndpointSlice as DNS sees it.
#[derive(Clone, Debug)]
pub(crate) struct SliceRecord {
    pub namespace: String,
    /// The `kubernetes.io/service-name` label; empty if missing.
    pub service: String,
    pub ports: Vec<PortRecord>,
    pub endpoints: Vec<EndpointRecord>,
}

impl SliceRecord {
    fn from_slice(slice: &EndpointSlice) -> Option<SliceRecord> {
        let namespace = slice.metadata.namespace.clone()?;
        let service = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(client::informer::SERVICE_NAME_LABEL))
            .cloned()
            .unwrap_or_default();
        let mut ports: Vec<PortRecord> = slice
            .ports
            .iter()
            .flatten()
            .map(|p| PortRecord {
                name: p.name.clone().unwrap_or_default(),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                port: p.port.unwrap_or(-1),
            })
            .collect();
        if ports.is_empty() {
            ports.push(PortRecord::none());
        }
        // FQDN slices carry names, not addresses: nothing for DNS to serve.
        let endpoints = if slice.address_type == "FQDN" {
            Vec::new()
        } else {
            slice
                .endpoints
                .iter()
                .map(|e| EndpointRecord {
                    addresses: e.addresses.iter().filter_map(|a| a.parse().ok()).collect(),
                    hostname: e.hostname.clone().filter(|h| !h.is_empty()),
                    ready: e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true),
                })
                .collect()
        };
        Some(SliceRecord {
            namespace,
            service,
            ports,
            endpoints,
        })
    }

    /// The endpoints that answer for a Service: ready ones, or all of them
    /// when it publishes not-ready addresses.
    pub fn usable(&self, publish_not_ready: bool) -> impl Iterator<Item = &EndpointRecord> {
        self.endpoints
            .iter()
            .filter(move |e| e.ready || publish_not_ready)
    }
}

/// The indexed state; read it through [`Cluster::read`].
#[derive(Default)]
pub(crate) struct State {
    namespaces: HashSet<String>,
    /// `ns/name` → service.
    services: HashMap<Arc<str>, Arc<ServiceRecord>>,
    services_by_ip: HashMap<IpAddr, Keys>,
    /// `ns/slice-name` → slice.
    slices: HashMap<Arc<str>, Arc<SliceRecord>>,
    /// `ns/service` → slice keys.
    slices_by_service: HashMap<String, Keys>,
    slices_by_ip: HashMap<IpAddr, Keys>,
}

/// The keys under one index value: sorted, and nearly always one, so a
/// vector of shared strings rather than a tree (10,000 endpoint addresses
/// are 10,000 of these).
type Keys = Vec<Arc<str>>;

fn index_add<K: std::hash::Hash + Eq>(index: &mut HashMap<K, Keys>, value: K, key: &Arc<str>) {
    let keys = index.entry(value).or_default();
    if let Err(at) = keys.binary_search(key) {
        keys.insert(at, key.clone());
    }
}

fn index_remove<K: std::hash::Hash + Eq>(index: &mut HashMap<K, Keys>, value: &K, key: &str) {
    if let Some(keys) = index.get_mut(value) {
        keys.retain(|k| &**k != key);
        if keys.is_empty() {
            index.remove(value);
        }
    }
}

impl State {
    pub fn namespace_exists(&self, namespace: &str) -> bool {
        self.namespaces.contains(namespace)
    }

    pub fn service(&self, namespace: &str, name: &str) -> Option<&Arc<ServiceRecord>> {
        self.services.get(format!("{namespace}/{name}").as_str())
    }

    /// The slices labelled for this service.
    pub fn slices_of(&self, namespace: &str, service: &str) -> Vec<&Arc<SliceRecord>> {
        self.slices_by_service
            .get(&format!("{namespace}/{service}"))
            .into_iter()
            .flatten()
            .filter_map(|k| self.slices.get(k))
            .collect()
    }

    /// Services with this cluster IP, in key order.
    pub fn services_with_ip(&self, ip: &IpAddr) -> Vec<&Arc<ServiceRecord>> {
        self.services_by_ip
            .get(ip)
            .into_iter()
            .flatten()
            .filter_map(|k| self.services.get(k))
            .collect()
    }

    /// Slices with an endpoint at this address, in key order.
    pub fn slices_with_ip(&self, ip: &IpAddr) -> Vec<&Arc<SliceRecord>> {
        self.slices_by_ip
            .get(ip)
            .into_iter()
            .flatten()
            .filter_map(|k| self.slices.get(k))
            .collect()
    }

    fn put_service(&mut self, key: String, record: Option<ServiceRecord>) {
        let key: Arc<str> = key.into();
        if let Some(old) = self.services.remove(&key) {
            if let ServiceKind::ClusterIp(ips) = &old.kind {
                for ip in ips {
                    index_remove(&mut self.services_by_ip, ip, &key);
                }
            }
        }
        if let Some(record) = record {
            if let ServiceKind::ClusterIp(ips) = &record.kind {
                for ip in ips {
                    index_add(&mut self.services_by_ip, *ip, &key);
                }
            }
            self.services.insert(key, Arc::new(record));
        }
    }

    fn put_slice(&mut self, key: String, record: Option<SliceRecord>) {
        let key: Arc<str> = key.into();
        if let Some(old) = self.slices.remove(&key) {
            let service = format!("{}/{}", old.namespace, old.service);
            index_remove(&mut self.slices_by_service, &service, &key);
            for ip in old.endpoints.iter().flat_map(|e| &e.addresses) {
                index_remove(&mut self.slices_by_ip, ip, &key);
            }
        }
        if let Some(record) = record {
            if !record.service.is_empty() {
                let service = format!("{}/{}", record.namespace, record.service);
                index_add(&mut self.slices_by_service, service, &key);
            }
            for ip in record.endpoints.iter().flat_map(|e| &e.addresses) {
                index_add(&mut self.slices_by_ip, *ip, &key);
            }
            self.slices.insert(key, Arc::new(record));
        }
    }
}

/// The DNS's view of the cluster. Cheap to share behind `Arc`.
#[derive(Default)]
pub struct Cluster {
    state: RwLock<State>,
    synced: AtomicBool,
    /// Unix seconds of the last change: the SOA serial, as CoreDNS keeps it.
    modified: AtomicU32,
}

fn key(namespace: Option<&str>, name: Option<&str>) -> Option<String> {
    Some(format!("{}/{}", namespace?, name?))
}

impl Cluster {
    pub fn new() -> Cluster {
        let cluster = Cluster::default();
        cluster.touch();
        cluster
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.touch();
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn touch(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or_default();
        self.modified.store(now, Ordering::Relaxed);
    }

    /// The SOA serial.
    pub fn serial(&self) -> u32 {
        self.modified.load(Ordering::Relaxed)
    }

    /// Whether the caches have their first list. Until then a name that is
    /// not found gets SERVFAIL, not NXDOMAIN, so no one caches a miss.
    pub fn has_synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    pub fn set_synced(&self) {
        self.synced.store(true, Ordering::Relaxed);
    }

    pub fn apply_namespace(&self, ns: &Namespace) {
        if let Some(name) = &ns.metadata.name {
            self.write().namespaces.insert(name.clone());
        }
    }

    pub fn delete_namespace(&self, ns: &Namespace) {
        if let Some(name) = &ns.metadata.name {
            self.write().namespaces.remove(name);
        }
    }

    pub fn apply_service(&self, svc: &Service) {
        let Some(k) = key(
            svc.metadata.namespace.as_deref(),
            svc.metadata.name.as_deref(),
        ) else {
            return;
        };
        let record = ServiceRecord::from_service(svc);
        self.write().put_service(k, record);
    }

    pub fn delete_service(&self, svc: &Service) {
        if let Some(k) = key(
            svc.metadata.namespace.as_deref(),
            svc.metadata.name.as_deref(),
        ) {
            self.write().put_service(k, None);
        }
    }

    pub fn apply_endpoint_slice(&self, slice: &EndpointSlice) {
        let Some(k) = key(
            slice.metadata.namespace.as_deref(),
            slice.metadata.name.as_deref(),
        ) else {
            return;
        };
        let record = SliceRecord::from_slice(slice);
        self.write().put_slice(k, record);
    }

    pub fn delete_endpoint_slice(&self, slice: &EndpointSlice) {
        if let Some(k) = key(
            slice.metadata.namespace.as_deref(),
            slice.metadata.name.as_deref(),
        ) {
            self.write().put_slice(k, None);
        }
    }

    /// Keeps the index current from the shared informers of Namespaces,
    /// Services and EndpointSlices (the caller starts the informers). The
    /// returned future ends when all three have their first list, and marks
    /// the index synced.
    pub fn watch(
        self: &Arc<Self>,
        informers: &Informers,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let namespaces = informers.get::<Namespace>();
        let services = informers.get::<Service>();
        let slices = informers.get::<EndpointSlice>();
        let c = self.clone();
        namespaces.on_change(move |change| match change {
            Change::Applied { new, .. } => c.apply_namespace(new),
            Change::Deleted(old) => c.delete_namespace(old),
        });
        let c = self.clone();
        services.on_change(move |change| match change {
            Change::Applied { new, .. } => c.apply_service(new),
            Change::Deleted(old) => c.delete_service(old),
        });
        let c = self.clone();
        slices.on_change(move |change| match change {
            Change::Applied { new, .. } => c.apply_endpoint_slice(new),
            Change::Deleted(old) => c.delete_endpoint_slice(old),
        });
        let c = self.clone();
        async move {
            namespaces.wait_synced().await;
            services.wait_synced().await;
            slices.wait_synced().await;
            c.set_synced();
        }
    }
}
