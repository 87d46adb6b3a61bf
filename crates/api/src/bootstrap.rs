//! What exists from the start (the four system namespaces, the built-in
//! PriorityClasses, the `kubernetes` Service with its Endpoints and
//! EndpointSlice, the `kube-dns` Service) and the
//! server's housekeeping loops (history compaction, event expiry).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::rest::{DeleteOptions, ListOptions, Rest, Scope, WriteOptions};
use crate::Config;

pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

async fn ensure(rest: &Rest, scope: &Scope, obj: Value) -> Result<(), ApiError> {
    match rest.get(scope, crate::object::name(&obj)).await {
        Ok(_) => return Ok(()),
        Err(ApiError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    match rest.create(scope, obj, &WriteOptions::default()).await {
        Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `desired`, or if it exists sets the `fields` (paths below the
/// top level, `/`-separated) to the desired values.
async fn create_or_replace(
    rest: &Rest,
    scope: &Scope,
    desired: Value,
    fields: &[&str],
) -> Result<(), ApiError> {
    match rest
        .create(scope, desired.clone(), &WriteOptions::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(ApiError::AlreadyExists { .. }) => {
            let name = crate::object::name(&desired).to_string();
            rest.update_with(scope, &name, None, &WriteOptions::default(), |old| {
                let mut n = old.clone();
                for f in fields {
                    let path = format!("/{f}");
                    if let (Some(want), Some(slot)) = (desired.pointer(&path), n.pointer_mut(&path))
                    {
                        *slot = want.clone();
                    } else if let Some(want) = desired.pointer(&path) {
                        let (parent, key) = path.rsplit_once('/').unwrap_or(("", f));
                        if let Some(obj) = n.pointer_mut(parent).and_then(Value::as_object_mut) {
                            obj.insert(key.to_string(), want.clone());
                        }
                    }
                }
                if let Some(m) = n["metadata"].as_object_mut() {
                    m.remove("resourceVersion");
                }
                Ok(n)
            })
            .await
            .map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// The `kube-system/kube-dns` Service the cluster DNS answers behind (as
/// k3s' CoreDNS manifest has it; no selector: each node agent publishes its
/// own DNS endpoint). Created when missing; an address the service range
/// cannot hold is reported and skipped rather than stopping the server.
async fn ensure_kube_dns(rest: &Rest, ip: std::net::IpAddr) -> Result<(), ApiError> {
    let services = rest.scope("", "v1", "services", Some("kube-system"))?;
    let svc = json!({
        "metadata": {
            "name": "kube-dns",
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": ip.to_string(),
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
            ],
            "sessionAffinity": "None",
        },
    });
    match ensure(rest, &services, svc).await {
        Ok(()) => Ok(()),
        Err(ApiError::Invalid { .. }) => {
            tracing::warn!(cluster_dns = %ip, "the cluster DNS address is not a free address of the service range; kube-system/kube-dns not created");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

pub async fn run(rest: &Rest, cfg: &Config) -> Result<(), ApiError> {
    rest.load_allocations().await?;
    let namespaces = rest.scope("", "v1", "namespaces", None)?;
    for ns in SYSTEM_NAMESPACES {
        ensure(rest, &namespaces, json!({"metadata": {"name": ns}})).await?;
    }
    // As kube-apiserver's `scheduling/bootstrap-system-priority-classes`
    // post-start hook: created when missing, never changed.
    let priority_classes = rest.scope("scheduling.k8s.io", "v1", "priorityclasses", None)?;
    for (name, value, description) in crate::admission::SYSTEM_PRIORITY_CLASSES {
        ensure(
            rest,
            &priority_classes,
            json!({"metadata": {"name": name}, "value": value, "description": description}),
        )
        .await?;
    }
    let first_ip = cfg.service_cidr.first().to_string();
    let services = rest.scope("", "v1", "services", Some("default"))?;
    ensure(
        rest,
        &services,
        json!({
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": first_ip,
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": cfg.port}],
                "sessionAffinity": "None",
            },
        }),
    )
    .await?;
    let host = cfg
        .advertise_address
        .rsplit_once(':')
        .map(|(h, _)| h.trim_matches(['[', ']']).to_string())
        .unwrap_or_default();
    // Endpoints may not hold loopback addresses; a server bound to loopback
    // only has no in-cluster address to publish.
    if host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| !ip.is_loopback() && !ip.is_unspecified())
    {
        let endpoints = rest.scope("", "v1", "endpoints", Some("default"))?;
        let ports = json!([{"name": "https", "port": cfg.port, "protocol": "TCP"}]);
        let desired = json!({
            "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": host}], "ports": ports}],
        });
        create_or_replace(rest, &endpoints, desired, &["subsets"]).await?;
        // As kube-apiserver's endpoint reconciler writes its EndpointSlice
        // beside the Endpoints (no managed-by label, same address and port).
        let slices = rest.scope("discovery.k8s.io", "v1", "endpointslices", Some("default"))?;
        let address_type = if host.contains(':') { "IPv6" } else { "IPv4" };
        let desired = json!({
            "metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": address_type,
            "endpoints": [{"addresses": [host], "conditions": {"ready": true}}],
            "ports": ports,
        });
        create_or_replace(
            rest,
            &slices,
            desired,
            &["addressType", "endpoints", "ports", "metadata/labels"],
        )
        .await?;
    }
    if let Some(ip) = cfg.cluster_dns {
        ensure_kube_dns(rest, ip).await?;
    }
    Ok(())
}

/// Compaction (keep one interval of history, as kube-apiserver asks etcd
/// every 5 minutes) and event expiry.
pub fn spawn_maintenance(
    rest: Arc<Rest>,
    cfg: Config,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut compact = tokio::time::interval(cfg.compaction_interval);
        let mut expire = tokio::time::interval(Duration::from_secs(60).min(cfg.event_ttl));
        let mut previous = rest.storage.current_revision();
        compact.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = compact.tick() => {
                    if previous > rest.storage.compacted_revision() {
                        if let Err(e) = rest.storage.compact(previous).await {
                            tracing::warn!(error = %e, "compaction failed");
                        }
                    }
                    previous = rest.storage.current_revision();
                }
                _ = expire.tick() => {
                    if let Err(e) = expire_events(&rest, cfg.event_ttl).await {
                        tracing::warn!(error = %e, "event expiry failed");
                    }
                }
            }
        }
    })
}

/// Deletes events whose last occurrence is older than `ttl` (etcd leases do
/// this for kube-apiserver's `--event-ttl`).
pub async fn expire_events(rest: &Rest, ttl: Duration) -> Result<usize, ApiError> {
    let events = rest.scope("", "v1", "events", None)?;
    let list = rest.list(&events, &ListOptions::default()).await?;
    let cutoff = jiff::Timestamp::now() - jiff::SignedDuration::try_from(ttl).unwrap_or_default();
    let mut n = 0;
    for ev in list.items {
        let last = ["lastTimestamp", "eventTime"]
            .iter()
            .filter_map(|f| ev.get(*f).and_then(Value::as_str))
            .chain(
                ev.pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str),
            )
            .filter_map(crate::object::parse_time)
            .max();
        if last.is_some_and(|t| t < cutoff) {
            let s = Scope {
                rt: events.rt.clone(),
                namespace: ev
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            };
            match rest
                .delete(&s, crate::object::name(&ev), &DeleteOptions::default())
                .await
            {
                Ok(_) | Err(ApiError::NotFound { .. }) => n += 1,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(n)
}
