//! What exists from the start (the four system namespaces, the built-in
//! PriorityClasses, the `kubernetes` Service and its Endpoints) and the
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
        let desired = json!({
            "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": host}], "ports": [{"name": "https", "port": cfg.port, "protocol": "TCP"}]}],
        });
        match rest
            .create(&endpoints, desired.clone(), &WriteOptions::default())
            .await
        {
            Ok(_) => {}
            Err(ApiError::AlreadyExists { .. }) => {
                rest.update_with(
                    &endpoints,
                    "kubernetes",
                    None,
                    &WriteOptions::default(),
                    |old| {
                        let mut n = old.clone();
                        n["subsets"] = desired["subsets"].clone();
                        if let Some(m) = n["metadata"].as_object_mut() {
                            m.remove("resourceVersion");
                        }
                        Ok(n)
                    },
                )
                .await?;
            }
            Err(e) => return Err(e),
        }
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
