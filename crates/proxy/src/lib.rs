//! The service proxy, like kube-proxy's nftables mode: watches Services and
//! EndpointSlices and programs one nftables table of its own (`ip skiff`)
//! with the `nft` command, one atomic `nft -f -` transaction per sync.
//!
//! - [`run`] registers on the shared Service and EndpointSlice informers,
//!   does one full sync (the table replaced atomically), then partial syncs
//!   that rewrite only the Services whose Service or EndpointSlices changed,
//!   coalescing what arrives while nft runs. A failed transaction leaves the
//!   previous rules in force; it is logged, retried with backoff, as a full sync.
//! - [`Proxier`] is the same machinery without informers: feed it objects,
//!   call [`Proxier::sync`] (benchmarks, tests).
//! - [`cleanup`] removes the table and the policy routing (`skiff killall`).
//!
//! IPv4 only: IPv6 cluster IPs, endpoints and CIDRs are ignored.
//! Never touches any table but its own.
//!
//! Architecture invariant: the only crate that knows nftables.

pub mod cidr;
pub mod endpoints;
pub mod names;
pub mod nft;
pub mod proxier;
pub mod routing;
pub mod rules;
pub mod service;
pub mod transaction;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::informer::{key_of, service_key_of, Informers, SERVICE_INDEX};
use k8s_openapi::api::core::v1::Service;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use proxier::{last_sync, subscribe_syncs, Proxier, SyncKind, SyncStats};

/// The table the proxy owns unless told otherwise.
pub const DEFAULT_TABLE: &str = "skiff";

/// How the proxy is set up on this node.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's name: endpoints with this `nodeName` are local.
    pub node_name: String,
    /// This node's addresses (informational: NodePorts answer on every local
    /// address, `fib daddr type local`).
    pub node_ips: Vec<IpAddr>,
    /// `--service-cidr` (comma-separated; IPv4 parts used).
    pub service_cidr: String,
    /// `--cluster-cidr`: the pod network (comma-separated; IPv4 parts used).
    pub cluster_cidr: String,
    /// The nftables table (family `ip`), `skiff` by default.
    pub table: String,
}

impl Config {
    pub fn new(
        node_name: impl Into<String>,
        node_ips: Vec<IpAddr>,
        service_cidr: impl Into<String>,
        cluster_cidr: impl Into<String>,
    ) -> Config {
        Config {
            node_name: node_name.into(),
            node_ips,
            service_cidr: service_cidr.into(),
            cluster_cidr: cluster_cidr.into(),
            table: DEFAULT_TABLE.to_string(),
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config::new("", Vec::new(), "10.43.0.0/16", "10.42.0.0/16")
    }
}

/// What the proxy can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid service CIDR")]
    ServiceCidr(#[source] cidr::InvalidCidr),
    #[error("invalid cluster CIDR")]
    ClusterCidr(#[source] cidr::InvalidCidr),
    #[error("nftables transaction failed")]
    Nft(#[source] nft::NftError),
    #[error("policy routing for the service CIDR")]
    Routing(#[source] routing::RoutingError),
}

/// Keys of Services changed since the last sync, and a wake-up for the loop.
#[derive(Default)]
struct Pending {
    keys: Mutex<BTreeSet<String>>,
    notify: Notify,
}

impl Pending {
    fn add(&self, key: String) {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key);
        self.notify.notify_one();
    }

    fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.keys.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Runs the proxy until `shutdown`: its rules stay in place afterwards (as
/// kube-proxy's); [`cleanup`] removes them.
pub async fn run(
    informers: Informers,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let mut proxier = Proxier::new(&config)?;
    if let Err(e) = routing::enable_route_localnet() {
        tracing::warn!(error = %e, "NodePorts on 127.0.0.1 and the node's own service traffic will not work");
    }
    if let Err(e) = routing::ensure(proxier.service_cidrs()).await {
        tracing::warn!(error = %e, "cannot keep the service CIDR on the node");
    }

    let services = informers.get::<Service>();
    let slices = informers.endpoint_slices();
    let pending = Arc::new(Pending::default());
    {
        let pending = pending.clone();
        services.on_change(move |c| pending.add(key_of(c.object().as_ref())));
    }
    {
        let pending = pending.clone();
        slices.on_change(move |c| {
            let mut keys: BTreeSet<String> = BTreeSet::new();
            keys.extend(service_key_of(c.object()));
            keys.extend(c.old().and_then(|o| service_key_of(o)));
            for key in keys {
                pending.add(key);
            }
        });
    }
    tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        _ = async { tokio::join!(services.wait_synced(), slices.wait_synced()) } => {}
    }
    tracing::info!(table = %config.table, services = services.len(), "service proxy synced its caches");

    let mut retry = RETRY_MIN;
    loop {
        // Level-triggered: the caches say what each changed Service is now.
        for key in pending.take() {
            let service = services.get(&key);
            let endpoint_slices = slices.by_index(SERVICE_INDEX, &key);
            proxier.set_service(&key, service, endpoint_slices);
        }
        match proxier.sync().await {
            Ok(_) => retry = RETRY_MIN,
            Err(e) => {
                tracing::error!(error = %e, source = %error_chain(&e), retry = ?retry, "service proxy sync failed; previous rules stay in force");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(RETRY_MAX);
                continue;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = pending.notify.notified() => {}
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// Removes the proxy's table and its policy routing; what is already gone
/// is fine.
pub async fn cleanup(table: &str) -> Result<(), Error> {
    match nft::run(&format!("delete table ip {table}\n")).await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(Error::Nft(e)),
    }
    routing::cleanup().await.map_err(Error::Routing)
}
